"""GBC against google-research stable_transfer/transferability/gbc.py @ 1d4d2f1."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from zoorank.errors import InputError
from zoorank.metrics import info
from zoorank.metrics._top_pca import top_pca_scores
from zoorank.metrics.gbc import bhattacharyya_matrix, class_gaussians, gbc

from conformance import load

CASES = ("case0", "case1")
# The reference does all its math in TF float32; we see ≤ 1.5e-6 relative.
RTOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    return load("gbc")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("gaussian_type", "key"), [("spherical", "score"),
                                                    ("diagonal", "score_diagonal")])
@pytest.mark.parametrize("float32", [True, False])
def test_conformance(ref, case, gaussian_type, key, float32):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    value = gbc(X, y, gaussian_type=gaussian_type, float32=float32)
    assert value == pytest.approx(float(ref[f"{case}_{key}"]), rel=RTOL)


def test_default_is_spherical_and_unordered_pairs_halve(ref):
    X, y = ref["case1_X"], ref["case1_y"]
    full = gbc(X, y)
    assert full == gbc(X, y, gaussian_type="spherical")
    assert gbc(X, y, unordered_pairs=True) == pytest.approx(full / 2, rel=1e-14)


@pytest.mark.parametrize("shape", [(80, 20), (30, 50)])
def test_exact_pca_matches_sklearn_full_including_signs(shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape) @ np.diag(np.linspace(3, 0.5, shape[1])) + 4.0
    k = min(shape) - 3
    expected = PCA(k, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(top_pca_scores(X, k, "test"), expected, rtol=1e-8, atol=1e-10)


def test_null_pca_components_are_exactly_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 20))  # rank 3
    Z = top_pca_scores(X, 8, "test")
    assert np.all(Z[:, 3:] == 0.0) and np.all(Z[:, :3].std(axis=0) > 0.1)


def _pairwise_loop(means, var, spherical):
    """Upstream's per-pair loop, written out from the README formula."""
    C = means.shape[0]
    total = 0.0
    for i in range(C):
        for j in range(C):
            if i == j:
                continue
            s1, s2 = (var[i].mean(), var[j].mean()) if spherical else (var[i], var[j])
            avg = (s1 + s2) / 2
            first = np.sum((means[i] - means[j]) ** 2 / avg) / 8
            second = np.sum(np.log(avg)) - 0.5 * np.sum(np.log(s1)) - 0.5 * np.sum(np.log(s2))
            total += np.exp(-(first + 0.5 * second))
    return -total


@pytest.mark.parametrize("spherical", [True, False])
def test_vectorised_pairs_equal_the_pair_loop(spherical):
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(90, 7)) * rng.uniform(0.01, 2, size=7)
    y = np.arange(90) % 6
    Z += rng.normal(size=(6, 7))[y]
    means, var = class_gaussians(Z, y, 6)
    coeff = np.exp(-bhattacharyya_matrix(means, var, spherical))
    np.fill_diagonal(coeff, 0.0)
    assert -coeff.sum() == pytest.approx(_pairwise_loop(means, var, spherical), rel=1e-13)


def test_hand_computed_two_classes():
    """Class A: (±1, 0), (0, ±2); class B: A + (3, 0). Per-class variances (0.5, 2), means 3
    apart along x. Spherical σ = 1.25: D_B = ⅛·9/1.25 = 0.9 (log terms cancel); diagonal:
    D_B = ⅛·9/0.5 = 2.25. Ordered pairs count twice. PCA (k = 2) only rotates/centres."""
    A = np.array([[1.0, 0], [-1, 0], [0, 2], [0, -2]])
    X = np.vstack([A, A + np.array([3.0, 0.0])])
    y = np.repeat([0, 1], 4)
    assert gbc(X, y) == pytest.approx(-2 * np.exp(-0.9), rel=1e-6)
    assert gbc(X, y, gaussian_type="diagonal") == pytest.approx(-2 * np.exp(-2.25), rel=1e-6)


def test_variance_floor_and_constant_features():
    X = np.ones((12, 5))
    y = np.arange(12) % 3
    # every D_B = 0 → GBC = −C·(C−1)
    assert gbc(X, y) == -6.0
    assert gbc(X, y, gaussian_type="diagonal") == -6.0


@pytest.mark.parametrize("shape", [(40, 10), (30, 100), (70, 63)])
def test_fewer_than_64_dims_or_samples_use_min_n_d(shape):
    """Upstream needs min(N, D) ≥ 64; we reduce to min(64, N, D) components."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=shape)
    y = np.arange(shape[0]) % 4
    k = min(shape)
    assert gbc(X, y) == gbc(X, y, n_components=k)
    assert np.isfinite(gbc(X, y, gaussian_type="diagonal"))


@pytest.mark.parametrize("kind", ["duplicated", "singleton_class", "c_close_to_n", "huge"])
def test_degenerate_inputs_are_finite(kind):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(12, 6)), np.arange(12) % 3
    if kind == "duplicated":
        X = np.repeat(X[:3], 4, axis=0)
    elif kind == "singleton_class":
        y = np.r_[np.zeros(11, int), 1]
    elif kind == "c_close_to_n":
        y = np.r_[np.arange(11), 0]
    else:
        X = X * 1e9
    for gaussian_type in ("spherical", "diagonal"):
        value = gbc(X, y, gaussian_type=gaussian_type)
        assert np.isfinite(value) and value <= 0


def test_rotation_and_translation_invariance():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 10)) * np.linspace(2, 0.3, 10)
    y = np.arange(120) % 4
    X += rng.normal(size=(4, 10))[y]
    Q = ortho_group.rvs(10, random_state=6)
    base = gbc(X, y, float32=False)
    assert gbc(X @ Q, y, float32=False) == pytest.approx(base, rel=1e-9)
    assert gbc(X + 5.0, y, float32=False) == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize(("kwargs", "match"), [({"gaussian_type": "full"}, "gaussian_type"),
                                               ({"n_components": 0}, "n_components")])
def test_bad_parameters(kwargs, match):
    X, y = np.random.default_rng(0).normal(size=(12, 6)), np.arange(12) % 3
    with pytest.raises(InputError, match=match):
        gbc(X, y, **kwargs)


def test_registry_entry():
    entry = info("gbc")
    assert not entry.stochastic and entry.invariances == frozenset({"rotation", "translation"})
