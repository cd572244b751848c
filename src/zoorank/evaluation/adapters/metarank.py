"""MetaRank as a harness method (MetaRank, arXiv 2511.21007): ``metarank`` = the figures of the metric it picks.

For every held-out target, :class:`MetaRankMethod` (leave-one-target-out, through the harness's leakage-checked
history view only):

1. builds the meta-dataset of the OTHER targets — every candidate metric's weighted tau against their fine-tuned
   accuracies, on each target and on sub-tasks sampled from it (class subsets, few-shot probes;
   :class:`~zoorank.evaluation.metarank_data.BenchmarkMetaData`). Metric scores do not depend on the held-out target,
   so they are cached across folds (memory and disk);
2. trains MetaRank on it and ranks the metrics for the held-out target from its dataset card (generated from
   its ``tasks.csv`` description and counts: never from its labels or ground truth);
3. returns the scores over the zoo of the first metric that can run on the target (a metric needing source
   logits is passed over when a model is headless): one forward pass per zoo model, like the metric itself.

The pick of every target (metric, ranking, reason) is kept in :attr:`MetaRankMethod.picks`.

Variants (ablations, ``in_all=False``): ``metarank:approxndcg``, ``metarank:pairwise``, ``metarank:mse`` (losses),
``metarank:meta`` (conventional meta-features instead of text), ``metarank:no-subtasks`` (full targets only),
``metarank:hashing`` (bag-of-words text encoder instead of MiniLM), ``metarank:average-best`` (the metric best on
average over the other targets: the baseline MetaRank must beat).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation import MethodSkipped, MetricMethod, TaskContext
from zoorank.evaluation.registry import register_variants
from zoorank.metric_sets import first_usable
from zoorank.ranking import best_first

__all__ = ["MetaRankMethod", "Pick", ]


@dataclass(frozen=True)
class Pick:
    """What MetaRank chose for one target."""

    task: str
    metric: str
    ranking: tuple[str, ...]
    reason: str
    n_records: int


class MetaRankMethod:
    """MetaRank on a harness benchmark (module doc). ``model_params`` go to
    :class:`~zoorank.methods.metarank.MetaRank`; ``metrics``: candidate metrics (default: all);
    ``class_subsets``/``fewshot``: the sub-tasks of each training target; ``strategy``: ``"metarank"`` or
    ``"average-best"``; ``cache_dir``: score cache (None = default, False = memory only)."""

    def __init__(self, name: str = "metarank", *, metrics: Sequence[str] | None = None, class_subsets: int = 1,
                 fewshot: Sequence[int] = (5,), subtask_weight: float = 0.5, strategy: str = "metarank",
                 cache_dir: Any = None, seed: int = 0, **model_params: Any):
        from zoorank.evaluation.metarank_data import BenchmarkMetaData

        if strategy not in ("metarank", "average-best"):
            raise InputError(f"{name}: strategy must be 'metarank' or 'average-best', got {strategy!r}")
        self.name = name
        self.strategy = strategy
        self.seed = seed
        self.model_params = dict(model_params)
        self.meta = BenchmarkMetaData(metrics, class_subsets=class_subsets, fewshot=fewshot,
                                      subtask_weight=subtask_weight, seed=seed, cache_dir=cache_dir,
                                      source="benchmark")
        self.picks: dict[str, Pick] = {}
        self._fits: dict[str, object] = {}

    def _ranking(self, task: str, context: TaskContext, records: list) -> tuple[list[str], str]:
        from zoorank.evaluation.metarank_data import average_ranking
        from zoorank.methods.metarank.cards import card_from_task_info

        metrics = sorted({r.metric for r in records})
        if len(metrics) < 2:
            raise MethodSkipped("metarank: fewer than 2 metrics could be measured on the other targets")
        if self.strategy == "average-best":
            avg = average_ranking(records, metrics, lambda r: r.source == "benchmark")
            order = best_first(avg)
            return [metrics[i] for i in order], "best mean weighted tau over the other targets"
        model = self.fitted(context, records)
        card = card_from_task_info(context.task_info)
        ranking = model.rank_metrics(card, metrics)
        return ranking.names(), ranking.reason

    def fitted(self, context: TaskContext, records: list | None = None):
        """MetaRank trained on the meta-dataset of the targets other than the held-out one (once per fold)."""
        from zoorank.methods.metarank import MetaRank

        held_out = context.history.held_out
        if held_out not in self._fits:
            records = self.meta.history_records(context) if records is None else records
            if len({r.metric for r in records}) < 2:
                raise MethodSkipped("metarank: fewer than 2 metrics could be measured on the other targets")
            self._fits.clear()  # one fold at a time: the folds of a run come task by task
            self._fits[held_out] = MetaRank(seed=self.seed, **self.model_params).fit(records)
        return self._fits[held_out]

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        hist = context.history
        if len(hist.tasks) < 2:
            raise MethodSkipped("metarank needs at least 2 other targets")
        records = context.offline(lambda: self.meta.history_records(context))  # the meta-dataset: offline work
        if not records:
            raise MethodSkipped("metarank: no metric could be measured on the other targets")
        context.offline(lambda: self.fitted(context, records))
        order, reason = self._ranking(task, context, records)
        used = first_usable(order, lambda metric: MetricMethod(metric).scores(task, context),
                            skip=(MethodSkipped, InputError))
        if used.metric is None:
            raise MethodSkipped("metarank: no ranked metric could score the target (" + "; ".join(used.problems[:3])
                                + ")")
        self.picks[task] = Pick(task, used.metric, tuple(order), reason, len(records))
        return used.scores


@register_variants
def _variants() -> dict[str, Callable[[], MetaRankMethod]]:
    return {
        "metarank": lambda: MetaRankMethod("metarank"),
        "metarank:approxndcg": lambda: MetaRankMethod("metarank:approxndcg", loss="approxndcg"),
        "metarank:pairwise": lambda: MetaRankMethod("metarank:pairwise", loss="pairwise"),
        "metarank:mse": lambda: MetaRankMethod("metarank:mse", loss="mse"),
        "metarank:meta": lambda: MetaRankMethod("metarank:meta", features="meta"),
        "metarank:no-subtasks": lambda: MetaRankMethod("metarank:no-subtasks", class_subsets=0, fewshot=()),
        "metarank:hashing": lambda: MetaRankMethod("metarank:hashing", encoder="hashing"),
        "metarank:average-best": lambda: MetaRankMethod("metarank:average-best", strategy="average-best"),
    }
