"""Running queued RQ jobs for real in tests: a SimpleWorker in burst mode."""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer


def run_jobs(redis_url: str) -> None:
    """Work the ``default`` queue until empty (files ended calls, writes summaries)."""
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING")
    conn.close()
