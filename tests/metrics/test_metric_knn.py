"""k-NN: transformer-ranker's published iris values, its semantics (torch cdist/topk/mode written out), the tie
rules, blocks, invariances and bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from zoorank import InputError
from zoorank import metrics as M

knn_module = importlib.import_module("zoorank.metrics.knn")


@pytest.mark.parametrize("k, expected", [(1, 0.96), (3, 0.96), (5, 0.9666666666666667), (13, 0.9666666666666667)])
@pytest.mark.parametrize("vote_ties", ["nearest", "smallest"])
def test_transformer_ranker_iris_values(k, expected, vote_ties):
    X, y = load_iris(return_X_y=True)
    assert M.compute("knn", X, y, k=k, vote_ties=vote_ties) == pytest.approx(expected, abs=1e-12)


def _torch_reference(X, y, k, regression=False):
    """The reference's computation (Euclidean cdist, self at +inf, topk smallest, mode or mean, accuracy or r)."""
    Xt = torch.tensor(X, dtype=torch.float64)
    d = torch.cdist(Xt, Xt)
    d.fill_diagonal_(float("inf"))
    idx = d.topk(k, largest=False).indices
    yt = torch.tensor(y, dtype=torch.float64)
    if regression:
        return float(torch.corrcoef(torch.stack([yt, yt[idx].mean(dim=1)]))[0, 1])
    return float((torch.mode(yt[idx], dim=1).values == yt).double().mean())


@pytest.mark.parametrize("seed, k", [(0, 1), (1, 4), (2, 10)])
def test_matches_the_reference_semantics_without_ties(seed, k):
    r = np.random.default_rng(seed)
    X, y = r.normal(size=(300, 12)), r.integers(0, 5, 300)
    X[:, 0] += y  # some signal
    assert M.compute("knn", X, y, k=k, vote_ties="smallest") == pytest.approx(_torch_reference(X, y, k), abs=1e-12)
    t = X[:, 1] + 0.3 * r.normal(size=300)
    assert M.compute("knn", X, t, k=k, regression=True) == pytest.approx(_torch_reference(X, t, k, True), rel=1e-9)


def test_brute_force_with_duplicates_and_the_documented_tie_rules():
    """Small-integer features: many exactly equal distances (exact here, rounded in the Gram expansion). Neighbours
    = sort by (distance, index); vote ties to the nearest holder of a top label."""
    r = np.random.default_rng(3)
    X, y = r.integers(-4, 5, size=(400, 3)).astype(float), r.integers(0, 3, 400)
    for k in (1, 2, 6):
        d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        nb = np.array([sorted(range(400), key=lambda j, i=i: (d[i, j], j))[:k] for i in range(400)])
        correct = 0
        for i in range(400):
            counts = np.bincount(y[nb[i]], minlength=3)
            pred = next(int(y[j]) for j in nb[i] if counts[y[j]] == counts.max())
            correct += pred == y[i]
        assert M.compute("knn", X, y, k=k) == correct / 400
        # a large offset makes the Gram expansion round differently: ties are still ties
        assert M.compute("knn", X + 1e4, y, k=k) == correct / 400


def test_blocks_give_the_same_neighbours(monkeypatch):
    r = np.random.default_rng(4)
    X = np.round(r.normal(size=(257, 5)), 1)
    whole = knn_module._neighbours(X, 7)
    monkeypatch.setattr(knn_module, "_BLOCK", 50)
    assert (knn_module._neighbours(X, 7) == whole).all()


def test_vote_ties_nearest_does_not_depend_on_class_numbering():
    r = np.random.default_rng(6)
    X, y = r.normal(size=(200, 4)), r.integers(0, 4, 200)
    perm = np.array([2, 0, 3, 1])
    assert M.compute("knn", X, perm[y], k=2) == M.compute("knn", X, y, k=2)
    assert M.compute("knn", X, y, k=2, vote_ties="smallest") != M.compute("knn", X, y, k=2)  # even k: ties matter


def test_separated_classes_score_one_and_a_shuffled_label_scores_chance():
    r = np.random.default_rng(7)
    y = np.repeat(np.arange(4), 50)
    X = r.normal(size=(200, 8)) * 0.1 + 10 * np.eye(8)[y]
    assert M.compute("knn", X, y, k=5) == 1.0
    assert abs(M.compute("knn", r.normal(size=(2000, 8)), r.integers(0, 4, 2000), k=5) - 0.25) < 0.05


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be an integer >= 1"),
    ({"k": 2.5}, "k must be an integer >= 1"),
    ({"k": True}, "k must be an integer >= 1"),
    ({"k": 10}, "k = 10 needs at least 11 samples"),
    ({"vote_ties": "random"}, "vote_ties must be"),
])
def test_bad_parameters(kwargs, message):
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    with pytest.raises(InputError, match=f"knn: {message}"):
        M.compute("knn", X, y, **kwargs)


def test_a_constant_regression_target_has_no_correlation():
    with pytest.raises(InputError, match=r"knn: target column 0 .* no variation"):
        M.compute("knn", np.random.default_rng(0).normal(size=(10, 3)), np.ones(10), regression=True)


def test_registry_lists_the_regression_metrics():
    assert {"knn", "logme"} <= set(M.available(regression=True)) < set(M.available())
    assert M.info("knn").regression and not M.info("hscore").regression
