"""Boosted quantile trees: they find the conditional quantiles, and the model is plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from queueing.ewt_gbm import QuantileForest, fit_quantile


def _data(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Wait = 30 s per caller ahead, times exponential noise; a second, useless column."""
    rng = np.random.default_rng(7)
    ahead = rng.integers(0, 6, n).astype(float)
    noise = rng.random(n)
    y = 30.0 * (ahead + 1) * rng.exponential(1.0, n)
    return np.c_[ahead, noise], y


def test_median_model_recovers_the_conditional_median() -> None:
    x, y = _data()
    model = fit_quantile(x, y, alpha=0.5, rounds=150)
    for k in range(6):
        true_median = 30.0 * (k + 1) * np.log(2)  # of the exponential noise
        assert model.predict_one([float(k), 0.5]) == pytest.approx(true_median, rel=0.15)
    # absolute error of the median model beats the best constant
    assert np.mean(np.abs(model.predict(x) - y)) < np.mean(np.abs(np.median(y) - y))


def test_quantile_models_bracket_the_requested_share() -> None:
    x, y = _data()
    low = fit_quantile(x, y, alpha=0.1, rounds=150).predict(x)
    high = fit_quantile(x, y, alpha=0.9, rounds=150).predict(x)
    assert np.mean(y < low) == pytest.approx(0.1, abs=0.03)
    assert np.mean(y > high) == pytest.approx(0.1, abs=0.03)


def test_one_row_and_vectorised_predictions_agree_and_round_trip_json() -> None:
    x, y = _data(1000)
    model = fit_quantile(x, y, rounds=20, depth=3)
    clone = QuantileForest.from_dict(json.loads(json.dumps(model.to_dict())))
    rows = x[:50]
    assert [clone.predict_one(list(r)) for r in rows] == pytest.approx(list(model.predict(rows)))
    assert all(len(tree) <= 2 ** 4 - 1 for tree in model.trees)  # depth 3 at most


def test_fitting_is_deterministic() -> None:
    x, y = _data(1000)
    assert fit_quantile(x, y, rounds=10).to_dict() == fit_quantile(x, y, rounds=10).to_dict()


def test_bad_input_is_refused_with_a_reason() -> None:
    x, y = _data(1000)
    with pytest.raises(ValueError, match="quantile level"):
        fit_quantile(x, y, alpha=1.0)
    with pytest.raises(ValueError, match="one row per target"):
        fit_quantile(x[:10], y)
    model = fit_quantile(x, y, rounds=2)
    with pytest.raises(ValueError, match="2 features"):
        model.predict_one([1.0])
    broken = model.to_dict()
    broken["trees"][0][0][2] = 99  # a split pointing nowhere
    with pytest.raises(ValueError, match="corrupt"):
        QuantileForest.from_dict(broken)
