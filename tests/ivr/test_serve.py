"""`ivr serve` for real: gunicorn, embedded Redis, RQ worker, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.hours import always_open_flows

IVR = [sys.executable, "-m", "ivr.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_ivr(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IVR, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_serve_refuses_to_start_without_auth_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "IVR_"))}
    env["IVR_DATA_DIR"] = str(tmp_path)
    result = run_ivr("serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "TWILIO_AUTH_TOKEN" in result.stderr and "IVR_VALIDATE_SIGNATURE=0" in result.stderr


def test_serve_answers_calls_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "IVR_", "REDIS_"))}
    env.update(IVR_DATA_DIR=str(tmp_path), TWILIO_AUTH_TOKEN="serve-test-token",
               # the demo line, open whenever CI runs (tests/hours.py)
               IVR_FLOWS_DIR=str(always_open_flows(tmp_path / "flows")))
    proc = subprocess.Popen([*IVR, "serve", "--port", str(port), "--workers", "2", "--demo"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate(timeout=5)
                pytest.fail(f"ivr serve did not come up:\n{out}\n{err}")
            time.sleep(0.2)
        assert (tmp_path / "redis" / "redis.sock").exists()
        assert (tmp_path / "redis" / "appendonlydir").exists()  # AOF on
        sim = run_ivr("simulate", "--url", base, "--from", "+34699000111", "--to", "+34930001000",
                      "--digits", "1", "--digits", "*", "--digits", "3", "--digits", "2",
                      env=env)
        assert sim.returncode == 0, sim.stdout + sim.stderr
        assert "Bienvenido" in sim.stdout
        # The call is filed by the RQ worker: its summary is ready within 20 s.
        from ivr.simulator import Simulator

        call = Simulator(base, "serve-test-token").call(from_="+34699000111",
                                                        to="+34930001000").start()
        call.press("1").press("*").press("3").press("2").press("2")  # no survey, thanks
        assert call.ended
        token = (tmp_path / "admin.token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 20
        summary = None
        while time.monotonic() < deadline and summary is None:
            got = requests.get(f"{base}/api/calls/{call.call_sid}", headers=auth, timeout=5)
            if got.status_code == 200:
                summary = got.json().get("summary")
            time.sleep(0.5)
        assert summary is not None, "no summary within 20 s of the call's end"
        # Unsigned requests are refused by the real server too.
        assert requests.post(f"{base}/voice/incoming", data={"CallSid": "CA" + "1" * 32},
                             timeout=5).status_code == 403
        # The admin token was generated, printed once and kept private.
        token = (tmp_path / "admin.token").read_text().strip()
        assert (tmp_path / "admin.token").stat().st_mode & 0o777 == 0o600
        assert requests.get(f"{base}/api/queues", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/queues", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM) if proc.poll() is None else None
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]  # workers leave without touching our children
    assert token in out  # printed once at first start
    assert "/voice/incoming" in out
    # Children stopped too: the embedded Redis is gone.
    assert not (tmp_path / "redis" / "redis.sock").exists() or not _answers(tmp_path)


def _answers(tmp_path: Path) -> bool:
    import redis

    try:
        redis.Redis(unix_socket_path=str(tmp_path / "redis" / "redis.sock"),
                    socket_timeout=1).ping()
        return True
    except (redis.RedisError, OSError):
        return False
