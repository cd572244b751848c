"""Score a whole zoo with one metric, from each model's probe features and source-head logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics._probs import softmax
from zoorank.metrics._registry import compute, compute_pool, info


class MetricUnavailable(InputError):
    """The metric cannot score this zoo on this task. ``missing_input`` is True when an input it needs was not
    given (labels, source logits of a headless model, general features), False when the metric rejected the
    data (too few samples, a singular problem, ...)."""

    def __init__(self, message: str, *, missing_input: bool = True):
        super().__init__(message)
        self.missing_input = missing_input


def score_zoo(metric: str, features: Sequence[np.ndarray], logits: Sequence[np.ndarray | None] | None = None,
              labels: np.ndarray | None = None, *, general: Sequence[np.ndarray | None] | None = None,
              names: Sequence[str] | None = None, **params: Any) -> np.ndarray:
    """One score per model (higher = better) of ``metric`` over a zoo.

    ``features[i]`` [N, D_i]: model i's penultimate features on the task's probe set; ``logits[i]`` [N, Cs_i] or
    None: its source-head logits (LEEP and NCE use their softmax); ``general[i]``: its features on a general data
    set (PED's reference); ``labels`` [N] (ignored by label-free metrics). Pool-relative metrics (ETran, NCTI)
    use their cross-model form (:func:`compute_pool`). ``names`` only label the error messages.

    Raises :class:`MetricUnavailable` (an :class:`~zoorank.InputError`) naming what is missing or wrong: a
    headless model for a metric needing source logits, missing general features, or the metric's own complaint
    (too few samples, a singular problem).
    """
    entry = info(metric)
    feats = [np.asarray(f) for f in features]
    names = list(names) if names is not None else [f"model {i}" for i in range(len(feats))]
    y = labels if entry.needs_labels else None
    if entry.needs_labels and labels is None:
        raise MetricUnavailable(f"{metric} needs the task's labels")
    try:
        if entry.needs_general_features and "general_features" not in params:
            if general is None or any(g is None for g in general):
                raise MetricUnavailable(f"{metric} needs general_features (each model's features on a general "
                                        f"data set); the feature provider has none")
            return np.array([compute(metric, f, y, general_features=g, **params)
                             for f, g in zip(feats, general, strict=True)], dtype=np.float64)
        probs = None
        if entry.needs_source_probs:
            logits = list(logits) if logits is not None else [None] * len(feats)
            headless = [n for n, lg in zip(names, logits, strict=True) if lg is None]
            if headless:
                raise MetricUnavailable(f"{metric} needs source-head logits; headless model(s): "
                                        f"{', '.join(headless[:3])}{' ...' if len(headless) > 3 else ''}")
            probs = [softmax(np.asarray(lg)) for lg in logits]
        if entry.pool_func is not None:
            return np.asarray(compute_pool(metric, feats, y, **params), dtype=np.float64)
        return np.asarray(compute_pool(metric, feats if entry.needs_features else [None] * len(feats), y,
                                       source_probs=probs, **params), dtype=np.float64)
    except MetricUnavailable:
        raise
    except (InputError, np.linalg.LinAlgError, FloatingPointError) as exc:
        raise MetricUnavailable(f"{metric}: {exc}", missing_input=False) from None
