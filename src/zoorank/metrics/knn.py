"""k-NN — leave-one-out k-nearest-neighbour accuracy on the features (transformer-ranker's ``NearestNeighbors``)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_features, check_labels, check_targets, finite_score, require_samples
from zoorank.ranking import TIE_RTOL

_PAPER = (
    "Garbas, Ploner, Akbik: TransformerRanker: A Tool for Efficiently Finding the Best-Suited Language Models "
    "for Downstream Classification Tasks, NAACL 2025 (system demonstrations); the k-NN baseline of Sorkhei et al., "
    "TMLR 2025"
)

#: Rows of the distance matrix computed at once (memory: this many x N float64).
_BLOCK = 1024


def _neighbours(X: np.ndarray, k: int) -> np.ndarray:
    """Indices [N, k] of each sample's k nearest other samples (Euclidean), nearest first.

    Squared distances come from the centred Gram expansion ‖a‖² + ‖b‖² − 2a·b (centring changes no distance and
    keeps the expansion's rounding far below the distances themselves). Distances equal up to rounding
    (:data:`zoorank.ranking.TIE_RTOL` of the row's largest) are ties and go to the lower index, so duplicated
    samples give the same neighbours on every machine. The sample itself is never its own neighbour.
    """
    N = X.shape[0]
    Xc = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    out = np.empty((N, k), dtype=np.int64)
    for start in range(0, N, _BLOCK):
        stop = min(start + _BLOCK, N)
        d = sq[start:stop, None] + sq[None, :] - 2.0 * (Xc[start:stop] @ Xc.T)
        np.maximum(d, 0.0, out=d)
        rows = np.arange(stop - start)
        d[rows, rows + start] = np.inf
        out[start:stop] = _tie_aware_order(d, k)
    return out


def _tie_aware_order(d: np.ndarray, k: int) -> np.ndarray:
    """Column indices [rows, k] of the k smallest values of each row of ``d``, smallest first, values equal up to
    rounding ordered by index.

    The grouping is :func:`zoorank.ranking.snap_ties`'s (sorted, consecutive values within TIE_RTOL · max|row|
    are one group; non-finite values never join one), vectorised over the rows. Only the m = 2k + 16 smallest of
    a row are sorted (the sorted prefix of a row is the sorted set of its m smallest); a row whose k-th value's
    group may reach past them is sorted whole.
    """
    n_rows, N = d.shape
    finite = np.where(np.isfinite(d), np.abs(d), 0.0)
    tol = TIE_RTOL * finite.max(axis=1, keepdims=True)
    m = min(N, 2 * k + 16)
    cand = np.argpartition(d, m - 1, axis=1)[:, :m] if m < N else np.broadcast_to(np.arange(N), (n_rows, N))
    vals = np.take_along_axis(d, cand, axis=1)
    order = np.take_along_axis(cand, np.lexsort((cand, vals), axis=1), axis=1)
    v = np.take_along_axis(d, order, axis=1)
    with np.errstate(invalid="ignore"):
        cut = ~(np.diff(v, axis=1) <= tol)  # inf - inf is NaN: a new group as well
    group = np.concatenate([np.zeros((n_rows, 1), dtype=np.int64), np.cumsum(cut, axis=1)], axis=1)
    out = np.take_along_axis(order, np.lexsort((order, group), axis=1), axis=1)[:, :k]
    if m < N:
        for r in np.flatnonzero(group[:, k - 1] == group[:, m - 1]):  # the k-th group may go on: the whole row
            out[r] = _full_row(d[r], tol[r, 0], k)
    return out


def _full_row(row: np.ndarray, tol: float, k: int) -> np.ndarray:
    order = np.argsort(row, kind="stable")
    v = row[order]
    with np.errstate(invalid="ignore"):
        cut = ~(np.diff(v) <= tol)
    group = np.concatenate([[0], np.cumsum(cut)])
    return order[np.lexsort((order, group))][:k]


def _check_k(k, N: int, metric: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"{metric}: k must be an integer >= 1, got {k!r}")
    if k > N - 1:
        raise InputError(f"{metric}: k = {int(k)} needs at least {int(k) + 1} samples (leave-one-out), got {N}; "
                         f"lower k")
    return int(k)


@register(
    "knn",
    summary="Leave-one-out k-nearest-neighbour accuracy of the features (Euclidean, majority vote)",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("scale", "rotation", "translation"),
    regression=True,
)
def knn(features, labels=None, *, source_probs=None, k: int = 3, regression: bool = False,
        vote_ties: str = "nearest") -> float:
    """k-NN (higher = better): leave-one-out accuracy of a k-nearest-neighbour classifier on the features.

    Semantics of ``flairNLP/transformer-ranker`` ``transformer_ranker/estimators/nearestneighbors.py::
    NearestNeighbors.fit`` (Euclidean distance, each sample's own distance set to +inf, the k nearest by
    distance, the majority label of the k neighbours, micro-F1 = accuracy for single-label classification):

        ŷ_i = argmax_c #{j ∈ N_k(i) : y_j = c},   kNN = (1/N) Σ_i 1[ŷ_i = y_i],

    with N_k(i) the k samples j ≠ i nearest to x_i. Ties are documented rules (the reference leaves them to
    torch's ``topk`` and ``mode``): distances equal up to rounding go to the lower sample index; a vote tie goes
    to the tied label of the nearest neighbour (``vote_ties="nearest"``, the default: the score does not depend
    on how the classes are numbered) or to the smallest tied label (``vote_ties="smallest"``: what the
    reference's ``torch.mode`` returns). The two differ only for even k or three-way ties; on scikit-learn's iris
    both give transformer-ranker's published values: 0.96 for k = 1 and 3, 0.9667 for k = 5 and 13.

    ``regression=True``: ``labels`` are real targets [N] (or [N, K]); the prediction is the mean target of the k
    neighbours and the score is the Pearson correlation of predictions and targets (the reference's regression
    form), averaged over the K columns.

    Inputs: ``features`` [N, D] (float64); ``labels`` [N] in 0..C-1 (every class present), or real targets with
    ``regression=True``; ``k`` an integer with 1 ≤ k ≤ N − 1. ``source_probs`` is ignored. Invariant to scaling,
    rotating and translating the features. Cost O(N²·D) in blocks of 1024 rows (memory O(1024·N)).

    Degenerate input: a regression target (or a prediction) with no variation has no correlation and raises
    :class:`InputError`.
    """
    metric = "knn"
    X = check_features(features, metric)
    N = X.shape[0]
    if regression:
        Y = check_targets(labels, N, metric)
        require_samples(metric, N, 3, "a leave-one-out correlation")
    else:
        y, C = check_labels(labels, N, metric)
        require_samples(metric, N, C + 1, f"more samples than the {C} classes")
    k = _check_k(k, N, metric)
    if vote_ties not in ("nearest", "smallest"):
        raise InputError(f"{metric}: vote_ties must be 'nearest' or 'smallest', got {vote_ties!r}")
    nb = _neighbours(X, k)
    if not regression:
        lab = y[nb]  # [N, k], nearest first
        votes = np.zeros((N, C), dtype=np.int64)
        np.add.at(votes, (np.repeat(np.arange(N), k), lab.ravel()), 1)
        if vote_ties == "smallest":
            pred = np.argmax(votes, axis=1)  # argmax: the first (smallest) label of a tie
        else:
            tied = np.take_along_axis(votes, lab, axis=1) == votes.max(axis=1, keepdims=True)
            pred = lab[np.arange(N), np.argmax(tied, axis=1)]  # the nearest neighbour holding a top label
        return finite_score(np.mean(pred == y), metric)
    pred = Y[nb].mean(axis=1)  # [N, K]
    yc, pc = Y - Y.mean(axis=0), pred - pred.mean(axis=0)
    sy, sp = np.sqrt((yc * yc).sum(axis=0)), np.sqrt((pc * pc).sum(axis=0))
    scale = np.abs(Y).max(axis=0)
    flat = np.flatnonzero((sy <= 1e-12 * scale) | (sp <= 1e-12 * scale))
    if flat.size:
        raise InputError(f"{metric}: target column {int(flat[0])} (or its neighbours' mean) has no variation; "
                         f"the correlation is undefined")
    return finite_score(np.mean((yc * pc).sum(axis=0) / (sy * sp)), metric)
