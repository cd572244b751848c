"""H-score (Bao et al., ICIP 2019) and its shrinkage form (Ibrahim et al., ECML-PKDD 2022)."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from zoorank.errors import InputError
from zoorank.metrics import _spectral
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_xy, finite_score
from zoorank.ranking import TIE_RTOL

_PAPER = (
    "Bao, Li, Huang, Zheng, Wang, Zhang, Fan: An Information-Theoretic Approach to "
    "Transferability in Task Transfer Learning, ICIP 2019"
)
_PAPER_REG = (
    "Ibrahim, Ponomareva, Mazumder: Newer is Not Always Better: Rethinking Transferability "
    "Metrics, Their Peculiarities, Stability and Performance, ECML-PKDD 2022 (earlier version at "
    "a NeurIPS 2021 workshop; arXiv 2110.06893)"
)

#: ``np.linalg.pinv(..., rcond=1e-15)`` upstream: singular values ≤ rcond·max are dropped.
RCOND = 1e-15


def _between_spectrum(
    Xc: np.ndarray, y: np.ndarray, C: int, metric: str, G: np.ndarray | None = None
):
    """Spectrum of S = XcᵀXc and the between-class energy on each eigenvector.

    Returns ``(lam, q)`` where ``lam`` are the eigenvalues of S (ascending, length min(N, D)) and
    q_i = ‖M·v_i‖² with M [C, D] the rows √n_c·(μ_c − μ) (so MᵀM = (N − 1)·cov_g) and v_i the
    eigenvector of λ_i. The D − N eigenvalues of S missing when D > N are exact zeros with q = 0.

    D ≤ N: eigh of S [D×D], M·V directly. D > N: eigh of K = XcXcᵀ [N×N] = U·diag(λ)·Uᵀ;
    v_i = Xcᵀu_i/√λ_i and M = W·Xc with W_ci = 1[y_i = c]/√n_c, so M·v_i = √λ_i·W·u_i and
    q_i = λ_i·‖W_c·u_i‖², with W_c = W·(I − 11ᵀ/N) (equal to W on every u_i ⟂ 1, i.e. every
    eigenvector with λ_i > 0; it zeroes the centring null direction, so rounding there is inert).
    ``G`` is the Gram matrix of :func:`_spectral.gram` when the caller already has it.
    """
    counts = np.bincount(y, minlength=C).astype(np.float64)
    feature_side = Xc.shape[1] <= Xc.shape[0]
    if G is None:
        G, _ = _spectral.gram(Xc)
    lam, V = _spectral.eigh(G, metric)
    if feature_side:
        MV = _class_offsets(Xc, y, C) @ V
        return lam, np.einsum("ci,ci->i", MV, MV)
    WU = _spectral.class_sums(V, y, C)
    WU -= np.outer(counts, V.sum(axis=0) / Xc.shape[0])  # centre: W·(I − 11ᵀ/N)·U
    WU /= np.sqrt(counts)[:, None]
    return lam, np.clip(lam, 0.0, None) * np.einsum("ci,ci->i", WU, WU)


def _class_offsets(Xc: np.ndarray, y: np.ndarray, C: int) -> np.ndarray:
    """M [C, D]: rows √n_c·(μ_c − μ) of the centred features, so that MᵀM = (N − 1)·cov_g."""
    counts = np.bincount(y, minlength=C).astype(np.float64)
    return _spectral.class_sums(Xc, y, C) / np.sqrt(counts)[:, None]


def _max_kappa(rcond: float) -> float:
    """Largest condition-number bound for which pinv(·, rcond) provably equals the inverse."""
    limit = _spectral.WELL_CONDITIONED
    return min(limit, 1e-4 / rcond) if rcond > 0 else limit


def _chol_trace(A: np.ndarray, M: np.ndarray, max_kappa: float | None) -> float | None:
    """tr(M·A⁻¹·Mᵀ) = ‖L⁻¹Mᵀ‖_F² (A = L·Lᵀ), or None when A is not positive definite.

    With ``max_kappa`` the Cholesky bound κ̄ ≥ κ₂(A) of :mod:`._spectral` (identity 4) must be
    below it (else None), so that pinv(A) = A⁻¹; ``max_kappa=None`` means the caller has already
    proved that (no triangular inverse is formed then).
    """
    if max_kappa is None:
        try:
            L = linalg.cholesky(A, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        B = linalg.solve_triangular(L, M.T, lower=True, check_finite=False)
    else:
        res = _spectral.chol_inverse(A)
        if res is None or not res[1] < max_kappa:
            return None
        B = res[0] @ M.T
    return float(np.einsum("ij,ij->", B, B))


def _pinv_trace(e: np.ndarray, q: np.ndarray, rcond: float) -> float:
    """Σ q_i / e_i over the eigenvalues that ``np.linalg.pinv(·, rcond)`` keeps.

    For a symmetric matrix the singular values are |e_i|; pinv keeps |e_i| > rcond·max|e| and
    inverts them with their sign (V·diag(1/e)·Vᵀ).
    """
    a = np.abs(e)
    if a.size == 0 or a.max() == 0.0:
        return 0.0
    keep = a > rcond * a.max()
    return float(np.sum(q[keep] / e[keep]))


def _centre(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=0)


@register(
    "hscore",
    summary="H-score: tr(cov(f)⁺ · cov(E[f|y])), the between-class share of feature variance",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("scale", "rotation", "translation"),
)
def hscore(
    features,
    labels=None,
    *,
    source_probs=None,
    rcond: float = RCOND,
    standardize: bool = False,
) -> float:
    """H-score (higher = better): trace(pinv(cov_f, rcond) @ cov_g).

    Matches ``YaojieBao/An-Information-theoretic-Metric-of-Transferability``
    ``3D_scene_understanding/H-score_1st_order.py::getDiffNN``
    @ 9a3f2d3f2511b6825a9d18c5fd7becbb06cae0b1 (the authors' code), which is identical to
    ``tllib/ranking/hscore.py::h_score`` @ c4aa59eb565650a552b809411601d0589efbbfe4
    (conformance rtol 1e-8).

    Inputs: ``features`` [N, D], raw (cast to float64); ``labels`` [N] in 0..C-1, every class
    present, N ≥ C + 1. ``source_probs`` is ignored.

    cov_f = covariance of X with ddof = 1; g = X with every row replaced by its class mean,
    cov_g = covariance of g with ddof = 1, i.e. Σ_c n_c·(μ_c − μ)(μ_c − μ)ᵀ/(N − 1). pinv keeps
    the singular values above ``rcond``·max (numpy semantics).

    Parameters
    ----------
    rcond : float, default 1e-15
        Relative cutoff of the pseudo-inverse, as upstream. A larger value (e.g. 1e-10) gives a
        stable pseudo-inverse on rank-deficient features (see below).
    standardize : bool, default False
        True applies StandardScaler first, as dbolya/parc ``HScore`` @ ddfca43 (zero-variance
        columns are left unscaled). Equal to the default whenever cov_f has full rank. dbolya's
        1e-8 guard in the class-mean division (n_c + 1e-8) is not reproduced; it moves the score
        by ~1e-10 relative.

    Exact shortcuts: cov_g = MᵀM/(N − 1) has rank ≤ C, with M the C×D matrix of rows
    √n_c·(μ_c − μ), so the score is tr(M·pinv(S)·Mᵀ) with S = XcᵀXc (the (N − 1) factors cancel);
    neither pinv(S) nor any D×D product with it is formed.
    (1) When D ≤ N and S is *provably* well conditioned — Cholesky S = L·Lᵀ succeeds and
    tr(S)·‖L⁻¹‖_F² < min(1e11, 1e-4/rcond), an upper bound on κ₂(S) — every eigenvalue is far
    above the pinv cutoff, pinv(S) = S⁻¹ exactly, and the score is ‖L⁻¹Mᵀ‖_F² (two level-3 BLAS
    factorisations instead of an eigendecomposition).
    (2) Otherwise one symmetric eigendecomposition S = V·diag(λ)·Vᵀ replaces pinv's SVD (for
    symmetric S the singular values are |λ|, and pinv(S) = V·diag(1/λ)·Vᵀ on the kept ones) and
    the score is Σ_i ‖M·v_i‖²/λ_i over the kept λ_i. When D > N it runs on XcXcᵀ [N×N] (same
    nonzero spectrum; see ``_between_spectrum``).

    Degenerate input (documented rule): constant features give cov_f = 0, pinv = 0 and a score of
    0. When the centred features have rank N − 1 (generic for D ≥ N − 1) they span every centred
    direction and the score is exactly C − 1, its maximum, whatever the features. For D > N it is
    computed on the N×N side, where the D − N structural zero eigenvalues of S do not exist
    (upstream inverts whatever rounding noise of them passes the 1e-15 cutoff, so its value there
    is arbitrary). A value within ``zoorank.ranking.TIE_RTOL`` (10⁻⁹ relative) of C − 1 is returned as
    exactly C − 1, so saturated models tie on every machine. Rank-deficient features with D ≤ N (e.g.
    duplicated samples, collinear columns) follow upstream's pinv semantics (the Cholesky shortcut
    cannot certify them); if rounding noise then makes the score exceed its exact bound C − 1 (by
    more than 1e-6 relative) an :class:`InputError` is raised suggesting a larger ``rcond``.
    """
    metric = "hscore"
    X, y, C = check_xy(features, labels, metric)
    Xc = _centre(X)
    if standardize:
        std = Xc.std(axis=0)
        std[std == 0.0] = 1.0
        Xc /= std
    N, D = Xc.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score = None
        G = None
        if D <= N:
            G, _ = _spectral.gram(Xc)
            score = _chol_trace(G, _class_offsets(Xc, y, C), _max_kappa(rcond))
        if score is None:
            lam, q = _between_spectrum(Xc, y, C, metric, G)
            score = _pinv_trace(lam, q, rcond)
    return _check_bound(finite_score(score, metric), C - 1, metric)


def _check_bound(score: float, bound: float, metric: str) -> float:
    """The exact score is at most ``bound``; a larger value is pinv noise.

    A score within :data:`zoorank.ranking.TIE_RTOL` of ``bound`` (relative) *is* the bound: the
    saturated value (e.g. H-Score's C − 1 when the centred features have rank N − 1) comes out as
    C − 1 ± a few ulps depending on the BLAS kernel, and the order of saturated models must not.
    """
    if abs(score - bound) <= TIE_RTOL * abs(bound):
        return float(bound)
    if score > bound * (1.0 + 1e-6) + 1e-9:
        raise InputError(
            f"{metric}: the score {score:.6g} exceeds its exact maximum {bound:.6g}: the "
            "feature covariance is numerically rank-deficient and pinv inverted rounding noise; "
            "pass a larger rcond (e.g. rcond=1e-10) or remove duplicated/collinear features"
        )
    return score


def ledoit_wolf_shrinkage(Xc: np.ndarray, fro2: float) -> tuple[float, float]:
    """scikit-learn's ``ledoit_wolf_shrinkage(X, assume_centered=False)`` in closed form.

    ``Xc`` [n, p] centred, ``fro2`` = ‖XcᵀXc‖_F² (= ‖XcXcᵀ‖_F², from whichever Gram is formed).
    With t_j = Σ_i x_ij²/n (emp. variances, 1/n), μ = Σ_j t_j/p:
      β' = Σ over all entries of (Xc²)ᵀ·Xc² = Σ_i ‖x_i‖⁴  (the blocked sum upstream),
      δ' = ‖XcᵀXc‖_F²/n²,
      β = (β'/n − δ')/(p·n),  δ = (δ' − 2μ·Σ_j t_j + p·μ²)/p,
      shrinkage = 0 if min(β, δ) == 0 else min(β, δ)/δ.
    A single feature gives 0, as upstream. Returns ``(shrinkage, μ)``.
    """
    n, p = Xc.shape
    row2 = np.einsum("ij,ij->i", Xc, Xc)
    trace_n = row2.sum() / n  # Σ_j t_j
    mu = trace_n / p
    if p == 1:
        return 0.0, mu
    beta_raw = float(np.dot(row2, row2))
    delta_raw = fro2 / n**2
    beta = 1.0 / (p * n) * (beta_raw / n - delta_raw)
    delta = (delta_raw - 2.0 * mu * trace_n + p * mu**2) / p
    beta = min(beta, delta)
    return (0.0 if beta == 0 else beta / delta), mu


@register(
    "reg_hscore",
    summary="Shrinkage H-score: H-score with a Ledoit-Wolf covariance estimate",
    paper=_PAPER_REG,
    needs_labels=True,
    needs_features=True,
    invariances=("scale", "rotation", "translation"),
)
def reg_hscore(features, labels=None, *, source_probs=None, rcond: float = RCOND) -> float:
    """Regularised (shrinkage) H-score (higher = better).

    Matches ``thuml/Transfer-Learning-Library`` ``tllib/ranking/hscore.py::regularized_h_score``
    @ c4aa59eb565650a552b809411601d0589efbbfe4 (the authors' own code was not found; conformance
    rtol 1e-8).

    Inputs: ``features`` [N, D] (cast to float64); ``labels`` [N] in 0..C-1, every class present,
    N ≥ C + 1. ``source_probs`` is ignored.

    X is centred. Ledoit-Wolf (``sklearn.covariance.LedoitWolf(assume_centered=False)``):
    shrinkage α (see :func:`ledoit_wolf_shrinkage`) and cov_α = (1 − α)·S/N + α·(tr(S)/(N·D))·I
    with S = XcᵀXc — normalised by **1/N**. g = class-mean broadcast of Xc and cov_g =
    ``np.cov(g)``, normalised by **1/(N − 1)** (the mixed normalisations are upstream's).
    score = trace(pinv(cov_α, rcond) @ ((1 − α)·cov_g)).

    Parameters
    ----------
    rcond : float, default 1e-15
        Relative cutoff of the pseudo-inverse, as upstream.

    Exact shortcuts: the shrinkage needs only ‖S‖_F² (from the Gram matrix) and the row norms —
    no LedoitWolf object. cov_g has rank ≤ C (M as in :func:`hscore`), so no D×D product.
    (1) When D ≤ N and α > 0, κ₂(cov_α) ≤ ((1 − α)·D + α)/α (λmax ≤ tr, λmin ≥ α·μ). If that is
    below min(1e11, 1e-4/rcond), pinv(cov_α) = cov_α⁻¹ exactly and the score is
    (1 − α)/(N − 1)·‖L⁻¹Mᵀ‖_F² with cov_α = L·Lᵀ (Cholesky; no eigendecomposition).
    (2) Otherwise: cov_α shares the eigenvectors of S, with eigenvalues (1 − α)·λ_i/N + α·μ (the
    D − rank(S) null directions get α·μ and carry no between-class energy), so the score is
    Σ_i (1 − α)·‖M·v_i‖²/(N − 1) / ((1 − α)·λ_i/N + α·μ) over the kept eigenvalues, from one
    eigendecomposition of the smaller Gram matrix (as in :func:`hscore`).

    Degenerate input (documented rule): constant features give S = 0, shrinkage 0 (upstream's
    β = 0 rule), cov_α = 0, pinv = 0 and a score of 0. Otherwise α > 0 keeps cov_α well
    conditioned and the score is finite; a value above the exact bound (C − 1)·N/(N − 1) (reached
    as α → 0, because of the mixed 1/N and 1/(N − 1) normalisations) raises :class:`InputError`
    as in :func:`hscore`.
    """
    metric = "reg_hscore"
    X, y, C = check_xy(features, labels, metric)
    N, D = X.shape
    Xc = _centre(X)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        G, feature_side = _spectral.gram(Xc)
        alpha, mu = ledoit_wolf_shrinkage(Xc, float(np.einsum("ij,ij->", G, G)))
        # κ₂(cov_α) ≤ ((1 − α)·D·μ + α·μ)/(α·μ): λmax ≤ tr(cov_α), λmin ≥ α·μ
        kappa = ((1.0 - alpha) * D + alpha) / alpha if alpha > 0 and mu > 0 else np.inf
        if feature_side and kappa < _max_kappa(rcond):
            cov = G * ((1.0 - alpha) / N)
            cov[np.diag_indices_from(cov)] += alpha * mu
            score = _chol_trace(cov, _class_offsets(Xc, y, C), None)
            if score is not None:
                score *= (1.0 - alpha) / (N - 1)
                return _check_bound(finite_score(score, metric), (C - 1) * N / (N - 1), metric)
        lam, q = _between_spectrum(Xc, y, C, metric, G)
        del G
        e = (1.0 - alpha) * lam / N + alpha * mu
        # the D − len(lam) eigenvalues of cov_α missing when D > N equal α·μ (q = 0 there); they
        # can only raise the pinv cutoff's reference maximum, never carry a term
        e_ref = np.append(e, alpha * mu) if D > lam.shape[0] else e
        keep_max = np.abs(e_ref).max() if e_ref.size else 0.0
        if keep_max == 0.0:
            score = 0.0
        else:
            keep = np.abs(e) > rcond * keep_max
            score = float(np.sum((1.0 - alpha) * q[keep] / (N - 1) / e[keep]))
    return _check_bound(finite_score(score, metric), (C - 1) * N / (N - 1), metric)
