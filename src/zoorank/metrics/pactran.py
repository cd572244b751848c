"""PACTran — PAC-Bayesian transferability bounds (Ding et al., ECCV 2022).

Three variants of the upstream ``google-research/pactran_metrics`` ``compute_metrics.py``
@ a5e49972ed0856bc79f74c5c198d1c25b6fb9025:

- **Gauss** (``calculate_pac_gauss``, the default): a softmax linear head with a Gaussian prior
  on the centred features, fitted by L-BFGS-B, plus a trace-of-Hessian flatness term.
- **Dirichlet** / **Gamma** (``calculate_pac_dir`` / ``calculate_pac_gamma``): 10 fixed-point
  iterations on the source head's probabilities (the features are not used).

Upstream values are bounds (lower = better); :func:`pactran` returns them **negated**.
"""

from __future__ import annotations

import numbers
from contextlib import nullcontext

import numpy as np
from scipy import optimize, special

from zoorank.errors import InputError
from zoorank.metrics import _blas
from zoorank.metrics._registry import register
from zoorank.metrics._spectral import class_sums
from zoorank.metrics._validate import (
    check_labels,
    check_probs,
    check_xy,
    finite_score,
    require_samples,
)

_PAPER = (
    "Ding, Chen, Levinboim, Changpinyo, Soricut: PACTran: PAC-Bayesian Metrics for Estimating "
    "the Transferability of Pretrained Models to Classification Tasks, ECCV 2022"
)

#: Upstream's s2 factors per prior strength lda: ``s2="a"`` is the first, ``"b"`` the second.
S2_FACTORS = {10.0: (1000.0, 100.0), 1.0: (100.0, 10.0), 0.1: (10.0, 1.0)}
#: Scale of the random initial weights θ₀ = normal(size=[D, C])·0.03 (the bias starts at 0).
INIT_SCALE = 0.03
#: ``scipy.optimize.minimize(method="L-BFGS-B", options=dict(maxiter=100), tol=1e-6)``: for
#: L-BFGS-B ``tol`` sets both ftol and gtol; maxcor=10 and maxls=20 stay at scipy's defaults.
LBFGS_OPTIONS = {"maxiter": 100, "ftol": 1e-6, "gtol": 1e-6}
#: Upstream's cross-entropy is Σ y·(log(y + 1e-10) − log q): the true class adds log(1 + 1e-10).
XENT_OFFSET = float(np.log(1.0 + 1e-10))
#: Fixed-point iterations of the Dirichlet / Gamma variants.
FIXED_POINT_ITERATIONS = 10
#: Epsilon upstream adds to the source probabilities before the log and to the prior a0.
EPS = 1e-10


class _GaussObjective:
    """Fused loss + gradient of ``mean CE + ½‖W‖²/(lda·N)`` for a softmax head [W; b].

    θ is upstream's flat layout: the [D+1, C] matrix [W; b] raveled row-major. One evaluation
    is two GEMMs (X·W and Xᵀ·G) plus O(N·C) softmax work: the logits are computed once and
    reused for the gradient (upstream computes them twice, in separate loss and gradient
    functions). The logits buffer is preallocated; the gradient is a fresh array each call
    because scipy keeps references to the gradients it is handed.
    """

    def __init__(
        self, X: np.ndarray, y: np.ndarray, C: int, ldas2: float, gemm_threads=nullcontext
    ):
        self.X, self.y, self.C, self.ldas2 = X, y, C, ldas2
        self.gemm_threads = gemm_threads  # () -> context manager around the two GEMMs
        N = X.shape[0]
        self.rows = np.arange(N)
        self.logits = np.empty((N, C))
        self.last_theta: np.ndarray | None = None
        self.last_q: np.ndarray | None = None  # Σ_c p(1 − p) per sample at last_theta

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        X, y, C, ldas2 = self.X, self.y, self.C, self.ldas2
        N, D = X.shape
        DC = D * C
        W = theta[:DC].reshape(D, C)
        Z = self.logits
        with self.gemm_threads():
            np.matmul(X, W, out=Z)
        Z += theta[DC:]
        Z -= Z.max(axis=1, keepdims=True)
        z_true = Z[self.rows, y]
        np.exp(Z, out=Z)
        s = Z.sum(axis=1)
        w_flat = theta[:DC]
        loss = (np.log(s).sum() - z_true.sum()) / N + XENT_OFFSET
        loss += 0.5 * float(np.dot(w_flat, w_flat)) / ldas2
        Z /= s[:, None]  # softmax probabilities
        self.last_theta = theta.copy()
        self.last_q = 1.0 - np.einsum("ij,ij->i", Z, Z)
        Z[self.rows, y] -= 1.0
        Z /= N  # dLoss/dlogits
        grad = np.empty_like(theta)
        gW = grad[:DC].reshape(D, C)
        with self.gemm_threads():
            np.matmul(X.T, Z, out=gW)
        gW += W / ldas2
        Z.sum(axis=0, out=grad[DC:])
        return float(loss), grad


