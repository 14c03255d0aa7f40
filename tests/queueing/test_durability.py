"""After a Redis restart (AOF on) the router's state is intact; reconcile drops dead calls."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from queueing.model import AgentState, CallStatus
from queueing.store import QueueStore


def _start(base: Path) -> tuple[subprocess.Popen[bytes], redis.Redis]:
    sock = base / "r.sock"
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", "0",
                             "--unixsocket", str(sock), "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--dir", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(sock), decode_responses=True)
    for _ in range(500):
        try:
            client.ping()
            return proc, client
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.01)
    raise AssertionError("redis-server did not start")


def test_state_survives_restart_and_reconcile(tmp_path: Path) -> None:
    proc, client = _start(tmp_path)
    try:
        store = QueueStore(client)
        store.upsert_agent("a", {"lang:es": 1}, now=0)
        store.set_state("a", "available", now=0)
        store.enqueue("talking", "s", {"lang:es": 1}, now=1)
        store.accept("a", "talking", now=2)
        store.enqueue("gone", "s", {"lang:es": 1}, now=3)
        store.enqueue("still", "s", {"lang:es": 1}, now=4)
        store.enqueue("cb", "s", {"lang:es": 1}, now=5)
        store.request_callback("cb", "+34600000009", now=6)
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
    proc, client = _start(tmp_path)
    try:
        store = QueueStore(client)
        assert store.agent("a").state == AgentState.BUSY  # type: ignore[union-attr]
        assert [c.call_id for c in store.waiting("s")] == ["gone", "still", "cb"]
        # Twilio says only "still" is live: "gone" and "talking" ended while we were down
        ended, _made = store.reconcile({"still"}, now=100)
        assert sorted(ended) == ["gone", "talking"]
        assert store.call("gone").status == CallStatus.ABANDONED  # type: ignore[union-attr]
        assert store.call("talking").status == CallStatus.COMPLETED  # type: ignore[union-attr]
        assert store.call("cb").status == CallStatus.CALLBACK_PENDING  # type: ignore[union-attr]
        assert store.agent("a").state == AgentState.WRAP_UP  # type: ignore[union-attr]
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
