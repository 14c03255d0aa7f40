"""Filed calls from SQL as :class:`recordings.kpis.KpiCall` rows for the KPI report.

Reads the call rows, their durable events (node path, ``survey`` answers) and
their current summary (an agent's approved reason wins over the IVR's guess).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select

from recordings import model as m
from recordings.kpis import KpiCall
from recordings.store import Database
from recordings.summaries import ROUTING


def load_calls(db: Database, start: datetime, end: datetime) -> list[KpiCall]:
    """Calls that started in ``[start, end)``."""
    with db.session() as session:
        rows = list(session.scalars(select(m.CallRow).where(
            m.CallRow.started_at >= start, m.CallRow.started_at < end)
            .order_by(m.CallRow.started_at, m.CallRow.call_sid)))
        sids = [r.call_sid for r in rows]
        paths: dict[str, list[str]] = defaultdict(list)
        survey: dict[str, dict[str, int]] = defaultdict(dict)
        summaries: dict[str, tuple[int, bool, dict[str, Any]]] = {}
        for chunk in range(0, len(sids), 500):
            part = sids[chunk:chunk + 500]
            for ev in session.scalars(select(m.CallEventRow).where(
                    m.CallEventRow.call_sid.in_(part)).order_by(m.CallEventRow.call_sid,
                                                                m.CallEventRow.seq)):
                data = ev.data or {}
                node = data.get("node")
                if ev.kind == "node" and node and data.get("type") not in ("call", "engine"):
                    path = paths[ev.call_sid]
                    if not path or path[-1] != node:
                        path.append(str(node))
                elif ev.kind == "survey":
                    for key in ("csat", "nps"):
                        if isinstance(data.get(key), int):
                            survey[ev.call_sid][key] = data[key]
            for s in session.scalars(select(m.SummaryRow).where(m.SummaryRow.call_sid.in_(part))):
                approved = s.status == m.SummaryStatus.APPROVED.value
                best = summaries.get(s.call_sid)
                if best is None or (approved, s.version) > (best[1], best[0]):
                    summaries[s.call_sid] = (s.version, approved, s.body or {})
        out = []
        for r in rows:
            body = summaries.get(r.call_sid, (0, False, {}))[2]
            reason = (body.get("reason") or {}).get("summary") if body else None
            if not reason:
                intents = [i for i in (r.intents or []) if i not in ROUTING]
                reason = intents[0] if intents else None
            out.append(KpiCall(
                call_sid=r.call_sid, started_at=r.started_at or m.utcnow(), outcome=r.outcome,
                line=r.line, queue=r.queue, agent_id=r.agent_id, queue_wait_s=r.queue_wait_s,
                handle_time_s=r.handle_time_s,
                caller=str(r.customer_id) if r.customer_id is not None else r.from_number,
                reason=reason, flow=r.flow, path=tuple(paths.get(r.call_sid, ())),
                csat=survey.get(r.call_sid, {}).get("csat"),
                nps=survey.get(r.call_sid, {}).get("nps")))
        return out


def kpi_document(database: Any, first: Any, last: Any, zone: Any, window: Any,
                 sl_seconds: float, groups: Any) -> dict[str, Any]:
    """The KPI report for days ``first``..``last`` (in ``zone``) as plain data; shared by
    ``ivr report kpis --format json`` and ``GET /api/reports/kpis``."""
    from datetime import UTC, datetime, time, timedelta

    from recordings.kpis import GROUPS, KpiOptions, funnel, report

    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    calls = load_calls(database, start, end)
    later = load_calls(database, end, end + window)  # repeat calls after the period
    options = KpiOptions(fcr_window=window, sl_threshold_s=sl_seconds, tz=zone,
                         now=datetime.now(UTC))
    rows = report(calls, calls + later, options, groups or GROUPS)
    steps = funnel(calls)
    return {
        "from": first.isoformat(), "to": last.isoformat(), "tz": str(zone),
        "fcr_window_days": window.total_seconds() / 86400, "sl_threshold_s": sl_seconds,
        "rows": [{"group": r.group, "key": r.key, **r.values} for r in rows],
        "funnel": [{"flow": st.flow, "node": st.node, "reached": st.reached,
                    "dropped": st.dropped, "drop_pct": st.drop_pct} for st in steps],
    }