def _initial_weights(random_state, D: int, C: int) -> np.ndarray:
    """θ₀ [D, C]: ``RandomState(seed).normal(size=(D, C))·0.03``, i.e. exactly upstream's
    ``np.random.seed(seed); np.random.normal(size=[D, C])*0.03``."""
    if isinstance(random_state, np.random.RandomState | np.random.Generator):
        rng = random_state
    elif random_state is None or isinstance(random_state, numbers.Integral):
        rng = np.random.RandomState(random_state)
    else:
        raise InputError(
            f"pactran: random_state must be None, an int, a RandomState or a Generator, "
            f"got {type(random_state).__name__}"
        )
    return rng.normal(size=(D, C)) * INIT_SCALE


def pac_gauss_terms(X: np.ndarray, y: np.ndarray, C: int, lda: float, random_state=0):
    """``(pac_opt, sigma2_inv)`` of upstream ``calculate_pac_gauss`` for validated float64 X.

    ``pac_gauss = pac_opt + ½·(D·C)/(lda·N)·(s2_factor/D)·log(sigma2_inv)`` for any s2 factor,
    so one optimisation serves every s2. ``X`` is not modified (centred into a copy).
    """
    N, D = X.shape
    Xc = X - X.mean(axis=0)
    ldas2 = lda * N
    theta0 = np.concatenate([_initial_weights(random_state, D, C).ravel(), np.zeros(C)])
    n_threads = _blas.threads()
    objective = _GaussObjective(Xc, y, C, ldas2, lambda: _blas.limit(n_threads))
    # scipy's L-BFGS-B core does BLAS-1 work on (D+1)·C-vectors between evaluations; threaded,
    # that costs more than it saves (~10x more on an oversubscribed machine), so it runs with
    # one BLAS thread while the GEMMs in the objective keep the caller's thread count. Both
    # limits are scoped and restored afterwards.
    with _blas.single_thread():
        res = optimize.minimize(
            objective, theta0, method="L-BFGS-B", jac=True, options=dict(LBFGS_OPTIONS)
        )
    theta = res.x
    if objective.last_theta is not None and np.array_equal(objective.last_theta, theta):
        pac_opt = float(res.fun)  # the loss at res.x, from the optimiser's last evaluation
    else:  # the optimiser ended on a point it had not just evaluated
        pac_opt, _ = objective(theta)
    # Upstream sums the diagonal Hessian h = [(X²)ᵀ·p(1−p) + 1/ldas2 ; Σ_n p(1−p)] (the CE part
    # not divided by N). Only Σh is used, so the [D, C] matmul collapses exactly to
    # Σ_n (‖x_n‖² + 1)·Σ_c p_nc(1 − p_nc) + D·C/ldas2.
    q = objective.last_q
    row_sq = np.einsum("ij,ij->i", Xc, Xc)
    h_sum = float(np.dot(row_sq + 1.0, q)) + D * C / ldas2
    sigma2_inv = h_sum * ldas2 / (D * C) + EPS
    return float(pac_opt), float(sigma2_inv)


def pac_gauss_value(pac_opt: float, sigma2_inv: float, N: int, D: int, C: int, lda: float,
                    s2_factor: float) -> float:
    """Upstream's bound ``pac_opt + ½·kd/(lda·N)·(s2_factor/D)·log σ⁻²`` (kd = D·C)."""
    return pac_opt + 0.5 * (D * C) / (lda * N) * (s2_factor / D) * np.log(sigma2_inv)


def _s2_factor(s2, lda: float) -> float:
    if isinstance(s2, str):
        if s2 not in ("a", "b"):
            raise InputError(f"pactran: s2 must be 'a', 'b' or a number >= 0, got {s2!r}")
        for key, pair in S2_FACTORS.items():
            if np.isclose(lda, key, rtol=1e-12, atol=0.0):
                return pair[0] if s2 == "a" else pair[1]
        raise InputError(
            f"pactran: upstream defines s2 factors only for lda in {sorted(S2_FACTORS)}; "
            f"pass s2 as a number for lda={lda}"
        )
    if not isinstance(s2, numbers.Real) or not np.isfinite(s2) or s2 < 0:
        raise InputError(f"pactran: s2 must be 'a', 'b' or a finite number >= 0, got {s2!r}")
    return float(s2)


