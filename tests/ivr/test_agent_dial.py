"""Putting callers through to agents, and what follows the agent's leg, in every case.

Real Redis and router; Twilio's REST API is the fake cloud over HTTP, so an accept
really updates (or fails to update) the caller's live call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from ivr import render
from ivr.app import create_app
from ivr.settings import Settings
from queueing.model import AgentState, CallStatus
from tests.fakes import FakeTwilioCloud
from tests.hours import open_clock, pin_clock
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CALLER = "CA" + "c" * 32
LEG = "CA" + "d" * 32


@pytest.fixture()
def wired(settings: Settings, cloud: FakeTwilioCloud) -> Iterator[Flask]:
    app = create_app(settings.with_(twilio_account_sid=cloud.account_sid,
                                    twilio_api_url=cloud.url, public_url=BASE))
    pin_clock(app, open_clock())  # callbacks are dialled only while the line is open
    yield app
    app.extensions["centralita"].components["writer"].flush(5)


def _store(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["centralita"].components["queue"]


def _reserve_for_ana(app: Flask, callback: str | None = None) -> None:
    store = _store(app)
    store.enqueue(CALLER, "support", {"lang:es": 1}, now=1000.0)
    if callback:
        store.request_callback(CALLER, callback, now=1001.0)
    store.upsert_agent("ana", {"lang:es": 1})
    app.extensions["centralita"].components["bridge"].set_contact("ana", "+34911000222")
    assignment = store.set_state("ana", AgentState.AVAILABLE)
    assert assignment is not None and assignment.call_id == CALLER


def dial_result(client: FlaskClient, params: dict[str, str], call: str = CALLER) -> str:
    path = f"/voice/agent-dial-result?call={call}"
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return response.get_data(as_text=True)


def test_the_dial_action_names_the_router_call() -> None:
    twiml = render.connect_to_agent("client:ana", "es", callback=True, call_id=CALLER)
    assert f'action="/voice/agent-dial-result?call={CALLER}"' in twiml
    assert 'action="/voice/agent-dial-result"' in render.connect_to_agent("+34911000222", "es")


def test_accept_rings_the_agent_through_twilio(wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    answer = wired.test_client().post("/api/agents/ana/accept", headers=ADMIN,
                                      json={"call_id": CALLER})
    assert answer.status_code == 200 and answer.get_json()["bridged"] is True
    twiml = cloud.calls[CALLER].updates[-1]["Twiml"]
    assert f'action="{BASE}/voice/agent-dial-result?call={CALLER}"' in twiml  # absolute
    assert _store(wired).call(CALLER).status == CallStatus.BRIDGED


def test_a_repeated_accept_sends_nothing_again(wired: Flask, cloud: FakeTwilioCloud) -> None:
    """A double click, or a retry after a timeout, while already talking: the agent's
    leg must not be restarted mid-conversation."""
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    client = wired.test_client()
    first = client.post("/api/agents/ana/accept", headers=ADMIN, json={"call_id": CALLER})
    again = client.post("/api/agents/ana/accept", headers=ADMIN, json={"call_id": CALLER})
    assert first.get_json()["status"] == "bridged"
    assert again.status_code == 200 and again.get_json()["status"] == "already_bridged"
    assert len(cloud.calls[CALLER].updates) == 1  # one <Dial>, not two


def test_accepting_a_callback_rings_nobody_the_customer_answering_does(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired, callback="+34699000555")
    cloud.add_live_call(CALLER)  # even were the original call still up...
    answer = wired.test_client().post("/api/agents/ana/accept", headers=ADMIN,
                                      json={"call_id": CALLER})
    assert answer.status_code == 200 and answer.get_json()["status"] == "calling_customer"
    assert answer.get_json()["bridged"] is False
    assert cloud.calls[CALLER].updates == []  # ...it is not pulled onto the agent's phone
    assert _store(wired).call(CALLER).status == CallStatus.RESERVED


def test_accept_when_twilio_fails_puts_the_call_back_at_the_head_and_answers_502(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    cloud.fail(times=10, status=500)  # every retry of the update fails
    answer = wired.test_client().post("/api/agents/ana/accept", headers=ADMIN,
                                      json={"call_id": CALLER})
    assert answer.status_code == 502
    assert "head of the line" in answer.get_json()["detail"]
    call = _store(wired).call(CALLER)
    assert call.status == CallStatus.WAITING and call.front
    ana = _store(wired).agent("ana")
    assert ana.state == AgentState.PAUSED and ana.pause_reason == "no_answer"
    assert _store(wired).counters()["support"].get("answered", 0) == 0  # the answer undone


def test_accept_of_a_call_twilio_already_ended_answers_409_and_frees_the_agent(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER, status="completed")  # hung up; the status was lost
    answer = wired.test_client().post("/api/agents/ana/accept", headers=ADMIN,
                                      json={"call_id": CALLER})
    assert answer.status_code == 409 and "hung up" in answer.get_json()["detail"]
    assert _store(wired).call(CALLER).status == CallStatus.ABANDONED
    assert _store(wired).agent("ana").state == AgentState.AVAILABLE
    assert [a["call_id"] for a in _store(wired).abandons()] == [CALLER]


def test_accept_of_a_call_the_router_knows_ended_answers_409(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    _store(wired).end_call(CALLER, reason="completed")
    answer = wired.test_client().post("/api/agents/ana/accept", headers=ADMIN,
                                      json={"call_id": CALLER})
    assert answer.status_code == 409 and "already over" in answer.get_json()["detail"]
    assert not [r for r in cloud.requests if r.method == "POST"]  # Twilio never asked


def test_callback_leg_agent_no_answer_keeps_the_place_and_pauses_the_agent(
        wired: Flask) -> None:
    _reserve_for_ana(wired, callback="+34699000555")
    store = _store(wired)
    store.callback_result(CALLER, answered=True)  # the customer picked up our call
    text = dial_result(wired.test_client(), {"CallSid": LEG, "DialCallStatus": "no-answer",
                                             "CallStatus": "in-progress"})
    assert "le volveremos a llamar" in text and "<Hangup" in text
    call = store.call(CALLER)
    # Still on the line: called again after the queue's retry delay, not at once
    # (tests/queueing/test_callback_second_audit.py), and no attempt counted.
    assert call.status == CallStatus.CALLBACK_PENDING and call.callback_attempts == 0
    ana = store.agent("ana")
    assert ana.state == AgentState.PAUSED and ana.pause_reason == "no_answer"
    again = dial_result(wired.test_client(), {"CallSid": LEG, "DialCallStatus": "no-answer",
                                              "CallStatus": "in-progress"})
    assert "<Hangup" in again and store.call(CALLER).status == CallStatus.CALLBACK_PENDING


def test_callback_leg_talk_over_completes_the_call_and_the_agent_wraps_up(
        wired: Flask) -> None:
    _reserve_for_ana(wired, callback="+34699000555")
    store = _store(wired)
    store.callback_result(CALLER, answered=True)
    text = dial_result(wired.test_client(), {"CallSid": LEG, "DialCallStatus": "completed",
                                             "CallStatus": "in-progress"})
    assert "<Hangup" in text
    assert store.call(CALLER).status == CallStatus.COMPLETED
    assert store.agent("ana").state in (AgentState.WRAP_UP, AgentState.AVAILABLE)


def test_caller_hung_up_while_the_agent_rang_is_abandoned_not_bounced(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    client = wired.test_client()
    assert client.post("/api/agents/ana/accept", headers=ADMIN,
                       json={"call_id": CALLER}).status_code == 200
    text = dial_result(client, {"CallSid": CALLER, "DialCallStatus": "canceled",
                                "CallStatus": "completed"})
    assert "<Hangup" in text and "<Enqueue" not in text
    store = _store(wired)
    assert store.call(CALLER).status == CallStatus.ABANDONED
    assert store.agent("ana").state == AgentState.AVAILABLE
    assert store.waiting() == []  # no ghost left in line
    # The status callback that follows changes nothing more.
    dial_result(client, {"CallSid": CALLER, "DialCallStatus": "canceled",
                         "CallStatus": "completed"})
    assert len(store.abandons()) == 1


def _signed(client: FlaskClient, path: str, params: dict[str, str]):  # type: ignore[no-untyped-def]
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def test_status_before_the_dial_result_while_the_agent_rang_is_an_abandonment(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    """Twilio's final status of the caller's call can beat the agent's dial result:
    without the agent's pick-up noted, the caller left while the phone rang."""
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    client = wired.test_client()
    assert client.post("/api/agents/ana/accept", headers=ADMIN,
                       json={"call_id": CALLER}).status_code == 200
    done = _signed(client, "/voice/status", {"CallSid": CALLER, "CallStatus": "completed",
                                             "From": "+34699000111"})
    assert done.status_code == 204
    wired.extensions["centralita"].components["writer"].flush(5)
    store = _store(wired)
    assert store.call(CALLER).status == CallStatus.ABANDONED
    assert store.agent("ana").state == AgentState.AVAILABLE  # freed, not wrapping up
    assert len(store.abandons()) == 1
    # The late dial result changes nothing more.
    dial_result(client, {"CallSid": CALLER, "DialCallStatus": "canceled",
                         "CallStatus": "completed"})
    assert len(store.abandons()) == 1 and store.call(CALLER).status == CallStatus.ABANDONED


