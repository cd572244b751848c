"""MetaRank's meta-dataset from a benchmark (MetaRank, arXiv 2511.21007).

For every historical task and every transferability metric, the metric's *quality* on the task is the weighted
Kendall tau (:func:`zoorank.ranking.weighted_tau`) between its scores over the zoo and the true fine-tuned
accuracies. :class:`BenchmarkMetaData` gives those :class:`~zoorank.methods.metarank.MetaRecord` rows for a
harness benchmark and its feature provider: the full targets, plus sub-tasks sampled from each training target —
class subsets (half of the classes, relabelled) and few-shot probes (``k`` images per class). A sub-task's metric
scores come from its own probe rows; its truth is the parent target's fine-tuned accuracies (no fine-tuning was
run on the sub-task: the ranking of the zoo on a subset of a task's classes or images is taken to follow the whole
task's). Sub-tasks carry their own generated dataset card (class count, image count, "few-shot") and a lower
weight. Metric scores are cached in memory and on disk, content-addressed (features, labels, rows), so every
leave-one-out fold reuses them. :func:`average_ranking` is the "metric best on average" baseline.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoorank import metrics as M
from zoorank import paths
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.methods.metarank.cards import card_from_task_info
from zoorank.methods.metarank.model import MetaRecord
from zoorank.metric_sets import benchmarked_metrics
from zoorank.store.scores import ScoreStore, digest, metric_key

__all__ = ["BenchmarkMetaData", "MetricUnavailable", "SubTask", "average_ranking", "benchmark_records", "subtasks",
           "zoo_scores"]

# --------------------------------------------------------------------------------------------- metric scores


MetricUnavailable = M.MetricUnavailable
zoo_scores = M.score_zoo


# ------------------------------------------------------------------------------------------------- sub-tasks


@dataclass(frozen=True)
class SubTask:
    """A probe of a task: ``rows`` of its probe set (None = all) with labels remapped to 0..k-1."""

    name: str  # "full", "classes0", "fewshot5", ...
    rows: np.ndarray | None
    labels: np.ndarray
    n_classes: int
    fewshot: int | None = None

    @property
    def is_full(self) -> bool:
        return self.rows is None


def subtasks(task: str, labels: np.ndarray, *, class_subsets: int = 1, fewshot: Sequence[int] = (5,),
             seed: int = 0) -> list[SubTask]:
    """The full task and its sampled sub-tasks: ``class_subsets`` random halves of the classes (tasks of at
    least 4 classes) and, for each ``k`` in ``fewshot``, a probe of ``k`` images per class (when every class
    has more than ``k``). Deterministic in (task, seed)."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"sub-tasks of {task!r}: labels must be a non-empty 1-D integer array")
    C = int(y.max()) + 1
    out = [SubTask("full", None, y.astype(np.int64), C)]
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    if C >= 4:
        for i in range(class_subsets):
            keep = np.sort(rng.choice(C, size=C // 2, replace=False))
            rows = np.flatnonzero(np.isin(y, keep))
            remap = np.full(C, -1, dtype=np.int64)
            remap[keep] = np.arange(keep.size)
            out.append(SubTask(f"classes{i}", rows, remap[y[rows]], int(keep.size)))
    counts = np.bincount(y, minlength=C)
    for k in fewshot:
        if int(k) >= 2 and counts.min() > int(k):
            rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), size=int(k), replace=False)
                                           for c in range(C)]))
            out.append(SubTask(f"fewshot{int(k)}", rows, y[rows].astype(np.int64), C, fewshot=int(k)))
    return out


# --------------------------------------------------------------------------------------- benchmark meta-data