def _log_normalise(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log q, q) with q = softmax(logits) row-wise; ``logits`` is overwritten by log q."""
    logits -= logits.max(axis=1, keepdims=True)
    q = np.exp(logits)
    total = q.sum(axis=1, keepdims=True)
    q /= total
    logits -= np.log(total)
    return logits, q


def pac_dirichlet(P: np.ndarray, y: np.ndarray, C: int, alpha: float = 1.0) -> float:
    """Upstream ``calculate_pac_dir`` (lower = better), P = source probabilities [N, Cs]."""
    N = y.shape[0]
    a0 = alpha * np.bincount(y, minlength=C) / N + EPS  # [C]
    log_s = np.log(P + EPS)
    q = P
    for _ in range(FIXED_POINT_ITERATIONS):
        aw = a0[:, None] + class_sums(q, y, C)  # [C, Cs]
        logits = log_s + special.digamma(aw)[y] - special.digamma(aw.sum(axis=0))
        log_q, q = _log_normalise(logits)
    log_c0 = special.loggamma(a0.sum()) - special.loggamma(a0).sum()
    log_c = special.loggamma(aw.sum(axis=0)) - special.loggamma(aw).sum(axis=0)  # [Cs]
    total = P.shape[1] * log_c0 - log_c.sum() - float(np.sum(q * (log_q - log_s)))
    return -total / (N * C)


def pac_gamma(P: np.ndarray, y: np.ndarray, C: int, alpha: float = 1.0) -> float:
    """Upstream ``calculate_pac_gamma`` (lower = better) with its fixed rate β = 1.

    With β = b_w = 1 upstream's log β and aw·log b_w terms are identically 0 and are dropped.
    """
    N = y.shape[0]
    a0 = alpha * np.bincount(y, minlength=C) / N + EPS  # [C]
    log_s = np.log(P + EPS)
    q = P
    for _ in range(FIXED_POINT_ITERATIONS):
        aw = a0[:, None] + class_sums(q, y, C)  # [C, Cs]
        log_q, q = _log_normalise(log_s + special.digamma(aw)[y])
    lw = P @ aw.sum(axis=0)  # [N]; upstream recomputes it every iteration, only the last is used
    prior = P.shape[1] * special.loggamma(a0).sum() - special.loggamma(aw).sum()
    data = float(np.sum(q * (log_q - log_s))) + float(np.sum(np.log(lw) - 1.0))
    return (prior + data) / (N * C) + 1.0


@register(
    "pactran",
    summary="PACTran-Gauss PAC-Bayesian bound of a softmax head on the features (negated)",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    needs_source_probs=False,
    stochastic=True,
    invariances=("translation",),
)
def pactran(
    features=None,
    labels=None,
    *,
    source_probs=None,
    variant: str = "gauss",
    lda: float = 1.0,
    s2="a",
    alpha: float = 1.0,
    random_state=0,
) -> float:
    """PACTran, **negated** so that higher = better (upstream's values are bounds: lower = better).

    Matches ``google-research/pactran_metrics`` ``compute_metrics.py`` @
    a5e49972ed0856bc79f74c5c198d1c25b6fb9025. The default is ``-pac_gauss_lda1.0_s2a``, the
    number ETran ranks by.

    Inputs: ``features`` [N, D] (cast to float64), ``labels`` [N] in 0..C-1 with every class
    present; ``source_probs`` [N, Cs] (softmax outputs of the source head) only for the
    Dirichlet / Gamma variants, which do not use the features (pass ``features=None``).

    ``variant="gauss"`` (default), with ``lda`` (prior strength, upstream 10, 1 or 0.1), ``s2``
    and ``random_state``:

        X ← X − mean(X)                                 (upstream centres in place; we copy)
        θ₀: W = normal(size=[D, C])·0.03, b = 0           (RandomState(random_state))
        L(W, b) = (1/N)·Σ_n −log softmax(x_n·W + b)[y_n] + ½‖W‖²/(lda·N)   (b not penalised)
        pac_opt = L at the L-BFGS-B result (maxiter = 100, tol = 1e-6 → ftol = gtol = 1e-6,
                  analytic gradient, scipy's defaults otherwise)
        h = diag Hessian = [(X²)ᵀ·p(1−p) + 1/(lda·N) ; Σ_n p(1−p)]   (CE part not divided by N)
        σ⁻² = Σh·lda·N/(D·C) + 1e-10
        pac_gauss = pac_opt + ½·(D·C)/(lda·N)·(s2_factor/D)·log σ⁻²
        score = −pac_gauss

    ``s2`` picks upstream's s2 factor: "a" = the first and "b" = the second of [1000, 100]
    (lda = 10), [100, 10] (lda = 1), [10, 1] (lda = 0.1); or pass the factor itself as a
    number. ``s2=0`` gives −pac_opt (upstream's ``pac_opt_lda*`` output).

    ``random_state`` (default 0): int seed, None, ``np.random.RandomState`` or ``Generator`` for
    θ₀. Upstream draws θ₀ from numpy's global RNG; the reference vectors were made with
    ``np.random.seed(0)`` right before each call, which ``random_state=0`` reproduces exactly
    (``RandomState(0).normal`` is the legacy global stream). L-BFGS-B may stop at maxiter, so
    the result depends on θ₀ (about 4e-5 relative between seeds on the conformance data), and
    on the class order, which pairs θ₀'s columns with classes.

    Implementation: scipy's L-BFGS-B on upstream's exact objective, parameter layout and
    options, so with the same θ₀ it follows the same iterates (conformance: ~1e-15 relative on
    every output). Each evaluation is one fused loss+gradient pass (two GEMMs, logits computed
    once into a preallocated buffer; upstream computes them in separate loss and gradient
    calls, i.e. three GEMMs). Exact shortcut: only Σh is used, and
    Σ_{d,c} x²_nd·p_nc(1−p_nc) = ‖x_n‖²·Σ_c p_nc(1−p_nc), so the Hessian needs no [D, C]
    product; its probabilities are reused from the optimiser's last evaluation, as is pac_opt.
    scipy's L-BFGS-B core runs with one BLAS thread (its BLAS-1 work on (D+1)·C-vectors is
    slower threaded), the GEMMs with the caller's threads (see ``_blas``). No reduced (SVD)
    basis is used: it would only help when rank(X) < D, it changes the coordinates of
    L-BFGS-B's ∞-norm gradient test, and at D ≤ N features are full rank in practice.

    ``variant="dirichlet"`` / ``"gamma"`` (with ``alpha``, upstream 1.0): 10 fixed-point
    iterations of the variational posterior q over source classes, on ``source_probs``::

        a0_c = alpha·n_c/N + 1e-10,  log s = log(P + 1e-10),  q ← P
        repeat 10×: a_w = a0 + Σ_{n∈c} q_n;   Dirichlet: log q ∝ log s + ψ(a_w)[y] − ψ(Σ_c a_w)
                                              Gamma:     log q ∝ log s + ψ(a_w)[y],
                                                         l_n = P_n·Σ_c a_w   (rate β = 1)
        Dirichlet: −[Cs·log C(a0) − Σ_z log C(a_w[:, z]) − Σ q·(log q − log s)] / (N·C),
                   log C(a) = log Γ(Σa) − Σ log Γ(a)
        Gamma:     [Σ (log Γ(a0) − log Γ(a_w)) + Σ q·(log q − log s) + Σ_n (log l_n − 1)]/(N·C) + 1

    Both are deterministic (conformance rtol 1e-8) and also returned negated.

    Degenerate input (documented rules): constant features centre to 0, so the logits are the
    bias alone and the score is finite; D ≫ N, tiny N and C close to N are all well-posed (the
    prior keeps the problem strongly convex in W). Fewer than C + 1 samples raise InputError.
    Non-positive ``lda`` raises InputError.
    """
    metric = "pactran"
    if variant == "gauss":
        if not (isinstance(lda, numbers.Real) and np.isfinite(lda) and lda > 0):
            raise InputError(f"{metric}: lda must be a finite number > 0, got {lda!r}")
        lda = float(lda)
        factor = _s2_factor(s2, lda)
        X, y, C = check_xy(features, labels, metric)
        N, D = X.shape
        pac_opt, sigma2_inv = pac_gauss_terms(X, y, C, lda, random_state)
        value = pac_gauss_value(pac_opt, sigma2_inv, N, D, C, lda, factor)
        return finite_score(-value, metric)
    if variant in ("dirichlet", "gamma"):
        if not (isinstance(alpha, numbers.Real) and np.isfinite(alpha) and alpha > 0):
            raise InputError(f"{metric}: alpha must be a finite number > 0, got {alpha!r}")
        y, C = check_labels(labels, None, metric)
        N = y.shape[0]
        P = check_probs(source_probs, N, metric)
        require_samples(metric, N, C + 1, f"more samples than the {C} classes")
        fn = pac_dirichlet if variant == "dirichlet" else pac_gamma
        return finite_score(-fn(P, y, C, float(alpha)), metric)
    raise InputError(
        f"{metric}: variant must be 'gauss', 'dirichlet' or 'gamma', got {variant!r}"
    )
