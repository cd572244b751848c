"""The method registry: a name for every ranking method ``zoorank bench run`` can evaluate (the metrics of
:mod:`zoorank.metrics`, the baselines, the learned rankers' adapters), registered by decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation.context import TaskContext


@runtime_checkable
class Method(Protocol):
    """A ranking method: ``scores(task, context)`` -> float [n_models] (higher = better) or
    [draws, n_models]; raises :class:`MethodSkipped` when it cannot score the task."""

    name: str

    def scores(self, task: str, context: TaskContext) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------------
# the method registry

_FACTORIES: dict[str, Callable[[], Method]] = {}
_NOT_IN_ALL: set[str] = set()
#: The adapter modules whose methods register themselves on import, in the order of ``all``.
ADAPTERS = ("baselines", "fennec", "spider", "metarank", "pipeline")


def register_method(name: str, factory: Callable[[], Method] | None = None, *, in_all: bool = True):
    """Make ``name`` available to :func:`make_methods`; ``in_all=False`` (ablation variants) leaves it out of
    ``all``. Called with a factory, or as a class / function decorator::

        @register_method("baseline:params")
        class ParamsBaseline: ...
    """
    if factory is None:
        def decorate(f):
            register_method(name, f, in_all=in_all)
            return f

        return decorate
    _FACTORIES[name] = factory
    if in_all:
        _NOT_IN_ALL.discard(name)
    else:
        _NOT_IN_ALL.add(name)
    return factory


def unregister_method(name: str) -> None:
    """Forget a method registered with :func:`register_method` (tests that register their own)."""
    _FACTORIES.pop(name, None)
    _NOT_IN_ALL.discard(name)


def register_variants(variants: Callable[[], Mapping[str, Callable[[], Method]]]):
    """Decorator of a function returning ``{name: factory}``: registers every variant; names with a ``:``
    (ablations) are left out of ``all``."""
    for name, factory in variants().items():
        register_method(name, factory, in_all=":" not in name)
    return variants


def _builtin() -> dict[str, Callable[[], Method]]:
    import importlib

    from zoorank import metrics as M
    from zoorank.evaluation.adapters.metrics import MetricMethod

    for adapter in ADAPTERS:
        importlib.import_module(f"zoorank.evaluation.adapters.{adapter}")
    out: dict[str, Callable[[], Method]] = {n: (lambda n=n: MetricMethod(n)) for n in M.available()}
    out.update(_FACTORIES)
    return out


def _left_out_of_all() -> set[str]:
    from zoorank.metric_sets import NOT_YET_BENCHMARKED

    return _NOT_IN_ALL | set(NOT_YET_BENCHMARKED)


def available_methods() -> list[str]:
    """Every method name :func:`make_methods` knows: the metrics, the baselines, registered methods."""
    return list(_builtin())


def make_methods(names: str | Iterable[str]) -> list[Method]:
    """Methods from a comma-separated list (or an iterable) of names; ``all`` = every available method."""
    items = [s.strip() for s in names.split(",")] if isinstance(names, str) else [str(s).strip() for s in names]
    items = [s for s in items if s]
    if not items:
        raise InputError("no methods given")
    known = _builtin()
    out: list[Method] = []
    seen: set[str] = set()
    for name in items:
        for n in ([k for k in known if k not in _left_out_of_all()] if name == "all" else [name]):
            if n not in known:
                raise InputError(f"unknown method {n!r}; available: all, {', '.join(known)}")
            if n not in seen:
                seen.add(n)
                out.append(known[n]())
    return out


