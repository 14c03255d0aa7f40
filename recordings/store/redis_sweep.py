"""Redis side of erasing a person: find, delete and search what mentions them.

Part of the store (house rule 4: only store modules talk to Redis or SQL); used by
``recordings.privacy.erase``. Keys follow ``ivr/store.py``: per call
``ivr:call:{CallSid}...``, per number ``ivr:phone:{E164}`` (a set of CallSids),
the shared ``ivr:events`` stream, queue keys ``q:...`` and RQ's ``rq:...``. Rather
than trusting a list of patterns, every key is scanned: a key named after one of
the needles is deleted, and inside shared keys only the entries that mention one
are (hash fields, list/set/zset members, stream entries). RQ jobs about the calls
are deleted whole, then their ids are swept from RQ's registries. Finally the AOF
and RDB files are rewritten so the deleted values leave Redis's files too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis

Needles = list[tuple[str, bytes]]  # (kind, bytes): ("phone", b"+34600112233")


def sids_for_phone(client: redis.Redis, e164: str) -> list[str]:
    """CallSids in the per-number index ``ivr:phone:{E164}``."""
    try:
        members = client.smembers(f"ivr:phone:{e164}")
    except redis.ResponseError:  # not a set: nothing to learn from it
        return []
    return sorted(_text(m) for m in members)


def erase_from_redis(client: redis.Redis, needles: Needles, key_prefixes: list[str]
                     ) -> tuple[dict[str, int], list[str]]:
    """Delete what mentions the needles; return (what was removed, notes)."""
    raw = _raw_client(client)
    removed: dict[str, int] = {}
    notes: list[str] = []
    prefixes = [p.encode() for p in key_prefixes]
    jobs: list[bytes] = []
    try:
        _sweep(raw, needles, prefixes, removed, jobs)
        if jobs:  # RQ keeps job ids in registries and result streams: sweep them too
            _sweep(raw, [("rq_job", j) for j in jobs], [], removed, [])
        notes.append(_rewrite_persistence(raw))
    except redis.RedisError as exc:
        notes.append(f"stopped by a Redis error: {exc}")
    finally:
        raw.close()
    return removed, notes


def _count(removed: dict[str, int], what: str, n: int = 1) -> None:
    removed[what] = removed.get(what, 0) + n


# The bytes client below is typed Any: redis-py types every reply as ``bytes | str``.
RawRedis = Any


def _raw_client(client: redis.Redis) -> RawRedis:
    """A bytes client on the same server: values may not be UTF-8."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


def _hit(data: bytes, needles: Needles) -> str | None:
    return next((kind for kind, n in needles if n in data), None)


def _sweep(raw: RawRedis, needles: Needles, prefixes: list[bytes],
           removed: dict[str, int], jobs: list[bytes]) -> None:
    for key in raw.scan_iter(count=1000):
        if any(key == p or key.startswith(p + b":") for p in prefixes) or _hit(key, needles):
            raw.delete(key)
            _count(removed, "keys")
            continue
        kind = raw.type(key).decode()
        if kind == "string":
            if _hit(raw.get(key) or b"", needles):
                raw.delete(key)
                _count(removed, "keys")
        elif kind == "hash":
            values = raw.hgetall(key)
            bad = [f for f, v in values.items() if _hit(f + b"\0" + v, needles)]
            if bad and key.startswith(b"rq:job:"):
                raw.delete(key)
                jobs.append(key[len(b"rq:job:"):])
                _count(removed, "rq jobs")
            elif bad:
                raw.hdel(key, *bad)
                _count(removed, "hash fields", len(bad))
        elif kind in ("list", "set", "zset"):
            members = (raw.lrange(key, 0, -1) if kind == "list" else raw.smembers(key)
                       if kind == "set" else raw.zrange(key, 0, -1))
            for member in {mb for mb in members if _hit(mb, needles)}:
                if kind == "list":
                    raw.lrem(key, 0, member)
                elif kind == "set":
                    raw.srem(key, member)
                else:
                    raw.zrem(key, member)
                _count(removed, f"{kind} members")
        elif kind == "stream":
            for entry_id, fields in _stream(raw, key):
                if any(_hit(f + b"\0" + v, needles) for f, v in fields.items()):
                    raw.xdel(key, entry_id)
                    _count(removed, "stream entries")


def _stream(raw: RawRedis, key: bytes) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
    start = b"-"
    while True:
        batch = raw.xrange(key, min=start, max=b"+", count=1000)
        yield from batch
        if len(batch) < 1000:
            return
        start = b"(" + batch[-1][0]


def _rewrite_persistence(raw: RawRedis) -> str:
    """Rewrite the AOF (and RDB) so deleted values leave Redis's files too."""
    try:
        config = {_text(k): _text(v) for k, v in raw.config_get("appendonly", "save").items()}
    except redis.ResponseError:
        return "CONFIG not allowed: ask the Redis operator to rewrite the AOF/RDB files"
    aof, rdb = config.get("appendonly") == "yes", bool(config.get("save"))
    done = []
    if aof:
        done.append(_rewrite(raw, raw.bgrewriteaof, "AOF",
                             (b"aof_rewrite_in_progress", b"aof_rewrite_scheduled")))
    if rdb:
        done.append(_rewrite(raw, raw.bgsave, "RDB snapshot", (b"rdb_bgsave_in_progress",)))
    return ", ".join(done) or "no persistence files to rewrite"


def _rewrite(raw: RawRedis, start: Any, what: str, flags: tuple[bytes, ...]) -> str:
    """Start a background rewrite after any running one (which predates the erase)."""
    _wait(raw, flags)
    try:
        start()
    except redis.ResponseError:  # one started meanwhile: wait for it, then ours
        _wait(raw, flags)
        start()
    if not _wait(raw, flags):
        return f"{what} rewrite still running after 60 s: search the files again later"
    return f"{what} rewritten"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _wait(raw: RawRedis, flags: tuple[bytes, ...], timeout_s: float = 60) -> bool:
    """Wait until none of the INFO persistence ``flags`` is set; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = raw.info("persistence")
        if not any(int(info.get(f.decode(), 0)) for f in flags):
            return True
        time.sleep(0.05)
    return False


def search_redis(client: redis.Redis, needles: Needles) -> list[str]:
    """Where (key type, needle kind) the needles still appear, in names or values."""
    raw = _raw_client(client)
    hits: list[str] = []
    try:
        for key in raw.scan_iter(count=1000):
            kind = raw.type(key).decode()
            if kind == "string":
                blob = raw.get(key) or b""
            elif kind == "hash":
                blob = b"\0".join(f + b"\0" + v for f, v in raw.hgetall(key).items())
            elif kind == "list":
                blob = b"\0".join(raw.lrange(key, 0, -1))
            elif kind == "set":
                blob = b"\0".join(raw.smembers(key))
            elif kind == "zset":
                blob = b"\0".join(raw.zrange(key, 0, -1))
            elif kind == "stream":
                blob = b"\0".join(f + b"\0" + v for _, fs in _stream(raw, key)
                                   for f, v in fs.items())
            else:
                blob = b""
            kinds = {k for k, n in needles if n in key or n in blob}
            hits += [f"a {kind} key ({k})" for k in sorted(kinds)]
    finally:
        raw.close()
    return hits
