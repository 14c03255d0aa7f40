"""Hold announcements per queue: period, what is said, the callback offer, the music."""

from __future__ import annotations

import io
import wave
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from ivr import hold
from ivr.simulator import SimulatedCall, Simulator
from queueing.rules import parse_rules
from tests.ivr.conftest import wait_again

SUPPORT = "+34930001000"


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as clip:
        return clip.getnframes() / clip.getframerate()


def test_the_music_between_announcements_lasts_the_period() -> None:
    lengths = {hold.MUSIC_URL: hold.MUSIC_SECONDS,
               **{f"/static/hold-{s}.wav": s for s in range(1, hold.MUSIC_SECONDS)}}
    for every in range(15, 301):
        plan = hold.music_plan(every)
        assert sum(lengths[url] * loop for url, loop in plan) == every, plan
        assert all(loop >= 1 for _, loop in plan)  # loop="0" would be endless in Twilio
    assert hold.music_plan(60) == [(hold.MUSIC_URL, 2)]


def test_short_clips_are_served_with_their_length(client: FlaskClient) -> None:
    for seconds in (1, 15, 29):
        answer = client.get(f"/static/hold-{seconds}.wav")
        assert answer.status_code == 200 and answer.mimetype == "audio/wav"
        assert seconds_of(answer.get_data()) == seconds
    assert seconds_of(client.get("/static/hold.wav").get_data()) == hold.MUSIC_SECONDS
    assert client.get("/static/hold-0.wav").status_code == 404
    assert client.get("/static/hold-31.wav").status_code == 404  # longer: loop hold.wav


def _configure(app: Flask, rules: dict[str, Any]) -> None:
    app.extensions["centralita"].components["queue"].configure(parse_rules(rules))


def _sign_in_paused_agent(app: Flask) -> None:
    """An agent who could take the call is signed in, but on a break: the call waits."""
    from queueing.model import AgentState, needs_from_skills

    store = app.extensions["centralita"].components["queue"]
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.PAUSED, reason="break")


def _holding(app: Flask, sim: Simulator, staffed: bool = True) -> SimulatedCall:
    when = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Madrid"))  # a Monday
    app.extensions["centralita"].components["calls"].clock = when.timestamp
    if staffed:
        _sign_in_paused_agent(app)
    call = sim.call(from_="+34699000111", to=SUPPORT).start()
    call.press("1").press("*").press("1")  # Spanish, no account, billing -> queue support
    assert call.queue_listening, call.transcript()
    return call


def _said(root: ET.Element) -> str:
    return " ".join(say.text or "" for say in root.iter("Say"))


def _plays(root: ET.Element) -> list[tuple[str, str | None]]:
    return [(play.text or "", play.get("loop")) for play in root.iter("Play")]


def test_a_queue_announcing_every_60_s_without_estimate(app: Flask, client: FlaskClient,
                                                        sim: Simulator) -> None:
    _configure(app, {"default": {"announce_every_s": 45},
                     "queues": {"support": {"announce_every_s": 60, "announce_estimate": False,
                                            "offer_callback_after_s": 0},
                                "sales": {"announce_every_s": 300}}})
    call = _holding(app, sim)
    root = wait_again(client, call)
    assert _plays(root) == [("/static/hold.wav", "2")]  # 2 x 30 s: the next one in ~60 s
    said = _said(root)
    assert "Es el siguiente en ser atendido" in said  # the position, still
    assert "espera" not in said and "lo antes posible" not in said  # no wait is spoken
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"  # the offer is on
    assert "pulse 1" in said
    assert call.heard("Es el siguiente") and not call.heard("tiempo de espera")


