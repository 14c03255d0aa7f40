"""/dashboard: the supervisors' live screen and its JSON snapshot.

Queue figures come from the router (the same ``Desk.summaries()`` as ``GET /api/queues``);
the page refreshes on each event of the ``/api/events/queues`` feed and polls every few
seconds as a fallback. History charts are drawn by the page from ``/api/reports/kpis``.

"Calls in the IVR" are calls with a step in the last ``IVR_WINDOW_S`` seconds (read
from the global ``ivr:events`` stream) that have not ended and have not reached a
queue: the webhook layer keeps no index of live calls, and an IVR conversation does
not go quiet for that long.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from flask import jsonify, render_template

from ivr.api.queues import desk
from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import strings
from ivr.web.session import json_view, page, require_user
from queueing.model import AgentState, CallStatus

IVR_WINDOW_S = 600
MAX_EVENTS = 5000
JS_STRINGS = ("waiting", "longest", "ewt", "service_level", "abandonment", "agents",
              "queue", "calls", "answered", "abandoned", "no_data", "updated", "funnel",
              "connection_lost", "available", "paused", "offline", "busy", "reserved",
              "wrap_up", "agent", "state", "by_day", "by_queue", "by_agent", "in_ivr",
              "callbacks", "error")


@bp.get("/dashboard")
@page("supervisor")
def dashboard() -> Any:
    user = require_user()
    return render_template("web/dashboard.html", api_token=user.api_token,
                           js_strings=strings(*JS_STRINGS))


@bp.get("/dashboard/live.json")
@json_view("supervisor")
def live() -> Any:
    d = desk()
    now = d.clock()
    queues = [s.to_dict() for s in d.summaries()]
    agents = d.store.agents()
    by_state = Counter(a.state.value for a in agents)
    waiting = d.store.waiting()
    return jsonify(
        at=now, queues=queues,
        agents_by_state={s.value: by_state.get(s.value, 0) for s in AgentState},
        agents=[{"agent_id": a.agent_id, "state": a.state.value,
                 "pause_reason": a.pause_reason, "calls": list(a.calls),
                 "in_state_s": round(now - a.state_since, 1) if a.state_since else None}
                for a in agents],
        callbacks_pending=sum(1 for c in waiting if c.status is CallStatus.CALLBACK_PENDING),
        in_ivr=calls_in_ivr(d.store.active_ids()),
        totals=_totals(queues))


def _totals(queues: list[dict[str, Any]]) -> dict[str, Any]:
    answered = sum(q["answered"] for q in queues)
    abandoned = sum(q["abandoned"] for q in queues)
    within = sum((q["service_level"] or 0) * q["answered"] for q in queues)
    return {"waiting": sum(q["waiting"] for q in queues),
            "service_level": round(within / answered, 4) if answered else None,
            "abandonment_rate": round(abandoned / (answered + abandoned), 4)
            if answered + abandoned else None}


def calls_in_ivr(queued: set[str]) -> int:
    client = current().redis
    since = int((time.time() - IVR_WINDOW_S) * 1000)
    entries: Any = client.xrevrange("ivr:events", max="+", min=f"{since}-0", count=MAX_EVENTS)
    sids = {fields.get("call_sid") for _, fields in entries or []} - {None} - queued
    if not sids:
        return 0
    pipe = client.pipeline(transaction=False)
    for sid in sids:
        pipe.hmget(f"ivr:call:{sid}", "ended", "session")
    count = 0
    for ended, raw in pipe.execute():
        if ended:
            continue
        try:
            session = json.loads(raw) if raw else {}
        except ValueError:
            session = {}
        if not session.get("ended"):
            count += 1
    return count
