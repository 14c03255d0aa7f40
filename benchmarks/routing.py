"""`ivr bench routing`: speed of the Redis router (one Lua run per decision).

Fills the router with N waiting calls over 20 skill combinations (4 languages x 5
topics, required levels 1-3, priorities 0-2) and M agents with random skills, then
measures, against a redis-server it starts on a unix socket (or ``REDIS_URL``):

* ``p50_ms`` / ``p99_ms``: an agent ending wrap-up gets its next call -- the full round
  trip of one decision from Python, one at a time;
* ``new_call_p99_ms``: a new call arriving (no agent free: it joins its line);
* ``decisions_per_s``: decisions per second with pipelined clients (the router's
  throughput; Redis runs them one at a time, each atomic).

``--scaling`` repeats the run for 100, 1,000, 10,000 and 100,000 waiting calls.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import redis

from queueing.model import requirements
from queueing.rules import AgingStep, QueueRules, RulesConfig
from queueing.store import QueueStore

LANGS = ("es", "ca", "en", "fr")
TOPICS = ("billing", "tech", "sales", "moves", "claims")
RULES = RulesConfig(default=QueueRules(
    reservation_timeout_s=600, wrap_up_s=3600, head_start_s={2: 30},
    steps=(AgingStep(after_s=60, min_level=1), AgingStep(after_s=300, raise_priority=1))))


@contextmanager
def redis_for_bench() -> Iterator[redis.Redis]:
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, decode_responses=True)
        yield client
        client.close()
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise click.ClickException("redis-server is not installed (apt-get install redis-server)"
                                   " and REDIS_URL is not set")
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp:
        sock = Path(tmp) / "redis.sock"
        proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", str(sock), "--save", "",
                                 "--appendonly", "no", "--dir", tmp, "--daemonize", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(unix_socket_path=str(sock), decode_responses=True)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except (redis.ConnectionError, FileNotFoundError):
                    if time.monotonic() > deadline:
                        raise click.ClickException("redis-server did not start") from None
                    time.sleep(0.02)
            yield client
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _call_args(rng: random.Random, i: int, now: float) -> dict[str, Any]:
    combo = rng.randrange(20)  # 20 skill combinations, each with its own required level
    lang, topic = LANGS[combo % 4], TOPICS[combo // 4]
    return {"call_id": f"c{i}", "queue": "main",
            "needs": requirements(lang, topic, 1 + combo % 3),
            "priority": rng.choice((0, 0, 0, 1, 2)), "entered_at": now - rng.uniform(0, 600)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(client: redis.Redis, waiting: int, agents: int, rounds: int, seed: int = 7,
        prefix: str = "bench:") -> dict[str, Any]:
    """One measured run; the router's keys live under ``prefix`` and are removed after."""
    rng = random.Random(seed)
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)
    store = QueueStore(client, rules=RULES, prefix=prefix)
    now = 1_000_000.0
    counter = 0

    def fill(n: int) -> None:
        nonlocal counter
        while n > 0:
            size = min(n, 2000)
            ops = []
            for _ in range(size):
                a = _call_args(rng, counter, now)
                ops.append(("enqueue", store.enqueue_args(
                    a["call_id"], a["queue"], a["needs"], a["priority"], "", a["entered_at"]), now))
                counter += 1
            store.batch(ops)
            n -= size

    for i in range(agents):
        skills = {f"lang:{lang}": 1 for lang in rng.sample(LANGS, 2)}
        skills.update({f"topic:{t}": rng.randint(1, 5) for t in rng.sample(TOPICS, 3)})
        store.upsert_agent(f"a{i}", skills, now=now)
    fill(waiting + agents)
    held: dict[str, str] = {}
    for i in range(agents):  # every agent takes a call, finishes it, starts wrap-up
        got = store.set_state(f"a{i}", "available", now=now)
        if got:
            store.accept(got.agent_id, got.call_id, now=now)
            store.complete(got.agent_id, got.call_id, now=now)
            held[got.agent_id] = got.call_id
    wrapped = sorted(held)
    if not wrapped:
        raise click.ClickException("no agent could take any call: check the skill mix")

    free_ms: list[float] = []
    new_ms: list[float] = []
    for r in range(rounds):
        aid = wrapped[r % len(wrapped)]
        t0 = time.perf_counter()
        got = store.end_wrap_up(aid, now=now)
        free_ms.append((time.perf_counter() - t0) * 1000)
        args = _call_args(rng, counter, now)
        counter += 1
        t0 = time.perf_counter()
        store.enqueue(**args, now=now)
        new_ms.append((time.perf_counter() - t0) * 1000)
        if got:
            store.accept(aid, got.call_id, now=now)
            store.complete(aid, got.call_id, now=now)

    # Throughput: pipelined decisions (agents leaving wrap-up, new calls arriving).
    ops: list[tuple[str, dict[str, Any], float]] = []
    for aid in wrapped:
        ops.append(("end_wrap", {"agent": aid}, now))
        a = _call_args(rng, counter, now)
        counter += 1
        ops.append(("enqueue", store.enqueue_args(a["call_id"], a["queue"], a["needs"],
                                                  a["priority"], "", a["entered_at"]), now))
    t0 = time.perf_counter()
    for i in range(0, len(ops), 200):
        store.batch(ops[i:i + 200])
    elapsed = time.perf_counter() - t0
    decisions = len(ops)
    in_line = len(store.waiting())
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)
    return {"waiting": waiting, "in_line_at_end": in_line, "agents": agents,
            "skill_combinations": 20, "rounds": rounds,
            "decisions_per_s": round(decisions / elapsed),
            "p50_ms": round(_percentile(free_ms, 0.50), 3),
            "p99_ms": round(_percentile(free_ms, 0.99), 3),
            "new_call_p50_ms": round(_percentile(new_ms, 0.50), 3),
            "new_call_p99_ms": round(_percentile(new_ms, 0.99), 3),
            "sequential_decisions_per_s": round(2 * rounds / ((sum(free_ms) + sum(new_ms)) / 1000))}


@click.command("routing")
@click.option("--waiting", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="calls waiting in line during the measurement")
@click.option("--agents", default=1_000, show_default=True, type=click.IntRange(1, 100_000),
              help="agents (each with 2 languages and 3 topics)")
@click.option("--rounds", default=5_000, show_default=True, type=click.IntRange(10, 1_000_000),
              help="agent-free and new-call decisions timed one by one")
@click.option("--scaling", is_flag=True,
              help="also run with 100, 1,000, 10,000 and 100,000 waiting calls")
def command(waiting: int, agents: int, rounds: int, scaling: bool) -> None:
    """Router speed: prints one JSON line with decisions_per_s, p50_ms, p99_ms."""
    with redis_for_bench() as client:
        click.echo(f"routing: {waiting} waiting, {agents} agents ...", err=True)
        result = run(client, waiting, agents, rounds)
        if scaling:
            result["scaling"] = []
            for n in (100, 1_000, 10_000, 100_000):
                click.echo(f"routing: scaling run with {n} waiting ...", err=True)
                one = run(client, n, agents, min(rounds, 2_000))
                result["scaling"].append({k: one[k] for k in (
                    "waiting", "decisions_per_s", "p50_ms", "p99_ms", "new_call_p99_ms")})
    click.echo(json.dumps(result))
    sys.stdout.flush()
