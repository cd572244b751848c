"""Fennec's FDA score: closed forms, the projection's normalisation, a slow scipy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from zoorank.errors import InputError
from zoorank.metrics.etran import etran
from zoorank.metrics.fda import fda, fda_projection

from metric_cases import reference_shrinkage


def _blobs(n=200, d=5, c=3, sep=1.0, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    X = (rng.normal(size=(c, d))[y] * sep + rng.normal(size=(n, d)) @ rng.normal(size=(d, d)))
    return X * scale, y


def _scatter(X, y):
    C = int(y.max()) + 1
    N, D = X.shape
    pri = np.bincount(y) / N
    M = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    Sw = sum(pri[c] * np.cov(X[y == c].T, bias=1).reshape(D, D) for c in range(C))
    mu = pri @ M
    Sb = sum(pri[c] * np.outer(M[c] - mu, M[c] - mu) for c in range(C))
    return pri, M, Sw, Sb


def slow_fda(X, y, shrinkage=None, reduction="mean"):
    """Independent oracle: scipy.linalg.eigh(S_B, S_W), top C−1, literal eq. (2)-(3)."""
    X = np.asarray(X, dtype=np.float64)
    C = int(y.max()) + 1
    D = X.shape[1]
    pri, M, Sw, Sb = _scatter(X, y)
    lam = reference_shrinkage(Sw) if shrinkage is None else shrinkage
    Sw = (1 - lam) * Sw + lam * np.trace(Sw) / D * np.eye(D)
    w, V = linalg.eigh(Sb, Sw)  # scipy normalises Vᵀ·S_W·V = I
    U = V[:, np.argsort(w)[::-1][: min(C - 1, D)]]
    f, m = X @ U, M @ U  # uncentred, as written in the paper
    logits = f @ m.T - 0.5 * (m * m).sum(axis=1) + np.log(pri)
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    p = P[np.arange(len(y)), y]
    return p.mean() if reduction == "mean" else p.sum(), lam, np.sort(w)[::-1][: U.shape[1]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])  # λ from 0.5 down to the 1e-10 floor
def test_matches_slow_scipy_oracle(seed, scale):
    X, y = _blobs(seed=seed, sep=0.8, scale=scale, c=4, d=6)
    ref, lam, ev = slow_fda(X, y)
    assert fda(X, y) == pytest.approx(ref, rel=1e-8)
    proj = fda_projection(X, y)
    assert proj.shrinkage == pytest.approx(lam, rel=1e-9)
    np.testing.assert_allclose(proj.eigenvalues, ev, rtol=1e-8, atol=1e-12 * ev.max())


def test_projection_normalisation_and_eigen_equation():
    X, y = _blobs(seed=3, c=5, d=8, sep=0.7, scale=0.4)
    proj = fda_projection(X, y)
    _, _, Sw, Sb = _scatter(X, y)
    lam = proj.shrinkage
    S = (1 - lam) * Sw + lam * np.trace(Sw) / 8 * np.eye(8)
    U = proj.U
    assert U.shape == (8, 4)
    np.testing.assert_allclose(U.T @ S @ U, np.eye(4), atol=1e-10)  # ⇒ Σ = I when projected
    np.testing.assert_allclose(Sb @ U, S @ U * proj.eigenvalues, atol=1e-10)
    assert np.all(np.diff(proj.eigenvalues) <= 1e-12)


def test_reduction_sum_is_eq3():
    X, y = _blobs(seed=4)
    assert fda(X, y, reduction="sum") == pytest.approx(len(y) * fda(X, y), rel=1e-12)
    assert fda(X, y, reduction="sum") == pytest.approx(slow_fda(X, y, reduction="sum")[0],
                                                       rel=1e-8)
    with pytest.raises(InputError, match="fda: reduction"):
        fda(X, y, reduction="max")


def test_two_well_separated_classes_score_one():
    rng = np.random.default_rng(5)
    y = np.arange(100) % 2
    X = rng.normal(size=(100, 3)) + 20.0 * np.array([[0, 0, 0], [1, 1, 1.0]])[y]
    assert fda(X, y) > 0.999


def test_identical_class_distributions_give_the_prior():
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1, 2], [1000, 500, 500])
    X = rng.normal(size=(2000, 3))
    prior_of_true = (0.5**2 + 0.25**2 + 0.25**2)  # mean over samples of π_{y_i} = Σ π_c²
    assert fda(X, y) == pytest.approx(prior_of_true, abs=0.01)


def test_affine_invariance_without_shrinkage():
    """With shrinkage=0 and full-rank S_W, FDA is invariant to any invertible affine map:
    S_W → AᵀS_WA, S_B → AᵀS_BA, U → A⁻¹U, so the projected data do not change."""
    X, y = _blobs(seed=7, c=4, d=6, sep=0.6)
    rng = np.random.default_rng(8)
    A = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    b = rng.normal(size=6) * 50
    base = fda(X, y, shrinkage=0.0)
    assert fda(X @ A + b, y, shrinkage=0.0) == pytest.approx(base, rel=1e-8)
    assert base == pytest.approx(slow_fda(X, y, shrinkage=0.0)[0], rel=1e-8)


def test_default_shrinkage_translation_exact_scale_not():
    X, y = _blobs(seed=9, c=4, d=6, sep=0.6, scale=0.2)
    base = fda(X, y)
    assert fda(X + 1e3, y) == pytest.approx(base, rel=1e-9)  # declared invariance
    assert fda(X * 5.0, y) != pytest.approx(base, rel=1e-4)  # λ depends on the scale


def test_equals_regularised_lda_posterior():
    """All k ≥ rank(S_B) eigenvectors are kept, so U·Uᵀ(μ_c − μ) = S_W⁻¹(μ_c − μ): FDA's
    posterior is the regularised-LDA posterior (ETran's corrected LDA)."""
    X, y = _blobs(seed=10, c=6, d=9, sep=0.5, scale=0.3)
    assert fda(X, y) == pytest.approx(etran(X, y, corrected=True), rel=1e-10)


def test_d_greater_than_n():
    rng = np.random.default_rng(11)
    N, D, C = 50, 300, 5
    y = np.arange(N) % C
    X = rng.normal(size=(N, D)) + 0.3 * rng.normal(size=(C, D))[y]
    v = fda(X, y)
    assert 0 <= v <= 1
    # a fixed, non-negligible shrinkage keeps the oracle well conditioned in R^D
    assert fda(X, y, shrinkage=0.5) == pytest.approx(slow_fda(X, y, shrinkage=0.5)[0], rel=1e-8)
    proj = fda_projection(X, y, shrinkage=0.5)
    _, _, Sw, _ = _scatter(X, y)
    S = 0.5 * Sw + 0.5 * np.trace(Sw) / D * np.eye(D)
    np.testing.assert_allclose(proj.U.T @ S @ proj.U, np.eye(C - 1), atol=1e-9)
    more_classes_than_dims, yy = _blobs(n=60, d=2, c=6, seed=12)
    assert fda_projection(more_classes_than_dims, yy).U.shape == (2, 2)  # k = min(C−1, D)


def test_degenerate_inputs():
    rng = np.random.default_rng(13)
    y = np.arange(30) % 3
    with pytest.raises(InputError, match="fda: the within-class scatter is zero"):
        fda(np.ones((30, 4)), y)
    with pytest.raises(InputError, match="fda: the within-class scatter is singular"):
        fda(np.column_stack([rng.normal(size=30), np.zeros(30)]), y, shrinkage=0.0)
    for X in (np.repeat(rng.normal(size=(15, 4)), 2, axis=0),
              rng.normal(size=(30, 4)) + 1e9,
              np.column_stack([rng.normal(size=(30, 3)), np.full(30, 2.0)])):
        v = fda(X, y)
        assert np.isfinite(v) and 0 <= v <= 1
    assert np.isfinite(fda(rng.normal(size=(4, 3)), [0, 1, 2, 2]))


def test_huge_features_raise_cleanly():
    X, y = _blobs(seed=14)
    with pytest.raises(InputError, match="fda: the within-class scatter overflows"):
        fda(X * 1e200, y)


def test_input_untouched_and_owned_copy_path_agrees():
    X, y = _blobs(seed=15, sep=0.5, scale=0.3)
    X64 = X.astype(np.float32).astype(np.float64)
    keep = X64.copy()
    a = fda(X64, y)  # caller's array: centred copy
    np.testing.assert_array_equal(X64, keep)
    assert fda(X64.astype(np.float32), y) == pytest.approx(a, rel=1e-12)  # private copy, in place
