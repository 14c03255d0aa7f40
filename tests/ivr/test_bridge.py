"""An accepted call is put through to the agent: the caller's live call is updated."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import Simulator, TestClientTransport
from tests.fakes import FakeCall, FakeTwilioCloud
from tests.hours import pin_clock
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE, wait_again

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPEN = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Madrid")).timestamp


def _holding_with_agent(settings: Settings, cloud: FakeTwilioCloud) -> tuple[Any, Any, Any]:
    """An app, a caller holding in the support queue, agent "ana" reserved for them."""
    settings = settings.with_(twilio_account_sid=cloud.account_sid,
                              twilio_api_url=cloud.url, public_url=BASE)
    app = create_app(settings)
    pin_clock(app, OPEN)
    client = app.test_client()
    sim = Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(client))
    call = sim.call(from_="+34699000111", to="+34930001000").start()
    call.press("1").press("*").press("1")  # Spanish, no account, billing: holding
    # Twilio knows the inbound call; the fake only knows calls it placed: tell it.
    cloud.calls[call.call_sid] = FakeCall(call.call_sid, "+34930001000", "+34699000111",
                                          None, "POST", None, None, "in-progress")
    assert client.put("/api/agents/ana", headers=ADMIN, json={
        "skills": {"lang:es": 1, "topic:billing": 1},
        "contact": "+34911000222"}).status_code == 200
    got = client.post("/api/agents/ana/login", headers=ADMIN).get_json()
    assert [a["call_id"] for a in got["assignments"]] == [call.call_sid]
    return settings, client, call


def _updates(cloud: FakeTwilioCloud, call_sid: str) -> list[str]:
    return [r.form["Twiml"][0] for r in cloud.requests
            if r.path.endswith(f"/Calls/{call_sid}.json") and r.method == "POST"]


def test_agent_accepts_and_the_caller_is_dialled_through(settings: Settings) -> None:
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        _, client, call = _holding_with_agent(settings, cloud)
        answer = client.post("/api/agents/ana/accept", headers=ADMIN,
                             json={"call_id": call.call_sid}).get_json()
        assert answer["bridged"] is True, answer
        updates = _updates(cloud, call.call_sid)
        assert updates, cloud.requests
        twiml = updates[-1]
        assert ">+34911000222</Number>" in twiml and "Le pasamos con un agente" in twiml
        # Twilio tells us when the agent picks up (absolute: the TwiML went by REST).
        assert f'url="{BASE}/voice/agent-answered?call={call.call_sid}"' in twiml


def test_bad_contact_is_refused_with_a_reason(client) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/agents/ana", headers=ADMIN,
                          json={"skills": {"lang:es": 1}, "contact": "call me maybe"})
    assert response.status_code == 400 and "contact" in response.get_json()["detail"]


def test_callback_leg_is_put_through_to_the_reserved_agent(app, client) -> None:  # type: ignore[no-untyped-def]
    from twilio.request_validator import RequestValidator

    from queueing.model import AgentState

    pin_clock(app, OPEN)  # callbacks are dialled only while the line is open
    components = app.extensions["centralita"].components
    store, bridge = components["queue"], components["bridge"]
    store.enqueue("CA" + "5" * 32, "support", {"lang:es": 1})
    store.request_callback("CA" + "5" * 32, "+34699000555")
    store.upsert_agent("ana", {"lang:es": 1})
    bridge.set_contact("ana", "client:ana")
    assignments = store.set_state("ana", AgentState.AVAILABLE)
    assert assignments is not None and assignments.callback_number == "+34699000555"
    path = f"/voice/callback?call={'CA' + '5' * 32}"
    params = {"CallSid": "CA" + "6" * 32, "CallStatus": "in-progress"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    answer = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and ">ana</Client>" in body
    assert "le llamamos de Centralita" in body
    status_path = f"/voice/callback-status?call={'CA' + '5' * 32}"
    params = {"CallSid": "CA" + "6" * 32, "CallStatus": "no-answer"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + status_path, params)
    assert client.post(status_path, data=params,
                       headers={"X-Twilio-Signature": sig}).status_code == 204
    assert store.call("CA" + "5" * 32).status != "reserved"


def _work_high(settings: Settings) -> None:
    """The worker's ``high`` queue, set up as ``ivr worker`` sets itself up."""
    import redis
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    from ivr.worker import install_queueing
    from queueing import jobs

    conn = redis.Redis.from_url(settings.effective_redis_url)
    install_queueing(settings, watch=False)
    try:
        queue = Queue("high", connection=conn, serializer=JSONSerializer)
        SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING")
    finally:
        jobs.install(None, None)
        conn.close()