def test_odd_period_and_position_off(app: Flask, client: FlaskClient, sim: Simulator) -> None:
    _configure(app, {"queues": {"support": {"announce_every_s": 75, "announce_position": False,
                                            "offer_callback_after_s": None}}})
    root = wait_again(client, _holding(app, sim))
    assert _plays(root) == [("/static/hold.wav", "2"), ("/static/hold-15.wav", None)]
    said = _said(root)
    assert "siguiente" not in said and "posición" not in said
    assert "Le atenderemos lo antes posible" in said  # no agents: no estimate yet
    assert "pulse 1" not in said  # callbacks: never
    gather = root.find("Gather")
    assert gather is not None and gather.get("action", "").endswith("&offer=0")


def test_the_callback_offer_waits_for_the_queues_threshold(app: Flask, client: FlaskClient,
                                                           sim: Simulator) -> None:
    _configure(app, {"default": {"offer_callback_after_s": 90}})
    call = _holding(app, sim)
    first = wait_again(client, call)
    assert _plays(first) == [("/static/hold.wav", None)]  # the built-in 30 s period
    assert "pulse 1" not in _said(first)  # not offered yet...
    gather = first.find("Gather")
    assert gather is not None and "offer=0" not in gather.get("action", "")  # ...but 1 works
    adapter = app.extensions["centralita"].components["queue_adapter"]
    entered = app.extensions["centralita"].components["queue"].call(call.call_sid).entered_at
    adapter.clock = lambda: entered + 95  # the caller has now waited 95 s
    later = wait_again(client, call)
    gather = later.find("Gather")
    assert gather is not None and gather.get("action", "").startswith("/voice/hold-key?s=")
    assert "offer=0" not in gather.get("action", "")
    assert "pulse 1 en cualquier momento" in _said(later)
    assert _plays(gather) == [("/static/hold.wav", None)]  # the music is inside the Gather


def test_render_hold_exact_twiml() -> None:
    xml = hold.render.hold("en", ["You are next in line."], "T",
                           music=[("/static/hold.wav", 3), ("/static/hold-5.wav", 1)],
                           offer=False)
    assert xml == ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action='
                   '"/voice/hold-key?s=T&amp;offer=0" actionOnEmptyResult="false" input="dtmf" '
                   'method="POST" numDigits="1" timeout="1"><Say language="en-US" '
                   'voice="Polly.Joanna-Neural">You are next in line.</Say>'
                   '<Play loop="3">/static/hold.wav</Play><Play>/static/hold-5.wav</Play>'
                   '</Gather></Response>')


def test_a_key_before_the_offer_does_nothing() -> None:
    assert hold.key_twiml({"Digits": "1", "offer": "0"}) == hold.render.empty()
    assert "<Leave" in hold.key_twiml({"Digits": "1"})


def test_a_caller_may_ask_for_the_callback_before_it_is_offered(
        app: Flask, sim: Simulator) -> None:
    _configure(app, {"default": {"offer_callback_after_s": 600}})
    call = _holding(app, sim)
    assert not call.heard("pulse 1 en cualquier momento")
    call.press("1")  # "at any time by pressing a key": out of the hold, to the callback
    assert not call.queue_listening and not call.ended
    assert call.heard("le llamemos") or call.heard("número"), call.transcript()


def test_nobody_signed_in_is_said_plainly_with_the_callback_at_once(
        app: Flask, client: FlaskClient, sim: Simulator) -> None:
    _configure(app, {"default": {"offer_callback_after_s": 600}})
    call = _holding(app, sim, staffed=False)
    said = _said(wait_again(client, call))
    assert "no hay ningún agente conectado" in said and "Mantenemos su turno" in said
    assert "pulse 1 en cualquier momento" in said  # offered now, not after 10 minutes
    assert "posición" not in said and "siguiente" not in said and "espera" not in said


def test_any_other_key_goes_back_to_the_music_and_keys_still_work(
        app: Flask, sim: Simulator) -> None:
    call = _holding(app, sim)
    call.press("*")  # not a callback request: the hold goes on (Twilio fetches waitUrl again)
    assert call.queue_listening and not call.ended
    call.press("1")  # and the caller can still ask for the callback
    assert not call.queue_listening and not call.ended
