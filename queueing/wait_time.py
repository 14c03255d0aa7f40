"""Estimated wait time (EWT): pure estimators over plain data, no I/O.

The live queue (and ``ivr bench ewt``) describes the moment of a prediction as a
:class:`QueueSnapshot` -- who is waiting, which agents are on shift and whether they
are busy -- and tells an estimator what happens through ``observe_*`` hooks (a caller
joins, starts service after waiting, ends service, hangs up). Estimators learn only
from those hooks, so they can never see the future; their learnt state is a plain
dict (``to_dict`` / ``from_dict``) the live system keeps in Redis.

Three estimators:

* :class:`AsteriskEstimator` -- app_queue's moving average of hold times,
  ``holdtime = (3*holdtime + new_hold) / 4`` at every connect, announced minus what
  the caller already waited.
* :class:`ErlangCEstimator` -- M/M/s with the staffed agents able to serve the skill
  and the recent arrival and service rates; the mean wait of a caller who waits,
  ``1 / (s*mu - lambda)``, and the exponential quantiles for the range.
* :class:`StateEstimator` -- the project's own, in :mod:`queueing.state_estimator`
  terms: queue position (priority callers who overtake included), agents able to
  serve the skill and their recent handle times, abandonment ahead, and the delay
  history (last to enter service, head of line), combined with committed weights
  and an 80% range from residual quantiles learnt on tuning data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

DEFAULT_HEAD_START_S: Mapping[int, float] = {2: 90.0}
"""Priority -> head start in seconds (the bank's trace: priority 2 jumps 1.5 minutes)."""


@dataclass(frozen=True)
class WaitingCall:
    call_id: str
    skill: str
    priority: int
    entered_at: float  # seconds, same clock as QueueSnapshot.now


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    skills: frozenset[str]
    busy_since: float | None = None  # start of the current call; None = idle (on shift)


@dataclass(frozen=True)
class QueueSnapshot:
    """What is known at ``now``: the waiting calls and the agents on shift."""

    now: float
    waiting: tuple[WaitingCall, ...]
    agents: tuple[AgentView, ...]
    head_start_s: Mapping[int, float] = field(default_factory=lambda: dict(DEFAULT_HEAD_START_S))

    def rank(self, call: WaitingCall) -> float:
        """Position key: earlier entry minus the priority's head start goes first."""
        return call.entered_at - self.head_start_s.get(call.priority, 0.0)


@dataclass(frozen=True)
class WaitEstimate:
    expected_s: float
    low_s: float  # 10th percentile: the announced 80% range is [low_s, high_s]
    high_s: float  # 90th percentile

    @staticmethod
    def point(value: float) -> "WaitEstimate":
        v = max(0.0, value)
        return WaitEstimate(v, v, v)


@runtime_checkable
class Estimator(Protocol):
    name: str

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate: ...

    def observe_arrival(self, skill: str, now: float) -> None: ...

    def observe_service_start(self, skill: str, waited_s: float, now: float) -> None: ...

    def observe_service_end(self, skill: str, handle_s: float, now: float) -> None: ...

    def observe_abandon(self, skill: str, waited_s: float, now: float) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...
