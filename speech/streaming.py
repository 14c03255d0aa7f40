"""Twilio Media Streams: live caller audio -> barge-in and recognition results.

:class:`MediaStreamHandler` is pure protocol logic for ONE websocket: feed it each
JSON message as a dict (``connected``, ``start``, ``media``, ``mark``, ``stop``) and
it returns events. Audio is μ-law 8 kHz in 20 ms frames; the endpointer finds the
end of each utterance; the utterance is decoded incrementally while the caller
speaks, so at the end only the final search remains.

What each turn listens for comes from, in order: the :class:`GrammarRegistry`
(``set_grammar(call_sid, language, phrases)``, updated by the web layer as the flow
moves), else the ``<Stream>``'s custom parameters ``language`` and ``phrases``
(``"a|b|c"``; sent in the ``start`` message, so it works across processes), else
free speech in ``default_language``.

:func:`serve_media_streams` runs the websocket server (``websockets``); recognition
runs in a thread pool so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import concurrent.futures
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speech.audio import ulaw_decode
from speech.endpointing import EndpointConfig, Endpointer, EndReason, SpeechEnded, SpeechStarted
from speech.errors import SpeechError
from speech.recognizer import RecognitionResult, RecognitionStream, Recognizer

log = logging.getLogger(__name__)

TWILIO_RATE = 8000
PREROLL_S = 0.3  # audio kept from before the detected start (the start is detected late)
FEED_FRAMES = 5  # frames batched per decoder call: Vosk's per-call overhead dominates at 20 ms


@dataclass(frozen=True)
class TurnGrammar:
    language: str
    phrases: tuple[str, ...] | None  # None: free speech


class GrammarRegistry:
    """What each live call listens for now; thread-safe, in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grammars: dict[str, TurnGrammar] = {}

    def set_grammar(self, call_sid: str, language: str, phrases: Sequence[str] | None) -> None:
        with self._lock:
            self._grammars[call_sid] = TurnGrammar(language, tuple(phrases) if phrases else None)

    def get(self, call_sid: str) -> TurnGrammar | None:
        with self._lock:
            return self._grammars.get(call_sid)

    def clear(self, call_sid: str) -> None:
        with self._lock:
            self._grammars.pop(call_sid, None)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class StreamStarted:
    call_sid: str
    stream_sid: str


@dataclass(frozen=True)
class BargeIn:
    """The caller started speaking while a prompt played: stop the prompt."""

    call_sid: str
    stream_sid: str
    at: float


@dataclass(frozen=True)
class UtteranceResult:
    """One caller turn recognised. ``end_reason`` says how the turn ended."""

    call_sid: str
    result: RecognitionResult
    end_reason: EndReason
    language: str
    phrases: tuple[str, ...] | None
    speech_end_at: float  # stream time of the last voiced audio
    finish_ms: float  # time spent after the endpoint decision (final search)


@dataclass(frozen=True)
class StreamClosed:
    call_sid: str
    reason: str  # "stop" (Twilio ended the stream) or "disconnected"


StreamEvent = StreamStarted | BargeIn | UtteranceResult | StreamClosed
RecognizerFactory = Callable[[str], Recognizer]


