"""Twilio Media Streams: live caller audio -> barge-in and recognition results.

:class:`MediaStreamHandler` is pure protocol logic for ONE websocket: feed it each
JSON message (``connected``, ``start``, ``media``, ``mark``, ``stop``) and it returns
events. Audio is μ-law 8 kHz in 20 ms frames.

Cost per stream (what makes ≥ 50 grammar streams per core): an energy gate (the
endpointer) looks at every frame, but Vosk is fed only from speech onset (with
:data:`PREROLL_S` of audio from before it, so the first syllable is not lost), in
batches of :data:`FEED_FRAMES` frames; silence while a prompt plays costs a table
lookup and an RMS per frame.

End of speech: the utterance is decoded while the caller speaks. Grammar turns end
``early_end_ms`` (150 ms) after the last voiced frame when the partial result is
already a whole answer (one phrase no longer phrase starts with; digits: as many as
the turn expects); otherwise ``end_silence_ms`` (700 ms) of silence ends the turn.

What each turn listens for (:class:`TurnGrammar`) comes from, in order: the
:class:`GrammarRegistry` (the web layer's: :class:`ivr.media_streams.SessionGrammars`
reads the call's session), else the ``<Stream>``'s custom parameters ``language`` and
``phrases`` (``"a|b|c"``), else free speech in ``default_language``. The registry is
asked again every :data:`POLL_S` of silence: a new session step means a new turn,
whose prompt began then, so a caller who starts speaking before the prompt's
estimated end (``prompt_s``) barges in (:class:`BargeIn`, once per turn).

The websocket server is in :mod:`speech.stream_server`.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from speech.audio import ulaw_decode
from speech.endpointing import EndpointConfig, Endpointer, EndReason, SpeechEnded, SpeechStarted
from speech.errors import SpeechError
from speech.grammars import GrammarKind, Listen, phrase_complete
from speech.recognizer import RecognitionResult, RecognitionStream, Recognizer

log = logging.getLogger(__name__)

TWILIO_RATE = 8000
FRAME_S = 0.02
PREROLL_S = 0.3  # audio kept from before the detected start (the start is detected late)
FEED_FRAMES = 5  # frames batched per decoder call: Vosk's per-call overhead dominates at 20 ms
POLL_S = 0.25  # how often (stream time, outside speech) the registry is asked for the turn
LOOKAHEAD_PAD_S = 0.2  # pause audio repeated to the decoder at the first early check


class BargePolicy(str, Enum):
    AUTO = "auto"  # onset before the prompt's estimated end stops the prompt
    ALWAYS = "always"  # any first onset in a turn stops what plays (prompt length unknown)
    NEVER = "never"  # the prompt always plays to its end (legal notices)


@dataclass(frozen=True)
class TurnGrammar:
    """One listening turn: what to recognise, how to endpoint, when the prompt ends."""

    language: str
    phrases: tuple[str, ...] | None  # None: free speech
    kind: GrammarKind | None = None  # None: PHRASES when there are phrases, else FREE
    max_digits: int | None = None
    seq: int | None = None  # the call's session step (None: unknown, same turn)
    prompt_s: float = 0.0  # estimated duration of the turn's prompts
    endpoint: EndpointConfig | None = None  # None: the handler's default
    barge_in: BargePolicy = BargePolicy.AUTO

    @property
    def listen(self) -> Listen:
        kind = self.kind or (GrammarKind.PHRASES if self.phrases else GrammarKind.FREE)
        return Listen(self.language, kind if self.phrases else GrammarKind.FREE,
                      self.phrases, self.max_digits)


class GrammarRegistry:
    """What each live call listens for now; thread-safe, in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grammars: dict[str, TurnGrammar] = {}

    def set_grammar(self, call_sid: str, language: str, phrases: Sequence[str] | None,
                    **turn: Any) -> None:
        with self._lock:
            self._grammars[call_sid] = TurnGrammar(
                language, tuple(phrases) if phrases else None, **turn)

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
    seq: int | None = None  # the turn it interrupts


