"""The end-to-end pipeline (:class:`zoorank.pipeline.Pipeline`) as a leave-one-target-out harness method.

For a held-out target, the rankers are what ``zoorank fit`` makes of a knowledge base that holds the OTHER
targets as ``zoorank rank --kb`` and ``zoorank kb record`` would have left them (the zoo, each task's counts,
dataset card, proxy vector and task token, the metric scores of every model, the fine-tuned accuracies:
:func:`zoorank.evaluation.history_kb.fill_kb`, read through the harness's leakage-checked history view), fitted by
:func:`zoorank.pipeline.learn.fit_rankers` — the product as shipped, not the papers' harness variants. The fit of
a fold is shared by the pipeline variants of a run; a variant without a part passes None for it. The pipeline then
ranks the target through the harness's counted accessors: the proxy / general encoder passes, and forward passes
of the top-K models only. A variant is skipped on a target when ``zoorank fit`` could not fit a part it uses.

``seconds`` is the online time of the job (coarse ranking, metric choice, the metric's scores of the top K, the
merge; a knowledge base keeps no model-specific features of past tasks, so the Spider ``zoorank fit`` makes has no
specific projections and the top K are re-scored by the metric alone); the fits are offline work (``zoorank
fit``, once for all later queries) and are kept out of it through ``context.offline_seconds``, like feature
extraction is kept out of every method's seconds.

Names: ``pipeline@k3``, ``pipeline@k5`` (in ``all``); ``pipeline:k0`` (coarse only), ``pipeline:all`` (the whole
zoo in the fine stage), ``pipeline:no-labels@k5`` (label-free parts only: Fennec + the energy score),
``pipeline:no-spider@k5``, ``pipeline:no-fennec@k5``, ``pipeline:no-metarank@k5`` (LogME instead of MetaRank's
pick) as ablations.

The belief job (:class:`BeliefMethod`): ``rank:default`` (``zoorank rank`` with no options), ``rank:coarse`` (no
forward pass), the plans ``rank:all@25``, ``rank:all@12``, ``rank:top5@{1,2,5,10,20}pct`` (and ``...@f12``), and the
open zoo ``rank:coarse@cold3`` / ``rank:default@cold3``: 3 models of each fold (:func:`cold_models`) deleted from the
fold's knowledge base, placed by their size and architecture as the product does, beside
``...@cold3:population`` (the same cold models as population draws).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation import MethodSkipped, TaskContext
from zoorank.evaluation.registry import register_variants
from zoorank.pipeline.belief_job import Plan

__all__ = ["BeliefMethod", "ContextTask", "PipelineMethod", "ProductSpiderMethod", "fold_rankers", "rank_in_context"]


class ContextTask:
    """A harness :class:`~zoorank.evaluation.TaskContext` as the pipeline's
    :class:`~zoorank.pipeline.TaskSource` (every zoo forward pass goes through the counted accessor)."""

    def __init__(self, context: TaskContext, models=None):
        self.context = context
        self.models = list(context.models if models is None else models)  # the rankers' order, when it differs

    def labels(self) -> np.ndarray:
        return np.asarray(self.context.labels())

    @property
    def accepts_rows(self) -> bool:
        from zoorank.data import accepts_rows

        return accepts_rows(self.context.provider)

    def features(self, model: str, rows=None):
        return self.context.features(model, rows)

    def proxy_features(self) -> np.ndarray:
        return self.context.proxy_features()

    def encoder_features(self) -> np.ndarray:
        return np.asarray(self.context.encoder_features()[0])

    def task_meta(self) -> tuple[int, int]:
        from zoorank.evaluation.adapters.fennec import _n_train

        info = self.context.task_info
        if info.n_classes is None:
            raise MethodSkipped("pipeline: the target has no class count in tasks.csv")
        return int(info.n_classes), int(_n_train(info))

    def model_meta(self, model: str) -> dict[str, Any]:
        """What the benchmark's zoo says of ``model`` (parameter count, architecture): nothing of any target."""
        info = self.context.history.zoo.get(model)
        if info is None:  # not a model of the benchmark: nothing is known of it
            return {}
        return {"params": max(int(info.params), 1), "layers": None, "architecture": info.architecture}

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

    def scores(self, task: str, context: TaskContext) -> np.ndarray:

        if len(context.history.tasks) < 2:
            raise MethodSkipped("pipeline needs at least 2 other targets to learn from")
        rankers = context.offline(lambda: fold_rankers(context))
        missing = [k for k, on in self.parts.items() if on and getattr(rankers, k) is None]
        if missing:  # a variant is only measured with every part it names
            why = "; ".join(f"{k}: {rankers.skipped.get(k, 'not fitted')}" for k in missing)
            raise MethodSkipped(f"{self.name}: zoorank fit could not fit {', '.join(missing)} on the other targets "
                                f"({why})")
        parts = {k: (getattr(rankers, k) if on else None) for k, on in self.parts.items()}
        self.last, scores = rank_in_context(rankers, context, budget=self.budget, use_labels=self.use_labels,
                                            **parts)
        return scores


