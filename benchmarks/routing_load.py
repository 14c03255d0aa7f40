"""The sustained part of `ivr bench routing`: ``--clients`` processes making decisions.

Each client is a separate process (spawned: no inherited sockets or threads) with its own
connection, cycling through its own agents: a freed agent takes its next call, a new
call arrives (two decisions), then the accept and complete that put the agent back in
wrap-up (one pipelined round trip, not counted). Redis's own CPU and time per router
call are read from INFO, so one can see who was the bottleneck.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
from typing import Any

import click
import redis

from queueing.model import requirements
from queueing.store import QueueStore

LANGS = ("es", "ca", "en", "fr")
TOPICS = ("billing", "tech", "sales", "moves", "claims")
PREFIX = "bench:"
NOW = 1_000_000.0  # simulated clock: wait times stay fixed while measuring


def call_args(rng: random.Random, call_id: str) -> dict[str, Any]:
    """A new call of one of the 20 skill combinations, each with its own required level."""
    combo = rng.randrange(20)
    lang, topic = LANGS[combo % 4], TOPICS[combo // 4]
    return {"call_id": call_id, "queue": "main", "needs": requirements(lang, topic, 1 + combo % 3),
            "priority": rng.choice((0, 0, 0, 1, 2)), "entered_at": NOW - rng.uniform(0, 600)}


# The router runs as a Redis function (FCALL), or as a script (EVALSHA) on a Redis
# without functions: INFO commandstats counts its calls under one of these.
ROUTER_COMMANDS = ("cmdstat_fcall", "cmdstat_evalsha")


def _router_stats(stats: dict[str, Any]) -> tuple[float, int]:
    """(microseconds, calls) Redis spent in router calls, from INFO commandstats."""
    return (sum(float(stats.get(name, {}).get("usec", 0.0)) for name in ROUTER_COMMANDS),
            sum(int(stats.get(name, {}).get("calls", 0)) for name in ROUTER_COMMANDS))


def script_usec(client: redis.Redis) -> float:
    """Redis's cumulative time in router calls (microseconds), from INFO commandstats."""
    return _router_stats(client.info("commandstats"))[0]


def _client_main(url: str, name: str, agents: list[str], seconds: float, seed: int,
                 ready: Any, go: Any, results: Any) -> None:
    """One load client (a separate process): cycles through its own agents until time."""
    client = redis.Redis.from_url(url, decode_responses=True)
    store = QueueStore(client, prefix=PREFIX)
    rng = random.Random(seed)
    try:
        try:
            client.ping()
        except redis.RedisError as exc:
            ready.put(f"{name}: cannot reach Redis at {url}: {exc}")
            return
        ready.put("")
        go.wait()
        decisions = n = 0
        cpu = time.process_time()
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            aid = agents[n % len(agents)]
            got = store.end_wrap_up(aid, now=NOW)
            _, direct, _ = store.enqueue(**call_args(rng, f"{name}-{n}"), now=NOW)
            decisions += 2
            n += 1
            store.batch([op for a in (got, direct) if a for op in (
                ("accept", {"agent": a.agent_id, "call": a.call_id}, NOW),
                ("complete", {"agent": a.agent_id, "call": a.call_id}, NOW))])
        results.put((name, decisions, start, time.monotonic(), time.process_time() - cpu, None))
    except Exception as exc:  # noqa: BLE001  (any failure goes to the parent, which reports it)
        results.put((name, 0, 0.0, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))
    finally:
        client.close()


def sustained(url: str, client: redis.Redis, wrapped: list[str], clients: int,
              seconds: float, seed: int) -> dict[str, Any]:
    """``clients`` processes making decisions for ``seconds``; Redis's own CPU and time per
    script call are read from INFO so one can see who was the bottleneck."""
    ctx = multiprocessing.get_context("spawn")  # no inherited sockets or threads
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    n = min(clients, len(wrapped))
    procs = [ctx.Process(target=_client_main, daemon=True,
                         args=(url, f"k{i}", wrapped[i::n], seconds, seed + i, ready, go, results))
             for i in range(n)]
    for p in procs:
        p.start()
    try:
        try:
            trouble = [m for m in (ready.get(timeout=60) for _ in procs) if m]
        except queue.Empty:
            raise click.ClickException("the load clients did not start within 60 s") from None
        if trouble:
            raise click.ClickException("a load client failed: " + "; ".join(trouble))
        client.config_resetstat()
        cpu0 = _redis_cpu(client)
        go.set()
        got = [results.get(timeout=seconds + 60) for _ in procs]
        cpu1 = _redis_cpu(client)
        stats = client.info("commandstats")
    finally:
        for p in procs:
            if not go.is_set():  # never started measuring: nothing to wait for
                p.kill()
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        ready.close()
        results.close()
    failed = [f"{g[0]}: {g[-1]}" for g in got if g[-1]]
    if failed:
        raise click.ClickException("a load client failed: " + "; ".join(failed))
    decisions = sum(g[1] for g in got)
    elapsed = max(g[3] for g in got) - min(g[2] for g in got)
    router_usec, router_calls = _router_stats(stats)
    return {"decisions_per_s": round(decisions / elapsed), "clients": n,
            "seconds": round(elapsed, 2),
            "redis_cpu_share": round((cpu1 - cpu0) / elapsed, 2),
            "client_cpu_us_per_decision": round(sum(g[4] for g in got) * 1e6 / decisions, 1),
            "redis_us_per_script_call": round(router_usec / router_calls, 1) if router_calls else 0.0}


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


