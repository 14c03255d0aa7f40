"""The call path's view of the router: enqueue, leave, hold announcements, metrics.

Keeps ``ivr.calls`` ignorant of the router's vocabulary. Enqueueing and leaving are one
router operation (one Lua call) each; a hold announcement's estimate reads the call's
place, the live estimator's cached snapshot and who is signed in (a few round trips,
once per announcement period per caller).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from call_flows import actions as a
from call_flows.session import Session
from ivr.bridge import claim_lost_put_through, put_through_in_router
from queueing.model import Assignment, CallStatus, needs_from_skills

log = logging.getLogger(__name__)

# (call_id, now) -> (expected_s, low_s, high_s) or None
EstimateFn = Callable[[str, float], "tuple[float, float, float] | None"]


@dataclass(frozen=True)
class HoldEstimate:
    position: int
    waiting: int
    low_s: float | None
    high_s: float | None
    offer_callback: bool
    staffed: bool = True  # some signed-in agent (not offline) could take this call
    offer_voicemail: bool = False  # aged into the queue's ``offer_voicemail`` step


class QueueAdapter:
    """What a call's webhooks ask of the router (``ivr.calls.CallService.queue``)."""

    def __init__(self, store: Any, estimator: EstimateFn | None = None,
                 clock: Callable[[], float] = time.time,
                 dispatch: Callable[[Assignment], None] | None = None) -> None:
        self.store = store
        self.estimator = estimator
        self.clock = clock
        # Every reservation the router makes goes here (its timer; dialling a callback):
        # ``ivr.app`` sets the RQ dispatcher once the job queue exists.
        self.dispatch = dispatch
        # Queues ivr.bridge.rebridge for a call (``ivr.app`` sets it): a call still
        # holding although the router has put it through to its agent.
        self.rebridge: Callable[[str], None] | None = None

    def _send(self, assignment: Assignment | None) -> None:
        if assignment is None:
            return
        if self.dispatch is None:
            log.warning("reservation %s of call %s not dispatched: no dispatcher; the "
                        "router's tick picks it up when it lapses", assignment.reservation_id,
                        assignment.call_id)
            return
        self.dispatch(assignment)

    def enqueue(self, session: Session, action: a.Enqueue) -> None:
        _status, assignment, resumed = self.store.enqueue(
            session.call_sid, action.queue, needs_from_skills(action.skills),
            priority=action.priority, caller=session.caller, now=self.clock())
        if resumed:
            log.info("call %s took back the place of %s", session.call_sid, resumed)
        self._send(assignment)

    def request_callback(self, session: Session, action: a.RequestCallback) -> None:
        """A callback asked from the flow (a menu, or the hold's key 1): one atomic step
        puts the call in line as a callback (keeping any place it had); an agent free
        now is reserved at once and the customer is dialled."""
        lost = None
        call = self.store.call(session.call_sid)
        if put_through_in_router(call):
            # put through to an agent, yet holding and asking: a lost put-through (its
            # claim taken here, so no recovery rings the agent while the answer is undone)
            lost = claim_lost_put_through(self.store, call)
            if lost is None:
                # a put-through of this call is running (or died moments ago): it may yet
                # ring the agent for them; if the caller hangs up unanswered, the callback
                # is booked then (ivr.bridge.call_ended)
                self.store.note(session.call_sid, callback_wish=action.number,
                                callback_line=session.line)
                log.info("call %s asked for a callback while being put through: booked "
                         "if it ends unanswered", session.call_sid)
                return
        try:
            _status, assignment, resumed = self.store.enqueue_callback(
                session.call_sid, str(action.skills.get("queue", "support")), action.number,
                needs_from_skills({k: v for k, v in action.skills.items() if k != "queue"}),
                priority=action.priority,
                caller=session.caller, now=self.clock(), line=session.line,
                lost=lost is not None)
        finally:
            if lost is not None:
                self.store.release(lost)
        if resumed:
            log.info("callback %s took back the place of %s", session.call_sid, resumed)
        self._send(assignment)

    def left(self, call_sid: str, result: str) -> None:
        """Twilio's QueueResult for a caller who left the hold."""
        if result in {"hangup", "error", "system-error"}:
            # the agent this frees may take the next caller at once
            self._send(self.store.abandon(call_sid, reason=result, now=self.clock()))
        elif result == "leave":
            # Pressed 1 for a callback: the flow confirms the number; the place is kept
            # by the request_callback that follows.
            pass

    def estimate(self, call_sid: str) -> HoldEstimate | None:
        info = self.store.hold_info(call_sid, now=self.clock())
        if info.status == CallStatus.BRIDGED:  # yet holding: see ivr.bridge.put_through_again
            if self.rebridge is not None:
                self.rebridge(call_sid)
            return None
        if info.position <= 0:
            return None
        low = high = None
        if self.estimator is not None:
            guess = self.estimator(call_sid, self.clock())
            if guess is not None:
                _, low, high = guess
        # The live estimator answers only when a working agent can take the call: with an
        # estimate there is no need to read the agents a second time.
        staffed = low is not None or self.staffed(call_sid)
        return HoldEstimate(position=info.position, waiting=info.waiting, low_s=low,
                            high_s=high, offer_callback=info.offer_callback, staffed=staffed,
                            offer_voicemail=info.offer_voicemail)

    def staffed(self, call_sid: str) -> bool:
        """Whether any agent who is signed in (available, busy, wrapping up or paused)
        could take the call: when none is, the caller is told so, not kept guessing."""
        call = self.store.call(call_sid)
        if call is None:
            return True
        return any(agent.state != "offline" and _can_serve(agent, call.queue, call.needs)
                   for agent in self.store.agents())

    def export_metrics(self, registry: CollectorRegistry) -> None:
        waiting = Gauge("ivr_queue_waiting", "calls waiting", ["queue"], registry=registry)
        try:
            counts: dict[str, int] = {}
            for call in self.store.waiting():
                counts[call.queue] = counts.get(call.queue, 0) + 1
            for queue, count in counts.items():
                waiting.labels(queue=queue).set(count)
        except Exception:  # metrics must never fail the scrape
            log.debug("queue metrics unavailable", exc_info=True)