def test_a_put_through_lost_between_accept_and_twilio_is_finished_by_the_hold(
        settings: Settings) -> None:
    """The web process died after the router's accept and before the REST update: the
    caller still holds, the agent waits. Twilio's next hold request sees it; the worker
    rings the agent; a second hold request meanwhile changes nothing twice."""
    from queueing.model import CallStatus

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        store.accept("ana", call.call_sid)  # ...and the process dies here
        assert store.call(call.call_sid).status == CallStatus.BRIDGED
        assert _updates(cloud, call.call_sid) == []
        hold = wait_again(client, call)  # the caller hears the hold as before...
        assert hold.find(".//Play") is not None
        wait_again(client, call)  # (a second request before the worker ran)
        _work_high(settings)  # ...and the worker rings the agent, once
        [twiml] = _updates(cloud, call.call_sid)
        assert ">+34911000222</Number>" in twiml
        assert f'url="{BASE}/voice/agent-answered?call={call.call_sid}"' in twiml
        assert store.call(call.call_sid).status == CallStatus.BRIDGED
        assert store.agent("ana").state == "busy"


def test_a_lost_put_through_that_twilio_refuses_puts_the_caller_back_at_the_head(
        settings: Settings) -> None:
    from queueing.model import CallStatus

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        store.accept("ana", call.call_sid)
        wait_again(client, call)
        cloud.fail(times=2, status=500)  # Twilio down for both tries (BRIDGE_RETRY)
        _work_high(settings)
        back = store.call(call.call_sid)
        assert back.status == CallStatus.WAITING and back.agent_id in (None, "")
        assert store.agent("ana").state == "paused"
        assert store.hold_info(call.call_sid).position == 1


def test_a_hold_request_racing_a_good_accept_never_rings_the_agent_again(
        settings: Settings) -> None:
    """Twilio's hold request that arrived while the accept was being sent queues a job;
    however late the job runs, the call put through for good is left alone."""
    from ivr.bridge import BRIDGE_CLAIM_S

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        assert client.post("/api/agents/ana/accept", headers=ADMIN,
                           json={"call_id": call.call_sid}).get_json()["bridged"] is True
        wait_again(client, call)  # (sent by Twilio before our update reached it)
        store = client.application.extensions["centralita"].components["queue"]
        held = store.call(call.call_sid)
        # the reservation stays claimed long after the accept's own 30 s: a job that
        # runs late (workers restarting, a backlog) still finds it taken
        ttl = store.redis.ttl(f"q:claim:bridge:{call.call_sid}:{held.reservation_id}")
        assert ttl > BRIDGE_CLAIM_S * 100
        _work_high(settings)
        assert len(_updates(cloud, call.call_sid)) == 1  # the accept's own, nothing more


def test_a_recovery_that_finds_the_accept_undone_meanwhile_rings_nobody(
        settings: Settings) -> None:
    """The recovery read "put through" just before the accept that was still running was
    undone (Twilio refused it): once it holds the claim it reads the call again."""
    from ivr.bridge import put_through_again

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        app_components = client.application.extensions["centralita"].components
        store, bridge = app_components["queue"], app_components["bridge"]
        store.accept("ana", call.call_sid)  # the accept, still running elsewhere...
        claim = store.claim

        def claim_after_the_accept_was_undone(name: str, ttl_s: int = 3600) -> bool:
            store.bounce(call.call_sid)  # ...Twilio refused it: undone, claim given back
            return claim(name, ttl_s)

        store.claim = claim_after_the_accept_was_undone
        assert put_through_again(store, bridge, call.call_sid) == ()
        assert _updates(cloud, call.call_sid) == []
        assert store.call(call.call_sid).status == "waiting"


