"""Callers' speech recognised offline by Vosk: the recording path, and what a turn hears.

Three ways a line can listen (:class:`SpeechMode`): Twilio's own recogniser
(``<Gather input="speech">``), **vosk-record** (the caller's answer is recorded with
``<Record>``, downloaded from Twilio and recognised here) and **vosk-stream** (the
caller's audio is forked to our Media Streams websocket, see
:mod:`ivr.media_streams`). In both Vosk modes no audio goes to a third-party
recogniser.

* :func:`listening_for` says what the call's current node listens for (pure, from
  flow data): a menu's option phrases in the caller's language; yes/no (a
  ``confirm`` node, a menu confirming what it heard, a callback confirming the
  number); digits (an ``ask`` node for digits, a callback number: number words, any
  sequence); free speech for ``ask`` nodes with ``input: speech``; a caller holding
  in a queue, the callback phrases ("llámenme": see :class:`ivr.media_streams.LiveTurns`).
  :func:`prompt_seconds` estimates how long the turn's prompt plays (barge-in).
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
from speech.grammars import GrammarKind, Listen, callback_phrases
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
SYLLABLES_PER_S = 5.0
"""Text-to-speech speaking rate used to estimate how long a prompt plays."""
PLAY_ASSUMED_S = 8.0
"""A ``<Play>`` prompt's length is unknown here: assumed this long (barge-in window)."""
_SYLLABLE = re.compile(r"[\uac00-\ud7a3]|[aeiouyáéíóúàèòïüw]+", re.IGNORECASE)


class SpeechMode(str, Enum):
    TWILIO = "twilio"
    RECORD = "vosk-record"
    STREAM = "vosk-stream"


@dataclass(frozen=True)
class Listening:
    """What a turn listens for: a language and a grammar (None: free speech)."""

    language: str
    phrases: tuple[str, ...] | None
    kind: GrammarKind | None = None  # None: PHRASES with phrases, else FREE
    max_digits: int | None = None  # digits: complete at this many (early end of turn)

    @property
    def sequence(self) -> bool:
        return self.kind is GrammarKind.DIGITS

    @classmethod
    def of(cls, listen: Listen) -> Listening:
        return cls(listen.language, listen.phrases,
                   listen.kind if listen.phrases else None, listen.max_digits)


def _node_of(registry: FlowRegistry, session: Session) -> tuple[Any, str, Any]:
    """(flow or None, language, node or None) of the node the call waits at."""
    flow = registry.get(session.flow, session.flow_version)
    if flow is None:
        try:
            flow = registry.current(session.flow)
        except Exception:  # noqa: BLE001 (a flow gone since: listen freely)
            return None, session.language or "es", None
    line = registry.line(session.line) or registry.default_line
    language = session.language or line.language or flow.languages[0]
    return flow, language, flow.nodes.get(session.node)


def listening_for(registry: FlowRegistry, session: Session) -> Listening:
    """The grammar of the node the call waits at (pure: flow data only)."""
    flow, language, node = _node_of(registry, session)
    if node is None:
        return Listening(language, None)
    kind = node.type
    if kind is NodeType.CONFIRM or (kind is NodeType.MENU and "confirm" in session.pending) or (
            kind is NodeType.CALLBACK and session.pending.get("stage") == "confirm"):
        lang = session.pending.get("lang") or language
        return Listening.of(Listen.of(lang, GrammarKind.YES_NO))
    if kind is NodeType.MENU:
        langs = [session.language] if session.language else list(flow.languages)
        phrases = tuple(dict.fromkeys(p for o in node.options for lang in langs
                                      for p in o.phrases.get(lang, ())))
        return Listening(language, phrases or None)
    if (kind is NodeType.ASK and node.input == "digits") or kind is NodeType.CALLBACK:
        v = node.validator
        fixed = v.max_len if v and v.min_len == v.max_len else None
        digits = Listen.of(language, GrammarKind.DIGITS,
                           max_digits=node.max_digits or fixed if kind is NodeType.ASK else None)
        skip = node.skip.phrases.get(language, ()) if node.skip else ()
        if digits.phrases and skip:  # "skip" phrases are heard among the number words
            digits = replace(digits, phrases=digits.phrases + tuple(skip))
        return Listening.of(digits)
    if kind is NodeType.QUEUE:
        # Holding: only "call me back" is listened for (a grammar, never free speech:
        # cheap, and nothing else said in the room can move the call).
        return Listening.of(Listen.of(language, GrammarKind.PHRASES, callback_phrases(language)))
    return Listening(language, None)


def _text_seconds(text: Any) -> float:
    if text is None:
        return 0.0
    if text.play:
        return PLAY_ASSUMED_S
    words = "".join(text.template.parts[::2]) if text.template else ""
    holes = len(text.template.parts) // 2 if text.template else 0
    return len(_SYLLABLE.findall(words)) / SYLLABLES_PER_S + holes * 0.6


def prompt_seconds(registry: FlowRegistry, session: Session) -> float:
    """How long the prompt of the turn the call waits at plays, estimated from the
    flow's text (the node's prompt, reprompt or keypad prompt by attempt, or the
    "did you say" question). Prompts said before the node (a welcome) are not known
    here, so the estimate can be short; see :class:`ivr.media_streams.LiveTurns`."""
    flow, language, node = _node_of(registry, session)
    if node is None:
        return 0.0

    def loc(texts: Any) -> Any:
        return (texts.get(language) or texts.get(flow.languages[0])) if texts else None

    if "confirm" in session.pending:
        parts = [loc(flow.messages.get("confirm_heard"))]
    elif session.attempts == 1:
        parts = [loc(node.reprompt)] if node.reprompt else [
            loc(flow.messages.get("not_understood")), loc(node.prompt)]
    elif session.attempts >= 2:
        parts = [loc(node.keypad_prompt)] if node.keypad_prompt else [
            loc(flow.messages.get("keypad_only")), loc(node.prompt)]
    else:
        parts = [loc(node.prompt)]
    return round(sum(_text_seconds(p) for p in parts), 2)


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
            result = recognizer.recognize(audio.pcm16(), audio.rate, listening.phrases,
                                          sequence=listening.sequence)
        except SpeechError as exc:
            log.error("call %s: recording %s not recognised (%s); treated as no input",
                      call_sid, recording, exc)
            return None
        log.info("call %s: heard %d word(s) conf=%.2f reason=%s audio=%.1fs%s rtf=%.3f",
                 call_sid, len(result.text.split()), result.confidence, result.reason or "-",
                 result.audio_seconds,
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
    "prompt_seconds",
    "result_event",
    "vosk_factory",
]
