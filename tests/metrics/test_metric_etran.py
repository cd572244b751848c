"""ETran: energy and LDA parts, the upstream eigh quirk, the pool score."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from scipy.special import logsumexp

from zoorank.errors import InputError
from zoorank.metrics._registry import compute_pool
from zoorank.metrics.etran import energy, etran, etran_pool, etran_pool_parts

from conformance import load
from metric_cases import blobs, reference_shrinkage


def _blobs(n=120, d=6, c=3, sep=1.0, seed=0):
    return blobs(n, d, c, sep=sep, seed=seed)


def _upstream_lda_slow(X, y, corrected=False):
    """The reference LDA_Score semantics, literally: SFDA scatter matrices, then
    np.linalg.eigh(inv(shrunk_Sw) @ Sb) (lower triangle only) or, corrected, scipy's
    generalised eigh; coef = means·V·Vᵀ; plain softmax; mean posterior of the true class."""
    X = np.asarray(X, dtype=np.float64)
    C = int(y.max()) + 1
    N, D = X.shape
    priors = np.bincount(y) / N
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    Sw = sum(priors[c] * np.cov(X[y == c].T, bias=1) for c in range(C))
    lam = reference_shrinkage(Sw)
    cov = np.cov(X.T, bias=1)
    St = (1 - lam) * cov + lam * np.trace(cov) / D * np.eye(D)
    S = (1 - lam) * Sw + lam * np.trace(Sw) / D * np.eye(D)
    Sb = St - S
    if corrected:
        w, V = linalg.eigh(Sb, S)
    else:
        w, V = np.linalg.eigh(np.linalg.inv(S) @ Sb)
    V = V[:, np.argsort(w)[::-1]]
    coef = means @ V @ V.T
    logits = X @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    return P[np.arange(N), y].mean(), V


# ---- conformance -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_conformance_parts(case):
    ref = load("etran")
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    assert energy(X) == pytest.approx(float(ref[f"{case}_energy"]), rel=1e-10)
    assert etran(X, y) == pytest.approx(float(ref[f"{case}_lda"]), rel=1e-6)


def test_conformance_pool():
    ref = load("etran")
    pool = [ref[f"pool_X{i}"] for i in range(4)]
    y = ref["pool_y"]
    parts = etran_pool_parts(pool, y)
    np.testing.assert_allclose(parts["energy"], ref["pool_energy"], rtol=1e-10)
    np.testing.assert_allclose(parts["lda"], ref["pool_lda"], rtol=1e-6)
    np.testing.assert_allclose(parts["score"], ref["pool_score"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(etran_pool(pool, y), ref["pool_score"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(compute_pool("etran", pool, y), ref["pool_score"], rtol=1e-6,
                               atol=1e-12)
    # per-model pool parts are the single-model functions
    np.testing.assert_allclose([energy(x) for x in pool], ref["pool_energy"], rtol=1e-10)
    np.testing.assert_allclose([etran(x, y) for x in pool], ref["pool_lda"], rtol=1e-6)


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_upstream_eigenvectors_are_orthonormal_so_coef_is_means(case):
    """The quirk our shortcut relies on: eigh of the non-symmetric inv(S)·Sb returns an
    orthonormal V, so V·Vᵀ = I and coef = means."""
    ref = load("etran")
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    slow, V = _upstream_lda_slow(X, y)
    np.testing.assert_allclose(V @ V.T, np.eye(V.shape[0]), atol=1e-12)
    assert slow == pytest.approx(float(ref[f"{case}_lda"]), rel=1e-9)
    assert etran(X, y) == pytest.approx(slow, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_corrected_matches_generalised_eigenvectors(seed):
    X, y = _blobs(n=150, d=8, c=4, sep=0.4, seed=seed)
    X = 0.3 * X  # keeps λ above its floor
    slow, _ = _upstream_lda_slow(X, y, corrected=True)
    assert etran(X, y, corrected=True) == pytest.approx(slow, rel=1e-9)
    assert etran(X, y) != pytest.approx(slow, rel=1e-3)


def test_lda_is_nearest_mean_softmax_by_hand():
    X = np.array([[0.0], [1.0], [3.0], [4.0]])
    y = np.array([0, 0, 1, 1])
    # means 0.5, 3.5; priors ½; p(c|x) ∝ exp(−½(x − μ_c)²)
    logit = -0.5 * (X[:, 0:1] - np.array([[0.5, 3.5]])) ** 2
    P = np.exp(logit) / np.exp(logit).sum(axis=1, keepdims=True)
    assert etran(X, y) == pytest.approx(P[np.arange(4), y].mean(), rel=1e-12)


# ---- energy ------------------------------------------------------------------------------------


def test_energy_selection_rule():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 7))
    e = np.sort(logsumexp(X, axis=1))
    assert energy(X) == pytest.approx(e[:5].mean(), rel=1e-12)  # ⌊5·1000/1000⌋ = 5
    assert energy(X, percent=1.0) == pytest.approx(e[:10].mean(), rel=1e-12)
    assert energy(X, percent=0.59) == pytest.approx(e[:5].mean(), rel=1e-12)  # ⌊10·0.59⌋ = 5
    assert energy(X, tail="top") == pytest.approx(e[-5:].mean(), rel=1e-12)
    # N < 200: upstream selects nothing (NaN); we keep the lowest sample
    assert energy(X[:150]) == pytest.approx(np.sort(logsumexp(X[:150], axis=1))[0], rel=1e-12)


def test_energy_on_logits_and_label_free():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(400, 10)) * 3
    e = np.sort(logsumexp(logits, axis=1))
    assert energy(logits, None) == pytest.approx(e[:2].mean(), rel=1e-12)
    assert np.isfinite(energy(np.full((50, 3), 1e6)))  # stable logsumexp
    with pytest.raises(InputError, match="energy: tail"):
        energy(logits, tail="bot")
    with pytest.raises(InputError, match="energy: percent"):
        energy(logits, percent=0)


# ---- invariances and degenerate input ---------------------------------------------------------


def test_lda_rotation_translation_invariant():
    X, y = _blobs(seed=5, sep=0.5)
    Q, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(6, 6)))
    base = etran(X, y)
    assert etran(X @ Q + 50.0, y) == pytest.approx(base, rel=1e-9)
    assert etran(2.0 * X, y) != pytest.approx(base, rel=1e-3)  # not scale invariant


def test_degenerate_inputs():
    rng = np.random.default_rng(7)
    y = np.arange(30) % 3
    # constant features: prior-only posterior, Σ π_c²
    assert etran(np.ones((30, 4)), y) == pytest.approx(1 / 3, rel=1e-12)
    for X in (np.repeat(rng.normal(size=(15, 4)), 2, axis=0), rng.normal(size=(30, 3000))):
        assert np.isfinite(etran(X, y))
        assert np.isfinite(etran(X, y, corrected=True))
    with pytest.raises(InputError, match="etran: the within-class scatter is zero"):
        etran(np.ones((30, 4)), y, corrected=True)
    with pytest.raises(InputError, match="etran"):
        etran(rng.normal(size=(3, 4)), [0, 1, 2])


def test_pool_tie_rules():
    X, y = _blobs(n=300, seed=9)
    # identical models: both components tie → every model 0
    np.testing.assert_array_equal(etran_pool([X, X.copy()], y), [0.0, 0.0])
    np.testing.assert_array_equal(etran_pool([X], y), [0.0])
    # a translated copy: the LDA part ties (translation invariant, up to rounding) and
    # contributes 0; energy rises by exactly 1, so the copy gets the full energy weight
    np.testing.assert_allclose(etran_pool([X, X + 1.0], y), [0.0, 0.15], atol=1e-12)
    # general case: the weighted sum of the two min-max scaled parts
    s = etran_pool([X, X[:, ::-1] * 3.0, X * 0.2], y)
    parts = etran_pool_parts([X, X[:, ::-1] * 3.0, X * 0.2], y)
    lda_scaled = (parts["lda"] - parts["lda"].min()) / np.ptp(parts["lda"])
    energy_scaled = (parts["energy"] - parts["energy"].min()) / np.ptp(parts["energy"])
    np.testing.assert_allclose(s, 0.15 * energy_scaled + 0.85 * lda_scaled, atol=1e-12)
    with pytest.raises(InputError, match="etran: features of model 1 have"):
        etran_pool([X, X[:-1]], y)
    with pytest.raises(InputError, match="etran: the pool needs"):
        etran_pool([], y)


def test_huge_features_no_warnings():
    X, y = _blobs(seed=10)
    assert np.isfinite(energy(X * 1e300))
    with pytest.raises(InputError, match="etran"):
        etran(X * 1e300, y)


def test_energy_does_not_modify_input():
    X = np.random.default_rng(11).normal(size=(300, 5))
    X0 = X.copy()
    energy(X)
    etran_pool([X, X * 2], np.arange(300) % 3)
    np.testing.assert_array_equal(X, X0)
    X32 = X.astype(np.float32)
    assert energy(X32) == pytest.approx(energy(X32.astype(np.float64)), rel=1e-12)


@pytest.mark.parametrize("corrected", [False, True])
def test_lda_input_untouched_and_owned_copy_path_agrees(corrected):
    X, y = _blobs(seed=12, sep=0.5)
    X64 = (0.3 * X).astype(np.float32).astype(np.float64)  # exactly representable in float32
    keep = X64.copy()
    a = etran(X64, y, corrected=corrected)
    np.testing.assert_array_equal(X64, keep)
    b = etran(X64.astype(np.float32), y, corrected=corrected)
    assert b == pytest.approx(a, rel=1e-12)  # float32 input: private copy, centred in place
