"""RQ worker processes: JSON serializer, the same Redis as the server.

Jobs take IDs (never objects) and are idempotent; the Vosk model for speech jobs is
loaded once per worker process (``SimpleWorker``-style preloading, see FIELD-NOTES:
the default forking worker would reload it for every job).
"""

from __future__ import annotations

import logging

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


def run_worker(settings: Settings, burst: bool = False) -> None:
    conn = connection(settings)
    queues = [Queue(name, connection=conn, serializer=JSONSerializer) for name in QUEUES]
    worker = Worker(queues, connection=conn, serializer=JSONSerializer)
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
