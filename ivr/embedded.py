"""The embedded ``redis-server``: on a unix socket under ``IVR_DATA_DIR``, AOF on.

Used when ``REDIS_URL`` is unset, by ``ivr serve`` (for its lifetime) and by every
other ``ivr`` command (started for the command's duration when no server runs), so
all of them work on the same state.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from ivr.errors import IvrError
from ivr.settings import Settings

log = logging.getLogger(__name__)


class EmbeddedRedisError(IvrError):
    """redis-server is missing or would not start; the message says what to do."""


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.socket = self.dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            client.ping()
            client.close()
            return True
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise EmbeddedRedisError(
                "redis-server is not installed: run `make run` (it installs it) or "
                "`apt-get install redis-server`, or set REDIS_URL to an existing Redis")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.process = subprocess.Popen(
            [exe, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--daemonize", "no", "--loglevel", "warning",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}; see "
                    f"{self.dir / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError("redis-server did not answer within "
                                         f"{timeout:.0f} s; see {self.dir / 'redis.log'}")
            time.sleep(0.02)
        log.info("embedded Redis on %s (AOF on)", self.socket)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def ensure_redis(settings: Settings) -> Iterator[str]:
    """Yield a Redis URL for a command: REDIS_URL, the running embedded server, or one
    started for the command's duration."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.data_dir)
    if embedded.answers():
        yield embedded.url
        return
    embedded.start()
    try:
        yield embedded.url
    finally:
        embedded.stop()
