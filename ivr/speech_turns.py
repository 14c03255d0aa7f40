"""Callers' speech recognised offline by Vosk: the recording path, and what a turn hears.

Three ways a line can listen (:class:`SpeechMode`): Twilio's own recogniser
(``<Gather input="speech">``), **vosk-record** (the caller's answer is recorded with
``<Record>``, downloaded from Twilio and recognised here) and **vosk-stream** (the
caller's audio is forked to our Media Streams websocket, see
:mod:`ivr.media_streams`). In both Vosk modes no audio goes to a third-party
recogniser.

* :func:`listening_for` says what the call's current node listens for: the menu
  options' phrases in the caller's language become a grammar; other nodes (yes/no,
  digits, free answers) decode free speech.
* :class:`SpeechTurns` turns a finished ``<Record purpose=speech>`` into the engine's
  event: download (TwilioRest, retried while Twilio still processes it) →
  :func:`speech.audio.read_wav` → recognise with the process's cached recogniser for
  the call's language → :class:`~call_flows.actions.Speech`, or
  :class:`~call_flows.actions.NoInput` for every failure (nothing recorded, missing or
  corrupt or oversized recording, no model, out-of-grammar speech), each with one
  log line. ``NoInput`` sends the caller down the engine's reprompt → keypad → human
  path, so a bad recording never strands a call.
* :class:`OfflineListening` wraps the engine until it emits these turns itself: a
  ``Gather`` that would use Twilio's speech becomes a keys-only ``Gather`` (keys work
  during the prompt) followed by a ``Record(purpose="speech")``; in stream mode it
  becomes a keys-only ``Gather`` while the stream listens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from call_flows import actions as a
from call_flows.model import NodeType
from call_flows.registry import FlowRegistry
from call_flows.session import Session, Step
from ivr.settings import Settings
from ivr.twilio_rest import RetryPolicy, TwilioRest, TwilioRestError
from speech.audio import read_wav
from speech.errors import SpeechError
from speech.models import resolve_model_dir
from speech.recognizer import RecognitionResult, Recognizer
from speech.streaming import recognizer_cache

log = logging.getLogger(__name__)

MAX_ANSWER_SECONDS = 30.0
"""Audio of a spoken answer kept for recognition; the rest of a long recording is ignored."""
MAX_RECORDING_BYTES = 16 * 1024 * 1024
"""A larger download is not a spoken answer (16 MB ≈ 17 min of 8 kHz 16-bit audio)."""
RECORD_MAX_LENGTH_S = 15
RECORD_SILENCE_S = 2
"""``<Record timeout>``: seconds of silence that end the caller's answer."""
KEYS_FIRST_TIMEOUT_S = 1
"""The keys-only ``Gather`` before the recording: keys pressed during the prompt count."""
STREAM_GATHER_TIMEOUT_S = 10
"""Stream mode: the keys-only ``Gather`` waits this long; speech arrives by REST update."""
RECORDING_RETRY = RetryPolicy(recording_attempts=6, recording_delay=0.5)
"""A fresh recording answers 404 for a moment; the webhook must still answer within 15 s."""
_KEY = re.compile(r"^[0-9*]$")


class SpeechMode(str, Enum):
    TWILIO = "twilio"
    RECORD = "vosk-record"
    STREAM = "vosk-stream"


@dataclass(frozen=True)
class Listening:
    """What a turn listens for: a language and a grammar (None: free speech)."""

    language: str
    phrases: tuple[str, ...] | None


def listening_for(registry: FlowRegistry, session: Session) -> Listening:
    """The grammar of the node the call waits at (pure: flow data only)."""
    flow = registry.get(session.flow, session.flow_version)
    if flow is None:
        try:
            flow = registry.current(session.flow)
        except Exception:  # noqa: BLE001 (a flow gone since: listen freely)
            return Listening(session.language or "es", None)
    line = registry.line(session.line) or registry.default_line
    language = session.language or line.language or flow.languages[0]
    node = flow.nodes.get(session.node)
    if node is None or node.type is not NodeType.MENU or "confirm" in session.pending:
        return Listening(language, None)
    langs = [session.language] if session.language else list(flow.languages)
    phrases = tuple(dict.fromkeys(p for o in node.options for lang in langs
                                  for p in o.phrases.get(lang, ())))
    return Listening(language, phrases or None)


def vosk_factory(settings: Settings) -> Callable[[str], Recognizer]:
    """A per-process cache of Vosk recognisers, one per language (model loaded once)."""
    from speech.vosk_recognizer import VoskRecognizer

    env = {"IVR_VOSK_MODEL_DIR": str(settings.effective_model_dir)}
    return recognizer_cache(lambda language: VoskRecognizer(language, env=env))


def result_event(result: RecognitionResult, now: datetime) -> a.Event:
    """The engine's event for a recognition result: words (the engine weighs the
    confidence: act, confirm, reprompt) or nothing heard."""
    if result.text:
        return a.Speech(text=result.text, confidence=result.confidence, now=now)
    return a.NoInput(now=now)


