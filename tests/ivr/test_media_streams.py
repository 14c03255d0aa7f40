"""The streaming path end to end: a live Korean call placed through the fake Twilio
cloud, a real Media Streams websocket session of μ-law frames of espeak-ng speech,
the real Korean Vosk model, and the call moved on by a REST update."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from ivr.app import create_app
from ivr.media_streams import MediaStreamServer, live_speech
from ivr.settings import Settings
from ivr.simulator import SimulatedCall, TestClientTransport
from ivr.speech_turns import OfflineListening, SpeechMode, SpeechTurns
from speech.audio import read_wav, ulaw_encode
from speech.endpointing import EndReason
from speech.recognizer import RecognitionResult
from speech.streaming import BargeIn, UtteranceResult
from tests.fakes import FakeCall, FakeTwilioCloud
from tests.ivr.conftest import AUTH_TOKEN, BASE, flush
from tests.speech.conftest import synth  # noqa: F401  (session fixture: espeak-ng + sox)

FLOWS = Path(__file__).resolve().parents[1] / "flows_ko"
KOREAN_LINE = "+34930009000"
REPROMPT = "예약이나 환불이라고 말씀해 주세요"
FRAME = 160  # 20 ms of 8 kHz μ-law

pytestmark = pytest.mark.slow


@pytest.fixture()
def live_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud) -> Iterator[Flask]:
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        twilio_account_sid=cloud.account_sid, twilio_api_url=cloud.url,
                        flows_dir=FLOWS, secret_key="test-secret")
    app = create_app(settings)
    components = app.extensions["centralita"].components
    service = components["calls"]
    turns = SpeechTurns(cloud.rest_client(), components["flows"], lambda language: None,  # type: ignore[arg-type,return-value]
                        model_available=lambda language: language == "ko")
    service.engine = OfflineListening(service.engine, turns, lambda line: SpeechMode.STREAM)
    cloud.webhook_transport = TestClientTransport(app.test_client())
    yield app
    flush(app)


@pytest.fixture()
def server(live_app: Flask, ko_factory: Callable[[str], object]) -> Iterator[MediaStreamServer]:
    with live_speech(live_app.extensions["centralita"], ko_factory) as srv:  # type: ignore[arg-type]
        yield srv


def live_call(app: Flask, cloud: FakeTwilioCloud) -> SimulatedCall:
    created = cloud.rest_client().create_call(to=KOREAN_LINE, from_="+34611000111",
                                              url=f"{BASE}/voice/incoming")
    call = cloud.answer(created["sid"])
    assert call.heard("예약은 1번")
    body = call.requests[-1].body
    assert 'input="dtmf"' in body and "<Record" not in body  # Vosk listens, not Twilio
    flush(app)  # the session the stream server reads
    return call


def frames(path: Path, lead_s: float = 0.4, tail_s: float = 1.0) -> list[bytes]:
    audio = read_wav(path)
    samples = np.concatenate([np.zeros(int(8000 * lead_s), np.int16), audio.samples,
                              np.zeros(int(8000 * tail_s), np.int16)])
    ulaw = ulaw_encode(samples)
    return [ulaw[i:i + FRAME] for i in range(0, len(ulaw) - FRAME + 1, FRAME)]


async def media_session(url: str, call_sid: str, chunks: list[bytes], stop: bool) -> None:
    """What Twilio sends: connected, start, 20 ms media frames, stop (or a dropped line)."""
    from websockets.asyncio.client import connect

    async with connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "a" * 32,
            "start": {"streamSid": "MZ" + "a" * 32, "callSid": call_sid, "accountSid": "AC1",
                      "tracks": ["inbound"], "customParameters": {},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}}}))
        for n, chunk in enumerate(chunks):
            await ws.send(json.dumps({
                "event": "media", "streamSid": "MZ" + "a" * 32, "sequenceNumber": str(n + 2),
                "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
                          "payload": base64.b64encode(chunk).decode()}}))
        if stop:
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ" + "a" * 32,
                                      "stop": {"callSid": call_sid}}))
        # else: the connection just closes, as when the line drops


def wait_update(fake_call: FakeCall, count: int = 1, limit_s: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + limit_s
    while len(fake_call.updates) < count:
        assert time.monotonic() < deadline, "no call update reached the fake Twilio cloud"
        time.sleep(0.02)
    return fake_call.updates[count - 1]


def test_spoken_option_moves_the_live_call_by_rest_update(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    asyncio.run(media_session(server.url, call.call_sid, frames(synth("예약")), stop=True))
    update = wait_update(cloud.calls[call.call_sid])
    assert "예약 안내입니다" in update["Twiml"] and "<Hangup" in update["Twiml"]
    call.apply_updates()
    assert call.heard("예약 안내입니다") and not call.heard("환불 안내입니다")
    assert call.ended
    flush(live_app)
    events = live_app.extensions["centralita"].components["call_records"].events(call.call_sid)
    assert any(e.get("outcome") == "option:booking" and e.get("input") == "speech:예약@1.00"
               for e in events)


def test_out_of_grammar_speech_reprompts_the_live_call(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    asyncio.run(media_session(server.url, call.call_sid,
                              frames(synth("오늘 날씨가 정말 좋네요")), stop=True))
    update = wait_update(cloud.calls[call.call_sid])
    call.apply_updates()
    assert call.heard(REPROMPT) and not call.ended
    assert "예약 안내입니다" not in update["Twiml"]


def test_line_dropped_mid_utterance_reprompts_not_guesses(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    chunks = frames(synth("예약"), tail_s=0.0)
    asyncio.run(media_session(server.url, call.call_sid, chunks[: len(chunks) * 3 // 4],
                              stop=False))
    wait_update(cloud.calls[call.call_sid])
    call.apply_updates()
    assert call.heard(REPROMPT) and not call.heard("예약 안내입니다")
    assert "dropped mid-utterance" in caplog.text


def test_utterance_for_a_step_the_call_has_left_is_dropped(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.media_streams")
    call = live_call(live_app, cloud)
    turns = server.turns
    assert turns.grammars.get(call.call_sid) is not None  # the caller starts speaking here
    call.press("9")  # ...but a key reached the webhook first: a wrong key, reprompt
    assert call.heard(REPROMPT)
    flush(live_app)
    heard = UtteranceResult(call.call_sid, RecognitionResult("예약", 1.0), EndReason.SILENCE,
                            "ko", ("예약", "환불"), 1.0, 1.0)
    assert turns.on_result(call.call_sid, heard) is None
    assert cloud.calls[call.call_sid].updates == []
    assert "dropped" in caplog.text
    call.press("1")  # the call goes on from where the keypad left it
    assert call.heard("예약 안내입니다")


def test_barge_in_stops_the_prompt_but_keeps_the_turn(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer) -> None:
    call = live_call(live_app, cloud)
    server.turns.on_event(BargeIn(call.call_sid, "MZ1", 0.5))
    update = wait_update(cloud.calls[call.call_sid])
    assert "<Say" not in update["Twiml"] and 'input="dtmf"' in update["Twiml"]
    assert 'numDigits="1"' in update["Twiml"]
    call.apply_updates()
    assert call.pending == "Gather"
    call.press("1")  # the same turn still answers
    assert call.heard("예약 안내입니다")


def test_stream_start_is_rendered_before_the_turn() -> None:
    from call_flows import actions as a
    from ivr import render

    twiml = render.render([a.Gather((a.Prompt("예약은 1번", "ko"),), "ko", speech=False)], "T",
                          stream_url="wss://ivr.example/media", stream_params={"language": "ko"})
    assert twiml.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Start>'
        '<Stream name="listen" track="inbound_track" url="wss://ivr.example/media">'
        '<Parameter name="language" value="ko" /></Stream></Start><Gather ')
