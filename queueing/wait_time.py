"""Estimated wait time (EWT): pure estimators over plain data, no I/O.

The live queue (and ``ivr bench ewt``) describes the moment of a prediction as a
:class:`QueueSnapshot` -- who is waiting, which agents are on shift and whether they
are busy -- and tells an estimator what happens through ``observe_*`` hooks (a caller
joins, starts service after waiting, ends service, hangs up). Estimators learn only
from those hooks, so they can never see the future; their learnt state is a plain
dict (``to_dict`` / ``from_dict``). Live, the hooks are fed from the router's event
stream (``ivr.queue_adapter.LiveEstimator``).

Three estimators:

* :class:`AsteriskEstimator` -- app_queue's moving average of hold times,
  ``holdtime = (3*holdtime + new_hold) / 4`` at every connect, announced minus what
  the caller already waited.
* :class:`ErlangCEstimator` -- M/M/s with the staffed agents able to serve the skill
  and the recent arrival and service rates; the mean wait of a caller who waits,
  ``1 / (s*mu - lambda)``, and the exponential quantiles for the range.
* :class:`StateEstimator` -- the project's own: queue position (priority callers who
  overtake included), the agents able to serve the skill (who just freed up, who is
  busy since when) and the delay history (last to enter service, recent waits),
  combined by boosted trees for the median (:mod:`queueing.ewt_features`,
  :mod:`queueing.ewt_gbm`, committed model in :mod:`queueing.ewt_params`) and an 80%
  range from real/predicted quantiles learnt on tuning data.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from queueing.ewt_features import FEATURES, features, pool
from queueing.ewt_gbm import QuantileForest

SHORT_TAU_S = 300.0
"""Memory of the state estimator's short history (recent waits, calls ended)."""

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
    serving: str | None = None  # skill of the current call, when busy and known
    idle_since: float | None = None  # end of the last call, when idle and known


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
    def point(value: float) -> WaitEstimate:
        v = max(0.0, value)
        return WaitEstimate(v, v, v)


@runtime_checkable
class Estimator(Protocol):
    name: str

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate: ...

    def observe_arrival(self, skill: str, now: float, priority: int = 0) -> None: ...

    def observe_service_start(self, skill: str, waited_s: float, now: float) -> None: ...

    def observe_service_end(self, skill: str, handle_s: float, now: float) -> None: ...

    def observe_abandon(self, skill: str, waited_s: float, now: float) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...


class _Decayed:
    """A sum that forgets exponentially with time constant ``tau`` seconds."""

    __slots__ = ("at", "tau", "value")

    def __init__(self, tau: float, value: float = 0.0, at: float = 0.0) -> None:
        self.tau, self.value, self.at = tau, value, at

    def get(self, now: float) -> float:
        return self.value * math.exp(-max(0.0, now - self.at) / self.tau)

    def add(self, amount: float, now: float) -> None:
        self.value = self.get(now) + amount
        self.at = max(self.at, now)

    def dump(self) -> list[float]:
        return [self.value, self.at]


