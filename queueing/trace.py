"""Call-center traces in the format of ``shared/data/callcenter-1999-01.tsv``.

One row per call, tab separated, header first (the "Anonymous Bank" January 1999
trace, organised by Ilan Guedj and Avi Mandelbaum, Technion). :func:`parse_trace`
turns rows into :class:`TraceCall` with absolute times in seconds (midnight wraps
fixed) and counts malformed rows instead of failing:

* a row is **skipped** when the replay cannot use it: wrong number of columns, a time,
  date, count, priority or outcome that does not parse, a type that is no known skill,
  or a queue/service segment whose times contradict its duration;
* a row is **kept but noted** (``anomalies``) when only a field the replay never reads
  is broken -- a customer id mangled by a spreadsheet (``6.02E+11``), or a negative
  ``vru_time`` (the IVR clock is off, the queue times are consistent). ``strict=True``
  skips those rows too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path

from queueing.wait_time import AgentView, Estimator, QueueSnapshot, WaitEstimate, WaitingCall

COLUMNS = ("vru+line", "call_id", "customer_id", "priority", "type", "date", "vru_entry",
           "vru_exit", "vru_time", "q_start", "q_exit", "q_time", "outcome", "ser_start",
           "ser_exit", "ser_time", "server")
SKILLS = frozenset({"PS", "PE", "IN", "NE", "NW", "TT"})
NO_SERVER = "NO_SERVER"
DAY_S = 86400.0
_TIME = re.compile(r"(\d{1,2}):(\d\d):(\d\d)")
_INT = re.compile(r"-?\d+")
_DATE = re.compile(r"(\d\d)(\d\d)(\d\d)")
_EPOCH = date(1970, 1, 1)
_TOLERANCE_S = 2  # clocks of the queue and the switch differ by a second or two


class TraceError(ValueError):
    """The file is not a trace at all (missing, unreadable or without the header)."""


class Outcome(str, Enum):
    AGENT = "AGENT"  # served
    HANG = "HANG"  # abandoned
    PHANTOM = "PHANTOM"  # to be ignored


@dataclass(frozen=True, slots=True)
class TraceCall:
    row: int  # line number in the file (header = 1)
    call_id: str
    skill: str
    priority: int
    day: date
    outcome: Outcome
    queued_at: float | None  # absolute seconds since 1970 (naive local time); None = no queue
    left_queue_at: float | None
    waited_s: float
    service_start: float | None
    service_end: float | None
    server: str | None  # None when nobody (or an unnamed agent) served

    @property
    def scored(self) -> bool:
        """A served caller who waited: the set EWT is judged on."""
        return self.outcome is Outcome.AGENT and self.queued_at is not None and self.waited_s > 0

    @property
    def reached_at(self) -> float | None:
        """When the caller asked for an agent: queue entry, else service start."""
        return self.queued_at if self.queued_at is not None else self.service_start


@dataclass
class ParseReport:
    calls: list[TraceCall] = field(default_factory=list)
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)  # rows kept despite a bad field


class _Bad(Exception):
    pass


def _seconds(text: str, name: str) -> int:
    m = _TIME.fullmatch(text)
    if not m or int(m[2]) > 59 or int(m[3]) > 59:
        raise _Bad(f"bad {name}")
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])


def _int(text: str, name: str) -> int:
    if not _INT.fullmatch(text):
        raise _Bad(f"bad {name}")
    return int(text)


def _day(text: str) -> date:
    m = _DATE.fullmatch(text)
    if not m:
        raise _Bad("bad date")
    yy = int(m[1])
    try:
        return date(1900 + yy if yy >= 70 else 2000 + yy, int(m[2]), int(m[3]))
    except ValueError:
        raise _Bad("bad date") from None


def _segment(base: float, start: int, end: int, duration: int, name: str) -> tuple[float, float]:
    """Absolute (start, end); an end before the start crossed midnight."""
    if duration < 0:
        raise _Bad(f"negative {name}_time")
    stop = end + (DAY_S if end < start else 0)
    if abs(stop - start - duration) > _TOLERANCE_S:
        raise _Bad(f"{name} times contradict {name}_time")
    return base + start, base + stop


def parse_row(fields: list[str], row: int, anomalies: Counter[str] | None = None) -> TraceCall:
    """One row -> a call; raises ``_Bad`` (internal) with the reason when unusable."""
    if len(fields) != len(COLUMNS):
        raise _Bad("wrong number of columns")
    f = dict(zip(COLUMNS, fields))
    skill = f["type"]
    if skill not in SKILLS:
        raise _Bad("unknown type")
    try:
        outcome = Outcome(f["outcome"])
    except ValueError:
        raise _Bad("unknown outcome") from None
    priority = _int(f["priority"], "priority")
    day = _day(f["date"])
    base = float((day - _EPOCH).days) * DAY_S
    q_start, q_exit = _seconds(f["q_start"], "q_start"), _seconds(f["q_exit"], "q_exit")
    q_time = _int(f["q_time"], "q_time")
    s_start, s_exit = _seconds(f["ser_start"], "ser_start"), _seconds(f["ser_exit"], "ser_exit")
    s_time = _int(f["ser_time"], "ser_time")
    queued_at = left_at = None
    if q_start:
        queued_at, left_at = _segment(base, q_start, q_exit, q_time, "q")
    elif q_time:
        raise _Bad("q_time without q_start")
    service_start = service_end = None
    if s_start:
        s_base = base
        if queued_at is not None and s_start + base < queued_at - DAY_S / 2:
            s_base += DAY_S  # queued before midnight, served after
        service_start, service_end = _segment(s_base, s_start, s_exit, s_time, "ser")
    if anomalies is not None:
        if not _INT.fullmatch(f["customer_id"]):
            anomalies["customer_id not an integer"] += 1
        if not _INT.fullmatch(f["vru_time"]) or int(f["vru_time"]) < 0:
            anomalies["negative vru_time"] += 1
    server = f["server"].strip()
    return TraceCall(
        row=row, call_id=f["call_id"], skill=skill, priority=priority, day=day,
        outcome=outcome, queued_at=queued_at, left_queue_at=left_at,
        waited_s=float(q_time) if queued_at is not None else 0.0,
        service_start=service_start, service_end=service_end,
        server=server if server and server != NO_SERVER else None)


def parse_lines(lines: Iterable[str], strict: bool = False) -> ParseReport:
    """Parse text lines (header first); never raises on a bad data row."""
    report = ParseReport()
    it = iter(lines)
    header = next(it, "").rstrip("\r\n").split("\t")
    if tuple(h.strip() for h in header) != COLUMNS:
        raise TraceError("not a call-center trace: the first line must be the header "
                         + "\\t".join(COLUMNS))
    for row, line in enumerate(it, start=2):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        local: Counter[str] = Counter()
        try:
            call = parse_row(text.split("\t"), row, local)
        except _Bad as exc:
            report.skipped += 1
            report.skipped_reasons[str(exc)] += 1
            continue
        if strict and local:
            report.skipped += 1
            report.skipped_reasons.update(local)
            continue
        report.anomalies.update(local)
        report.calls.append(call)
    return report


def parse_trace(path: Path | str, strict: bool = False) -> ParseReport:
    """Read a trace file; :class:`TraceError` when it cannot be read as one."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8", errors="replace", newline="") as fh:
            return parse_lines(fh, strict)  # newline="": rows end in "\r\n", stripped per row
    except OSError as exc:
        raise TraceError(f"cannot read trace {p}: {exc.strerror or exc}") from None


