"""SFDA: conformance, the V·Vᵀ = shrunk_Sw⁻¹ shortcut, quirks, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from zoorank.errors import InputError
from zoorank.metrics import _fisher
from zoorank.metrics.sfda import sfda, sfda_core

from conformance import load
from metric_cases import blobs, reference_shrinkage

# ----------------------------------------------------------------------------------------------
# A slow, literal re-statement of the reference semantics (per-class np.cov, 3-step power
# iteration, scipy generalised eigh with all D eigenvectors, ConfMix loop) used as an oracle.
# ----------------------------------------------------------------------------------------------


def _slow_fit(X, y, lam=None):
    C = int(y.max()) + 1
    N, D = X.shape
    priors = np.bincount(y) / N
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    Sw = sum(priors[c] * np.cov(X[y == c].T, bias=1).reshape(D, D) for c in range(C))
    if lam is None:
        lam = reference_shrinkage(Sw)
    cov = np.cov(X.T, bias=1).reshape(D, D)
    St = (1 - lam) * cov + lam * np.trace(cov) / D * np.eye(D)
    S = (1 - lam) * Sw + lam * np.trace(Sw) / D * np.eye(D)
    Sb = St - S
    w, V = linalg.eigh(Sb, S)
    V = V[:, np.argsort(w)[::-1]]
    coef = means @ V @ V.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return lam, means, coef, intercept, S


def _softmax(A):
    A = A - A.max(axis=1, keepdims=True)
    E = np.exp(A)
    return E / E.sum(axis=1, keepdims=True)


def slow_sfda(X, y, double_softmax=True):
    X = np.array(X, dtype=np.float64)
    C = int(y.max()) + 1
    lam, means, coef, b, _ = _slow_fit(X, y)
    p = _softmax(X @ coef.T + b)
    if double_softmax:
        p = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
    others = np.stack([(means.sum(0) - means[c]) / (C - 1) for c in range(C)])
    for c in range(C):
        idx = np.where(y == c)[0]
        pc = p[idx, c][:, None]
        X[idx] = pc * X[idx] + (1 - pc) * others[c]
    _, _, coef2, b2, _ = _slow_fit(X, y, lam)
    p2 = _softmax(X @ coef2.T + b2)
    return p2[np.arange(len(y)), y].mean()


def _blobs(n=120, d=6, c=3, sep=1.0, seed=0, scale=1.0):
    return blobs(n, d, c, sep=sep, seed=seed, scale=scale)


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_conformance(case):
    ref = load("sfda")
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    assert sfda(X, y) == pytest.approx(float(ref[f"{case}_score"]), rel=1e-6)


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_vvt_shortcut_matches_generalised_eigenvectors(case):
    """coef = means·V·Vᵀ (all D generalised eigenvectors) equals means·shrunk_Sw⁻¹."""
    ref = load("sfda")
    X, y = ref[f"{case}_X"].astype(np.float64), ref[f"{case}_y"]
    lam, means, coef, _, S = _slow_fit(X, y)
    C = means.shape[0]
    fast = linalg.solve(S, means.T, assume_a="pos").T
    np.testing.assert_allclose(fast, coef, rtol=1e-7, atol=1e-9 * np.abs(coef).max())
    # and the shared machinery finds the same λ and posterior
    ws = _fisher.workspace(X, y)
    fit = _fisher.fit_lda(ws.Z, ws.y, C, dim=ws.dim, start=ws.ones)
    assert fit.lam == pytest.approx(lam, rel=1e-9)
    P_fast = fit.posterior(ws.Z)
    P_slow = _softmax(X @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(fit.priors))
    np.testing.assert_allclose(P_fast, P_slow, atol=1e-9)


def test_scatter_helpers_match_numpy():
    X, y = _blobs(n=90, d=5, c=3, seed=3)
    ws = _fisher.workspace(X, y)
    counts, means = _fisher.class_means(ws.Z, ws.y, 3)
    priors = counts / counts.sum()
    Sw = _fisher.within_scatter(ws.Z, ws.y, means)
    ref_Sw = sum(priors[c] * np.cov(X[y == c].T, bias=1) for c in range(3))
    np.testing.assert_allclose(Sw, ref_Sw, atol=1e-12)
    lam = 0.3
    St = _fisher.total_scatter(ws.Z, lam)
    S = _fisher.shrink(Sw, lam)
    Sb = _fisher.sfda_between_scatter(St, S)
    B = _fisher.between_scatter(means, priors)
    np.testing.assert_allclose(Sb, (1 - lam) * B + lam * np.trace(B) / 5 * np.eye(5), atol=1e-12)
    np.testing.assert_allclose(np.cov(X.T, bias=1), ref_Sw + B, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("double_softmax", [True, False])
def test_matches_slow_reference(seed, double_softmax):
    X, y = _blobs(n=150, d=8, c=4, sep=0.6, seed=seed, scale=0.3)  # λ well above the floor
    got = sfda(X, y, double_softmax=double_softmax)
    assert got == pytest.approx(slow_sfda(X, y, double_softmax), rel=1e-9)


def test_double_softmax_changes_the_score():
    X, y = _blobs(n=150, d=8, c=4, sep=0.6, seed=2)
    assert abs(sfda(X, y) - sfda(X, y, double_softmax=False)) > 1e-4


def test_does_not_modify_input():
    X, y = _blobs(seed=4)
    X0 = X.copy()
    sfda(X, y)
    np.testing.assert_array_equal(X, X0)
    X32 = X.astype(np.float32)
    X32c = X32.copy()
    sfda(X32, y)
    np.testing.assert_array_equal(X32, X32c)


def test_float32_list_and_order_agree():
    X, y = _blobs(seed=5)
    X32 = X.astype(np.float32)
    s = sfda(X32, y)
    assert sfda(X32.astype(np.float64), y) == pytest.approx(s, rel=1e-12)
    assert sfda(X32.tolist(), list(y)) == pytest.approx(s, rel=1e-12)
    perm = np.random.default_rng(0).permutation(len(y))
    assert sfda(X32[perm], y[perm]) == pytest.approx(s, rel=1e-10)


def test_translation_invariant():
    X, y = _blobs(seed=6, sep=0.5)
    b = np.random.default_rng(1).normal(size=X.shape[1]) * 100
    assert sfda(X + b, y) == pytest.approx(sfda(X, y), rel=1e-8)


def test_fixed_shrinkage_parameter():
    X, y = _blobs(seed=7, sep=0.5)
    a, b = sfda(X, y, shrinkage=0.5), sfda(X, y, shrinkage=1e-6)
    assert 0 <= a <= 1 and 0 <= b <= 1 and a != b


def test_d_greater_than_n_reduction_is_exact():
    rng = np.random.default_rng(8)
    N, D, C = 40, 120, 4
    y = np.arange(N) % C
    X = 0.02 * (rng.normal(size=(N, D)) + 0.3 * rng.normal(size=(C, D))[y]) + 5.0
    full = sfda_core(X, y, C, reduce=False)
    red = sfda_core(X, y, C, reduce=True)
    assert 0 < full < 1
    assert red == pytest.approx(full, rel=1e-9)
    assert sfda(X, y) == pytest.approx(full, rel=1e-9)


def test_separable_and_overlapping_extremes():
    X, y = _blobs(n=200, d=4, c=2, sep=50.0, seed=9)
    assert sfda(X, y) > 0.99
    X, y = _blobs(n=400, d=4, c=4, sep=0.0, seed=9)
    assert sfda(X, y) < 0.5


# ---- degenerate input --------------------------------------------------------------------------


def test_constant_features_raise():
    y = np.arange(20) % 2
    with pytest.raises(InputError, match="sfda: the within-class scatter is zero"):
        sfda(np.ones((20, 5)), y)


def test_bad_shrinkage_and_overflow_raise():
    X, y = _blobs(seed=12)
    with pytest.raises(InputError, match=r"sfda: shrinkage must be None \(adaptive\) or in"):
        sfda(X, y, shrinkage=1.5)
    with pytest.raises(InputError, match="sfda: the within-class scatter overflows"):
        sfda(X * 1e200, y)


def test_too_few_samples_raise():
    with pytest.raises(InputError, match="sfda: needs at least 4 samples"):
        sfda(np.random.default_rng(0).normal(size=(3, 4)), [0, 1, 2])


def test_degenerate_but_legal_inputs_are_finite():
    rng = np.random.default_rng(10)
    y = np.arange(30) % 3
    cases = {
        "duplicated": np.repeat(rng.normal(size=(15, 4)), 2, axis=0),
        "d_much_larger": rng.normal(size=(30, 2000)),
        "constant_column": np.column_stack([rng.normal(size=(30, 3)), np.full(30, 7.0)]),
        "huge_offset": rng.normal(size=(30, 4)) + 1e8,
    }
    for name, X in cases.items():
        v = sfda(X, y)
        assert np.isfinite(v) and 0 <= v <= 1, name
    # C close to N: one sample in most classes
    X = rng.normal(size=(8, 3))
    v = sfda(X, [0, 1, 2, 3, 4, 5, 6, 6])
    assert np.isfinite(v)


def test_power_iteration_null_start_fallback():
    """Sw·1 = 0 (within-class deviations along (1, −1)): upstream NaN, here a finite score."""
    rng = np.random.default_rng(11)
    y = np.arange(40) % 2
    t = rng.normal(size=40)
    X = np.column_stack([t, -t]) + np.array([[0.0, 3.0], [3.0, 0.0]])[y]
    Sw = _fisher.within_scatter(X, y, _fisher.class_means(X, y, 2)[1])
    assert np.allclose(Sw @ np.ones(2), 0)
    assert _fisher.power_top_eigenvalue(Sw, np.ones(2)) == pytest.approx(
        np.linalg.eigvalsh(Sw).max(), rel=1e-6
    )
    assert np.isfinite(sfda(X, y))
