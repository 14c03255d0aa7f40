"""`ivr bench routing`: speed of the Redis router, against Redis configured as the product runs it.

The Redis is the product's own embedded server (:class:`ivr.embedded.EmbeddedRedis`:
unix socket, ``appendonly yes``, ``appendfsync everysec``), started in a temporary
directory for the run, so every write pays the AOF as in production. For each size
(default 100, 1,000, 10,000 and 100,000 waiting calls over 20 skill combinations,
1,000 agents) it measures, in this order and in the same run:

* a baseline: the round trip of a Redis ``PING`` and of a Lua script that does nothing,
  so the noise of this shared machine shows beside the figures;
* ``p50_ms`` / ``p99_ms``: an agent leaving wrap-up gets its next call -- one decision's
  full round trip from Python (one Lua run), one at a time; ``new_call_*``: a new call
  arriving while no agent is free;
* ``decisions_per_s``: sustained decisions per second with ``--clients`` processes (each
  its own connection, one decision per round trip, as web and RQ workers make them; the
  default 8 is ``ivr serve``'s 2 web workers x 4 threads) for ``--seconds`` seconds. A
  cycle is "agent free -> next call" plus "a new call arrives" (two decisions, keeping the
  line at its size) plus the accept/complete that put the agent back in wrap-up (one
  pipelined round trip, not counted as decisions). The clients share the machine's cores
  with Redis, as the web workers do in production;
* ``redis_us_*`` (Redis's own time per script call, from ``INFO commandstats``) and the
  ceiling they imply, ``redis_bound_decisions_per_s``: what Redis alone could sustain
  for that cycle if the clients cost nothing; ``client_cpu_us_per_decision``: what the
  Python side spent per decision (the clients' CPU time), the other half of the bill.

Stdout is one JSON line (the figures of the 10,000-call size, or ``--waiting``, plus
``sizes`` and ``targets``); the table and a PASS/FAIL line per target go to stderr with
the progress.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import redis

from benchmarks.routing_load import LANGS, NOW, PREFIX, TOPICS, call_args, script_usec, sustained
from ivr.embedded import EmbeddedRedis, EmbeddedRedisError
from queueing.rules import AgingStep, QueueRules, RulesConfig
from queueing.store import QueueStore

# Long reservation and wrap-up times: no timer fires while measuring (tick is not run).
RULES = RulesConfig(default=QueueRules(
    reservation_timeout_s=600, wrap_up_s=3600, head_start_s={2: 30},
    steps=(AgingStep(after_s=60, min_level=1), AgingStep(after_s=300, raise_priority=1))))
SIZES = (100, 1_000, 10_000, 100_000)
TARGET_SIZE = 10_000
TARGET_P99_MS = 2.0
TARGET_DECISIONS_PER_S = 5_000


@contextmanager
def product_redis(url: str | None) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield (url, its persistence config): ``url`` as given, or the product's embedded
    redis-server started in a temporary directory (removed afterwards)."""
    if url:
        yield url, _persistence(url)
        return
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        try:
            server.start()
        except EmbeddedRedisError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            yield server.url, _persistence(server.url)
        finally:
            server.stop()