class BenchmarkMetaData:
    """Metric qualities on a benchmark's tasks and their sub-tasks, computed lazily and cached (module doc).

    ``metrics``: the candidate metrics (default: every registered metric); ``class_subsets``, ``fewshot``: the
    sub-tasks of each task (:func:`subtasks`); ``subtask_weight``: their weight in the loss; ``cache_dir``: where
    score vectors are kept on disk (default ``<zoorank cache>/metarank/scores``; ``False``: memory only).
    Qualities are kept per (task, sub-task, metric): they do not depend on which target is held out.
    """

    def __init__(self, metrics: Sequence[str] | None = None, *, class_subsets: int = 1,
                 fewshot: Sequence[int] = (5,), subtask_weight: float = 0.5, seed: int = 0,
                 cache_dir: str | Path | bool | None = None, source: str = "benchmark"):
        from zoorank import metrics as M

        self.metrics = list(benchmarked_metrics() if metrics is None else metrics)
        for m in self.metrics:
            M.info(m)
        if not self.metrics:
            raise InputError("metarank meta-data: no metrics")
        self.class_subsets = int(class_subsets)
        self.fewshot = tuple(int(k) for k in fewshot)
        if not 0 < subtask_weight <= 1:
            raise InputError(f"metarank meta-data: subtask_weight must be in (0, 1], got {subtask_weight}")
        self.subtask_weight = float(subtask_weight)
        self.seed = seed
        self.source = source
        if cache_dir is False:
            directory = None
        elif cache_dir is None or cache_dir is True:
            directory = paths.scores_dir()
        else:
            directory = Path(cache_dir)
        self.store = ScoreStore(directory)
        self._records: dict[str, list[MetaRecord]] = {}
        self.skipped: dict[tuple[str, str, str], str] = {}
        self.computed = 0

    def task_records(self, task: str, info: Any, models: Sequence[str],
                     features: Callable[[str], tuple[np.ndarray, np.ndarray | None]], labels: np.ndarray,
                     truth: np.ndarray, general: Callable[[str], np.ndarray | None] | None = None
                     ) -> list[MetaRecord]:
        """Records of one task (full + sub-tasks): ``features(model)`` -> (features, logits) on its probe,
        ``labels`` the probe labels, ``truth`` the fine-tuned accuracies of ``models`` (in that order)."""
        if task in self._records:
            return self._records[task]
        truth = np.asarray(truth, dtype=np.float64)
        if truth.shape != (len(models),):
            raise InputError(f"metarank meta-data: truth of {task!r} has shape {truth.shape}, expected "
                             f"({len(models)},)")
        y = np.asarray(labels)
        pairs = [features(m) for m in models]
        feats = [np.asarray(f) for f, _ in pairs]
        logits = [None if lg is None else np.asarray(lg) for _, lg in pairs]
        if any(f.shape[0] != y.size for f in feats):
            raise InputError(f"metarank meta-data: features of {task!r} do not match its {y.size} labels")
        gen: list[np.ndarray | None] | None = None
        from zoorank import metrics as M

        if general is not None and any(M.info(m).needs_general_features for m in self.metrics):
            gen = [general(m) for m in models]
        base = [digest(f) for f in feats]
        lbase = [digest(lg) for lg in logits]
        gbase = [digest(g) for g in gen] if gen is not None else None
        out: list[MetaRecord] = []
        for sub in subtasks(task, y, class_subsets=self.class_subsets, fewshot=self.fewshot, seed=self.seed):
            rows = sub.rows
            sf = feats if rows is None else [f[rows] for f in feats]
            sl = logits if rows is None else [None if lg is None else lg[rows] for lg in logits]
            if sub.is_full:
                card = card_from_task_info(info)
            else:
                card = card_from_task_info(info, n_images=int(sub.labels.size), n_classes=sub.n_classes,
                                           per_class=sub.fewshot, fewshot=sub.fewshot,
                                           subset_of=task if sub.name.startswith("classes") else None)
                card.name = f"{task} ({sub.name})"
            text = card.to_text()
            rows_key = "all" if rows is None else digest(rows)
            labels_key = digest(sub.labels)
            for metric in self.metrics:
                key = metric_key(metric, {}, base, lbase, gbase, labels_key, rows_key)
                hit, scores, _ = self.store.get(key)
                if not hit:
                    t0 = time.perf_counter()
                    try:
                        scores = zoo_scores(metric, sf, sl, sub.labels, general=gen)
                        if not np.isfinite(scores).all():
                            raise MetricUnavailable(f"{metric}: non-finite scores")
                    except MetricUnavailable as exc:
                        self.skipped[(task, sub.name, metric)] = str(exc)
                        scores = None
                    self.computed += 1
                    self.store.put(key, scores, time.perf_counter() - t0)
                if scores is None:
                    continue
                q = R.weighted_tau(scores, truth)
                out.append(MetaRecord(task if sub.is_full else f"{task}/{sub.name}", text, metric, q, group=task,
                                      source=self.source if sub.is_full else f"{self.source}:subtask",
                                      weight=1.0 if sub.is_full else self.subtask_weight))
        self._records[task] = out
        return out

    def history_records(self, context: Any) -> list[MetaRecord]:
        """Records of every OTHER task of a harness :class:`~zoorank.evaluation.TaskContext` (through its
        leakage-checked history view: never the held-out task)."""
        hist = context.history
        out: list[MetaRecord] = []
        for t in hist.tasks:
            out += self.task_records(t, hist.task_info(t), hist.models,
                                     lambda m, t=t: hist.features(m, t), hist.labels(t),
                                     hist.truth(t, context.truth_kind), hist.general_features)
        return out


def benchmark_records(benchmark: Any, provider: Any, *, meta: BenchmarkMetaData | None = None,
                      truth_kind: str = "finetune_acc", tasks: Sequence[str] | None = None,
                      progress: Callable[[str], None] | None = None) -> list[MetaRecord]:
    """Records of every task of a harness :class:`~zoorank.evaluation.Benchmark` (for the offline
    evaluation: :func:`leave_one_out` then holds each task's group out of training)."""
    meta = meta or BenchmarkMetaData(source="benchmark")
    general_fn = getattr(provider, "general_features", None)
    out: list[MetaRecord] = []
    for t in (benchmark.tasks if tasks is None else tasks):
        if progress is not None:
            progress(t)
        out += meta.task_records(t, benchmark.task_info[t], benchmark.models,
                                 lambda m, t=t: provider.features(m, t), np.asarray(provider.labels(t)),
                                 benchmark.truth(t, truth_kind), general_fn)
    return out


def average_ranking(train: Sequence[MetaRecord], candidates: Sequence[str], is_target: Callable[[MetaRecord], bool]
                     ) -> np.ndarray:
    """Mean training quality of each candidate over the training datasets (targets, not sub-tasks) that measured
    every candidate; over those that measured it when no dataset measured them all."""
    per: dict[str, dict[str, float]] = {}
    for r in train:
        if is_target(r) and r.metric in candidates:
            per.setdefault(r.dataset, {})[r.metric] = r.quality
    full = [d for d, v in per.items() if all(c in v for c in candidates)]
    out = []
    for c in candidates:
        vals = [per[d][c] for d in full] if full else [v[c] for v in per.values() if c in v]
        out.append(float(np.mean(vals)) if vals else -np.inf)
    return np.array(out)
