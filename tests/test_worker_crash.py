"""A worker killed mid-job: the job is retried by the next worker and its effect (an
outbound callback placed at Twilio) happens exactly once.

Real redis-server, real RQ worker processes (``ivr.worker.run_worker``, forking, with
its scheduler), the fake Twilio cloud over HTTP. The fake holds the answer to the
"create call" request after the call exists, and the test SIGKILLs the worker's whole
process tree right then (the work horse included: it runs in a session of its own): the
worst moment (Twilio dialled, we never heard the sid).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from ivr.worker import recover_abandoned
from queueing import jobs
from queueing.model import AgentState, CallStatus
from queueing.rules import QueueRules, RulesConfig
from queueing.store import QueueStore
from tests.conftest import REPO
from tests.fakes import FakeTwilioCloud
from tests.hours import always_open_flows

CALL = "CA" + "7" * 32
NUMBER = "+34699000777"
WORKER = "from ivr.settings import Settings\nfrom ivr.worker import run_worker\n" \
         "run_worker(Settings.from_env(), tick=False)\n"


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, env=env,
                            start_new_session=True,  # its own group: horse and scheduler too
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (read from /proc). RQ's work horse calls setsid(), so
    killing the worker's process group would leave the horse running the job."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        if sig == signal.SIGKILL:  # the whole tree dies at once, horse included
            for pid in descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_killed_mid_dial_the_callback_job_is_retried_and_dials_once(
        redis_url: str, data_dir: Path) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = QueueStore(client, rules=RulesConfig(default=QueueRules(reservation_timeout_s=600)))
    store.enqueue(CALL, "support", {"lang:es": 1})
    store.request_callback(CALL, NUMBER)
    store.upsert_agent("ana", {"lang:es": 1})
    assignment = store.set_state("ana", AgentState.AVAILABLE)
    assert assignment is not None and assignment.callback_number == NUMBER
    conn = redis.Redis.from_url(redis_url)
    jobs.schedule(Queue("high", connection=conn, serializer=JSONSerializer), assignment)
    job_id = f"dial-{CALL}-{assignment.reservation_id}"

    with FakeTwilioCloud() as cloud:
        env = {**os.environ, "REDIS_URL": redis_url, "IVR_DATA_DIR": str(data_dir),
               **cloud.env(), "IVR_PUBLIC_URL": "https://ivr.example.test",
               # callbacks are dialled only while the line is open: always, here
               "IVR_FLOWS_DIR": str(always_open_flows(data_dir / "flows"))}
        gate = cloud.hold_creates(timeout_s=60)
        first = start_worker(env)
        try:
            assert gate.arrived.wait(60), "the first worker never dialled"
            assert len(cloud.calls) == 1  # Twilio has placed the call...
            stop(first, signal.SIGKILL)  # ...and the worker dies before hearing back
        finally:
            stop(first, signal.SIGKILL)
            gate.release()
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        assert job.get_status() == JobStatus.STARTED  # abandoned mid-job
        # What a new worker does first at start: the dead worker's started job goes
        # through RQ's own abandoned-job handling, i.e. its Retry, at once.
        assert recover_abandoned(conn) == [job_id]
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        assert job.get_status() in (JobStatus.SCHEDULED, JobStatus.QUEUED)
        assert job.retries_left == 2
        assert recover_abandoned(conn) == []  # once

        second = start_worker(env)
        try:
            wait_for(lambda: Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
                     .get_status() == JobStatus.FINISHED, 60, "the retried job to finish")
        finally:
            stop(second)
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        # Run again through its Retry (one try used), by the second worker.
        assert job.retries_left == 2
        only = next(iter(cloud.calls))
        # The first run died before hearing the sid: the second run adopted the call.
        assert job.return_value() == only
        dials = [r for r in cloud.requests if r.method == "POST" and r.path.endswith("/Calls.json")]
        assert len(dials) == 1 and len(cloud.calls) == 1  # exactly once
        assert cloud.calls[only].to == NUMBER
    call = store.call(CALL)
    assert call is not None and call.status == CallStatus.RESERVED and call.agent_id == "ana"
    assert client.hget(f"q:call:{CALL}", "note_callback_sid") == only
