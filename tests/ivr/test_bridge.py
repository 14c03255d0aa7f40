"""An accepted call is put through to the agent: the caller's live call is updated."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import Simulator, TestClientTransport
from tests.fakes import FakeCall, FakeTwilioCloud
from tests.hours import pin_clock
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPEN = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Madrid")).timestamp


def test_agent_accepts_and_the_caller_is_dialled_through(settings: Settings) -> None:
    with FakeTwilioCloud("AC" + "1" * 32, AUTH_TOKEN) as cloud:
        app = create_app(settings.with_(twilio_account_sid=cloud.account_sid,
                                        twilio_api_url=cloud.url, public_url=BASE))
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
        answer = client.post("/api/agents/ana/accept", headers=ADMIN,
                             json={"call_id": call.call_sid}).get_json()
        assert answer["bridged"] is True, answer
        updates = [r for r in cloud.requests if r.path.endswith(f"/Calls/{call.call_sid}.json")
                   and r.method == "POST"]
        assert updates, cloud.requests
        twiml = updates[-1].form["Twiml"][0]
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
