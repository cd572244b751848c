"""PACTran (Gauss / Dirichlet / Gamma) against google-research/pactran_metrics @ a5e4997."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from zoorank.errors import InputError
from zoorank.metrics import info
from zoorank.metrics.pactran import (
    S2_FACTORS,
    _GaussObjective,
    _initial_weights,
    pac_gauss_terms,
    pac_gauss_value,
    pactran,
)

from conformance import load

CASES = ("case0", "case1")
LDAS = (10.0, 1.0, 0.1)
# Same optimiser, same seeded θ₀: we see ~1e-15; 1e-10 leaves room for other BLAS kernels.
RTOL_GAUSS = 1e-10


@pytest.fixture(scope="module")
def ref():
    return load("pactran")


@pytest.fixture(scope="module")
def gauss_terms(ref):
    """(pac_opt, sigma2_inv) for every case and lda: one optimisation each serves all s2."""
    out = {}
    for case in CASES:
        X = ref[f"{case}_X"].astype(np.float64)
        y = ref[f"{case}_y"]
        for lda in LDAS:
            out[case, lda] = pac_gauss_terms(X, y, int(y.max()) + 1, lda, random_state=0)
    return out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("lda", LDAS)
def test_gauss_conformance_every_output(ref, gauss_terms, case, lda):
    X = ref[f"{case}_X"]
    N, D = X.shape
    C = int(ref[f"{case}_y"].max()) + 1
    pac_opt, sigma2_inv = gauss_terms[case, lda]
    assert pac_opt == pytest.approx(float(ref[f"{case}_pac_opt_lda{lda}"]), rel=RTOL_GAUSS)
    for factor, tag in zip(S2_FACTORS[lda], "ab", strict=True):
        value = pac_gauss_value(pac_opt, sigma2_inv, N, D, C, lda, factor)
        expected = float(ref[f"{case}_pac_gauss_lda{lda}_s2{tag}"])
        assert value == pytest.approx(expected, rel=RTOL_GAUSS), (case, lda, tag)


@pytest.mark.parametrize("case", CASES)
def test_public_function_is_negated_bound(ref, case):
    X, y = ref[f"{case}_X"], ref[f"{case}_y"]
    assert pactran(X, y) == pytest.approx(-float(ref[f"{case}_pac_gauss_lda1.0_s2a"]),
                                          rel=RTOL_GAUSS)
    assert pactran(X, y, lda=10.0, s2="b") == pytest.approx(
        -float(ref[f"{case}_pac_gauss_lda10.0_s2b"]), rel=RTOL_GAUSS)
    assert pactran(X, y, lda=0.1, s2=0) == pytest.approx(
        -float(ref[f"{case}_pac_opt_lda0.1"]), rel=RTOL_GAUSS)
    # s2 as the factor itself is the same as the named choice
    assert pactran(X, y, s2=100.0) == pactran(X, y, s2="a")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("variant", "key"), [("dirichlet", "pac_dir_alpha1"),
                                              ("gamma", "pac_gamma_alpha1")])
def test_dirichlet_gamma_conformance(ref, case, variant, key):
    y, P = ref[f"{case}_y"], ref[f"{case}_probs"]
    value = pactran(None, y, source_probs=P, variant=variant)
    assert value == pytest.approx(-float(ref[f"{case}_{key}"]), rel=1e-10)


def test_readme_reseeding_values(ref):
    """README: case1 pac_gauss_lda1.0_s2a = 8.40910 / 8.40942 / 8.40932 for seeds 0 / 1 / 2 —
    so random_state=k reproduces upstream's np.random.seed(k) draw."""
    X, y = ref["case1_X"], ref["case1_y"]
    for seed, value in [(0, 8.40910), (1, 8.40942), (2, 8.40932)]:
        assert -pactran(X, y, random_state=seed) == pytest.approx(value, abs=6e-6)


def test_initial_weights_are_upstreams_global_draw():
    # upstream's legacy global-RNG draw, on purpose
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(7)  # noqa: NPY002
        upstream = np.random.normal(size=[5, 3]) * 0.03  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_array_equal(_initial_weights(7, 5, 3), upstream)
    rng = np.random.RandomState(7)
    np.testing.assert_array_equal(_initial_weights(rng, 5, 3), upstream)


def _upstream_loss_grad(X, y, theta, ldas2):
    """Straight from the README formula (one-hot, logsumexp, separate loss and gradient)."""
    N, D = X.shape
    C = int(y.max()) + 1
    Y = np.eye(C)[y]
    W, b = theta[: D * C].reshape(D, C), theta[D * C:]
    logits = X @ W + b
    log_q = logits - special.logsumexp(logits, axis=1, keepdims=True)
    loss = np.sum(Y * (np.log(Y + 1e-10) - log_q)) / N + 0.5 * np.sum(W**2) / ldas2
    G = (special.softmax(logits, axis=1) - Y) / N
    grad = np.concatenate([(X.T @ G + W / ldas2).ravel(), G.sum(axis=0)])
    return loss, grad, special.softmax(logits, axis=1)


