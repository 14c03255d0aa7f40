"""Shared fixtures: a real redis-server on a unix socket, flushed between tests.

The server is started once per test session (milliseconds with Debian's
redis-server) under a temporary directory; every test gets a clean database.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a real redis-server; yield its URL (unix socket)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `make test` (it installs it)")
    base = tmp_path_factory.mktemp("redis")
    sock = base / "redis.sock"
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(base), "--daemonize", "no",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    deadline = time.monotonic() + 10
    while True:
        try:
            client = redis.Redis.from_url(url)
            client.ping()
            client.close()
            break
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.02)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture()
def redis_url(redis_server: str) -> Iterator[str]:
    """The URL of a flushed Redis database."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ivr-data"
    path.mkdir()
    return path


@pytest.fixture()
def trace_path() -> Path:
    path = SHARED_DATA / "callcenter-1999-01.tsv"
    if not path.exists():
        pytest.skip("shared/data/callcenter-1999-01.tsv is not beside the repository")
    return path


from tests.fakes import twilio_cloud  # noqa: F401  (fixture: the fake Twilio cloud)
