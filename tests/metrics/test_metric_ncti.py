"""NCTI: per-model parts and the pool score against the reference; rules and errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from threadpoolctl import threadpool_limits

from zoorank.errors import InputError
from zoorank.metrics._registry import compute_pool
from zoorank.metrics.ncti import (
    _nuclear_norm,
    exact_pca,
    ncti,
    ncti_parts,
    ncti_pool,
    ncti_pool_parts,
)

from conformance import load
from metric_cases import blobs

PARTS = ("all_lowfeat_nuc", "sfda_score", "log_class_pred_nuc")


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """These tests run many small LAPACK SVDs (inside sklearn's PCA/LDA). On a busy 2-core
    machine, OpenBLAS's threads turn each into a scheduler stall (100x slower); one BLAS
    thread for this module only keeps the file fast. Results do not depend on it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _blobs(n=200, d=80, c=4, sep=1.0, seed=0, scale=1.0):
    return blobs(n, d, c, sep=sep, seed=seed, scale=scale)


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_conformance_parts(case):
    ref = load("ncti")
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    parts = ncti_parts(X, y)
    for k in PARTS:
        assert parts[k] == pytest.approx(float(ref[f"{case}_{k}"]), rel=1e-6), k
    assert ncti(X, y) == pytest.approx(float(ref[f"{case}_sfda_score"]), rel=1e-6)


def test_conformance_pool():
    ref = load("ncti")
    pool = [ref[f"pool_X{i}"] for i in range(4)]
    y = ref["pool_y"]
    parts = ncti_pool_parts(pool, y)
    for k in PARTS:
        np.testing.assert_allclose(parts[k], ref[f"pool_{k}"], rtol=1e-6, err_msg=k)
    np.testing.assert_allclose(parts["score"], ref["pool_score"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ncti_pool(pool, y), ref["pool_score"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(compute_pool("ncti", pool, y), ref["pool_score"], rtol=1e-6,
                               atol=1e-12)


def test_parts_match_a_direct_sklearn_pipeline():
    """The upstream recipe spelled out with sklearn and np.linalg.norm(ord='nuc')."""
    X, y = _blobs(seed=1, sep=0.3, scale=0.05)  # small variance → eigen solver with shrinkage
    pca = PCA(n_components=64)
    Xp = pca.fit_transform(X)
    temp = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    assert temp > 1e-10
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=temp)
    z = lda.fit_transform(Xp, y)
    z = z - z.mean(axis=0)
    P = lda.predict_proba(Xp)
    parts = ncti_parts(X, y)
    assert parts["shrinkage"] == pytest.approx(temp, rel=1e-12)
    assert parts["all_lowfeat_nuc"] == pytest.approx(np.linalg.norm(z, "nuc"), rel=1e-10)
    assert parts["sfda_score"] == pytest.approx(P[np.arange(len(y)), y].mean(), rel=1e-10)
    c = np.log(sum(np.linalg.norm(P[y == k], "nuc") for k in range(4)))
    assert parts["log_class_pred_nuc"] == pytest.approx(c, rel=1e-10)


def test_private_copy_path_and_input_untouched():
    X, y = _blobs(seed=12, sep=0.5)
    X32 = X.astype(np.float32)
    X64 = X32.astype(np.float64)
    keep = X64.copy()
    a = ncti_parts(X32, y)  # float32 → private float64 copy: PCA works in place
    b = ncti_parts(X64, y)  # caller's float64 array: PCA copies
    np.testing.assert_array_equal(X64, keep)
    for k in PARTS:
        assert a[k] == pytest.approx(b[k], rel=1e-12), k


def test_nuclear_norm_helper():
    A = np.random.default_rng(2).normal(size=(300, 7))
    assert _nuclear_norm(A) == pytest.approx(np.linalg.norm(A, "nuc"), rel=1e-12)
    assert _nuclear_norm(A.T) == pytest.approx(np.linalg.norm(A, "nuc"), rel=1e-12)


def test_pool_formula_and_tie_rules():
    Xa, y = _blobs(seed=3, sep=0.4)
    Xb = Xa + np.random.default_rng(4).normal(size=Xa.shape)  # noisier model
    Xc, _ = _blobs(seed=3, sep=1.5)
    p = ncti_pool_parts([Xa, Xb, Xc], y)

    def mm(v):
        return (v - v.min()) / np.ptp(v)

    expected = mm(p["sfda_score"]) + mm(p["all_lowfeat_nuc"]) - mm(p["log_class_pred_nuc"])
    np.testing.assert_allclose(p["score"], expected, atol=1e-12)
    assert np.argmax(p["score"]) == 2  # the best separated model wins
    np.testing.assert_array_equal(ncti_pool([Xa, Xa.copy()], y), [0.0, 0.0])
    np.testing.assert_array_equal(ncti_pool([Xa], y), [0.0])
    with pytest.raises(InputError, match="ncti: features of model 1 have"):
        ncti_pool([Xa, Xa[:-1]], y)


def test_invariances_declared():
    X, y = _blobs(seed=5, sep=0.5, d=70)
    Q, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(70, 70)))
    base = ncti_parts(X, y)
    moved = ncti_parts(X @ Q + 10.0, y)
    for k in PARTS:
        assert moved[k] == pytest.approx(base[k], rel=1e-7), k


def test_exact_pca_matches_sklearn_full():
    X, _ = _blobs(n=300, d=150, c=5, seed=13)
    Xp, ev = exact_pca(X, 64)
    pca = PCA(64, svd_solver="full")
    ref = pca.fit_transform(X)
    np.testing.assert_allclose(ev, pca.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(Xp), np.abs(ref), atol=1e-8 * np.abs(ref).max())
    # N < D side (N×N Gram) and the Lanczos branch (Gram larger than DENSE_EIGH_MAX)
    Xw = np.random.default_rng(14).normal(size=(120, 400)) @ np.diag(np.linspace(3, 0.1, 400))
    Xp, ev = exact_pca(Xw, 64)
    pca = PCA(64, svd_solver="full")
    np.testing.assert_allclose(np.abs(Xp), np.abs(pca.fit_transform(Xw)), atol=1e-8)
    np.testing.assert_allclose(ev, pca.explained_variance_, rtol=1e-10)
    Xt = np.random.default_rng(15).normal(size=(1300, 1100)) @ np.diag(np.linspace(3, 0.1, 1100))
    Xp, ev = exact_pca(Xt, 16)
    pca = PCA(16, svd_solver="full")
    ref = pca.fit_transform(Xt)
    np.testing.assert_allclose(ev, pca.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(Xp), np.abs(ref), atol=1e-7)


@pytest.mark.parametrize("case", ["case0", "case1"])
def test_sklearn_pca_path_matches_reference(case):
    ref = load("ncti")
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    parts = ncti_parts(X, y, svd_solver="auto", random_state=None)  # upstream's exact call
    for k in PARTS:
        assert parts[k] == pytest.approx(float(ref[f"{case}_{k}"]), rel=1e-6), k


def test_randomized_pca_is_seeded_and_close_to_exact():
    # max(N, D) > 500 and 64 < 0.8·min(N, D): sklearn's 'auto' picks the randomized solver
    X, y = _blobs(n=520, d=100, c=5, seed=7)
    X = np.hstack([X, X @ np.random.default_rng(8).normal(size=(100, 420)) * 0.1])
    a = ncti_parts(X, y, svd_solver="auto", random_state=0)
    b = ncti_parts(X, y, svd_solver="auto", random_state=0)
    assert a == b
    exact = ncti_parts(X, y)
    for k in PARTS:
        assert a[k] == pytest.approx(exact[k], rel=1e-3), k


def test_small_inputs_reduce_components():
    X, y = _blobs(n=40, d=10, c=3, seed=9)  # min(N, D) < 64
    v = ncti(X, y)
    assert np.isfinite(v) and 0 <= v <= 1
    Xb, yb = _blobs(n=80, d=70, c=2, seed=10)  # binary: sklearn's expit branch
    assert 0.5 < ncti(Xb, yb) <= 1


def test_degenerate_inputs():
    rng = np.random.default_rng(11)
    y = np.arange(80) % 4
    with pytest.raises(InputError, match="ncti"):
        ncti(np.ones((80, 70)), y)
    dup = np.repeat(rng.normal(size=(40, 70)), 2, axis=0)
    assert np.isfinite(ncti(dup, y))
    wide = rng.normal(size=(80, 1500))
    assert np.isfinite(ncti(wide, y))
    with pytest.raises(InputError, match="ncti: needs at least"):
        ncti(rng.normal(size=(4, 70)), [0, 1, 2, 3])
