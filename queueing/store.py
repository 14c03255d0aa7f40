"""The Redis-backed router: with ``store_wire`` (how its Lua reaches Redis) and
``store_callbacks``, the only part of the package that talks to Redis.

Every change of a call or agent is one call of the router in ``lua/`` (atomic: with any
number of processes acting at once, no call goes to two agents and no agent takes
more calls than its capacity). Waiting calls sit in one sorted set per bucket (queue +
requirements) and priority, so a decision touches the heads of a few sets, never
every call. Methods take ``now`` (seconds) so simulations and tests control time.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import redis

from queueing import errors
from queueing.model import (
    Agent,
    AgentState,
    Assignment,
    Call,
    CallStatus,
    HoldInfo,
    agent_from_hash,
    assignment_from_json,
    call_from_hash,
    validate_skills,
)
from queueing.model import callback_hold_s as default_hold
from queueing.routing import bucket_key
from queueing.rules import QueueRules, RulesConfig, rules_from_json
from queueing.store_callbacks import CallbackOps
from queueing.store_wire import RouterWire

_ERRORS: dict[str, type[errors.QueueError]] = {
    "unknown_call": errors.UnknownCall,
    "unknown_agent": errors.UnknownAgent,
    "invalid_transition": errors.InvalidTransition,
}

_assignment = assignment_from_json


#: ``is_open(now)``: whether callbacks may be dialled now -- one answer for every line, or
#: per line (``{line name: open}``, ``""`` for the default line, which also stands for
#: lines it does not name).
HoursFn = Callable[[float], "bool | Mapping[str, bool]"]


class QueueStore(CallbackOps):
    """``is_open(now)``: business hours (:data:`HoursFn`); a callback is dialled only
    while the hours of the line it came in on hold. ``callback_hold_s``: how long a
    callback's agent stays reserved while we ring the customer (at least the ring
    timeout plus a margin, :func:`callback_hold_s`)."""

    def __init__(self, client: redis.Redis, *, rules: RulesConfig | None = None,
                 prefix: str = "q:", is_open: HoursFn | None = None,
                 clock: Callable[[], float] = time.time, ttl_s: int = 7 * 86400,
                 callback_hold_s: float | None = None) -> None:
        self.redis = client  # decode_responses=True
        self.prefix = prefix
        self.is_open = is_open or (lambda now: True)
        self.clock = clock
        self.ttl_s = ttl_s
        self.callback_hold_s = default_hold() if callback_hold_s is None else callback_hold_s
        self._wire = RouterWire(client, prefix)
        if rules is not None:
            self.configure(rules)

    # ------------------------------------------------------------------ plumbing

    def _k(self, *parts: str) -> str:
        return self.prefix + "".join(parts)

    def _argv(self, op: str, args: Mapping[str, Any], at: float) -> tuple[Any, ...]:
        """The router's arguments after the prefix: operation, time, JSON, hours flag."""
        clean = {k: v for k, v in args.items() if v is not None}
        clean.setdefault("ttl", self.ttl_s)
        clean.setdefault("cb_hold", self.callback_hold_s)
        return (op, repr(float(at)), orjson.dumps(clean), self._hours(at))

    def _hours(self, at: float) -> str | bytes:
        """The router's hours argument: "1" all open, "0" all closed, else per line."""
        state = self.is_open(at)
        if not isinstance(state, Mapping):
            return "1" if state else "0"
        values = set(state.values())
        if values <= {True}:
            return "1"
        if values == {False}:
            return "0"
        return orjson.dumps({str(k): bool(v) for k, v in state.items()})

    def _run(self, op: str, args: Mapping[str, Any], now: float | None) -> Any:
        at = self.clock() if now is None else now
        try:
            raw = self._wire.call(self._argv(op, args, at))
        except redis.ResponseError as exc:
            raise _translate(exc) from None
        return orjson.loads(raw)

    def batch(self, ops: Iterable[tuple[str, Mapping[str, Any], float | None]]) -> list[Any]:
        """Run many router operations in one pipelined round trip (each still atomic).

        ``ops`` are (operation, arguments, now) as the methods below build them, e.g.
        ``("end_wrap", {"agent": "a1"}, None)`` or ``("enqueue", store.enqueue_args(...), t)``.
        Results (or the error of each failed one) come back in order.
        """
        replies = self._wire.calls([self._argv(op, args, self.clock() if now is None else now)
                                    for op, args, now in ops])
        return [_translate(r) if isinstance(r, redis.ResponseError) else orjson.loads(r)
                for r in replies]

    # ------------------------------------------------------------------ rules

    def configure(self, rules: RulesConfig) -> None:
        """Store the rules for every process (and the Lua router) to apply."""
        mapping = {"*": rules.default.to_json()}
        mapping.update({name: r.to_json() for name, r in rules.queues.items()})
        pipe = self.redis.pipeline()
        pipe.delete(self._k("rules"))
        pipe.hset(self._k("rules"), mapping=mapping)
        pipe.execute()

    def rules(self) -> RulesConfig:
        raw: dict[str, str] = self.redis.hgetall(self._k("rules"))  # type: ignore[assignment]
        default = rules_from_json(raw.pop("*")) if "*" in raw else QueueRules()
        return RulesConfig(default=default,
                           queues={name: rules_from_json(text) for name, text in raw.items()})

    # ------------------------------------------------------------------ calls

    def enqueue(self, call_id: str, queue: str, needs: Mapping[str, int] | None = None,
                priority: int = 0, caller: str = "", entered_at: float | None = None,
                now: float | None = None) -> tuple[str, Assignment | None, str | None]:
        """Put a call in line, or straight to the best free agent.

        Returns (status, assignment or None, id of the abandoned call whose place it took
        back or None). Enqueuing the same call id again changes nothing.
        """
        at = self.clock() if now is None else now
        out = self._run("enqueue", self.enqueue_args(call_id, queue, needs, priority, caller,
                                                     at if entered_at is None else entered_at), at)
        return out["status"], _assignment(out.get("assignment")), out.get("resumed_from")

    @staticmethod
    def enqueue_args(call_id: str, queue: str, needs: Mapping[str, int] | None, priority: int,
                     caller: str, entered_at: float) -> dict[str, Any]:
        if not call_id or not queue:
            raise errors.QueueError("a call needs a call id and a queue name")
        try:
            clean = validate_skills(dict(needs or {}), f"call {call_id}")
        except ValueError as exc:
            raise errors.QueueError(str(exc)) from None
        return {"id": call_id, "queue": queue, "bucket": bucket_key(queue, clean),
                "needs": clean, "prio": int(priority), "caller": caller,
                "entered_at": entered_at}

    def abandon(self, call_id: str, reason: str = "hangup",
                now: float | None = None) -> Assignment | None:
        """The caller hung up while waiting (a no-op for callbacks and answered calls)."""
        return _assignment(self._run("abandon", {"call": call_id, "reason": reason}, now)
                           .get("assignment"))

    def end_call(self, call_id: str, reason: str = "ended",
                 now: float | None = None) -> Assignment | None:
        """The call is over whatever its state (reconciliation, status callbacks)."""
        return _assignment(self._run("end_call", {"call": call_id, "reason": reason}, now)
                           .get("assignment"))

    def hold_info(self, call_id: str, now: float | None = None) -> HoldInfo:
        out = self._run("position", {"call": call_id}, now)
        return HoldInfo(call_id=call_id, status=CallStatus(out["status"]),
                        position=int(out["position"]), waiting=int(out["waiting"]),
                        wait_s=float(out["wait_s"]), offer_callback=bool(out["offer_callback"]),
                        offer_voicemail=bool(out["offer_voicemail"]),
                        overflowed_to=out.get("overflowed_to"))

    def position(self, call_id: str, now: float | None = None) -> int:
        return self.hold_info(call_id, now).position

    def call(self, call_id: str) -> Call | None:
        raw: dict[str, str] = self.redis.hgetall(self._k("call:", call_id))  # type: ignore[assignment]
        return call_from_hash(call_id, raw) if raw else None

    def calls(self, ids: Iterable[str]) -> list[Call]:
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self._k("call:", cid))
        return [call_from_hash(cid, raw) for cid, raw in zip(ids, pipe.execute()) if raw]

    def active_ids(self) -> set[str]:
        return set(self.redis.smembers(self._k("active")))  # type: ignore[arg-type]

    def waiting(self, queue: str | None = None) -> list[Call]:
        """Calls in line (waiting or callback pending), best first per line."""
        lines: list[str] = sorted(self.redis.smembers(self._k("lines")))  # type: ignore[arg-type]
        if not lines:
            return []
        metas = self.redis.hmget(self._k("linemeta"), lines)
        pipe = self.redis.pipeline(transaction=False)
        wanted = [lid for lid, m in zip(lines, metas)  # type: ignore[arg-type]
                  if m and (queue is None or json.loads(m)["q"] == queue)]
        for lid in wanted:
            pipe.zrange(self._k("line:", lid), 0, -1)
        ids = [cid for members in pipe.execute() for cid in members]
        return self.calls(ids)

    def claim(self, name: str, ttl_s: int = 3600) -> bool:
        """True for the first caller only: makes side effects (dialling) happen once."""
        return bool(self.redis.set(self._k("claim:", name), "1", nx=True, ex=ttl_s))

    def release(self, name: str) -> None:
        """Give a claim back (its side effect failed and must be tried again)."""
        self.redis.delete(self._k("claim:", name))

    def keep_claim(self, name: str, ttl_s: int) -> None:
        """Hold a claim this much longer (its side effect is done: never again)."""
        self.redis.expire(self._k("claim:", name), ttl_s)

    def note(self, call_id: str, **fields: str) -> None:
        """Attach facts to a call's record (e.g. the callback leg's CallSid)."""
        self.redis.hset(self._k("call:", call_id), mapping={f"note_{k}": v for k, v in fields.items()})

    def noted(self, call_id: str, name: str) -> str | None:
        """A fact :meth:`note` attached to the call (None when there is none)."""
        value = self.redis.hget(self._k("call:", call_id), f"note_{name}")
        return str(value) if value else None

    def abandons(self, limit: int = 100) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.redis.lrange(self._k("abandons"), 0, limit - 1)]  # type: ignore[union-attr]

    def reconcile(self, active_call_sids: Iterable[str],
                  now: float | None = None) -> tuple[list[str], list[Assignment]]:
        """End calls we think are live but Twilio no longer has (ended while we were down).

        Callbacks keep their place: their caller hung up on purpose. Returns the ids
        ended and the reservations made for the agents they freed (to be dispatched).
        """
        live = set(active_call_sids)
        ended: list[str] = []
        made: list[Assignment] = []
        for call in self.calls(sorted(self.active_ids() - live)):
            if call.status == CallStatus.CALLBACK_PENDING or call.callback_number:
                continue
            nxt = self.end_call(call.call_id, reason="ended_while_down", now=now)
            if nxt is not None:
                made.append(nxt)
            ended.append(call.call_id)
        return ended, made

    # ------------------------------------------------------------------ agents

    def upsert_agent(self, agent_id: str, skills: Mapping[str, int], capacity: int = 1,
                     queues: Iterable[str] = (), now: float | None = None) -> Assignment | None:
        if not agent_id or any(c in agent_id for c in " |#"):
            raise errors.QueueError(f"agent id {agent_id!r}: use letters, digits, - or _")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 50:
            raise errors.QueueError(f"capacity must be an integer 1..50, got {capacity!r}")
        try:
            clean = validate_skills(dict(skills), f"agent {agent_id}")
        except ValueError as exc:
            raise errors.QueueError(str(exc)) from None
        out = self._run("upsert_agent", {"agent": agent_id, "skills": clean or {},
                                         "capacity": capacity, "queues": list(queues)}, now)
        return _assignment(out.get("assignment"))

    def set_state(self, agent_id: str, state: AgentState | str, reason: str | None = None,
                  now: float | None = None) -> Assignment | None:
        """Log in (available), pause with a reason, or log out (offline)."""
        state = AgentState(state)
        if state not in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.OFFLINE):
            raise errors.InvalidTransition(
                f"an agent can only be set available, paused or offline, not {state.value}")
        if state == AgentState.PAUSED and not reason:
            raise errors.QueueError("pausing needs a reason")
        out = self._run("set_state", {"agent": agent_id, "state": state.value,
                                      "reason": reason}, now)
        return _assignment(out.get("assignment"))

    def accept(self, agent_id: str, call_id: str, now: float | None = None) -> None:
        self._run("accept", {"agent": agent_id, "call": call_id}, now)

    def decline(self, agent_id: str, call_id: str, now: float | None = None) -> Assignment | None:
        return _assignment(self._run("decline", {"agent": agent_id, "call": call_id}, now)
                           .get("assignment"))

    def complete(self, agent_id: str, call_id: str, wrap_up_s: float | None = None,
                 now: float | None = None) -> Assignment | None:
        """The call ended; the agent wraps up (queue rule unless ``wrap_up_s``)."""
        if wrap_up_s is not None and not math.isfinite(wrap_up_s):
            raise errors.QueueError(f"wrap_up_s must be a finite number of seconds, got {wrap_up_s!r}")
        out = self._run("complete", {"agent": agent_id, "call": call_id,
                                     "wrap_up_s": wrap_up_s}, now)
        return _assignment(out.get("assignment"))

    def end_wrap_up(self, agent_id: str, now: float | None = None) -> Assignment | None:
        return _assignment(self._run("end_wrap", {"agent": agent_id}, now).get("assignment"))

    def bounce(self, call_id: str, now: float | None = None) -> tuple[str, Assignment | None]:
        """The agent accepted but their phone did not answer the bridge: the caller goes
        back to the head of the line, the agent is paused (no-answer). Idempotent: a call
        no longer bridged is left as it is (its status is returned)."""
        out = self._run("bounce", {"call": call_id}, now)
        return str(out["status"]), _assignment(out.get("assignment"))

    def expire_reservation(self, call_id: str, reservation_id: str | None = None,
                           now: float | None = None) -> tuple[bool, Assignment | None]:
        out = self._run("expire", {"call": call_id, "res": reservation_id}, now)
        return bool(out["expired"]), _assignment(out.get("assignment"))

    def tick(self, now: float | None = None, limit: int = 1000) -> list[Assignment]:
        """Timers due at ``now`` (reservations, wrap-ups, callback retries) and a sweep
        offering aged calls to free agents. Returns the new reservations."""
        out = self._run("tick", {"limit": limit}, now)
        return [a for a in map(_assignment, out["assignments"]) if a is not None]

    def agent(self, agent_id: str) -> Agent | None:
        raw: dict[str, str] = self.redis.hgetall(self._k("agent:", agent_id))  # type: ignore[assignment]
        return agent_from_hash(agent_id, raw) if raw else None

    def agents(self) -> list[Agent]:
        ids = sorted(self.redis.smembers(self._k("agents")))  # type: ignore[arg-type]
        pipe = self.redis.pipeline(transaction=False)
        for aid in ids:
            pipe.hgetall(self._k("agent:", aid))
        return [agent_from_hash(aid, raw) for aid, raw in zip(ids, pipe.execute()) if raw]

    # ------------------------------------------------------------------ live views

    def counters(self) -> dict[str, dict[str, float]]:
        """Per-queue counters: offered, answered, answered_in_sl, abandoned, sums."""
        names = {json.loads(m)["q"] for m in self.redis.hvals(self._k("linemeta"))}  # type: ignore[union-attr]
        names |= set(self.rules().queues)
        pipe = self.redis.pipeline(transaction=False)
        ordered = sorted(names)
        for name in ordered:
            pipe.hgetall(self._k("stats:", name))
        return {name: {k: float(v) for k, v in raw.items()}
                for name, raw in zip(ordered, pipe.execute())}

    def line_heads(self) -> dict[str, tuple[int, float | None]]:
        """Per queue: (calls in line, entered_at of the longest-waiting one or None)."""
        lines: list[str] = sorted(self.redis.smembers(self._k("lines")))  # type: ignore[arg-type]
        if not lines:
            return {}
        metas = self.redis.hmget(self._k("linemeta"), lines)
        pipe = self.redis.pipeline(transaction=False)
        for lid in lines:
            pipe.zcard(self._k("line:", lid))
            pipe.zrange(self._k("line:", lid), 0, 0)
        raw = pipe.execute()
        heads = [raw[i + 1][0] for i in range(0, len(raw), 2) if raw[i + 1]]
        entered = {c.call_id: c.entered_at for c in self.calls(heads)}
        out: dict[str, tuple[int, float | None]] = {}
        for n, lid in enumerate(lines):
            meta = metas[n]  # type: ignore[index]
            if not meta:
                continue
            queue = json.loads(meta)["q"]
            count, oldest = out.get(queue, (0, None))
            first = raw[2 * n + 1]
            at = entered.get(first[0]) if first else None
            if at is not None and (oldest is None or at < oldest):
                oldest = at
            out[queue] = (count + int(raw[2 * n]), oldest)
        return out

    def events(self, after: str = "$", block_ms: int | None = 1000,
               count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Router events after stream id ``after`` (waits up to ``block_ms``; None: returns
        at once)."""
        out = self.redis.xread({self._k("events"): after}, count=count, block=block_ms)
        if not out:
            return []
        return [(eid, fields) for eid, fields in out[0][1]]  # type: ignore[index]

    def last_event_id(self) -> str:
        info = self.redis.xinfo_stream(self._k("events")) if self.redis.exists(
            self._k("events")) else None
        return str(info["last-generated-id"]) if info else "0-0"


def _translate(exc: redis.ResponseError) -> Exception:
    code, _, message = str(exc).partition(": ")
    cls = _ERRORS.get(code.split()[-1] if code else "")
    return cls(message) if cls is not None else exc
