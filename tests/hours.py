"""Tests that place calls through the shipped demo line must not depend on the hour CI
happens to run at: the line is open Mon-Fri 09:00-18:00 and Sat 10:00-14:00 in
Europe/Madrid, and closed it answers with the voicemail. Two honest ways round it:
an in-process app's call clock set to a moment the line is open (time still moves), and,
for a server in another process, a copy of the shipped flows whose lines are always open.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from call_flows.registry import DEFAULT_DIR

MADRID = ZoneInfo("Europe/Madrid")


def open_clock(at: datetime | None = None) -> Callable[[], float]:
    """A clock that starts at 10:30 Madrid time on the latest day on or before ``at``
    (now) when the shipped default line is open then (weekends and holidays skipped),
    and runs on from there: recent enough for reports of the last days to include what
    the test does."""
    from call_flows.registry import FlowRegistry

    hours = FlowRegistry.load(DEFAULT_DIR).default_line.hours
    day = (at or datetime.now(MADRID)).astimezone(MADRID)
    day = day.replace(hour=10, minute=30, second=0, microsecond=0)
    for _ in range(30):
        if hours.is_open(day):
            break
        day -= timedelta(days=1)
    else:
        raise AssertionError("the shipped default line is closed every day of a month")
    start = day.timestamp()
    began = time.monotonic()
    return lambda: start + (time.monotonic() - began)


def always_open_flows(target: Path) -> Path:
    """A copy of the shipped flows whose lines have no opening hours (always open)."""
    shutil.copytree(DEFAULT_DIR, target)
    lines = target / "lines.yaml"
    text = lines.read_text(encoding="utf-8")
    # each line's `hours:` block: the key and its more-indented mapping lines
    text = re.sub(r"(?m)^(\s+)hours:\n(?:\1\s+.*\n)+", "", text)
    lines.write_text(text, encoding="utf-8")
    return target


def pin_clock(app: object, clock: Callable[[], float]) -> None:
    """The app's calls and its router judge opening hours by ``clock`` (the router's
    own timers keep real time): both sides of the server agree whether the line is open."""
    from ivr.app import line_hours

    components = app.extensions["centralita"].components  # type: ignore[attr-defined]
    components["calls"].clock = clock
    store = components.get("queue")
    if store is not None:
        hours = line_hours(components["flows"])
        store.is_open = lambda _now: hours(clock())
