"""One contract for the learned rankers (Fennec, Model Spider, MetaRank), in the style of scikit-learn.

- **Hyper-parameters** are the keyword arguments of ``__init__``, stored under the same attribute names;
  :meth:`Ranker.get_params` / :meth:`Ranker.set_params` read them from the ``__init__`` signature, and the
  ``repr`` shows those that differ from their defaults.
- **Learning**: ``fit(...)`` returns the ranker itself. What it learns is held in attributes whose names end in
  ``_`` (``models_``, ``nmf_``, ``net_``, ...), which exist only once the ranker is fitted (by ``fit`` or
  :meth:`Ranker.load`); :attr:`Ranker.is_fitted` says whether it is. Reading one of them before that raises
  :class:`NotFittedError`, an :class:`~zoorank.errors.InputError` ("call fit (or load) first").
- **Scoring**: :meth:`Ranker.score` takes the :class:`TaskEvidence` of a new task — what is known of it without
  running the zoo — and returns one float per entry of ``models_``, higher = better. A ranker whose evidence is
  missing raises an InputError naming the missing field.
- **Persistence**: ``save(path)`` and the class method ``load(path)``.

:func:`make_ranker` builds an unfitted ranker by name (``"fennec"``, ``"spider"``, ``"metarank"``); Model Spider
and MetaRank import torch, Fennec does not.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from zoorank.errors import InputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["NotFittedError", "Ranker", "TaskEvidence", "make_ranker"]


class NotFittedError(InputError, AttributeError):
    """A learned attribute (or a method needing one) was used before ``fit`` or ``load``."""


@dataclass(frozen=True, eq=False)
class TaskEvidence:
    """What is known of a new task without running the zoo; each ranker reads the fields it needs.

    ``proxy``: Fennec's proxy vector (:func:`zoorank.methods.fennec.model.summarize_proxy` of a proxy encoder's
    features of an unlabelled sample); ``n_classes`` and ``n_samples`` (training images): Fennec's task meta
    features; ``token``: Model Spider's task token [C, G] (:func:`zoorank.methods.spider.task_token`: class
    centres of the general encoder, needs labels); ``card``: MetaRank's dataset card or free text."""

    proxy: np.ndarray | None = None
    n_classes: int | None = None
    n_samples: int | None = None
    token: np.ndarray | None = None
    card: Any = None

    def require(self, field: str, who: str) -> Any:
        """The value of ``field``; an InputError naming it when it is None."""
        value = getattr(self, field)
        if value is None:
            raise InputError(f"{who}: the task evidence has no {field} (TaskEvidence.{field} is None)")
        return value


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.kind in kinds]


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


class Ranker:
    """Base class of the learned rankers (module doc). A subclass names what it learns in ``_learned`` (the
    attributes ``fit`` and ``load`` set, each ending in ``_``) and how its messages start in ``_name``."""

    _name: ClassVar[str] = "ranker"
    _learned: ClassVar[tuple[str, ...]] = ("models_",)

    # -- hyper-parameters -------------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in _init_parameters(cls)]

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, ``{name: value}`` in the order of ``__init__``'s signature."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change hyper-parameters (validated as ``__init__`` does); returns self. What was learned stays until the
        next ``fit``."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise InputError(f"{self._name}: unknown parameter(s) {', '.join(unknown)}; the parameters are "
                             f"{', '.join(self._param_names())}")
        checked = type(self)(**{**self.get_params(), **params})
        for name in params:
            setattr(self, name, getattr(checked, name))
        return self

    def __repr__(self) -> str:
        values = self.get_params()
        shown = [f"{p.name}={values[p.name]!r}" for p in _init_parameters(type(self))
                 if not _same(values[p.name], p.default)]
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- learned state ----------------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` or ``load`` has set every learned attribute."""
        return all(hasattr(self, name) for name in self._learned)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{self._name}: call fit (or load) first")

    def __getattr__(self, name: str) -> Any:  # only reached when normal lookup fails
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"{self._name}: {name} is learned: call fit (or load) first")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- the contract -----------------------------------------------------------------------------------

    def fit(self, *args: Any, **kwargs: Any) -> Self:
        """Learn from history; returns self."""
        raise NotImplementedError

    def score(self, task: TaskEvidence) -> np.ndarray:
        """One float per entry of ``models_`` for the task described by ``task``, higher = better."""
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the fitted ranker to ``path``; returns where it was written."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a ranker written by :meth:`save`."""
        raise NotImplementedError


_RANKERS = {"fennec": ("zoorank.methods.fennec.model", "Fennec"),
            "spider": ("zoorank.methods.spider.model", "ModelSpider"),
            "metarank": ("zoorank.methods.metarank.model", "MetaRank")}


def make_ranker(name: str, **params: Any) -> Ranker:
    """An unfitted ranker by name: ``"fennec"``, ``"spider"`` or ``"metarank"``, with hyper-parameters ``params``."""
    if name not in _RANKERS:
        raise InputError(f"unknown ranker {name!r}; the rankers are {', '.join(_RANKERS)}")
    module, cls = _RANKERS[name]
    return getattr(importlib.import_module(module), cls)(**params)
