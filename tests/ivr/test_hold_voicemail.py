"""A caller aged into their queue's ``offer_voicemail`` step hears the offer, presses 2,
leaves a message and is taken out of the line as voicemail.

Real webhooks, real Redis router, real SQLite and RQ after-call job; Twilio's cloud is
the hand-written fake (the REST update that takes the call out of Twilio's queue, the
recording the after-call job fetches)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr import hold, render
from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import SimulatedCall, Simulator, TestClientTransport
from queueing.model import AgentState, CallStatus, needs_from_skills
from queueing.rules import parse_rules
from tests.fakes import FakeTwilioCloud
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE, flush
from tests.jobs import run_jobs

SUPPORT = "+34930001000"
UNKNOWN = "+34699000111"
AGED_RULES = {"default": {"offer_callback_after_s": 600,
                          "steps": [{"after_s": 300, "offer_voicemail": True}]}}
OFFER = "deje un mensaje tras la señal pulsando 2"


@pytest.fixture()
def vm_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud) -> Iterator[Flask]:
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        admin_token=ADMIN_TOKEN, validate_signature=True,
                        secret_key="test-secret", twilio_account_sid=cloud.account_sid,
                        twilio_api_url=cloud.url, public_url=BASE)
    app = create_app(settings)
    app.config["TESTING"] = True
    cloud.webhook_transport = TestClientTransport(app.test_client())
    yield app
    flush(app)


@pytest.fixture()
def vm_sim(vm_app: Flask) -> Simulator:
    return Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(vm_app.test_client()))


def _components(app: Flask) -> dict[str, Any]:
    components: dict[str, Any] = app.extensions["centralita"].components
    return components


def _holding(app: Flask, sim: Simulator, cloud: FakeTwilioCloud | None = None
             ) -> SimulatedCall:
    """A caller in the support queue on a Monday morning, an agent signed in on a break."""
    components = _components(app)
    components["queue"].configure(parse_rules(AGED_RULES))
    when = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    components["calls"].clock = when.timestamp
    store = components["queue"]
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.PAUSED, reason="break")
    call = sim.call(from_=UNKNOWN, to=SUPPORT)
    if cloud is not None:
        cloud.track(call)  # REST updates of this call reach it, as on Twilio
    call.start()
    call.press("1").press("*").press("1")  # Spanish, no account, billing -> support
    assert call.queue_listening, call.transcript()
    return call


def _age(app: Flask, call: SimulatedCall, seconds: float) -> None:
    """The router's clock: the caller has now waited ``seconds``."""
    components = _components(app)
    entered = components["queue"].call(call.call_sid).entered_at
    components["queue_adapter"].clock = lambda: entered + seconds