class SpeechTurns:
    """Recognises recorded answers for the web layer (one per process)."""

    def __init__(self, rest: TwilioRest, registry: FlowRegistry,
                 recognizers: Callable[[str], Recognizer],
                 model_available: Callable[[str], bool] | None = None,
                 max_bytes: int = MAX_RECORDING_BYTES,
                 max_seconds: float = MAX_ANSWER_SECONDS) -> None:
        self.rest = rest
        self.registry = registry
        self.recognizers = recognizers
        self._model_available = model_available
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._known: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Settings, registry: FlowRegistry, **kwargs: Any
                      ) -> SpeechTurns:
        rest = TwilioRest.from_settings(settings, retry=RECORDING_RETRY)
        env = {"IVR_VOSK_MODEL_DIR": str(settings.effective_model_dir)}

        def available(language: str) -> bool:
            try:
                resolve_model_dir(language, None, env)
                return True
            except SpeechError:
                return False

        kwargs.setdefault("model_available", available)
        return cls(rest, registry, vosk_factory(settings), **kwargs)

    def available(self, language: str) -> bool:
        """Whether this process can recognise ``language`` (checked once per language)."""
        if language not in self._known:
            ok = True if self._model_available is None else self._model_available(language)
            if not ok:
                log.warning("no Vosk model for '%s': its callers get the keypad instead of "
                            "speech (install one with `ivr models download %s`)",
                            language, language)
            self._known[language] = ok
        return self._known[language]

    def event(self, session: Session, params: Mapping[str, str], now: datetime) -> a.Event:
        """The event for a ``<Record purpose=speech>`` action request."""
        sid = session.call_sid
        ended_by = (params.get("Digits") or "").strip()
        if _KEY.match(ended_by):  # a key ended the recording: the caller chose by keypad
            return a.Digits(digits=ended_by, now=now)
        if ended_by == "hangup":
            log.info("call %s: caller hung up while answering; nothing to recognise", sid)
            return a.NoInput(now=now)
        url = (params.get("RecordingUrl") or params.get("RecordingSid") or "").strip()
        if not url:
            log.info("call %s: nothing recorded (silence): no input", sid)
            return a.NoInput(now=now)
        listening = listening_for(self.registry, session)
        result = self.recognise(sid, url, listening)
        return a.NoInput(now=now) if result is None else result_event(result, now)

    def recognise(self, call_sid: str, recording: str, listening: Listening
                  ) -> RecognitionResult | None:
        """Download and recognise one answer; None (and a log line) when impossible."""
        if not self.available(listening.language):
            log.error("call %s: no Vosk model for '%s'; treated as no input", call_sid,
                      listening.language)
            return None
        try:
            blob = self.rest.download_recording(recording, "wav")
        except TwilioRestError as exc:
            log.error("call %s: recording %s could not be downloaded (%s); treated as no "
                      "input", call_sid, recording, exc)
            return None
        if len(blob) > self.max_bytes:
            log.error("call %s: recording of %d bytes is larger than %d for a spoken answer; "
                      "treated as no input", call_sid, len(blob), self.max_bytes)
            return None
        try:
            audio = read_wav(blob, max_seconds=self.max_seconds)
            recognizer = self.recognizers(listening.language)
            result = recognizer.recognize(audio.pcm16(), audio.rate, listening.phrases)
        except SpeechError as exc:
            log.error("call %s: recording %s not recognised (%s); treated as no input",
                      call_sid, recording, exc)
            return None
        log.info("call %s: heard %r conf=%.2f reason=%s audio=%.1fs%s rtf=%.3f", call_sid,
                 result.text, result.confidence, result.reason or "-", result.audio_seconds,
                 " (cut)" if audio.truncated else "", result.rtf)
        return result


class OfflineListening:
    """The engine, with its speech ``Gather`` turns heard by Vosk instead of Twilio.

    ``mode_of(line_name)`` gives each line's :class:`SpeechMode`. To be removed once
    the engine emits these actions itself (see the README's speech section).
    """

    def __init__(self, engine: Any, turns: SpeechTurns,
                 mode_of: Callable[[str], SpeechMode]) -> None:
        self.engine = engine
        self.turns = turns
        self.mode_of = mode_of

    @property
    def registry(self) -> FlowRegistry:
        registry: FlowRegistry = self.engine.registry
        return registry

    def start(self, event: a.CallStarted) -> Step:
        return self.adapt(self.engine.start(event))

    def step(self, session: Session, event: a.Event) -> Step:
        return self.adapt(self.engine.step(session, event))

    def adapt(self, step: Step) -> Step:
        mode = self.mode_of(step.session.line)
        if mode is SpeechMode.TWILIO:
            return step
        out: list[a.Action] = []
        for action in step.actions:
            if not (isinstance(action, a.Gather) and action.speech):
                out.append(action)
                continue
            keys = replace(action, speech=False, hints=())
            if not self.turns.available(action.language):
                out.append(keys)  # keypad: the language cannot be heard here
            elif mode is SpeechMode.RECORD:
                out.append(replace(keys, timeout_s=KEYS_FIRST_TIMEOUT_S))
                out.append(a.Record(prompts=(), purpose="speech",
                                    max_length_s=RECORD_MAX_LENGTH_S,
                                    timeout_s=RECORD_SILENCE_S, play_beep=True))
            else:
                out.append(replace(keys, timeout_s=max(action.timeout_s,
                                                       STREAM_GATHER_TIMEOUT_S)))
        return replace(step, actions=tuple(out))


__all__ = [
    "Listening",
    "OfflineListening",
    "SpeechMode",
    "SpeechTurns",
    "listening_for",
    "result_event",
    "vosk_factory",
]