def _persistence(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        conf: dict[str, str] = {}
        for key in ("appendonly", "appendfsync", "save"):
            conf.update(client.config_get(key))  # type: ignore[arg-type]
        conf["redis_version"] = str(client.info("server")["redis_version"])
        return conf
    except redis.RedisError as exc:
        raise click.ClickException(f"cannot read the Redis configuration at {url}: {exc}") from None
    finally:
        client.close()


def _enqueue_op(store: QueueStore, a: dict[str, Any]) -> tuple[str, dict[str, Any], float]:
    return ("enqueue", store.enqueue_args(a["call_id"], a["queue"], a["needs"], a["priority"],
                                          "", a["entered_at"]), NOW)


def _ms(seconds: list[float], q: float) -> float:
    """The ``q`` quantile of ``seconds``, in milliseconds."""
    ordered = sorted(seconds)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def _clear(client: redis.Redis) -> None:
    keys: list[str] = []
    for key in client.scan_iter(f"{PREFIX}*", count=2000):
        keys.append(key)
        if len(keys) >= 2000:
            client.unlink(*keys)
            keys = []
    if keys:
        client.unlink(*keys)


def prepare(client: redis.Redis, waiting: int, agents: int, rng: random.Random,
            say: Any) -> tuple[QueueStore, list[str]]:
    """Fill the router: ``agents`` agents each in wrap-up after a call, ``waiting`` calls
    in line. Returns the store and the agents in wrap-up."""
    _clear(client)
    store = QueueStore(client, rules=RULES, prefix=PREFIX)
    for i in range(agents):
        skills = {f"lang:{lang}": 1 for lang in rng.sample(LANGS, 2)}
        skills.update({f"topic:{t}": rng.randint(1, 5) for t in rng.sample(TOPICS, 3)})
        store.upsert_agent(f"a{i}", skills, now=NOW)
    total = waiting + agents
    for start in range(0, total, 2000):
        store.batch([_enqueue_op(store, call_args(rng, f"c{i}"))
                     for i in range(start, min(total, start + 2000))])
        say(f"  filling: {min(total, start + 2000):,}/{total:,} calls")
    wrapped = []
    for i in range(agents):  # every agent takes a call, finishes it, starts wrap-up
        got = store.set_state(f"a{i}", "available", now=NOW)
        if got:
            store.batch([("accept", {"agent": got.agent_id, "call": got.call_id}, NOW),
                         ("complete", {"agent": got.agent_id, "call": got.call_id}, NOW)])
            wrapped.append(got.agent_id)
    if not wrapped:
        raise click.ClickException("no agent could take any call: check the skill mix")
    return store, wrapped


def baseline(client: redis.Redis, rounds: int) -> dict[str, float]:
    """Round trips that do no routing: PING and a Lua script returning at once."""
    noop = client.register_script("return 1")
    ping: list[float] = []
    lua: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        client.ping()
        ping.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        noop()
        lua.append(time.perf_counter() - t0)
    return {"ping_p50_ms": _ms(ping, 0.5), "ping_p99_ms": _ms(ping, 0.99),
            "lua_noop_p50_ms": _ms(lua, 0.5), "lua_noop_p99_ms": _ms(lua, 0.99)}


def latency(client: redis.Redis, store: QueueStore, wrapped: list[str], rounds: int,
            rng: random.Random) -> dict[str, float]:
    """One decision at a time: a freed agent gets its next call; a new call joins its line.

    Run in blocks (all frees, then all arrivals, then the accept/complete that put the
    agents back in wrap-up) so Redis's own time per kind of script call can be read from
    INFO commandstats between them."""
    free: list[float] = []
    new: list[float] = []
    server_us = {"end_wrap": 0.0, "enqueue": 0.0, "accept_complete": 0.0}
    block = 100
    for first in range(0, rounds, block):
        ids = [wrapped[(first + j) % len(wrapped)] for j in range(min(block, rounds - first))]
        base = script_usec(client)
        taken = []
        for aid in ids:
            t0 = time.perf_counter()
            got = store.end_wrap_up(aid, now=NOW)
            free.append(time.perf_counter() - t0)
            if got:
                taken.append((aid, got.call_id))
        mid = script_usec(client)
        for j in range(len(ids)):
            args = call_args(rng, f"l{first + j}")
            t0 = time.perf_counter()
            _, direct, _ = store.enqueue(**args, now=NOW)
            new.append(time.perf_counter() - t0)
            if direct:  # it went straight to an agent left idle: back to wrap-up too
                taken.append((direct.agent_id, direct.call_id))
        after = script_usec(client)
        store.batch([op for aid, cid in taken for op in (
            ("accept", {"agent": aid, "call": cid}, NOW),
            ("complete", {"agent": aid, "call": cid}, NOW))])
        server_us["end_wrap"] += mid - base
        server_us["enqueue"] += after - mid
        server_us["accept_complete"] += script_usec(client) - after
    return {"p50_ms": _ms(free, 0.5), "p99_ms": _ms(free, 0.99),
            "new_call_p50_ms": _ms(new, 0.5), "new_call_p99_ms": _ms(new, 0.99),
            "sequential_decisions_per_s": round(2 * rounds / (sum(free) + sum(new))),
            "redis_us_free_agent": round(server_us["end_wrap"] / rounds, 1),
            "redis_us_new_call": round(server_us["enqueue"] / rounds, 1),
            "redis_us_accept_complete": round(server_us["accept_complete"] / rounds, 1)}


def measure(url: str, waiting: int, agents: int, rounds: int, clients: int, seconds: float,
            seed: int, say: Any) -> dict[str, Any]:
    """Every figure for one size of the line."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        rng = random.Random(seed)
        store, wrapped = prepare(client, waiting, agents, rng, say)
        say(f"  baseline, then {rounds:,} decisions one at a time")
        out: dict[str, Any] = {"waiting": waiting, "agents": agents, "skill_combinations": 20}
        out.update(baseline(client, max(200, rounds // 2)))
        out.update(latency(client, store, wrapped, rounds, rng))
        say(f"  {clients} clients for {seconds:g} s")
        out.update(sustained(url, client, wrapped, clients, seconds, seed))
        # The ceiling if clients cost nothing: Redis's own time for one cycle (2 decisions
        # plus the accept and complete between them), from the one-at-a-time phase.
        cycle_us = (out["redis_us_free_agent"] + out["redis_us_new_call"]
                    + out["redis_us_accept_complete"])
        out["redis_bound_decisions_per_s"] = round(2e6 / cycle_us) if cycle_us else None
        out["in_line_at_end"] = sum(n for n, _ in store.line_heads().values())
        _clear(client)
        return out
    finally:
        client.close()


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's two targets, judged on the 10,000-call row when it was measured."""
    row = next((r for r in rows if r["waiting"] == TARGET_SIZE), None)
    p99 = row["p99_ms"] if row else None
    dps = row["decisions_per_s"] if row else None
    return [
        {"target": f"agent free -> next call p99 <= {TARGET_P99_MS:g} ms at {TARGET_SIZE:,} waiting",
         "measured": p99, "pass": None if p99 is None else p99 <= TARGET_P99_MS},
        {"target": f">= {TARGET_DECISIONS_PER_S:,} decisions/s at {TARGET_SIZE:,} waiting",
         "measured": dps, "pass": None if dps is None else dps >= TARGET_DECISIONS_PER_S},
    ]


def report(rows: list[dict[str, Any]], checks: list[dict[str, Any]], conf: dict[str, str]) -> str:
    """The table (markdown) and one PASS/FAIL line per target."""
    lines = [(f"Redis {conf.get('redis_version')}: appendonly {conf.get('appendonly')}, "
              f"appendfsync {conf.get('appendfsync')}; ms are round trips from Python, "
              "us are Redis's own time per script call"),
             ("| waiting | baseline PING p50 / p99 ms | agent free -> next call p50 / p99 ms "
              "| new call p50 / p99 ms | Redis us: free / new / accept+complete "
              "| decisions/s (clients) | Redis CPU | client CPU us/decision "
              "| Redis-bound decisions/s |"),
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['waiting']:,} | {r['ping_p50_ms']:.2f} / {r['ping_p99_ms']:.2f} "
            f"| {r['p50_ms']:.2f} / {r['p99_ms']:.2f} "
            f"| {r['new_call_p50_ms']:.2f} / {r['new_call_p99_ms']:.2f} "
            f"| {r['redis_us_free_agent']:.0f} / {r['redis_us_new_call']:.0f} / "
            f"{r['redis_us_accept_complete']:.0f} "
            f"| {r['decisions_per_s']:,} ({r['clients']}) | {r['redis_cpu_share']:.0%} "
            f"| {r['client_cpu_us_per_decision']:.0f} "
            f"| {_n(r['redis_bound_decisions_per_s'])} |")
    for c in checks:
        verdict = ("NOT MEASURED (10,000 not among the sizes)" if c["pass"] is None
                   else "PASS" if c["pass"] else "FAIL")
        lines.append(f"{verdict}: {c['target']} (measured {c['measured']})")
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _sizes(raw: str | None) -> tuple[int, ...] | None:
    if raw is None:
        return None
    try:
        sizes = tuple(int(s.replace("_", "")) for s in raw.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {raw!r}",
                                 param_hint="--sizes") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 1_000_000:
        raise click.BadParameter("each size must be 1..1,000,000", param_hint="--sizes")
    return sizes


