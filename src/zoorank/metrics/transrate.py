"""TransRate — coding-rate mutual information of features and labels (Huang et al., ICML 2022)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _spectral
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_xy, finite_score

_PAPER = (
    "Huang, Huang, Rong, Yang, Wei: Frustratingly Easy Transferability Estimation, ICML 2022"
)

_VARIANTS = ("tllib", "official")


def _official(Z: np.ndarray, blocks: list[np.ndarray], eps: float, metric: str) -> float:
    """Long-Kai/TransRate two-step score on the globally centred ``Z`` (rows then L2-normalised).

    rz = Σ_i log(1 + λ_i/eps) over the eigenvalues λ_i of ZᵀZ/n, rzc_c likewise for Z_cᵀZ_c/n_c,
    score = (rz − Σ_c (n_c/n)·rzc_c) / (2·rank(ZᵀZ/n)); rank with numpy's ``matrix_rank`` rule on
    the D×D matrix (singular values > max·D·ε_machine).
    """
    n, D = Z.shape
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise InputError(
            f"{metric}: variant='official' L2-normalises the centred rows, but {zero.size} "
            f"sample(s) (first: {int(zero[0])}) equal the feature mean (zero norm)"
        )
    Z = Z / norms[:, None]
    G, feature_side = _spectral.gram(Z)
    G /= n
    inverse = _spectral.chol_inverse(G) if feature_side else None
    if inverse is not None and inverse[1] < _spectral.WELL_CONDITIONED:
        rank = D  # provably full rank: every eigenvalue > 1e-11·λmax ≫ the D·ε_mach tolerance
        rz = _spectral.logdet_eye_plus(G, 1.0 / eps, metric)
    else:
        lam = np.abs(_spectral.eigvalsh(G, metric))
        rank = int(np.count_nonzero(lam > lam.max() * D * np.finfo(np.float64).eps))
        if rank == 0:
            raise InputError(f"{metric}: the normalised features have rank 0")
        rz = float(np.sum(np.log1p(lam / eps)))
    rzc = sum(
        idx.size / n * _spectral.logdet_coding(Z[idx], 1.0 / (idx.size * eps), metric)
        for idx in blocks
    )
    return (rz - rzc) / (2.0 * rank)


@register(
    "transrate",
    summary="TransRate: coding rate of the features minus the mean class-conditional coding rate",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("rotation", "translation"),
)
def transrate(
    features,
    labels=None,
    *,
    source_probs=None,
    eps: float = 1e-4,
    variant: str = "tllib",
) -> float:
    """TransRate (higher = better).

    Default (``variant="tllib"``) matches ``thuml/Transfer-Learning-Library``
    ``tllib/ranking/transrate.py::transrate(X, y, eps=1e-4)``
    @ c4aa59eb565650a552b809411601d0589efbbfe4, the form most follow-up work uses (conformance
    rtol 1e-8):

        Z = X − mean(X) (global centring, float64; no per-row normalisation)
        R(Z) = ½·logdet(I_D + ZᵀZ/(n·eps)),  n = rows of Z
        score = R(Z) − (1/C)·Σ_c R(Z_c)

    with Z_c the class-c rows of the globally centred Z (**not** re-centred per class) and an
    **unweighted** mean over classes. Scores grow with D.

    ``variant="official"`` is ``Long-Kai/TransRate`` @ 247d41a82037e9ca8a41ce1318ac11cc7b1cd885:
    ``generate_transrate/transrate.py::pre_transrate`` (rows of the centred X L2-normalised,
    eigenvalues of ZᵀZ/n and Z_cᵀZ_c/n_c, rank of ZᵀZ/n) followed by
    ``extract_result_utils.py::process_transrate_logs`` with its defaults (reg=1,
    opt_active_eigs='all', opt_res='weight', normalize_opt='rank'):

        rz = Σ log(1 + λ(ZᵀZ/n)/eps),  rzc_c = Σ log(1 + λ(Z_cᵀZ_c/n_c)/eps)
        score = (rz − Σ_c (n_c/n)·rzc_c) / (2·rank(ZᵀZ/n))    (class term weighted by n_c/n)

    Inputs: ``features`` [N, D] (cast to float64); ``labels`` [N] in 0..C-1, every class
    present, N ≥ C + 1. ``source_probs`` is ignored.

    Parameters
    ----------
    eps : float, default 1e-4
        Distortion ε (both variants; upstream's official demo uses 1e-3..2e-2 per experiment).
    variant : {"tllib", "official"}

    Exact shortcuts: det(I_D + ZᵀZ·s) = det(I_n + ZZᵀ·s) (Sylvester), so every log-determinant is
    taken on the smaller side — classes with n_c < D use their n_c×n_c Gram — by Cholesky (the
    matrix is I + PSD, so SPD). Σ log(1 + λ/eps) over the eigenvalues of ZᵀZ/n equals that same
    log-determinant. The official variant also needs rank(ZᵀZ/n): when D ≤ N and a Cholesky
    bound proves κ₂(ZᵀZ/n) < 1e11 (see :mod:`._spectral`, identity 4) the rank is D and no
    eigenvalues are computed; otherwise they come from one symmetric eigenvalue decomposition of
    the smaller Gram matrix and numpy's ``matrix_rank`` rule is applied to them.

    Degenerate input (documented rule): the default is finite for any finite input (constant
    features give 0). With ``variant="official"`` a sample equal to the feature mean cannot be
    L2-normalised (upstream divides by zero) and raises :class:`InputError`, as does a rank-0
    normalised feature matrix.
    """
    metric = "transrate"
    if variant not in _VARIANTS:
        raise InputError(f"{metric}: variant must be one of {list(_VARIANTS)}, got {variant!r}")
    if not (np.isfinite(eps) and eps > 0):
        raise InputError(f"{metric}: eps must be a positive number, got {eps!r}")
    X, y, C = check_xy(features, labels, metric)
    Z = X - X.mean(axis=0)
    blocks = _spectral.class_blocks(y, C)
    if variant == "official":
        return finite_score(_official(Z, blocks, eps, metric), metric)
    n = Z.shape[0]
    rate = 0.5 * _spectral.logdet_coding(Z, 1.0 / (n * eps), metric)
    class_rate = sum(
        0.5 * _spectral.logdet_coding(Z[idx], 1.0 / (idx.size * eps), metric) for idx in blocks
    )
    return finite_score(rate - class_rate / C, metric)
