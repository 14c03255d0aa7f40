"""Lines (dialled numbers) and their business hours, read from ``lines.yaml``.

A line maps phone numbers to a flow and says which languages it speaks, which voice
each language uses, and when people are there to answer (weekly hours in the
line's time zone, plus holidays). Time always comes from the caller's event, never
from the clock, so the same request gives the same answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from call_flows.model import Problem
from call_flows.validate import LANG, NAME, MarkedDict, MarkedList

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_LOCALES = {"es": "es-ES", "ca": "ca-ES", "en": "en-GB", "fr": "fr-FR", "pt": "pt-PT",
                   "de": "de-DE", "it": "it-IT", "eu": "eu-ES", "gl": "gl-ES"}
_RANGE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")
_LINE_KEYS = frozenset({"numbers", "flow", "language", "languages", "timezone", "hours",
                        "holidays", "voices", "locales", "region", "default", "description",
                        "record_calls"})


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening ranges (minutes from midnight) per weekday, plus closed dates."""

    timezone: str = "UTC"
    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    always_open: bool = False

    def is_open(self, now: datetime) -> bool:
        if self.always_open:
            return True
        if now.tzinfo is None:  # a naive time is taken as UTC rather than guessed
            now = now.replace(tzinfo=ZoneInfo("UTC"))
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.weekly[local.weekday()])


@dataclass(frozen=True)
class Line:
    """One support line: its numbers, flow, languages, voices and hours."""

    name: str
    flow: str
    numbers: tuple[str, ...] = ()
    language: str | None = None  # None: ask with the flow's language menu
    languages: tuple[str, ...] = ()
    hours: BusinessHours = field(default_factory=lambda: BusinessHours(always_open=True))
    voices: Mapping[str, str] = field(default_factory=dict)
    locales: Mapping[str, str] = field(default_factory=dict)
    region: str = "ES"
    default: bool = False
    file_line: int = 0  # where the line is defined, for cross-file error messages
    flow_line: int = 0
    record_calls: bool = False  # record whole calls (the caller is told first)
    record_line: int = 0

    def voice(self, language: str) -> str | None:
        return self.voices.get(language)

    def locale(self, language: str) -> str:
        return self.locales.get(language) or DEFAULT_LOCALES.get(language, language)


@functools.lru_cache(maxsize=1024)  # the dialled numbers: a handful per installation
def to_e164(number: str, region: str | None = None) -> str | None:
    """The number in E.164, or None when it does not parse as a possible number."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parse_hours(raw: Any, err: Callable[[int, str], None], line: int
                 ) -> tuple[tuple[tuple[int, int], ...], ...]:
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    if not isinstance(raw, MarkedDict):
        err(line, "hours must map days (mon, mon-fri...) to ranges")
        return tuple(() for _ in DAYS)
    for key, value in raw.items():
        kline = raw.line_of(key)
        first, _, last = str(key).partition("-")
        if first not in DAYS or (last and last not in DAYS):
            err(kline, f"hours: '{key}' is not a day or range of days "
                       "(mon, tue, ..., sun; mon-fri)")
            continue
        days = range(DAYS.index(first), DAYS.index(last or first) + 1)
        items = value if isinstance(value, list) else str(value).split(",")
        ranges: list[tuple[int, int]] = []
        for item in items:
            if str(item).strip() in {"closed", ""}:
                continue
            m = _RANGE.match(str(item))
            start = int(m.group(1)) * 60 + int(m.group(2)) if m else 0
            end = int(m.group(3)) * 60 + int(m.group(4)) if m else 0
            if not m or end <= start or end > 24 * 60:
                err(kline, f"hours: '{item}' is not a range such as 09:00-18:00 "
                           "(end after start)")
                continue
            ranges.append((start, end))
        for day in days:
            week[day].extend(ranges)
    return tuple(tuple(sorted(day)) for day in week)


def parse_line(name: str, raw: Any, file: str, line: int,
               problems: list[Problem]) -> Line | None:
    """Build one line from its mapping, appending any problems (``FILE:LINE``).

    A line with problems is still returned (with safe values) so that references
    from it can be checked too; callers refuse to serve when any problem exists."""
    def err(at: int, message: str) -> None:
        problems.append(Problem(file, at, f"line '{name}': {message}"))

    if not isinstance(raw, MarkedDict):
        err(line, "must be a mapping with numbers, flow, timezone...")
        return None
    at = raw.line_of
    for key in raw:
        if key not in _LINE_KEYS:
            err(at(key), f"unknown key '{key}' (use {', '.join(sorted(_LINE_KEYS))})")
    flow = raw.get("flow")
    if not (isinstance(flow, str) and NAME.match(flow)):
        err(at("flow"), "needs 'flow': the id of the flow that answers it")
    region = str(raw.get("region", "ES"))
    numbers: list[str] = []
    raw_numbers = raw.get("numbers", MarkedList())
    if not isinstance(raw_numbers, MarkedList):
        err(at("numbers"), "numbers must be a list of phone numbers in E.164 (+34...)")
        raw_numbers = MarkedList()
    for i, number in enumerate(raw_numbers):
        e164 = to_e164(str(number), None if str(number).startswith("+") else region)
        if e164 is None:
            err(raw_numbers.line_of(i), f"'{number}' is not a phone number (use E.164: +34...)")
        else:
            numbers.append(e164)
    languages = raw.get("languages", MarkedList())
    if not (isinstance(languages, list) and all(isinstance(x, str) and LANG.match(x)
                                                for x in languages)):
        err(at("languages"), "languages must be a list of codes such as [es, ca, en]")
        languages = []
    language = raw.get("language")
    if language is not None and language not in languages:
        err(at("language"), f"language '{language}' is not one of the line's languages")
        language = None
    tz = str(raw.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        err(at("timezone"), f"unknown time zone '{tz}' (use names like Europe/Madrid)")
        tz = "UTC"
    hours = BusinessHours(always_open=True)
    if "hours" in raw:
        weekly = _parse_hours(raw["hours"], err, at("hours"))
        holidays: set[date] = set()
        raw_holidays = raw.get("holidays") or MarkedList()
        for i, day in enumerate(raw_holidays if isinstance(raw_holidays, list) else [None]):
            try:
                holidays.add(day if isinstance(day, date) else date.fromisoformat(str(day)))
            except ValueError:
                err(raw_holidays.line_of(i) if isinstance(raw_holidays, MarkedList)
                    else at("holidays"), f"holiday '{day}' is not a date (YYYY-MM-DD)")
        hours = BusinessHours(timezone=tz, weekly=weekly, holidays=frozenset(holidays))
    maps: dict[str, dict[str, str]] = {}
    for key in ("voices", "locales"):
        value = raw.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            err(at(key), f"{key} must map language codes to names")
            value = {}
        maps[key] = {str(k): v for k, v in value.items()}
    default = raw.get("default", False)
    if not isinstance(default, bool):
        err(at("default"), "default must be true or false")
    record_calls = raw.get("record_calls", False)
    if not isinstance(record_calls, bool):
        err(at("record_calls"), "record_calls must be true or false")
    return Line(name=name, flow=str(flow), numbers=tuple(numbers), language=language,
                languages=tuple(languages), hours=hours, voices=maps["voices"],
                locales=maps["locales"], region=region, default=default is True,
                file_line=line, flow_line=at("flow"), record_calls=record_calls is True,
                record_line=at("record_calls"))

