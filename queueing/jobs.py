"""RQ jobs of the router: timers and callback dialling. JSON arguments, IDs only.

Each job is idempotent: an expired reservation is expired once (the reservation id
must still match), a callback is dialled once per reservation (a claim in Redis), and
``tick`` only acts on timers that are due. The worker process calls :func:`install`
once at start with what only it can build (the Twilio client, opening hours).

Jobs with side effects carry an RQ ``Retry`` (:data:`RETRY`) and a job id made of the
call and reservation ids, so a job whose worker crashed is run again -- and changes
nothing twice. A retried dial whose first run claimed the dial but died asks Twilio
whether the call was placed: adopted if so, else the attempt counts as unanswered
and the router calls back later (never two calls for one reservation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC

import redis
from rq import Queue, Retry, get_current_job
from rq.serializers import JSONSerializer

from queueing import callbacks
from queueing.errors import QueueError
from queueing.model import Assignment, CallStatus
from queueing.store import HoursFn, QueueStore

log = logging.getLogger(__name__)

#: Jobs with side effects: three more tries, backing off (seconds).
RETRY = Retry(max=3, interval=[2, 10, 30])


@dataclass
class _Context:
    outbound: callbacks.OutboundCaller | None = None
    config: callbacks.CallbackConfig | None = None
    is_open: HoursFn | None = None
    prefix: str = "q:"


_CONTEXT = _Context()


def install(outbound: callbacks.OutboundCaller | None, config: callbacks.CallbackConfig | None,
            is_open: HoursFn | None = None, prefix: str = "q:") -> None:
    """Give this worker process its Twilio client and opening hours (once, at start)."""
    global _CONTEXT
    _CONTEXT = _Context(outbound, config, is_open, prefix)


def prefix() -> str:
    """The router's key prefix in this process (for stores built outside a job)."""
    return _CONTEXT.prefix


def outbound() -> callbacks.OutboundCaller | None:
    """This worker's Twilio client (None: outbound calls are off), for jobs of other
    packages (``ivr.bridge.rebridge``)."""
    return _CONTEXT.outbound


def job_store() -> QueueStore:
    """The router as the running job sees it (its Redis, this worker's prefix and hours)."""
    job = get_current_job()
    if job is None:
        raise QueueError("queueing jobs run inside an RQ worker")
    pool = job.connection.connection_pool
    client = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class,
        **{**pool.connection_kwargs, "decode_responses": True}))
    return QueueStore(client, prefix=_CONTEXT.prefix, is_open=_CONTEXT.is_open)


def follow_up(assignments: list[Assignment]) -> None:
    """Schedule the timers (and dials) of reservations a job made."""
    job = get_current_job()
    if job is None:
        return
    queue = Queue("high", connection=job.connection, serializer=JSONSerializer)
    for a in assignments:
        schedule(queue, a)


def _enqueue_dial(queue: Queue, a: Assignment) -> None:
    queue.enqueue(dial_callback, a.call_id, a.reservation_id, retry=RETRY,
                  job_id=f"dial-{a.call_id}-{a.reservation_id}", failure_ttl=7 * 86400)


def tick() -> int:
    """Due reservations, wrap-ups and callback retries, then offer aged calls."""
    assignments = job_store().tick()
    follow_up(assignments)
    return len(assignments)


def expire_reservation(call_id: str, reservation_id: str) -> bool:
    expired, again = job_store().expire_reservation(call_id, reservation_id)
    follow_up([again] if again else [])
    return expired


def dial_callback(call_id: str, reservation_id: str) -> str | None:
    """Place the callback of a reservation; returns Twilio's CallSid or None."""
    outbound, config = _CONTEXT.outbound, _CONTEXT.config
    if outbound is None or config is None:
        raise QueueError("outbound calls are not configured in this worker: set "
                         "TWILIO_ACCOUNT_SID and call queueing.jobs.install() at start")
    store = job_store()
    first_run = store.claim(f"dialjob:{call_id}:{reservation_id}", ttl_s=3600)
    sid = callbacks.dial(store, outbound, config, call_id, reservation_id,
                         dispatch=lambda a: follow_up([a]))
    if sid is not None or first_run:
        return sid
    # A rerun that callbacks.dial refused: the reservation is over (nothing to do), or
    # an earlier run claimed the dial and died. Did that run's request reach Twilio?
    call = store.call(call_id)
    if call is None or call.status != CallStatus.RESERVED or not call.callback_number \
            or getattr(outbound, "list_live_calls", None) is None:
        return None
    sid = callbacks.live_call_to(outbound, call.callback_number, config.caller_id(call.hours_line))
    if sid is not None:
        store.callback_leg(call_id, reservation_id, sid)
        log.warning("callback %s: adopted call %s placed by a run that died", call_id, sid)
        return sid
    log.warning("callback %s: an earlier run died before dialling; counted unanswered, "
                "the router calls back later", call_id)
    _, freed_into = store.callback_result(call_id, answered=False,
                                          reservation_id=reservation_id, why="worker_died")
    follow_up([freed_into] if freed_into else [])
    return None


def schedule(queue: Queue, assignment: Assignment) -> None:
    """Start the reservation timer (and the dialling of a callback) for a reservation."""
    from datetime import datetime

    when = datetime.fromtimestamp(assignment.deadline, UTC)
    queue.enqueue_at(when, expire_reservation, assignment.call_id, assignment.reservation_id,
                     retry=RETRY, result_ttl=600,
                     job_id=f"expire-{assignment.call_id}-{assignment.reservation_id}")
    if assignment.is_callback:
        _enqueue_dial(queue, assignment)
