"""Twilio Media Streams: real μ-law frames of synthesised speech through the handler
and through the websocket server, recognised by the Korean Vosk model."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from speech.audio import read_wav, ulaw_encode
from speech.endpointing import EndReason
from speech.streaming import (
    BargeIn,
    GrammarRegistry,
    MediaStreamHandler,
    StreamClosed,
    StreamStarted,
    UtteranceResult,
    recognizer_cache,
    start_media_stream_server,
)
from tests.speech.conftest import IN_GRAMMAR

FRAME = 160  # 20 ms of 8 kHz μ-law


def frames_of(path: Path, lead_silence_s: float = 0.4, tail_silence_s: float = 1.0) -> list[bytes]:
    audio = read_wav(path)
    assert audio.rate == 8000
    silence = np.zeros(int(8000 * lead_silence_s), np.int16)
    tail = np.zeros(int(8000 * tail_silence_s), np.int16)
    ulaw = ulaw_encode(np.concatenate([silence, audio.samples, tail]))
    return [ulaw[i:i + FRAME] for i in range(0, len(ulaw) - FRAME + 1, FRAME)]


def start_msg(call_sid: str = "CA1", params: dict | None = None) -> dict:
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
            "start": {"streamSid": "MZ1", "callSid": call_sid, "accountSid": "AC1",
                      "tracks": ["inbound"], "customParameters": params or {},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


def media_msg(chunk: bytes, n: int) -> dict:
    return {"event": "media", "streamSid": "MZ1", "sequenceNumber": str(n + 2),
            "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
                      "payload": base64.b64encode(chunk).decode()}}


def run(handler: MediaStreamHandler, frames: list[bytes], stop: bool = True) -> list:
    events = handler.handle({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    events += handler.handle(start_msg(params={"language": "ko", "phrases": "|".join(IN_GRAMMAR)}))
    for n, chunk in enumerate(frames):
        events += handler.handle(media_msg(chunk, n))
    if stop:
        events += handler.handle({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA1"}})
    return events


def test_silence_only_stream_opens_and_closes_without_recognising() -> None:
    built: list[str] = []

    def factory(language: str):  # never called: nobody spoke
        built.append(language)
        raise AssertionError("no recogniser needed for silence")

    handler = MediaStreamHandler(factory)
    events = run(handler, [b"\xff" * FRAME] * 100)
    assert events == [StreamStarted("CA1", "MZ1"), StreamClosed("CA1", "stop")]
    assert built == []


def test_malformed_messages_are_skipped() -> None:
    handler = MediaStreamHandler(lambda language: None)  # type: ignore[arg-type,return-value]
    assert handler.handle("not json") == []
    assert handler.handle(b"\x00\x01") == []
    assert handler.handle({"event": "media", "media": {"payload": "@@not base64@@"}}) == []
    assert handler.handle({"event": "dtmf", "dtmf": {"digit": "1"}}) == []
    assert handler.handle([1, 2]) == []  # type: ignore[arg-type]


@pytest.mark.slow
def test_utterance_is_endpointed_and_recognised(ko_recognizer, synth) -> None:
    handler = MediaStreamHandler(lambda language: ko_recognizer)
    events = run(handler, frames_of(synth("예약")))
    results = [e for e in events if isinstance(e, UtteranceResult)]
    assert len(results) == 1
    result = results[0]
    assert result.end_reason is EndReason.SILENCE
    assert result.result.text == "예약" and result.result.accepted
    assert result.language == "ko" and result.phrases == tuple(IN_GRAMMAR)
    assert events[-1] == StreamClosed("CA1", "stop")
    assert not any(isinstance(e, BargeIn) for e in events)


@pytest.mark.slow
def test_barge_in_while_prompt_plays(ko_recognizer, synth) -> None:
    handler = MediaStreamHandler(lambda language: ko_recognizer)
    handler.set_prompt_playing(True)
    events = run(handler, frames_of(synth("네")))
    kinds = [type(e) for e in events]
    assert kinds.index(BargeIn) < kinds.index(UtteranceResult)
    result = next(e for e in events if isinstance(e, UtteranceResult))
    assert result.result.text == "네"


@pytest.mark.slow
def test_prompt_end_mark_disables_barge_in(ko_recognizer, synth) -> None:
    handler = MediaStreamHandler(lambda language: ko_recognizer)
    handler.set_prompt_playing(True)
    handler.handle({"event": "mark", "streamSid": "MZ1", "mark": {"name": "prompt-end-3"}})
    events = run(handler, frames_of(synth("네")))
    assert not any(isinstance(e, BargeIn) for e in events)


@pytest.mark.slow
def test_out_of_grammar_utterance_gives_no_match(ko_recognizer, synth) -> None:
    handler = MediaStreamHandler(lambda language: ko_recognizer)
    events = run(handler, frames_of(synth("감사합니다")))
    result = next(e for e in events if isinstance(e, UtteranceResult))
    assert not result.result.accepted


@pytest.mark.slow
def test_disconnect_mid_utterance_gives_a_defined_result(ko_recognizer, synth) -> None:
    frames = frames_of(synth("아니요"), tail_silence_s=0)
    handler = MediaStreamHandler(lambda language: ko_recognizer)
    events = run(handler, frames[: len(frames) - 5], stop=False)
    assert not any(isinstance(e, UtteranceResult) for e in events)
    closing = handler.close()  # the socket dropped
    result = closing[0]
    assert isinstance(result, UtteranceResult)
    assert result.end_reason is EndReason.DISCONNECTED
    assert result.result.reason in ("disconnected", "out_of_grammar", "no_speech",
                                    "mixed_with_garbage", "implausible_duration")
    assert closing[1] == StreamClosed("CA1", "disconnected")
    assert handler.close() == [] and handler.handle(media_msg(frames[0], 0)) == []


@pytest.mark.slow
def test_registry_grammar_overrides_stream_parameters(ko_recognizer, synth) -> None:
    registry = GrammarRegistry()
    registry.set_grammar("CA1", "ko", ["네", "아니요"])
    handler = MediaStreamHandler(lambda language: ko_recognizer, registry)
    events = run(handler, frames_of(synth("네")))
    result = next(e for e in events if isinstance(e, UtteranceResult))
    assert result.phrases == ("네", "아니요") and result.result.text == "네"
    assert registry.get("CA1") is None  # cleared when the stream ended


def test_missing_model_gives_an_empty_turn(synth) -> None:
    from speech.errors import ModelNotFoundError

    def factory(language: str):
        raise ModelNotFoundError("no Vosk model for 'ko': test")

    handler = MediaStreamHandler(factory)
    events = run(handler, frames_of(synth("네")))
    result = next(e for e in events if isinstance(e, UtteranceResult))
    assert result.result.text == "" and result.result.reason == "no_recognizer"


@pytest.mark.slow
def test_websocket_server_end_to_end(ko_recognizer, synth) -> None:
    from websockets.asyncio.client import connect

    frames = frames_of(synth("예약"))
    received: list[tuple[str, UtteranceResult]] = []
    events: list[object] = []

    async def scenario() -> None:
        server = await start_media_stream_server(
            "127.0.0.1", 0, recognizer_cache(lambda language: ko_recognizer),
            lambda call_sid, result: received.append((call_sid, result)),
            on_event=events.append)
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/media") as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps(start_msg("CA9", {"language": "ko", "phrases": "|".join(IN_GRAMMAR)})))
            for n, chunk in enumerate(frames):
                await ws.send(json.dumps(media_msg(chunk, n)))
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1"}))
            await ws.wait_closed()
        for _ in range(200):  # the callback runs in the pool
            if received and any(isinstance(e, StreamClosed) for e in events):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
    assert len(received) == 1
    call_sid, result = received[0]
    assert call_sid == "CA9" and result.result.text == "예약"
    assert StreamClosed("CA9", "stop") in events
