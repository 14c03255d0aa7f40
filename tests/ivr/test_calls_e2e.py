"""Scripted calls through the real webhooks (signed, sealed state, Redis, SQLite)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.simulator import Simulator
from recordings.customers import DEMO_CSV
from tests.hours import pin_clock
from tests.ivr.conftest import flush

MADRID = ZoneInfo("Europe/Madrid")
SUPPORT, CATALAN, INTERNATIONAL = "+34930001000", "+34930001001", "+442071838750"
UNKNOWN = "+34699000111"


def at(app: Flask, when: datetime) -> None:
    """Pin the server's clock (business hours are real: Madrid time), for the calls and
    for the router's callbacks alike."""
    pin_clock(app, when.timestamp)


@pytest.fixture()
def open_app(app: Flask) -> Flask:
    at(app, datetime(2026, 11, 23, 10, 30, tzinfo=MADRID))  # a Monday morning
    return app


@pytest.fixture()
def with_customers(open_app: Flask) -> Flask:
    database = open_app.extensions["centralita"].components["database"]
    database.customers.import_csv(DEMO_CSV)
    return open_app


def test_spanish_by_keypad_hours_answer_then_goodbye(open_app: Flask, sim: Simulator,
                                                     redis_client: redis.Redis) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    assert call.heard("Para español, pulse 1")
    call.press("1")
    assert call.heard("Bienvenido al servicio de atención al cliente")
    assert call.heard("número de cliente de seis cifras")
    call.press("*")
    assert call.heard("¿En qué podemos ayudarle?")
    call.press("3")
    assert call.heard("de lunes a viernes, de nueve de la mañana")
    call.press("2")
    assert call.heard("Gracias por llamar a Centralita")
    call.press("2")  # declines the post-call survey
    assert call.ended
    flush(open_app)
    nodes = [e for e in redis_client.xrange(f"ivr:call:{call.call_sid}:events")]
    assert any("hours_answer" in fields["data"] for _, fields in nodes)


def test_catalan_by_voice(open_app: Flask, sim: Simulator) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.say("català", confidence=0.92)
    assert call.heard("Benvingut al servei d'atenció al client")
    call.say("no el tinc", confidence=0.9)
    assert call.heard("En què el podem ajudar?")
    call.say("horari", confidence=0.88)
    assert call.heard("de dilluns a divendres, de nou del matí")


def test_english_line_skips_the_language_menu_and_confirms_unsure_speech(
        open_app: Flask, sim: Simulator) -> None:
    call = sim.call(from_=UNKNOWN, to=INTERNATIONAL).start()
    assert call.heard("Welcome to Centralita customer service")
    assert not call.heard("Para español")
    call.press("*")
    call.say("billing", confidence=0.55)  # middle confidence: active listening
    texts = " ".join(call.heard_texts[-2:])
    assert "billing" in texts.lower() and ("right" in texts.lower() or "?" in texts)


def test_known_caller_greeted_by_name_and_asked_about_open_follow_up(
        with_customers: Flask, sim: Simulator) -> None:
    call = sim.call(from_="+34932000003", to=SUPPORT).start()  # Manuel, Spanish, open follow-up
    assert not call.heard("Para español")
    assert call.heard("Hola, Manuel Ruiz Calvo")
    assert call.heard("Devolución pendiente del pedido 100004")


def test_known_caller_by_number_in_another_format_and_order_status(with_customers: Flask,
                                                                    sim: Simulator) -> None:
    call = sim.call(from_="+34611000002", to=SUPPORT).start()  # Jordi, Catalan
    assert call.heard("Hola, Jordi Puig i Serra")
    call.press("2")
    assert call.heard("enviat el 20 de novembre")


def test_unknown_caller_identified_by_account_number(with_customers: Flask,
                                                      sim: Simulator) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1")
    call.press("100003")
    assert call.heard("Ha indicado el número")
    call.press("1")
    assert call.heard("Emily Carter")


def test_route_to_agent_enqueues_with_skills_and_announces_the_wait(open_app: Flask,
                                                                    sim: Simulator) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1")
    call.press("*")
    call.press("0")
    enqueue = [r for r in call.requests if "/voice/wait" in r.url]
    assert enqueue, "the caller should be holding on our waitUrl"
    assert call.heard("Si prefiere que le llamemos sin perder su turno, pulse 1")
    call.queue_outcome("bridged", after=30, talk=60)


def test_closed_line_offers_voicemail_and_nobody_is_queued(app: Flask, sim: Simulator) -> None:
    at(app, datetime(2026, 11, 22, 12, 0, tzinfo=MADRID))  # a Sunday
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1")
    assert call.heard("En este momento estamos cerrados")
    call.press("1")
    call.record(seconds=12)
    assert not any("/voice/wait" in r.url for r in call.requests)


def test_silent_caller_is_never_stuck(open_app: Flask, sim: Simulator) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    for _ in range(12):
        if call.ended or (call.pending or "").lower() != "gather":
            break
        call.silence()
    # After reprompts and the keypad-only version, the caller reaches a person.
    assert call.ended or (call.pending or "").lower() != "gather"
    assert any("/voice/wait" in r.url for r in call.requests) or call.ended