class MediaStreamHandler:
    """Protocol state of one Media Streams websocket (not thread-safe: one per socket)."""

    def __init__(self, recognizer_factory: RecognizerFactory,
                 registry: GrammarRegistry | None = None, default_language: str = "es",
                 endpoint: EndpointConfig | None = None) -> None:
        self._factory = recognizer_factory
        self._registry = registry
        self._default_language = default_language
        self._endpointer = Endpointer(TWILIO_RATE, endpoint)
        self._preroll: collections.deque[bytes] = collections.deque(
            maxlen=max(1, int(PREROLL_S / 0.02)))
        self.call_sid = ""
        self.stream_sid = ""
        self._params: dict[str, str] = {}
        self._stream: RecognitionStream | None = None
        self._turn: TurnGrammar | None = None
        self._batch: list[bytes] = []
        self.closed = False

    # ------------------------------------------------------------------ control
    def set_prompt_playing(self, playing: bool) -> None:
        """The web layer says whether a prompt is playing (barge-in detection)."""
        self._endpointer.prompt_playing = playing

    def current_grammar(self) -> TurnGrammar:
        if self._registry is not None and self.call_sid:
            registered = self._registry.get(self.call_sid)
            if registered is not None:
                return registered
        phrases = [p.strip() for p in self._params.get("phrases", "").split("|") if p.strip()]
        return TurnGrammar(self._params.get("language") or self._default_language,
                           tuple(phrases) or None)

    # ------------------------------------------------------------------ protocol
    def handle(self, message: Mapping[str, Any] | str | bytes) -> list[StreamEvent]:
        """Process one websocket message; malformed messages are logged and skipped."""
        if self.closed:
            return []
        if isinstance(message, (str, bytes)):
            try:
                message = json.loads(message)
            except ValueError:
                log.warning("media stream %s: message is not JSON, skipped", self.call_sid)
                return []
        if not isinstance(message, Mapping):
            return []
        kind = message.get("event")
        if kind == "start":
            start = message.get("start") or {}
            self.stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")
            self.call_sid = str(start.get("callSid") or "")
            params = start.get("customParameters") or {}
            self._params = {str(k): str(v) for k, v in params.items()}
            fmt = start.get("mediaFormat") or {}
            if fmt and (fmt.get("encoding") != "audio/x-mulaw" or int(fmt.get("sampleRate", 8000)) != 8000):
                log.warning("media stream %s: unexpected format %s, decoding as μ-law 8 kHz",
                            self.call_sid, fmt)
            log.info("media stream started call=%s stream=%s", self.call_sid, self.stream_sid)
            return [StreamStarted(self.call_sid, self.stream_sid)]
        if kind == "media":
            payload = (message.get("media") or {}).get("payload", "")
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError, TypeError):
                log.warning("media stream %s: bad base64 payload skipped", self.call_sid)
                return []
            return self._frame(audio)
        if kind == "mark":
            name = str((message.get("mark") or {}).get("name", ""))
            if name.startswith("prompt-end"):
                self.set_prompt_playing(False)
            return []
        if kind == "stop":
            return self.close("stop")
        return []  # "connected", "dtmf" and unknown events carry nothing for us

    def close(self, reason: str = "disconnected") -> list[StreamEvent]:
        """The socket ended (``stop`` or a dropped connection): finish any utterance."""
        if self.closed:
            return []
        self.closed = True
        events: list[StreamEvent] = []
        ended = self._endpointer.disconnect()
        if ended is not None:
            events.append(self._finish(ended))
        if self._registry is not None and self.call_sid:
            self._registry.clear(self.call_sid)
        events.append(StreamClosed(self.call_sid, reason))
        log.info("media stream closed call=%s reason=%s", self.call_sid, reason)
        return events

    # ------------------------------------------------------------------ audio
    def _frame(self, ulaw: bytes) -> list[StreamEvent]:
        samples = ulaw_decode(ulaw)
        pcm = samples.astype("<i2").tobytes()
        events: list[StreamEvent] = []
        for ev in self._endpointer.process(samples):
            if isinstance(ev, SpeechStarted):
                self._open_turn()
                if ev.barge_in:
                    self._endpointer.prompt_playing = False
                    events.append(BargeIn(self.call_sid, self.stream_sid, ev.at))
            elif isinstance(ev, SpeechEnded):
                if self._stream is not None:
                    self._batch.append(pcm)
                pcm = b""
                events.append(self._finish(ev))
        if self._stream is not None and pcm:
            self._batch.append(pcm)
            if len(self._batch) >= FEED_FRAMES:
                self._flush()
        elif pcm:
            self._preroll.append(pcm)
        return events

    def _open_turn(self) -> None:
        self._turn = self.current_grammar()
        try:
            recognizer = self._factory(self._turn.language)
            self._stream = recognizer.open_stream(TWILIO_RATE, self._turn.phrases)
        except SpeechError as exc:
            log.error("call %s: cannot recognise %s speech (%s); the flow should fall back "
                      "to the keypad", self.call_sid, self._turn.language, exc)
            self._stream = None
            return
        self._batch = list(self._preroll)
        self._preroll.clear()

    def _flush(self) -> None:
        if self._stream is not None and self._batch:
            self._stream.feed(b"".join(self._batch))
        self._batch = []

    def _finish(self, ended: SpeechEnded) -> UtteranceResult:
        turn = self._turn or self.current_grammar()
        started = time.perf_counter()
        if self._stream is None:  # no model for the language: a defined empty turn
            result = RecognitionResult("", 0.0, (), 0.0, 0.0, "no_recognizer")
        else:
            self._flush()
            result = self._stream.finish()
        self._stream = None
        if result.reason == "no_recognizer":
            pass
        elif ended.voiced_seconds * 1000 < self._endpointer.config.min_voiced_ms:
            result = RecognitionResult("", 0.0, (), result.audio_seconds, result.rtf, "too_short")
        elif ended.reason is EndReason.DISCONNECTED and not result.reason:
            result = RecognitionResult(result.text, result.confidence, result.words,
                                       result.audio_seconds, result.rtf, "disconnected")
        finish_ms = (time.perf_counter() - started) * 1000
        log.info("call %s: heard %r conf=%.2f end=%s reason=%s", self.call_sid, result.text,
                 result.confidence, ended.reason.value, result.reason or "-")
        return UtteranceResult(self.call_sid, result, ended.reason, turn.language,
                               turn.phrases, ended.last_voiced_at, finish_ms)