@dataclass(frozen=True)
class UtteranceResult:
    """One caller turn recognised. ``end_reason`` says how the turn ended."""

    call_sid: str
    result: RecognitionResult
    end_reason: EndReason
    language: str
    phrases: tuple[str, ...] | None
    speech_end_at: float  # stream time of the end of the last voiced frame
    finish_ms: float  # time spent after the endpoint decision (final search)
    decided_at: float = 0.0  # stream time of the frame that ended the turn
    seq: int | None = None  # the session step the caller answered


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
                 endpoint: EndpointConfig | None = None,
                 authorize: Callable[[str, Mapping[str, str]], bool] | None = None) -> None:
        self._factory = recognizer_factory
        # (CallSid, customParameters) -> whether this stream may speak for that call
        self._authorize = authorize
        self._registry = registry
        self._default_language = default_language
        self._default_endpoint = endpoint or EndpointConfig()
        self._endpointer = Endpointer(TWILIO_RATE, self._default_endpoint)
        self._preroll: collections.deque[np.ndarray] = collections.deque(
            maxlen=max(1, int(PREROLL_S / FRAME_S)))
        self.call_sid = ""
        self.stream_sid = ""
        self._params: dict[str, str] = {}
        self._stream: RecognitionStream | None = None
        self._turn: TurnGrammar | None = None  # the turn being listened to
        self._batch: list[bytes] = []
        self._seq: int | None = None
        self._prompt_until = 0.0  # stream time the current prompt is estimated to end
        self._barged = False
        self._next_poll = POLL_S
        self._pause: list[bytes] = []  # this pause's audio (grammar turns)
        self._padded = False
        self.closed = False

    # ------------------------------------------------------------------ control
    def set_prompt_playing(self, playing: bool) -> None:
        """Say whether a prompt plays now (a ``mark`` on bidirectional streams, tests)."""
        self._prompt_until = float("inf") if playing else 0.0
        if playing:
            self._barged = False

    def current_grammar(self) -> TurnGrammar:
        if self._registry is not None and self.call_sid:
            registered = self._registry.get(self.call_sid)
            if registered is not None:
                return registered
        phrases = [p.strip() for p in self._params.get("phrases", "").split("|") if p.strip()]
        return TurnGrammar(self._params.get("language") or self._default_language,
                           tuple(phrases) or None)

    def _refresh_turn(self) -> TurnGrammar:
        """Ask for the current turn; a new session step starts a new prompt now."""
        turn = self.current_grammar()
        now = self._endpointer.elapsed
        if turn.seq is not None and turn.seq != self._seq:
            self._seq = turn.seq
            self._prompt_until = now + turn.prompt_s
            self._barged = False
        if not self._endpointer.in_speech:
            self._endpointer.config = turn.endpoint or self._default_endpoint
        self._next_poll = now + POLL_S
        return turn

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
        if kind == "media":
            payload = (message.get("media") or {}).get("payload", "")
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError, TypeError):
                log.warning("media stream %s: bad base64 payload skipped", self.call_sid)
                return []
            return self._frame(audio)
        if kind == "start":
            return self._start(message)
        if kind == "mark":
            name = str((message.get("mark") or {}).get("name", ""))
            if name.startswith("prompt-end"):
                self.set_prompt_playing(False)
            return []
        if kind == "stop":
            return self.close("stop")
        return []  # "connected", "dtmf" and unknown events carry nothing for us

    def _start(self, message: Mapping[str, Any]) -> list[StreamEvent]:
        start = message.get("start") or {}
        self.stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")
        self.call_sid = str(start.get("callSid") or "")
        params = start.get("customParameters") or {}
        self._params = {str(k): str(v) for k, v in params.items()}
        if self._authorize is not None and not self._authorize(self.call_sid, self._params):
            log.warning("media stream refused: not started by our TwiML (call=%s)",
                        self.call_sid[:34])
            self.call_sid = ""  # nothing of the real call is touched on the way out
            return self.close("unauthorized")
        fmt = start.get("mediaFormat") or {}
        if fmt and (fmt.get("encoding") != "audio/x-mulaw" or int(fmt.get("sampleRate", 8000)) != 8000):
            log.warning("media stream %s: unexpected format %s, decoding as μ-law 8 kHz",
                        self.call_sid, fmt)
        self._refresh_turn()  # the stream starts with the call's first prompt
        log.info("media stream started call=%s stream=%s", self.call_sid, self.stream_sid)
        return [StreamStarted(self.call_sid, self.stream_sid)]

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
        ep = self._endpointer
        if not ep.in_speech and self._registry is not None and ep.elapsed >= self._next_poll:
            self._refresh_turn()
        events: list[StreamEvent] = []
        for ev in ep.process(samples):
            if isinstance(ev, SpeechStarted):
                self._onset(ev, events)
            elif isinstance(ev, SpeechEnded):
                if self._stream is not None:
                    self._batch.append(samples.tobytes())
                events.append(self._finish(ev))
                return events
        if self._stream is None:
            if not ep.in_speech:
                self._preroll.append(samples)
            return events
        pcm = samples.tobytes()
        self._batch.append(pcm)
        early = (self._turn.endpoint or ep.config).early_end_ms if self._turn else 0
        if not early or self._turn is None or not self._turn.phrases or not ep.silence_ms:
            self._pause, self._padded = [], False  # voiced again: a later pause is new
        else:
            self._pause.append(pcm)
            if ep.silence_ms >= early and self._early_end():
                ended = ep.end_now(EndReason.GRAMMAR_COMPLETE)
                if ended is not None:
                    events.append(self._finish(ended))
                return events
        if len(self._batch) >= FEED_FRAMES:
            self._flush()
        return events

    def _early_end(self) -> bool:
        """Whether the words so far are a whole answer (checked once per frame of the
        pause). The decoder looks ahead (right context) before it commits to the last
        word, so the first check of a pause also feeds it :data:`LOOKAHEAD_PAD_S` more
        of the pause's own line noise: the caller is silent, and if they go on, the
        pause they made just looks that much longer to the decoder."""
        assert self._stream is not None and self._turn is not None
        if not self._padded:
            self._padded = True
            need = int(LOOKAHEAD_PAD_S / FRAME_S)
            self._batch.extend((self._pause * (need // max(1, len(self._pause)) + 1))[:need])
        self._flush()
        return phrase_complete(self._stream.partial() or (), self._turn.listen)

    def _onset(self, ev: SpeechStarted, events: list[StreamEvent]) -> None:
        self._turn = turn = self._refresh_turn()
        barge = not self._barged and (
            turn.barge_in is BargePolicy.ALWAYS
            or (turn.barge_in is BargePolicy.AUTO and ev.at < self._prompt_until))
        if barge:
            self._barged = True
            self._prompt_until = 0.0
            events.append(BargeIn(self.call_sid, self.stream_sid, ev.at, self._seq))
        listen = turn.listen
        try:
            recognizer = self._factory(turn.language)
            self._stream = recognizer.open_stream(TWILIO_RATE, listen.phrases,
                                                  sequence=listen.sequence)
        except SpeechError as exc:
            log.error("call %s: cannot recognise %s speech (%s); the flow should fall back "
                      "to the keypad", self.call_sid, turn.language, exc)
            self._stream = None
            return
        self._batch = [s.tobytes() for s in self._preroll]
        self._preroll.clear()
        self._pause = []
        self._padded = False

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
        self._turn = None
        self._preroll.clear()
        if result.reason == "no_recognizer":
            pass
        elif ended.voiced_seconds * 1000 < self._endpointer.config.min_voiced_ms:
            result = replace(result, text="", confidence=0.0, words=(), reason="too_short")
        elif ended.reason is EndReason.DISCONNECTED and not result.reason:
            result = replace(result, reason="disconnected")
        finish_ms = (time.perf_counter() - started) * 1000
        # What was said stays out of the logs (it may be digits of a card or an ID).
        log.info("call %s: heard %d word(s) conf=%.2f end=%s reason=%s", self.call_sid,
                 len(result.text.split()), result.confidence, ended.reason.value,
                 result.reason or "-")
        return UtteranceResult(self.call_sid, result, ended.reason, turn.language,
                               turn.phrases, ended.last_voiced_at, finish_ms, ended.at,
                               turn.seq if turn.seq is not None else self._seq)


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
    "BargePolicy",
    "GrammarRegistry",
    "MediaStreamHandler",
    "StreamClosed",
    "StreamStarted",
    "TurnGrammar",
    "UtteranceResult",
    "recognizer_cache",
]
