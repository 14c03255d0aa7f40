"""Live queue state as JSON and as a server-sent-events feed for wallboards.

``GET /api/queues`` (contract): each queue's ``name``, ``waiting``,
``longest_wait_s``, ``ewt_s``, ``agents_available`` plus service level, abandonment
and ASA. ``GET /api/queues/<name>`` adds the waiting calls and the agents.
``GET /api/events/queues?max_seconds=N`` streams the same list on every change.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ivr.auth import api_auth
from ivr.services import current
from queueing.agents import Desk, no_dispatch
from queueing.errors import QueueError

bp = Blueprint("queues_api", __name__)

F = TypeVar("F", bound=Callable[..., Any])
MAX_STREAM_S = 3600
HEARTBEAT_S = 15


def desk() -> Desk:
    services = current()
    return Desk(services.get("queue"),
                dispatch=services.components.get("queue_dispatch", no_dispatch),
                estimator=services.components.get("queue_estimator"))


def error(status: int, detail: str) -> Response:
    response = jsonify(error="bad_request" if status == 400 else "refused", detail=detail)
    response.status_code = status
    return response


def queue_errors(view: F) -> F:
    """Turn the router's errors into 4xx answers with the reason."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except QueueError as exc:
            return error(exc.status, str(exc))
        except ValueError as exc:  # a bad enum value or number in the body
            return error(400, str(exc))
    return wrapper  # type: ignore[return-value]


@bp.get("/api/queues")
@api_auth("agent", "supervisor")
def queues() -> Response:
    return jsonify([s.to_dict() for s in desk().summaries()])


@bp.get("/api/queues/<name>")
@api_auth("agent", "supervisor")
def queue(name: str) -> Response:
    detail = desk().queue_detail(name)
    if detail is None:
        return error(404, f"no queue {name!r}: it has no calls, no statistics and no rules")
    return jsonify(detail)


@bp.get("/api/events/queues")
@api_auth("agent", "supervisor")
def events() -> Response:
    raw = request.args.get("max_seconds", "300")
    try:
        limit = float(raw)
    except ValueError:
        return error(400, f"max_seconds must be a number of seconds, got {raw!r}")
    if not 0 < limit <= MAX_STREAM_S:
        return error(400, f"max_seconds must be in (0, {MAX_STREAM_S}]")
    d = desk()

    def stream() -> Iterator[str]:
        end = time.monotonic() + limit
        last = d.store.last_event_id()
        yield _frame(d)
        quiet_since = time.monotonic()
        while (left := end - time.monotonic()) > 0:
            got = d.store.events(after=last, block_ms=max(1, int(min(left, 1.0) * 1000)))
            if got:
                last = got[-1][0]
                yield _frame(d)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
        yield "event: end\ndata: {}\n\n"

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _frame(d: Desk) -> str:
    return "event: queues\ndata: " + json.dumps([s.to_dict() for s in d.summaries()]) + "\n\n"
