"""Model Spider (Zhang et al., NeurIPS 2023) as a leave-one-target-out harness method.

For a held-out target h, the method fits a :class:`~zoorank.methods.spider.ModelSpider` on the sampled training
tasks (:class:`~zoorank.methods.spider.SupervisionBank`) whose 2–4 source tasks are all among the OTHER targets,
supervised by the Copeland aggregation of NCE, LEEP, LogME and H-Score computed on the zoo's cached features of
those targets (no ground truth, no fine-tuning), then ranks h from its task token — the class centres of the
provider's general encoder on h's probe set (equation 5; ``context.encoder_features()``, not a zoo forward
pass). ``spider@k{k}`` then extracts the features of the k best models of that coarse ranking on h (k counted
forward passes) and re-scores them with their PTM-specific task tokens (section 4.4).

Cost: the sampled tasks are planned once per run from the whole task list (fixed seed) and each is scored the
first time a fold can see all of its sources; later folds reuse it (a fold holding out h uses the samples that
do not involve h, about (T − s)/T of them for s sources of T targets). The fit of a fold is shared by the
variants with the same training configuration (``spider``, ``spider@k3``, ``spider@k5``). Fitting is offline work
(``context.offline``): ``seconds`` is the online ranking time.

Names: ``spider`` (no zoo forward pass), ``spider@k3``, ``spider@k5``: the paper as written, the H-Score of the
supervision the raw H-Score on every sampled task (appendix A.4; on a task with fewer rows than a model's feature
dimension + 1 it is exactly C − 1 for that model, a tie: :data:`PAPER_BANK`). Ablations (left out of ``all``):
``spider:shrinkage`` / ``spider:shrinkage@k5``, the H-Score slot swapped for the shrinkage H-Score on every
sampled task too small for the raw form (``hscore_form="auto"``, :data:`BANK_DEFAULTS`, the form every other
ablation uses); ``spider:source`` / ``spider:source-shrinkage``, the training tasks sampled from auxiliary data
disjoint from the targets, as in appendix B.1 (the provider's ``source_tasks``: ZooBench's 8 source domains, fresh
images), larger tasks (:data:`SOURCE_BANK`), the same fit in every fold since no target is read;
``spider:mse``, ``spider:listmle`` (the losses of table 4), ``spider:nce-only``, ``spider:leep-only``,
``spider:logme-only``, ``spider:hscore-only`` (single-metric supervision, table 3), and ``spider:acc`` — the
supervision is the TRUE fine-tuned accuracy of the other targets (each sampled task gets the row-weighted mean
accuracy of its sources): the only variant that reads ``history.truth``, an upper-bound reference.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation import MethodSkipped, TaskContext
from zoorank.evaluation.registry import register_variants
from zoorank.methods.spider import ModelSpider, SupervisionBank, TrainingTask, specific_token, task_token
from zoorank.metric_sets import SPIDER_SUPERVISION
from zoorank.ranking import best_first

__all__ = ["BANK_DEFAULTS", "PAPER_BANK", "SOURCE_BANK", "SPIDER_DEFAULTS", "SourceHistory", "SpiderMethod"]

#: Sampling of the training tasks (see :class:`~zoorank.methods.spider.SupervisionBank`).
BANK_DEFAULTS = {"n_tasks": 256, "sources": (2, 4), "classes_per_source": (2, 6), "per_class": 8, "n_specific": 8,
                 "hscore_form": "auto", "seed": 0}
#: The paper's supervision: the raw H-Score in the Copeland aggregate, whatever the task's size.
PAPER_BANK = {"hscore_form": "raw"}
#: Training tasks from the source domains (appendix B.1): 1-3 domains, 4-12 classes each, 20 images per class
#: (up to 720 rows; the metrics of 37 models on 96 such tasks take a few minutes on 2 cores).
SOURCE_BANK = {"n_tasks": 96, "sources": (1, 3), "classes_per_source": (4, 12), "per_class": 20}


class SourceHistory:
    """A provider's auxiliary labelled tasks (``source_tasks``, ``source_features``, ``source_labels``,
    ``source_encoder_features``) seen as the :class:`~zoorank.methods.spider.sampling.History` a supervision bank
    reads; none of them is a target, so every fold may read all of them."""

    def __init__(self, provider):
        need = ("source_tasks", "source_features", "source_labels", "source_encoder_features")
        if not all(hasattr(provider, n) for n in need):
            raise MethodSkipped("the benchmark's provider has no auxiliary source tasks")
        self._p = provider
        self.tasks = tuple(provider.source_tasks())

    def features(self, model: str, task: str):
        return self._p.source_features(model, task)

    def labels(self, task: str) -> np.ndarray:
        return np.asarray(self._p.source_labels(task))

    def encoder_features(self, task: str):
        return self._p.source_encoder_features(task)
#: The scorer and its training (see :class:`~zoorank.methods.spider.ModelSpider`).
SPIDER_DEFAULTS = {"dim": 64, "heads": 4, "ffn": 128, "epochs": 40, "batch_size": 16, "lr": 3e-3,
                   "weight_decay": 1e-4, "specific_rate": 0.5, "seed": 0}

_BANKS: OrderedDict[tuple, tuple[object, SupervisionBank]] = OrderedDict()
_FITS: OrderedDict[tuple, ModelSpider] = OrderedDict()
_MAX_BANKS, _MAX_FITS = 4, 4
_SUPERVISIONS = ("copeland", *SPIDER_SUPERVISION, "finetune_acc", "linear_probe_acc")


def _remember(cache: OrderedDict, key: tuple, value, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


class SpiderMethod:
    """Model Spider on a harness benchmark (module doc). ``k``: models re-ranked with specific tokens (0 = none);
    ``loss``: ``rank`` / ``mse`` / ``listmle``; ``supervision``: ``copeland``, one metric (``logme``, ...) or a
    ground-truth kind (``finetune_acc``: ablation only); ``bank`` / ``spider``: overrides of
    :data:`BANK_DEFAULTS` / :data:`SPIDER_DEFAULTS`; ``source``: sample the training tasks from the provider's
    auxiliary source tasks (:class:`SourceHistory`) instead of the other targets; ``min_tasks``: fewer usable
    training tasks skip the target."""

    def __init__(self, name: str = "spider", *, k: int = 0, loss: str = "rank", supervision: str = "copeland",
                 bank: dict | None = None, spider: dict | None = None, source: bool = False, min_tasks: int = 8):
        if supervision not in _SUPERVISIONS:
            raise InputError(f"{name}: supervision must be one of {', '.join(_SUPERVISIONS)}, got {supervision!r}")
        if not isinstance(k, int) or k < 0:
            raise InputError(f"{name}: k must be a non-negative integer, got {k!r}")
        self.name = name
        self.k = k
        self.supervision = supervision
        self.bank_params = {**BANK_DEFAULTS, **(bank or {})}
        self.spider_params = {**SPIDER_DEFAULTS, **(spider or {}), "loss": loss}
        self.min_tasks = int(min_tasks)
        self.source = bool(source)
        if self.source and self.supervision in ("finetune_acc", "linear_probe_acc"):
            raise InputError(f"{name}: the source tasks have no fine-tuned accuracies")
        self.last_spider: ModelSpider | None = None

    def __repr__(self) -> str:
        return f"SpiderMethod({self.name!r})"

    # -- shared state ----------------------------------------------------------------------------------

    def bank(self, context: TaskContext) -> SupervisionBank:
        """The run's supervision bank (shared by every Spider variant on the same provider and zoo)."""
        provider = context.provider
        if self.source:
            universe = SourceHistory(context.history.provider).tasks
        else:
            universe = (*context.history.tasks, context.history.held_out)
        key = (id(provider), tuple(context.models), tuple(sorted(universe)),
               json.dumps(self.bank_params, sort_keys=True))
        hit = _BANKS.get(key)
        if hit is not None and hit[0] is provider:
            _BANKS.move_to_end(key)
            return hit[1]
        bank = SupervisionBank(context.models, universe, **self.bank_params)
        _remember(_BANKS, key, (provider, bank), _MAX_BANKS)  # the provider is kept alive: its id stays unique
        return bank

    def training_tasks(self, context: TaskContext) -> list[TrainingTask]:
        """The fold's training tasks: samples of the other targets only, with this variant's supervision."""
        hist = context.history
        bank = self.bank(context)
        if self.source:
            return bank.training_tasks(SourceHistory(context.history.provider),
                                       supervision=self.supervision)
        if self.supervision in ("finetune_acc", "linear_probe_acc"):
            tasks = bank.training_tasks(hist)
            acc = {t: hist.truth(t, self.supervision) for t in {s for task in tasks for s in task.sources}}
            out = []
            for task in tasks:
                w = np.array([m.rows.size for m in task.members], dtype=np.float64)
                sup = sum(wi * acc[m.task] for wi, m in zip(w, task.members, strict=True)) / w.sum()
                out.append(replace(task, supervision=sup))
            return out
        return bank.training_tasks(hist, supervision=self.supervision)

    def fitted(self, context: TaskContext) -> ModelSpider:
        """The Spider of this fold (fitted once per fold and training configuration, then reused)."""
        tasks = self.training_tasks(context)
        if len(tasks) < self.min_tasks:
            raise MethodSkipped(f"{self.name}: only {len(tasks)} sampled training tasks avoid the target "
                                f"(need {self.min_tasks}; more targets or bank n_tasks)")
        bank = self.bank(context)
        fold = None if self.source else context.history.held_out  # the source tasks are the same in every fold
        key = (id(bank), bank.computed, fold, self.supervision,
               json.dumps(self.spider_params, sort_keys=True), tuple(t.name for t in tasks))
        spider = _FITS.get(key)
        if spider is None:
            spider = ModelSpider(**self.spider_params).fit(
                tasks, models=context.models, feature_dims=[bank.feature_dims.get(m) for m in context.models])
            _remember(_FITS, key, spider, _MAX_FITS)
        else:
            _FITS.move_to_end(key)
        return spider

    # -- the method -------------------------------------------------------------------------------------

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        spider = context.offline(lambda: self.fitted(context))
        self.last_spider = spider
        E, y = context.encoder_features()
        token = task_token(E, y)
        coarse = spider.predict(token)
        if self.k == 0:
            return coarse
        labels = np.asarray(context.labels())
        top = best_first(coarse, self.k)
        specific = {}
        for m in top:
            feats, _ = context.features(context.models[int(m)])
            specific[int(m)] = specific_token(feats, labels)
        return spider.rerank(token, specific, coarse)


