"""SFDA — Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022)."""

from __future__ import annotations

import numpy as np

from zoorank.metrics import _fisher
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_xy, finite_score

_PAPER = (
    "Shao, Zhao, Ge, Zhang, Yang, Wang, Shan, Luo: Not All Models Are Equal: Predicting Model "
    "Transferability in a Self-challenging Fisher Space, ECCV 2022"
)


@_fisher.quiet
def sfda_core(
    X: np.ndarray,
    y: np.ndarray,
    C: int,
    *,
    double_softmax: bool = True,
    shrinkage: float | None = None,
    metric: str = "sfda",
    overwrite: bool = False,
    reduce: bool | None = None,
) -> float:
    """SFDA on validated float64 ``X`` [N, D] and labels ``y`` (0..C-1).

    ``X`` is modified only when ``overwrite=True`` (arrays the caller owns, to save N×D copies).
    ``reduce`` forces (True) or forbids (False) the exact N-dimensional coordinates used by
    default when D > N (for tests).
    Shared by :func:`sfda` and PED (which runs SFDA on its moved features).
    """
    ws = _fisher.workspace(X, y, overwrite=overwrite, reduce=reduce)
    y = ws.y
    Z = ws.Z  # private: a centred copy, or X itself when overwrite=True
    first = _fisher.fit_lda(Z, y, C, dim=ws.dim, start=ws.ones, shrinkage=shrinkage,
                            metric=metric)
    P = first.posterior(Z)
    if double_softmax:
        P = _fisher.softmax(P)  # upstream's deliberate "soften": a softmax of the probabilities
    # ConfMix, in place on the private Z: x_i ← p_i·x_i + (1 − p_i)·μ̄_{−y_i},
    # μ̄_{−c} = unweighted mean of the other classes' means
    means = first.means
    others = (means.sum(axis=0) - means) / (C - 1)
    p = P[np.arange(y.shape[0]), y][:, None]
    for rows in _fisher.row_blocks(*Z.shape):
        Zb = Z[rows]
        Zb *= p[rows]
        Zb += (1.0 - p[rows]) * others[y[rows]]
    second = _fisher.fit_lda(Z, y, C, dim=ws.dim, start=ws.ones, shrinkage=first.lam,
                             metric=metric)
    return _fisher.true_class_mean(second.posterior(Z), y)


@register(
    "sfda",
    summary="Self-challenging Fisher discriminant: regularised-LDA posterior after ConfMix",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("translation",),
)
def sfda(
    features,
    labels=None,
    *,
    source_probs=None,
    double_softmax: bool = True,
    shrinkage: float | None = None,
) -> float:
    """SFDA score (higher = better, in [0, 1]).

    Paper: Shao, Zhao, Ge, Zhang, Yang, Wang, Shan, Luo, "Not All Models Are Equal: Predicting
    Model Transferability in a Self-challenging Fisher Space", ECCV 2022. Matches
    ``TencentARC/SFDA`` ``metrics.py::SFDA_Score`` @ 3b7edf76bd682acb1eba4f4c5eb7ea7f3f7f6c59
    (conformance rtol 1e-6).

    Inputs: ``features`` [N, D] (raw, not standardised; cast to float64), ``labels`` [N] in
    0..C-1 with every class present, N ≥ C + 1. ``source_probs`` is ignored.

    Step 1 — regularised Fisher discriminant (see :mod:`zoorank.metrics._fisher`):
      π_c = n_c/N, μ_c class means, Sw = Σ_c π_c·cov_c (1/n_c covariances),
      λ = max(exp(−5·λmax), 1e-10) with λmax from 3 power iterations on Sw (start Sw·1),
      S = (1−λ)·Sw + λ·(tr Sw/D)·I,
      p(c|x) = softmax_c(xᵀS⁻¹μ_c − ½μ_cᵀS⁻¹μ_c + log π_c).
    Step 2 — soften and ConfMix: p ← softmax(p) (a softmax applied to the probabilities, as
      upstream), then x_i ← p_i[y_i]·x_i + (1 − p_i[y_i])·μ̄_{−y_i}, where μ̄_{−c} is the unweighted
      mean of the other classes' means.
    Step 3 — refit step 1 on the mixed features with the same λ; score = mean_i p(y_i|x_i)
      (no log).

    Parameters:
      double_softmax (default True): upstream's "soften" softmax of the probabilities. With
        C classes it squeezes every p_i[y_i] into [1/(e+C−1), e/(e+C−1)], so ConfMix moves most
        samples almost onto μ̄_{−y}. ``False`` mixes with the plain posterior (the paper's form).
      shrinkage (default None = adaptive λ as above): a fixed λ in [0, 1] instead.

    Exact shortcut: upstream solves ``scipy.linalg.eigh(Sb, shrunk_Sw)`` and keeps all D
    eigenvectors V (VᵀSV = I), so coef = means·V·Vᵀ = means·S⁻¹ — one Cholesky solve, no
    eigendecomposition, and Sb/St are never formed. Features are centred first (the posterior
    is translation invariant), and for D > N the fit runs exactly in the N-dimensional span of the
    centred data. Cost: two N·D² Gram products and two D×D Cholesky factorisations.

    Differences from upstream: the caller's array is never modified (upstream writes ConfMix into
    the caller's ``X`` in place); nothing is printed.

    Degenerate input: zero within-class scatter (all samples equal their class mean, e.g.
    constant features) raises InputError; if the power iteration's start vector Sw·1 is 0, the
    column of Sw with the largest diagonal is used instead (upstream gives NaN); if rounding
    makes the Cholesky factorisation fail, eigenvalues are clipped at λ·tr(Sw)/D; features so
    large that Sw overflows float64, or a fixed ``shrinkage`` outside [0, 1], raise InputError.
    D ≫ N, C close to N and duplicated samples are fine (the shrinkage keeps S positive
    definite).
    """
    X, y, C = check_xy(features, labels, "sfda")
    score = sfda_core(X, y, C, double_softmax=double_softmax, shrinkage=shrinkage,
                      overwrite=_fisher.owns(X, features))
    return finite_score(score, "sfda")
