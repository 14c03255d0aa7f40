"""The call path's view of the router: enqueue, leave, hold announcements, metrics.

Keeps ``ivr.calls`` ignorant of the router's vocabulary; every method is a single
router operation (one Lua call) so the webhook stays fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from call_flows import actions as a
from call_flows.session import Session
from queueing.model import needs_from_skills

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


class QueueAdapter:
    def __init__(self, store: Any, estimator: EstimateFn | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.estimator = estimator
        self.clock = clock

    def enqueue(self, session: Session, action: a.Enqueue) -> None:
        _status, _assignment, resumed = self.store.enqueue(
            session.call_sid, action.queue, needs_from_skills(action.skills),
            priority=action.priority, caller=session.caller, now=self.clock())
        if resumed:
            log.info("call %s took back the place of %s", session.call_sid, resumed)

    def request_callback(self, session: Session, action: a.RequestCallback) -> None:
        """A callback asked from the flow: the call joins the line (keeping any place it
        had) and waits there as a callback."""
        self.store.enqueue(session.call_sid, str(action.skills.get("queue", "support")),
                           needs_from_skills(action.skills), priority=action.priority,
                           caller=session.caller, now=self.clock())
        self.store.request_callback(session.call_sid, action.number, now=self.clock())

    def left(self, call_sid: str, result: str) -> None:
        """Twilio's QueueResult for a caller who left the hold."""
        if result in {"hangup", "error", "system-error"}:
            self.store.abandon(call_sid, reason=result, now=self.clock())
        elif result == "leave":
            # Pressed 1 for a callback: the flow confirms the number; the place is kept
            # by the request_callback that follows.
            pass

    def estimate(self, call_sid: str) -> HoldEstimate | None:
        info = self.store.hold_info(call_sid, now=self.clock())
        if info.position <= 0:
            return None
        low = high = None
        if self.estimator is not None:
            guess = self.estimator(call_sid, self.clock())
            if guess is not None:
                _, low, high = guess
        return HoldEstimate(position=info.position, waiting=info.waiting, low_s=low,
                            high_s=high, offer_callback=info.offer_callback)

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
    agent not offline, with the skills they can serve among those waiting. Parameters
    are the ones fitted on the trace (``queueing.ewt_params``); the estimator's
    history starts empty in each process (its ``observe_*`` hooks are not yet fed
    from live events), so handle times fall back to the fitted defaults.
    """

    def __init__(self, store: Any) -> None:
        from queueing.ewt_params import STATE_PARAMS
        from queueing.wait_time import StateEstimator

        self.store = store
        self.estimator = StateEstimator(STATE_PARAMS)

    def _snapshot(self, now: float) -> tuple[Any, dict[str, Any]]:
        from queueing.wait_time import AgentView, QueueSnapshot, WaitingCall

        calls = self.store.waiting()
        keys = {c.call_id: _skill_key(c.queue, c.needs) for c in calls}
        waiting = tuple(WaitingCall(c.call_id, keys[c.call_id], c.priority, c.entered_at)
                        for c in calls)
        by_key = {keys[c.call_id]: c for c in calls}
        agents = []
        for agent in self.store.agents():
            if agent.state in ("offline", "paused"):
                continue
            skills = frozenset(k for k, c in by_key.items() if _can_serve(agent, c.queue, c.needs))
            busy = agent.state in ("busy", "reserved", "wrap_up")
            agents.append(AgentView(agent.agent_id, skills,
                                    busy_since=(agent.state_since or now) if busy else None))
        return QueueSnapshot(now=now, waiting=waiting, agents=tuple(agents)), keys

    def for_call(self, call_id: str, now: float) -> tuple[float, float, float] | None:

        snapshot, keys = self._snapshot(now)
        key = keys.get(call_id)
        if key is None:
            return None
        if not any(key in agent.skills for agent in snapshot.agents):
            return None  # nobody on shift can take it: no number is better than a made-up one
        call = next(w for w in snapshot.waiting if w.call_id == call_id)
        guess = self.estimator.estimate(snapshot, call)
        return guess.expected_s, guess.low_s, guess.high_s

    def for_queue(self, queue: str, now: float) -> tuple[float, float, float] | None:
        """What a caller joining ``queue`` now (no special skills) would be told."""
        from queueing.wait_time import WaitingCall

        snapshot, _ = self._snapshot(now)
        key = _skill_key(queue, {})
        call = WaitingCall("__new__", key, 0, now)
        agents = [a for a in self.store.agents()
                  if a.state not in ("offline", "paused") and a.serves(queue)]
        if not agents:
            return None
        snapshot = type(snapshot)(now=now, waiting=snapshot.waiting + (call,),
                                  agents=tuple(type(v)(v.agent_id, v.skills | {key},
                                                       v.busy_since) for v in snapshot.agents
                                               if any(v.agent_id == a.agent_id for a in agents)))
        guess = self.estimator.estimate(snapshot, call)
        return guess.expected_s, guess.low_s, guess.high_s
