"""`ivr bench webhooks`: the full webhook stack against a bare Flask route.

Both run under the same gunicorn configuration in this run; wrk (Debian package)
drives them with pre-signed requests (a new call, and a menu step that replays a
call's sealed state, as a Twilio retry would). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import requests
from twilio.request_validator import RequestValidator

TOKEN = "bench-auth-token-0123456789abcdef"

WRK_SCRIPT = r"""
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local path, sig, body = line:match("^(.-)\t(.-)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = sig }, body)
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('WRKJSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, ' ..
    '"p99_ms": %.3f, "errors": %d}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(factory: str, port: int, env: dict[str, str], workers: int, threads: int) -> Any:
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
           "-k", "gthread" if threads > 1 else "sync", "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", f"benchmarks.webhooks_apps:{factory}()"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            return proc
        except (requests.ConnectionError, requests.Timeout):
            if proc.poll() is not None:
                raise click.ClickException(f"{factory} server failed: "
                                           f"{proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    proc.kill()
    raise click.ClickException(f"{factory} server did not start")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children (gunicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _redis_cpu_s(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _signed_lines(base: str, kind: str, count: int) -> list[str]:
    """Requests as Twilio would send them, signed; for steps, real sealed states."""
    validator = RequestValidator(TOKEN)
    lines = []
    for n in range(count):
        sid = f"CA{n:032x}"
        # A different caller on every new call (Spanish mobiles): the caller-ID lookup
        # and number parsing are paid as in real traffic, not served from a cache.
        params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": f"+3460{n:07d}",
                  "To": "+34930000000", "CallStatus": "in-progress", "Direction": "inbound",
                  "ApiVersion": "2010-04-01"}
        path = "/voice/incoming"
        if kind == "step":
            url = base + path
            twiml = requests.post(url, data=params, headers={
                "X-Twilio-Signature": validator.compute_signature(url, params)}, timeout=10).text
            start = twiml.find("/voice/step?s=")
            if start < 0:
                raise click.ClickException("the demo flow did not answer with a Gather")
            path = twiml[start:twiml.find('"', start)].replace("&amp;", "&")
            params = dict(params, Digits="1")
        body = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
        lines.append(f"{path}\t{validator.compute_signature(base + path, params)}\t{body}")
    return lines


def _wrk(base: str, lines: list[str], seconds: int, connections: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "signed.lua"
    script.write_text(WRK_SCRIPT)
    data = tmp / "requests.tsv"
    data.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                          base, "--", str(data)], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[8:])
            result["rps"] = round(result["requests"] / result["seconds"], 1)
            return result
    raise click.ClickException(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")


@click.command("webhooks")
@click.option("--seconds", default=8, show_default=True, help="Length of each wrk run.")
@click.option("--connections", default=16, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn workers (both apps).")
@click.option("--threads", default=1, show_default=True, help="Threads per worker (both apps).")
@click.option("--rounds", default=2, show_default=True,
              help="Alternate bare/full this many times; the best of each is kept.")
def command(seconds: int, connections: int, workers: int, threads: int, rounds: int) -> None:
    """Full stack (signature, sealed state, engine, render, Redis record) vs a bare route."""
    if shutil.which("wrk") is None:
        raise click.ClickException("wrk is not installed: apt-get install wrk (or `make bench`)")
    from ivr.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmpdir:
        tmp = Path(tmpdir)
        redis_server = EmbeddedRedis(tmp)
        redis_server.start()
        env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, IVR_DATA_DIR=str(tmp),
                   REDIS_URL=redis_server.url, IVR_VALIDATE_SIGNATURE="1",
                   IVR_PUBLIC_URL="", IVR_ADMIN_TOKEN="bench")
        env.pop("IVR_PUBLIC_URL")
        procs = []
        try:
            bare_port, full_port = _free_port(), _free_port()
            procs.append(_start("bare", bare_port, env, workers, threads))
            procs.append(_start("full", full_port, env, workers, threads))
            bare_base, full_base = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{full_port}"
            click.echo("signing requests and preparing call states...", err=True)
            incoming = _signed_lines(full_base, "incoming", 20_000)
            steps = _signed_lines(full_base, "step", 500)
            results: dict[str, dict[str, Any]] = {}
            for rnd in range(rounds):
                for name, base, lines in (("bare", bare_base, incoming),
                                          ("incoming", full_base, incoming),
                                          ("menu_step", full_base, steps)):
                    click.echo(f"round {rnd + 1}/{rounds}: {name}", err=True)
                    server = procs[0] if name == "bare" else procs[1]
                    cpu0, redis0 = _cpu_s(server.pid), _redis_cpu_s(redis_server.url)
                    result = _wrk(base, lines, seconds, connections, tmp)
                    cpu = _cpu_s(server.pid) - cpu0 + _redis_cpu_s(redis_server.url) - redis0
                    result["cpu_us"] = round(cpu / max(1, result["requests"]) * 1e6, 1)
                    if result["errors"]:
                        raise click.ClickException(f"{name}: {result['errors']} errors")
                    if name not in results or result["rps"] > results[name]["rps"]:
                        results[name] = result
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
            redis_server.stop()
    bare_rps = results["bare"]["rps"]
    click.echo(json.dumps({
        "bare_rps": bare_rps, "bare_p99_ms": results["bare"]["p99_ms"],
        "incoming_rps": results["incoming"]["rps"],
        "incoming_ratio": round(results["incoming"]["rps"] / bare_rps, 3),
        "incoming_p50_ms": results["incoming"]["p50_ms"],
        "incoming_p99_ms": results["incoming"]["p99_ms"],
        "menu_step_rps": results["menu_step"]["rps"],
        "menu_step_ratio": round(results["menu_step"]["rps"] / bare_rps, 3),
        "menu_step_p50_ms": results["menu_step"]["p50_ms"],
        "menu_step_p99_ms": results["menu_step"]["p99_ms"],
        # CPU spent per request by the server's processes and Redis (not wrk): steadier
        # than requests/s on a shared machine, and what the ratio is made of.
        "bare_cpu_us": results["bare"]["cpu_us"], "incoming_cpu_us": results["incoming"]["cpu_us"],
        "menu_step_cpu_us": results["menu_step"]["cpu_us"],
        "connections": connections, "workers": workers, "threads": threads,
        "seconds": seconds,
    }))
