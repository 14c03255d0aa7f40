"""Lines whose menus are heard another way (Twilio's speech, recordings) still hear
"llámenme" while holding when IVR_MEDIA_STREAM_URL is set: the caller's audio is forked
to our Media Streams server once, when they join a queue -- and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import Simulator, TestClientTransport
from queueing.model import AgentState, needs_from_skills
from tests.hours import open_clock, pin_clock
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE, flush

STREAM = "wss://ivr.example/media"
SUPPORT = "+34930001000"


@pytest.fixture(params=["twilio", "vosk-record"])
def streamed_app(request: pytest.FixtureRequest, data_dir: Path,
                 redis_url: str) -> Iterator[Flask]:
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        admin_token=ADMIN_TOKEN, validate_signature=True,
                        secret_key="test-secret", speech_mode=request.param,
                        media_stream_url=STREAM, public_url=BASE)
    app = create_app(settings)
    pin_clock(app, open_clock())  # the demo line is open whenever CI runs
    yield app
    flush(app)


def test_the_stream_starts_once_when_the_caller_joins_the_queue(streamed_app: Flask) -> None:
    components = streamed_app.extensions["centralita"].components
    store = components["queue"]
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.PAUSED, reason="break")  # nobody free: the call holds
    sim = Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(streamed_app.test_client()))
    call = sim.call(from_="+34699000111", to=SUPPORT).start()
    call.press("1").press("*")
    assert call.streams == []  # menus: no audio leaves Twilio in these modes
    call.press("1")  # billing -> queue support
    assert call.queue_listening, call.transcript()
    [fork] = call.streams
    assert fork["url"] == STREAM and fork["params"]["call"] == call.call_sid
    assert fork["params"]["auth"] == components["calls"].stream_auth(call.call_sid)
    # The fork lasts as long as the call: it is claimed for this call, so a later
    # <Enqueue> of the same call (back in line after an agent's phone did not answer)
    # starts no second <Stream> (Twilio would refuse a second stream of the same name).
    assert not components["calls"].writer.records.claim_once(call.call_sid, "hold-stream")


def test_without_the_stream_url_no_audio_is_forked(app: Flask) -> None:
    pin_clock(app, open_clock())
    store = app.extensions["centralita"].components["queue"]
    store.upsert_agent("ana", dict(needs_from_skills({"language": "es", "topic": "billing"})))
    store.set_state("ana", AgentState.PAUSED, reason="break")
    sim = Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(app.test_client()))
    call = sim.call(from_="+34699000111", to=SUPPORT).start()
    call.press("1").press("*").press("1")
    assert call.queue_listening and call.streams == []