def test_fused_objective_matches_formula_and_finite_differences():
    rng = np.random.default_rng(0)
    N, D, C = 40, 6, 4
    X = rng.normal(size=(N, D))
    y = np.arange(N) % C
    ldas2 = 2.0 * N
    theta = rng.normal(size=(D + 1) * C) * 0.5
    loss, grad = _GaussObjective(X, y, C, ldas2)(theta)
    ref_loss, ref_grad, _ = _upstream_loss_grad(X, y, theta, ldas2)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-14)
    eps = 1e-6
    for i in rng.choice(theta.size, 6, replace=False):
        step = np.zeros_like(theta)
        step[i] = eps
        f_plus, _ = _GaussObjective(X, y, C, ldas2)(theta + step)
        f_minus, _ = _GaussObjective(X, y, C, ldas2)(theta - step)
        assert (f_plus - f_minus) / (2 * eps) == pytest.approx(grad[i], rel=1e-6, abs=1e-9)


def test_hessian_trace_shortcut_equals_explicit_diagonal():
    """Σh from ‖x_n‖²·Σ_c p(1−p) equals upstream's explicit (X²)ᵀ·p(1−p) diagonal Hessian."""
    rng = np.random.default_rng(1)
    N, D, C, lda = 60, 5, 3, 1.0
    X = rng.normal(size=(N, D)) + 2.0
    y = np.arange(N) % C
    pac_opt, sigma2_inv = pac_gauss_terms(X, y, C, lda, random_state=0)
    # redo the optimisation's end point explicitly
    Xc = X - X.mean(axis=0)
    obj = _GaussObjective(Xc, y, C, lda * N)

    theta0 = np.concatenate([_initial_weights(0, D, C).ravel(), np.zeros(C)])
    theta = optimize.minimize(obj, theta0, method="L-BFGS-B", jac=True,
                              options={"maxiter": 100, "ftol": 1e-6, "gtol": 1e-6}).x
    loss, _, p = _upstream_loss_grad(Xc, y, theta, lda * N)
    g2 = p - p**2
    h = np.concatenate([((Xc**2).T @ g2 + 1.0 / (lda * N)).ravel(), g2.sum(axis=0)])
    assert pac_opt == pytest.approx(loss, rel=1e-12)
    assert sigma2_inv == pytest.approx(h.sum() * lda * N / (D * C) + 1e-10, rel=1e-12)


def test_bound_formula_by_hand():
    # pac_opt + ½·(D·C)/(lda·N)·(s2/D)·log σ⁻² with D=4, C=2, N=10, lda=1, s2=100, σ⁻²=e
    assert pac_gauss_value(0.5, np.e, 10, 4, 2, 1.0, 100.0) == pytest.approx(0.5 + 10.0)


def _task(n=12, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % c, rng.dirichlet(np.ones(5), size=n)


@pytest.mark.parametrize("kind", ["constant", "duplicated", "d_much_larger", "tiny_n",
                                  "c_close_to_n", "huge_scale"])
def test_degenerate_features_are_finite(kind):
    X, y, _ = _task()
    if kind == "constant":
        X = np.ones_like(X)
    elif kind == "duplicated":
        X = np.repeat(X[:3], 4, axis=0)
    elif kind == "d_much_larger":
        X = np.random.default_rng(2).normal(size=(12, 400))
    elif kind == "tiny_n":
        X, y = X[:3], np.array([0, 1, 1])
    elif kind == "c_close_to_n":
        y = np.r_[np.arange(11), 0]
    else:
        X = X * 1e8
    assert np.isfinite(pactran(X, y))


def test_constant_features_reduce_to_a_bias_only_model():
    """Centred constant features are 0: the score does not depend on their value."""
    X, y, _ = _task()
    assert pactran(np.full_like(X, 3.0), y) == pytest.approx(pactran(np.zeros_like(X), y))


def test_dirichlet_gamma_with_an_empty_source_class_are_finite():
    _, y, P = _task()
    P[:, 0] = 0.0
    P /= P.sum(axis=1, keepdims=True)
    for variant in ("dirichlet", "gamma"):
        assert np.isfinite(pactran(None, y, source_probs=P, variant=variant))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variant": "bogus"}, "variant"),
        ({"lda": 0.0}, "lda"),
        ({"lda": 2.0}, "s2 factors"),
        ({"s2": "c"}, "s2"),
        ({"s2": -1.0}, "s2"),
        ({"random_state": "seed"}, "random_state"),
        ({"variant": "dirichlet"}, "source_probs"),
        ({"variant": "gamma", "alpha": 0.0}, "alpha"),
    ],
)
def test_bad_parameters_raise_input_error(kwargs, match):
    X, y, _ = _task()
    with pytest.raises(InputError, match=match):
        pactran(X, y, **kwargs)


def test_logits_instead_of_probabilities_raise():
    _, y, P = _task()
    with pytest.raises(InputError, match="source_probs"):
        pactran(None, y, source_probs=np.log(P), variant="gamma")


def test_too_few_samples_raise():
    X, _, _ = _task()
    with pytest.raises(InputError, match="samples"):
        pactran(X[:3], np.array([0, 1, 2]))


def test_registry_entry():
    entry = info("pactran")
    assert entry.stochastic and entry.needs_features and not entry.needs_source_probs
    assert entry.invariances == frozenset({"translation"})
