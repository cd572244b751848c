"""H-score and shrinkage H-score: conformance, brute-force pinv oracles, Ledoit-Wolf against
scikit-learn, closed forms (1-D ratio, D ≥ N − 1 gives C − 1) and degenerate input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage

from zoorank import InputError
from zoorank.metrics.hscore import hscore, reg_hscore
from zoorank.metrics.hscore import ledoit_wolf_shrinkage as lw_closed

from conformance import load

CASES = ("case0", "case1")


@pytest.fixture(scope="module")
def ref():
    return load("hscore")


@pytest.fixture(scope="module")
def ref_reg():
    return load("hscore_regularized")


@pytest.mark.parametrize("case", CASES)
def test_conformance_hscore(ref, case):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    for key in ("score", "score_tllib"):
        assert hscore(X, y) == pytest.approx(float(ref[f"{case}_{key}"]), rel=1e-8)
    assert hscore(X, y, standardize=True) == pytest.approx(
        float(ref[f"{case}_score_dbolya_standardized"]), rel=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_conformance_reg_hscore(ref_reg, case):
    X, y = ref_reg[f"{case}_X"], ref_reg[f"{case}_y"]
    assert reg_hscore(X, y) == pytest.approx(float(ref_reg[f"{case}_score"]), rel=1e-8)


# --------------------------------------------------------------------------------------------
# Brute-force oracles: the README's definitions with np.cov / pinv / sklearn's LedoitWolf
# --------------------------------------------------------------------------------------------


def _g(X, y):
    g = np.zeros_like(X)
    for c in range(int(y.max()) + 1):
        g[y == c] = X[y == c].mean(axis=0)
    return g


def oracle_h(X, y):
    return np.trace(np.linalg.pinv(np.cov(X, rowvar=False), rcond=1e-15)
                    @ np.cov(_g(X, y), rowvar=False))


def oracle_reg(X, y):
    f = X - X.mean(axis=0)
    lw = LedoitWolf(assume_centered=False).fit(f)
    a = lw.shrinkage_
    return np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15)
                    @ ((1 - a) * np.cov(_g(f, y), rowvar=False)))


def _data(n, d, c, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    X = rng.normal(size=(c, d))[y] * 0.5 + rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    return X + offset, y


@pytest.mark.parametrize(("n", "d", "c", "seed"), [(300, 20, 4, 0), (500, 64, 10, 1),
                                                    (80, 79, 3, 2)])
def test_full_rank_matches_pinv_oracle(n, d, c, seed):
    X, y = _data(n, d, c, seed, offset=5.0)
    assert hscore(X, y) == pytest.approx(oracle_h(X, y), rel=1e-8)
    assert reg_hscore(X, y) == pytest.approx(oracle_reg(X, y), rel=1e-8)


@pytest.mark.parametrize(("n", "d"), [(40, 150), (60, 59)])
def test_d_at_least_n_minus_1_gives_c_minus_1(n, d):
    """With D ≥ N − 1 the centred features span every centred direction: H = C − 1 exactly."""
    X, y = _data(n, d, 4, 3)
    assert hscore(X, y) == 3.0  # the saturated value exactly, not 3 ± ulps: saturated models tie everywhere
    rng = np.random.default_rng(0)
    for _ in range(5):  # any rescaling / rotation (other rounding) still gives exactly C − 1
        Q, _r = np.linalg.qr(rng.standard_normal((d, d)))
        assert hscore(rng.uniform(0.1, 10) * X @ Q, y) == 3.0
    # the shrinkage estimate stays well conditioned, so the D×D pinv oracle is reliable here
    assert reg_hscore(X, y) == pytest.approx(oracle_reg(X, y), rel=1e-8)


def test_one_feature_is_the_between_over_total_variance_ratio():
    x = np.array([1.0, 2.0, 3.0, 7.0, 8.0, 12.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    means = np.array([2.0, 9.0])[y]
    ratio = np.sum((means - x.mean()) ** 2) / np.sum((x - x.mean()) ** 2)  # SSB/SST
    assert ratio == pytest.approx(73.5 / 89.5, rel=1e-15)
    assert hscore(x[:, None], y) == pytest.approx(ratio, rel=1e-12)
    # one feature: sklearn's shrinkage is 0, cov_α has the 1/N normalisation
    assert reg_hscore(x[:, None], y) == pytest.approx(ratio * 6 / 5, rel=1e-12)


@pytest.mark.parametrize(("n", "d", "seed"), [(50, 1203, 0), (200, 30, 1), (30, 2100, 2)])
def test_ledoit_wolf_closed_form_matches_sklearn_blocks(n, d, seed):
    # D > 1000 exercises sklearn's block_size=1000 splitting
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d) + 2.0
    Xc = X - X.mean(axis=0)
    G = Xc @ Xc.T
    alpha, mu = lw_closed(Xc, float(np.sum(G * G)))
    assert alpha == pytest.approx(ledoit_wolf_shrinkage(X), rel=1e-10)
    assert mu == pytest.approx(np.trace(np.cov(X.T, bias=True)) / d, rel=1e-12)


def test_standardize_equals_default_when_full_rank():
    X, y = _data(200, 10, 3, 4)
    X = X * np.logspace(-2, 2, 10)
    assert hscore(X, y, standardize=True) == pytest.approx(hscore(X, y), rel=1e-7)


def test_invariances():
    X, y = _data(150, 8, 3, 5)
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    for f in (hscore, reg_hscore):
        base = f(X, y)
        for Xt in (X * 37.0, X @ Q, X + rng.normal(size=8) * 100):
            assert f(Xt, y) == pytest.approx(base, rel=1e-8)


def test_degenerate_inputs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    for f in (hscore, reg_hscore):
        assert f(np.ones((60, 5)), y) == 0.0  # cov_f = 0: pinv = 0
        assert f(np.zeros((60, 5)), y) == 0.0
        X = rng.normal(size=(60, 6))
        # a constant column and duplicated samples keep the score finite and within [0, C-1]
        for Xd in (np.c_[X, np.full(60, 5.0)], np.repeat(X[:20], 3, axis=0)):
            v = f(Xd, y)
            assert np.isfinite(v) and 0.0 <= v <= 2.0 * 60 / 59 + 1e-9
        assert np.isfinite(f(rng.normal(size=(4, 3)), np.array([0, 1, 2, 0])))
    # C close to N
    assert hscore(rng.normal(size=(21, 5)), np.arange(21) % 20) <= 19 + 1e-9


def test_bound_check_names_the_fix():
    from zoorank.metrics.hscore import _check_bound

    assert _check_bound(2.0, 2.0, "hscore") == 2.0
    with pytest.raises(InputError, match=r"hscore: .*rcond"):
        _check_bound(5.0, 2.0, "hscore")


@pytest.mark.parametrize("case", CASES)
def test_cholesky_and_eigen_paths_agree(ref, ref_reg, case, monkeypatch):
    """The well-conditioned Cholesky shortcut and the pinv-by-eigendecomposition path give the
    same numbers (forcing the eigen path by making no matrix count as well conditioned)."""
    from zoorank.metrics import _spectral

    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    fast_h, fast_r = hscore(X, y), reg_hscore(X, y)
    monkeypatch.setattr(_spectral, "WELL_CONDITIONED", 0.0)
    assert hscore(X, y) == pytest.approx(fast_h, rel=1e-11)
    assert reg_hscore(X, y) == pytest.approx(fast_r, rel=1e-11)
    assert reg_hscore(X, y) == pytest.approx(float(ref_reg[f"{case}_score"]), rel=1e-8)
    assert hscore(X, y) == pytest.approx(float(ref[f"{case}_score"]), rel=1e-8)


def test_rank_deficient_features_take_the_pinv_path():
    # rank 5 < D = 12 < N: Cholesky cannot certify S, the eigen path cuts the null space
    rng = np.random.default_rng(9)
    y = np.arange(400) % 4
    X = (rng.normal(size=(400, 5)) + np.eye(4)[y] @ rng.normal(size=(4, 5))) @ rng.normal(
        size=(5, 12))
    assert hscore(X, y) == pytest.approx(oracle_h(X, y), rel=1e-6)
    assert reg_hscore(X, y) == pytest.approx(oracle_reg(X, y), rel=1e-8)