def test_the_agent_can_accept_the_same_caller_again_at_once_after_a_bounce(
        settings: Settings) -> None:
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        accept = {"call_id": call.call_sid}
        assert client.post("/api/agents/ana/accept", headers=ADMIN,
                           json=accept).get_json()["status"] == "bridged"
        store.bounce(call.call_sid)  # the agent's phone was busy: back to the head
        got = client.post("/api/agents/ana/state", headers=ADMIN,
                          json={"state": "available"}).get_json()
        assert [a["call_id"] for a in got["assignments"]] == [call.call_sid]
        again = client.post("/api/agents/ana/accept", headers=ADMIN, json=accept).get_json()
        assert again["status"] == "bridged"  # a new reservation: put through again
        assert len(_updates(cloud, call.call_sid)) == 2


def test_a_caller_whose_put_through_was_lost_can_still_ask_for_a_callback(
        settings: Settings) -> None:
    """The caller holds although the router had them put through (the accept's process
    died) and presses 1: the callback is booked at the head of the line, the agent freed
    (nobody failed) and the answer taken out of the figures."""
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        store.accept("ana", call.call_sid)  # ...and the process dies here
        assert store.counters()["support"]["answered"] == 1
        call.press("1")  # "pulse 1 para que le llamemos"
        for _ in range(4):  # confirm the number read back
            if call.ended or (call.pending or "").lower() != "gather":
                break
            call.press("1")
        assert call.heard("Le llamaremos lo antes posible")
        held = store.call(call.call_sid)
        # a callback now, at the head of its line; the agent, freed (nobody failed), takes
        # it straight back -- this time to ring the customer
        assert held is not None and held.callback_number == "+34699000111" and held.front
        assert held.status == "reserved" and held.agent_id == "ana", held
        assert store.agent("ana").state == "reserved"  # not paused
        assert store.counters()["support"]["answered"] == 0
        assert _updates(cloud, call.call_sid) == []  # the holding leg is left alone


def test_a_stale_accept_by_an_agent_whose_reservation_moved_on_is_refused(
        settings: Settings) -> None:
    """Ana's reservation lapsed and Bob's accept put the caller through: Ana's late click
    is refused (409), not answered "already bridged", and never holds Bob's claim."""
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        reserved = store.call(call.call_sid)
        store.expire_reservation(call.call_sid, reserved.reservation_id,
                                 now=reserved.entered_at + 3600)  # Ana: no answer, paused
        client.put("/api/agents/bob", headers=ADMIN, json={
            "skills": {"lang:es": 1, "topic:billing": 1}, "contact": "+34911000333"})
        got = client.post("/api/agents/bob/login", headers=ADMIN).get_json()
        assert [a["call_id"] for a in got["assignments"]] == [call.call_sid]
        late = client.post("/api/agents/ana/accept", headers=ADMIN,
                           json={"call_id": call.call_sid})  # before Bob's: no claim taken
        assert late.status_code == 409 and "not at agent ana" in late.get_json()["detail"]
        bob = client.post("/api/agents/bob/accept", headers=ADMIN,
                          json={"call_id": call.call_sid}).get_json()
        assert bob["status"] == "bridged"
        again = client.post("/api/agents/ana/accept", headers=ADMIN,
                            json={"call_id": call.call_sid})
        assert again.status_code == 409
        [twiml] = _updates(cloud, call.call_sid)
        assert ">+34911000333</Number>" in twiml  # Bob's phone, once


