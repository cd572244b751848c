"""The end-to-end rank job of DESIGN.md: coarse ranking of the whole zoo without zoo forward passes, the metric
MetaRank trusts for the dataset, forward passes of the top-K models only, one merged ranking.

Stages (each one's cost is accounted for in :class:`Stage`):

1. **coarse** — Fennec (``s_i = (1-a) m_i.d_t + a META_i``, Fennec equation 10; proxy-encoder features of an
   unlabelled sample, no labels) and Model Spider (equation 6 with the task token = class centres of the general
   encoder, needs labels) score every model of the zoo; no zoo model runs. The two are merged by their mean
   normalised rank (a Borda count: the scales of the two scores are unrelated).
2. **metric choice** — MetaRank ranks the candidate metrics for the dataset card; the first one that can run on
   the task is used (without labels only label-free metrics are candidates: ETran's energy score).
3. **fine** (budget K) — forward passes of the K best models of the coarse ranking on the probe set; the chosen
   metric scores them (pool-relative metrics are scored within the K) and Spider re-scores them with their
   model-specific task tokens (section 4.4); the two are merged by mean normalised rank within the K.
4. **merge** — the K re-scored models come first, in their fine order; the rest follow in their coarse order.
   ``budget=0`` is purely coarse; ``budget >= len(zoo)`` scores the whole zoo in the fine stage.

The task is given as a :class:`TaskSource` (features on demand, so that only the top-K models run); the learned
parts are fitted objects (:class:`~zoorank.methods.Fennec`, :class:`~zoorank.methods.ModelSpider`,
:class:`~zoorank.methods.MetaRank`), any of which may be absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.stats import rankdata

from zoorank import metrics as M
from zoorank.errors import InputError
from zoorank.methods.base import TaskEvidence
from zoorank.metric_sets import LABEL_FREE, fine_stage_candidates, first_usable
from zoorank.ranking import best_first, snap_ties

if TYPE_CHECKING:
    from zoorank.methods.fennec.model import Fennec
    from zoorank.methods.metarank.model import MetaRank
    from zoorank.methods.spider.model import ModelSpider

__all__ = ["LABEL_FREE_METRICS", "Pipeline", "PipelineResult", "Stage", "TaskSource", "normalised_rank",
           "parse_budget", "rank_merge"]

#: Metrics that need no labels (the candidates of a ``--no-labels`` run).
LABEL_FREE_METRICS = LABEL_FREE


class TaskSource(Protocol):
    """What the pipeline may ask of the new task. ``labels()`` is None for an unlabelled task."""

    models: Sequence[str]

    def labels(self) -> np.ndarray | None: ...

    def features(self, model: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(features [N, D], source logits [N, Cs] or None) of a zoo model on the probe set: a forward pass."""

    def proxy_features(self) -> np.ndarray:
        """Proxy-encoder features [n, G] of an unlabelled sample of the task's images (Fennec)."""

    def encoder_features(self) -> np.ndarray:
        """General-encoder features [N, G] of the probe set, rows aligned with ``labels()`` (Spider's token)."""

    def task_meta(self) -> tuple[int, int]:
        """(class count, training-image count) of the task (Fennec's task meta features)."""

    def card(self) -> Any:
        """The dataset card or description text (MetaRank)."""


def normalised_rank(scores: np.ndarray) -> np.ndarray:
    """Ranks of ``scores`` scaled to (0, 1] (1 = best; ties, equal up to ``zoorank.ranking.TIE_RTOL``, share
    their mean rank)."""
    s = snap_ties(np.asarray(scores, dtype=np.float64))
    return rankdata(s) / s.size


