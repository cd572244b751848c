"""Input checks shared by every metric.

Every public metric calls these first, so bad input fails the same way everywhere: a
:class:`zoorank.InputError` whose message names the metric, the argument and the problem.
Nothing downstream of these checks ever sees NaN/inf, ragged shapes or malformed labels.
"""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError

#: Absolute tolerance on "rows of a probability matrix sum to 1".
PROB_SUM_ATOL = 1e-4


def check_features(features, metric: str, *, name: str = "features") -> np.ndarray:
    """Return ``features`` as a C-contiguous float64 ``[N, D]`` array, or raise InputError."""
    if features is None:
        raise InputError(f"{metric}: {name} are required")
    try:
        X = np.asarray(features)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{metric}: {name} cannot be read as an array: {exc}") from exc
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise InputError(f"{metric}: {name} must be numeric, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise InputError(f"{metric}: {name} must be real, got complex dtype {X.dtype}")
    if X.ndim != 2:
        raise InputError(f"{metric}: {name} must be 2-D [N, D], got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{metric}: {name} are empty (shape {X.shape})")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise InputError(f"{metric}: {name} contain {bad} NaN or infinite value(s)")
    return X


def check_labels(labels, n: int | None, metric: str, *, name: str = "labels") -> tuple[np.ndarray, int]:
    """Return ``(labels as int64 [N], number of classes C)``.

    Labels must be integers 0..C-1 with every class present (no gaps) and at least two classes;
    ``n`` (when given) is the number of samples they must match.
    """
    if labels is None:
        raise InputError(f"{metric}: {name} are required")
    y = np.asarray(labels)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise InputError(f"{metric}: {name} must be 1-D [N], got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise InputError(f"{metric}: {name} have length {y.shape[0]} but there are {n} samples")
    if y.shape[0] == 0:
        raise InputError(f"{metric}: {name} are empty")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise InputError(f"{metric}: {name} contain NaN or infinite values")
        if not np.all(y == np.round(y)):
            raise InputError(f"{metric}: {name} must be integers 0..C-1, got non-integer values")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise InputError(f"{metric}: {name} must be integers 0..C-1, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise InputError(f"{metric}: {name} must be in 0..C-1, found {int(y.min())}")
    C = int(y.max()) + 1
    if C > y.shape[0]:  # more classes than samples: some class is surely empty (and bincount could be huge)
        raise InputError(
            f"{metric}: {name} must be 0..C-1 with every class present; the largest label is {C - 1} but "
            f"there are only {y.shape[0]} samples (relabel to consecutive integers)"
        )
    counts = np.bincount(y, minlength=C)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        shown = ", ".join(str(int(m)) for m in missing[:10])
        raise InputError(
            f"{metric}: {name} must be 0..C-1 with every class present; class(es) {shown} "
            f"of 0..{C - 1} have no sample (relabel to consecutive integers)"
        )
    if C < 2:
        raise InputError(f"{metric}: needs at least 2 classes, {name} have only one")
    return y, C


def check_targets(targets, n: int | None, metric: str, *, name: str = "labels") -> np.ndarray:
    """Real regression targets as float64 ``[N, K]`` (a 1-D ``[N]`` becomes one column), or raise InputError."""
    if targets is None:
        raise InputError(f"{metric}: {name} (regression targets) are required")
    Y = np.asarray(targets)
    if Y.dtype == object or not (np.issubdtype(Y.dtype, np.number) or Y.dtype == bool) or np.iscomplexobj(Y):
        raise InputError(f"{metric}: regression {name} must be real numbers, got dtype {Y.dtype}")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[1] == 0:
        raise InputError(f"{metric}: regression {name} must be [N] or [N, K], got shape {np.shape(targets)}")
    if n is not None and Y.shape[0] != n:
        raise InputError(f"{metric}: {name} have length {Y.shape[0]} but there are {n} samples")
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    if not np.isfinite(Y).all():
        raise InputError(f"{metric}: regression {name} contain NaN or infinite values")
    return Y


def check_probs(probs, n: int | None, metric: str, *, name: str = "source_probs") -> np.ndarray:
    """Return source-head probabilities as float64 ``[N, Cs]`` whose rows are distributions."""
    if probs is None:
        raise InputError(
            f"{metric}: needs {name} (softmax outputs of the source head, shape [N, Cs])"
        )
    P = check_features(probs, metric, name=name)
    if n is not None and P.shape[0] != n:
        raise InputError(f"{metric}: {name} have {P.shape[0]} rows but there are {n} samples")
    if P.min() < 0:
        raise InputError(f"{metric}: {name} contain negative values (pass softmax probabilities, not logits)")
    sums = P.sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > PROB_SUM_ATOL:
        raise InputError(
            f"{metric}: rows of {name} must sum to 1 (worst row sums to {1.0 + worst:.6g}); "
            "pass softmax probabilities, not logits"
        )
    return P


def require_samples(metric: str, n: int, needed: int, why: str) -> None:
    """Raise when a metric gets fewer samples than it needs, saying how many and why."""
    if n < needed:
        raise InputError(f"{metric}: needs at least {needed} samples ({why}), got {n}")


def require_per_class(metric: str, y: np.ndarray, C: int, needed: int) -> np.ndarray:
    """Raise unless every class has at least ``needed`` samples; return the class counts."""
    counts = np.bincount(y, minlength=C)
    if counts.min() < needed:
        c = int(np.argmin(counts))
        raise InputError(
            f"{metric}: needs at least {needed} samples per class, class {c} has {int(counts[c])}"
        )
    return counts


def check_xy(features, labels, metric: str, *, min_samples: int | None = None):
    """Features and labels together: returns ``(X float64 [N, D], y int64 [N], C)``.

    ``min_samples`` defaults to C + 1 (every metric needs more samples than classes).
    """
    X = check_features(features, metric)
    y, C = check_labels(labels, X.shape[0], metric)
    need = C + 1 if min_samples is None else min_samples
    require_samples(metric, X.shape[0], need, f"more samples than the {C} classes")
    return X, y, C


def finite_score(value, metric: str) -> float:
    """Return ``value`` as a float; raise InputError instead of ever returning NaN/inf silently."""
    v = float(value)
    if not np.isfinite(v):
        raise InputError(
            f"{metric}: the score is not finite ({v}); the input is too degenerate for this metric "
            "(for example constant or duplicated features)"
        )
    return v


def check_pool(features_list, labels, metric: str):
    """Validate a pool of candidate models scored on the same labels.

    Returns ``(y, C, models)`` where ``models`` lazily yields ``(X, original)`` per model: ``X`` the
    validated float64 features, ``original`` what the caller passed (one model's float64 copy
    lives at a time, so large pools stay within memory).
    """
    models = list(features_list)
    if not models:
        raise InputError(f"{metric}: the pool needs at least one model's features")
    y, C = check_labels(labels, None, metric)

    def validated():
        for i, original in enumerate(models):
            X = check_features(original, metric, name=f"features of model {i}")
            if X.shape[0] != y.shape[0]:
                raise InputError(
                    f"{metric}: features of model {i} have {X.shape[0]} rows but there are {y.shape[0]} labels"
                )
            require_samples(metric, X.shape[0], C + 1, f"more samples than the {C} classes")
            yield X, original

    return y, C, validated()
