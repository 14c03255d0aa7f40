"""Small gradient-boosted regression trees for quantiles, fitted with numpy, kept as JSON.

The wait estimator needs the conditional *median* of a wait (what minimises the mean
absolute error) and its 10% / 90% quantiles (the announced 80% range). Friedman's
gradient boosting with the pinball (quantile) loss gives all three: each round fits a
shallow regression tree to the loss's gradient (``alpha`` where the model is below the
real wait, ``alpha - 1`` where above) and sets every leaf to the ``alpha``-quantile of
the residuals that fall in it (``alpha = 0.5``: LAD TreeBoost).

Fitting (:func:`fit_quantile`) bins every feature into at most ``max_bins`` quantile
bins and finds splits from per-bin sums, so a month of calls fits in seconds.
Prediction (:meth:`QuantileForest.predict_one`) is plain Python over nested lists --
no numpy -- because the live hold announcement asks for one caller at a time. A model
is data: :meth:`QuantileForest.to_dict` / :meth:`QuantileForest.from_dict`, never pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# A tree is a flat tuple of nodes; node i is (feature, threshold, left, right, value):
# feature < 0 marks a leaf (value used), else go left when x[feature] <= threshold.
Node = tuple[int, float, int, int, float]


@dataclass(frozen=True)
class QuantileForest:
    """``base + sum(tree(x))``: an estimate of the ``alpha`` quantile of the target."""

    alpha: float
    base: float
    trees: tuple[tuple[Node, ...], ...]
    n_features: int

    def predict_one(self, x: Sequence[float]) -> float:
        if len(x) != self.n_features:
            raise ValueError(f"the model takes {self.n_features} features, got {len(x)}")
        total = self.base
        for tree in self.trees:
            i = 0
            node = tree[0]
            while node[0] >= 0:
                i = node[2] if x[node[0]] <= node[1] else node[3]
                node = tree[i]
            total += node[4]
        return total

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Vectorised prediction for a matrix of rows (benchmarks, fitting)."""
        out = np.full(len(x), self.base)
        for tree in self.trees:
            out += _tree_predict(tree, x)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "base": self.base, "n_features": self.n_features,
                "trees": [[list(node) for node in tree] for tree in self.trees]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileForest:
        n = int(data["n_features"])
        trees = []
        for tree in data["trees"]:
            nodes = tuple((int(f), float(t), int(lo), int(hi), float(v)) for f, t, lo, hi, v in tree)
            for f, _, lo, hi, _ in nodes:
                if f >= n or (f >= 0 and not (0 < lo < len(nodes) and 0 < hi < len(nodes))):
                    raise ValueError("corrupt tree: a split points outside the tree")
            trees.append(nodes)
        return cls(float(data["alpha"]), float(data["base"]), tuple(trees), n)


def _tree_predict(tree: tuple[Node, ...], x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    node_of = np.zeros(len(x), dtype=np.int64)
    for _ in range(len(tree)):  # depth is at most the node count
        feats = np.array([tree[i][0] for i in node_of])
        inner = feats >= 0
        if not inner.any():
            break
        idx = np.nonzero(inner)[0]
        nodes = [tree[node_of[i]] for i in idx]
        go_left = x[idx, [n[0] for n in nodes]] <= np.array([n[1] for n in nodes])
        node_of[idx] = np.where(go_left, [n[2] for n in nodes], [n[3] for n in nodes])
    return np.array([tree[i][4] for i in node_of])


def _bin_edges(column: npt.NDArray[np.float64], max_bins: int) -> npt.NDArray[np.float64]:
    edges = np.unique(np.quantile(column, np.linspace(0, 1, max_bins + 1)[1:-1]))
    return np.asarray(edges, dtype=np.float64)


def fit_quantile(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], alpha: float = 0.5,
                 rounds: int = 200, depth: int = 2, learning_rate: float = 0.1,
                 min_leaf: int = 50, max_bins: int = 48) -> QuantileForest:
    """Boost ``rounds`` trees of ``depth`` for the ``alpha`` quantile of ``y`` given ``x``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha is a quantile level strictly between 0 and 1")
    if x.ndim != 2 or len(x) != len(y) or len(y) < 2 * min_leaf:
        raise ValueError(f"need a 2-D feature matrix with one row per target, at least {2 * min_leaf}")
    edges = [_bin_edges(x[:, j], max_bins) for j in range(x.shape[1])]
    binned = np.stack([np.searchsorted(e, x[:, j], side="left") for j, e in enumerate(edges)], axis=1)
    base = float(np.quantile(y, alpha))
    pred = np.full(len(y), base)
    trees = []
    for _ in range(rounds):
        resid = y - pred
        grad = np.where(resid > 0, alpha, alpha - 1.0)
        nodes: list[list[Any]] = []
        _grow(nodes, np.arange(len(y)), binned, edges, grad, resid, alpha, depth, min_leaf,
              learning_rate)
        tree = tuple((int(f), float(t), int(lo), int(hi), float(v)) for f, t, lo, hi, v in nodes)
        trees.append(tree)
        pred += _tree_predict(tree, x)
    return QuantileForest(alpha, base, tuple(trees), x.shape[1])


def _grow(nodes: list[list[Any]], rows: npt.NDArray[np.int64], binned: npt.NDArray[np.int64],
          edges: list[npt.NDArray[np.float64]], grad: npt.NDArray[np.float64],
          resid: npt.NDArray[np.float64], alpha: float, depth: int, min_leaf: int,
          rate: float) -> int:
    me = len(nodes)
    nodes.append([-1, 0.0, 0, 0, rate * float(np.quantile(resid[rows], alpha))])
    split = _best_split(rows, binned, edges, grad, min_leaf) if depth > 0 else None
    if split is None:
        return me
    feature, b = split
    left = rows[binned[rows, feature] <= b]
    right = rows[binned[rows, feature] > b]
    nodes[me][:2] = [feature, float(edges[feature][b])]
    nodes[me][2] = _grow(nodes, left, binned, edges, grad, resid, alpha, depth - 1, min_leaf, rate)
    nodes[me][3] = _grow(nodes, right, binned, edges, grad, resid, alpha, depth - 1, min_leaf, rate)
    return me


def _best_split(rows: npt.NDArray[np.int64], binned: npt.NDArray[np.int64],
                edges: list[npt.NDArray[np.float64]], grad: npt.NDArray[np.float64],
                min_leaf: int) -> tuple[int, int] | None:
    """(feature, bin) maximising the squared-gradient gain; None when no split is allowed."""
    g = grad[rows]
    total_g, total_n = float(g.sum()), len(rows)
    best, best_gain = None, 1e-9
    for j, e in enumerate(edges):
        if len(e) == 0:
            continue
        col = binned[rows, j]
        n = np.bincount(col, minlength=len(e) + 1)[:len(e)].cumsum()
        s = np.bincount(col, weights=g, minlength=len(e) + 1)[:len(e)].cumsum()
        ok = (n >= min_leaf) & (total_n - n >= min_leaf)
        if not ok.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = s ** 2 / n + (total_g - s) ** 2 / (total_n - n) - total_g ** 2 / total_n
        gain = np.where(ok, gain, -np.inf)
        b = int(np.argmax(gain))
        if gain[b] > best_gain:
            best, best_gain = (j, b), float(gain[b])
    return best
