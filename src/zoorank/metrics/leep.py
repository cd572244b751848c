"""LEEP — log expected empirical prediction (Nguyen et al., ICML 2020)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _spectral
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_labels, check_probs, finite_score, require_samples

_PAPER = (
    "Nguyen, Hassner, Seeger, Archambeau: LEEP: A New Measure to Evaluate Transferability of "
    "Learned Representations, ICML 2020"
)


@register(
    "leep",
    summary="Log expected empirical prediction of the source head's dummy-label classifier",
    paper=_PAPER,
    needs_labels=True,
    needs_features=False,
    needs_source_probs=True,
)
def leep(features=None, labels=None, *, source_probs=None) -> float:
    """LEEP (≤ 0; higher = better).

    Matches ``thuml/LogME`` ``LEEP.py`` @ 56551ca94a3295bcc37e6a01b1291911af985f07, which gives
    the same numbers as ``tllib/ranking/leep.py`` @ c4aa59e (conformance rtol 1e-10).

    Inputs: ``source_probs`` θ [N, Cs], softmax outputs of the source head (rows sum to 1; not
    logits); ``labels`` [N] in 0..C-1, every class present. ``features`` is unused (may be None).

        P(y, z) = Σ_{i: y_i = y} θ[i, z] / N,   P(y | z) = P(y, z) / Σ_y' P(y', z),
        eep_i = Σ_z θ[i, z]·P(y_i | z),          LEEP = (1/N)·Σ_i log eep_i.

    No epsilon, as upstream. The joint is one sparse class-sum product (O(N·Cs)); eep_i is a
    row-wise dot product with the gathered rows P(y_i | ·) — the N×C matrix θ·P(y|z)ᵀ of upstream
    is never formed.

    Degenerate input (documented rule): a source class z with zero total mass (θ[:, z] = 0 for all
    samples) has undefined P(·|z) (upstream: 0/0 = NaN, which poisons the score); we define
    P(y|z) = 0 there — it multiplies θ[i, z] = 0, so it contributes nothing and every other
    number is unchanged. eep_i > 0 always holds for valid probabilities (sample i itself puts
    θ[i, z] > 0 into P(y_i, z) for some z), so the log is finite; if rounding ever broke that,
    :class:`InputError` would be raised rather than returning −inf. (google-research's TF version
    substitutes −log C there instead.)
    """
    metric = "leep"
    y, C = check_labels(labels, None, metric)
    N = y.shape[0]
    P = check_probs(source_probs, None, metric)
    if P.shape[0] != N:
        raise InputError(
            f"{metric}: labels have length {N} but source_probs have {P.shape[0]} rows"
        )
    require_samples(metric, N, C + 1, f"more samples than the {C} classes")
    joint = _spectral.class_sums(P, y, C) / N  # [C, Cs]
    mass = joint.sum(axis=0)
    cond = np.divide(joint, mass, out=np.zeros_like(joint), where=mass > 0)
    eep = np.einsum("ij,ij->i", P, cond[y])
    if not np.all(eep > 0):
        i = int(np.flatnonzero(~(eep > 0))[0])
        raise InputError(f"{metric}: the expected empirical prediction of sample {i} is 0")
    return finite_score(np.mean(np.log(eep)), metric)