def select_days(calls: Iterable[TraceCall], days: set[int] | None) -> list[TraceCall]:
    """Calls whose day of the month is in ``days`` (all when None)."""
    return [c for c in calls if days is None or c.day.day in days]


# ---------------------------------------------------------------- replay

class Staffing(str, Enum):
    """How the replay decides which agents are on shift (the trace has no staffing)."""

    CAUSAL = "causal"  # seen starting or ending a call within the last on_shift_s seconds
    PRESENCE = "presence"  # logged in: between their first and last call of the day


def shifts(calls: Iterable[TraceCall]) -> dict[tuple[str, date], tuple[float, float]]:
    """(agent, day) -> (first ``ser_start``, last ``ser_exit``): the data README's shift.

    This is the agent's *presence* (logged in or not), which a live switch knows at
    every moment; it says nothing about which calls they will take."""
    out: dict[tuple[str, date], tuple[float, float]] = {}
    for c in calls:
        if c.server is None or c.service_start is None or c.outcome is Outcome.PHANTOM:
            continue
        assert c.service_end is not None
        key = (c.server, c.day)
        lo, hi = out.get(key, (c.service_start, c.service_end))
        out[key] = (min(lo, c.service_start), max(hi, c.service_end))
    return out


class _Kind(int, Enum):
    # at the same second, what ended is known before a newcomer asks
    SERVICE_END = 0
    SERVICE_START = 1
    LEAVE = 2
    ARRIVAL = 3
    LEAVE_AFTER_ARRIVAL = 4  # a zero-second wait leaves at its own arrival second


@dataclass(frozen=True, slots=True)
class Prediction:
    call: TraceCall
    estimates: dict[str, WaitEstimate]


