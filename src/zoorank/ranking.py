"""Ranking quality and rank aggregation.

Quality measures compare a predicted score vector with the truth (for example transferability
scores against fine-tuned accuracies over a zoo); higher predictions mean "better model".

- :func:`weighted_tau` — weighted Kendall tau with hyperbolic weights (Vigna, WWW 2015), exactly
  ``scipy.stats.weightedtau`` (the convention of LogME and SFDA papers).
- :func:`kendall_tau` (tau-b), :func:`pearson`, :func:`spearman`.
- :func:`top1_regret` — best true value minus the true value of the predicted best.
- :func:`ndcg_at_k` — normalised discounted cumulative gain of the top k.

Aggregation turns several score vectors over the same items into one (higher = better):

- :func:`copeland` — Copeland's method as in Model Spider (Zhang et al., NeurIPS 2023, appendix A.4).
- :func:`borda` — Borda count; :func:`mean_rank` — the mean rank position (1 = best).

Ties (every function here, and every ranking the package makes): two scores of one vector that differ
by at most :data:`TIE_RTOL` × the largest |score| of the vector are equal up to rounding, so they are
a tie (:func:`snap_ties`), never an order. Float64 reductions over N·D ≈ 10⁶–10⁷ terms agree across BLAS
kernels to ~10⁻¹³ relative; 10⁻⁹ leaves four orders of margin and is far below any difference between
models that a metric can resolve. Tied items keep their input (zoo) order wherever an order must be
produced (:func:`best_first`), so a ranking never depends on the rounding of the machine.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from zoorank.errors import InputError

__all__ = [
    "TIE_RTOL",
    "best_first",
    "borda",
    "copeland",
    "kendall_tau",
    "mean_rank",
    "ndcg_at_k",
    "pearson",
    "snap_ties",
    "spearman",
    "top1_regret",
    "weighted_tau",
]


def _vector(x, name: str, *, finite: bool = True) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {v.shape}")
    if finite and not np.isfinite(v).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return v


#: Relative tolerance under which two scores of one vector are a tie (see the module doc).
TIE_RTOL = 1e-9


def snap_ties(scores, rtol: float = TIE_RTOL) -> np.ndarray:
    """``scores`` (any shape; the last axis is one ranking) with scores equal up to rounding made equal.

    Sorted, the values of a vector form groups in which consecutive values differ by at most
    ``rtol`` · max|score| (single linkage: a chain of near-equal values is one group); every value of a
    group is replaced by the group's largest. Order between groups is untouched, so every rank
    statistic of the result equals that of the input except that rounding-level differences are ties.
    Non-finite values are left as they are and never join a group. ``rtol=0`` returns a copy.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    if s.size == 0 or rtol <= 0:
        return s
    rows = s.reshape(-1, s.shape[-1])
    for row in rows:
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size < 2:
            continue
        tol = float(rtol) * float(np.abs(row[finite]).max())
        if tol == 0.0:
            continue
        idx = finite[np.argsort(row[finite], kind="stable")]
        v = row[idx]
        new_group = np.diff(v) > tol
        group = np.concatenate([[0], np.cumsum(new_group)])
        top = np.flatnonzero(np.append(new_group, True))  # the last (largest) member of each group
        row[idx] = v[top][group]
    return rows.reshape(s.shape)


def best_first(scores, k: int | None = None, rtol: float = TIE_RTOL) -> np.ndarray:
    """Indices of ``scores`` (1-D, higher = better) from the best down, the first ``k`` (default all).

    Scores equal up to :data:`TIE_RTOL` (:func:`snap_ties`) are a tie and keep their input order, so
    the result does not depend on rounding. NaN scores come last, in their input order.
    """
    s = snap_ties(_vector(scores, "scores", finite=False), rtol)
    nan = np.isnan(s)
    order = np.lexsort((np.where(nan, 0.0, -s), nan))  # NaN last, then by decreasing score; lexsort is stable
    return order if k is None else order[: max(int(k), 0)]


def _pair(pred, truth, *, min_len: int = 2) -> tuple[np.ndarray, np.ndarray]:
    p, t = snap_ties(_vector(pred, "pred")), snap_ties(_vector(truth, "truth"))
    if p.shape != t.shape:
        raise InputError(f"pred has {p.size} items but truth has {t.size}")
    if p.size < min_len:
        raise InputError(f"need at least {min_len} items to compare rankings, got {p.size}")
    return p, t


def _constant(v: np.ndarray) -> bool:
    return bool(np.all(v == v[0]))


def weighted_tau(pred, truth) -> float:
    """Weighted Kendall tau between ``pred`` and ``truth`` (1-D, same length).

    τ_w = Σ_{i<j} w_ij·sgn(p_i − p_j)·sgn(t_i − t_j) / normalisation, with hyperbolic weights
    w_ij = 1/(r_i + 1) + 1/(r_j + 1) on the decreasing rank r of each item, averaged over the ranks
    by (pred, truth) and by (truth, pred) — ``scipy.stats.weightedtau(pred, truth)`` with its defaults.
    Disagreements among the top items cost more than among the bottom ones. In [−1, 1].

    Rule for constant input: when ``pred`` or ``truth`` is constant the ranking carries no
    information and the result is 0.0 (scipy returns NaN).
    """
    p, t = _pair(pred, truth)
    if _constant(p) or _constant(t):
        return 0.0
    return float(stats.weightedtau(p, t).statistic)