def rank_merge(named: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Weighted mean of the normalised ranks of several score vectors over the same models (a Borda count)."""
    if not named:
        raise InputError("rank_merge: no score vectors to merge")
    w = {k: float((weights or {}).get(k, 1.0)) for k in named}
    total = sum(w.values())
    if total <= 0:
        raise InputError("rank_merge: the weights must have a positive sum")
    return sum(w[k] * normalised_rank(v) for k, v in named.items()) / total


@dataclass
class Stage:
    """The cost of one stage: zoo forward passes, passes of the proxy / general encoder, seconds."""

    name: str
    forward_passes: int = 0
    encoder_passes: int = 0
    seconds: float = 0.0
    detail: str = ""


@dataclass
class PipelineResult:
    """The merged ranking (``scores``: higher = better, over ``models``) with every stage's scores and cost."""

    models: list[str]
    scores: np.ndarray
    coarse: dict[str, np.ndarray]
    coarse_merged: np.ndarray | None
    fine: dict[str, dict[int, float]]
    top: list[int]
    metric: str | None
    metric_ranking: list[str]
    metric_reason: str
    stages: list[Stage]
    labels_used: bool
    notes: list[str] = field(default_factory=list)

    @property
    def order(self) -> list[int]:
        """Model indices, best first."""
        return [int(i) for i in best_first(self.scores)]

    @property
    def ranking(self) -> list[str]:
        return [self.models[i] for i in self.order]

    @property
    def forward_passes(self) -> int:
        return sum(s.forward_passes for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per model, best first: rank, model, final score and every stage's score."""
        out = []
        for r, i in enumerate(self.order, 1):
            row: dict[str, Any] = {"rank": r, "model": self.models[i], "score": float(self.scores[i])}
            for k, v in self.coarse.items():
                row[f"coarse:{k}"] = float(v[i])
            for k, v in self.fine.items():
                row[f"fine:{k}"] = v.get(i)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": self.rows(),
            "metric": self.metric, "metric_ranking": self.metric_ranking, "metric_reason": self.metric_reason,
            "labels_used": self.labels_used, "budget": len(self.top),
            "stages": [vars(s) for s in self.stages],
            "forward_passes": self.forward_passes, "seconds": self.seconds, "notes": self.notes,
        }


class _Clock:
    def __init__(self, stage: Stage):
        self.stage = stage

    def __enter__(self) -> Stage:
        self.t0 = time.perf_counter()
        return self.stage

    def __exit__(self, *exc: object) -> None:
        self.stage.seconds += time.perf_counter() - self.t0


def parse_budget(budget: int | str) -> int | str:
    """A fine-stage budget: a non-negative number of models (``"5"`` or 5), or ``"all"``; else InputError."""
    if isinstance(budget, str):
        if budget.strip().lower() == "all":
            return "all"
        try:
            budget = int(budget)
        except ValueError:
            raise InputError(f"budget must be a number of models or 'all', got {budget!r}") from None
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InputError(f"budget must be a non-negative number of models or 'all', got {budget!r}")
    return int(budget)


class Pipeline:
    """The rank job (module doc). ``fennec`` / ``spider`` / ``metarank``: fitted rankers or None; ``models``: the
    zoo, in the order of the rankers' own model lists; ``budget``: K, the number of models that run (an int,
    ``"all"``, or 0 for a purely coarse ranking); ``metrics``: candidate metrics in fallback order (MetaRank
    re-orders them); ``coarse_weights`` / ``fine_weights``: weights of the rank merges (keys ``fennec``,
    ``spider`` / ``metric``, ``spider``)."""

    def __init__(self, models: Sequence[str], *, fennec: Fennec | None = None, spider: ModelSpider | None = None,
                 metarank: MetaRank | None = None, budget: int | str = 5, metrics: Sequence[str] | None = None,
                 coarse_weights: Mapping[str, float] | None = None,
                 fine_weights: Mapping[str, float] | None = None):
        self.models = list(models)
        if not self.models:
            raise InputError("pipeline: the zoo is empty")
        for name, ranker in (("fennec", fennec), ("spider", spider)):
            if ranker is not None and list(ranker.models_) != self.models:
                raise InputError(f"pipeline: the {name} ranker was fitted on another zoo ({len(ranker.models_)} "
                                 f"models); refit it (zoorank fit)")
        self.fennec, self.spider, self.metarank = fennec, spider, metarank
        self.budget = self._budget(budget)
        self.metrics = list(metrics) if metrics is not None else fine_stage_candidates()
        unknown = [m for m in self.metrics if m not in M.available()]
        if unknown:
            raise InputError(f"pipeline: unknown metric(s) {', '.join(unknown)}")
        self.coarse_weights = dict(coarse_weights or {})
        self.fine_weights = dict(fine_weights or {})

    def _budget(self, budget: int | str) -> int:
        k = parse_budget(budget)
        return len(self.models) if k == "all" else min(k, len(self.models))

    # -- stages ------------------------------------------------------------------------------------------

    def _coarse(self, task: TaskSource, labels: np.ndarray | None, notes: list[str]
                ) -> tuple[dict[str, np.ndarray], Stage, np.ndarray | None]:
        from zoorank.methods.fennec.model import summarize_proxy
        from zoorank.methods.spider.sampling import task_token

        stage = Stage("coarse")
        out: dict[str, np.ndarray] = {}
        evidence = TaskEvidence()
        with _Clock(stage):
            if self.fennec is not None:
                proxy = summarize_proxy(np.asarray(task.proxy_features()))
                stage.encoder_passes += 1
                n_classes, n_train = task.task_meta()
                evidence = replace(evidence, proxy=proxy, n_classes=n_classes, n_samples=n_train)
                out["fennec"] = np.asarray(self.fennec.score(evidence))
            if self.spider is not None:
                if labels is None:
                    notes.append("Model Spider skipped: its task token needs labels (class centres)")
                else:
                    token = task_token(np.asarray(task.encoder_features()), labels)
                    stage.encoder_passes += 1
                    evidence = replace(evidence, token=token)
                    out["spider"] = np.asarray(self.spider.score(evidence))
        stage.detail = " + ".join(out) if out else "no coarse ranker"
        return out, stage, evidence.token

    def _metric_order(self, task: TaskSource, labels: np.ndarray | None) -> tuple[list[str], str, Stage]:
        stage = Stage("metric choice")
        with _Clock(stage):
            if labels is None:
                order = [m for m in self.metrics if m in LABEL_FREE_METRICS] or list(LABEL_FREE_METRICS)
                reason = "no labels: only label-free metrics can run"
            elif self.metarank is not None:
                known = set(self.metarank.metrics)
                candidates = [m for m in self.metrics if m in known] or self.metrics
                ranking = self.metarank.rank_metrics(task.card(), candidates)
                order, reason = ranking.names(), ranking.reason
            else:
                order, reason = list(self.metrics), "no MetaRank model: the default order"
        stage.detail = order[0] if order else "-"
        return order, reason, stage

    def _fine(self, task: TaskSource, top: list[int], labels: np.ndarray | None, order: list[str],
              notes: list[str]) -> tuple[dict[str, dict[int, float]], str | None, Stage]:
        from zoorank.methods.spider.sampling import specific_token

        stage = Stage("fine")
        fine: dict[str, dict[int, float]] = {}
        chosen = None
        if not top:
            stage.detail = "budget 0: coarse ranking only"
            return fine, chosen, stage
        pairs = {}
        for i in top:  # forward passes: the provider's time is counted here, as a user would wait for it
            t0 = time.perf_counter()
            pairs[i] = task.features(self.models[i])
            stage.seconds += time.perf_counter() - t0
        stage.forward_passes = len(top)
        with _Clock(stage):
            feats = [np.asarray(pairs[i][0]) for i in top]
            logits = [pairs[i][1] for i in top]
            names = [self.models[i] for i in top]
            used = first_usable(order, lambda metric: M.score_zoo(metric, feats, logits, labels, names=names),
                                skip=(M.MetricUnavailable,))
            chosen, problems = used.metric, used.problems
            if chosen is not None:
                fine["metric"] = {i: float(v) for i, v in zip(top, used.scores, strict=True)}
            if chosen is None:
                notes.append("no metric could score the top models: " + "; ".join(problems[:3]))
            elif problems:
                notes.append(f"passed over before {chosen}: " + "; ".join(problems[:3]))
            if self.spider is not None and labels is not None:
                trained = self.spider.specific_trained_
                specific = {i: specific_token(np.asarray(pairs[i][0]), labels) for i in top if i in trained}
                if specific:
                    fine["spider"] = self.spider.specific_scores(specific)
                if len(specific) < len(top):
                    notes.append(f"Spider has no specific projection for {len(top) - len(specific)} of the top "
                                 f"models: they are re-scored by the metric alone")
        stage.detail = " + ".join(k if k != "metric" else f"metric {chosen}" for k in fine) or "nothing"
        return fine, chosen, stage

    def _fine_merge(self, top: list[int], fine: dict[str, dict[int, float]], coarse: np.ndarray | None
                    ) -> np.ndarray:
        """Fine scores in [0, 1] over ``top``: the mean normalised rank of the fine scorers that scored every top
        model (a scorer covering only some of them is merged over those, the rest taking its mean rank)."""
        named = {}
        for k, v in fine.items():
            vec = np.array([v.get(i, np.nan) for i in top], dtype=np.float64)
            if np.isnan(vec).all():
                continue
            r = np.full(len(top), np.nan)
            ok = ~np.isnan(vec)
            r[ok] = normalised_rank(vec[ok])
            r[~ok] = float(np.nanmean(r))
            named[k] = r
        if not named:  # nothing re-scored them: keep their coarse order
            base = coarse[top] if coarse is not None else -np.arange(len(top), dtype=np.float64)
            return normalised_rank(base)
        w = {k: float(self.fine_weights.get(k, 1.0)) for k in named}
        return sum(w[k] * named[k] for k in named) / sum(w.values())

    # -- the job -------------------------------------------------------------------------------------------

    def run(self, task: TaskSource, *, use_labels: bool = True,
            progress: Callable[[str], None] | None = None) -> PipelineResult:
        """Rank the zoo for ``task`` (module doc). ``use_labels=False`` runs only the label-free parts."""
        say = progress or (lambda _msg: None)
        notes: list[str] = []
        labels = task.labels() if use_labels else None
        if labels is not None:
            labels = np.asarray(labels)
        else:
            notes.append("no labels: Fennec and label-free metrics only")
        say("coarse ranking")
        coarse, s_coarse, _ = self._coarse(task, labels, notes)
        coarse_merged = rank_merge(coarse, self.coarse_weights) if coarse else None
        if coarse_merged is None:
            if self.budget < len(self.models):
                raise InputError(f"pipeline: no coarse ranking could be made (no fitted Fennec, and no Spider or no "
                                 f"labels), so a budget of {self.budget} of {len(self.models)} models cannot choose "
                                 f"which to run; fit the rankers (zoorank fit) or use budget 'all'")
            notes.append("no coarse ranker: the whole zoo goes to the fine stage")
        k = self.budget
        base = coarse_merged if coarse_merged is not None else np.zeros(len(self.models))
        top = [int(i) for i in best_first(base, k)]
        say("metric choice")
        order, reason, s_metric = self._metric_order(task, labels) if top else ([], "budget 0", Stage("metric choice"))
        say(f"forward passes of {len(top)} models")
        fine, chosen, s_fine = self._fine(task, top, labels, order, notes)
        s_merge = Stage("merge")
        with _Clock(s_merge):
            scores = np.zeros(len(self.models)) if coarse_merged is None else coarse_merged.copy()
            if top:  # ties of the fine merge are broken by the coarse ranking; the block stays above 1
                tie = 1e-6 * coarse_merged[top] if coarse_merged is not None else 0.0
                scores[top] = 1.0 + self._fine_merge(top, fine, coarse_merged) + tie
        return PipelineResult(self.models, scores, coarse, coarse_merged, fine, top, chosen, order, reason,
                              [s_coarse, s_metric, s_fine, s_merge], labels is not None, notes)
