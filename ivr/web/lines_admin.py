"""The lines form's work apart from HTTP: read a line into fields, write fields back.

A line is edited in ``lines.yaml`` by replacing only that line's block of text, so the
file's comments and the other lines stay as they were. Business hours are written one
weekday per key (several ranges per day as a list) and holidays one per row with
their name as a trailing comment (``- 2026-01-06  # Reyes``): the loader reads the
date, people read the name, and the form reads both back.

Field errors are found here first (so each is shown next to its field); the whole
file is then checked with ``check_paths``, exactly as ``ivr flows check`` does, and
any problem it still finds is shown with its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from call_flows.hours import DAYS, parse_line, to_e164
from call_flows.loader import load_marked
from call_flows.model import Problem
from call_flows.validate import LANG, MarkedDict
from ivr.web.versioned import ConfigError

MAX_HOLIDAYS = 200
WRITTEN_KEYS = frozenset({"default", "description", "numbers", "flow", "language",
                          "languages", "timezone", "region", "hours", "holidays", "voices",
                          "locales"})
MAX_RANGES = 6
_COMMENT = re.compile(r"#\s*(.*)$")
_RANGE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")


@dataclass
class LineForm:
    """What the form shows and posts for one line; ``errors`` maps field -> message."""

    name: str
    numbers: str = ""
    flow: str = ""
    language: str = ""
    languages: str = ""
    timezone: str = "Europe/Madrid"
    always_open: bool = False
    hours: dict[str, str] = field(default_factory=lambda: {d: "" for d in DAYS})
    holidays: list[tuple[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _minutes(span: tuple[int, int]) -> str:
    a, b = span
    return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"


def read_lines(text: str) -> tuple[MarkedDict, list[str]]:
    """The ``lines`` mapping of a lines file and its text split in lines."""
    data, _ = load_marked(text)
    if not isinstance(data, MarkedDict) or not isinstance(data.get("lines"), MarkedDict):
        raise ConfigError("the lines file has no 'lines' mapping: fix it in the YAML")
    return data["lines"], text.splitlines()


def form_of(text: str, name: str) -> LineForm:
    """The fields of line ``name`` as written in ``text``."""
    raw_lines, rows = read_lines(text)
    raw = raw_lines.get(name)
    if not isinstance(raw, MarkedDict):
        raise KeyError(name)
    line = parse_line(name, raw, "lines.yaml", raw_lines.line_of(name), [])
    assert line is not None
    form = LineForm(name=name, numbers=", ".join(line.numbers), flow=line.flow,
                    language=line.language or "", languages=", ".join(line.languages),
                    timezone=str(raw.get("timezone", "UTC")),
                    always_open="hours" not in raw)
    if "hours" in raw:
        form.hours = {day: ", ".join(_minutes(s) for s in spans)
                      for day, spans in zip(DAYS, line.hours.weekly)}
    holidays = raw.get("holidays") or []
    for i, day in enumerate(holidays if isinstance(holidays, list) else []):
        at = holidays.line_of(i) if hasattr(holidays, "line_of") else 0
        comment = _COMMENT.search(rows[at - 1]) if 0 < at <= len(rows) and \
            "[" not in rows[at - 1] else None
        form.holidays.append((str(day), comment.group(1).strip() if comment else ""))
    return form


def form_from_post(name: str, post: Mapping[str, Any], dates: list[str], names: list[str]
                   ) -> LineForm:
    """A form filled from the browser's fields (not yet checked)."""
    form = LineForm(name=name, numbers=str(post.get("numbers", "")).strip(),
                    flow=str(post.get("flow", "")).strip(),
                    language=str(post.get("language", "")).strip(),
                    languages=str(post.get("languages", "")).strip(),
                    timezone=str(post.get("timezone", "")).strip(),
                    always_open=post.get("always_open") == "1")
    form.hours = {day: str(post.get(f"hours_{day}", "")).strip() for day in DAYS}
    form.holidays = [(d.strip(), n.strip()) for d, n in zip(dates, names)
                     if d.strip() or n.strip()][:MAX_HOLIDAYS]
    return form


