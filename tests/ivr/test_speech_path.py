"""The recording path end to end: a Korean call through the signed webhooks, the
caller's answer a real espeak-ng recording served by the fake Twilio cloud,
recognised by the real Korean Vosk model against the menu's grammar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import SimulatedCall, Simulator, TestClientTransport
from ivr.speech_turns import OfflineListening, SpeechMode, SpeechTurns, listening_for
from ivr.twilio_rest import RetryPolicy
from tests.fakes import FakeTwilioCloud
from tests.ivr.conftest import AUTH_TOKEN, BASE, flush
from tests.speech.conftest import synth  # noqa: F401  (session fixture: espeak-ng + sox)

FLOWS = Path(__file__).resolve().parents[1] / "flows_ko"
KOREAN_LINE = "+34930009000"
FORMS_LINE = "+34930009001"  # tests/flows_ko/ko_forms.yaml: confirm, then two digits
MENU_PROMPT = "예약은 1번"
REPROMPT = "예약이나 환불이라고 말씀해 주세요"
KEYPAD = "예약 1번, 환불 2번"
FAST = RetryPolicy(attempts=2, base_delay=0.01, recording_attempts=3, recording_delay=0.01)

pytestmark = pytest.mark.slow


@pytest.fixture()
def ko_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud,
           ko_factory: Callable[[str], object]) -> Iterator[Flask]:
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        twilio_account_sid=cloud.account_sid, twilio_api_url=cloud.url,
                        flows_dir=FLOWS, secret_key="test-secret")
    app = create_app(settings)
    components = app.extensions["centralita"].components
    service = components["calls"]
    turns = SpeechTurns(cloud.rest_client(retry=FAST), components["flows"], ko_factory,  # type: ignore[arg-type]
                        model_available=lambda language: language == "ko")
    service.speech = turns
    service.engine = OfflineListening(service.engine, turns, lambda line: SpeechMode.RECORD)
    yield app
    flush(app)


@pytest.fixture()
def sim(ko_app: Flask) -> Simulator:
    return Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(ko_app.test_client()))


def wav_of(synth: Callable[..., Path], text: str) -> bytes:  # noqa: F811
    return synth(text, rate=8000, pad_s=0.3).read_bytes()


def answer(call: SimulatedCall, cloud: FakeTwilioCloud, wav: bytes, not_ready_for: int = 0,
           seconds: float = 2.0) -> SimulatedCall:
    """The caller presses nothing during the prompt, then speaks after the beep."""
    assert call.pending == "Gather"
    call.silence()
    assert call.pending == "Record"
    rec = cloud.add_recording(wav=wav, seconds=seconds, not_ready_for=not_ready_for,
                              call_sid=call.call_sid)
    return call.record(rec.url, seconds, sid=rec.sid)


def menu_outcomes(app: Flask, client: redis.Redis, call: SimulatedCall) -> list[str]:
    flush(app)
    records = app.extensions["centralita"].components["call_records"].events(call.call_sid)
    return [f"{r.get('outcome')}|{r.get('input')}" for r in records if r.get("node") == "main_menu"]


def test_listening_turn_renders_keys_then_a_spoken_answer(sim: Simulator) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    assert call.heard(MENU_PROMPT, "ko-KR")
    body = call.requests[-1].body
    assert '<Gather action="/voice/step?s=' in body
    assert 'actionOnEmptyResult="false"' in body and 'input="dtmf"' in body
    assert 'purpose=speech"' in body and 'finishOnKey="0123456789*#"' in body
    assert 'playBeep="true"' in body and "<Redirect" in body  # the empty-recording guard


def test_spoken_answer_not_ready_at_first_is_recognised_and_moves_the_flow(
        ko_app: Flask, sim: Simulator, cloud: FakeTwilioCloud, synth: Callable[..., Path],  # noqa: F811
        redis_client: redis.Redis) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    answer(call, cloud, wav_of(synth, "예약"), not_ready_for=1)
    assert call.heard("예약 안내입니다")
    assert not call.heard("환불 안내입니다")
    assert call.ended
    fetches = [r for r in cloud.requests if "/Recordings/" in r.path]
    assert [r.status for r in fetches] == [404, 200] and all(r.authorized for r in fetches)
    assert menu_outcomes(ko_app, redis_client, call)[-1] == "option:booking|speech:예약@1.00"


def test_second_option_by_voice(sim: Simulator, cloud: FakeTwilioCloud,
                                synth: Callable[..., Path]) -> None:  # noqa: F811
    call = sim.call(to=KOREAN_LINE).start()
    answer(call, cloud, wav_of(synth, "환불"))
    assert call.heard("환불 안내입니다") and not call.heard("예약 안내입니다")


def test_out_of_grammar_answer_is_reprompted_not_matched(
        ko_app: Flask, sim: Simulator, cloud: FakeTwilioCloud, synth: Callable[..., Path],  # noqa: F811
        redis_client: redis.Redis) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    answer(call, cloud, wav_of(synth, "오늘 날씨가 정말 좋네요"), seconds=3)
    assert call.heard(REPROMPT)
    assert not call.heard("예약 안내입니다") and not call.heard("환불 안내입니다")
    assert call.pending == "Gather" and not call.ended
    assert menu_outcomes(ko_app, redis_client, call)[-1].startswith("no_input:1|")


def test_keys_still_work_during_the_prompt_and_to_end_the_recording(
        sim: Simulator, cloud: FakeTwilioCloud) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    call.press("2")
    assert call.heard("환불 안내입니다")
    assert not any("/Recordings/" in r.path for r in cloud.requests)

    call = sim.call(to=KOREAN_LINE).start()
    call.silence()
    call.record(seconds=1, ended_by="1")  # a key pressed while recording
    assert call.heard("예약 안내입니다")


def test_corrupt_then_missing_recordings_reprompt_then_keypad_then_a_person(
        ko_app: Flask, sim: Simulator, cloud: FakeTwilioCloud,
        redis_client: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    answer(call, cloud, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    assert call.heard(REPROMPT)
    assert "not recognised" in caplog.text and "corrupt WAV" in caplog.text
    gone = f"{cloud.url}/2010-04-01/Accounts/{cloud.account_sid}/Recordings/RE{'0' * 32}"
    call.silence()
    call.record(gone, 2)
    assert "could not be downloaded" in caplog.text
    assert call.heard(KEYPAD)
    body = call.requests[-1].body
    assert "purpose=speech" not in body and 'input="dtmf"' in body  # keypad only now
    call.silence()
    assert call.heard("상담원에게 연결합니다")
    outcomes = menu_outcomes(ko_app, redis_client, call)
    assert [o.split("|")[0] for o in outcomes[-3:]] == ["no_input:1", "no_input:2", "no_input:3"]


def test_silence_after_the_beep_is_no_input(sim: Simulator) -> None:
    call = sim.call(to=KOREAN_LINE).start()
    call.silence()
    assert call.pending == "Record"
    call.silence()  # Twilio skips the action; our guard redirect says nothing was recorded
    assert call.heard(REPROMPT)


def test_huge_recording_is_refused_before_decoding(
        ko_app: Flask, cloud: FakeTwilioCloud, ko_factory: Callable[[str], object],
        caplog: pytest.LogCaptureFixture) -> None:
    registry = ko_app.extensions["centralita"].components["flows"]
    turns = SpeechTurns(cloud.rest_client(retry=FAST), registry, ko_factory,  # type: ignore[arg-type]
                        max_bytes=1000)
    rec = cloud.add_recording(seconds=5)
    from ivr.speech_turns import Listening

    assert turns.recognise("CA" + "1" * 32, rec.url, Listening("ko", ("예약",))) is None
    assert "larger than 1000" in caplog.text


def test_language_without_a_model_gets_the_keypad(ko_app: Flask, cloud: FakeTwilioCloud,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    service = ko_app.extensions["centralita"].components["calls"]
    registry = ko_app.extensions["centralita"].components["flows"]
    turns = SpeechTurns(cloud.rest_client(), registry, lambda language: None,  # type: ignore[arg-type,return-value]
                        model_available=lambda language: False)
    service.engine = OfflineListening(service.engine.engine, turns, lambda l: SpeechMode.RECORD)
    sim = Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(ko_app.test_client()))
    call = sim.call(to=KOREAN_LINE).start()
    body = call.requests[-1].body
    assert "<Record" not in body and 'input="dtmf"' in body and 'actionOnEmptyResult="true"' in body
    assert "no Vosk model for 'ko'" in caplog.text
    call.press("1")
    assert call.heard("예약 안내입니다")


def test_listening_for_gives_the_menu_grammar_and_free_speech_elsewhere(ko_app: Flask) -> None:
    from call_flows.session import Session

    registry = ko_app.extensions["centralita"].components["flows"]
    flow = registry.current("ko_test")
    base = Session(call_sid="CA" + "2" * 32, caller="", called=KOREAN_LINE, line="korean",
                   flow=flow.id, flow_version=flow.version, node="main_menu", language="ko")
    assert listening_for(registry, base).phrases == ("예약", "환불")
    assert listening_for(registry, base.__class__(**{**base.__dict__, "node": "goodbye"})
                         ).phrases is None
    confirming = base.__class__(**{**base.__dict__, "pending": {"confirm": "booking"}})
    assert listening_for(registry, confirming).phrases == ("네", "아니요")  # "did you say..."


def test_listening_for_confirm_and_digit_nodes(ko_app: Flask) -> None:
    from call_flows.session import Session
    from speech.grammars import GrammarKind, digit_words

    registry = ko_app.extensions["centralita"].components["flows"]
    flow = registry.current("ko_forms")
    base = Session(call_sid="CA" + "2" * 32, caller="", called=FORMS_LINE, line="korean_forms",
                   flow=flow.id, flow_version=flow.version, node="visit_confirm", language="ko")
    confirm = listening_for(registry, base)
    assert confirm.kind is GrammarKind.YES_NO and confirm.phrases == ("네", "아니요")
    ask = listening_for(registry, base.__class__(**{**base.__dict__, "node": "room_code"}))
    assert ask.kind is GrammarKind.DIGITS and ask.sequence and ask.max_digits == 2
    assert ask.phrases == digit_words("ko")


def test_confirm_answered_yes_then_digits_by_voice_fill_the_ask_node(
        ko_app: Flask, sim: Simulator, cloud: FakeTwilioCloud, synth: Callable[..., Path],  # noqa: F811
        redis_client: redis.Redis) -> None:
    call = sim.call(to=FORMS_LINE).start()
    assert call.heard("내일 방문을 확인하시겠습니까")
    answer(call, cloud, wav_of(synth, "네"))
    assert call.heard("두 자리 방 번호를 말씀하세요") and not call.heard("방문이 취소되었습니다")
    answer(call, cloud, wav_of(synth, "사 오"))
    assert call.heard("방 번호 4 5 확인했습니다")
    assert call.ended
    flush(ko_app)
    events = ko_app.extensions["centralita"].components["call_records"].events(call.call_sid)
    outcomes = {e.get("node"): e.get("outcome") for e in events if e.get("node")}
    assert outcomes["visit_confirm"] == "yes" and outcomes["room_code"] == "answered"


def test_confirm_answered_no_by_voice_takes_the_no_edge(
        sim: Simulator, cloud: FakeTwilioCloud, synth: Callable[..., Path]) -> None:  # noqa: F811
    call = sim.call(to=FORMS_LINE).start()
    answer(call, cloud, wav_of(synth, "아니요"))
    assert call.heard("방문이 취소되었습니다") and not call.heard("두 자리 방 번호")


def test_out_of_grammar_answer_to_a_confirm_reprompts(
        sim: Simulator, cloud: FakeTwilioCloud, synth: Callable[..., Path]) -> None:  # noqa: F811
    call = sim.call(to=FORMS_LINE).start()
    answer(call, cloud, wav_of(synth, "안녕하세요"))
    assert call.heard("네 또는 아니요라고 말씀해 주세요")
    assert not call.heard("방문이 취소되었습니다") and not call.heard("두 자리 방 번호")
