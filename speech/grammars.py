"""What a listening turn decodes against: menu phrases, yes/no, digits, or free speech.

A flow node listens for one of these (:class:`GrammarKind`):

* ``phrases`` -- a menu's option phrases; the answer must be exactly one phrase;
* ``yes_no`` -- :func:`yes_no_phrases`: the ways of saying yes and no in the language
  (a ``confirm`` node, or a menu confirming what it heard); one phrase;
* ``digits`` -- :func:`digit_words`: number words, said in any order and number
  ("uno dos tres", "doce treinta y cuatro", "dotze"); read with
  :func:`speech.numbers.parse_digits`;
* ``free`` -- no grammar: the full model (a "tell us why you are calling" node).

A caller holding in a queue is listened to for one thing only: asking to be called
back (:func:`callback_phrases`, "llámenme", "truqueu-me", "call me back").

The lists are written as the Vosk models spell words (with accents); words a model
does not know are dropped when its grammar is built, so one list serves several
model versions. The yes/no phrases are a subset of what
:func:`speech.intents.parse_yes_no` understands, so everything the grammar can
produce is read correctly by the flow engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from speech.intents import base_language


class GrammarKind(str, Enum):
    FREE = "free"
    PHRASES = "phrases"
    YES_NO = "yes_no"
    DIGITS = "digits"


_YES_NO: dict[str, tuple[str, ...]] = {
    "es": ("sí", "si", "no", "correcto", "incorrecto", "claro", "vale", "exacto", "eso es",
           "así es", "de acuerdo", "perfecto", "afirmativo", "negativo", "no es correcto",
           "por supuesto", "para nada"),
    "ca": ("sí", "si", "no", "correcte", "incorrecte", "exacte", "clar", "és clar", "vale",
           "perfecte", "afirmatiu", "negatiu", "no és correcte", "gens"),
    "en": ("yes", "yeah", "yep", "no", "nope", "right", "correct", "that's right", "wrong",
           "incorrect", "sure", "okay", "of course", "not really", "not at all"),
    # Two words only: with 예/아니오/아니 as well, espeak-ng's "안녕하세요" decoded as
    # "아니오" at confidence 1.0 on the Korean test model; with these two it is rejected.
    "ko": ("네", "아니요"),
}

_DIGITS: dict[str, tuple[str, ...]] = {
    "es": ("cero", "uno", "un", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho",
           "nueve", "diez", "once", "doce", "trece", "catorce", "quince", "dieciséis",
           "diecisiete", "dieciocho", "diecinueve", "veinte", "veintiuno", "veintiún",
           "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis",
           "veintisiete", "veintiocho", "veintinueve", "treinta", "cuarenta", "cincuenta",
           "sesenta", "setenta", "ochenta", "noventa", "cien", "ciento", "doscientos",
           "trescientos", "cuatrocientos", "quinientos", "seiscientos", "setecientos",
           "ochocientos", "novecientos", "mil", "y", "doble"),
    "ca": ("zero", "u", "un", "una", "dos", "dues", "tres", "quatre", "cinc", "sis", "set",
           "vuit", "nou", "deu", "onze", "dotze", "tretze", "catorze", "quinze", "setze",
           "disset", "divuit", "dinou", "vint", "trenta", "quaranta", "cinquanta", "seixanta",
           "setanta", "vuitanta", "noranta", "cent", "cents", "mil", "i"),
    "en": ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight",
           "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
           "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty",
           "seventy", "eighty", "ninety", "hundred", "thousand", "and", "double", "triple"),
    "ko": ("영", "공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구", "십"),
}


_CALLBACK: dict[str, tuple[str, ...]] = {
    "es": ("llámenme", "llámeme", "que me llamen", "que me llamen ustedes", "llamadme",
           "prefiero que me llamen", "devuélvanme la llamada", "llámenme más tarde"),
    "ca": ("truqueu-me", "truqueu me", "que em truquin", "truqueu-me més tard",
           "prefereixo que em truquin", "em podeu trucar"),
    "en": ("call me back", "call me", "please call me back", "call me later",
           "ring me back", "i'd rather you call me back"),
    # The Korean test model: "연락" (contact me) is what it hears reliably from
    # espeak-ng's voice; "전화 주세요" is there for real callers.
    "ko": ("연락", "전화 주세요"),
}


def callback_phrases(language: str) -> tuple[str, ...]:
    """What a holding caller says to be called back instead (empty when unknown)."""
    return _CALLBACK.get(base_language(language), ())


def is_callback_request(text: str, language: str) -> bool:
    """Whether recognised ``text`` is one of ``language``'s callback phrases (a grammar
    turn returns one phrase exactly; case, hyphens and spaces are not told apart)."""
    said = _folded(text)
    return bool(said) and any(_folded(p) == said for p in callback_phrases(language))


def _folded(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


def yes_no_phrases(language: str) -> tuple[str, ...]:
    """The yes/no grammar of ``language`` (empty for a language without one)."""
    return _YES_NO.get(base_language(language), ())


def digit_words(language: str) -> tuple[str, ...]:
    """The number words of ``language``'s digits grammar (empty when unknown)."""
    return _DIGITS.get(base_language(language), ())


@dataclass(frozen=True)
class Listen:
    """What one turn listens for. ``phrases`` is None for free speech."""

    language: str
    kind: GrammarKind = GrammarKind.FREE
    phrases: tuple[str, ...] | None = None
    max_digits: int | None = None  # digits: the answer is complete at this many

    @property
    def sequence(self) -> bool:
        """Any sequence of the grammar's words is an answer (digits), not one phrase."""
        return self.kind is GrammarKind.DIGITS

    @classmethod
    def of(cls, language: str, kind: GrammarKind, phrases: Sequence[str] = (),
           max_digits: int | None = None) -> Listen:
        """Build a turn; ``yes_no``/``digits`` take their words from the language."""
        if kind is GrammarKind.YES_NO:
            words = yes_no_phrases(language)
        elif kind is GrammarKind.DIGITS:
            words = digit_words(language)
        else:
            words = tuple(dict.fromkeys(p for p in phrases if p.strip()))
        if kind is GrammarKind.FREE or not words:
            return cls(language)
        return cls(language, kind, tuple(words), max_digits if kind is GrammarKind.DIGITS
                   else None)


def phrase_complete(words: Sequence[str], listen: Listen) -> bool:
    """Whether partial ``words`` already are a whole answer that nothing can extend:
    one grammar phrase that is no prefix of a longer phrase, or (digits) as many
    digits as the turn expects. Used to end a grammar turn early."""
    if not words or not listen.phrases:
        return False
    if listen.kind is GrammarKind.DIGITS:
        from speech.numbers import parse_digits

        if not listen.max_digits:
            return False
        digits = parse_digits(" ".join(words), listen.language) or ""
        return len(digits) >= listen.max_digits
    said = tuple(w.lower() for w in words)
    grammar = {tuple(p.lower().split()) for p in listen.phrases}
    if said not in grammar:
        return False
    return not any(len(p) > len(said) and p[:len(said)] == said for p in grammar)


__all__ = ["GrammarKind", "Listen", "callback_phrases", "digit_words", "is_callback_request",
           "phrase_complete", "yes_no_phrases"]