_ROWS: dict[tuple, tuple[Any, dict]] = {}
_FOLDS: dict[tuple, Any] = {}


class _HistoryBench:
    """A history view seen as the (benchmark, provider) pair :func:`~zoorank.evaluation.history_kb.fill_kb` reads:
    every read goes through the view, so the held-out target cannot leak into the knowledge base."""

    def __init__(self, history: Any):
        self._h = history
        self.models, self.zoo, self.tasks = history.models, history.zoo, history.tasks
        self.task_info = {t: history.task_info(t) for t in history.tasks}

    def truth(self, task: str) -> np.ndarray:
        return self._h.truth(task)


def fold_rankers(context: TaskContext, only: tuple[str, ...] | None = None, *, centres: bool = False,
                 drop: tuple[str, ...] = ()) -> Any:
    """The rankers ``zoorank fit`` fits from a knowledge base of the fold's history (module doc); cached per run
    (provider, zoo and held-out target), and each historical task's knowledge-base rows are computed once per run.
    ``centres``: the knowledge base also keeps every model's class centres on each historical task (what
    ``zoorank rank --kb`` keeps for the models it ran), from which Spider learns its specific projections.
    ``drop``: models deleted from the knowledge base before the fit (they are cold for the rankers)."""
    import tempfile
    from pathlib import Path

    from zoorank.evaluation.history_kb import fill_kb
    from zoorank.methods.belief import STACK_METRICS
    from zoorank.pipeline.learn import fit_rankers
    from zoorank.store import KnowledgeBase

    provider, hist = context.provider, context.history
    run_key = (id(provider), tuple(hist.models), id(hist._bench))  # rows follow the benchmark's model order
    key = (*run_key, tuple(hist.tasks), hist.held_out, only, centres, tuple(drop))
    hit = _FOLDS.get(key)
    if hit is not None and hit[0] is provider:
        return hit[1]
    rows = _ROWS.get(run_key)
    if rows is None or rows[0] is not provider:
        _ROWS.clear()
        rows = _ROWS[run_key] = (provider, {})
    view = _HistoryBench(hist)
    # a belief-only fit needs only the belief ranker's stacked metrics of each historical task; a Spider-only fit
    # none (every historical task has its fine-tuned accuracies, Spider's supervision)
    metrics = {"metrics": STACK_METRICS} if only == ("belief",) else {"metrics": ()} if only == ("spider",) else {}
    with tempfile.TemporaryDirectory() as tmp, KnowledgeBase(Path(tmp) / "kb.sqlite") as kb:
        fill_kb(kb, view, hist, list(hist.tasks), cache=rows[1], centres=centres, **metrics)
        for m in drop:
            kb.delete_model(m)
        rankers = fit_rankers(kb, only=only)
    rankers.info.update(held_out=hist.held_out, history=list(hist.tasks))
    if len(_FOLDS) > 4:
        _FOLDS.clear()
    _FOLDS[key] = (provider, rankers)  # the provider is kept alive: its id stays unique
    return rankers


_FITTED = object()


def rank_in_context(rankers: Any, context: TaskContext, *, budget: int | str, use_labels: bool = True,
                    metrics: Any = None, fennec: Any = _FITTED, spider: Any = _FITTED, metarank: Any = _FITTED
                    ) -> tuple[Any, np.ndarray]:
    """Run the pipeline with fitted ``rankers`` on a harness target: (the PipelineResult, its scores in the
    context's model order). ``fennec`` / ``spider`` / ``metarank``: override a part (None = leave it out)."""
    from zoorank.pipeline import Pipeline

    unknown = sorted(set(context.models) ^ set(rankers.models))
    if unknown:
        raise InputError(f"the rankers were fitted on another zoo (models not in both: {', '.join(unknown[:5])})")
    parts = {"fennec": fennec, "spider": spider, "metarank": metarank}
    parts = {k: (getattr(rankers, k) if v is _FITTED else v) for k, v in parts.items()}
    pipe = Pipeline(rankers.models, budget=budget, metrics=metrics, **parts)
    result = pipe.run(ContextTask(context, rankers.models), use_labels=use_labels)
    where = {m: i for i, m in enumerate(rankers.models)}
    return result, np.asarray(result.scores)[[where[m] for m in context.models]]


def cold_models(task: str, models: list[str], n: int) -> tuple[str, ...]:
    """The ``n`` models an open-zoo variant treats as cold on ``task``: a draw seeded by the target's name (CRC-32),
    the same on every machine and for every method of a run."""
    if n <= 0:
        return ()
    rng = np.random.default_rng(zlib.crc32(task.encode("utf-8")))
    pool = sorted(models)
    return tuple(sorted(pool[i] for i in rng.choice(len(pool), size=min(n, len(pool) - 3), replace=False)))


