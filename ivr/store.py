"""Redis records of calls: sessions, per-call event streams, ended calls.

Keys (all per call start with ``ivr:call:{CallSid}`` so erasure finds them):

- ``ivr:call:{sid}``         hash: latest ``session`` (JSON), ``seq``, ``status``,
  ``ended``, ``caller``, ``started_at``, ``ended_at``, ``duration``
- ``ivr:call:{sid}:seqs``    set of step numbers already recorded (retries dedupe)
- ``ivr:call:{sid}:events``  stream: one entry per node visited / call event
- ``ivr:events``             stream of every call's steps (capped; CallSid and step
  number only, no content), for live screens
- ``ivr:phone:{E164}``       set of the number's CallSids
- channel ``ivr:ended``      CallSids whose call ended (web workers cache them)

The writer sends one Lua call per batch of steps; each step is applied atomically
and idempotently (its number is recorded), so a Twilio retry records nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis

CALL_TTL_S = 30 * 24 * 3600  # retention job may shorten; erasure removes at once
GLOBAL_STREAM_MAXLEN = 100_000
ENDED_CHANNEL = "ivr:ended"

_RECORD_STEPS = """
-- ARGV: ttl, maxlen, then per step: call_sid, seq, session, n, record_1 .. record_n
-- Key names are built here from the CallSid (single Redis, not Cluster).
local ttl, maxlen = ARGV[1], ARGV[2]
local i, written = 3, 0
while i <= #ARGV do
  local sid, seq, session, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local call = 'ivr:call:' .. sid
  local seqs, events = call .. ':seqs', call .. ':events'
  if redis.call('SADD', seqs, seq) == 1 then
    local current = tonumber(redis.call('HGET', call, 'seq') or '-1')
    if tonumber(seq) > current and session ~= '' then
      redis.call('HSET', call, 'seq', seq, 'session', session)
    end
    for j = 1, n do
      redis.call('XADD', events, '*', 'seq', seq, 'data', ARGV[i + 3 + j])
    end
    -- the live screens need which calls moved, not what they said: one entry per step
    redis.call('XADD', 'ivr:events', 'MAXLEN', '~', maxlen, '*', 'call_sid', sid, 'seq', seq)
    redis.call('EXPIRE', call, ttl)
    redis.call('EXPIRE', seqs, ttl)
    redis.call('EXPIRE', events, ttl)
    written = written + 1
  end
  i = i + 4 + n
end
return written
"""

# Status callbacks: keep the furthest-along status; "ended" once any final status
# arrives, whatever the order. Returns 1 the first time the call is seen ending.
_RECORD_STATUS = """
local call, seqs, events, global, phone = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, status, seqno, final, data, ttl, maxlen, now =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local mark = 'status:' .. status .. ':' .. seqno
if redis.call('SADD', seqs, mark) == 0 then return -1 end
redis.call('HSET', call, 'status_' .. status, now)
redis.call('XADD', events, '*', 'seq', mark, 'data', data)
redis.call('XADD', global, 'MAXLEN', '~', maxlen, '*', 'call_sid', sid, 'seq', mark,
           'data', data)
if phone ~= '' then redis.call('SADD', phone, sid); redis.call('EXPIRE', phone, ttl) end
redis.call('EXPIRE', call, ttl)
redis.call('EXPIRE', seqs, ttl)
redis.call('EXPIRE', events, ttl)
if final == '1' then
  if redis.call('HSETNX', call, 'ended', now) == 1 then
    redis.call('PUBLISH', 'ivr:ended', sid)
    return 1
  end
end
return 0
"""


def _json(value: Any) -> bytes:
    """UTF-8 JSON of a record (orjson: written for every step of every call)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def call_key(call_sid: str) -> str:
    return f"ivr:call:{call_sid}"


def phone_key(number: str) -> str:
    return f"ivr:phone:{number}"


class CallRecords:
    """Reads and writes call records in Redis (the web layer's durable record)."""

    def __init__(self, client: redis.Redis, ttl_s: int = CALL_TTL_S) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._steps = client.register_script(_RECORD_STEPS)
        self._status = client.register_script(_RECORD_STATUS)

    def _keys(self, call_sid: str) -> list[str]:
        base = call_key(call_sid)
        return [base, f"{base}:seqs", f"{base}:events", "ivr:events"]

    def record_steps(self, items: Iterable[tuple[str, int, Mapping[str, Any] | str | None,
                                                 list[Mapping[str, Any]]]]) -> int:
        """Write many steps in one Lua call; returns how many were new (retries: 0)."""
        args: list[Any] = [self.ttl_s, GLOBAL_STREAM_MAXLEN]
        for call_sid, seq, session, records in items:
            state = session if isinstance(session, str) else (
                _json(session) if session else "")
            args.extend((call_sid, seq, state, len(records)))
            args.extend(_json(r) for r in records)
        if len(args) == 2:
            return 0
        return int(self._steps(keys=[], args=args))

    def record_status(self, call_sid: str, status: str, sequence: str, final: bool,
                      data: Mapping[str, Any], caller: str | None, now: float) -> int:
        """1: the call just ended; 0: recorded; -1: duplicate callback, ignored."""
        keys = self._keys(call_sid) + [phone_key(caller) if caller else "ivr:phone:"]
        args = [call_sid, status, sequence, "1" if final else "0",
                json.dumps(data, ensure_ascii=False, default=str), self.ttl_s,
                GLOBAL_STREAM_MAXLEN, f"{now:.3f}"]
        return int(self._status(keys=keys, args=args))

    def claim_once(self, call_sid: str, what: str) -> bool:
        """True the first time ``what`` is claimed for the call (a Twilio retry of the
        same step must not repeat a side effect such as starting a recording)."""
        return bool(self.client.set(f"{call_key(call_sid)}:once:{what}", "1", nx=True,
                                    ex=self.ttl_s))

    def is_ended(self, call_sid: str) -> bool:
        return bool(self.client.hexists(call_key(call_sid), "ended"))

    def session(self, call_sid: str) -> dict[str, Any] | None:
        raw = self.client.hget(call_key(call_sid), "session")
        return json.loads(raw) if raw else None

    def events(self, call_sid: str) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in self.client.xrange(f"{call_key(call_sid)}:events"):
            try:
                data = json.loads(fields.get("data", "{}"))
            except ValueError:
                data = {"raw": fields.get("data")}
            data.setdefault("seq", fields.get("seq"))
            data["id"] = entry_id
            out.append(data)
        return out

    def link_phone(self, number: str, call_sid: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(phone_key(number), call_sid)
        pipe.expire(phone_key(number), self.ttl_s)
        pipe.execute()
