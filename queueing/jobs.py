"""RQ jobs of the router: timers and callback dialling. JSON arguments, IDs only.

Each job is idempotent: an expired reservation is expired once (the reservation id
must still match), a callback is dialled once per reservation (a claim in Redis), and
``tick`` only acts on timers that are due. The worker process calls :func:`install`
once at start with what only it can build (the Twilio client, opening hours).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

import redis
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from queueing import callbacks
from queueing.errors import QueueError
from queueing.model import Assignment
from queueing.store import QueueStore

log = logging.getLogger(__name__)


@dataclass
class _Context:
    outbound: callbacks.OutboundCaller | None = None
    config: callbacks.CallbackConfig | None = None
    is_open: Callable[[float], bool] | None = None
    prefix: str = "q:"


_CONTEXT = _Context()


def install(outbound: callbacks.OutboundCaller | None, config: callbacks.CallbackConfig | None,
            is_open: Callable[[float], bool] | None = None, prefix: str = "q:") -> None:
    """Give this worker process its Twilio client and opening hours (once, at start)."""
    global _CONTEXT
    _CONTEXT = _Context(outbound, config, is_open, prefix)


def _store() -> QueueStore:
    job = get_current_job()
    if job is None:
        raise QueueError("queueing jobs run inside an RQ worker")
    pool = job.connection.connection_pool
    client = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class,
        **{**pool.connection_kwargs, "decode_responses": True}))
    return QueueStore(client, prefix=_CONTEXT.prefix, is_open=_CONTEXT.is_open)


def _follow_up(assignments: list[Assignment]) -> None:
    job = get_current_job()
    if job is None:
        return
    queue = Queue("high", connection=job.connection, serializer=JSONSerializer)
    for a in assignments:
        if a.is_callback:
            queue.enqueue(dial_callback, a.call_id, a.reservation_id)


def tick() -> int:
    """Due reservations, wrap-ups and callback retries, then offer aged calls."""
    assignments = _store().tick()
    _follow_up(assignments)
    return len(assignments)


def expire_reservation(call_id: str, reservation_id: str) -> bool:
    expired, again = _store().expire_reservation(call_id, reservation_id)
    _follow_up([again] if again else [])
    return expired


def dial_callback(call_id: str, reservation_id: str) -> str | None:
    if _CONTEXT.outbound is None or _CONTEXT.config is None:
        raise QueueError("outbound calls are not configured in this worker: set "
                         "TWILIO_ACCOUNT_SID and call queueing.jobs.install() at start")
    return callbacks.dial(_store(), _CONTEXT.outbound, _CONTEXT.config, call_id, reservation_id)


def schedule(queue: Queue, assignment: Assignment) -> None:
    """Start the reservation timer (and the dialling of a callback) for a reservation."""
    from datetime import datetime

    when = datetime.fromtimestamp(assignment.deadline, UTC)
    queue.enqueue_at(when, expire_reservation, assignment.call_id, assignment.reservation_id)
    if assignment.is_callback:
        queue.enqueue(dial_callback, assignment.call_id, assignment.reservation_id)
