"""RQ worker processes: JSON serializer, the same Redis as the server.

Jobs take IDs (never objects) and are idempotent; the Vosk model for speech jobs is
loaded once per worker process (``SimpleWorker``-style preloading, see FIELD-NOTES:
the default forking worker would reload it for every job).

Each worker process also runs, in a thread of its own, the router's clock
(:class:`Ticker`): every second one process (a claim in Redis) runs ``store.tick()``
directly -- never as a job that could wait behind slow ones -- and dispatches the
reservations it returns. At start, and whenever Redis restarted (its ``run_id``
changed), the router is reconciled with Twilio's view of live calls
(:func:`reconcile_with_twilio`). At start the worker also retries, through RQ's own
registry cleanup, the jobs of a worker on this host that died mid-job
(:func:`recover_abandoned`), instead of waiting for their heartbeat to lapse.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from ivr.settings import Settings
from queueing.store import HoursFn

QUEUES = ("high", "default", "low")
#: How often the ticker asks Redis whether it restarted (seconds).
RESTART_CHECK_S = 5.0
#: Besides Redis restarts, the router is checked against Twilio's live calls this often
#: (a status callback lost, or a call enqueued as its caller hung up, leaves a ghost).
RECONCILE_EVERY_S = 300.0

log = logging.getLogger(__name__)


def connection(settings: Settings) -> redis.Redis:
    # RQ stores bytes: no decode_responses on its connection.
    return redis.Redis.from_url(settings.effective_redis_url)


def queue(settings: Settings, name: str = "default",
          conn: redis.Redis | None = None) -> Queue:
    return Queue(name, connection=conn or connection(settings), serializer=JSONSerializer)


class LineNumbers(Mapping[str, str]):
    """Each line's caller ID (its first number; ``""``: the default line's), read from the
    live flow registry at each dial, so an edit of ``lines.yaml`` applies at once."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def _now(self) -> dict[str, str]:
        out = {ln.name: ln.numbers[0] for ln in self.registry.lines if ln.numbers}
        try:
            default = self.registry.default_line
        except (IndexError, AttributeError):
            return out
        if default.numbers:
            out[""] = default.numbers[0]
        return out

    def __getitem__(self, name: str) -> str:
        return self._now()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())


def install_queueing(settings: Settings, watch: bool = True
                     ) -> tuple[Any | None, Callable[[float], dict[str, bool]], Any]:
    """Give queueing jobs this process's Twilio client, caller IDs and opening hours;
    returns the client (None when outbound calls are off), ``is_open`` and the
    :class:`ivr.flow_sync.FlowSync` that reloads the lines and flows when their files
    change (as the web processes do), so the worker's hours and caller IDs follow an edit
    without a restart; ``watch``: start it (a thread), else ``check()`` it yourself."""
    from call_flows.registry import FlowRegistry
    from ivr.app import line_hours
    from ivr.flow_sync import FlowSync
    from ivr.twilio_rest import TwilioRest
    from queueing import jobs
    from queueing.callbacks import CallbackConfig

    registry = FlowRegistry.load(settings.flows_dir) if settings.flows_dir else FlowRegistry.load()
    sync = FlowSync(registry, connection(settings), getattr(registry, "directory", None))
    if watch:
        sync.start()
    line = registry.default_line
    rest = TwilioRest.from_settings(settings)
    base = settings.public_url
    config = None
    if rest.enabled and base and line.numbers:
        config = CallbackConfig(from_number=line.numbers[0],
                                line_numbers=LineNumbers(registry),
                                answer_url=f"{base}/voice/callback?call={{call_id}}",
                                status_url=f"{base}/voice/callback-status?call={{call_id}}")
    elif rest.enabled:
        log.warning("callbacks are not dialled: set IVR_PUBLIC_URL so Twilio can reach us")

    is_open = line_hours(registry)  # read at each decision, as the web app does
    jobs.install(rest if rest.enabled else None, config, is_open)
    return (rest if rest.enabled else None), is_open, sync


def router_store(settings: Settings, is_open: HoursFn | None = None) -> Any:
    """The router as the worker sees it (decoded replies, the jobs' key prefix)."""
    from queueing import jobs
    from queueing.store import QueueStore

    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True,
                                  socket_timeout=5, socket_connect_timeout=5)
    return QueueStore(client, prefix=jobs.prefix(), is_open=is_open)


def reconcile_with_twilio(store: Any, rest: Any,
                          dispatch: Callable[[Any], None] | None = None) -> list[str]:
    """End the router's calls that Twilio no longer has live (they ended while we were
    down or a status callback was lost); returns their ids. Twilio's list is read in
    full first: on any error nothing is ended. A call that joins the router while the
    list is being read counts as live (it is too new for Twilio's list to be trusted).
    Agents freed by the ended calls may get their next call at once: those reservations
    go to ``dispatch`` (their timers, a callback's dialling)."""
    before = store.active_ids()
    live = set(rest.list_live_calls())
    joined = store.active_ids() - before
    ended, made = store.reconcile(live | joined)
    for assignment in made:
        if dispatch is not None:
            dispatch(assignment)
    if ended:
        log.warning("reconciled with Twilio: %d call(s) ended while we were not told: %s",
                    len(ended), ", ".join(sorted(ended)[:20]))
    return ended


