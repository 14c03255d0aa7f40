"""Turn what a caller said (text) into an intent, or a yes/no answer.

Pure text functions used by the flow engine for ``menu``, ``ask`` and ``confirm``
nodes, whether the words came from Vosk, from Twilio's ``SpeechResult`` or from
``ivr simulate --say``. They never raise on any string: garbage in gives
``IntentMatch(None, 0.0, "")`` or ``None``.

Matching is deliberately simple and explainable:

* text and phrases are :func:`normalize`-d (case, accents, punctuation, Catalan
  ``l·l``, apostrophes);
* a phrase found word for word inside the text scores 1.0;
* otherwise each content word of the phrase (stop words removed) is compared with
  the words of the text, tolerating small ASR errors (``fractura`` ~ ``factura``),
  and the score is the share of the phrase's content words found, weighted by how
  close they were;
* a best score below :data:`MATCH_THRESHOLD`, or two different intents tied at the
  top, gives ``intent=None`` (the engine then reprompts).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MATCH_THRESHOLD = 0.6
"""Below this score :func:`match_intent` answers ``intent=None``."""

TOKEN_SIMILARITY = 0.75
"""Two different words count as the same (an ASR slip) from this similarity up."""

MAX_TOKENS = 200
"""Only the first words of very long texts are looked at (bounded work on garbage)."""

MAX_CHARS = 4000

_APOSTROPHES = "'’‘`´ʼ"
_MIDDLE_DOTS = "·.•‧∙"

_STOP_WORDS: dict[str, frozenset[str]] = {
    "es": frozenset(
        ["a", "al", "ante", "bueno", "con", "de", "del", "el", "en", "entonces", "es", "esta", "este", "eh", "ehm", "em", "esto", "estoy", "favor", "gracias", "hola", "la", "las", "le", "lo", "los", "me", "mi", "mis", "ok", "oye", "para", "pues", "por", "porfa", "que", "quiero", "querria", "quisiera", "se", "seria", "su", "sus", "te", "tengo", "un", "una", "unas", "unos", "vale", "yo", "y", "o", "u", "pues", "necesito", "hablar"]
    ),
    "ca": frozenset(
        ["a", "al", "als", "amb", "de", "del", "dels", "doncs", "el", "em", "en", "es", "esta", "eh", "ehm", "els", "favor", "gracies", "hola", "i", "la", "les", "li", "lo", "m", "me", "meu", "meva", "per", "perque", "que", "seria", "siusplau", "un", "una", "uns", "unes", "vull", "voldria", "jo", "o", "necessito", "parlar", "l", "d", "s", "n", "t"]
    ),
    "en": frozenset(
        ["a", "an", "and", "about", "the", "i", "im", "id", "ive", "me", "my", "mine", "to", "of", "for", "on", "in", "at", "is", "it", "its", "please", "thanks", "thank", "you", "hi", "hello", "um", "uh", "er", "erm", "well", "so", "like", "want", "wanna", "would", "like", "need", "can", "could", "speak", "talk", "with", "be", "this", "that", "thats"]
    ),
}
# "hablar/parlar/speak" are stop words on purpose: "quiero hablar con un agente"
# should rest on "agente", the word that tells intents apart.

_YES: dict[str, tuple[str, ...]] = {
    "es": ("si", "sip", "sii", "claro", "correcto", "exacto", "eso es", "asi es", "vale",
           "de acuerdo", "afirmativo", "por supuesto", "efectivamente", "ok", "okay",
           "perfecto", "sin problema", "no hay problema", "esta bien", "muy bien", "bien",
           "confirmo", "venga", "dale", "cierto", "exactamente"),
    "ca": ("si", "sip", "correcte", "exacte", "aixo es", "d acord", "vale", "val", "es clar",
           "clar", "ok", "okay", "perfecte", "efectivament", "cap problema", "molt be", "be",
           "confirmo", "certament", "exactament", "esta be", "afirmatiu"),
    "en": ("yes", "yeah", "yep", "yup", "yea", "ya", "correct", "right", "thats right",
           "sure", "of course", "ok", "okay", "affirmative", "absolutely", "exactly",
           "indeed", "no problem", "fine", "confirm", "that is right", "certainly",
           "definitely", "please do", "alright", "all right"),
    "ko": ("네", "예", "응", "맞아요", "맞습니다", "그래요", "좋아요"),
}
_NO: dict[str, tuple[str, ...]] = {
    "es": ("no", "nop", "negativo", "incorrecto", "no es correcto", "no es eso", "para nada",
           "en absoluto", "no gracias", "tampoco", "nada de eso", "de ninguna manera", "mal",
           "no es asi", "no esta bien"),
    "ca": ("no", "nop", "negatiu", "incorrecte", "no es correcte", "no es aixo", "gens",
           "de cap manera", "tampoc", "no gracies", "en absolut"),
    "en": ("no", "nope", "nah", "negative", "incorrect", "not correct", "thats wrong",
           "wrong", "not really", "no thanks", "no thank you", "not at all", "never",
           "thats not right", "not right", "not quite"),
    "ko": ("아니요", "아니오", "아니", "아니에요", "아닙니다", "틀려요"),
}


@dataclass(frozen=True)
class IntentMatch:
    """Which intent the text means (``None``: nothing matched well enough)."""

    intent: str | None
    score: float  # 0..1, how well the best phrase matched
    phrase: str  # the option phrase that matched ("" when intent is None)


def base_language(language: str | None) -> str:
    """``"es-ES"`` -> ``"es"``; anything odd -> ``""`` (all languages' words apply)."""
    if not isinstance(language, str):
        return ""
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]