def _skill_key(queue: str, needs: Mapping[str, int]) -> str:
    return queue + "|" + ",".join(f"{k}>={v}" for k, v in sorted(needs.items()))


def _can_serve(agent: Any, queue: str, needs: Mapping[str, int]) -> bool:
    return agent.serves(queue) and all(agent.skills.get(k, 0) >= v for k, v in needs.items())


class LiveEstimator:
    """The project's state-dependent estimator over the router's live state.

    The snapshot holds every waiting call (its skill = queue + requirements) and every
    agent logged in (not offline), with the skills they can serve among those waiting --
    the live counterpart of the replay's agents on shift (``queueing.trace.Staffing``;
    the model was fitted with ``causal`` staffing, which on the bank's trace counts
    nearly the same agents as the data README's login presence: 7.9 vs 8.1 per pool).
    An agent ringing or talking (reserved, busy) is busy since that state began; one
    wrapping up, available or paused is idle since their last call ended -- in the trace
    an agent on a break or in after-call work is exactly an idle agent on shift who does
    not take the next caller, so paused agents count as idle, never as absent. A call
    gets no estimate when no agent able to serve it is available, busy or wrapping up.
    Parameters are the committed ones (:func:`queueing.ewt_params.state_params`).

    History comes from the router's event stream (``enqueued``, ``bridged``,
    ``abandoned``, ``completed``), read without blocking before each estimate. The
    stream is shared, so every web process learns the same history from the same
    events; each keeps its copy in memory and, when it starts, reads what the stream
    still holds (its last 10,000 events). The snapshot (every waiting call and agent,
    O(waiting)) is cached for ``cache_s`` per process, so a burst of hold announcements
    costs one read of the router's state per second.
    """

    SYNC_BATCH = 1000
    MEMO_LIMIT = 50_000  # calls remembered (skill, entry, answer) between their events

    def __init__(self, store: Any, params: Any = None, cache_s: float = 1.0) -> None:
        from queueing.ewt_params import state_params
        from queueing.wait_time import StateEstimator

        self.store = store
        self.estimator = StateEstimator(params if params is not None else state_params())
        self.cache_s = cache_s
        self._cached: tuple[float, Any, dict[str, str], list[Any]] | None = None
        self._last_event = "0-0"
        # call -> (skill key, priority, entered, answered): what its later events need
        self._memo: dict[str, tuple[str, int, float, float | None]] = {}
        # Web threads share this estimator: one at a time reads events and the snapshot,
        # or the same events would be learnt twice.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ history

    def sync(self) -> int:
        """Feed the estimator the router events it has not seen; returns how many."""
        seen = 0
        while True:
            batch = self.store.events(after=self._last_event, block_ms=None, count=self.SYNC_BATCH)
            if not batch:
                return seen
            self._remember([f.get("call", "") for _, f in batch])
            for event_id, fields in batch:
                self._apply(fields)
                self._last_event = event_id
            seen += len(batch)
            if len(batch) < self.SYNC_BATCH:
                return seen

    def _remember(self, call_ids: list[str]) -> None:
        if len(self._memo) > self.MEMO_LIMIT:
            self._memo.clear()  # mostly calls long gone; the others are looked up again
        unknown = sorted({c for c in call_ids if c and c not in self._memo})
        if not unknown:
            return
        for call in self.store.calls(unknown):
            self._memo[call.call_id] = (_skill_key(call.queue, call.needs), call.priority,
                                        call.entered_at, None)

    def _apply(self, fields: Mapping[str, str]) -> None:
        kind, call_id = fields.get("type"), fields.get("call", "")
        known = self._memo.get(call_id)
        if known is None or kind is None:
            return  # an agent event, or a call the router no longer holds
        key, priority, entered, answered = known
        at = float(fields.get("at", 0.0))
        est = self.estimator
        if kind == "enqueued":
            est.observe_arrival(key, at, priority)
        elif kind == "bridged":
            est.observe_service_start(key, max(0.0, at - entered), at)
            self._memo[call_id] = (key, priority, entered, at)
        elif kind in ("abandoned", "voicemail"):  # both gave up waiting
            est.observe_abandon(key, float(fields.get("wait_s", at - entered)), at)
            self._memo.pop(call_id, None)
        elif kind == "requeued":  # an answer undone (the agent's phone never picked up)
            self._memo[call_id] = (key, priority, entered, None)
        elif kind == "completed":
            if answered is not None:
                est.observe_service_end(key, max(0.0, at - answered), at)
            self._memo.pop(call_id, None)

    # ------------------------------------------------------------------ snapshot

    def _snapshot(self, now: float, fresh: bool = False) -> tuple[Any, dict[str, str]]:
        if not fresh and self._cached is not None and 0.0 <= now - self._cached[0] < self.cache_s:
            return self._cached[1], self._cached[2]
        return self._read(now)

    def _read(self, now: float) -> tuple[Any, dict[str, str]]:
        from queueing.wait_time import AgentView, QueueSnapshot, WaitingCall

        calls = self.store.waiting()
        keys = {c.call_id: _skill_key(c.queue, c.needs) for c in calls}
        waiting = tuple(WaitingCall(c.call_id, keys[c.call_id], c.priority, c.entered_at)
                        for c in calls)
        by_key = {keys[c.call_id]: c for c in calls}
        agents = []
        raw_agents = self.store.agents()
        for agent in raw_agents:
            if agent.state == "offline":
                continue
            skills = frozenset(k for k, c in by_key.items() if _can_serve(agent, c.queue, c.needs))
            since = agent.state_since or now
            if agent.state in ("busy", "reserved"):
                agents.append(AgentView(agent.agent_id, skills, busy_since=since))
            else:  # wrapping up, available or paused: idle since the last call ended
                freed = since if agent.state == "wrap_up" else (agent.idle_since or since)
                agents.append(AgentView(agent.agent_id, skills, idle_since=freed))
        snapshot = QueueSnapshot(now=now, waiting=waiting, agents=tuple(agents))
        self._cached = (now, snapshot, keys, raw_agents)
        return snapshot, keys

    def for_call(self, call_id: str, now: float) -> tuple[float, float, float] | None:
        with self._lock:
            return self._for_call(call_id, now)

    def for_queue(self, queue: str, now: float) -> tuple[float, float, float] | None:
        """What a caller joining ``queue`` now (no special skills) would be told."""
        with self._lock:
            return self._for_queue(queue, now)

    def _for_call(self, call_id: str, now: float) -> tuple[float, float, float] | None:
        self.sync()
        snapshot, keys = self._snapshot(now)
        if call_id not in keys:
            snapshot, keys = self._snapshot(now, fresh=True)  # joined within the cache period
        key = keys.get(call_id)
        if key is None:
            return None
        assert self._cached is not None  # just filled
        working = {a.agent_id for a in self._cached[3] if a.state not in ("offline", "paused")}
        if not any(key in v.skills for v in snapshot.agents if v.agent_id in working):
            return None  # nobody working can take it: no number is better than a made-up one
        call = next(w for w in snapshot.waiting if w.call_id == call_id)
        guess = self.estimator.estimate(replace(snapshot, now=now), call)
        return guess.expected_s, guess.low_s, guess.high_s

    def _for_queue(self, queue: str, now: float) -> tuple[float, float, float] | None:
        from queueing.wait_time import WaitingCall

        self.sync()
        snapshot, _ = self._snapshot(now)
        assert self._cached is not None  # just filled
        key = _skill_key(queue, {})
        call = WaitingCall("__new__", key, 0, now)
        if not any(a.state not in ("offline", "paused") and a.serves(queue)
                   for a in self._cached[3]):
            return None
        serving = {a.agent_id for a in self._cached[3] if a.state != "offline" and a.serves(queue)}
        views = tuple(replace(v, skills=v.skills | {key}) for v in snapshot.agents
                      if v.agent_id in serving)
        guess = self.estimator.estimate(
            replace(snapshot, now=now, waiting=snapshot.waiting + (call,), agents=views), call)
        return guess.expected_s, guess.low_s, guess.high_s