@register_variants
def _variants() -> dict[str, Callable[[], SpiderMethod]]:
    out: dict[str, Callable[[], SpiderMethod]] = {
        "spider": lambda: SpiderMethod("spider", bank=PAPER_BANK),
        "spider@k3": lambda: SpiderMethod("spider@k3", k=3, bank=PAPER_BANK),
        "spider@k5": lambda: SpiderMethod("spider@k5", k=5, bank=PAPER_BANK),
        "spider:shrinkage": lambda: SpiderMethod("spider:shrinkage"),
        "spider:shrinkage@k5": lambda: SpiderMethod("spider:shrinkage@k5", k=5),
        "spider:source": lambda: SpiderMethod("spider:source", bank={**SOURCE_BANK, **PAPER_BANK}, source=True),
        "spider:source-shrinkage": lambda: SpiderMethod("spider:source-shrinkage", bank=SOURCE_BANK, source=True),
        "spider:mse": lambda: SpiderMethod("spider:mse", loss="mse"),
        "spider:listmle": lambda: SpiderMethod("spider:listmle", loss="listmle"),
        "spider:acc": lambda: SpiderMethod("spider:acc", supervision="finetune_acc"),
    }
    for metric in SPIDER_SUPERVISION:
        name = f"spider:{metric}-only"
        out[name] = lambda name=name, metric=metric: SpiderMethod(name, supervision=metric)
    return out