class BeliefMethod:
    """``zoorank rank``'s default job (:class:`zoorank.pipeline.belief_job.BeliefJob`) with the rankers
    ``zoorank fit`` makes of the fold's history: ``rank:default`` runs the default plan, ``rank:coarse`` the prior
    alone (no forward pass of the zoo). ``cold``: that many models of the zoo (:func:`cold_models`) are deleted
    from the fold's knowledge base, so the rankers meet them cold (an open zoo); ``place``: cold models placed by
    their size and architecture (the product's way) rather than as population draws. The ranking is judged on the
    whole zoo, cold models included."""

    def __init__(self, name: str, budget: Any = None, *, cold: int = 0, place: bool = True):
        self.name = name
        self.budget = budget
        self.cold, self.place = int(cold), bool(place)
        self.last = None

    def __repr__(self) -> str:
        return f"BeliefMethod({self.name!r})"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank.pipeline.belief_job import BeliefJob, parse_plan

        if len(context.history.tasks) < 2:
            raise MethodSkipped(f"{self.name} needs at least 2 other targets to learn from")
        drop = cold_models(task, list(context.models), self.cold)
        rankers = context.offline(lambda: fold_rankers(context, only=("belief",), drop=drop))
        if rankers.belief is None:
            raise MethodSkipped(f"{self.name}: zoorank fit could not fit the belief ranker "
                                f"({rankers.skipped.get('belief', 'not fitted')})")
        unknown = sorted(set(context.models) ^ (set(rankers.models) | set(drop)))
        if unknown:
            raise InputError(f"the rankers were fitted on another zoo (models not in both: {', '.join(unknown[:5])})")
        zoo = list(rankers.models) + list(drop)
        source = ContextTask(context, zoo)
        plan = self.budget if isinstance(self.budget, Plan) else parse_plan(self.budget, len(zoo),
                                                                                 probe_size=len(source.labels()))
        self.last = BeliefJob(zoo, rankers.belief, plan=plan, place_cold=self.place).run(source)
        where = {m: i for i, m in enumerate(zoo)}
        return np.asarray(self.last.scores)[[where[m] for m in context.models]]


class ProductSpiderMethod:
    """Model Spider through the product's path: the Spider ``zoorank fit`` fits from a knowledge base of the fold's
    history that keeps every model's class centres (:func:`fold_rankers` with ``centres``), ranking the target from
    its task token; with ``k``, the top k are re-ranked with their PTM-specific tokens (section 4.4: ``k`` forward
    passes), as the pipeline's fine stage does."""

    def __init__(self, name: str, k: int = 0):
        self.name, self.k = name, int(k)

    def __repr__(self) -> str:
        return f"ProductSpiderMethod({self.name!r})"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank.methods.spider import specific_token, task_token
        from zoorank.ranking import best_first

        rankers = context.offline(lambda: fold_rankers(context, only=("spider",), centres=True))
        spider = rankers.spider
        if spider is None:
            raise MethodSkipped(f"{self.name}: zoorank fit could not fit Model Spider "
                                f"({rankers.skipped.get('spider', 'not fitted')})")
        where = {m: i for i, m in enumerate(rankers.models)}
        E, y = context.encoder_features()
        token = task_token(E, y)
        coarse = spider.predict(token)
        if self.k:
            labels = np.asarray(context.labels())
            top = [int(i) for i in best_first(coarse, self.k)]
            missing = [rankers.models[i] for i in top if i not in spider.specific_trained_]
            if missing:
                raise InputError(f"{self.name}: Spider learned no specific projection for {', '.join(missing)}")
            specific = {i: specific_token(np.asarray(context.features(rankers.models[i])[0]), labels) for i in top}
            coarse = spider.rerank(token, specific, coarse)
        return np.asarray(coarse)[[where[m] for m in context.models]]


@register_variants
def _product_spider_variants() -> dict[str, Callable[[], ProductSpiderMethod]]:
    return {"spider:product": lambda: ProductSpiderMethod("spider:product"),
            "spider:product@k5": lambda: ProductSpiderMethod("spider:product@k5", k=5)}


@register_variants
def _belief_variants() -> dict[str, Callable[[], BeliefMethod]]:
    out = {"rank:default": lambda: BeliefMethod("rank:default"),
           "rank:coarse": lambda: BeliefMethod("rank:coarse", budget=0),
           "rank:all@25": lambda: BeliefMethod("rank:all@25", budget=Plan(0.25))}
    for pct in (1, 2, 5, 10, 20):
        name = f"rank:top5@{pct}pct"
        out[name] = lambda name=name, pct=pct: BeliefMethod(name, budget=Plan(0.25, chance=pct / 100))
        name = f"rank:top5@{pct}pct@f12"
        out[name] = lambda name=name, pct=pct: BeliefMethod(name, budget=Plan(0.125, chance=pct / 100))
    out["rank:all@12"] = lambda: BeliefMethod("rank:all@12", budget=Plan(0.125))
    for base, budget in (("rank:coarse", 0), ("rank:default", None)):  # open zoos: 3 models the history lacks
        out[f"{base}@cold3"] = lambda base=base, budget=budget: BeliefMethod(f"{base}@cold3", budget, cold=3)
        out[f"{base}@cold3:population"] = lambda base=base, budget=budget: BeliefMethod(
            f"{base}@cold3:population", budget, cold=3, place=False)
    return out


@register_variants
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
