"""TransRate: conformance (tllib form and the official Long-Kai pipeline), brute-force D×D
slogdet / SVD oracles on both sides of the Sylvester identity, a 1-D closed form, degenerate
input."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import InputError
from zoorank.metrics.transrate import transrate

from conformance import load

CASES = ("case0", "case1")


@pytest.fixture(scope="module")
def ref():
    return load("transrate")


@pytest.mark.parametrize("case", CASES)
def test_conformance(ref, case):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    assert transrate(X, y) == pytest.approx(float(ref[f"{case}_score"]), rel=1e-8)
    assert transrate(X, y, variant="official") == pytest.approx(
        float(ref[f"{case}_score_official_eps1e-4"]), rel=1e-8)


def oracle_tllib(X, y, eps=1e-4):
    Z = X - X.mean(axis=0)

    def rate(A):
        n, d = A.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + A.T @ A / (n * eps))[1]

    C = int(y.max()) + 1
    return rate(Z) - sum(rate(Z[y == c]) for c in range(C)) / C


def oracle_official(X, y, eps=1e-4):
    Z = X - X.mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n = Z.shape[0]
    ZZ = Z.T @ Z / n
    eig = np.linalg.svd(ZZ, compute_uv=False)
    rank = np.linalg.matrix_rank(ZZ)
    rz = np.sum(np.log(1 + eig / eps)) / rank
    rzc = 0.0
    for c in range(int(y.max()) + 1):
        Zc = Z[y == c]
        ec = np.linalg.svd(Zc.T @ Zc / len(Zc), compute_uv=False)
        rzc += len(Zc) / n * np.sum(np.log(1 + ec / eps)) / rank
    return rz / 2 - rzc / 2


def _data(n, d, c, seed, sizes=None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c if sizes is None else np.repeat(np.arange(c), sizes)
    rng.shuffle(y)
    X = rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)) * rng.uniform(0.3, 2, size=d) + 3.0
    return X, y


@pytest.mark.parametrize(("n", "d", "c", "sizes", "seed"), [
    (200, 20, 4, None, 0),                  # every class n_c > D: D×D Grams
    (120, 50, 3, [10, 30, 80], 1),          # mixed: n_c < D and n_c > D
    (40, 90, 4, None, 2),                   # D > N: the N×N side everywhere
])
@pytest.mark.parametrize("eps", [1e-4, 1e-2])
def test_matches_bruteforce_on_both_sides(n, d, c, sizes, seed, eps):
    X, y = _data(n, d, c, seed, sizes)
    assert transrate(X, y, eps=eps) == pytest.approx(oracle_tllib(X, y, eps), rel=1e-9)
    assert transrate(X, y, eps=eps, variant="official") == pytest.approx(
        oracle_official(X, y, eps), rel=1e-8)


def test_one_feature_closed_form():
    # D = 1: R(z) = ½·log(1 + Σz²/(n·eps)); classes are not re-centred, the mean is unweighted
    x = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    y = np.array([0, 0, 1, 1, 1])
    eps = 0.5
    z = x - 3.0
    expected = 0.5 * np.log(1 + np.sum(z**2) / (5 * eps)) - 0.5 * (
        0.5 * np.log(1 + (9 + 4) / (2 * eps)) + 0.5 * np.log(1 + (1 + 1 + 25) / (3 * eps)))
    assert transrate(x[:, None], y, eps=eps) == pytest.approx(expected, rel=1e-13)


def test_invariances_of_the_default():
    X, y = _data(150, 6, 3, 4)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))[0]
    base = transrate(X, y)
    assert transrate(X @ Q, y) == pytest.approx(base, rel=1e-9)
    assert transrate(X + 50.0, y) == pytest.approx(base, rel=1e-9)
    assert transrate(X * 1e-3, y) != pytest.approx(base, rel=1e-2)  # eps is absolute
    # the official form normalises rows, so it is also scale-invariant
    off = transrate(X, y, variant="official")
    assert transrate(X * 10.0, y, variant="official") == pytest.approx(off, rel=1e-9)


def test_degenerate_inputs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    assert transrate(np.ones((60, 5)), y) == 0.0
    assert transrate(np.zeros((60, 5)), y) == 0.0
    for X in (np.repeat(rng.normal(size=(20, 6)), 3, axis=0), rng.normal(size=(12, 400)),
              np.c_[rng.normal(size=(60, 4)), np.full(60, 2.0)]):
        assert np.isfinite(transrate(X, y[: len(X)]))
        assert np.isfinite(transrate(X, y[: len(X)], variant="official"))
    A = rng.integers(-5, 6, size=(29, 5)).astype(np.float64)
    X = np.vstack([A, -A, np.zeros((2, 5))])  # mean exactly 0: the last two rows have zero norm
    with pytest.raises(InputError, match=r"transrate: .*zero norm"):
        transrate(X, y, variant="official")
    with pytest.raises(InputError, match="variant"):
        transrate(X, y, variant="paper")
    with pytest.raises(InputError, match="eps"):
        transrate(X, y, eps=0.0)


@pytest.mark.parametrize("case", CASES)
def test_official_rank_paths_agree(ref, case, monkeypatch):
    """Certified full rank (Cholesky bound) and the eigenvalue path give the same score."""
    from zoorank.metrics import _spectral

    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    fast = transrate(X, y, variant="official")
    monkeypatch.setattr(_spectral, "WELL_CONDITIONED", 0.0)
    assert transrate(X, y, variant="official") == pytest.approx(fast, rel=1e-11)


def test_official_rank_deficient():
    # rank 6 < D = 15 < N: the rank normalisation uses rank 6, as numpy's matrix_rank does
    rng = np.random.default_rng(8)
    y = np.arange(200) % 3
    X = (rng.normal(size=(200, 6)) + np.eye(3)[y] @ rng.normal(size=(3, 6))) @ rng.normal(
        size=(6, 15))
    assert transrate(X, y, variant="official") == pytest.approx(oracle_official(X, y), rel=1e-7)
    assert transrate(X, y) == pytest.approx(oracle_tllib(X, y), rel=1e-7)
