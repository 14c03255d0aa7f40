"""Read-only view of a call's live record in Redis, as the web layer writes it.

``ivr/store.py`` owns the layout (``ivr:call:{CallSid}`` hash with the latest
``session``; ``ivr:call:{CallSid}:events`` stream, one entry per node visited or
call event, each with the step number ``seq`` or ``status:<status>:<n>``). This
module must not import ``ivr`` (dependency rule), so it reads those keys itself.

Stream order is write order, not call order: the status callback can land before
the webhook's last steps are written. :func:`ordered` sorts events by step, keeps
the order within a step (one atomic write), puts status callbacks last and gives
each a stable integer ``seq`` so copying them to SQL twice stores nothing twice.
Each event gets ``t``: seconds since the first event, from the Redis stream ids
(one clock, Redis's, for every event of the call).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

STEP_STRIDE = 1000  # records per step (an engine step visits at most 64 nodes)
STATUS_BASE = 1_000_000_000
_STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3}


@dataclass(frozen=True)
class LiveCall:
    call_sid: str
    session: dict[str, Any] | None
    events: list[dict[str, Any]]  # ordered, each with int "seq" and float "t"
    ended_at: float | None  # Unix time the first final status was recorded
    statuses: dict[str, float]


def read_call(client: redis.Redis, call_sid: str) -> LiveCall:
    base = f"ivr:call:{call_sid}"
    stored: Any = client.hgetall(base)  # redis-py types replies loosely
    entries: Any = client.xrange(f"{base}:events")
    fields = {_text(k): _text(v) for k, v in (stored or {}).items()}
    raw_events = [(_text(i), {_text(k): _text(v) for k, v in (f or {}).items()})
                  for i, f in entries or []]
    session = None
    if fields.get("session"):
        try:
            session = json.loads(fields["session"])
        except ValueError:
            session = None
    events = []
    for entry_id, entry in raw_events:
        try:
            data = json.loads(entry.get("data") or "{}")
        except ValueError:
            data = {"raw": entry.get("data")}
        if not isinstance(data, dict):
            data = {"value": data}
        data["_step"] = entry.get("seq", "")
        data["_id"] = entry_id
        events.append(data)
    statuses = {k[len("status_"):]: _float(v) for k, v in fields.items()
                if k.startswith("status_") and _float(v) is not None}
    return LiveCall(call_sid, session, ordered(events), _float(fields.get("ended")),
                    {k: v for k, v in statuses.items() if v is not None})


def ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort by step, status callbacks last; stable ``seq`` and ``t`` on each event."""
    def key(item: tuple[int, dict[str, Any]]) -> tuple[int, int, int, int]:
        index, event = item
        step = str(event.get("_step", ""))
        if step.isdigit():
            return (0, int(step), 0, index)
        status = str(event.get("status") or (step.split(":")[1] if ":" in step else ""))
        return (1, _STATUS_RANK.get(status, 9), _int(step.rsplit(":", 1)[-1]), index)

    out: list[dict[str, Any]] = []
    times = [_stream_ms(e.get("_id")) for e in events]
    # Time zero is the call's first step (a status callback may be written earlier).
    steps = [t for t, e in zip(times, events) if str(e.get("_step", "")).isdigit()]
    start = min((t for t in steps or times if t is not None), default=None)
    counters: dict[tuple[int, int], int] = {}
    for index, event in sorted(enumerate(events), key=key):
        group, step, sub, _ = key((index, event))
        slot = (group, step if group == 0 else step * 1000 + min(sub, 999))
        n = counters.get(slot, 0)
        counters[slot] = n + 1
        seq = (step * STEP_STRIDE + min(n, STEP_STRIDE - 1) if group == 0
               else STATUS_BASE + slot[1] * 10 + min(n, 9))
        ms = times[index]
        item = {k: v for k, v in event.items()
                if k not in ("seq", "id") and not k.startswith("_")}
        item["seq"] = seq
        item["t"] = round((ms - start) / 1000.0, 3) if ms is not None and start is not None else None
        item["step"] = step if group == 0 else None
        out.append(item)
    return out


def _stream_ms(entry_id: Any) -> int | None:
    try:
        return int(str(entry_id).split("-", 1)[0])
    except ValueError:
        return None


def _int(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        return 0


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