def kendall_tau(pred, truth) -> float:
    """Kendall's tau-b (ties corrected). 0.0 when either input is constant."""
    p, t = _pair(pred, truth)
    if _constant(p) or _constant(t):
        return 0.0
    return float(stats.kendalltau(p, t).statistic)


def pearson(pred, truth) -> float:
    """Pearson correlation coefficient. 0.0 when either input is constant."""
    p, t = _pair(pred, truth)
    if _constant(p) or _constant(t):
        return 0.0
    pc, tc = p - p.mean(), t - t.mean()
    pc, tc = pc / np.abs(pc).max(), tc / np.abs(tc).max()  # no under/overflow for tiny or huge scores
    r = float(pc @ tc / np.sqrt((pc @ pc) * (tc @ tc)))
    return float(np.clip(r, -1.0, 1.0))


def spearman(pred, truth) -> float:
    """Spearman rank correlation (Pearson of average ranks). 0.0 when either input is constant."""
    p, t = _pair(pred, truth)
    return pearson(stats.rankdata(p), stats.rankdata(t))


def top1_regret(pred, truth) -> float:
    """``max(truth) − truth[argmax(pred)]``: what choosing the predicted best costs (≥ 0).

    When several items tie for the best prediction, the mean of their true values is used (the
    expected regret of picking one of them at random).
    """
    p, t = _pair(pred, truth, min_len=1)
    top = p == p.max()
    return float(t.max() - t[top].mean())


def ndcg_at_k(pred, truth, k: int, *, gains: str = "linear") -> float:
    """Normalised DCG of the top ``k`` items ranked by ``pred``, with relevance ``truth`` (≥ 0).

    DCG@k = Σ_{i<k} g(truth[π_i]) / log2(i + 2) with π the order by decreasing ``pred`` (ties broken
    by position) and g(r) = r (``gains="linear"``) or 2^r − 1 (``"exponential"``);
    NDCG@k = DCG@k / ideal DCG@k. 0.0 when every relevance is 0.
    """
    p, t = _pair(pred, truth, min_len=1)
    if not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if (t < 0).any():
        raise InputError("ndcg_at_k needs non-negative relevance (truth); shift or rescale it")
    if gains == "linear":
        g = t
    elif gains == "exponential":
        g = np.expm1(t * np.log(2.0))
    else:
        raise InputError(f"gains must be 'linear' or 'exponential', got {gains!r}")
    k = min(int(k), p.size)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    order = best_first(p, k)
    ideal = np.sort(g)[::-1][:k]
    idcg = float(ideal @ discount)
    return 0.0 if idcg == 0.0 else float(g[order] @ discount / idcg)


def _score_matrix(score_vectors) -> np.ndarray:
    try:
        S = np.asarray([np.asarray(s, dtype=np.float64) for s in score_vectors])
    except ValueError as exc:
        raise InputError(f"score vectors must all have the same length: {exc}") from exc
    if S.ndim != 2 or S.shape[0] == 0 or S.shape[1] == 0:
        raise InputError(f"need a non-empty list of 1-D score vectors, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise InputError("score vectors contain NaN or infinite values")
    return S


def copeland(score_vectors) -> np.ndarray:
    """Copeland aggregation of several rankings of the same n items (Model Spider, appendix A.4).

    ``score_vectors``: a list of m score vectors of length n (higher = better in each). For each
    pair of items (i, j), item i has the majority over j when more rankings put i above j than put
    j above i (ties within a ranking count for neither). The Copeland score of i is the number of
    items over which it has the majority plus half the number of items with which it ties:

        C(i) = Σ_{j≠i} 1[M_ij > 0] + ½·1[M_ij = 0],   M_ij = Σ_m sgn(s_mi − s_mj).

    Returns a float array of length n (higher = better), in [0, n − 1].
    """
    S = snap_ties(_score_matrix(score_vectors))
    M = np.sign(S[:, :, None] - S[:, None, :]).sum(axis=0)
    wins = (M > 0).sum(axis=1)
    ties = (M == 0).sum(axis=1) - 1  # the diagonal is always a "tie" with itself
    return wins + 0.5 * ties


def borda(score_vectors) -> np.ndarray:
    """Borda count: the sum over rankings of each item's rank from the bottom (1 = worst, ties
    averaged). Higher = better."""
    S = snap_ties(_score_matrix(score_vectors))
    return stats.rankdata(S, axis=1).sum(axis=0)


def mean_rank(score_vectors) -> np.ndarray:
    """Mean rank position over rankings, 1 = best (ties averaged). LOWER = better."""
    S = snap_ties(_score_matrix(score_vectors))
    return stats.rankdata(-S, axis=1).mean(axis=0)
