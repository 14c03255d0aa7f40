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
FORMS_LINE = "+34930009001"  # tests/flows_ko/ko_forms.yaml: confirm, then two digits
MENU_PROMPT_S = 4.8  # the menu prompt's estimate: 24 Hangul syllables at 5 per second
REPROMPT = "예약이나 환불이라고 말씀해 주세요"
FRAME = 160  # 20 ms of 8 kHz μ-law

pytestmark = pytest.mark.slow


def streamed_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud, flows_dir: Path,
                 public_url: str | None) -> Flask:
    """An app whose lines listen through the media stream (Korean model available), its
    Twilio REST API the fake cloud, which reaches the app's webhooks in-process."""
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        twilio_account_sid=cloud.account_sid, twilio_api_url=cloud.url,
                        flows_dir=flows_dir, secret_key="test-secret", public_url=public_url)
    app = create_app(settings)
    components = app.extensions["centralita"].components
    service = components["calls"]
    turns = SpeechTurns(cloud.rest_client(), components["flows"], lambda language: None,  # type: ignore[arg-type,return-value]
                        model_available=lambda language: language == "ko")
    service.engine = OfflineListening(service.engine, turns, lambda line: SpeechMode.STREAM)
    service.stream_url = "wss://ivr.example/media"  # as IVR_MEDIA_STREAM_URL: <Start><Stream>
    cloud.webhook_transport = TestClientTransport(app.test_client())
    return app


@pytest.fixture()
def live_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud) -> Iterator[Flask]:
    app = streamed_app(data_dir, redis_url, cloud, FLOWS, BASE)
    yield app
    flush(app)


@pytest.fixture()
def server(live_app: Flask, ko_factory: Callable[[str], object]) -> Iterator[MediaStreamServer]:
    with live_speech(live_app.extensions["centralita"], ko_factory) as srv:  # type: ignore[arg-type]
        yield srv


def live_call(app: Flask, cloud: FakeTwilioCloud, to: str = KOREAN_LINE,
              first: str = "예약은 1번") -> SimulatedCall:
    created = cloud.rest_client().create_call(to=to, from_="+34611000111",
                                              url=f"{BASE}/voice/incoming")
    call = cloud.answer(created["sid"])
    assert call.heard(first)
    body = call.requests[-1].body
    assert 'input="dtmf"' in body and "<Record" not in body  # Vosk listens, not Twilio
    [stream] = call.streams  # the <Start><Stream> of the first answer
    assert stream["url"] == "wss://ivr.example/media"
    STREAM_PARAMS[call.call_sid] = stream["params"]
    flush(app)  # the session the stream server reads
    return call


# What each call's <Stream> told Twilio to send back in "start" (customParameters).
STREAM_PARAMS: dict[str, dict[str, str]] = {}



def frames(path: Path, lead_s: float = 0.4, tail_s: float = 1.0) -> list[bytes]:
    audio = read_wav(path)
    samples = np.concatenate([np.zeros(int(8000 * lead_s), np.int16), audio.samples,
                              np.zeros(int(8000 * tail_s), np.int16)])
    ulaw = ulaw_encode(samples)
    return [ulaw[i:i + FRAME] for i in range(0, len(ulaw) - FRAME + 1, FRAME)]


async def media_session(url: str, call_sid: str, chunks: list[bytes], stop: bool,
                        then: list[tuple[Callable[[], bool], list[bytes]]] = (),  # type: ignore[assignment]
                        params: dict[str, str] | None = None) -> None:
    """What Twilio sends: connected, start, 20 ms media frames, stop (or a dropped line).

    ``then``: further turns on the same stream, each (wait until this holds, frames)."""
    from websockets.asyncio.client import connect

    async with connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "a" * 32,
            "start": {"streamSid": "MZ" + "a" * 32, "callSid": call_sid, "accountSid": "AC1",
                      "tracks": ["inbound"],
                      "customParameters": STREAM_PARAMS.get(call_sid, {}) if params is None
                      else params,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}}}))
        n = 0
        for ready, turn in [(lambda: True, chunks), *then]:
            deadline = time.monotonic() + 30
            while not ready():
                assert time.monotonic() < deadline, "the call was not moved on"
                await asyncio.sleep(0.02)
            for chunk in turn:
                await ws.send(json.dumps({
                    "event": "media", "streamSid": "MZ" + "a" * 32, "sequenceNumber": str(n + 2),
                    "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
                              "payload": base64.b64encode(chunk).decode()}}))
                n += 1
        if stop:
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ" + "a" * 32,
                                      "stop": {"callSid": call_sid}}))
        # else: the connection just closes, as when the line drops


def result_update(fake_call: FakeCall, limit_s: float = 30.0) -> dict[str, str]:
    """The update that moves the call on (after any barge-in update)."""
    deadline = time.monotonic() + limit_s
    while not any("<Say" in u["Twiml"] for u in fake_call.updates):
        assert time.monotonic() < deadline, "no call update reached the fake Twilio cloud"
        time.sleep(0.02)
    return next(u for u in fake_call.updates if "<Say" in u["Twiml"])


def is_barge_in(update: dict[str, str]) -> bool:
    twiml = update["Twiml"]
    return "<Say" not in twiml and "<Play" not in twiml and 'input="dtmf"' in twiml


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
    update = result_update(cloud.calls[call.call_sid])
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
    update = result_update(cloud.calls[call.call_sid])
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
    result_update(cloud.calls[call.call_sid])
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


