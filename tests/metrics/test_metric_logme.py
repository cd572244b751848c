"""LogME: conformance with thuml/LogME (fixed point, ICML) and tllib, a scalar per-class oracle
(upstream's loop, written out from the README spec), the rank-deficient quirk, degenerate input."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import InputError
from zoorank.metrics.logme import logme

from conformance import load

CASES = ("case0", "case1")


@pytest.fixture(scope="module")
def ref():
    return load("logme")


@pytest.mark.parametrize("case", CASES)
def test_conformance_fixed_point(ref, case):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    assert logme(X, y) == pytest.approx(float(ref[f"{case}_score"]), rel=1e-6)
    # float32 input is cast exactly, float64 gives the same number
    assert logme(X.astype(np.float64), y) == logme(X, y)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("variant", "key"), [("icml", "score_icml"), ("tllib", "score_tllib")])
def test_conformance_other_stopping_rules(ref, case, variant, key):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    expected = float(ref[f"{case}_{key}"])
    assert logme(X, y, variant=variant) == pytest.approx(expected, rel=1e-8)
    # the README's "agree to about 1e-4": per-sample evidences within a few 1e-6 absolute
    assert logme(X, y) == pytest.approx(expected, abs=1e-5)


# --------------------------------------------------------------------------------------------
# Scalar oracle: upstream's per-class loop, one class at a time, with upstream's decompositions
# --------------------------------------------------------------------------------------------


def oracle(X, y, *, all_eigs=False, tol=1e-3, strict=False, eps_upd=1e-5, eps_ev=0.0):
    X = np.asarray(X, dtype=np.float64)
    N, D = X.shape
    if N > D:
        w, V = np.linalg.eigh(X.T @ X)
        s = np.sqrt(np.abs(w))
        k = s > 1e-10
        s, V = s[k], V[:, k]
        U = X @ V / s
    else:
        U, s, _ = np.linalg.svd(X, full_matrices=False)
    sigma = s**2
    evidences, iters = [], []
    for c in range(int(y.max()) + 1):
        t_ = (y == c).astype(np.float64)
        x2 = (U.T @ t_) ** 2
        res_x2 = t_ @ t_ - x2.sum()
        a, b = 1.0, 1.0
        for it in range(11):  # noqa: B007 (the count is returned)
            t = a / b
            gamma = np.sum(sigma / (sigma + t))
            m2 = np.sum(sigma * x2 / (t + sigma) ** 2)
            res2 = np.sum(x2 / (1 + sigma / t) ** 2) + res_x2
            a = gamma / (m2 + eps_upd)
            b = (N - gamma) / (res2 + eps_upd)
            rel = abs(a / b - t) / t
            if (rel < tol) if strict else (rel <= tol):
                break
        iters.append(it)
        logsum = np.sum(np.log(a + b * sigma))
        if all_eigs:
            logsum += (D - sigma.size) * np.log(a)
        ev = (D / 2 * np.log(a) + N / 2 * np.log(b) - 0.5 * logsum - b / 2 * (res2 + eps_ev)
              - a / 2 * (m2 + eps_ev) - N / 2 * np.log(2 * np.pi))
        evidences.append(ev / N)
    return float(np.mean(evidences)), iters


def _data(n, d, c, seed, rank=None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centres = rng.normal(size=(c, d)) * 0.7
    X = centres[y] + rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, size=d)
    if rank is not None:  # rank-deficient: project onto a random rank-r subspace
        B = np.linalg.qr(rng.normal(size=(d, rank)))[0]
        X = X @ B @ B.T
    return X, y


@pytest.mark.parametrize(("n", "d", "c", "seed"), [(400, 30, 7, 0), (120, 200, 5, 1),
                                                    (60, 60, 4, 2), (90, 89, 3, 3)])
def test_matches_scalar_oracle_both_paths(n, d, c, seed):
    X, y = _data(n, d, c, seed)
    expected, _ = oracle(X, y)
    assert logme(X, y) == pytest.approx(expected, rel=1e-9)


def test_each_class_stops_at_its_own_iteration():
    """The vectorised loop must emulate per-class stopping exactly: on this data the classes
    stop after different numbers of iterations, and a shared stopping rule would be ~1e-4 off."""
    rng = np.random.default_rng(7)
    n, d = 300, 20
    y = np.repeat(np.arange(6), n // 6)
    X = rng.normal(size=(n, d))
    X[:, :6] += 3.0 * np.eye(6)[y] * np.array([0.0, 0.3, 1.0, 3.0, 6.0, 10.0])
    expected, iters = oracle(X, y)
    assert len(set(iters)) > 1
    assert logme(X, y) == pytest.approx(expected, rel=1e-10)
    for variant, kw in (("icml", dict(tol=1e-2, strict=True, eps_ev=1e-5, all_eigs=True)),
                        ("tllib", dict(tol=1e-2, strict=True, eps_upd=0.0, all_eigs=True))):
        assert logme(X, y, variant=variant) == pytest.approx(oracle(X, y, **kw)[0], rel=1e-10)


def test_rank_deficient_quirk_and_corrected_form():
    # D > N: only the N singular values of X enter Σ log(α + βσ), while D/2·log α uses D
    X, y = _data(50, 300, 4, 11)
    quirk, _ = oracle(X, y)
    corrected, _ = oracle(X, y, all_eigs=True)
    assert logme(X, y) == pytest.approx(quirk, rel=1e-8)
    assert logme(X, y, sum_all_eigenvalues=True) == pytest.approx(corrected, rel=1e-8)
    assert abs(quirk - corrected) > 1e-2 * abs(corrected)  # the quirk matters here
    # rank k < D < N: the N > D path drops the null directions (floor 1e-10) the same way
    Xr, yr = _data(300, 40, 5, 12, rank=25)
    assert logme(Xr, yr) == pytest.approx(oracle(Xr, yr)[0], rel=1e-6)
    assert logme(Xr, yr, sum_all_eigenvalues=True) == pytest.approx(
        oracle(Xr, yr, all_eigs=True)[0], rel=1e-6)


def test_full_rank_sum_option_is_a_no_op_when_full_rank(ref):
    X, y = ref["case1_X"], ref["case1_y"]
    assert logme(X, y, sum_all_eigenvalues=True) == pytest.approx(logme(X, y), rel=1e-12)


def test_rotation_invariant_not_translation_invariant():
    X, y = _data(200, 12, 3, 5)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(12, 12)))[0]
    assert logme(X @ Q, y) == pytest.approx(logme(X, y), rel=1e-9)
    assert logme(X + 3.0, y) != pytest.approx(logme(X, y), rel=1e-3)  # no bias column


def test_better_separated_classes_score_higher():
    lo = logme(*_data(300, 16, 4, 3))
    X, y = _data(300, 16, 4, 3)
    X = X + 4.0 * np.eye(16)[y % 16]
    assert logme(X, y) > lo


def test_degenerate_inputs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    with pytest.raises(InputError, match=r"logme: .*not finite"):
        logme(np.zeros((60, 5)), y)
    for X in (np.ones((60, 5)),                       # constant features (rank 1)
              np.repeat(rng.normal(size=(15, 8)), 4, axis=0),  # duplicated samples
              rng.normal(size=(20, 500)),             # D >> N
              rng.normal(size=(4, 3))):               # tiny N (N = C + 1)
        yy = y[: X.shape[0]] if X.shape[0] > 4 else np.array([0, 1, 2, 0])
        assert np.isfinite(logme(X, yy))
    with pytest.raises(InputError, match="variant"):
        logme(rng.normal(size=(10, 2)), np.arange(10) % 2, variant="exact")


# --- the regression form: thuml/LogME ``LogME(regression=True).fit`` @ 56551ca, run on these seeded cases ---
REGRESSION_REFERENCE = {  # (seed, N, D, K) -> upstream's score
    (0, 200, 30, 1): -1.0496804423270845,
    (1, 200, 30, 3): -1.0697539140467196,
    (2, 40, 100, 2): 1.5643173636088599,  # N <= D: the full thin SVD
    (3, 500, 8, 1): -0.7919825695187009,
}


def _regression_case(seed, N, D, K):
    r = np.random.default_rng(seed)
    X = r.normal(size=(N, D))
    return X, X[:, :3] @ r.normal(size=(3, K)) + 0.5 * r.normal(size=(N, K))


@pytest.mark.parametrize("shape", sorted(REGRESSION_REFERENCE))
def test_regression_matches_upstream(shape):
    X, Y = _regression_case(*shape)
    assert logme(X, Y, regression=True) == pytest.approx(REGRESSION_REFERENCE[shape], rel=1e-9)


def test_regression_with_one_hot_columns_is_the_classification_score():
    r = np.random.default_rng(5)
    for N, D in ((120, 16), (30, 64)):
        X, y = r.normal(size=(N, D)), np.arange(N) % 4
        assert logme(X, np.eye(4)[y], regression=True) == pytest.approx(logme(X, y), rel=1e-10)


def test_regression_columns_are_averaged_and_a_vector_is_one_column():
    X, Y = _regression_case(1, 200, 30, 3)
    per_column = [logme(X, Y[:, k], regression=True) for k in range(3)]
    assert logme(X, Y, regression=True) == pytest.approx(np.mean(per_column), rel=1e-12)
    assert logme(X, Y[:, :1], regression=True) == logme(X, Y[:, 0], regression=True)
    # a better-explained target scores higher: the evidence sees the noise
    r = np.random.default_rng(0)
    clean = X[:, :3] @ r.normal(size=3)
    assert logme(X, clean + 0.1 * r.normal(size=200), regression=True) > logme(
        X, clean + 2.0 * r.normal(size=200), regression=True)


@pytest.mark.parametrize("targets, message", [
    (np.full(10, np.nan), "NaN or infinite"),
    (np.array(["a"] * 10), "real numbers"),
    (np.zeros(9), "length 9 but there are 10"),
    (np.zeros((10, 2, 2)), r"\[N\] or \[N, K\]"),
])
def test_regression_bad_targets(targets, message):
    with pytest.raises(InputError, match=rf"logme: .*{message}"):
        logme(np.random.default_rng(0).normal(size=(10, 3)), targets, regression=True)
