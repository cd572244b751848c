"""LogME — log maximum evidence of a Bayesian linear model (You et al., ICML 2021 / JMLR 2022)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _spectral
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_features, check_targets, check_xy, finite_score, require_samples

_PAPER = (
    "You, Liu, Wang, Long: LogME: Practical Assessment of Pre-trained Models for Transfer "
    "Learning, ICML 2021; You, Liu, Zhang, Wang, Jordan, Long: Ranking and Tuning Pre-trained "
    "Models: A New Paradigm for Exploiting Model Hubs, JMLR 2022 (fixed-point algorithm)"
)

#: Singular values at or below this are dropped when N > D (``truncated_svd`` upstream).
_SVD_FLOOR = 1e-10
#: At most this many evidence-maximisation iterations (upstream ``range(11)``).
_MAX_ITER = 11
#: The 1e-5 guards upstream adds to ‖m‖² and to the residual in the α, β updates.
_EPS = 1e-5

# variant -> (stopping tolerance, strict '<' comparison, ε in the α/β updates,
#             ε added to ‖m‖² and the residual in the evidence, log-sum over all D eigenvalues)
_VARIANTS = {
    "fixed_point": (1e-3, False, _EPS, 0.0, False),
    "icml": (1e-2, True, _EPS, _EPS, True),
    "tllib": (1e-2, True, 0.0, 0.0, True),
}


def _spectrum(X: np.ndarray, y: np.ndarray | None, C: int, metric: str, Y: np.ndarray | None = None):
    """``(σ [k], x² [k, C])``: eigenvalues of XᵀX kept by upstream's rule and the squared
    projections x = Uᵀ·y_c of every class indicator y_c on the left singular vectors U (of every column of the
    real targets ``Y`` [N, C] instead, when given: the regression form).

    N > D (upstream ``truncated_svd``): XᵀX = V·diag(σ)·Vᵀ with symmetric eigh, singular values
    s = √|σ| > 1e-10 kept, x = Vᵀ·(Xᵀ y_c)/s (= (X·V/s)ᵀ·y_c). N ≤ D (upstream
    ``svd(X, full_matrices=False)``): XXᵀ = U·diag(σ)·Uᵀ, all N kept (σ clipped at 0), x = Uᵀ·y_c.
    Class indicators never get formed: Xᵀ·y_c and Uᵀ·y_c are class sums of rows.
    """
    G, feature_side = _spectral.gram(X)
    lam, V = _spectral.eigh(G, metric)
    del G
    if feature_side:
        sigma = np.abs(lam)
        s = np.sqrt(sigma)
        keep = s > _SVD_FLOOR
        xty = X.T @ Y if Y is not None else _spectral.class_sums(X, y, C).T  # Xᵀ·y_c, [D, C]
        proj = V[:, keep].T @ xty  # [k, C]
        proj /= s[keep, None]
        return sigma[keep], proj * proj
    proj = V.T @ Y if Y is not None else _spectral.class_sums(V, y, C).T  # Uᵀ·y_c for every column, [N, C]
    return np.clip(lam, 0.0, None), proj * proj


def _maximise_evidence(sigma, x2, norm2, N, tol, strict, eps):
    """Per-class fixed-point iterations of (α, β), vectorised over the C columns of ``x2``.

    Each class runs exactly upstream's scalar loop and stops at its own criterion: a class that
    has converged is removed from the active set, so its (α, β, ‖m‖², residual) are those of its
    own last iteration. Returns ``(alpha, beta, m2, res2)``, each [C].
    """
    C = x2.shape[1]
    alpha, beta = np.ones(C), np.ones(C)
    m2, res2 = np.zeros(C), np.zeros(C)
    res_x2 = norm2 - x2.sum(axis=0)  # ‖y‖² − Σx²: the part of y outside the kept components
    s = sigma[:, None]
    active = np.arange(C)
    for _ in range(_MAX_ITER):
        t = alpha[active] / beta[active]
        xa = x2[:, active]
        gamma = (s / (s + t)).sum(axis=0)
        m2_a = (s * xa / (t + s) ** 2).sum(axis=0)
        res2_a = (xa / (1.0 + s / t) ** 2).sum(axis=0) + res_x2[active]
        alpha_a = gamma / (m2_a + eps)
        beta_a = (N - gamma) / (res2_a + eps)
        alpha[active], beta[active] = alpha_a, beta_a
        m2[active], res2[active] = m2_a, res2_a
        rel = np.abs(alpha_a / beta_a - t) / t
        done = rel < tol if strict else rel <= tol
        active = active[~done]
        if active.size == 0:
            break
    return alpha, beta, m2, res2


@register(
    "logme",
    summary="Log maximum evidence of per-class Bayesian linear regression on the raw features",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("rotation",),
    regression=True,
)
def logme(
    features,
    labels=None,
    *,
    source_probs=None,
    variant: str = "fixed_point",
    sum_all_eigenvalues: bool = False,
    regression: bool = False,
) -> float:
    """LogME (higher = better): mean over classes of the per-sample log maximum evidence.

    Matches ``thuml/LogME`` ``LogME.py`` ``LogME(regression=False).fit`` (the fixed-point
    ``_fit_fixed_point``) @ 56551ca94a3295bcc37e6a01b1291911af985f07 (conformance rtol 1e-6).
    ``variant="icml"`` gives ``LogME._fit_icml`` of the same commit and ``variant="tllib"``
    ``thuml/Transfer-Learning-Library`` ``tllib/ranking/logme.py::log_maximum_evidence``
    @ c4aa59eb565650a552b809411601d0589efbbfe4.

    Inputs: ``features`` [N, D], raw (no centring, no standardisation, no bias column; cast to
    float64); ``labels`` [N] in 0..C-1, every class present, N ≥ C + 1. ``source_probs`` is
    ignored.

    Model, per class c with binary target y = 1[label = c] (‖y‖² = n_c): y ~ N(X·w, 1/β),
    w ~ N(0, I/α). With XᵀX = V·diag(σ)·Vᵀ and x = Uᵀy (U the left singular vectors), starting
    from α = β = 1, at most 11 times:

        t = α/β,  γ = Σ σ/(σ + t),  m² = Σ σ·x²/(t + σ)²,
        res² = Σ x²/(1 + σ/t)² + (‖y‖² − Σ x²),
        α = γ/(m² + 1e-5),  β = (N − γ)/(res² + 1e-5),
        stop when |α/β − t|/t ≤ 1e-3.

    Evidence/N = [D/2·log α + N/2·log β − ½·Σ_k log(α + β·σ_k) − β/2·res² − α/2·m²
    − N/2·log 2π]/N with the last (α, β, m², res²); the score is the *unweighted* mean over classes.

    Upstream's choice of spectrum is reproduced: when N > D the eigenvalues σ of XᵀX with singular
    value √σ > 1e-10 are kept; when N ≤ D all N singular values of X are kept (zeros included).

    Parameters
    ----------
    variant : {"fixed_point", "icml", "tllib"}
        "fixed_point" (default) as above. "icml": the ICML-2021 iteration, which is the same
        update with the stopping rule |Δλ|/λ < 0.01 and ε = 1e-5 also added to ‖m‖² and res² in
        the evidence. "tllib": as "icml" but without any 1e-5. Both sum log(α + β·σ) over all D
        eigenvalues of XᵀX (zeros included). They agree with the default to ~1e-4 relative.
    regression : bool, default False
        Upstream's ``LogME(regression=True)``: ``labels`` are real targets [N] or [N, K] (float64, used as they
        are: no centring or scaling), and each column y_k takes the place of a class indicator above (‖y‖² =
        Σ y_k²); the score is the mean over the K columns. With one-hot columns it equals the classification
        score. Needs N ≥ 2.
    sum_all_eigenvalues : bool, default False
        Upstream quirk (kept by default): when rank k < D (e.g. D > N) the −½·Σ log(α + β·σ) term
        covers only the k kept σ while D/2·log α uses the full D. True gives the corrected form,
        summing over all D eigenvalues of XᵀX (the D − k zeros add −(D − k)/2·log α), as the ICML
        and tllib versions do (those always sum over all D).

    Exact shortcuts: one eigendecomposition of the smaller Gram matrix (XᵀX if D ≤ N, else XXᵀ —
    same nonzero spectrum as the SVD of X) is shared by all classes; the projections of all class
    indicators are one class-sum product; the fixed-point iterations run for all classes at once
    as vector operations, each class stopping at its own criterion (masking), so every class goes
    through exactly upstream's scalar sequence. The ICML/tllib variants compute ‖m‖² and
    ‖y − X·m‖² in the same eigenbasis instead of forming m (identical in exact arithmetic).

    Degenerate input (documented rule): the score is returned whenever every class evidence is
    finite. All-zero features (no nonzero singular value, so α = 0) and any other input that
    drives an evidence to ±inf/NaN raise :class:`InputError` naming the first such class. Rank-
    deficient features are accepted (reduced rank, quirk above); duplicated samples and D ≫ N are
    fine. When N > D and the features are rank-deficient, eigenvalues of XᵀX that are only
    rounding noise can pass upstream's 1e-10 singular-value floor exactly as upstream; they carry
    projections of order √ε·‖y‖ and change the score negligibly.
    """
    metric = "logme"
    if variant not in _VARIANTS:
        raise InputError(f"{metric}: variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
    tol, strict, eps_update, eps_evidence, all_eigs = _VARIANTS[variant]
    if regression:
        X = check_features(features, metric)
        Y = check_targets(labels, X.shape[0], metric)
        require_samples(metric, X.shape[0], 2, "a variance to estimate")
        y, C, counts = None, Y.shape[1], np.einsum("ij,ij->j", Y, Y)
    else:
        X, y, C = check_xy(features, labels, metric)
        Y, counts = None, np.bincount(y, minlength=C).astype(np.float64)
    N, D = X.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sigma, x2 = _spectrum(X, y, C, metric, Y)
        alpha, beta, m2, res2 = _maximise_evidence(sigma, x2, counts, N, tol, strict, eps_update)
        log_alpha = np.log(alpha)
        logsum = np.log(alpha[None, :] + beta[None, :] * sigma[:, None]).sum(axis=0)
        if all_eigs or sum_all_eigenvalues:
            logsum += (D - sigma.shape[0]) * log_alpha
        evidence = (
            D / 2.0 * log_alpha
            + N / 2.0 * np.log(beta)
            - 0.5 * logsum
            - beta / 2.0 * (res2 + eps_evidence)
            - alpha / 2.0 * (m2 + eps_evidence)
            - N / 2.0 * np.log(2.0 * np.pi)
        ) / N
    bad = np.flatnonzero(~np.isfinite(evidence))
    if bad.size:
        c = int(bad[0])
        raise InputError(
            f"{metric}: the evidence of {'target column' if regression else 'class'} {c} is not finite "
            f"(α = {alpha[c]:.3g}, "
            f"β = {beta[c]:.3g}); the features are too degenerate (e.g. all zero) for LogME"
        )
    return finite_score(np.mean(evidence), metric)
