"""RQ worker processes: JSON serializer, the same Redis as the server.

Jobs take IDs (never objects) and are idempotent; the Vosk model for speech jobs is
loaded once per worker process (``SimpleWorker``-style preloading, see FIELD-NOTES:
the default forking worker would reload it for every job).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC

import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from ivr.settings import Settings

QUEUES = ("high", "default", "low")

log = logging.getLogger(__name__)


def connection(settings: Settings) -> redis.Redis:
    # RQ stores bytes: no decode_responses on its connection.
    return redis.Redis.from_url(settings.effective_redis_url)


def queue(settings: Settings, name: str = "default",
          conn: redis.Redis | None = None) -> Queue:
    return Queue(name, connection=conn or connection(settings), serializer=JSONSerializer)


def install_queueing(settings: Settings) -> None:
    """Give queueing jobs this process's Twilio client, caller ID and opening hours."""
    from datetime import datetime

    from call_flows.registry import FlowRegistry
    from ivr.twilio_rest import TwilioRest
    from queueing import jobs
    from queueing.callbacks import CallbackConfig

    registry = FlowRegistry.load(settings.flows_dir) if settings.flows_dir else FlowRegistry.load()
    line = registry.default_line
    rest = TwilioRest.from_settings(settings)
    base = settings.public_url
    config = None
    if rest.enabled and base and line.numbers:
        config = CallbackConfig(from_number=line.numbers[0],
                                answer_url=f"{base}/voice/callback?call={{call_id}}",
                                status_url=f"{base}/voice/callback-status?call={{call_id}}")
    elif rest.enabled:
        log.warning("callbacks are not dialled: set IVR_PUBLIC_URL so Twilio can reach us")

    def is_open(now: float) -> bool:
        return bool(line.hours.is_open(datetime.fromtimestamp(now, UTC)))

    jobs.install(rest if rest.enabled else None, config, is_open)


def _ticker(settings: Settings, stop: threading.Event) -> None:
    """Every second: due reservations, wrap-ups, callback retries, aged calls."""
    ticks = queue(settings, "high")
    chores = queue(settings, "low")
    next_retention = 0.0
    while not stop.wait(1.0):
        try:
            ticks.enqueue("queueing.jobs.tick", result_ttl=0, failure_ttl=3600)
            if time.time() >= next_retention:  # once a day (and at start)
                chores.enqueue("recordings.jobs.apply_retention",
                               job_id=f"retention-{int(time.time() // 86400)}")
                next_retention = time.time() + 86400
        except redis.RedisError as exc:
            log.warning("router tick not queued (%s)", exc)


def run_worker(settings: Settings, burst: bool = False, tick: bool = True) -> None:
    install_queueing(settings)
    if tick and not burst:
        threading.Thread(target=_ticker, args=(settings, threading.Event()), name="tick",
                         daemon=True).start()
    conn = connection(settings)
    queues = [Queue(name, connection=conn, serializer=JSONSerializer) for name in QUEUES]
    worker = Worker(queues, connection=conn, serializer=JSONSerializer)
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
