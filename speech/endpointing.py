"""Energy-based end-of-speech detection for live audio (Twilio's 20 ms frames).

A frame is *voiced* when its loudness is :attr:`EndpointConfig.margin_db` above an
adaptive noise floor (and above an absolute minimum). Speech starts after
``start_ms`` of voiced frames; it ends after ``end_silence_ms`` of unvoiced frames
(700 ms: long enough for a pause between digits or words), or when it lasts
``max_utterance_s``. Grammar turns end sooner: after ``early_end_ms`` of silence the
stream handler asks the recogniser whether the words so far already are a whole
answer (:func:`speech.grammars.phrase_complete`) and, if so, ends the turn with
:meth:`Endpointer.end_now` (``EndReason.GRAMMAR_COMPLETE``). The floor follows steady noise (a hum, a
noisy line), so constant noise does not count as speech for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from speech.audio import rms_dbfs


class EndReason(str, Enum):
    SILENCE = "silence"
    GRAMMAR_COMPLETE = "grammar_complete"  # a whole grammar phrase, then a short silence
    MAX_LENGTH = "max_length"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class EndpointConfig:
    start_ms: int = 60
    end_silence_ms: int = 700
    max_utterance_s: float = 15.0
    margin_db: float = 12.0
    min_speech_dbfs: float = -50.0
    min_voiced_ms: int = 120  # shorter bursts (a click, a cough) are not an utterance
    early_end_ms: int = 150  # grammar turns: silence after a complete phrase (0: off)


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds since the stream began
    barge_in: bool  # a prompt was playing


@dataclass(frozen=True)
class SpeechEnded:
    at: float
    reason: EndReason
    voiced_seconds: float
    last_voiced_at: float  # end of the last voiced frame


EndpointEvent = SpeechStarted | SpeechEnded


class Endpointer:
    """Feed frames in order; get :class:`SpeechStarted` / :class:`SpeechEnded` events."""

    def __init__(self, sample_rate: int = 8000, config: EndpointConfig | None = None) -> None:
        self.rate = sample_rate
        self.config = config or EndpointConfig()
        self.floor_db = -70.0
        self.in_speech = False
        self.prompt_playing = False
        self._elapsed = 0.0
        self._voiced_run = 0.0
        self._silence_run = 0.0
        self._speech_started_at = 0.0
        self._voiced_total = 0.0
        self._last_voiced_at = 0.0

    @property
    def elapsed(self) -> float:
        return self._elapsed

    @property
    def silence_ms(self) -> float:
        """Unvoiced time since the last voiced frame (0 while voiced)."""
        return self._silence_run * 1000

    def end_now(self, reason: EndReason) -> SpeechEnded | None:
        """End the utterance in progress now (the caller said a whole answer)."""
        return self._end(reason) if self.in_speech else None

    def is_voiced(self, level_db: float) -> bool:
        return level_db >= max(self.floor_db + self.config.margin_db, self.config.min_speech_dbfs)

    def _track_floor(self, level_db: float) -> None:
        if level_db < self.floor_db:
            self.floor_db = level_db  # drop at once
        else:
            # Rise slowly, much slower during speech: steady noise is absorbed in
            # about a second outside speech and a few seconds inside.
            rate = 0.004 if self.in_speech else 0.04
            self.floor_db += rate * (level_db - self.floor_db)

    def process(self, samples: np.ndarray) -> list[EndpointEvent]:
        """One frame (any length; 20 ms on Twilio) of int16 samples."""
        duration = len(samples) / self.rate
        level = rms_dbfs(samples)
        voiced = self.is_voiced(level)
        self._track_floor(level)
        start = self._elapsed
        self._elapsed += duration
        events: list[EndpointEvent] = []
        if voiced:
            self._voiced_run += duration
            self._silence_run = 0.0
            self._last_voiced_at = self._elapsed
            if self.in_speech:
                self._voiced_total += duration
        else:
            self._voiced_run = 0.0
            self._silence_run += duration
        cfg = self.config
        if not self.in_speech:
            if self._voiced_run * 1000 >= cfg.start_ms - 1e-6:
                self.in_speech = True
                self._speech_started_at = start - self._voiced_run + duration
                self._voiced_total = self._voiced_run
                events.append(SpeechStarted(self._speech_started_at, self.prompt_playing))
            return events
        if self._silence_run * 1000 >= cfg.end_silence_ms - 1e-6:
            events.append(self._end(EndReason.SILENCE))
        elif self._elapsed - self._speech_started_at >= cfg.max_utterance_s:
            events.append(self._end(EndReason.MAX_LENGTH))
        return events

    def _end(self, reason: EndReason) -> SpeechEnded:
        event = SpeechEnded(self._elapsed, reason, self._voiced_total, self._last_voiced_at)
        self.in_speech = False
        self._voiced_run = 0.0
        self._silence_run = 0.0
        return event

    def disconnect(self) -> SpeechEnded | None:
        """The line dropped: end an utterance in progress, if any."""
        return self._end(EndReason.DISCONNECTED) if self.in_speech else None

    @property
    def long_enough(self) -> bool:
        return self._voiced_total * 1000 >= self.config.min_voiced_ms
