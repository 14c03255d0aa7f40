"""Service KPIs computed from filed calls (pure: plain data in, plain data out).

Definitions (each KPI is ``None`` -- shown "n/a" -- when its base is empty):

- **CSAT**: share of survey answers scoring 4 or 5 on 1-5 (``csat_pct``), and the
  mean score (``csat_avg``); from events of kind ``survey``.
- **NPS**: % promoters (9-10) minus % detractors (0-6) of the 0-10 answers.
- **FCR**: among calls handled (answered in the IVR, served, transferred) with a
  known reason, the share with no other call from the same customer (or number)
  about the same reason within ``fcr_window`` after it. Calls whose window has not
  closed by ``now`` are left out (``fcr_pending``) rather than guessed.
- **AHT**: mean handle time of served calls. **ASA**: mean queue wait of served calls.
- **Service level**: calls answered within ``sl_threshold_s`` over calls that
  reached a queue and were answered or abandoned.
- **Abandonment rate**: calls abandoned in a queue over calls that reached one.
- **IVR containment**: calls answered in the IVR over all answered inbound calls.
- **Funnel**: per flow and node, how many calls reached the node and how many
  callers hung up there (abandoned with that node last).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import fmean
from typing import Any

HANDLED = {"resolved_ivr", "served", "transfer"}
GROUPS = ("line", "queue", "agent", "day")


@dataclass(frozen=True)
class KpiCall:
    call_sid: str
    started_at: datetime
    outcome: str | None
    line: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    queue_wait_s: float | None = None
    handle_time_s: float | None = None
    caller: str | None = None  # customer id, else the number: whose repeat calls count
    reason: str | None = None
    flow: str | None = None
    path: tuple[str, ...] = ()
    csat: int | None = None
    nps: int | None = None


@dataclass(frozen=True)
class KpiOptions:
    fcr_window: timedelta = timedelta(days=7)
    sl_threshold_s: float = 20.0
    tz: tzinfo = UTC
    now: datetime | None = None  # None: every FCR window counts as closed


@dataclass
class KpiRow:
    group: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)


COLUMNS = ("calls", "csat_pct", "csat_avg", "csat_n", "nps", "nps_n", "fcr_pct", "fcr_n",
           "fcr_pending", "aht_s", "asa_s", "service_level_pct", "abandon_pct",
           "containment_pct", "served", "abandoned", "resolved_ivr")


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return round(fmean(values), 1) if values else None


def repeat_free(calls: Sequence[KpiCall], everything: Sequence[KpiCall], options: KpiOptions
                ) -> tuple[int, int, int]:
    """(first-call-resolved, base, pending) for ``calls`` looking for repeats in
    ``everything`` (which should reach ``fcr_window`` past the period)."""
    by_caller: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for c in everything:
        if c.caller and c.reason:
            by_caller[(c.caller, c.reason)].append(c.started_at)
    resolved = base = pending = 0
    for c in calls:
        if c.outcome not in HANDLED or not c.caller or not c.reason:
            continue
        end = c.started_at + options.fcr_window
        if options.now is not None and end > options.now:
            pending += 1
            continue
        base += 1
        if not any(c.started_at < t <= end for t in by_caller[(c.caller, c.reason)]):
            resolved += 1
    return resolved, base, pending


def compute(calls: Sequence[KpiCall], everything: Sequence[KpiCall] | None = None,
            options: KpiOptions = KpiOptions()) -> dict[str, Any]:
    """The KPIs of one set of calls (see the module docstring)."""
    everything = calls if everything is None else everything
    csat = [c.csat for c in calls if c.csat is not None]
    nps = [c.nps for c in calls if c.nps is not None]
    served = [c for c in calls if c.outcome == "served"]
    queued = [c for c in calls if c.queue and c.outcome in ("served", "abandoned")]
    abandoned_q = [c for c in queued if c.outcome == "abandoned"]
    in_time = [c for c in served if c.queue_wait_s is not None
               and c.queue_wait_s <= options.sl_threshold_s]
    answered = [c for c in calls if c.outcome not in (None, "unanswered")]
    contained = [c for c in answered if c.outcome == "resolved_ivr"]
    fcr, fcr_base, fcr_pending = repeat_free(calls, everything, options)
    promoters = sum(1 for s in nps if s >= 9)
    detractors = sum(1 for s in nps if s <= 6)
    return {
        "calls": len(calls),
        "csat_pct": _pct(sum(1 for s in csat if s >= 4), len(csat)),
        "csat_avg": round(fmean(csat), 2) if csat else None,
        "csat_n": len(csat),
        "nps": round(100.0 * (promoters - detractors) / len(nps), 1) if nps else None,
        "nps_n": len(nps),
        "fcr_pct": _pct(fcr, fcr_base),
        "fcr_n": fcr_base,
        "fcr_pending": fcr_pending,
        "aht_s": _mean([c.handle_time_s for c in served if c.handle_time_s is not None]),
        "asa_s": _mean([c.queue_wait_s for c in served if c.queue_wait_s is not None]),
        "service_level_pct": _pct(len(in_time), len(queued)),
        "abandon_pct": _pct(len(abandoned_q), len(queued)),
        "containment_pct": _pct(len(contained), len(answered)),
        "served": len(served),
        "abandoned": sum(1 for c in calls if c.outcome == "abandoned"),
        "resolved_ivr": len(contained),
    }


def _key(group: str, options: KpiOptions) -> Callable[[KpiCall], str]:
    if group == "line":
        return lambda c: c.line or "-"
    if group == "queue":
        return lambda c: c.queue or "(no queue)"
    if group == "agent":
        return lambda c: c.agent_id or "(no agent)"
    if group == "day":
        return lambda c: c.started_at.astimezone(options.tz).date().isoformat()
    raise ValueError(f"unknown grouping {group!r}: use one of {', '.join(GROUPS)}")


def report(calls: Sequence[KpiCall], everything: Sequence[KpiCall] | None = None,
           options: KpiOptions = KpiOptions(), groups: Iterable[str] = GROUPS
           ) -> list[KpiRow]:
    """One row for all calls, then one per line, queue, agent and day."""
    rows = [KpiRow("all", "all", compute(calls, everything, options))]
    for group in groups:
        key = _key(group, options)
        buckets: dict[str, list[KpiCall]] = defaultdict(list)
        for c in calls:
            buckets[key(c)].append(c)
        rows += [KpiRow(group, k, compute(v, everything, options))
                 for k, v in sorted(buckets.items())]
    return rows


@dataclass(frozen=True)
class FunnelStep:
    flow: str
    node: str
    reached: int
    dropped: int

    @property
    def drop_pct(self) -> float | None:
        return _pct(self.dropped, self.reached)


def funnel(calls: Iterable[KpiCall]) -> list[FunnelStep]:
    """Per flow and node: calls that reached it, callers who hung up there; ordered
    by flow, then most reached first (the entry node comes first)."""
    reached: dict[tuple[str, str], int] = defaultdict(int)
    dropped: dict[tuple[str, str], int] = defaultdict(int)
    first_seen: dict[tuple[str, str], int] = {}
    for c in calls:
        flow = c.flow or "-"
        for position, node in enumerate(dict.fromkeys(c.path)):
            reached[(flow, node)] += 1
            first_seen[(flow, node)] = min(first_seen.get((flow, node), position), position)
        if c.outcome == "abandoned" and c.path:
            dropped[(flow, c.path[-1])] += 1
    steps = [FunnelStep(f, n, r, dropped.get((f, n), 0)) for (f, n), r in reached.items()]
    return sorted(steps, key=lambda s: (s.flow, -s.reached, first_seen[(s.flow, s.node)],
                                        s.node))
