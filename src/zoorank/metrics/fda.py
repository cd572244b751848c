"""FDA — the Fisher-discriminant score that fills Fennec's historical performance matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _fisher
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_xy, finite_score

_PAPER = (
    "Bai, Wu, Song, Zhao, Chen: Pre-Trained Model Recommendation for Downstream Fine-tuning "
    "(Fennec), arXiv 2024 — section 3.1, eqs. (2)-(3), appendix C"
)


@dataclass(frozen=True)
class FDAProjection:
    """The fitted Fisher projection (all arrays in the input's feature space R^D)."""

    U: np.ndarray  # [D, k] generalised eigenvectors, Uᵀ·S_W·U = I, descending eigenvalues
    eigenvalues: np.ndarray  # [k] of S_B·u = λ·S_W·u
    center: np.ndarray  # [D] global mean μ = Σ_c π_c μ_c
    means: np.ndarray  # [C, D] class means μ_c
    priors: np.ndarray  # [C] π_c = n_c / N
    shrinkage: float  # λ_shrink used for S_W


@_fisher.quiet
def _fit(X: np.ndarray, y: np.ndarray, C: int, shrinkage, overwrite: bool = False):
    """Fisher projection in working coordinates; returns (workspace, stats, U_w, eigenvalues).
    ``overwrite=True`` lets it centre ``X`` in place (only for arrays the metric owns)."""
    ws = _fisher.workspace(X, y, overwrite=overwrite)
    sw = _fisher.shrunk_within(ws.Z, ws.y, C, dim=ws.dim, start=ws.ones, shrinkage=shrinkage,
                               metric="fda")
    Mc = sw.means - sw.center  # [C, r] centred class means
    # S_B = Mcᵀ·diag(π)·Mc = Gᵀ·G with G = diag(√π)·Mc. With S_W = F·Fᵀ, S_B·u = λ·S_W·u becomes
    # (F⁻¹·S_B·F⁻ᵀ)·v = λ·v, v = Fᵀ·u, and F⁻¹·S_B·F⁻ᵀ = HᵀH with H = G·F⁻ᵀ = (F⁻¹·Gᵀ)ᵀ [C, r]:
    # the eigenvectors are H's right singular vectors, the eigenvalues its squared singular values.
    Ht = sw.factor.solve_lower(Mc.T) * np.sqrt(sw.priors)  # Hᵀ [r, C]
    # SVD of the wide H through a QR of Hᵀ (r×C) and the SVD of the small C×C factor:
    # Hᵀ = Q·R, R = W·Σ·Pᵀ  ⇒  H = P·Σ·(Q·W)ᵀ, so V = Q·W.
    Q, R = np.linalg.qr(Ht)
    W, s, _ = np.linalg.svd(R)
    k = min(C - 1, ws.dim)
    U = sw.factor.solve_upper(Q @ W[:, :k])  # u = F⁻ᵀ·v  ⇒  Uᵀ·S_W·U = Vᵀ·V = I
    return ws, sw, U, s[:k] ** 2


def fda_projection(features, labels, *, shrinkage: float | None = None) -> FDAProjection:
    """The projection U of :func:`fda` (for inspection and tests)."""
    X, y, C = check_xy(features, labels, "fda")
    ws, sw, U, ev = _fit(X, y, C, shrinkage)
    return FDAProjection(
        U=ws.lift(U),
        eigenvalues=ev,
        center=ws.offset + ws.lift(sw.center),
        means=ws.offset + ws.lift(sw.means.T).T,
        priors=sw.priors,
        shrinkage=sw.lam,
    )


@register(
    "fda",
    summary="Fennec's FDA score: Bayes posterior of the true class in the Fisher subspace",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("translation",),
)
def fda(
    features,
    labels=None,
    *,
    source_probs=None,
    reduction: str = "mean",
    shrinkage: float | None = None,
) -> float:
    """Fennec's FDA transferability proxy (higher = better; in [0, 1] with the default).

    Paper: Bai, Wu, Song, Zhao, Chen, "Pre-Trained Model Recommendation for Downstream
    Fine-tuning" (Fennec), arXiv 2024, section 3.1 and appendix C. No reference code or vectors
    exist; this implements the equations, with the regularisation of SFDA (which the paper cites
    as its inspiration), and is checked against closed forms and a slow scipy implementation.

    Inputs: ``features`` [N, D] (raw, cast to float64), ``labels`` [N] 0..C-1 with every class
    present, N ≥ C + 1. ``source_probs`` is ignored.

      π_c = n_c / N, μ_c class means, μ = Σ_c π_c μ_c;
      S_W = Σ_c π_c·cov_c  (1/n_c class covariances, ``np.cov(bias=1)``);
      S_B = Σ_c π_c (μ_c − μ)(μ_c − μ)ᵀ;
      S_W ← (1−λ)·S_W + λ·(tr S_W / D)·I  with SFDA's adaptive λ = max(exp(−5·λmax), 1e-10),
            λmax from 3 power iterations on S_W (start S_W·1) — so S_W is positive definite and
            the score is defined even when D > N;
      U = the top k = min(C−1, D) generalised eigenvectors of S_B·u = λ·S_W·u (paper eq. 12),
          normalised so that Uᵀ·S_W·U = I. That normalisation is exactly what makes the paper's
          simplification Σ = I correct: the projected within-class covariance is Uᵀ·S_W·U = I;
      f̃ = Uᵀ·f, μ̃_c = Uᵀ·μ_c;
      p(x, c) = f̃ᵀμ̃_c − ½·μ̃_cᵀμ̃_c + log π_c  (paper eq. 2, Σ = I);
      score = (1/N)·Σ_i softmax_c p(x_i, c)[y_i]   (``reduction="mean"``, default), or
              Σ_i softmax_c p(x_i, c)[y_i]        (``reduction="sum"``: the paper's eq. 3).

    The mean is the default so that scores of tasks of different sizes are comparable (the
    paper's historical matrix mixes tasks); it is non-negative, as Fennec's NMF needs.

    Parameters: ``reduction`` ("mean" | "sum"); ``shrinkage`` (None = adaptive λ as above, or a
    fixed λ in [0, 1]; 0 = the unregularised FDA, needs a non-singular S_W).

    Implementation: with S_W = F·Fᵀ (Cholesky) and S_B = GᵀG (G = diag(√π)·(μ_c − μ), C×D), the
    eigenvectors are U = F⁻ᵀ·V with V the right singular vectors of H = G·F⁻ᵀ (C×D, obtained from
    a QR of Hᵀ and a C×C SVD): one Cholesky, no D×D eigendecomposition. Features are centred at
    μ first (logits change by a per-sample constant only), and for D > N everything runs exactly
    in the span of the centred data. Identity worth knowing: since all k ≥ rank(S_B) eigenvectors
    are kept, U·Uᵀ·(μ_c − μ) = S_W⁻¹·(μ_c − μ), so this posterior equals SFDA's first-step
    (regularised LDA) posterior, i.e. ``etran(..., corrected=True)``.

    Degenerate rules: zero within-class scatter (every sample equals its class mean, e.g.
    constant features), a scatter that overflows float64, ``shrinkage=0`` with a singular S_W,
    or a ``shrinkage`` outside [0, 1] raise InputError; rank(S_B) < k leaves eigenvalue-0
    directions in U that contribute nothing to the posterior; classes with identical
    distributions give a score near Σ_c π_c² (the posterior falls back to the priors); D ≫ N is
    fine.
    """
    if reduction not in ("mean", "sum"):
        raise InputError(f"fda: reduction must be 'mean' or 'sum', got {reduction!r}")
    X, y, C = check_xy(features, labels, "fda")
    score = _score(X, y, C, shrinkage, reduction, overwrite=_fisher.owns(X, features))
    return finite_score(score, "fda")


@_fisher.quiet
def _score(X, y, C, shrinkage, reduction, overwrite=False) -> float:
    ws, sw, U, _ = _fit(X, y, C, shrinkage, overwrite)
    f = (ws.Z - sw.center) @ U  # [N, k] projected (centred) features
    m = (sw.means - sw.center) @ U  # [C, k] projected (centred) class means
    logits = f @ m.T - 0.5 * np.einsum("ck,ck->c", m, m) + np.log(sw.priors)
    P = _fisher.softmax(logits)
    p_true = P[np.arange(ws.y.shape[0]), ws.y]
    return float(p_true.mean() if reduction == "mean" else p_true.sum())