class History:
    """What happened recently, per skill, as exponentially decayed sums.

    ``tau_s`` is the memory (seconds); arrival rates are decayed counts / ``tau_s``,
    handle times and waits are decayed sums / decayed counts, the abandonment rate is
    abandonments per second spent waiting (the patience hazard, censored data MLE).
    """

    KEYS = ("arrivals", "prio_arrivals", "handle_sum", "handle_n", "wait_sum", "wait_n",
            "abandons", "queue_time")

    def __init__(self, tau_s: float = 1800.0) -> None:
        self.tau_s = tau_s
        self.sums: dict[str, dict[str, _Decayed]] = {}
        self.last_wait: dict[str, tuple[float, float]] = {}  # skill -> (waited, at)
        self.holdtime: dict[str, float] = {}  # skill -> Asterisk's (3*old + new)/4 average

    def _sum(self, skill: str, key: str) -> _Decayed:
        per = self.sums.setdefault(skill, {})
        if key not in per:
            per[key] = _Decayed(self.tau_s)
        return per[key]

    def get(self, skill: str, key: str, now: float) -> float:
        per = self.sums.get(skill)
        return per[key].get(now) if per and key in per else 0.0

    def total(self, skills: frozenset[str] | set[str], key: str, now: float) -> float:
        return sum(self.get(s, key, now) for s in sorted(skills))  # fixed order: same float sum every run

    def arrival(self, skill: str, now: float, priority: int = 0) -> None:
        self._sum(skill, "arrivals").add(1.0, now)
        if priority > 0:
            self._sum(skill, "prio_arrivals").add(1.0, now)

    def service_start(self, skill: str, waited_s: float, now: float) -> None:
        self._sum(skill, "wait_sum").add(waited_s, now)
        self._sum(skill, "wait_n").add(1.0, now)
        self._sum(skill, "queue_time").add(waited_s, now)
        self.last_wait[skill] = (waited_s, now)
        self.holdtime[skill] = (3.0 * self.holdtime.get(skill, 0.0) + waited_s) / 4.0

    def service_end(self, skill: str, handle_s: float, now: float) -> None:
        self._sum(skill, "handle_sum").add(handle_s, now)
        self._sum(skill, "handle_n").add(1.0, now)

    def abandon(self, skill: str, waited_s: float, now: float) -> None:
        self._sum(skill, "abandons").add(1.0, now)
        self._sum(skill, "queue_time").add(waited_s, now)

    def mean(self, skills: frozenset[str] | set[str], key: str, now: float,
             default: float) -> float:
        n = self.total(skills, key.replace("sum", "n"), now)
        return self.total(skills, key, now) / n if n > 1e-6 else default

    def to_dict(self) -> dict[str, Any]:
        return {"tau_s": self.tau_s,
                "sums": {s: {k: d.dump() for k, d in per.items()} for s, per in self.sums.items()},
                "last_wait": {s: list(v) for s, v in self.last_wait.items()},
                "holdtime": dict(self.holdtime)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        h = cls(float(data["tau_s"]))
        for skill, per in data.get("sums", {}).items():
            h.sums[skill] = {k: _Decayed(h.tau_s, float(v[0]), float(v[1])) for k, v in per.items()}
        h.last_wait = {s: (float(v[0]), float(v[1])) for s, v in data.get("last_wait", {}).items()}
        h.holdtime = {s: float(v) for s, v in data.get("holdtime", {}).items()}
        return h


class OnlineEstimator(abc.ABC):
    """Base: learns from the ``observe_*`` hooks into a :class:`History`; each estimator
    supplies ``estimate``."""

    name = "base"

    def __init__(self, history: History | None = None) -> None:
        self.history = history or History()

    @abc.abstractmethod
    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        """The wait ``call`` should be told, from what is known at ``snapshot.now``."""

    def observe_arrival(self, skill: str, now: float, priority: int = 0) -> None:
        self.history.arrival(skill, now, priority)

    def observe_service_start(self, skill: str, waited_s: float, now: float) -> None:
        self.history.service_start(skill, waited_s, now)

    def observe_service_end(self, skill: str, handle_s: float, now: float) -> None:
        self.history.service_end(skill, handle_s, now)

    def observe_abandon(self, skill: str, waited_s: float, now: float) -> None:
        self.history.abandon(skill, waited_s, now)

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history.to_dict()}


