"""The metric registry: every transferability metric registers itself here.

Each metric is a plain function ``f(features, labels=None, *, source_probs=None, **params) -> float``
(higher = better transferability). Metrics that are defined relative to a pool of candidate models
also register a pool form ``g([features_of_each_model], labels, **params) -> np.ndarray``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from zoorank.errors import InputError

#: Vocabulary for :attr:`MetricInfo.invariances` (what the property tests check).
INVARIANCES = frozenset(
    {
        "scale",  # features * s (s > 0) gives the same score
        "rotation",  # features @ Q (Q orthogonal) gives the same score
        "translation",  # features + b gives the same score
    }
)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    func: Callable[..., float]
    summary: str
    needs_labels: bool = True
    needs_features: bool = True
    needs_source_probs: bool = False
    needs_general_features: bool = False  # a general feature distribution of the model (PED)
    stochastic: bool = False  # depends on a seed (``random_state`` parameter)
    invariances: frozenset[str] = field(default_factory=frozenset)
    paper: str = ""
    regression: bool = False  # also scores real targets: ``regression=True`` with float labels [N] or [N, K]
    pool_func: Callable[..., np.ndarray] | None = None


_REGISTRY: dict[str, MetricInfo] = {}


def register(
    name: str,
    *,
    summary: str,
    paper: str,
    needs_labels: bool = True,
    needs_features: bool = True,
    needs_source_probs: bool = False,
    needs_general_features: bool = False,
    stochastic: bool = False,
    invariances: Sequence[str] = (),
    regression: bool = False,
):
    """Decorator: register ``func`` as metric ``name``."""
    unknown = set(invariances) - INVARIANCES
    if unknown:
        raise ValueError(f"unknown invariances {sorted(unknown)}")

    def deco(func):
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} registered twice")
        _REGISTRY[name] = MetricInfo(
            name=name,
            func=func,
            summary=summary,
            paper=paper,
            needs_labels=needs_labels,
            needs_features=needs_features,
            needs_source_probs=needs_source_probs,
            needs_general_features=needs_general_features,
            stochastic=stochastic,
            invariances=frozenset(invariances),
            regression=regression,
        )
        return func

    return deco


def register_pool(name: str):
    """Decorator: register ``func`` as the pool form of the (already registered) metric ``name``."""

    def deco(func):
        info = _REGISTRY[name]
        _REGISTRY[name] = MetricInfo(**{**info.__dict__, "pool_func": func})
        return func

    return deco


def info(name: str) -> MetricInfo:
    """The registry entry of metric ``name`` (InputError naming the choices if unknown)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown metric {name!r}; available: {', '.join(available())}"
        ) from None


def available(*, regression: bool = False) -> list[str]:
    """Names of every registered metric, sorted; ``regression=True``: those that also score real targets."""
    return sorted(n for n, e in _REGISTRY.items() if e.regression or not regression)


def compute(name: str, features=None, labels=None, *, source_probs=None, **params) -> float:
    """Score one model's ``features`` [N, D] (and/or ``source_probs`` [N, Cs]) on ``labels`` [N].

    Higher = better transferability for every metric.
    """
    # Each metric validates its own inputs (and says what is missing), so calling it by name and
    # calling the function directly fail the same way.
    return info(name).func(features, labels, source_probs=source_probs, **params)


def missing_inputs(name: str, *, features=None, labels=None, source_probs=None, general_features=None) -> list[str]:
    """The inputs metric ``name`` needs that are None among those given (empty when it can run)."""
    entry = info(name)
    needs = (("features", entry.needs_features, features), ("labels", entry.needs_labels, labels),
             ("source_probs", entry.needs_source_probs, source_probs),
             ("general_features", entry.needs_general_features, general_features))
    return [what for what, needed, value in needs if needed and value is None]


def compute_available(name: str, features=None, labels=None, *, source_probs=None, general_features=None,
                      **params) -> float:
    """Call metric ``name`` with the inputs it uses, taken from those given (the others are ignored).

    Lets a caller that holds everything it has about a model (features, labels, source probabilities,
    a general feature distribution) score it with any metric; InputError names what is missing.
    """
    entry = info(name)
    missing = missing_inputs(name, features=features, labels=labels, source_probs=source_probs,
                             general_features=general_features)
    if missing:
        raise InputError(f"{name}: needs {', '.join(missing)}")
    if entry.needs_general_features:
        params["general_features"] = general_features
    # source_probs go through whenever given: some metrics use them only in some variants
    # (PACTran's Dirichlet and Gamma forms); the others ignore them.
    return entry.func(features if entry.needs_features else None, labels if entry.needs_labels else None,
                      source_probs=source_probs, **params)


def compute_pool(name: str, features_list, labels=None, *, source_probs=None, **params) -> np.ndarray:
    """Score a pool of candidate models at once: one score per model, higher = better.

    ``features_list``: one feature array per model (entries may be None for metrics that only
    use source probabilities); ``source_probs``: None or a list aligned with ``features_list``.
    For metrics with a pool form (``etran``, ``ncti``) this is the paper's cross-model score; for
    every other metric it is simply the metric applied to each model.
    """
    entry = info(name)
    if isinstance(features_list, np.ndarray) and features_list.ndim == 2:
        raise InputError(f"{name}: compute_pool takes a list of feature arrays, one per model")
    features_list = list(features_list)
    if not features_list:
        raise InputError(f"{name}: compute_pool needs at least one model's features")
    if source_probs is not None:
        source_probs = list(source_probs)
        if len(source_probs) != len(features_list):
            raise InputError(
                f"{name}: {len(source_probs)} source_probs arrays for {len(features_list)} models"
            )
    if entry.pool_func is not None:
        if source_probs is not None:
            raise InputError(f"{name}: the pool form does not use source_probs")
        return np.asarray(entry.pool_func(features_list, labels, **params), dtype=np.float64)
    probs = source_probs if source_probs is not None else [None] * len(features_list)
    return np.array(
        [compute(name, f, labels, source_probs=p, **params) for f, p in zip(features_list, probs, strict=True)],
        dtype=np.float64,
    )