def test_caller_speaking_over_the_prompt_stops_it_before_the_result_moves_the_call(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    # Speech 0.4 s into a prompt estimated at 4.8 s: a barge-in.
    asyncio.run(media_session(server.url, call.call_sid, frames(synth("예약")), stop=True))
    fake = cloud.calls[call.call_sid]
    result_update(fake)
    assert len(fake.updates) == 2
    stop_prompt, moved_on = fake.updates
    assert is_barge_in(stop_prompt) and 'numDigits="1"' in stop_prompt["Twiml"]
    assert "예약 안내입니다" in moved_on["Twiml"]
    call.apply_updates()
    assert call.heard("예약 안내입니다") and call.ended


def test_caller_silent_during_the_prompt_gets_no_barge_in_update(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    chunks = frames(synth("예약"), lead_s=MENU_PROMPT_S + 0.7)  # speaks after the prompt
    asyncio.run(media_session(server.url, call.call_sid, chunks, stop=True))
    fake = cloud.calls[call.call_sid]
    update = result_update(fake)
    assert len(fake.updates) == 1 and "예약 안내입니다" in update["Twiml"]


def test_barge_in_never_on_a_line_keeps_the_prompt(
        live_app: Flask, cloud: FakeTwilioCloud, ko_factory: Callable[[str], object],
        synth: Callable[..., Path]) -> None:  # noqa: F811
    from speech.tuning import SpeechTuning

    tuning = SpeechTuning.from_mapping({"lines": {"korean": {"barge_in": "never"}}})
    with live_speech(live_app.extensions["centralita"], ko_factory,  # type: ignore[arg-type]
                     tuning=tuning) as srv:
        call = live_call(live_app, cloud)
        asyncio.run(media_session(srv.url, call.call_sid, frames(synth("예약")), stop=True))
        fake = cloud.calls[call.call_sid]
        result_update(fake)
    assert len(fake.updates) == 1 and "예약 안내입니다" in fake.updates[0]["Twiml"]


def test_live_confirm_yes_then_korean_digits_fill_the_ask_node(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud, FORMS_LINE, "내일 방문을 확인하시겠습니까")
    fake = cloud.calls[call.call_sid]

    def asked_for_digits() -> bool:
        if not any("두 자리 방 번호" in u["Twiml"] for u in fake.updates):
            return False
        call.apply_updates()
        flush(live_app)  # the new step reaches Redis, where the stream reads its turn
        return True

    # "네" after the confirm prompt; then, after the digits prompt (estimated 2.2 s),
    # the two digits: the stream notices the new step while the caller is silent.
    second = frames(synth("사 오"), lead_s=3.0)
    asyncio.run(media_session(server.url, call.call_sid,
                              frames(synth("네"), lead_s=MENU_PROMPT_S + 2), stop=True,
                              then=[(asked_for_digits, second)]))
    deadline = time.monotonic() + 30
    while not any("확인했습니다" in u["Twiml"] for u in fake.updates):
        assert time.monotonic() < deadline, "the digits did not move the call on"
        time.sleep(0.02)
    call.apply_updates()
    assert call.heard("방 번호 4 5 확인했습니다") and call.ended
    assert not any(is_barge_in(u) for u in fake.updates)  # both answers after the prompts
    flush(live_app)
    events = live_app.extensions["centralita"].components["call_records"].events(call.call_sid)
    outcomes = {e.get("node"): e.get("outcome") for e in events if e.get("node")}
    assert outcomes["visit_confirm"] == "yes" and outcomes["room_code"] == "answered"


def test_barge_in_on_a_confirm_prompt_keeps_its_one_key_then_yes_moves_on(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud, FORMS_LINE, "내일 방문을 확인하시겠습니까")
    asyncio.run(media_session(server.url, call.call_sid, frames(synth("네")), stop=True))
    fake = cloud.calls[call.call_sid]
    result_update(fake)
    stop_prompt, moved_on = fake.updates
    assert is_barge_in(stop_prompt) and 'numDigits="1"' in stop_prompt["Twiml"]
    assert "두 자리 방 번호를 말씀하세요" in moved_on["Twiml"]


def test_prompt_estimate_follows_the_turn(live_app: Flask) -> None:
    from call_flows.session import Session
    from ivr.speech_turns import prompt_seconds

    registry = live_app.extensions["centralita"].components["flows"]
    flow = registry.current("ko_test")
    menu = Session(call_sid="CA" + "3" * 32, caller="", called=KOREAN_LINE, line="korean",
                   flow=flow.id, flow_version=flow.version, node="main_menu", language="ko")
    assert prompt_seconds(registry, menu) == MENU_PROMPT_S
    again = Session(**{**menu.__dict__, "attempts": 1})  # the shorter reprompt
    assert 0 < prompt_seconds(registry, again) < MENU_PROMPT_S
    assert prompt_seconds(registry, Session(**{**menu.__dict__, "node": "gone"})) == 0.0


def test_a_stream_our_twiml_did_not_start_is_refused(
        live_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = live_call(live_app, cloud)
    assert STREAM_PARAMS[call.call_sid]["auth"]  # our <Stream> carries the call's proof
    before = len(cloud.requests)
    for forged in ({}, {"call": call.call_sid, "auth": "0" * 32}):
        # Someone who knows the CallSid opens a stream and says the menu word.
        asyncio.run(media_session(server.url, call.call_sid, frames(synth("예약")), stop=True,
                                  params=forged))
    time.sleep(0.5)
    updates = [r for r in cloud.requests[before:] if r.path.endswith(f"/Calls/{call.call_sid}.json")]
    assert updates == []  # the live call was not moved on by a forged stream
