"""LFC: the closed form against a brute-force N×N computation, hand-computed tiny cases,
no subsampling above 45 000 samples, invariances and degenerate input."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import InputError
from zoorank.metrics.lfc import lfc


def brute(X, y, dtype=np.float64):
    """Model-Spider's LFC.py, in numpy: N×N Gram and ±1 label kernel, globally centred."""
    X = np.asarray(X, dtype=dtype)
    G = X @ X.T
    A = np.where(y[:, None] == y[None, :], 1.0, -1.0).astype(dtype)
    G = G - G.mean()
    A = A - A.mean()
    return float(np.sum(G * A) / np.sqrt(np.sum(G * G) * np.sum(A * A)))


def _data(n, d, c, seed, offset=0.0, sizes=None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c if sizes is None else np.repeat(np.arange(c), sizes)
    rng.shuffle(y)
    X = rng.normal(size=(c, d))[y] * 0.8 + rng.normal(size=(n, d)) + offset
    return X, y


@pytest.mark.parametrize(("n", "d", "c", "offset", "sizes", "seed"), [
    (200, 30, 4, 0.0, None, 0),
    (150, 10, 3, 2.0, [20, 50, 80], 1),     # N > D, imbalanced, offset
    (60, 400, 5, 0.5, None, 2),             # D > N: the N×N Gram side
    (80, 80, 2, -1.0, None, 3),
])
def test_matches_bruteforce(n, d, c, offset, sizes, seed):
    X, y = _data(n, d, c, seed, offset, sizes)
    assert lfc(X, y) == pytest.approx(brute(X, y), rel=1e-10)


def test_large_offset_is_accurate():
    # raw Gram entries ~1e5·‖x‖: the closed form has no cancellation; compare in long double
    X, y = _data(120, 8, 3, 4, offset=300.0)
    assert lfc(X, y) == pytest.approx(brute(X, y, np.longdouble), rel=1e-8)


def test_hand_computed_cases():
    # G = A exactly (x = ±1 by class): correlation 1
    y = np.array([0, 0, 1, 1])
    assert lfc(np.array([[1.0], [1.0], [-1.0], [-1.0]]), y) == pytest.approx(1.0)
    # class sums are zero and both kernels have zero mean: Σ Ĝ∘Â = 0
    assert lfc(np.array([[1.0], [-1.0], [1.0], [-1.0]]), np.array([0, 0, 1, 1])) == pytest.approx(
        0.0, abs=1e-15)
    # X = [1, 0, 0]ᵀ, y = [0, 0, 1]: ΣG = 1, ΣA = 1, ΣG∘A = 1 ⇒ ΣĜ∘Â = 8/9, ΣĜ² = 8/9,
    # ΣÂ² = 80/9 ⇒ LFC = 1/√10
    assert lfc(np.array([[1.0], [0.0], [0.0]]), np.array([0, 0, 1])) == pytest.approx(
        1 / np.sqrt(10), rel=1e-14)


def test_no_subsampling_above_45000():
    """Repeating a dataset k times leaves LFC unchanged (every sum scales by k²); with
    46 000 samples the reference would subsample randomly, we use everything, deterministically."""
    X, y = _data(460, 6, 4, 5)
    big_X, big_y = np.tile(X, (100, 1)), np.tile(y, 100)
    assert big_X.shape[0] == 46000
    assert lfc(big_X, big_y) == pytest.approx(lfc(X, y), rel=1e-10)


def test_invariances():
    X, y = _data(100, 7, 3, 6, offset=1.0)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(7, 7)))[0]
    base = lfc(X, y)
    assert lfc(X * 0.01, y) == pytest.approx(base, rel=1e-12)
    assert lfc(X @ Q, y) == pytest.approx(base, rel=1e-10)
    assert lfc(X + 3.0, y) != pytest.approx(base, rel=1e-3)  # raw (uncentred) Gram
    assert -1.0 <= base <= 1.0


def test_degenerate_inputs():
    y = np.arange(30) % 3
    for X in (np.ones((30, 4)), np.zeros((30, 4)), np.tile([[1e8, -3.0]], (30, 1))):
        with pytest.raises(InputError, match=r"lfc: .*same features"):
            lfc(X, y)
    rng = np.random.default_rng(0)
    for X in (np.repeat(rng.normal(size=(10, 3)), 3, axis=0), rng.normal(size=(4, 50)),
              np.c_[rng.normal(size=(30, 3)), np.full(30, 7.0)]):
        yy = y[: len(X)] if len(X) > 4 else np.array([0, 1, 2, 0])
        assert np.isfinite(lfc(X, yy))
