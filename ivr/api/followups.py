"""Follow-up tasks (a promised callback, a pending refund) through the JSON API.

- `POST /api/customers/<id>/follow-ups` ``{"description", "owner"?, "due_at"?, "call_sid"?}``
  opens one (201); ``due_at`` is ISO 8601 with a time zone.
- `GET /api/follow-ups?overdue=1` lists the open ones past their due time
  (supervisors and admins).
- `POST /api/follow-ups/<id>/close` ``{"state": "done"|"cancelled"}`` (default done).

Every change is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, g, jsonify, request

from ivr.auth import api_auth
from ivr.services import current
from recordings.errors import NotFound
from recordings.model import FollowUpState

bp = Blueprint("api_follow_ups", __name__, url_prefix="/api")

MAX_DESCRIPTION = 2000
MAX_OWNER = 200


def _error(status: int, error: str, detail: str) -> Any:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


class _BadRequest(Exception):
    pass


def _optional_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _BadRequest(f'"{key}" must be a non-empty string of at most {limit} characters')
    return value.strip()


def _due_at(raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        raise _BadRequest(f'"due_at" {raw!r} is not an ISO 8601 time; '
                          'send e.g. "2026-03-02T17:00:00+01:00"')
    if value.tzinfo is None:
        raise _BadRequest(f'"due_at" {raw!r} has no time zone; add one, e.g. "Z" or "+01:00"')
    return value


@bp.post("/customers/<int:customer_id>/follow-ups")
@api_auth("agent", "supervisor")
def open_follow_up(customer_id: int) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "bad_request", 'send JSON {"description": "...", "owner"?: "...", '
                      '"due_at"?: "<ISO 8601 with time zone>", "call_sid"?: "CA..."}')
    database = current().get("database")
    try:
        description = _optional_text(body, "description", MAX_DESCRIPTION)
        if description is None:
            raise _BadRequest('"description" is required: what must be done')
        owner = _optional_text(body, "owner", MAX_OWNER)
        due_at = _due_at(body.get("due_at"))
        call_sid = _optional_text(body, "call_sid", 64)
        if call_sid is not None:
            call = database.calls.get(call_sid)
            if call is None:
                raise _BadRequest(f'"call_sid": no call {call_sid}')
            if call.get("customer_id") not in (None, customer_id):
                raise _BadRequest(f'"call_sid": call {call_sid} belongs to another customer')
    except _BadRequest as exc:
        return _error(400, "bad_request", str(exc))
    try:
        follow_up_id = database.follow_ups.open(customer_id, description, owner=owner,
                                                due_at=due_at, call_sid=call_sid)
    except NotFound as exc:
        return _error(404, "not_found", str(exc))
    database.audit.write(g.principal.name, "follow_up.open", "customer", str(customer_id),
                         {"follow_up_id": follow_up_id})
    created = next(f for f in database.follow_ups.for_customer(customer_id)
                   if f["id"] == follow_up_id)
    response = jsonify(created)
    response.status_code = 201
    return response


@bp.get("/follow-ups")
@api_auth("supervisor")
def overdue() -> Any:
    if request.args.get("overdue") not in ("1", "true", "yes"):
        return _error(400, "bad_request", "only the overdue list is offered here: "
                      "/api/follow-ups?overdue=1 (a customer's follow-ups are in "
                      "/api/customers/<id>)")
    items = current().get("database").follow_ups.overdue()
    return jsonify(follow_ups=items, count=len(items))


@bp.post("/follow-ups/<int:follow_up_id>/close")
@api_auth("agent", "supervisor")
def close(follow_up_id: int) -> Any:
    body = request.get_json(silent=True) if request.data else {}
    raw_state = body.get("state", FollowUpState.DONE.value) if isinstance(body, dict) else None
    if raw_state not in (FollowUpState.DONE.value, FollowUpState.CANCELLED.value):
        return _error(400, "bad_request",
                      'send no body, or JSON {"state": "done"} or {"state": "cancelled"}')
    database = current().get("database")
    try:
        database.follow_ups.close(follow_up_id, FollowUpState(raw_state))
    except NotFound as exc:
        return _error(404, "not_found", str(exc))
    database.audit.write(g.principal.name, "follow_up.close", "follow_up", str(follow_up_id),
                         {"state": raw_state})
    return jsonify(id=follow_up_id, state=raw_state)