def test_queued_call_is_in_our_router_and_hears_its_position(open_app: Flask,
                                                            sim: Simulator) -> None:
    from queueing.model import AgentState, needs_from_skills

    store = open_app.extensions["centralita"].components["queue"]
    # An agent who could answer is signed in but on a break: callers wait, and hear it.
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.PAUSED, reason="break")
    first = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    first.press("1").press("*").press("1")  # Spanish, no account, billing
    assert store.hold_info(first.call_sid).position == 1
    assert first.heard("Es el siguiente en ser atendido")
    second = sim.call(from_="+34699000222", to=SUPPORT).start()
    second.press("1").press("*").press("1")
    assert store.hold_info(second.call_sid).position == 2
    assert second.heard("Está en la posición 2")
    # The first caller gives up: recorded as abandoned, the second moves up.
    first.queue_outcome("hangup", after=40)
    assert store.hold_info(second.call_sid).position == 1
    assert [a["call_id"] for a in store.abandons()] == [first.call_sid]


def test_waiting_caller_hears_an_honest_wait_range_from_the_live_estimator(
        open_app: Flask, sim: Simulator) -> None:
    from queueing.model import AgentState, needs_from_skills

    store = open_app.extensions["centralita"].components["queue"]
    needs = needs_from_skills({"language": "es", "topic": "billing"})
    store.upsert_agent("ana", dict(needs))
    store.set_state("ana", AgentState.AVAILABLE)
    busy = sim.call(from_="+34699000333", to=SUPPORT).start()
    busy.press("1").press("*").press("1")  # reserved straight away for Ana
    assert store.hold_info(busy.call_sid).status == "reserved"
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("1")
    assert store.hold_info(call.call_sid).position == 1
    spoken = " ".join(call.heard_texts)
    assert "tiempo de espera estimado" in spoken, spoken
    estimate = open_app.extensions["centralita"].components["queue_adapter"].estimate(
        call.call_sid)
    assert estimate is not None and estimate.low_s is not None
    assert 0 <= estimate.low_s <= estimate.high_s


def test_press_one_while_holding_gives_a_callback_that_keeps_the_place(
        open_app: Flask, sim: Simulator) -> None:
    store = open_app.extensions["centralita"].components["queue"]
    ahead = sim.call(from_="+34699000444", to=SUPPORT).start()
    ahead.press("1").press("*").press("1")
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("1")
    assert store.hold_info(call.call_sid).position == 2
    call.press("1")  # while holding: "pulse 1 para que le llamemos"
    for _ in range(4):  # confirm the number the flow read back
        if call.ended or (call.pending or "").lower() != "gather":
            break
        call.press("1")
    held = store.call(call.call_sid)
    assert held is not None and held.status == "callback_pending", (held, call.heard_texts[-4:])
    assert held.callback_number == UNKNOWN
    assert held.hours_line == "support"  # dialled within the hours of the line they called
    assert store.hold_info(call.call_sid).position == 2  # the place is kept


def test_agent_hangs_up_first_and_the_caller_is_offered_the_survey(
        open_app: Flask, sim: Simulator, client: FlaskClient) -> None:
    from twilio.request_validator import RequestValidator

    from tests.ivr.conftest import AUTH_TOKEN, BASE

    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("0")  # to a human: holding in our queue
    flush(open_app)

    def agent_leg_ended(status: str) -> str:
        params = {"CallSid": call.call_sid, "DialCallStatus": status,
                  "AccountSid": "AC" + "0" * 32}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            BASE + "/voice/agent-dial-result", params)
        response = client.post("/voice/agent-dial-result", data=params,
                               headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200 and response.mimetype == "text/xml"
        return response.get_data(as_text=True)

    # The agent talked and hung up first: the caller's flow goes on to the survey.
    answer = agent_leg_ended("completed")
    assert "<Gather" in answer and "dos preguntas breves" in answer


def test_agent_accepts_but_never_answers_and_the_caller_keeps_the_head_of_the_line(
        open_app: Flask, sim: Simulator, client: FlaskClient) -> None:
    from twilio.request_validator import RequestValidator

    from queueing.model import AgentState, CallStatus, needs_from_skills
    from tests.ivr.conftest import AUTH_TOKEN, BASE

    store = open_app.extensions["centralita"].components["queue"]
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.AVAILABLE)
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("1")  # billing: reserved for Ana at once
    later = sim.call(from_="+34699000555", to=SUPPORT).start()
    later.press("1").press("*").press("1")  # waits behind
    flush(open_app)
    store.accept("ana", call.call_sid)  # Ana accepts; the bridge dials her phone...
    params = {"CallSid": call.call_sid, "DialCallStatus": "no-answer",
              "AccountSid": "AC" + "0" * 32}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        BASE + "/voice/agent-dial-result", params)
    answer = client.post("/voice/agent-dial-result", data=params,
                         headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    # ...nobody picks up: the caller is told, keeps the head of the line, and holds again.
    assert "el agente no ha podido atenderle" in text and "<Enqueue" in text
    held = store.call(call.call_sid)
    assert held is not None and held.status == CallStatus.WAITING and held.front
    assert store.hold_info(call.call_sid).position == 1
    ana = store.agent("ana")
    assert ana is not None and ana.state == AgentState.PAUSED and ana.pause_reason == "no_answer"
    # A retry of the same callback changes nothing.
    again = client.post("/voice/agent-dial-result", data=params,
                        headers={"X-Twilio-Signature": signature})
    assert again.status_code == 200 and store.hold_info(call.call_sid).position == 1
