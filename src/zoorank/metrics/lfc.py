"""LFC — label-feature correlation (Deshpande et al., 2021)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _spectral
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_xy, finite_score

_PAPER = (
    "Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto, Perona: A "
    "Linearized Framework and a New Benchmark for Model Selection for Fine-Tuning, arXiv "
    "2102.00084, 2021"
)

#: Features whose spread around the mean row is below this share of max|x| count as constant.
_DEGENERATE = 1e-12


@register(
    "lfc",
    summary="Label-feature correlation: correlation of the centred feature Gram and label kernel",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("scale", "rotation"),
)
def lfc(features, labels=None, *, source_probs=None) -> float:
    """LFC (higher = better; a correlation in [−1, 1]).

    Semantics of ``zhangyikaii/Model-Spider`` ``mptms/LFC.py::LFC``
    @ f15a62c3406dd4dad59647460e7a04808094dcdd (torch; there is no official repository and no
    reference vectors — tested against a brute-force N×N computation):

        G = X·Xᵀ (raw features, no centring),  A_ij = +1 if y_i = y_j else −1,
        Ĝ = G − mean(G), Â = A − mean(A) (means over all N² entries),
        LFC = Σ Ĝ∘Â / √(Σ Ĝ² · Σ Â²).

    Inputs: ``features`` [N, D] (cast to float64); ``labels`` [N] in 0..C-1, every class
    present, N ≥ C + 1. ``source_probs`` is ignored. The reference subsamples 45 000 random
    samples when N > 45 000 (``torch.randperm``); we never subsample (the closed form below is
    O(N·D·min(N, D)) and memory-light), so results are deterministic and use all the data.

    Exact closed forms (no N×N matrix is formed). Write X = X̃ + 1·mᵀ with m the mean row and
    X̃ centred, a = X̃·m, S̃_c = Σ_{i∈c} x̃_i, n_c the class counts. Then mean(G) = ‖m‖² and
    Ĝ = X̃X̃ᵀ + a·1ᵀ + 1·aᵀ (X̃ᵀ1 = 0 and Σ a = 0 kill every cross term), so
        Σ Ĝ∘Â = Σ Ĝ∘A = 2·Σ_c ‖S̃_c‖² + 4·Σ_c n_c·(S̃_c·m),
        Σ Ĝ²  = ‖X̃ᵀX̃‖_F² + 2N·‖a‖²       (‖X̃ᵀX̃‖_F = ‖X̃X̃ᵀ‖_F: the smaller Gram),
        Σ Â²  = N² − (2·Σ_c n_c² − N²)²/N².
    Every term of Σ Ĝ² is non-negative, so there is no cancellation between raw Gram entries
    even for features with a large common offset. Float64 throughout (the reference computes in
    float32).

    Degenerate input (documented rule): if all samples have the same features (every
    |x_ij − m_j| ≤ 1e-12·max|x|, which includes all-zero features) the feature Gram has no
    variation, the correlation is undefined and :class:`InputError` is raised. With at least two
    classes Σ Â² > 0 always.
    """
    metric = "lfc"
    X, y, C = check_xy(features, labels, metric)
    N = X.shape[0]
    counts = np.bincount(y, minlength=C).astype(np.float64)
    m = X.mean(axis=0)
    Xt = X - m
    if not np.abs(Xt).max() > _DEGENERATE * np.abs(X).max():
        raise InputError(
            f"{metric}: every sample has the same features (up to rounding, or all zero); the "
            "feature Gram matrix has no variation and the correlation is undefined"
        )
    S = _spectral.class_sums(Xt, y, C)
    a = Xt @ m
    G, _ = _spectral.gram(Xt)
    var_g = float(np.einsum("ij,ij->", G, G)) + 2.0 * N * float(a @ a)
    del G
    cov = 2.0 * float(np.einsum("cd,cd->", S, S)) + 4.0 * float(counts @ (S @ m))
    nn = float(N) ** 2
    sum_a = 2.0 * float(counts @ counts) - nn
    var_a = nn - sum_a**2 / nn
    return finite_score(cov / np.sqrt(var_g * var_a), metric)
