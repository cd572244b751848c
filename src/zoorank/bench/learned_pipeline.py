"""The end-to-end pipeline (:class:`zoorank.pipeline.Pipeline`) as a leave-one-target-out harness method.

For a held-out target, Fennec, Model Spider and MetaRank are fitted on the OTHER targets exactly as their own
harness methods fit them (:class:`~zoorank.bench.learned.FennecMethod`,
:class:`~zoorank.bench.learned_spider.SpiderMethod`, :class:`~zoorank.bench.learned_metarank.MetaRankMethod`;
the fits are shared by the pipeline variants of a run), then the pipeline ranks the target through the harness's
counted accessors: the proxy / general encoder passes, and forward passes of the top-K models only.

``seconds`` is the online time of the job (coarse ranking, metric choice, the metric and Spider's re-scoring of
the top K, the merge); the fits are offline work (``zoorank fit``, once for all later queries) and are kept out
of it through ``context.offline_seconds``, like feature extraction is kept out of every method's seconds.

Names: ``pipeline@k3``, ``pipeline@k5`` (in ``all``); ``pipeline:k0`` (coarse only), ``pipeline:all`` (the whole
zoo in the fine stage), ``pipeline:no-labels@k5`` (label-free parts only: Fennec + the energy score),
``pipeline:no-spider@k5``, ``pipeline:no-fennec@k5``, ``pipeline:no-metarank@k5`` (LogME instead of MetaRank's
pick) as ablations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoorank.bench.harness import MethodSkipped, TaskContext, register_method
from zoorank.errors import InputError

__all__ = ["ContextTask", "PipelineMethod", "register"]

_SHARED: dict[tuple, tuple[Any, Any]] = {}


def _shared(name: str, context: TaskContext, make: Callable[[], Any]) -> Any:
    """One instance of a learned method per run (provider and zoo), shared by the pipeline variants."""
    provider = context.provider
    key = (name, id(provider), tuple(context.models))
    hit = _SHARED.get(key)
    if hit is None or hit[0] is not provider:
        if len(_SHARED) > 12:
            _SHARED.clear()
        hit = _SHARED[key] = (provider, make())  # the provider is kept alive: its id stays unique
    return hit[1]


class ContextTask:
    """A harness :class:`~zoorank.bench.harness.TaskContext` as the pipeline's
    :class:`~zoorank.pipeline.TaskSource` (every zoo forward pass goes through the counted accessor)."""

    def __init__(self, context: TaskContext, models=None):
        self.context = context
        self.models = list(context.models if models is None else models)  # the rankers' order, when it differs

    def labels(self) -> np.ndarray:
        return np.asarray(self.context.labels())

    def features(self, model: str):
        return self.context.features(model)

    def proxy_features(self) -> np.ndarray:
        return self.context.proxy_features()

    def encoder_features(self) -> np.ndarray:
        return np.asarray(self.context.encoder_features()[0])

    def task_meta(self) -> tuple[int, int]:
        from zoorank.bench.learned import _n_train

        info = self.context.task_info
        if info.n_classes is None:
            raise MethodSkipped("pipeline: the target has no class count in tasks.csv")
        return int(info.n_classes), int(_n_train(info))

    def card(self) -> Any:
        from zoorank.methods.metarank.cards import card_from_task_info

        return card_from_task_info(self.context.task_info)


class PipelineMethod:
    """The pipeline on a harness benchmark (module doc)."""

    def __init__(self, name: str, *, budget: int | str = 5, use_labels: bool = True, fennec: bool = True,
                 spider: bool = True, metarank: bool = True):
        if not (fennec or spider):
            raise InputError(f"{name}: the pipeline needs Fennec or Spider for its coarse stage")
        self.name = name
        self.budget = budget
        self.use_labels = use_labels
        self.parts = {"fennec": fennec, "spider": spider and use_labels, "metarank": metarank and use_labels}
        self.last = None  # the last PipelineResult (for reports)

    def __repr__(self) -> str:
        return f"PipelineMethod({self.name!r})"

    def _fit(self, context: TaskContext) -> dict[str, Any]:
        from zoorank.bench.learned import FennecMethod
        from zoorank.bench.learned_metarank import MetaRankMethod
        from zoorank.bench.learned_spider import SpiderMethod

        out: dict[str, Any] = {"fennec": None, "spider": None, "metarank": None}
        if self.parts["fennec"]:
            out["fennec"] = _shared("fennec", context, lambda: FennecMethod("fennec")).fitted(context)[0]
        if self.parts["spider"]:
            out["spider"] = _shared("spider", context, lambda: SpiderMethod("spider")).fitted(context)
        if self.parts["metarank"]:
            out["metarank"] = _shared("metarank", context, lambda: MetaRankMethod("metarank")).fitted(context)
        return out

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank import metrics as M
        from zoorank.pipeline import Pipeline

        if len(context.history.tasks) < 2:
            raise MethodSkipped("pipeline needs at least 2 other targets to learn from")
        fits = context.offline(lambda: self._fit(context))
        metrics = M.available() if self.parts["metarank"] else ["logme", *[m for m in M.available() if m != "logme"]]
        pipe = Pipeline(context.models, fennec=fits["fennec"], spider=fits["spider"], metarank=fits["metarank"],
                        budget=self.budget, metrics=metrics)
        self.last = pipe.run(ContextTask(context), use_labels=self.use_labels)
        return self.last.scores


def _variants() -> dict[str, Callable[[], PipelineMethod]]:
    return {
        "pipeline@k3": lambda: PipelineMethod("pipeline@k3", budget=3),
        "pipeline@k5": lambda: PipelineMethod("pipeline@k5", budget=5),
        "pipeline:k0": lambda: PipelineMethod("pipeline:k0", budget=0),
        "pipeline:all": lambda: PipelineMethod("pipeline:all", budget="all"),
        "pipeline:no-labels@k5": lambda: PipelineMethod("pipeline:no-labels@k5", use_labels=False),
        "pipeline:no-spider@k5": lambda: PipelineMethod("pipeline:no-spider@k5", spider=False),
        "pipeline:no-fennec@k5": lambda: PipelineMethod("pipeline:no-fennec@k5", fennec=False),
        "pipeline:no-metarank@k5": lambda: PipelineMethod("pipeline:no-metarank@k5", metarank=False),
    }


def register() -> None:
    """Make ``pipeline@k3`` / ``pipeline@k5`` (in ``all``) and the ablation variants available to
    :func:`zoorank.bench.harness.make_methods`."""
    for name, factory in _variants().items():
        register_method(name, factory, in_all=":" not in name)