def validate(form: LineForm, flows: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """Check each field; fill ``form.errors``; return the clean values."""
    err = form.errors
    numbers: list[str] = []
    # Commas separate numbers; spaces are part of how people write one (930 001 002).
    for number in (n.strip() for n in re.split(r"[,;\n]+", form.numbers) if n.strip()):
        e164 = to_e164(number, None if number.startswith("+") else "ES")
        if e164 is None:
            err["numbers"] = f"'{number}' is not a phone number: write it in E.164 (+34...)"
        else:
            numbers.append(e164)
    if form.flow not in flows:
        err["flow"] = f"choose one of the flows: {', '.join(sorted(flows))}"
    languages = [x.strip() for x in form.languages.split(",") if x.strip()]
    bad = [x for x in languages if not LANG.match(x)]
    if not languages or bad:
        err["languages"] = "give language codes separated by commas, such as es, ca, en"
    elif form.flow in flows and (extra := [x for x in languages if x not in flows[form.flow]]):
        err["languages"] = (f"flow '{form.flow}' does not speak {', '.join(extra)} "
                            f"(it speaks {', '.join(flows[form.flow])})")
    if form.language and form.language not in languages:
        err["language"] = "the default language must be one of the line's languages"
    try:
        ZoneInfo(form.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err["timezone"] = f"unknown time zone '{form.timezone}': use a name like Europe/Madrid"
    hours: dict[str, list[str]] = {}
    for day in DAYS:
        spans = [s.strip() for s in form.hours[day].split(",") if s.strip()
                 and s.strip().lower() != "closed"]
        for span in spans:
            m = _RANGE.match(span)
            if not m or (int(m.group(3)) * 60 + int(m.group(4)) <=
                         int(m.group(1)) * 60 + int(m.group(2))):
                err[f"hours_{day}"] = (f"'{span}' is not a range such as 09:00-14:00 "
                                       "(end after start); separate ranges with commas")
        if len(spans) > MAX_RANGES:
            err[f"hours_{day}"] = f"at most {MAX_RANGES} ranges a day"
        hours[day] = [re.sub(r"\s+", "", s) for s in spans]
    holidays: list[tuple[str, str]] = []
    for i, (day, label) in enumerate(form.holidays):
        try:
            holidays.append((date.fromisoformat(day).isoformat(), label.replace("\n", " ")))
        except ValueError:
            err[f"holiday_{i}"] = f"'{day}' is not a date (YYYY-MM-DD)"
    return {"numbers": numbers, "languages": languages, "hours": hours,
            "holidays": sorted(set(holidays))}


def block_text(form: LineForm, clean: Mapping[str, Any], raw: Mapping[str, Any]
               ) -> list[str]:
    """The YAML lines of the line's block, keeping the keys the form does not edit."""
    q = json.dumps  # a JSON string is a YAML string: safe for any text
    out = [f"  {form.name}:"]
    if raw.get("default") is True:
        out.append("    default: true")
    if raw.get("description"):
        out.append(f"    description: {q(str(raw['description']), ensure_ascii=False)}")
    out.append(f"    numbers: [{', '.join(q(n) for n in clean['numbers'])}]")
    out.append(f"    flow: {form.flow}")
    out.append(f"    language: {form.language or 'null'}"
               + ("          # null: the customer record, else the language menu"
                  if not form.language else ""))
    out.append(f"    languages: [{', '.join(clean['languages'])}]")
    out.append(f"    timezone: {q(form.timezone)}")
    if "region" in raw:
        out.append(f"    region: {q(str(raw['region']))}")
    if not form.always_open:
        out.append("    hours:")
        for day in DAYS:
            spans = clean["hours"][day]
            value = "closed" if not spans else (q(spans[0]) if len(spans) == 1 else
                                                "[" + ", ".join(q(s) for s in spans) + "]")
            out.append(f"      {day}: {value}")
        if clean["holidays"]:
            out.append("    holidays:")
            for day, label in clean["holidays"]:
                out.append(f"      - {day}" + (f"  # {label}" if label else ""))
        else:
            out.append("    holidays: []")
    for key in ("voices", "locales"):
        names = raw.get(key)
        if isinstance(names, Mapping) and names:
            inner = ", ".join(f"{k}: {q(str(v))}" for k, v in names.items())
            out.append(f"    {key}: {{{inner}}}")
    for key, value in raw.items():  # keys this form does not know (record_calls...) stay
        if key not in WRITTEN_KEYS:
            out.append(f"    {key}: {q(value, ensure_ascii=False, default=str)}")
    return out


def replace_block(text: str, name: str, block: list[str]) -> str:
    """``text`` with line ``name``'s block replaced; comments between lines are kept."""
    raw_lines, rows = read_lines(text)
    names = list(raw_lines)
    start = raw_lines.line_of(name) - 1
    following = [raw_lines.line_of(n) - 1 for n in names if raw_lines.line_of(n) - 1 > start]
    end = min(following) if following else len(rows)
    while end > start + 1 and (not rows[end - 1].strip()
                               or rows[end - 1].lstrip().startswith("#")
                               and len(rows[end - 1]) - len(rows[end - 1].lstrip()) <= 2):
        end -= 1  # blank lines and the next line's own comments stay
    new_rows = rows[:start] + block + rows[end:]
    return "\n".join(new_rows) + "\n"


def problems_by_field(problems: list[Problem], text: str, name: str
                      ) -> tuple[dict[str, str], list[str]]:
    """Validator problems inside the line's block, by the field at their line; the rest."""
    rows = text.splitlines()
    by_field: dict[str, str] = {}
    rest: list[str] = []
    for p in problems:
        row = rows[p.line - 1].strip() if 0 < p.line <= len(rows) else ""
        key = row.split(":", 1)[0].lstrip("- ").strip()
        where = {"numbers": "numbers", "flow": "flow", "language": "language",
                 "languages": "languages", "timezone": "timezone"}.get(key)
        if key in DAYS:
            where = f"hours_{key}"
        if where and f"'{name}'" in p.message:
            by_field[where] = p.message
        else:
            rest.append(f"{Path(p.file).name}:{p.line}: {p.message}")
    return by_field, rest


# ---------------------------------------------------------------- adding and removing

LINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
RESERVED_NAMES = frozenset({"new", "versions"})  # words the pages' own URLs use


def default_name(raw_lines: MarkedDict) -> str:
    """The line that answers numbers no line names: ``default: true``, else the first."""
    names = [str(n) for n in raw_lines]
    marked = [n for n in names if isinstance(raw_lines[n], Mapping)
              and raw_lines[n].get("default") is True]
    return marked[0] if marked else names[0]


def name_problem(name: str, raw_lines: MarkedDict) -> str | None:
    """Why ``name`` cannot be a new line's name, or None."""
    if not LINE_NAME.match(name) or name in RESERVED_NAMES:
        return ("a line name is 1-40 lower-case letters, digits, - or _, starting with a "
                "letter (not 'new' or 'versions')")
    if name in raw_lines:
        return f"there is already a line '{name}': choose another name or edit that one"
    return None


def new_form(text: str) -> LineForm:
    """A blank line that starts from the default line's flow, languages and hours."""
    raw_lines, _ = read_lines(text)
    model = form_of(text, default_name(raw_lines))
    return LineForm(name="", flow=model.flow, languages=model.languages,
                    timezone=model.timezone, always_open=model.always_open,
                    hours=dict(model.hours), holidays=list(model.holidays))


def template_raw(raw_lines: MarkedDict) -> dict[str, Any]:
    """Keys a new line copies from the default line: region, voices, locales."""
    model = raw_lines[default_name(raw_lines)]
    return {k: model[k] for k in ("region", "voices", "locales")
            if isinstance(model, Mapping) and k in model}


def _end_of_lines(raw_lines: MarkedDict, rows: list[str]) -> int:
    """The row index just after the last line's block (before trailing blanks/comments)."""
    last = max(raw_lines.line_of(n) for n in raw_lines)  # 1-based row of the last name
    end = last
    while end < len(rows) and (not rows[end].strip() or rows[end].startswith((" ", "\t"))):
        end += 1  # indented rows (and blank ones) still belong to the mapping
    while end > last and (not rows[end - 1].strip()
                          or rows[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def add_block(text: str, block: list[str]) -> str:
    """``text`` with a new line's block after the last line; the rest as it was."""
    raw_lines, rows = read_lines(text)
    end = _end_of_lines(raw_lines, rows)
    return "\n".join(rows[:end] + block + rows[end:]) + "\n"


def remove_problem(raw_lines: MarkedDict, name: str) -> str | None:
    """Why line ``name`` cannot be removed, or None."""
    if len(raw_lines) <= 1:
        return (f"'{name}' is the only line: every call needs a line to answer it; "
                "add another line first")
    if name == default_name(raw_lines):
        return (f"'{name}' is the default line: it answers every number no other line "
                "names. Make another line the default first (default: true in lines.yaml)")
    return None


def remove_block(text: str, name: str) -> str:
    """``text`` without line ``name``'s block; comments of other lines are kept."""
    return replace_block(text, name, [])
