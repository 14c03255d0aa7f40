"""Agents' JSON API: configure, log in/out, pause, accept, decline, complete.

Agents act on themselves only; supervisors and admins on anyone. Every answer that
produced a reservation carries it in ``assignments`` (the agent's next call).

Accepting rings the agent through Twilio; when Twilio refuses, the accept is undone
(:func:`ivr.bridge.put_through`): 502 with the reason and the call back at the head of
the line, or 409 when the caller has already hung up.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from ivr.api.queues import desk, queue_errors
from ivr.api.queues import error as queue_error
from ivr.auth import api_auth
from ivr.bridge import Accepted, BridgeError, put_through
from ivr.services import current
from queueing.agents import agent_view, assignment_view
from queueing.model import AgentState

bp = Blueprint("agents_api", __name__, url_prefix="/api/agents")
_CONTACT = re.compile(r"^(\+[1-9][0-9]{6,14}|client:[A-Za-z0-9_.-]{1,64}|sip:[^\s]{3,200})$")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _self_or_supervisor(agent_id: str) -> Response | None:
    principal = g.principal
    if principal.role == "agent" and principal.agent_id != agent_id:
        return error(403, f"agents may only act on themselves ({principal.agent_id!r})")
    return None


def error(status: int, detail: str, assignments: list[Any] | None = None) -> Response:
    """A refusal; an undone accept also lists the reservations it made meanwhile."""
    response = queue_error(status, detail)
    if assignments is not None:
        body = response.get_json()
        response = jsonify(**body, assignments=[assignment_view(a) for a in assignments])
        response.status_code = status
    return response


def _done(assignments: list[Any], **extra: Any) -> Response:
    return jsonify(ok=True, assignments=[assignment_view(a) for a in assignments], **extra)


@bp.get("")
@api_auth("supervisor")
def list_agents() -> Response:
    d = desk()
    now = d.clock()
    return jsonify([agent_view(a, now) for a in d.store.agents()])


@bp.put("/<agent_id>")
@api_auth("supervisor")
@queue_errors
def configure(agent_id: str) -> Response:
    body = _body()
    skills = body.get("skills")
    if not isinstance(skills, dict):
        return error(400, 'send JSON {"skills": {"lang:es": 1, "topic:billing": 3}, '
                          '"capacity": 1, "queues": []}')
    queues = body.get("queues", [])
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        return error(400, "queues must be a list of queue names (empty: every queue)")
    contact = body.get("contact")
    if contact is not None:
        if not isinstance(contact, str) or not _CONTACT.match(contact):
            return error(400, 'contact must be "+E164", "client:name" or "sip:user@host"')
        bridge = current().components.get("bridge")
        if bridge is not None:
            bridge.set_contact(agent_id, contact)
    return _done(desk().configure_agent(agent_id, skills, body.get("capacity", 1), queues))


@bp.get("/<agent_id>")
@api_auth("agent", "supervisor")
def show(agent_id: str) -> Response:
    refused = _self_or_supervisor(agent_id)
    if refused:
        return refused
    d = desk()
    agent = d.store.agent(agent_id)
    if agent is None:
        return error(404, f"no agent {agent_id!r}; a supervisor creates it with PUT")
    return jsonify(agent_view(agent, d.clock()))


@bp.post("/<agent_id>/<action>")
@api_auth("agent", "supervisor")
@queue_errors
def act(agent_id: str, action: str) -> Response:
    refused = _self_or_supervisor(agent_id)
    if refused:
        return refused
    d = desk()
    body = _body()
    if action == "login":
        return _done(d.login(agent_id))
    if action == "logout":
        return _done(d.logout(agent_id))
    if action == "wrap-up-done":
        return _done(d.end_wrap_up(agent_id))
    if action == "state":
        state = body.get("state")
        allowed = (AgentState.AVAILABLE.value, AgentState.PAUSED.value, AgentState.OFFLINE.value)
        if state not in allowed:
            return error(400, f"state must be one of {list(allowed)}")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            return error(400, "reason must be a string")
        return _done(d.set_state(agent_id, state, reason))
    if action in ("accept", "decline", "complete"):
        call_id = body.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            return error(400, 'send JSON {"call_id": "CA..."}')
        if action == "accept":
            try:
                how = put_through(d.store, current().components.get("bridge"), agent_id,
                                  call_id, now=d.clock())
            except BridgeError as exc:  # undone: 409 caller gone, 502 Twilio refused
                for assignment in exc.assignments:
                    d.dispatch(assignment)
                return error(exc.status, str(exc), list(exc.assignments))
            if how is Accepted.CALLING_CUSTOMER:
                return _done([], status=how.value, bridged=False,
                             detail="we are calling the customer back: your phone is "
                                    "connected when they answer")
            return _done([], status=how.value, bridged=True)
        if action == "decline":
            return _done(d.decline(agent_id, call_id))
        wrap = body.get("wrap_up_s")
        if wrap is not None and (isinstance(wrap, bool) or not isinstance(wrap, (int, float))
                                 or not 0 <= wrap <= 3600):
            return error(400, "wrap_up_s must be a number of seconds 0..3600")
        return _done(d.complete(agent_id, call_id, wrap))
    return error(404, f"unknown action {action!r}: login, logout, state, accept, decline,"
                      " complete, wrap-up-done")
