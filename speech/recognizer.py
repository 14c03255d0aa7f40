"""The recogniser interface every speech engine adapter implements.

A recogniser turns 16-bit little-endian PCM mono at a given sample rate into a
:class:`RecognitionResult`. With ``phrases`` it decodes against that grammar only
and must answer empty text (or a confidence below :data:`REJECT_BELOW`) rather than
force out-of-grammar speech onto a phrase; without phrases it decodes free speech.

With ``sequence=True`` any sequence of the grammar's words is an answer (digits:
"tres cinco uno"); otherwise the answer must be exactly one phrase.

Batch use: ``recognizer.recognize(pcm, rate, phrases)``.
Streaming use: ``stream = recognizer.open_stream(rate, phrases)``, then
``stream.feed(chunk)`` for each chunk (``stream.partial()`` for the words so far)
and ``stream.finish()`` once.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

REJECT_BELOW = 0.5
"""Results under this confidence mean "no match": the flow reprompts."""


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span (seconds) and confidence (0..1)."""

    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True)
class RecognitionResult:
    """What was said. ``text == ""`` means nothing usable was recognised."""

    text: str
    confidence: float
    words: tuple[Word, ...] = field(default_factory=tuple)
    audio_seconds: float = 0.0
    rtf: float = 0.0  # decoding time / audio_seconds; model loading excluded
    reason: str = ""  # why the text is empty: "silence", "out_of_grammar", "disconnected"...

    @property
    def accepted(self) -> bool:
        return bool(self.text) and self.confidence >= REJECT_BELOW

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's JSON line: text, confidence, audio_seconds, rtf."""
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "audio_seconds": round(self.audio_seconds, 3),
            "rtf": round(self.rtf, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["words"] = [asdict(w) for w in self.words]
        return data


class RecognitionStream(abc.ABC):
    """One utterance being decoded incrementally (one per caller turn)."""

    @abc.abstractmethod
    def feed(self, pcm16: bytes) -> None:
        """Decode more 16-bit PCM mono audio at the stream's rate."""

    @abc.abstractmethod
    def finish(self) -> RecognitionResult:
        """End of the utterance: the final result. The stream cannot be fed again."""

    def partial(self) -> tuple[str, ...] | None:
        """The grammar words decoded so far; None when they hold anything else
        (garbage, unknown). Engines without partial results answer None."""
        return None


class Recognizer(abc.ABC):
    """A speech recogniser for one language (one loaded model, shared)."""

    language: str

    @abc.abstractmethod
    def open_stream(self, sample_rate: int, phrases: Sequence[str] | None = None, *,
                    sequence: bool = False) -> RecognitionStream:
        """A new stream; ``phrases`` turns grammar mode on."""

    def recognize(self, pcm16: bytes, sample_rate: int,
                  phrases: Sequence[str] | None = None, *,
                  sequence: bool = False) -> RecognitionResult:
        """Recognise a whole utterance at once."""
        stream = self.open_stream(sample_rate, phrases, sequence=sequence)
        stream.feed(pcm16)
        return stream.finish()
