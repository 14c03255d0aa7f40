"""The desk: agents' lifecycle and live queue figures, over the store.

The JSON API and the RQ jobs call this layer; it runs one router operation per action
and hands every reservation it produces to a *dispatcher* (ring the agent, start the
reservation timer, dial a callback). Queue figures (waiting, longest wait, estimated
wait, agents available, service level, abandonment, ASA) are computed here from the
store's counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from queueing.model import Agent, AgentState, Assignment, Call
from queueing.store import QueueStore

# (queue, now) -> (expected, low, high) seconds, or None when no estimate is possible
Estimator = Callable[[str, float], "tuple[float, float, float] | None"]


class Dispatcher(Protocol):
    def __call__(self, assignment: Assignment) -> None: ...


def no_dispatch(assignment: Assignment) -> None:
    """Default: nothing rings; the agent sees the reservation in the API answer."""


@dataclass(frozen=True)
class QueueSummary:
    name: str
    waiting: int
    longest_wait_s: float
    ewt_s: float | None
    ewt_low_s: float | None
    ewt_high_s: float | None
    agents_available: int
    agents_logged_in: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None  # answered within the queue's service_level_s / answered
    service_level_s: float
    abandonment_rate: float | None  # abandoned / (answered + abandoned)
    asa_s: float | None  # average speed of answer
    avg_handle_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


class Desk:
    def __init__(self, store: QueueStore, dispatch: Dispatcher = no_dispatch,
                 estimator: Estimator | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.dispatch = dispatch
        self.estimator = estimator
        self.clock = clock

    def _out(self, *assignments: Assignment | None) -> list[Assignment]:
        done = [a for a in assignments if a is not None]
        for assignment in done:
            self.dispatch(assignment)
        return done

    # ------------------------------------------------------------------ lifecycle

    def configure_agent(self, agent_id: str, skills: Mapping[str, int], capacity: int = 1,
                        queues: Iterable[str] = ()) -> list[Assignment]:
        return self._out(self.store.upsert_agent(agent_id, skills, capacity, queues,
                                                 now=self.clock()))

    def login(self, agent_id: str) -> list[Assignment]:
        return self._out(self.store.set_state(agent_id, AgentState.AVAILABLE, now=self.clock()))

    def logout(self, agent_id: str) -> list[Assignment]:
        return self._out(self.store.set_state(agent_id, AgentState.OFFLINE, now=self.clock()))

    def set_state(self, agent_id: str, state: str, reason: str | None = None) -> list[Assignment]:
        return self._out(self.store.set_state(agent_id, state, reason, now=self.clock()))

    def accept(self, agent_id: str, call_id: str) -> list[Assignment]:
        self.store.accept(agent_id, call_id, now=self.clock())
        return []

    def decline(self, agent_id: str, call_id: str) -> list[Assignment]:
        return self._out(self.store.decline(agent_id, call_id, now=self.clock()))

    def bounce(self, call_id: str) -> list[Assignment]:
        """The agent's leg was not answered: the caller back at the head, the agent paused."""
        _status, assignment = self.store.bounce(call_id, now=self.clock())
        return self._out(assignment)

    def complete(self, agent_id: str, call_id: str,
                 wrap_up_s: float | None = None) -> list[Assignment]:
        return self._out(self.store.complete(agent_id, call_id, wrap_up_s, now=self.clock()))

    def end_wrap_up(self, agent_id: str) -> list[Assignment]:
        return self._out(self.store.end_wrap_up(agent_id, now=self.clock()))

    def tick(self) -> list[Assignment]:
        return self._out(*self.store.tick(now=self.clock()))

    # ------------------------------------------------------------------ live figures

    def summaries(self) -> list[QueueSummary]:
        now = self.clock()
        heads = self.store.line_heads()
        counters = self.store.counters()
        agents = self.store.agents()
        rules = self.store.rules()
        names = sorted(set(heads) | set(counters) | set(rules.queues))
        out = []
        for name in names:
            count, oldest = heads.get(name, (0, None))
            c = counters.get(name, {})
            answered, abandoned = c.get("answered", 0.0), c.get("abandoned", 0.0)
            estimate = self.estimator(name, now) if self.estimator and count else None
            serving = [a for a in agents if a.serves(name) and a.state != AgentState.OFFLINE]
            out.append(QueueSummary(
                name=name, waiting=count,
                longest_wait_s=round(max(0.0, now - oldest), 1) if oldest is not None else 0.0,
                ewt_s=round(estimate[0], 1) if estimate else (0.0 if count == 0 else None),
                ewt_low_s=round(estimate[1], 1) if estimate else None,
                ewt_high_s=round(estimate[2], 1) if estimate else None,
                agents_available=sum(1 for a in serving if a.state == AgentState.AVAILABLE),
                agents_logged_in=len(serving),
                offered=int(c.get("offered", 0)), answered=int(answered),
                abandoned=int(abandoned),
                service_level=_ratio(c.get("answered_in_sl", 0.0), answered),
                service_level_s=rules.for_queue(name).service_level_s,
                abandonment_rate=_ratio(abandoned, answered + abandoned),
                asa_s=_ratio(c.get("answer_wait_sum", 0.0), answered),
                avg_handle_s=_ratio(c.get("handle_sum", 0.0), c.get("completed", 0.0))))
        return out

    def queue_detail(self, name: str) -> dict[str, Any] | None:
        summary = next((s for s in self.summaries() if s.name == name), None)
        if summary is None:
            return None
        now = self.clock()
        calls = [call_view(c, now) for c in self.store.waiting(name)]
        calls.sort(key=lambda c: -c["wait_s"])
        agents = [agent_view(a, now) for a in self.store.agents() if a.serves(name)]
        return {**summary.to_dict(), "calls": calls, "agents": agents}


def call_view(call: Call, now: float) -> dict[str, Any]:
    return {"call_id": call.call_id, "status": call.status.value, "queue": call.queue,
            "wait_s": round(call.wait_s(now), 1), "requirements": dict(call.needs),
            "priority": call.priority, "callback": call.callback_number is not None,
            "agent_id": call.agent_id}


def agent_view(agent: Agent, now: float) -> dict[str, Any]:
    since = agent.state_since
    return {"agent_id": agent.agent_id, "state": agent.state.value,
            "pause_reason": agent.pause_reason, "skills": dict(agent.skills),
            "capacity": agent.capacity, "queues": list(agent.queues), "load": agent.load,
            "calls": list(agent.calls),
            "in_state_s": round(now - since, 1) if since is not None else None,
            "wrap_up_until": agent.wrap_up_until}


def assignment_view(assignment: Assignment) -> dict[str, Any]:
    return asdict(assignment)
