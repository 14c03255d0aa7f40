"""The wait estimators: hand-checked arithmetic, Erlang C, state and serialisation."""

from __future__ import annotations

import json
import math

import pytest

from queueing.ewt_features import FEATURES
from queueing.ewt_gbm import QuantileForest
from queueing.ewt_params import state_params
from queueing.wait_time import (
    AgentView,
    AsteriskEstimator,
    ErlangCEstimator,
    Estimator,
    History,
    QueueSnapshot,
    StateEstimator,
    StateParams,
    WaitingCall,
    erlang_c,
)


def test_asterisk_moving_average_by_hand() -> None:
    est = AsteriskEstimator()
    est.observe_service_start("PS", 40.0, now=100.0)  # (3*0 + 40)/4 = 10
    est.observe_service_start("PS", 80.0, now=200.0)  # (3*10 + 80)/4 = 27.5
    est.observe_service_start("NE", 400.0, now=210.0)  # another queue, its own average
    call = WaitingCall("c1", "PS", 0, entered_at=300.0)
    snap = QueueSnapshot(300.0, (call,), ())
    assert est.estimate(snap, call).expected_s == 27.5
    later = QueueSnapshot(310.0, (call,), ())
    assert est.estimate(later, call).expected_s == 17.5  # minus what the caller already waited
    assert est.estimate(QueueSnapshot(400.0, (call,), ()), call).expected_s == 0.0
    clone = AsteriskEstimator.from_dict(json.loads(json.dumps(est.to_dict())))
    assert clone.estimate(snap, call) == est.estimate(snap, call)


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # a^2/2! * 2/(2-1) / (1 + 1 + 1) = 1/3
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)  # textbook table value
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 0.0) == 0.0
    with pytest.raises(ValueError):
        erlang_c(0, 1.0)


def test_erlang_c_estimator_waits_one_over_s_mu_minus_lambda() -> None:
    hist = History(tau_s=1000.0)
    for _ in range(5):  # 5 arrivals "now": lambda = 5 / tau = 0.005/s
        hist.arrival("PS", 0.0)
    for _ in range(4):
        hist.service_end("PS", 100.0, 0.0)  # mean handle 100 s: mu = 0.01/s
    est = ErlangCEstimator(hist)
    call = WaitingCall("c", "PS", 0, 0.0)
    agents = (AgentView("a", frozenset({"PS"}), 0.0), AgentView("b", frozenset({"PS"}), None))
    e = est.estimate(QueueSnapshot(0.0, (call,), agents), call)
    assert e.expected_s == pytest.approx(1 / (2 * 0.01 - 0.005))
    assert e.low_s < e.expected_s < e.high_s
    assert e.high_s == pytest.approx(e.expected_s * math.log(10))


def _snap(n_ahead: int, busy: int, prio_ahead: bool = False) -> tuple[QueueSnapshot, WaitingCall]:
    me = WaitingCall("me", "PS", 0, entered_at=1000.0)
    ahead = tuple(WaitingCall(f"w{i}", "PS", 0, 1000.0 - 10 * (i + 1)) for i in range(n_ahead))
    if prio_ahead:  # came later, but its 90 s head start puts it ahead
        ahead += (WaitingCall("vip", "PS", 2, 999.0),)
    agents = tuple(AgentView(f"a{i}", frozenset({"PS", "NW"}), 900.0, "PS") for i in range(busy))
    return QueueSnapshot(1000.0, ahead + (me,), agents), me


def _history() -> History:
    h = History()
    for t in range(0, 1000, 50):
        h.arrival("PS", float(t))
        h.service_start("PS", 40.0, float(t))
        h.service_end("PS", 150.0, float(t))
    return h


def test_state_estimator_grows_with_queue_and_round_trips() -> None:
    est = StateEstimator(state_params(), _history())
    waits = [est.estimate(*_snap(n, 4)).expected_s for n in (0, 3, 8)]
    assert waits[0] < waits[1] < waits[2]
    e = est.estimate(*_snap(3, 4))
    assert e.low_s <= e.expected_s <= e.high_s and e.low_s < e.high_s
    assert isinstance(est, Estimator)
    clone = StateEstimator.from_dict(json.loads(json.dumps(est.to_dict())))
    assert clone.estimate(*_snap(3, 4)) == e


def test_a_caller_who_waited_with_nothing_moving_is_not_told_it_is_nearly_over() -> None:
    est = StateEstimator(state_params(), _history())
    snap, me = _snap(3, 4)
    fresh = est.estimate(snap, me)
    later = est.estimate(QueueSnapshot(snap.now + 240.0, snap.waiting, snap.agents), me)
    # Four minutes on, the same callers ahead and the same busy agents: the wait still to
    # come is read from the queue now, not the first estimate minus the time waited.
    assert later.expected_s >= state_params().floor_s and later.high_s > 60
    assert later.low_s <= later.expected_s <= later.high_s
    assert fresh.low_s <= fresh.expected_s <= fresh.high_s


def _constant_model(value: float, n: int = len(FEATURES)) -> QuantileForest:
    return QuantileForest(0.5, value, (), n)


def test_state_params_must_match_features() -> None:
    with pytest.raises(ValueError, match="features"):
        StateParams(_constant_model(30.0, n=3), (), (0.5,), (2.0,))
    with pytest.raises(ValueError, match="ratio per bin"):
        StateParams(_constant_model(30.0), (10.0,), (0.5,), (2.0,))
    saved = StateParams(_constant_model(30.0), (), (0.5,), (2.0,)).to_dict()
    saved["features"] = ["ahead"]
    with pytest.raises(ValueError, match="--tune"):
        StateParams.from_dict(saved)


def test_state_range_scales_the_median_by_the_bin_ratios() -> None:
    params = StateParams(_constant_model(60.0), (50.0,), (0.9, 0.5), (1.1, 2.0))
    snap, me = _snap(0, 1)
    e = StateEstimator(params).estimate(snap, me)
    assert (e.expected_s, e.low_s, e.high_s) == (60.0, 30.0, 120.0)  # 60 s is in the 2nd bin
    floor = StateEstimator(StateParams(_constant_model(-8.0), (), (0.5,), (2.0,)))
    assert floor.estimate(snap, me) == type(e)(5.0, 2.5, 10.0)  # never below floor_s


def test_history_keeps_asterisks_average_per_skill() -> None:
    h = History()
    h.service_start("PS", 40.0, 100.0)
    h.service_start("PS", 80.0, 200.0)
    assert h.holdtime["PS"] == 27.5  # the same arithmetic as AsteriskEstimator
    assert History.from_dict(json.loads(json.dumps(h.to_dict()))).holdtime == {"PS": 27.5}


def test_history_forgets() -> None:
    h = History(tau_s=100.0)
    h.arrival("PS", 0.0)
    assert h.get("PS", "arrivals", 0.0) == 1.0
    assert h.get("PS", "arrivals", 100.0) == pytest.approx(math.exp(-1))
    h.service_start("PS", 30.0, 0.0)
    h.abandon("PS", 10.0, 0.0)
    assert h.mean({"PS"}, "wait_sum", 50.0, default=0.0) == pytest.approx(30.0)
    assert h.total({"PS"}, "queue_time", 0.0) == 40.0
    assert History.from_dict(h.to_dict()).to_dict() == h.to_dict()