@click.command("routing")
@click.option("--waiting", type=click.IntRange(1, 1_000_000), default=None,
              help="Measure this one size of the line instead of --sizes.")
@click.option("--sizes", default=None, metavar="N,N,...",
              help="Sizes of the line to measure [default: 100,1000,10000,100000]; "
                   "e.g. --sizes 100,1000 for a quick run.")
@click.option("--agents", default=1_000, show_default=True, type=click.IntRange(1, 100_000),
              help="Agents, each with 2 languages and 3 topics at random levels.")
@click.option("--rounds", default=3_000, show_default=True, type=click.IntRange(10, 1_000_000),
              help="Decisions timed one by one per size (for p50/p99).")
@click.option("--clients", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Concurrent client processes for the sustained decisions/s.")
@click.option("--seconds", default=4.0, show_default=True, type=click.FloatRange(0.2, 600),
              help="Length of the sustained run per size.")
@click.option("--redis-url", default=None, metavar="URL",
              help="Measure an existing Redis instead of the product's embedded one "
                   "(its keys under 'bench:' are overwritten and removed).")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
def command(waiting: int | None, sizes: str | None, agents: int, rounds: int, clients: int,
            seconds: float, redis_url: str | None, seed: int) -> None:
    """Router speed against Redis as the product runs it.

    Starts the product's embedded redis-server (appendonly yes, appendfsync everysec)
    in a temporary directory, and for each size of the line (20 skill combinations)
    measures a baseline (PING round trip), "agent free -> next call" p50/p99 one at a
    time, and sustained decisions/s with --clients processes.

    \b
    stdout: one JSON line -- decisions_per_s, p50_ms, p99_ms of the 10,000-call size
            (or --waiting), every size under "sizes", the verdicts under "targets".
    stderr: progress, then the table and a PASS/FAIL line per target
            (p99 <= 2 ms and >= 5,000 decisions/s at 10,000 waiting).
    """
    chosen = _sizes(sizes)
    if waiting is not None and chosen is not None:
        raise click.UsageError("give --waiting N or --sizes N,N,..., not both")
    run_sizes = (waiting,) if waiting is not None else chosen or SIZES

    def say(text: str) -> None:
        click.echo(text, err=True)

    rows = []
    with product_redis(redis_url) as (url, conf):
        if (conf.get("appendonly"), conf.get("appendfsync")) != ("yes", "everysec"):
            say("note: this Redis is not configured as the product's (appendonly yes, "
                "appendfsync everysec): the figures are not comparable")
        for i, size in enumerate(run_sizes):
            say(f"routing [{i + 1}/{len(run_sizes)}]: {size:,} waiting, {agents:,} agents")
            rows.append(measure(url, size, agents, rounds, clients, seconds, seed, say))
    checks = targets(rows)
    main = next((r for r in rows if r["waiting"] == TARGET_SIZE), rows[-1])
    say(report(rows, checks, conf))
    result = {k: main[k] for k in ("decisions_per_s", "p50_ms", "p99_ms", "new_call_p99_ms",
                                   "ping_p99_ms", "clients", "waiting", "agents")}
    result.update(redis=conf, sizes=rows, targets=checks)
    click.echo(json.dumps(result))