def normalize(text: str, language: str) -> str:
    """Lowercase, strip accents and punctuation, collapse spaces.

    Catalan ``l·l`` (also typed ``l.l`` or ``ŀl``) becomes ``ll``. Apostrophes split
    elided words in Romance languages (``l'oficina`` -> ``l oficina``) and join
    English contractions (``don't`` -> ``dont``). Hangul and other scripts survive.
    """
    if not isinstance(text, str) or not text:
        return ""
    text = text[:MAX_CHARS]
    text = unicodedata.normalize("NFKD", text.casefold())
    # NFKD turns "ŀ" into "l·"; now "l·l" / "l.l" -> "ll" before punctuation goes.
    text = re.sub(r"l[" + re.escape(_MIDDLE_DOTS) + r"]l", "ll", text)
    lang = base_language(language)
    apostrophe = "" if lang == "en" else " "
    text = re.sub("[" + _APOSTROPHES + "]", apostrophe, text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Mn":  # combining accent: drop
            continue
        kept.append(ch if cat[0] in "LN" else " ")
    text = unicodedata.normalize("NFC", "".join(kept))
    return " ".join(text.split())


def _stop_words(language: str) -> frozenset[str]:
    lang = base_language(language)
    if lang in _STOP_WORDS:
        return _STOP_WORDS[lang]
    if lang in ("ko", "ja", "zh"):
        return frozenset()
    return frozenset().union(*_STOP_WORDS.values())


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def token_similarity(a: str, b: str) -> float:
    """1.0 for equal words; edit-distance ratio for words of 4+ letters; else 0."""
    if a == b:
        return 1.0
    # Short words ("no", "si", "sis") differ by one letter from other real words.
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 2:
        return 0.0
    ratio = 1.0 - _levenshtein(a, b) / max(len(a), len(b))
    return ratio if ratio >= TOKEN_SIMILARITY else 0.0


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    return any(list(haystack[i:i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _content(tokens: Sequence[str], stops: frozenset[str]) -> list[str]:
    content = [t for t in tokens if t not in stops]
    return content or list(tokens)  # a phrase made only of stop words keeps them


def _phrase_score(text_tokens: list[str], text_content: list[str], phrase_tokens: list[str],
                  stops: frozenset[str]) -> float:
    if not phrase_tokens or not text_tokens:
        return 0.0
    if _contains(text_tokens, phrase_tokens):
        return 1.0
    wanted = _content(phrase_tokens, stops)
    if _contains(text_tokens, wanted):
        return 0.98
    pool = text_content if text_content else text_tokens
    total = 0.0
    for word in wanted:
        total += max((token_similarity(word, t) for t in pool), default=0.0)
    # A fuzzy match is never as good as an exact one.
    return min(0.95, total / len(wanted))


def match_intent(text: str, options: Mapping[str, Sequence[str]], language: str) -> IntentMatch:
    """Best intent for ``text`` among ``options`` (intent -> example phrases/keywords)."""
    try:
        return _match_intent(text, options, language)
    except (TypeError, AttributeError, ValueError):
        return IntentMatch(None, 0.0, "")


def _match_intent(text: str, options: Mapping[str, Sequence[str]], language: str) -> IntentMatch:
    text_tokens = normalize(text, language).split()[:MAX_TOKENS]
    if not text_tokens or not options:
        return IntentMatch(None, 0.0, "")
    stops = _stop_words(language)
    text_content = [t for t in text_tokens if t not in stops]
    best: dict[str, tuple[float, int, str]] = {}
    for intent, phrases in options.items():
        if isinstance(phrases, str):
            phrases = [phrases]
        for phrase in phrases or ():
            tokens = normalize(str(phrase), language).split()
            score = _phrase_score(text_tokens, text_content, tokens, stops)
            candidate = (round(score, 4), len(tokens), str(phrase))
            if intent not in best or candidate[:2] > best[intent][:2]:
                best[intent] = candidate
    if not best:
        return IntentMatch(None, 0.0, "")
    ranked = sorted(best.items(), key=lambda item: item[1][:2], reverse=True)
    top_intent, (top_score, top_len, top_phrase) = ranked[0]
    if top_score < MATCH_THRESHOLD:
        return IntentMatch(None, top_score, "")
    if len(ranked) > 1:
        second_score, second_len, _ = ranked[1][1]
        if second_score >= top_score - 0.02 and second_len == top_len:
            # Two intents equally present ("factura o avería"): ask again.
            return IntentMatch(None, round(top_score / 2, 4), "")
    return IntentMatch(str(top_intent), top_score, top_phrase)


def _phrase_table(table: Mapping[str, tuple[str, ...]], language: str) -> Iterable[str]:
    lang = base_language(language)
    if lang in table:
        return table[lang]
    return {p for phrases in table.values() for p in phrases}


def parse_yes_no(text: str, language: str) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when unclear or contradictory."""
    try:
        tokens = normalize(text, language).split()[:MAX_TOKENS]
    except (TypeError, AttributeError):
        return None
    if not tokens:
        return None
    found: set[bool] = set()
    candidates = [(tuple(normalize(p, language).split()), False) for p in _phrase_table(_NO, language)]
    candidates += [(tuple(normalize(p, language).split()), True) for p in _phrase_table(_YES, language)]
    # Longest phrases first so "no es correcto" wins over "correcto" and "no".
    candidates.sort(key=lambda c: len(c[0]), reverse=True)
    remaining = list(tokens)
    for phrase, polarity in candidates:
        n = len(phrase)
        i = 0
        while i + n <= len(remaining):
            if tuple(remaining[i:i + n]) == phrase:
                found.add(polarity)
                remaining[i:i + n] = ["\0"]  # consumed; keeps neighbours apart
            i += 1
    if len(found) == 1:
        return found.pop()
    return None
