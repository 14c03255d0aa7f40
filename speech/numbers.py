"""Numbers and spelled digits in Spanish, Catalan and English (and Korean digits,
for the test flow) -> a digit string.

Callers dictate account numbers in every way at once: digit by digit ("uno dos
tres"), in pairs ("doce treinta y cuatro"), as cardinals ("veintitrés",
"trenta-quatre", "one hundred and five"), with "double five", or the ASR already
wrote digits. :func:`parse_digits` reads the words left to right, building a
cardinal number while each word can extend it (tens then a unit, hundreds then
tens...) and starting a new group when it cannot; the groups are concatenated:

    "doce treinta y cuatro" -> "12" + "34" -> "1234"
    "uno dos tres"          -> "123"
    "dos mil veinte"        -> "2020"

Words that are not numbers are skipped. ``None`` when the text holds no number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.intents import MAX_TOKENS, base_language, normalize

_UNIT, _TEEN, _TENS, _HUNDREDS, _HUNDRED_MULT, _THOUSAND, _ZERO = range(7)

_ES_UNITS = {"uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
             "siete": 7, "ocho": 8, "nueve": 9}
_ES: dict[str, tuple[int, int]] = {
    "cero": (_ZERO, 0),
    **{w: (_UNIT, v) for w, v in _ES_UNITS.items()},
    **{w: (_TEEN, v) for w, v in {
        "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15,
        "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19}.items()},
    **{w: (_TENS, v) for w, v in {
        "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60,
        "setenta": 70, "ochenta": 80, "noventa": 90}.items()},
    # "veintitrés" is one word: a complete 20-29 value.
    **{"veinti" + w: (_TEEN, 20 + v) for w, v in _ES_UNITS.items()},
    "veintiun": (_TEEN, 21),
    **{w: (_HUNDREDS, v) for w, v in {
        "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200,
        "trescientos": 300, "trescientas": 300, "cuatrocientos": 400,
        "cuatrocientas": 400, "quinientos": 500, "quinientas": 500,
        "seiscientos": 600, "seiscientas": 600, "setecientos": 700, "setecientas": 700,
        "ochocientos": 800, "ochocientas": 800, "novecientos": 900,
        "novecientas": 900}.items()},
    "mil": (_THOUSAND, 1000),
}

_CA: dict[str, tuple[int, int]] = {
    "zero": (_ZERO, 0),
    **{w: (_UNIT, v) for w, v in {
        "u": 1, "un": 1, "una": 1, "dos": 2, "dues": 2, "tres": 3, "quatre": 4, "cinc": 5,
        "sis": 6, "set": 7, "vuit": 8, "huit": 8, "nou": 9}.items()},
    **{w: (_TEEN, v) for w, v in {
        "deu": 10, "onze": 11, "dotze": 12, "tretze": 13, "catorze": 14, "quinze": 15,
        "setze": 16, "disset": 17, "divuit": 18, "devuit": 18, "dinou": 19, "denou": 19}.items()},
    **{w: (_TENS, v) for w, v in {
        "vint": 20, "trenta": 30, "quaranta": 40, "cinquanta": 50, "seixanta": 60,
        "setanta": 70, "vuitanta": 80, "huitanta": 80, "noranta": 90}.items()},
    "cent": (_HUNDREDS, 100),
    "cents": (_HUNDRED_MULT, 100),  # "dos-cents" -> "dos cents"
    "centes": (_HUNDRED_MULT, 100),
    "mil": (_THOUSAND, 1000),
}

_EN: dict[str, tuple[int, int]] = {
    "zero": (_ZERO, 0), "nought": (_ZERO, 0), "naught": (_ZERO, 0), "oh": (_ZERO, 0),
    **{w: (_UNIT, v) for w, v in {
        "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
        "eight": 8, "nine": 9}.items()},
    **{w: (_TEEN, v) for w, v in {
        "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
        "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
        "nineteen": 19}.items()},
    **{w: (_TENS, v) for w, v in {
        "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
        "seventy": 70, "eighty": 80, "ninety": 90}.items()},
    "hundred": (_HUNDRED_MULT, 100),
    "thousand": (_THOUSAND, 1000),
}

# Korean (the test language, see tests/flows_ko): Sino-Korean digits as dictated
# for phone and account numbers, one word per digit ("삼 오" -> "35").
_KO: dict[str, tuple[int, int]] = {
    "영": (_ZERO, 0), "공": (_ZERO, 0),
    **{w: (_UNIT, v) for w, v in {
        "일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "륙": 6, "칠": 7, "팔": 8,
        "구": 9}.items()},
    "십": (_TEEN, 10),
}

_TABLES = {"es": _ES, "ca": _CA, "en": _EN, "ko": _KO}
_CONNECTORS: dict[str, set[str]] = {"es": {"y"}, "ca": {"i"}, "en": {"and"}, "ko": set()}
_REPEAT = {"double": 2, "triple": 3, "doble": 2, "triplo": 3}
# "un"/"una" are articles in Spanish ("una factura"): 1 only right before "mil".
_ES_ARTICLES = {"un", "una"}
# English "oh" is zero only among other numbers ("five oh two"), not "oh, sorry".
_WEAK_ZERO = {"oh"}


@dataclass
class _Group:
    """A cardinal being built: ``thousands`` done, ``current`` below 1000."""

    thousands: int = 0
    current: int = 0
    started: bool = False
    teen_or_unit: bool = False  # the last slot filled makes units impossible
    parts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return str(self.thousands + self.current)

    def accepts(self, kind: int, value: int) -> bool:
        if not self.started:
            return kind != _ZERO
        c = self.current
        if kind == _UNIT:
            return not self.teen_or_unit and c % 10 == 0 and (c > 0 or self.thousands > 0)
        if kind in (_TEEN, _TENS):
            return c % 100 == 0 and (c > 0 or self.thousands > 0)
        if kind == _HUNDREDS:
            return c == 0 and self.thousands > 0
        if kind == _HUNDRED_MULT:  # "two hundred", "twelve hundred"
            return 1 <= c <= 99
        if kind == _THOUSAND:
            return self.thousands == 0 and 1 <= c <= 999
        return False

    def add(self, kind: int, value: int) -> None:
        if kind == _HUNDRED_MULT:
            self.current = (self.current or 1) * 100
            self.teen_or_unit = False
        elif kind == _THOUSAND:
            self.thousands = (self.current or 1) * 1000
            self.current = 0
            self.teen_or_unit = False
        else:
            self.current += value
            self.teen_or_unit = kind in (_UNIT, _TEEN)
        self.started = True


def _table(language: str) -> tuple[dict[str, tuple[int, int]], set[str]]:
    lang = base_language(language)
    if lang in _TABLES:
        return _TABLES[lang], _CONNECTORS[lang]
    merged: dict[str, tuple[int, int]] = {}
    for table in (_KO, _CA, _EN, _ES):  # Spanish last: it wins on shared words
        merged.update(table)
    return merged, {c for cs in _CONNECTORS.values() for c in cs}


def parse_digits(text: str, language: str) -> str | None:
    """The digits the caller said (``"uno dos tres"`` -> ``"123"``), else ``None``."""
    if not isinstance(text, str):
        return None
    table, connectors = _table(language)
    lang = base_language(language)
    tokens = normalize(text, language).split()[: MAX_TOKENS * 2]
    out: list[str] = []
    group = _Group()
    repeat = 1

    def close() -> None:
        nonlocal group
        if group.started:
            out.append(group.text())
        group = _Group()

    def is_number(i: int) -> bool:
        return 0 <= i < len(tokens) and (tokens[i] in table or tokens[i].isdigit())

    for i, token in enumerate(tokens):
        if token.isdigit():
            close()
            out.append(token * repeat)
            repeat = 1
            continue
        if token in _REPEAT and is_number(i + 1):
            close()
            repeat = _REPEAT[token]
            continue
        if token in connectors and group.started and is_number(i + 1):
            continue
        if lang in ("es", "") and token in _ES_ARTICLES:
            if i + 1 < len(tokens) and tokens[i + 1] in ("mil",):
                close()
                group.add(_UNIT, 1)
            continue
        if token in _WEAK_ZERO and not (is_number(i - 1) or is_number(i + 1)):
            close()
            continue
        entry = table.get(token)
        if entry is None:
            close()
            continue
        kind, value = entry
        if repeat > 1:
            close()
            out.append(str(value) * repeat)
            repeat = 1
            continue
        if kind == _ZERO:
            close()
            out.append("0")
            continue
        if not group.accepts(kind, value):
            close()
            if kind == _HUNDRED_MULT:  # a bare "hundred"
                group.add(_UNIT, 1)
        group.add(kind, value)
    close()
    return "".join(out) or None
