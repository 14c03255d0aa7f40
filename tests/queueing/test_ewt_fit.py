"""Fitting the state estimator: features from the replay, the median model, an honest range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from queueing.ewt_features import FEATURES
from queueing.ewt_fit import (
    RANGE_LEVELS,
    FitError,
    collect,
    coverage_lower_bound,
    fit_state_params,
    inside,
    ratio_bins,
)
from queueing.trace import parse_trace
from queueing.wait_time import QueueSnapshot, StateEstimator, StateParams, WaitingCall


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Callers ahead (column 0) drive the wait; the other columns are noise; 6 days."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, len(FEATURES)))
    x[:, 0] = rng.integers(0, 5, n)
    y = 25.0 * (x[:, 0] + 1) * rng.exponential(1.0, n)
    days = np.sort(rng.integers(1, 7, n)).astype(float)
    return x, y, days


@pytest.fixture(scope="module")
def fitted() -> tuple[StateParams, float, np.ndarray]:
    x, y, days = _synthetic(3000, 1)
    params, level = fit_state_params(x, y, days)
    return params, level, y


def test_fit_learns_the_median_and_a_range_that_holds_on_new_data(
        fitted: tuple[StateParams, float, np.ndarray]) -> None:
    params, level, y = fitted
    assert level in RANGE_LEVELS
    fresh_x, fresh_y, _ = _synthetic(3000, 2)
    pred = np.maximum(params.floor_s, params.median.predict(fresh_x))
    mae = np.mean(np.abs(pred - fresh_y))
    oracle = np.mean(np.abs(25.0 * (fresh_x[:, 0] + 1) * np.log(2) - fresh_y))  # true medians
    assert mae < 1.03 * oracle < np.mean(np.abs(np.median(y) - fresh_y))
    hit = inside(pred, fresh_y, params.edges, params.low_ratio, params.high_ratio, params.floor_s)
    assert hit.mean() >= 0.78  # nominal 80%, on data it never saw
    assert all(lo < 1.0 < hi for lo, hi in zip(params.low_ratio, params.high_ratio))


def test_too_little_data_is_refused() -> None:
    x, y, days = _synthetic(300, 3)
    with pytest.raises(FitError, match="too little"):
        fit_state_params(x, y, days)


def test_ratio_bins_and_inside_by_hand() -> None:
    pred = np.array([10.0, 10.0, 10.0, 10.0, 10.0] * 4)
    real = np.array([5.0, 10.0, 20.0, 8.0, 12.0] * 4)
    edges, low, high = ratio_bins(pred, real, 0.0001, floor_s=5.0)
    assert len(edges) == 4 and len(low) == len(high) == 5
    assert low[-1] == pytest.approx(0.5, abs=1e-3) and high[-1] == pytest.approx(2.0, abs=1e-3)
    hit = inside(np.array([10.0, 10.0, 2.0]), np.array([4.0, 19.0, 9.0]), (), (0.5,), (2.0,), 5.0)
    assert list(hit) == [False, True, True]  # the floor lifts 2 s to 5 s: range 2.5-10


def test_coverage_lower_bound_treats_days_as_the_unit() -> None:
    days = np.repeat([1.0, 2.0, 3.0, 4.0], 100)
    steady = np.tile(np.arange(100) < 85, 4)  # 85% every day
    assert coverage_lower_bound(steady, days) == pytest.approx(0.85)
    swinging = np.concatenate([np.arange(100) < c for c in (100, 70, 100, 70)])  # 85% on average
    assert coverage_lower_bound(swinging, days) < 0.80  # not trusted to cover 80%


def test_collect_records_what_the_estimator_sees(trace_path: Path) -> None:
    calls = [c for c in parse_trace(trace_path).calls if c.day.day == 3]
    x, y, days = collect(calls, on_shift_s=1200.0)
    scored = [c for c in calls if c.scored]
    assert x.shape == (len(scored), len(FEATURES))
    assert sorted(y) == sorted(c.waited_s for c in scored) and set(days) == {3.0}
    ahead = x[:, FEATURES.index("ahead")]
    assert ahead.min() == 0 and ahead.max() > 3  # the queue builds up during the day
    assert np.median(y[ahead >= 3]) > np.median(y[ahead == 0])


def test_a_fitted_model_runs_in_the_estimator(fitted: tuple[StateParams, float, np.ndarray]) -> None:
    params = fitted[0]
    me = WaitingCall("me", "PS", 0, 0.0)
    e = StateEstimator(params).estimate(QueueSnapshot(0.0, (me,), ()), me)
    assert e.low_s <= e.expected_s <= e.high_s
