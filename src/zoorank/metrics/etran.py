"""ETran — energy-based transferability (Gholami et al., ICCV 2023): energy and LDA parts."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _fisher
from zoorank.metrics._registry import register, register_pool
from zoorank.metrics._validate import check_features, check_pool, check_xy, finite_score

_PAPER = (
    "Gholami, Akbari, Wang, Kamranian, Zhang: ETran: Energy-Based Transferability Estimation, "
    "ICCV 2023"
)

#: Weights of the pool score (``tw.py``): 0.15·energy + 0.85·lda after min-max scaling.
ENERGY_WEIGHT = 0.15
LDA_WEIGHT = 0.85


@_fisher.quiet
def _energy_values(X: np.ndarray, percent: float, tail: str, *, overwrite: bool = False) -> float:
    """Mean of the lowest (or highest) k per-sample logsumexp values; ``overwrite=True`` reuses
    ``X``'s memory for the exponentials (only for arrays the metric owns)."""
    m = X.max(axis=1, keepdims=True)
    E = np.subtract(X, m, out=X if overwrite else None)
    np.exp(E, out=E)
    e = m[:, 0] + np.log(E.sum(axis=1))  # stable logsumexp over the features
    N = e.shape[0]
    k = max(int(percent * 10) * N // 1000, 1)
    e.sort()
    return float(e[:k].mean() if tail == "bottom" else e[N - k :].mean())


@register(
    "energy",
    summary="ETran's energy part: mean of the lowest 0.5 % per-sample logsumexp of the features",
    paper=_PAPER,
    needs_labels=False,
    needs_features=True,
    invariances=(),
)
def energy(
    features, labels=None, *, source_probs=None, percent: float = 0.5, tail: str = "bottom"
) -> float:
    """ETran energy score (label-free; higher = better).

    Paper: Gholami, Akbari, Wang, Kamranian, Zhang, "ETran: Energy-Based Transferability
    Estimation", ICCV 2023. Matches ``Energy_Score(X, 0.5, 'bot')`` of mgholamikn/ETran
    ``metrics.py`` @ d4551ed8f41f4ed6eba08b9cc1a78bae178acd19 as called by ``evaluate_metric.py``
    (conformance rtol 1e-10).

    eᵢ = logsumexp_d X[i, d] (the free energy −E(x) of the features read as logits); sort
    ascending and return the mean of the first k = ⌊⌊10·percent⌋·N / 1000⌋ values (the lowest
    ``percent`` %, with upstream's truncation of ``percent`` to 0.1 % steps).

    Inputs: ``features`` [N, D]; ``labels`` and ``source_probs`` are ignored. Upstream applies it
    to the penultimate-layer features (not logits). To get the classic energy score of a
    classifier's logits, pass the logits [N, K] as ``features`` (probabilities would be useless:
    logsumexp of log-probabilities is 0).

    Parameters: ``percent`` (default 0.5, in per cent), ``tail`` ("bottom" = upstream's 'bot',
    the lowest energies; "top" = the highest k).

    Degenerate rule: upstream's selection is empty (NaN result) when k = 0, i.e. N < 200 at the
    default; here at least one sample is kept (k = max(k, 1)), which matches upstream whenever
    N ≥ 200. logsumexp is computed stably, so huge features give finite values.
    """
    X = check_features(features, "energy")
    if tail not in ("bottom", "top"):
        raise InputError(f"energy: tail must be 'bottom' or 'top', got {tail!r}")
    if not percent > 0:
        raise InputError(f"energy: percent must be > 0, got {percent}")
    return finite_score(
        _energy_values(X, percent, tail, overwrite=_fisher.owns(X, features)), "energy"
    )


def _lda_upstream(X: np.ndarray, y: np.ndarray, C: int, overwrite: bool) -> float:
    """coef = means (see :func:`etran`): p(c|x) = softmax_c(−½‖x − μ_c‖² + log π_c)."""
    ws = _fisher.workspace(X, y, overwrite=overwrite, reduce=False)  # distances: no D > N trick
    counts, means = _fisher.class_means(ws.Z, ws.y, C)
    priors = counts / counts.sum()
    logits = ws.Z @ means.T
    logits += -0.5 * np.einsum("cd,cd->c", means, means) + np.log(priors)
    return _fisher.true_class_mean(_fisher.softmax(logits), ws.y)


def _lda_corrected(X: np.ndarray, y: np.ndarray, C: int, overwrite: bool) -> float:
    ws = _fisher.workspace(X, y, overwrite=overwrite)
    fit = _fisher.fit_lda(ws.Z, ws.y, C, dim=ws.dim, start=ws.ones, metric="etran")
    return _fisher.true_class_mean(fit.posterior(ws.Z), ws.y)


@_fisher.quiet
def lda_score(
    X: np.ndarray, y: np.ndarray, C: int, *, corrected: bool = False, overwrite: bool = False
) -> float:
    """ETran's ``LDA_Score`` on validated arrays (see :func:`etran`); ``overwrite=True`` lets it
    centre ``X`` in place (only for arrays the metric owns)."""
    fn = _lda_corrected if corrected else _lda_upstream
    return fn(X, y, C, overwrite)


@register(
    "etran",
    summary="ETran's LDA part (per model); the paper's ETran is the pool form",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("rotation", "translation"),
)
def etran(features, labels=None, *, source_probs=None, corrected: bool = False) -> float:
    """ETran, per model: the LDA part ``LDA_Score`` (higher = better, in [0, 1]).

    The paper's ETran score is defined relative to a pool of candidate models; use the pool form
    (``compute_pool("etran", ...)`` / :func:`etran_pool`). For a single model this function
    returns the LDA part alone (the 0.85-weighted, label-using part; the energy part is
    :func:`energy`), because min-max scaling across one model is undefined.

    Paper: Gholami et al., "ETran: Energy-Based Transferability Estimation", ICCV 2023. Matches
    ``LDA_Score`` of mgholamikn/ETran ``metrics.py`` @ d4551ed8f41f4ed6eba08b9cc1a78bae178acd19
    (conformance rtol 1e-6).

    Upstream fits SFDA's regularised LDA (adaptive shrinkage, shrunk_Sw, Sb = St − shrunk_Sw; see
    :mod:`zoorank.metrics._fisher`) but takes the eigenvectors from
    ``np.linalg.eigh(inv(shrunk_Sw) @ Sb)``. That matrix is not symmetric and ``eigh`` reads only
    its lower triangle, so V are the orthonormal eigenvectors of some symmetric matrix: VᵀV = I,
    and with all D kept V·Vᵀ = I. Hence coef = means·V·Vᵀ = means *exactly* (verified against
    the vectors: the eigenvectors never matter), and the upstream classifier reduces to a
    nearest-class-mean rule:

        p(c|x) = softmax_c(xᵀμ_c − ½‖μ_c‖² + log π_c) = softmax_c(−½‖x − μ_c‖² + log π_c),
        score = mean_i p(y_i|x_i)   (no log).

    That is O(N·D·C): no scatter matrix, no inverse, no eigendecomposition (the reference takes
    ~39 s at N=5000, D=2048, C=100). Because upstream's inverse/eigh never run, input on which
    upstream would crash (singular shrunk_Sw) still gets this well-defined score.

    ``corrected=True``: true generalised eigenvectors of (Sb, shrunk_Sw), which with all D kept
    give coef = means·shrunk_Sw⁻¹ (the SFDA first-step classifier): p(c|x) =
    softmax_c(xᵀS⁻¹μ_c − ½μ_cᵀS⁻¹μ_c + log π_c). Not rotation invariant (λ's power iteration).

    Inputs: ``features`` [N, D], ``labels`` [N] 0..C-1 every class present, N ≥ C + 1.
    Degenerate input: constant features give the prior-only posterior (score Σ_c π_c²);
    duplicates and D ≫ N are fine. The corrected form raises InputError when the within-class
    scatter is zero.
    """
    X, y, C = check_xy(features, labels, "etran")
    score = lda_score(X, y, C, corrected=corrected, overwrite=_fisher.owns(X, features))
    return finite_score(score, "etran")


def etran_pool_parts(
    features_list, labels, *, percent: float = 0.5, corrected: bool = False
) -> dict[str, np.ndarray]:
    """Per-model ``energy`` and ``lda`` of a pool plus the cross-model ``score`` (arrays)."""
    if not percent > 0:
        raise InputError(f"etran: percent must be > 0, got {percent}")
    y, C, models = check_pool(features_list, labels, "etran")
    en, ld = [], []
    for X, f in models:
        ld.append(finite_score(lda_score(X, y, C, corrected=corrected), "etran"))
        en.append(finite_score(
            _energy_values(X, percent, "bottom", overwrite=_fisher.owns(X, f)), "etran"
        ))
    en, ld = np.array(en), np.array(ld)
    score = ENERGY_WEIGHT * _fisher.minmax_across_models(en) + LDA_WEIGHT * (
        _fisher.minmax_across_models(ld)
    )
    return {"energy": en, "lda": ld, "score": score}


@register_pool("etran")
def etran_pool(features_list, labels, *, percent: float = 0.5, corrected: bool = False):
    """ETran's pool score (``tw.py``, metric 'etran', mgholamikn/ETran @ d4551ed8): one score per
    model, higher = better.

        score_m = 0.15·minmax(energy)_m + 0.85·minmax(lda)_m,
        minmax(v)_m = (v_m − min v) / (max v − min v) across the models of the pool.

    Matches the reference ``pool_score`` (rtol 1e-6). Tie rule (upstream divides by zero): a
    component whose values all tie (max − min ≤ 1e-12·max|v|, e.g. a pool of one model)
    contributes 0 to every model. ``percent`` and ``corrected`` are passed to :func:`energy`
    and :func:`etran`. Per-model parts: :func:`etran_pool_parts`.
    """
    return etran_pool_parts(features_list, labels, percent=percent, corrected=corrected)["score"]