# --------------------------------------------------------------------------- server

OnResult = Callable[[str, UtteranceResult], Any]
OnEvent = Callable[[StreamEvent], Any]


async def _call(pool: concurrent.futures.Executor, fn: Callable[..., Any], *args: Any) -> None:
    try:
        if inspect.iscoroutinefunction(fn):
            await fn(*args)
        else:
            await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    except Exception:  # a failing callback must not kill the stream
        log.exception("media stream callback %s failed", getattr(fn, "__name__", fn))


async def start_media_stream_server(
    host: str, port: int, recognizer_factory: RecognizerFactory, on_result: OnResult,
    registry: GrammarRegistry | None = None, on_event: OnEvent | None = None,
    default_language: str = "es", endpoint: EndpointConfig | None = None,
    executor: concurrent.futures.Executor | None = None,
) -> Any:
    """Start the websocket server and return it (``.close()``; ``.sockets`` for the port)."""
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    pool = executor or concurrent.futures.ThreadPoolExecutor(thread_name_prefix="speech")

    async def connection(ws: Any) -> None:
        handler = MediaStreamHandler(recognizer_factory, registry, default_language, endpoint)
        loop = asyncio.get_running_loop()
        reason = "disconnected"
        try:
            async for message in ws:
                events = await loop.run_in_executor(pool, handler.handle, message)
                await _dispatch(events)
                if handler.closed:
                    reason = "stop"
                    break
        except ConnectionClosed:
            pass
        finally:
            if not handler.closed:
                events = await loop.run_in_executor(pool, handler.close, reason)
                await _dispatch(events)

    async def _dispatch(events: list[StreamEvent]) -> None:
        for event in events:
            if on_event is not None:
                await _call(pool, on_event, event)
            if isinstance(event, UtteranceResult):
                await _call(pool, on_result, event.call_sid, event)

    return await serve(connection, host, port, max_size=2 ** 20)


async def serve_media_streams(host: str, port: int, recognizer_factory: RecognizerFactory,
                              on_result: OnResult, **options: Any) -> None:
    """Run the Media Streams websocket server until cancelled."""
    server = await start_media_stream_server(host, port, recognizer_factory, on_result, **options)
    async with server:
        await server.serve_forever()


def recognizer_cache(build: Callable[[str], Recognizer]) -> RecognizerFactory:
    """Wrap a recogniser constructor so each language is built once (thread-safe)."""
    lock = threading.Lock()
    built: dict[str, Recognizer] = {}

    def factory(language: str) -> Recognizer:
        with lock:
            if language not in built:
                built[language] = build(language)
            return built[language]

    return factory


__all__ = [
    "BargeIn",
    "GrammarRegistry",
    "MediaStreamHandler",
    "StreamClosed",
    "StreamStarted",
    "TurnGrammar",
    "UtteranceResult",
    "recognizer_cache",
    "serve_media_streams",
    "start_media_stream_server",
]