def test_the_agent_picking_up_is_noted_and_the_call_then_completes(
        wired: Flask, cloud: FakeTwilioCloud) -> None:
    _reserve_for_ana(wired)
    cloud.add_live_call(CALLER)
    client = wired.test_client()
    client.post("/api/agents/ana/accept", headers=ADMIN, json={"call_id": CALLER})
    picked = _signed(client, f"/voice/agent-answered?call={CALLER}",
                     {"CallSid": LEG, "ParentCallSid": CALLER, "CallStatus": "in-progress"})
    # An empty document: anything else would be played to the agent before joining.
    assert picked.status_code == 200 and picked.mimetype == "text/xml"
    assert picked.get_data(as_text=True).endswith("<Response />")
    _signed(client, "/voice/status", {"CallSid": CALLER, "CallStatus": "completed",
                                      "From": "+34699000111"})
    wired.extensions["centralita"].components["writer"].flush(5)
    store = _store(wired)
    assert store.call(CALLER).status == CallStatus.COMPLETED
    assert store.abandons() == []


def _callback_answered(wired: Flask) -> tuple[FlaskClient, str]:
    """A callback: the customer picks up our call, and hears the agent being rung."""
    _reserve_for_ana(wired, callback="+34699000555")
    store = _store(wired)
    res = wired.extensions["centralita"].components["queue"].redis.hget(
        f"q:call:{CALLER}", "res_id")
    client = wired.test_client()
    status = {"CallSid": LEG, "CallStatus": "in-progress"}
    _signed(client, f"/voice/callback-status?call={CALLER}&res={res}", status)
    assert store.call(CALLER).status == CallStatus.BRIDGED
    greeting = _signed(client, f"/voice/callback?call={CALLER}", status)
    assert "<Dial" in greeting.get_data(as_text=True)
    return client, str(res)


def test_a_callback_customer_who_leaves_before_the_agent_picks_up_is_not_served(
        wired: Flask) -> None:
    client, res = _callback_answered(wired)
    _signed(client, f"/voice/callback-status?call={CALLER}&res={res}",
            {"CallSid": LEG, "CallStatus": "completed"})
    store = _store(wired)
    call = store.call(CALLER)
    assert call.status == CallStatus.CALLBACK_PENDING  # an attempt that did not reach them
    assert call.callback_attempts == 1
    assert store.agent("ana").state == AgentState.AVAILABLE  # freed: nobody failed


def test_a_callback_the_agent_picked_up_completes_when_the_leg_ends(wired: Flask) -> None:
    client, res = _callback_answered(wired)
    _signed(client, f"/voice/agent-answered?call={CALLER}",
            {"CallSid": "CA" + "e" * 32, "ParentCallSid": LEG, "CallStatus": "in-progress"})
    _signed(client, f"/voice/callback-status?call={CALLER}&res={res}",
            {"CallSid": LEG, "CallStatus": "completed"})
    assert _store(wired).call(CALLER).status == CallStatus.COMPLETED