def test_an_earlier_talks_pick_up_does_not_hide_a_lost_put_through(settings: Settings) -> None:
    """The caller talked to an agent once (that leg's pick-up is remembered), then queued
    again; the new accept's process dies: the recovery still rings the new agent."""
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        components = client.application.extensions["centralita"].components
        store, bridge = components["queue"], components["bridge"]
        bridge.mark_answered(call.call_sid)  # an earlier talk on this CallSid
        assert client.post("/api/agents/ana/accept", headers=ADMIN,
                           json={"call_id": call.call_sid}).get_json()["bridged"] is True
        assert not bridge.agent_answered(call.call_sid)  # a new leg: not picked up yet
        store.bounce(call.call_sid)  # that leg failed; the caller holds again, first
        bridge.mark_answered(call.call_sid)  # (and an old pick-up lingers)
        store.set_state("ana", "available")
        held = store.call(call.call_sid)
        assert held.status == "reserved" and held.agent_id == "ana"
        from ivr.bridge import claim_name

        assert store.claim(claim_name(call.call_sid, held.reservation_id), ttl_s=30)
        store.accept("ana", call.call_sid)  # an accept that claimed, accepted, and died
        bridge.forget_answer(call.call_sid)  # (put_through forgets it right after claiming)
        store.release(claim_name(call.call_sid, held.reservation_id))  # (its claim lapsed)
        wait_again(client, call)
        _work_high(settings)
        assert len(_updates(cloud, call.call_sid)) == 2  # the first accept's, and the rescue's


def test_a_lost_put_through_being_made_a_callback_cannot_be_rung_meanwhile(
        settings: Settings) -> None:
    """The callback request takes the lost reservation's claim before undoing the answer:
    a recovery job running at that moment rings nobody; with the claim held by a running
    put-through, the request does not undo anything."""
    from ivr.bridge import claim_lost_put_through, claim_name, put_through_again

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        components = client.application.extensions["centralita"].components
        store, bridge = components["queue"], components["bridge"]
        store.accept("ana", call.call_sid)  # the accept's process died
        taken = claim_lost_put_through(store, store.call(call.call_sid))
        assert taken == claim_name(call.call_sid, store.call(call.call_sid).reservation_id)
        assert put_through_again(store, bridge, call.call_sid) == ()  # the job, meanwhile
        assert _updates(cloud, call.call_sid) == []
        assert claim_lost_put_through(store, store.call(call.call_sid)) is None  # held: not "lost"
        store.release(taken)
        assert claim_lost_put_through(store, store.call(call.call_sid)) == taken


def test_a_callback_asked_for_while_being_put_through_is_booked_if_nobody_answered(
        settings: Settings) -> None:
    """The caller presses 1 while a put-through of their call is still running (its
    claim held): nothing is undone then; the caller hangs up with no agent having picked
    up, and the callback they were promised is booked."""
    from ivr.bridge import claim_name

    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        settings, client, call = _holding_with_agent(settings, cloud)
        store = client.application.extensions["centralita"].components["queue"]
        reservation = store.call(call.call_sid).reservation_id
        assert store.claim(claim_name(call.call_sid, reservation), ttl_s=30)
        store.accept("ana", call.call_sid)  # a put-through running (or just dead)
        call.press("1")
        for _ in range(4):
            if call.ended or (call.pending or "").lower() != "gather":
                break
            call.press("1")
        assert call.heard("Le llamaremos lo antes posible")
        assert store.noted(call.call_sid, "callback_wish") == "+34699000111"
        assert call.ended  # the flow said goodbye: Twilio's final status came, unanswered
        call.send_status("completed")  # (a repeated status changes nothing)
        booked = store.call(call.call_sid)
        assert booked is not None and booked.callback_number == "+34699000111", booked
        assert booked.status in ("callback_pending", "reserved") and booked.front
        assert store.agent("ana").state in ("available", "reserved")  # freed, not paused
        assert store.counters()["support"].get("abandoned", 0) == 0