def _events(calls: Iterable[TraceCall]) -> list[tuple[float, int, int, TraceCall]]:
    events: list[tuple[float, int, int, TraceCall]] = []
    for i, c in enumerate(calls):
        if c.queued_at is not None and c.left_queue_at is not None:
            # leaving the queue is q_exit for everyone: the switch's ser_start can be a
            # second or two earlier, even before q_start for very short waits
            events.append((c.queued_at, _Kind.ARRIVAL, i, c))
            events.append((c.left_queue_at, _Kind.LEAVE if c.left_queue_at > c.queued_at
                           else _Kind.LEAVE_AFTER_ARRIVAL, i, c))
        if c.service_start is not None and c.outcome is not Outcome.PHANTOM:
            events.append((c.service_start, _Kind.SERVICE_START, i, c))
            assert c.service_end is not None
            events.append((c.service_end, _Kind.SERVICE_END, i, c))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


def _view(agent: str, skills: set[str], busy: tuple[float, str] | None,
          last_seen: float) -> AgentView:
    """An agent on shift: busy since their call started, else free since it ended."""
    if busy is not None:
        return AgentView(agent, frozenset(skills), busy_since=busy[0], serving=busy[1])
    return AgentView(agent, frozenset(skills), idle_since=last_seen)


def _present(shift: Mapping[tuple[str, date], tuple[float, float]], agent: str, day: date,
             t: float) -> bool:
    """On shift at ``t`` (a shift that began the day before may run past midnight)."""
    for d in (day, date.fromordinal(day.toordinal() - 1)):
        span = shift.get((agent, d))
        if span is not None and span[0] <= t <= span[1]:
            return True
    return False


def replay(calls: Iterable[TraceCall], estimators: Mapping[str, Estimator],
           on_shift_s: float = 1200.0,
           progress: Callable[[int, int], None] | None = None,
           staffing: Staffing = Staffing.CAUSAL) -> Iterator[Prediction]:
    """Replay calls in time order and ask every estimator at each queue entry.

    Estimators see only the past and the present: the snapshot holds the calls already
    waiting and the agents on shift, busy or idle since their last call ended. Who is on
    shift depends on ``staffing``: ``causal`` -- agents *seen* (starting or ending a
    call) within the last ``on_shift_s`` seconds or busy now; ``presence`` -- agents
    logged in now, i.e. between their first ``ser_start`` and last ``ser_exit`` of the
    day (the data README's definition; a live switch knows who is logged in). Either
    way an agent's skills are the types they served *so far* (earlier days included),
    never the ones they will serve. The ``observe_*`` hooks are called as events happen.
    """
    calls = list(calls)
    shift = shifts(calls) if staffing is Staffing.PRESENCE else {}
    events = _events(calls)
    waiting: dict[int, WaitingCall] = {}  # by row: call ids repeat across VRUs
    busy: dict[str, tuple[float, str]] = {}  # agent -> (call started, skill)
    last_seen: dict[str, float] = {}
    skills: dict[str, set[str]] = {}
    ests = list(estimators.values())
    for n, (t, kind, _, c) in enumerate(events):
        if progress is not None and n % 5000 == 0:
            progress(n, len(events))
        if kind == _Kind.SERVICE_END:
            if c.server is not None:
                busy.pop(c.server, None)
                last_seen[c.server] = t
            for e in ests:
                e.observe_service_end(c.skill, t - (c.service_start or t), t)
        elif kind == _Kind.SERVICE_START:
            if c.queued_at is None:
                for e in ests:
                    e.observe_arrival(c.skill, t, c.priority)
            if c.server is not None:
                busy[c.server] = (t, c.skill)
                last_seen[c.server] = t
                skills.setdefault(c.server, set()).add(c.skill)
        elif kind in (_Kind.LEAVE, _Kind.LEAVE_AFTER_ARRIVAL):
            waiting.pop(c.row, None)
            if c.outcome is Outcome.HANG:
                for e in ests:
                    e.observe_abandon(c.skill, c.waited_s, t)
            elif c.outcome is Outcome.AGENT:
                for e in ests:
                    e.observe_service_start(c.skill, c.waited_s, t)
        else:
            for e in ests:
                e.observe_arrival(c.skill, t, c.priority)
            me = WaitingCall(str(c.row), c.skill, c.priority, t)
            waiting[c.row] = me
            if staffing is Staffing.PRESENCE:
                agents = tuple(_view(a, skills.get(a, set()), busy.get(a), seen)
                               for a, seen in last_seen.items()
                               if a in busy or _present(shift, a, c.day, t))
            else:
                agents = tuple(_view(a, skills.get(a, set()), busy.get(a), seen)
                               for a, seen in last_seen.items()
                               if a in busy or seen >= t - on_shift_s)
            snap = QueueSnapshot(t, tuple(waiting.values()), agents)
            yield Prediction(c, {name: e.estimate(snap, me) for name, e in estimators.items()})
    if progress is not None:
        progress(len(events), len(events))