class Ticker:
    """The router's clock, one per worker process (see the module docstring)."""

    def __init__(self, settings: Settings, store: Any, rest: Any | None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.store = store
        self.rest = rest
        self.stop = stop or threading.Event()
        conn = connection(settings)
        self.high = queue(settings, "high", conn)
        self.low = queue(settings, "low", conn)
        self.run_id: str | None = None
        self.next_restart_check = 0.0
        self.next_reconcile = time.time() + RECONCILE_EVERY_S  # at start: the restart check
        self.next_retention = 0.0

    def schedule(self, assignment: Any) -> None:
        """A reservation's timer (and a callback's dialling), each on its own: one that
        fails loses no other (the tick re-finds a lapsed reservation anyway)."""
        from queueing.jobs import schedule

        try:
            schedule(self.high, assignment)
        except redis.RedisError as exc:
            log.warning("reservation %s not scheduled (%s)", assignment.reservation_id, exc)

    def tick(self, now: float | None = None) -> int | None:
        """One router tick if no other process took this second; returns how many
        reservations it made (None: another process ticked)."""
        at = time.time() if now is None else now
        if not self.store.claim(f"tick:{int(at)}", ttl_s=5):
            return None
        assignments = self.store.tick(now=at)
        for assignment in assignments:
            self.schedule(assignment)
        return len(assignments)

    def reconcile_if_restarted(self) -> list[str] | None:
        """Reconcile once per Redis run: at start and after every Redis restart."""
        run_id = str(self.store.redis.info("server").get("run_id", ""))
        if run_id == self.run_id:
            return None
        first = self.run_id is None
        self.run_id = run_id
        if self.rest is None:
            if not first:
                log.warning("Redis restarted; not reconciled with Twilio (REST API off)")
            return None
        if not self.store.claim(f"reconcile:{run_id}", ttl_s=600):
            return None  # another worker does it for this Redis run
        try:
            return reconcile_with_twilio(self.store, self.rest, dispatch=self.schedule)
        except Exception as exc:  # noqa: BLE001  (any failure: retried at the next check)
            log.warning("reconciliation with Twilio failed (%s); retrying", exc)
            self.run_id = None  # checked again at the next restart check
            self.store.release(f"reconcile:{run_id}")
            return None

    def reconcile_periodically(self, now: float) -> list[str] | None:
        """One worker per period asks Twilio which calls are live (None: not this one)."""
        period = int(now // RECONCILE_EVERY_S)
        if self.rest is None or not self.store.claim(f"reconcile-every:{period}",
                                                     ttl_s=int(2 * RECONCILE_EVERY_S)):
            return None
        return reconcile_with_twilio(self.store, self.rest, dispatch=self.schedule)

    def chores(self, now: float) -> None:
        if now >= self.next_restart_check:
            self.next_restart_check = now + RESTART_CHECK_S
            self.reconcile_if_restarted()
        if now >= self.next_reconcile:
            self.next_reconcile = now + RECONCILE_EVERY_S
            self.reconcile_periodically(now)
        if now >= self.next_retention:  # once a day (and at start)
            self.low.enqueue("recordings.jobs.apply_retention",
                             job_id=f"retention-{int(now // 86400)}")
            self.next_retention = now + 86400

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.tick()
                self.chores(time.time())
            except Exception as exc:  # noqa: BLE001  (Redis down...: again next second)
                log.warning("router tick failed (%s)", exc)


def worker_name() -> str:
    """``host.pid.random``: lets a later worker on this host tell that this one died."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def _dead(name: str) -> bool:
    host, _, rest = name.partition(".")
    return _pid_dead(host, rest.split(".", 1)[0])


def _pid_dead(host: str, pid_text: str) -> bool:
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) <= 0:
        return False  # not ours to judge: RQ's heartbeat expiry handles it
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed process nobody has reaped yet (a zombie) is dead all the same
        state = Path(f"/proc/{int(pid_text)}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def recover_abandoned(conn: redis.Redis, names: Iterable[str] = QUEUES) -> list[str]:
    """Jobs a dead worker of this host left started: let RQ's own cleanup retry them now
    (``Retry``) or file them as failed, as it would once their heartbeat lapsed."""
    recovered: list[str] = []
    for name in names:
        registry = StartedJobRegistry(name, connection=conn, serializer=JSONSerializer)
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                execution = Execution.fetch(execution_id, job_id, conn)
            except ValueError:
                continue  # its record expired: RQ's cleanup handles the entry
            if execution.worker_name and _dead(execution.worker_name):
                # Mark the entry expired; the cleanup below treats it as RQ does.
                conn.zadd(registry.key, {execution.composite_key: 0}, xx=True)
                recovered.append(job_id)
        if recovered:
            registry.cleanup()
        _release_dead_scheduler_lock(conn, name)
    if recovered:
        log.warning("retrying %d job(s) of a worker that died: %s", len(recovered),
                    ", ".join(recovered))
    return recovered


def _release_dead_scheduler_lock(conn: redis.Redis, name: str) -> None:
    """A dead worker's scheduler keeps its queue's lock for a minute: free it, so that
    retries scheduled with a backoff are not held up until it lapses."""
    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
    from rq.scripts import release_lock

    key = RQScheduler.get_locking_key(name)
    owner = conn.get(key)
    if not owner:
        return
    token = owner.decode() if isinstance(owner, bytes) else str(owner)
    host, pid = (v.decode() if isinstance(v, bytes) else str(v or "") for v in
                 conn.hmget(SCHEDULER_KEY_TEMPLATE % token, "hostname", "pid"))
    if host and pid and _pid_dead(host, pid):
        release_lock(conn, key, token)


def run_worker(settings: Settings, burst: bool = False, tick: bool = True) -> None:
    rest, is_open, _ = install_queueing(settings)
    conn = connection(settings)
    recover_abandoned(conn)
    if tick and not burst:
        ticker = Ticker(settings, router_store(settings, is_open), rest)
        threading.Thread(target=ticker.run, name="tick", daemon=True).start()
    queues = [Queue(name, connection=conn, serializer=JSONSerializer) for name in QUEUES]
    worker = Worker(queues, connection=conn, serializer=JSONSerializer, name=worker_name())
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
