"""Vosk behind the :class:`~speech.recognizer.Recognizer` interface.

The only module that imports ``vosk``. A model is loaded once per process and
cached by path (:func:`load_model`, thread-safe); every utterance or stream gets
its own ``KaldiRecognizer`` on that shared model (≈ 2 MB each).

Grammar mode and out-of-grammar rejection
-----------------------------------------
A node's phrases become a Vosk grammar. Vosk then forces *any* speech onto those
phrases, so the grammar also holds "garbage" alternatives that out-of-grammar speech
can fall on instead:

* models with ``[unk]`` (the official es/ca/en models) get ``[unk]``;
* models without it (the Korean test model) get a list of common words of the
  language that are not in the phrases (:data:`GARBAGE_WORDS`).

The result is accepted only when the decoded words are exactly one phrase and no
garbage; the confidence is the mean word confidence. A *sequence* grammar (digits)
accepts any sequence of its words; its confidence is the lowest word confidence.
Digit grammars get no garbage words on models without ``[unk]``: measured on the
Korean model, every multi-syllable garbage word steals short digit words ("삼 오"
came out as "합니다"), so there only the confidences and the plausibility checks
below reject other speech (weak: see the README). A phrase mixed with garbage
keeps its text but its confidence is capped below
:data:`~speech.recognizer.REJECT_BELOW`; several phrases, garbage only or nothing
give empty text. A second *free-decoding* pass was measured as a second opinion: with
the Korean model it runs at a real-time factor of ≈ 1 (forty times the grammar pass),
which the streaming latency budget cannot afford, so the garbage words stand in for
it (see the README's speech section).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import vosk

from speech.audio import resample
from speech.errors import ModelLoadError, RecognitionError
from speech.models import resolve_model_dir
from speech.recognizer import REJECT_BELOW, RecognitionResult, RecognitionStream, Recognizer, Word

log = logging.getLogger(__name__)

vosk.SetLogLevel(-1)  # Kaldi's INFO lines on stderr are noise; errors still surface

UNK = "[unk]"
MIXED_CAP = 0.45
"""Confidence ceiling for a phrase decoded together with garbage words."""

MAX_SECONDS_PER_SYLLABLE = 0.45
"""A phrase stretched longer than this per syllable is not speech of that phrase:
steady noise decoded in grammar mode comes out as one phrase spanning seconds."""

MIN_MODULATION_DB = 3.0
"""Speech rises and falls by syllables; steady noise does not (20 ms frame levels)."""

_FRAME_S = 0.02

GARBAGE_WORDS: Mapping[str, tuple[str, ...]] = {
    # Common two-syllable-or-longer Korean words: single syllables steal real
    # phrases, longer frequent words catch other speech (measured with espeak-ng).
    "ko": ("그리고", "이제", "그래서", "근데", "저기", "여기", "이거", "우리", "지금", "정말",
           "그냥", "아주", "많이", "같은", "있는", "없는", "하는", "되는", "이런", "그런",
           "사람", "생각", "때문", "어떻게", "이렇게", "그렇게", "합니다", "입니다",
           "있어요", "했어요"),
}

_cache: dict[Path, LoadedModel] = {}
_cache_lock = threading.Lock()


@dataclass
class LoadedModel:
    """A Vosk model in memory, shared by every recogniser of this process."""

    path: Path
    model: Any
    sample_rate: int
    has_unk: bool
    load_seconds: float
    _known: dict[str, bool] = field(default_factory=dict)
    _grammars: dict[tuple[str, tuple[str, ...], bool], Grammar] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def grammar(self, phrases: Sequence[str], language: str, sequence: bool = False) -> Grammar:
        """The grammar for these phrases, built once (a turn's grammar repeats per call)."""
        key = (language, tuple(phrases), sequence)
        with self._lock:
            cached = self._grammars.get(key)
        if cached is not None:
            return cached
        built = build_grammar(self, phrases, language, sequence)
        with self._lock:
            if len(self._grammars) > 4096:  # flows are finite; a bound keeps it so
                self._grammars.clear()
            self._grammars[key] = built
        return built

    def knows(self, word: str) -> bool:
        with self._lock:
            if word not in self._known:
                self._known[word] = self.model.vosk_model_find_word(word) >= 0
            return self._known[word]


def _model_rate(path: Path) -> int:
    conf = path / "conf" / "mfcc.conf"
    if conf.is_file():
        match = re.search(r"--sample-frequency=(\d+)", conf.read_text(errors="replace"))
        if match:
            return int(match.group(1))
    return 16000  # Kaldi's default when the config does not say


def load_model(path: str | Path) -> LoadedModel:
    """The model at ``path``, loaded on first use and then reused (thread-safe)."""
    key = Path(path).resolve()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        if not key.is_dir():
            raise ModelLoadError(f"{key}: model directory does not exist")
        started = time.perf_counter()
        try:
            model = vosk.Model(str(key))
        except Exception as exc:  # vosk raises a bare Exception on failure
            raise ModelLoadError(f"{key}: Vosk could not load this model ({exc}); "
                                 "download it again with `ivr models download LANG`") from exc
        loaded = LoadedModel(key, model, _model_rate(key), model.vosk_model_find_word(UNK) >= 0,
                             time.perf_counter() - started)
        log.info("loaded Vosk model %s in %.1f s (unk=%s)", key, loaded.load_seconds, loaded.has_unk)
        _cache[key] = loaded
        return loaded


def loaded_models() -> list[LoadedModel]:
    with _cache_lock:
        return list(_cache.values())


@dataclass(frozen=True)
class Grammar:
    """What a grammar stream decodes against and how to read its output."""

    phrases: tuple[tuple[str, ...], ...]  # usable phrases, as words
    garbage: frozenset[str]
    dropped: tuple[str, ...]  # phrases with words the model does not know
    sequence: bool = False  # any sequence of the phrases' words is an answer (digits)

    def vosk_json(self) -> str:
        items = [" ".join(p) for p in self.phrases] + sorted(self.garbage)
        # ensure_ascii=False: Vosk does not decode \\u escapes (Korean words vanish).
        return json.dumps(items, ensure_ascii=False)


def build_grammar(loaded: LoadedModel, phrases: Sequence[str], language: str,
                  sequence: bool = False) -> Grammar:
    usable: list[tuple[str, ...]] = []
    dropped: list[str] = []
    for phrase in phrases:
        words = tuple(str(phrase).lower().split())
        if words and all(loaded.knows(w) for w in words):
            if words not in usable:
                usable.append(words)
        elif words:
            dropped.append(str(phrase))
    if dropped:
        log.warning("grammar phrases dropped, words unknown to the %s model: %s", language, dropped)
    if not usable:
        raise RecognitionError(f"none of the phrases {list(phrases)!r} can be recognised with "
                               f"the {language} model (words not in its vocabulary)")
    in_phrases = {w for p in usable for w in p}
    if loaded.has_unk:
        garbage = frozenset({UNK})
    elif sequence:
        garbage = frozenset()  # see the module docstring: garbage steals short digits
    else:
        candidates = GARBAGE_WORDS.get(language.split("-")[0].lower(), ())
        garbage = frozenset(w for w in candidates if w not in in_phrases and loaded.knows(w))
    return Grammar(tuple(usable), garbage, tuple(dropped), sequence)


def _words(result: Mapping[str, Any]) -> list[Word]:
    return [Word(str(w.get("word", "")), float(w.get("start", 0.0)), float(w.get("end", 0.0)),
                 float(w.get("conf", 0.0))) for w in result.get("result", [])]


def _syllables(text: str) -> int:
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3")
    vowels = len(re.findall(r"[aeiouyáéíóúàèòïüw]+", text.lower()))
    return max(1, hangul + vowels)


def frame_levels(samples: np.ndarray, rate: int) -> np.ndarray:
    """Loudness (dBFS) of consecutive 20 ms frames."""
    size = max(1, int(rate * _FRAME_S))
    n = len(samples) // size
    if n == 0:
        return np.zeros(0)
    frames = samples[: n * size].astype(np.float64).reshape(n, size)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    levels: np.ndarray = 20 * np.log10(np.maximum(rms, 1.0) / 32768.0)
    return levels


def _implausible(real: Sequence[Word], levels: np.ndarray | None, sequence: bool = False) -> str:
    # A dictated sequence has pauses between its words: time only the words then.
    span = sum(w.end - w.start for w in real) if sequence else real[-1].end - real[0].start
    if span / _syllables("".join(w.word for w in real)) > MAX_SECONDS_PER_SYLLABLE:
        return "implausible_duration"
    if levels is not None and len(levels):
        # 100 ms either side: real speech starts and stops, steady noise goes on.
        window = levels[max(0, int(real[0].start / _FRAME_S) - 5): int(real[-1].end / _FRAME_S) + 6]
        if len(window) >= 5 and float(np.std(window)) < MIN_MODULATION_DB:
            return "steady_noise"
    return ""


def judge_grammar(words: Sequence[Word], grammar: Grammar,
                  levels: np.ndarray | None = None) -> tuple[str, float, str]:
    """(text, confidence, reason) for words decoded against ``grammar``.

    ``levels`` (20 ms frame loudness of the utterance) enables the steady-noise check.
    """
    if not words:
        return "", 0.0, "no_speech"
    garbage = [w for w in words if w.word in grammar.garbage]
    real = [w for w in words if w.word not in grammar.garbage]
    if not real:
        return "", 0.0, "out_of_grammar"
    sequence = tuple(w.word for w in real)
    if grammar.sequence:
        confidence = min(w.conf for w in real)
    elif sequence not in grammar.phrases:
        return "", 0.0, "out_of_grammar"  # several phrases at once: not an answer
    else:
        confidence = float(np.mean([w.conf for w in real]))
    text = " ".join(sequence)
    suspicious = _implausible(real, levels, grammar.sequence)
    if suspicious:
        return text, min(confidence, MIXED_CAP), suspicious
    if garbage:
        return text, min(confidence, MIXED_CAP), "mixed_with_garbage"
    return text, confidence, ""


class VoskStream(RecognitionStream):
    """One utterance: one ``KaldiRecognizer`` fed incrementally."""

    def __init__(self, loaded: LoadedModel, sample_rate: int, grammar: Grammar | None) -> None:
        self._loaded = loaded
        self._grammar = grammar
        self._in_rate = sample_rate
        # Vosk resamples 8 kHz phone audio itself; other odd rates go through numpy.
        self._rate = sample_rate if sample_rate in (8000, 16000, loaded.sample_rate) else loaded.sample_rate
        if grammar is not None:
            self._rec = vosk.KaldiRecognizer(loaded.model, self._rate, grammar.vosk_json())
        else:
            self._rec = vosk.KaldiRecognizer(loaded.model, self._rate)
        self._rec.SetWords(True)
        self._segments: list[Word] = []
        self._samples = 0
        self._busy = 0.0
        self._done = False
        self._pending = b""
        self._audio: list[np.ndarray] = []  # kept for the noise check (utterances are short)

    def feed(self, pcm16: bytes) -> None:
        if self._done:
            raise RecognitionError("stream already finished")
        data = self._pending + pcm16
        if len(data) % 2:
            data, self._pending = data[:-1], data[-1:]
        else:
            self._pending = b""
        if not data:
            return
        started = time.perf_counter()
        self._samples += len(data) // 2
        if self._grammar is not None:
            self._audio.append(np.frombuffer(data, dtype="<i2"))
        if self._rate != self._in_rate:
            samples = np.frombuffer(data, dtype="<i2")
            data = resample(samples, self._in_rate, self._rate).astype("<i2").tobytes()
        try:
            if self._rec.AcceptWaveform(data):
                self._segments.extend(_words(json.loads(self._rec.Result())))
        except Exception as exc:
            raise RecognitionError(f"Vosk rejected the audio: {exc}") from exc
        self._busy += time.perf_counter() - started

    def partial(self) -> tuple[str, ...] | None:
        if self._done or self._grammar is None:
            return None
        started = time.perf_counter()
        words = tuple(json.loads(self._rec.PartialResult()).get("partial", "").split())
        self._busy += time.perf_counter() - started
        done = tuple(w.word for w in self._segments)
        words = done + words
        if not words or any(w in self._grammar.garbage for w in words):
            return None
        return words

    def finish(self) -> RecognitionResult:
        if self._done:
            raise RecognitionError("stream already finished")
        self._done = True
        started = time.perf_counter()
        final = json.loads(self._rec.FinalResult())
        words = self._segments + _words(final)
        self._busy += time.perf_counter() - started
        audio_seconds = self._samples / self._in_rate
        rtf = self._busy / audio_seconds if audio_seconds > 0 else 0.0
        if self._grammar is not None:
            audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)
            levels = frame_levels(audio, self._in_rate)
            text, confidence, reason = judge_grammar(words, self._grammar, levels)
        else:
            real = [w for w in words if w.word != UNK]
            text = " ".join(w.word for w in real)
            confidence = float(np.mean([w.conf for w in real])) if real else 0.0
            reason = "" if real else "no_speech"
        return RecognitionResult(text, confidence, tuple(words), audio_seconds, rtf, reason)


class VoskRecognizer(Recognizer):
    """Recognises one language with one shared Vosk model."""

    def __init__(self, language: str, model_dir: str | Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.language = language
        self.model = load_model(resolve_model_dir(language, model_dir, env))

    def open_stream(self, sample_rate: int, phrases: Sequence[str] | None = None, *,
                    sequence: bool = False) -> VoskStream:
        if sample_rate < 4000 or sample_rate > 192_000:
            raise RecognitionError(f"unusable sample rate {sample_rate} Hz")
        grammar = self.model.grammar(phrases, self.language, sequence) if phrases else None
        return VoskStream(self.model, sample_rate, grammar)


__all__ = [
    "GARBAGE_WORDS",
    "REJECT_BELOW",
    "LoadedModel",
    "VoskRecognizer",
    "VoskStream",
    "build_grammar",
    "judge_grammar",
    "load_model",
    "loaded_models",
]