class AsteriskEstimator(OnlineEstimator):
    """app_queue: per queue (skill) ``holdtime = (3*holdtime + hold)/4`` at each connect.

    The announcement is the average minus what the caller already waited (never
    negative); Asterisk gives no range, so the range is the point itself.
    """

    name = "asterisk"

    def __init__(self, holdtime: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.holdtime: dict[str, float] = dict(holdtime or {})

    def observe_service_start(self, skill: str, waited_s: float, now: float) -> None:
        old = self.holdtime.get(skill, 0.0)
        self.holdtime[skill] = (3.0 * old + waited_s) / 4.0

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        waited = max(0.0, snapshot.now - call.entered_at)
        return WaitEstimate.point(self.holdtime.get(call.skill, 0.0) - waited)

    def to_dict(self) -> dict[str, Any]:
        return {"holdtime": dict(self.holdtime)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AsteriskEstimator:
        return cls({k: float(v) for k, v in data.get("holdtime", {}).items()})


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arriving caller waits in M/M/s (``offered_load`` = lambda/mu)."""
    if servers <= 0:
        raise ValueError("Erlang C needs at least one server")
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    inv_b = 1.0  # 1 / Erlang B, by the stable recursion
    for k in range(1, servers + 1):
        inv_b = 1.0 + inv_b * k / offered_load
    b = 1.0 / inv_b
    rho = offered_load / servers
    return b / (1.0 - rho + rho * b)


class ErlangCEstimator(OnlineEstimator):
    """M/M/s over the pool of agents on shift able to serve the skill.

    lambda = recent arrivals of every skill the pool serves, 1/mu = their recent mean
    handle time, s = agents on shift in the pool. Every scored caller waits, so the
    announcement is the mean wait of a caller who waits, ``1/(s*mu - lambda)``, with
    the exponential's 10%/90% quantiles as range. When the pool is overloaded
    (lambda >= s*mu) Erlang C has no answer: the queue-length formula
    ``(position+1)/(s*mu)`` stands in.
    """

    name = "erlang_c"

    def __init__(self, history: History | None = None, default_handle_s: float = 180.0) -> None:
        super().__init__(history)
        self.default_handle_s = default_handle_s

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        now = snapshot.now
        agents, skills = pool(snapshot, call.skill)
        s = max(1, len(agents))
        lam = self.history.total(skills, "arrivals", now) / self.history.tau_s
        aht = self.history.mean(skills, "handle_sum", now, self.default_handle_s)
        rate = s / aht - lam
        waited = max(0.0, now - call.entered_at)
        if rate <= 1e-9 or erlang_c(s, lam * aht) >= 1.0:
            ahead = sum(1 for w in snapshot.waiting if w.call_id != call.call_id
                        and w.skill in skills and snapshot.rank(w) <= snapshot.rank(call))
            mean = (ahead + 1) * aht / s
            return WaitEstimate(max(0.0, mean - waited), max(0.0, 0.5 * mean - waited),
                                max(0.0, 1.8 * mean - waited))
        mean = 1.0 / rate  # memoryless: what is left does not depend on the wait so far
        return WaitEstimate(mean, mean * -math.log(0.9), mean * -math.log(0.1))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErlangCEstimator:
        return cls(History.from_dict(data["history"]))


@dataclass(frozen=True)
class StateParams:
    """The committed model of :class:`StateEstimator` (``ivr bench ewt --tune``)."""

    median: QuantileForest  # boosted trees for the median wait over ewt_features.FEATURES
    edges: tuple[float, ...]  # predicted-wait bin edges (seconds), ascending
    low_ratio: tuple[float, ...]  # per bin (len(edges)+1): low quantile of real/predicted
    high_ratio: tuple[float, ...]  # per bin: high quantile of real/predicted
    floor_s: float = 5.0

    def __post_init__(self) -> None:
        if self.median.n_features != len(FEATURES):
            raise ValueError(f"StateParams needs a model over {len(FEATURES)} features "
                             f"({', '.join(FEATURES)}), got {self.median.n_features}")
        if not len(self.low_ratio) == len(self.high_ratio) == len(self.edges) + 1:
            raise ValueError("StateParams needs one low and one high ratio per bin (edges + 1)")

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "median": self.median.to_dict(),
                "edges": list(self.edges), "low_ratio": list(self.low_ratio),
                "high_ratio": list(self.high_ratio), "floor_s": self.floor_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StateParams:
        if list(d.get("features", FEATURES)) != list(FEATURES):
            raise ValueError("the saved model was fitted on other features; re-run "
                             "`ivr bench ewt --tune --save-model FILE`")
        return cls(QuantileForest.from_dict(d["median"]), tuple(map(float, d["edges"])),
                   tuple(map(float, d["low_ratio"])), tuple(map(float, d["high_ratio"])),
                   float(d.get("floor_s", 5.0)))


class FeatureEstimator(OnlineEstimator):
    """Base of estimators that read :func:`queueing.ewt_features.features`: keeps, beside
    the base class's half-hour ``history``, the five-minute ``short`` memory."""

    def __init__(self, history: History | None = None, short: History | None = None) -> None:
        super().__init__(history)
        self.short = short or History(SHORT_TAU_S)

    def features(self, snapshot: QueueSnapshot, call: WaitingCall) -> tuple[float, ...]:
        return features(snapshot, call, self.history, self.short)

    def observe_arrival(self, skill: str, now: float, priority: int = 0) -> None:
        super().observe_arrival(skill, now, priority)
        self.short.arrival(skill, now, priority)

    def observe_service_start(self, skill: str, waited_s: float, now: float) -> None:
        super().observe_service_start(skill, waited_s, now)
        self.short.service_start(skill, waited_s, now)

    def observe_service_end(self, skill: str, handle_s: float, now: float) -> None:
        super().observe_service_end(skill, handle_s, now)
        self.short.service_end(skill, handle_s, now)

    def observe_abandon(self, skill: str, waited_s: float, now: float) -> None:
        super().observe_abandon(skill, waited_s, now)
        self.short.abandon(skill, waited_s, now)


class StateEstimator(FeatureEstimator):
    """The project's estimator: the queue's state and its recent history, combined.

    The median wait comes from boosted trees (:mod:`queueing.ewt_gbm`) over
    :func:`queueing.ewt_features.features` -- queue ahead with overtaking priority
    callers, the pool of agents sharing the skill, who just freed up or started, and
    the delay history. The 80% range scales the median by the real/predicted quantiles
    seen at that level on the tuning days.
    """

    name = "state"

    def __init__(self, params: StateParams, history: History | None = None,
                 short: History | None = None) -> None:
        super().__init__(history, short)
        self.params = params

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        """The wait from ``snapshot.now``. The model reads the queue as it is now (who is
        ahead, which agents are busy), so its answer is already the wait still to come:
        the time the caller has waited is not taken off again."""
        p = self.params
        total = max(p.floor_s, p.median.predict_one(self.features(snapshot, call)))
        k = sum(1 for e in p.edges if total >= e)
        return WaitEstimate(total, total * p.low_ratio[k], total * p.high_ratio[k])

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "history": self.history.to_dict(),
                "short": self.short.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StateEstimator:
        return cls(StateParams.from_dict(data["params"]), History.from_dict(data["history"]),
                   History.from_dict(data["short"]) if "short" in data else None)
