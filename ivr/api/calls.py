"""`GET /api/calls/<CallSid>`: one call's record for agents and admins.

JSON: the call record plus ``events`` (the durable copy in SQL, else the live
Redis stream), ``transcript``
(null until transcribed), ``summary`` (null until ready) and ``outcome``. 404 for
an unknown or erased call.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from ivr.auth import api_auth
from ivr.services import current
from recordings.privacy import redact_value

bp = Blueprint("api_calls", __name__, url_prefix="/api/calls")


@bp.get("/<call_sid>")
@api_auth("agent", "supervisor")
def call(call_sid: str) -> Any:
    database = current().get("database")
    document = database.calls.get(call_sid)
    if document is None:
        response = jsonify(error="not_found", detail=f"no call {call_sid}")
        response.status_code = 404
        return response
    if not document["events"]:
        document["events"] = _live_events(call_sid)
    database.audit.write(g.principal.name, "call.read", "call", call_sid)
    return jsonify(document)


def _live_events(call_sid: str) -> list[Any]:
    """Events still only in Redis (the SQL copy is written when the call is filed)."""
    records = current().components.get("call_records")
    return [redact_value(e) for e in records.events(call_sid)] if records is not None else []
