"""Live queue state as JSON and as a server-sent-events feed for wallboards.

``GET /api/queues`` (contract): each queue's ``name``, ``waiting``,
``longest_wait_s``, ``ewt_s``, ``agents_available`` plus service level, abandonment
and ASA. ``GET /api/queues/<name>`` adds the waiting calls and the agents.
``GET /api/events/queues?max_seconds=N`` streams the same list on every change.

A stream holds one web worker thread for its whole life, so streams are rationed per
process (:class:`StreamSlots`): at most ``sse_max_streams`` at once (default 2; more get
503 with ``Retry-After`` and the reason), each living at most ``sse_max_seconds``
(default 300) before it ends with an ``end`` event; the ``retry:`` line tells
EventSource clients how soon to reconnect. A comment line every ``sse_heartbeat_s``
keeps proxies from closing a quiet stream and lets the server notice a gone client.
The knobs (``sse_max_streams``, ``sse_max_seconds``, ``sse_heartbeat_s``,
``sse_retry_ms``) come from ``Settings.extra``.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis
from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from flask.blueprints import BlueprintSetupState

from ivr.auth import api_auth
from ivr.services import current
from ivr.settings import SettingsError
from queueing.agents import Desk, no_dispatch
from queueing.errors import QueueError

bp = Blueprint("queues_api", __name__)

F = TypeVar("F", bound=Callable[..., Any])
MAX_STREAMS = 2  # per web process; ivr serve runs 4 threads per process by default
MAX_STREAM_S = 300.0
HEARTBEAT_S = 5.0  # a closed screen frees its slot within two heartbeats
#: At most one frame per this many seconds: each recomputes every queue's figures, and
#: under load the router's events come far faster than a screen can show them.
FRAME_EVERY_S = 1.0
RETRY_MS = 3000
SLOTS_KEY = "centralita.event_streams"


class StreamSlots:
    """Live feeds allowed at once in this process, and when each one ends."""

    def __init__(self, limit: int, max_seconds: float, heartbeat_s: float,
                 retry_ms: int) -> None:
        if limit < 0 or not 0 < max_seconds < math.inf or not 0 < heartbeat_s < math.inf \
                or retry_ms < 0:
            raise SettingsError("event streams: sse_max_streams >= 0, sse_max_seconds > 0, "
                                "sse_heartbeat_s > 0 and sse_retry_ms >= 0 are required")
        self.limit = limit
        self.max_seconds = max_seconds
        self.heartbeat_s = heartbeat_s
        self.retry_ms = retry_ms
        self._lock = threading.Lock()
        self._ends: dict[int, float] = {}  # slot number -> monotonic end of its stream
        self._next = 0

    def acquire(self, seconds: float) -> Callable[[], None] | None:
        """Take a slot for a stream of ``seconds``; None when all are taken. The returned
        release function may be called any number of times."""
        with self._lock:
            if len(self._ends) >= self.limit:
                return None
            self._next += 1
            number = self._next
            self._ends[number] = time.monotonic() + seconds

        def release() -> None:
            with self._lock:
                self._ends.pop(number, None)

        return release

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._ends)

    def retry_after_s(self) -> int:
        """Whole seconds until the first open stream ends (at least 1)."""
        with self._lock:
            first = min(self._ends.values(), default=time.monotonic())
        return max(1, math.ceil(first - time.monotonic()))


@bp.record_once
def _install_slots(state: BlueprintSetupState) -> None:
    services = state.app.extensions.get("centralita")
    extra = dict(services.settings.extra) if services is not None else {}
    try:
        slots = StreamSlots(
            limit=int(extra.get("sse_max_streams", MAX_STREAMS)),
            max_seconds=float(extra.get("sse_max_seconds", MAX_STREAM_S)),
            heartbeat_s=float(extra.get("sse_heartbeat_s", HEARTBEAT_S)),
            retry_ms=int(extra.get("sse_retry_ms", RETRY_MS)))
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"event streams: a sse_* setting is not a number ({exc})") from None
    state.app.extensions[SLOTS_KEY] = slots


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
    slots: StreamSlots = current_app.extensions[SLOTS_KEY]
    raw = request.args.get("max_seconds", str(slots.max_seconds))
    try:
        limit = float(raw)
    except ValueError:
        return error(400, f"max_seconds must be a number of seconds, got {raw!r}")
    if not 0 < limit < math.inf:
        return error(400, f"max_seconds must be more than 0 (streams end after at most "
                          f"{slots.max_seconds:g} s; reconnect then)")
    limit = min(limit, slots.max_seconds)
    release = slots.acquire(limit)
    if release is None:
        wait = slots.retry_after_s() if slots.limit else 300
        detail = (f"this server process already serves {slots.limit} live feed(s), its "
                  f"limit (each holds a worker thread); retry in {wait} s, and poll "
                  "GET /api/queues meanwhile") if slots.limit else (
                  "live feeds are turned off on this server (sse_max_streams is 0): "
                  "poll GET /api/queues instead")
        response = jsonify(error="busy", retry_after_s=wait, detail=detail)
        response.status_code = 503
        response.headers["Retry-After"] = str(wait)
        return response
    d = desk()

    def stream() -> Iterator[str]:
        try:
            end = time.monotonic() + limit
            yield f"retry: {slots.retry_ms}\n\n"
            last = d.store.last_event_id()
            yield _frame(d)
            quiet_since = framed_at = time.monotonic()
            while (left := end - time.monotonic()) > 0:
                got = d.store.events(after=last, block_ms=max(1, int(min(left, 1.0) * 1000)))
                if got:
                    last = got[-1][0]
                    pause = FRAME_EVERY_S - (time.monotonic() - framed_at)
                    if pause > 0:  # a burst of changes: one frame, a second apart
                        time.sleep(min(pause, max(0.0, end - time.monotonic())))
                    yield _frame(d)
                    quiet_since = framed_at = time.monotonic()
                elif time.monotonic() - quiet_since >= slots.heartbeat_s:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
            yield _end("lifetime", slots.retry_ms)
        except redis.RedisError:
            yield _end("redis unavailable", slots.retry_ms)
        finally:
            release()

    response = Response(stream_with_context(stream()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                 "X-Stream-Max-Seconds": f"{limit:g}"})
    # A stream closed before its first chunk never runs its finally: release here too.
    response.call_on_close(release)
    return response


def _frame(d: Desk) -> str:
    return "event: queues\ndata: " + json.dumps([s.to_dict() for s in d.summaries()]) + "\n\n"


def _end(reason: str, retry_ms: int) -> str:
    return "event: end\ndata: " + json.dumps({"reason": reason, "reconnect_ms": retry_ms}) + "\n\n"
