"""Fitting the state-dependent wait estimator on a trace's tuning days (numpy, offline).

:func:`collect` replays calls in time order and records, at every queue entry, the
features :class:`~queueing.wait_time.StateEstimator` would read (so training sees
exactly what the live estimator sees: the past only) and the real wait of the served
callers who waited. :func:`fit_state_params` boosts the median model on them and
learns the announced range:

* real/predicted ratios per predicted-wait bin, taken from *out-of-fold* predictions
  (models fitted on the other half of the tuning days), because in-sample ratios are
  narrower than what unseen days bring;
* the ratios' tail level is the narrowest of :data:`RANGE_LEVELS` whose range covers
  at least :data:`TARGET_COVERAGE` of the last third of the tuning days, with 90%
  confidence, when everything (model and ratios) is fitted on the first two thirds --
  a forward check that never looks past the tuning days. The confidence bound treats
  days as the unit (coverage swings from one day to the next far more than a binomial
  count of callers suggests), so a level that only covers 80% on average is refused.

Deterministic: the same calls give the same parameters (``ivr bench ewt --tune``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from queueing.errors import QueueError
from queueing.ewt_gbm import QuantileForest, fit_quantile
from queueing.trace import Staffing, TraceCall, replay
from queueing.wait_time import (
    FeatureEstimator,
    QueueSnapshot,
    StateParams,
    WaitEstimate,
    WaitingCall,
)

Array = npt.NDArray[np.float64]
RANGE_LEVELS = (0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03)
"""Candidate lower tail levels of the real/predicted ratio (the upper is 1 - level)."""
TARGET_COVERAGE = 0.80
BINS = 5
ROUNDS, DEPTH, LEARNING_RATE, MIN_LEAF = 200, 2, 0.1, 50


class FitError(QueueError, ValueError):
    """Too little data to fit on."""


class _Recorder(FeatureEstimator):
    """Records the features at each prediction instead of predicting."""

    name = "features"

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[float, ...]] = []

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        self.rows.append(self.features(snapshot, call))
        return WaitEstimate.point(0.0)


def collect(calls: Sequence[TraceCall], on_shift_s: float,
            progress: Callable[[int, int], None] | None = None,
            staffing: Staffing = Staffing.CAUSAL) -> tuple[Array, Array, Array]:
    """(features, real waits, day of month) of the scored callers, in arrival order."""
    rec = _Recorder()
    x_rows, y, days = [], [], []
    for p in replay(calls, {"features": rec}, on_shift_s, progress, staffing):
        if p.call.scored:
            x_rows.append(rec.rows[-1])
            y.append(p.call.waited_s)
            days.append(p.call.day.day)
    return np.array(x_rows, dtype=np.float64), np.array(y, dtype=np.float64), np.array(days, dtype=np.float64)


def _median_model(x: Array, y: Array) -> QuantileForest:
    return fit_quantile(x, y, alpha=0.5, rounds=ROUNDS, depth=DEPTH,
                        learning_rate=LEARNING_RATE, min_leaf=MIN_LEAF)


def _out_of_fold(x: Array, y: Array, days: Array) -> Array:
    """Predictions for each row by a model fitted on the other half of the days."""
    unique = np.unique(days)
    out = np.zeros(len(y))
    for fold in (unique[::2], unique[1::2]):
        held = np.isin(days, fold)
        out[held] = _median_model(x[~held], y[~held]).predict(x[held])
    return out


def ratio_bins(pred: Array, real: Array, level: float,
               floor_s: float) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Bin edges (predicted-wait quintiles) and per-bin ``level`` / ``1-level`` ratios."""
    pred = np.maximum(floor_s, pred)
    edges = np.quantile(pred, np.linspace(0, 1, BINS + 1)[1:-1])
    k = np.searchsorted(edges, pred, side="right")
    ratio = real / pred
    # tied predictions can leave a bin empty: it takes the ratios of every row
    per_bin = [ratio[k == b] if (k == b).any() else ratio for b in range(BINS)]
    low = tuple(round(float(np.quantile(r, level)), 4) for r in per_bin)
    high = tuple(round(float(np.quantile(r, 1 - level)), 4) for r in per_bin)
    return tuple(round(float(e), 1) for e in edges), low, high


def inside(pred: Array, real: Array, edges: Sequence[float], low: Sequence[float],
           high: Sequence[float], floor_s: float) -> npt.NDArray[np.bool_]:
    """Whether each ``real`` falls inside the range the ratios give around ``pred``."""
    pred = np.maximum(floor_s, pred)
    k = np.searchsorted(np.array(edges), pred, side="right")
    return np.asarray((real >= pred * np.array(low)[k]) & (real <= pred * np.array(high)[k]))


def coverage_lower_bound(hit: npt.NDArray[np.bool_], days: Array, z: float = 1.2816) -> float:
    """One-sided lower confidence bound (``z`` = 1.28: 90%) of the coverage, with the
    standard error clustered by day (each day's share of hits weighted by its callers)."""
    unique = np.unique(days)
    share = np.array([hit[days == d].mean() for d in unique])
    weight = np.array([(days == d).sum() for d in unique], dtype=np.float64)
    weight /= weight.sum()
    mean = float((weight * share).sum())
    if len(unique) < 2:
        return mean
    se = float(np.sqrt((weight ** 2 * (share - mean) ** 2).sum() * len(unique) / (len(unique) - 1)))
    return mean - z * se


def choose_level(x: Array, y: Array, days: Array, floor_s: float) -> float:
    """The narrowest tail level covering :data:`TARGET_COVERAGE` (90% lower bound) of the
    last third of the days when fitted on the first two (the widest level when none does)."""
    unique = np.unique(days)
    cut = unique[max(1, (2 * len(unique)) // 3) - 1]
    early, late = days <= cut, days > cut
    if late.sum() < 2 * MIN_LEAF or len(np.unique(days[early])) < 2:
        return RANGE_LEVELS[-1]
    pred_late = _median_model(x[early], y[early]).predict(x[late])
    oof = _out_of_fold(x[early], y[early], days[early])
    for level in RANGE_LEVELS:
        edges, low, high = ratio_bins(oof, y[early], level, floor_s)
        hit = inside(pred_late, y[late], edges, low, high, floor_s)
        if coverage_lower_bound(hit, days[late]) >= TARGET_COVERAGE:
            return level
    return RANGE_LEVELS[-1]


def fit_state_params(x: Array, y: Array, days: Array, floor_s: float = 5.0,
                     progress: Callable[[str], None] | None = None) -> tuple[StateParams, float]:
    """The median model on every row, the range from out-of-fold ratios at the level
    :func:`choose_level` picks; returns the parameters and that level."""
    if len(y) < 20 * MIN_LEAF or len(np.unique(days)) < 2:
        raise FitError(f"too little to fit on: {len(y)} served callers who waited over "
                       f"{len(np.unique(days))} day(s); need {20 * MIN_LEAF} over 2 days or more")
    say = progress or (lambda _: None)
    say("median model")
    model = _median_model(x, y)
    say("out-of-fold predictions for the range")
    oof = _out_of_fold(x, y, days)
    say("forward check of the range level")
    level = choose_level(x, y, days, floor_s)
    edges, low, high = ratio_bins(oof, y, level, floor_s)
    return StateParams(model, edges, low, high, floor_s), level
