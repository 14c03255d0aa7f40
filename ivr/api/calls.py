"""`GET /api/calls/<CallSid>`: one call's record for agents and admins.

JSON: the call record plus ``events`` (the durable copy in SQL, else the live
Redis stream), ``recordings`` (each with the ``url`` that streams it) and
``recording_ids``, ``transcript``
(null until transcribed), ``summary`` (null until ready; the approved version once
an agent approved one) and ``outcome``. 404 for an unknown or erased call.

`PUT /api/calls/<CallSid>/summary` with ``{"version": n, "summary": {...}}``: the
agent's corrections at wrap-up, merged over version ``n`` and approved in their
name (a new version when something changed). 409 when ``n`` is not the newest
version (someone else changed it: reload), 400 for a malformed body. The approved
summary is then queued for the CRM (``recordings.jobs.push_to_crm``).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint, g, jsonify, request

from ivr.auth import api_auth
from ivr.services import current
from recordings.crm import enqueue_push
from recordings.privacy import redact_value

log = logging.getLogger(__name__)
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
    for rec in document.get("recordings") or []:  # streamed by GET /api/recordings/<id>
        rec["url"] = f"/api/recordings/{rec['id']}"
    document["recording_ids"] = [rec["id"] for rec in document.get("recordings") or []]
    database.audit.write(g.principal.name, "call.read", "call", call_sid)
    return jsonify(document)


def _live_events(call_sid: str) -> list[Any]:
    """Events still only in Redis (the SQL copy is written when the call is filed)."""
    records = current().components.get("call_records")
    return [redact_value(e) for e in records.events(call_sid)] if records is not None else []


def _error(status: int, error: str, detail: str) -> Any:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


@bp.put("/<call_sid>/summary")
@api_auth("agent", "supervisor")
def approve_summary(call_sid: str) -> Any:
    body = request.get_json(silent=True)
    version = body.get("version") if isinstance(body, dict) else None
    corrections = body.get("summary", {}) if isinstance(body, dict) else None
    if (not isinstance(version, int) or isinstance(version, bool) or version < 1
            or not isinstance(corrections, dict)):
        return _error(400, "bad_request", 'send JSON {"version": <the version you edited>, '
                      '"summary": {<corrected fields>}}')
    database = current().get("database")
    if database.calls.get(call_sid) is None:
        return _error(404, "not_found", f"no call {call_sid}")
    lock = current().redis.lock(f"summary-approval:{call_sid}", timeout=30, blocking_timeout=5)
    if not lock.acquire():
        return _error(409, "busy", "someone else is approving this summary; reload and retry")
    try:
        versions = database.calls.get(call_sid)["summaries"]
        if not versions:
            return _error(404, "not_found", f"call {call_sid} has no summary yet")
        newest = versions[-1]
        if version != newest["version"]:
            return _conflict(newest, version)
        merged = {**(newest.get("body") or {}), **corrections}
        if merged != newest.get("body"):
            version = database.summaries.save_draft(call_sid, merged)
        database.summaries.approve(call_sid, version, g.principal.name)
    finally:
        lock.release()
    database.audit.write(g.principal.name, "summary.approve", "call", call_sid,
                         {"version": version, "fields": sorted(corrections)})
    _queue_crm_push(call_sid, version)
    return jsonify(database.summaries.current(call_sid))


def _conflict(newest: dict[str, Any], version: int) -> Any:
    response = jsonify(error="stale_version", current=newest,
                       detail=f"version {version} is not the newest ({newest['version']}): "
                       "reload the summary and redo your corrections on it")
    response.status_code = 409
    return response


def _queue_crm_push(call_sid: str, version: int) -> None:
    """Queue the push on the RQ default queue (as ``ivr.app`` queues the filing)."""
    services = current()
    connection = services.components.get("rq_connection")
    if connection is None:  # RQ needs a connection that does not decode responses
        connection = redis.Redis.from_url(services.settings.effective_redis_url)
        services.components["rq_connection"] = connection
    try:
        enqueue_push(connection, call_sid, version)
    except redis.RedisError:
        # The approval stands; the CRM push can be re-queued by hand.
        log.exception("could not queue the CRM push of call %s summary v%s", call_sid, version)
