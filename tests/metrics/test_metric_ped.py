"""PED: conformance, the vectorised class motion against a literal port, rules and errors."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank.errors import InputError
from zoorank.metrics._registry import compute
from zoorank.metrics.ped import ped, ped_move
from zoorank.metrics.sfda import sfda

from conformance import load


def _slow_move(X, y, G, time_step=0.1, nsigma=0.6, exit_ratio=0.5, constant=1.0, steps=6,
               eps=1e-3):
    """Literal restatement of the reference loop: standardise, per-class mean/var, a C×C×D
    tensor of pairwise pushes, un-standardise, every step from the current features."""
    X = np.array(X, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    C = int(y.max()) + 1
    smean, sstd = G.mean(axis=0), np.maximum(G.std(axis=0), eps)
    first = None
    kept = 0
    for step in range(steps):
        Xs = (X - smean) / sstd
        means = np.stack([Xs[y == c].mean(axis=0) for c in range(C)])
        radius = np.sqrt(np.stack([Xs[y == c].var(axis=0) for c in range(C)]).sum(axis=1))
        push = np.zeros((C, C, X.shape[1]))
        for i in range(C):
            for j in range(i + 1, C):
                diff = means[j] - means[i]
                d = np.linalg.norm(diff)
                F = max(abs(nsigma) * (radius[i] + radius[j]) - d, 0.0)
                push[i, j] = -diff / d * min(0.5 * time_step**2 * constant * F, F)
        push = push - push.transpose(1, 0, 2)
        total = push.sum(axis=1)
        change = np.abs(total).sum()
        if step == 0:
            first = change
        if not change / first > exit_ratio:
            break
        X = (Xs + total[y]) * sstd + smean
        kept += 1
    return X, kept


def _task(n=200, d=6, c=4, sep=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    X = rng.normal(size=(c, d))[y] * sep + rng.normal(size=(n, d)) + 2.0
    G = rng.normal(size=(300, d)) * 1.5 + 1.0
    return X, y, G


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_conformance(case):
    ref = load("ped")
    X, y, G = ref[f"{case}_X"], ref[f"{case}_y"], ref[f"{case}_general_X"]
    assert ped(X, y, general_features=G) == pytest.approx(float(ref[f"{case}_score"]), rel=1e-6)
    assert compute("ped", X, y, general_features=G) == pytest.approx(
        float(ref[f"{case}_score"]), rel=1e-6
    )


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_motion_matches_literal_port(case):
    ref = load("ped")
    X, y, G = ref[f"{case}_X"], ref[f"{case}_y"], ref[f"{case}_general_X"]
    C = int(y.max()) + 1
    fast, kept = ped_move(X.astype(np.float64), y, C, G.astype(np.float64))
    slow, kept_slow = _slow_move(X, y, G)
    assert kept == kept_slow
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10 * np.abs(slow).max())


@pytest.mark.parametrize("params", [
    dict(nsigma=2.0),
    dict(nsigma=0.3, exit_ratio=0.9),
    dict(time_step=1.5, constant=2.0),  # ½t²·k·F > F: the min(·, F) cap is active
    dict(steps=2),
])
def test_motion_parameters_match_literal_port(params):
    X, y, G = _task(sep=0.7, seed=1)
    steps = params.pop("steps", 6)
    fast, kept = ped_move(X, y, 4, G, max_steps=steps, **params)
    slow, kept_slow = _slow_move(X, y, G, steps=steps, **params)
    assert kept == kept_slow
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10)


def test_exit_rule_counts_steps():
    X, y, G = _task(sep=0.7, seed=2)
    _, kept_all = ped_move(X, y, 4, G, exit_ratio=-1.0)  # never exits: max_steps
    assert kept_all == 6
    _, kept_none = ped_move(X, y, 4, G, exit_ratio=1.0)  # ratio 1 of the first step ≤ 1: none
    assert kept_none == 0


def test_no_overlap_leaves_features_and_equals_sfda():
    rng = np.random.default_rng(3)
    y = np.arange(60) % 3
    X = 0.01 * rng.normal(size=(60, 4)) + 100.0 * np.eye(3, 4)[y]
    G = rng.normal(size=(50, 4))
    moved, kept = ped_move(X, y, 3, G)
    assert kept == 0
    np.testing.assert_array_equal(moved, X)
    assert ped(X, y, general_features=G) == pytest.approx(sfda(X, y), rel=1e-12)
    assert ped(X, y, general_features=G, max_steps=0) == pytest.approx(sfda(X, y), rel=1e-12)


def test_motion_separates_overlapping_classes():
    X, y, G = _task(sep=0.3, seed=4)
    _, kept = ped_move(X, y, 4, G)
    assert kept >= 1
    assert ped(X, y, general_features=G) > sfda(X, y) - 1e-12


def test_requires_general_features():
    X, y, G = _task()
    with pytest.raises(InputError, match="ped: needs general_features="):
        ped(X, y)
    with pytest.raises(InputError, match="ped: general_features have 5 dimensions"):
        ped(X, y, general_features=G[:, :5])
    with pytest.raises(InputError, match="general_features"):
        ped(X, y, general_features=np.full((10, 6), np.nan))


def test_does_not_modify_input():
    X, y, G = _task(seed=5)
    X0, G0 = X.copy(), G.copy()
    ped(X, y, general_features=G)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(G, G0)


def test_degenerate_inputs_finite():
    rng = np.random.default_rng(6)
    y = np.arange(40) % 4
    # two classes with identical means (d = 0: no direction) and overlapping radii
    base = rng.normal(size=(40, 5))
    base -= np.stack([base[y == c].mean(axis=0) for c in range(4)])[y]
    X = base + np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0.]])[y]
    v = ped(X, y, general_features=rng.normal(size=(30, 5)))
    assert np.isfinite(v) and 0 <= v <= 1
    # constant general features (std floored at eps) and a single general row
    assert np.isfinite(ped(X, y, general_features=np.ones((30, 5))))
    assert np.isfinite(ped(X, y, general_features=np.ones((1, 5))))
    # D >> N
    Xw = rng.normal(size=(40, 500))
    assert np.isfinite(ped(Xw, y, general_features=rng.normal(size=(20, 500))))
    # constant features: SFDA's rule (zero within-class scatter)
    with pytest.raises(InputError, match="ped: the within-class scatter is zero"):
        ped(np.ones((40, 5)), y, general_features=rng.normal(size=(30, 5)))
