"""/agent: the agent console, and the one JSON helper its script needs beyond the API.

The console's script acts through the JSON API (``/api/agents/<id>/...``,
``/api/customers?phone=``, ``/api/calls/<sid>``, follow-ups) with the session's page
token. What the API does not give -- the live IVR side of a call that is still in
progress (caller number, language, menu choices, words said) -- comes from
``/agent/offer.json``, read from the router's call record and the call's live Redis
record.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request

from ivr.api.queues import desk
from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import strings
from ivr.web.session import WebUser, json_view, page, require_user
from queueing.agents import agent_view
from recordings.live_calls import read_call
from recordings.privacy import redact_value

JS_STRINGS = ("available", "paused", "offline", "busy", "reserved", "wrap_up", "no_offer",
              "unknown_caller", "waited", "queue", "intent", "recent_calls", "follow_ups",
              "summary_pending", "saved_ok", "error", "vip", "account", "customer",
              "connection_lost", "language", "said", "phone")
SNIPPET_INPUTS = 8


def agent_id_for(user: WebUser) -> str | None:
    if user.role == "admin":  # admins may look at any agent's console
        return request.args.get("agent") or user.agent_id
    return user.agent_id


@bp.get("/agent")
@page("agent")
def agent() -> Any:
    user = require_user()
    return render_template("web/agent.html", agent_id=agent_id_for(user),
                           api_token=user.api_token, js_strings=strings(*JS_STRINGS))


@bp.get("/agent/offer.json")
@json_view("agent")
def offer() -> Any:
    user = require_user()
    agent_id = agent_id_for(user)
    if not agent_id:
        return jsonify(error="no_agent", detail="this login has no agent id"), 400
    d = desk()
    now = d.clock()
    found = d.store.agent(agent_id)
    calls = []
    for call_id in (found.calls if found else ()):
        call = d.store.call(call_id)
        if call is None:
            continue
        calls.append({"call_id": call.call_id, "queue": call.queue,
                      "status": call.status.value, "caller": call.caller,
                      "wait_s": round(call.wait_s(now), 1), "priority": call.priority,
                      "needs": dict(call.needs), "callback": call.callback_number is not None,
                      "ivr": ivr_view(call_id)})
    return jsonify(agent=agent_view(found, now) if found else None, agent_id=agent_id,
                   calls=calls)


def ivr_view(call_sid: str) -> dict[str, Any]:
    """What the caller said and chose before reaching the agent, from the live record."""
    live = read_call(current().redis, call_sid)
    session = live.session or {}
    chosen: list[str] = []
    said: list[dict[str, Any]] = []
    path: list[str] = []
    for event in live.events:
        node = event.get("node")
        result, raw = str(event.get("outcome") or ""), str(event.get("input") or "")
        if node and (not path or path[-1] != node):
            path.append(str(node))
        if result.startswith("option:"):
            chosen.append(f"{node}: {result[len('option:'):]}")
        if raw.startswith("speech:"):
            text, _, confidence = raw[len("speech:"):].rpartition("@")
            said.append({"node": node, "text": text or confidence, "confidence": confidence
                         if text else None})
        elif raw.startswith("dtmf:"):
            said.append({"node": node, "keys": raw[len("dtmf:"):]})
    customer = session.get("customer") or None
    variables = dict(session.get("vars") or {})
    view = {"language": session.get("language"), "line": session.get("line"),
            "flow": session.get("flow"), "topic": variables.get("topic"),
            "vars": variables, "chosen": chosen, "inputs": said[-SNIPPET_INPUTS:],
            "path": path[-12:], "customer": customer}
    redacted: dict[str, Any] = redact_value(view)  # card numbers: last four digits at most
    return redacted