def test_aged_caller_leaves_a_voicemail_and_leaves_the_line_as_voicemail(
        vm_app: Flask, vm_sim: Simulator, cloud: FakeTwilioCloud, client: FlaskClient,
        monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str,
        redis_client: redis.Redis) -> None:
    call = _holding(vm_app, vm_sim, cloud)
    assert not call.heard(OFFER)  # 0 s waited: no offer yet
    call.press("2")  # and the key does nothing before it
    assert call.queue_listening and cloud.calls[call.call_sid].updates == []

    _age(vm_app, call, 301)
    call.press("*")  # back to the music: Twilio fetches the waitUrl again
    assert call.heard("Si lo prefiere, deje un mensaje tras la señal pulsando 2.")
    call.press("2")
    [update] = cloud.calls[call.call_sid].updates
    assert update["Url"].startswith(f"{BASE}/voice/hold-voicemail?s=")
    call.apply_updates()  # Twilio: out of the queue ("redirected"), then our URL
    assert call.heard("Deje su mensaje después de la señal")
    assert call.pending == "Record"
    recording = cloud.add_recording(seconds=12, call_sid=call.call_sid)
    call.record(recording.url, seconds=12, sid=recording.sid)
    assert call.heard("hemos recibido su mensaje") and call.ended
    flush(vm_app)

    store = _components(vm_app)["queue"]
    held = store.call(call.call_sid)
    assert held is not None and held.status == CallStatus.VOICEMAIL  # out of the line...
    assert redis_client.hget(f"q:call:{call.call_sid}", "end_reason") == "voicemail"
    assert store.abandons() == []  # a message left is not an abandonment
    counted = store.counters()["support"]
    assert counted.get("voicemail") == 1 and not counted.get("abandoned")
    # ...so the agent coming back from the break is not given it.
    assert store.set_state("ana", AgentState.AVAILABLE) is None
    assert store.agent("ana").state == AgentState.AVAILABLE

    events = _components(vm_app)["call_records"].events(call.call_sid)
    [kept] = [e for e in events if e.get("kind") == "recording"]
    assert kept["purpose"] == "voicemail" and kept["recording_sid"] == recording.sid
    assert kept["duration_s"] == 12
    assert any(e.get("kind") == "queue_left" and e.get("result") == "voicemail"
               for e in events)

    # The after-call job files it like every voicemail: fetched from Twilio, kept.
    for key, value in {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
                       "IVR_SECRET_KEY": "test-secret", "IVR_FINALIZE_SETTLE_S": "0",
                       "TWILIO_ACCOUNT_SID": cloud.account_sid,
                       "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_API_URL": cloud.url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    run_jobs(redis_url)
    doc = client.get(f"/api/calls/{call.call_sid}",
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()
    assert doc["outcome"] == "voicemail"
    assert doc["summary"]["body"]["follow_up"]["reasons"] == ["voicemail left (12 s)"]
    assert len(doc["recording_ids"]) == 1


def test_nothing_said_after_the_beep_ends_the_call_without_a_message(
        vm_app: Flask, vm_sim: Simulator, cloud: FakeTwilioCloud) -> None:
    call = _holding(vm_app, vm_sim, cloud)
    _age(vm_app, call, 400)
    call.press("*").press("2").apply_updates()
    call.silence()  # <Record> ends with nothing: Twilio follows the redirect
    assert call.heard("No hemos recibido ningún mensaje") and call.ended
    flush(vm_app)
    events = _components(vm_app)["call_records"].events(call.call_sid)
    assert not any(e.get("kind") == "recording" for e in events)
    assert any(e.get("outcome") == "no_recording" for e in events)


def test_when_twilio_refuses_the_move_the_caller_holds_on_and_keys_work(
        vm_app: Flask, vm_sim: Simulator, cloud: FakeTwilioCloud,
        caplog: pytest.LogCaptureFixture) -> None:
    call = _holding(vm_app, vm_sim, cloud)
    _age(vm_app, call, 400)
    call.press("*")
    cloud.fail(times=5, status=500)  # the REST API is down for a while
    call.press("2")
    assert call.queue_listening and not call.ended
    assert "pressed 2 for the voicemail but holds on" in caplog.text
    assert _components(vm_app)["queue"].call(call.call_sid).status.active
    call.press("1")  # the callback still works
    assert not call.queue_listening and not call.ended


def test_without_the_rest_api_no_voicemail_is_offered(
        app: Flask, sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    """The plain app fixture has no TWILIO_ACCOUNT_SID: a <Record> cannot be reached
    from Twilio's queue, so the offer is not made (and the log says why)."""
    caplog.set_level(logging.WARNING, logger="ivr.hold")
    call = _holding(app, sim)
    _age(app, call, 400)
    call.press("*")
    assert not call.heard(OFFER)
    assert "offers voicemail but the hold cannot reach it" in caplog.text


def test_the_offer_is_said_in_each_language() -> None:
    for language, words in (("es", "pulsando 2"), ("ca", "prement 2"), ("en", "pressing 2")):
        said = hold.announcement(language, 3, 120, 300, voicemail=True)
        assert words in said[-1]
        assert words not in " ".join(hold.announcement(language, 3, 120, 300))
    unstaffed = hold.announcement("en", None, None, None, staffed=False, offer=False,
                                  voicemail=True)
    assert unstaffed[-1] == "If you prefer, leave a message after the tone by pressing 2."


def test_hold_voicemail_exact_twiml() -> None:
    xml = render.hold_voicemail("en", "Leave your message.", "T", max_length_s=120,
                                silence_s=5)
    assert xml == ('<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US" '
                   'voice="Polly.Joanna-Neural">Leave your message.</Say><Record action='
                   '"/voice/hold-voicemail-done?s=T" finishOnKey="#" maxLength="120" '
                   'method="POST" playBeep="true" timeout="5" trim="trim-silence" />'
                   '<Redirect method="POST">/voice/hold-voicemail-done?s=T&amp;empty=1'
                   '</Redirect></Response>')
    assert 'vm=1' in render.hold("es", [], "T", voicemail=True)
    assert 'vm=1' not in render.hold("es", [], "T")


def test_key_2_without_the_offer_does_nothing() -> None:
    assert hold.key_twiml({"Digits": "2"}) == render.empty()
