"""Writing call steps to Redis behind the response, and knowing which calls ended.

The webhook answers Twilio from the sealed state alone; what it must remember is
handed to :class:`StepWriter`, whose thread writes batches in one pipelined round
trip. If Redis is down the writer keeps (a bounded number of) batches and retries,
so a Redis restart loses nothing that was answered meanwhile.

:class:`EndedCalls` keeps, per process, the CallSids whose call has ended (fed by
the ``ivr:ended`` channel) so a late or replayed request gets ``<Hangup/>``
without a Redis read.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from ivr.store import ENDED_CHANNEL, CallRecords

log = logging.getLogger(__name__)

Item = tuple[str, int, Mapping[str, Any] | str | None, list[Mapping[str, Any]]]


class StepWriter:
    MAX_PENDING = 50_000

    def __init__(self, records: CallRecords, batch: int = 200, linger_s: float = 0.005) -> None:
        self.records = records
        self.batch = batch
        # Steps wait this long for others to share their round trip: under load one Lua
        # call writes many steps (the caller was answered already; the URL holds the state).
        self.linger_s = linger_s
        self._pending: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._in_flight = 0
        self._stopped = False
        self._deferred: collections.deque[Callable[[], Any]] = collections.deque()
        self.dropped = 0

    def submit(self, item: Item) -> None:
        self._ensure_thread()
        with self._cond:
            if len(self._pending) >= self.MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
                log.error("Redis unreachable for long: dropped the oldest call event")
            self._pending.append(item)
            if len(self._pending) == 1 or len(self._pending) >= self.batch:
                self._cond.notify()  # the writer is idle, or a batch is full

    def defer(self, operation: Callable[[], Any]) -> None:
        """Run ``operation`` (a Redis write) on the writer thread, retried until Redis
        answers: for webhooks that must not fail while Redis is down."""
        self._ensure_thread()
        with self._cond:
            self._deferred.append(operation)
            self._cond.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight or self._deferred:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _ensure_thread(self) -> None:
        # After a fork (gunicorn workers) the parent's thread does not exist here.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="step-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stopped:
            with self._cond:
                while not self._pending and not self._deferred:
                    self._cond.wait(1.0)
                deadline = time.monotonic() + self.linger_s
                while (len(self._pending) < self.batch and not self._deferred
                       and not self._stopped):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                items = [self._pending.popleft()
                         for _ in range(min(self.batch, len(self._pending)))]
                deferred = list(self._deferred)
                self._deferred.clear()
                self._in_flight = len(items) + len(deferred)
            try:
                while deferred:
                    deferred[0]()
                    deferred.pop(0)
                if items:
                    self.records.record_steps(items)
                backoff = 0.05
            except redis.RedisError as exc:
                log.warning("could not record %d call steps (%s); retrying", len(items), exc)
                with self._cond:
                    self._pending.extendleft(reversed(items))
                    self._deferred.extendleft(reversed(deferred))
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()


class EndedCalls:
    """CallSids known to have ended, per process, kept fresh by pub/sub."""

    def __init__(self, client: redis.Redis, capacity: int = 100_000) -> None:
        self.client = client
        self.capacity = capacity
        self._sids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, call_sid: str) -> None:
        with self._lock:
            self._sids[call_sid] = None
            while len(self._sids) > self.capacity:
                self._sids.popitem(last=False)

    def __contains__(self, call_sid: object) -> bool:
        self._ensure_thread()
        return call_sid in self._sids

    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._listen, name="ended-calls",
                                            daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(ENDED_CHANNEL)
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.add(str(message["data"]))
            except (redis.RedisError, OSError, ValueError) as exc:
                log.debug("ended-calls subscription lost (%s); resubscribing", exc)
                time.sleep(0.5)
