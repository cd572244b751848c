"""The default rank job: the belief ranker's prior for the task, a probe stage that runs models on part of the
probe set, and Bayes' rule (:mod:`zoorank.methods.posterior`, :mod:`zoorank.methods.belief`).

1. **prior** — the fitted :class:`~zoorank.methods.belief.BeliefRanker`'s belief for the task: the knowledge
   base's accuracies weighted by similarity of the task's proxy vector (one pass of the proxy encoder on an
   unlabelled sample) as far as history shows similarity predicts; no zoo model runs.
2. **probe stage** (:class:`Plan`) — the models the plan names run on a stratified ``fraction`` of the probe set
   (:func:`zoorank.data.fraction_rows`); the stacked metrics of the ranker's link for that fraction score them.
   By default (:data:`DEFAULT_PLAN`) the plan runs the models worth measuring for the top of the ranking: those
   whose prior chance of beating the prior's 5th best model is at least 5 %
   (:func:`zoorank.methods.posterior.top_chance`); a model that can hardly reach the top keeps its place from the
   prior, moved by what the measured models say through the prior's covariance. Other plans: the best
   ``n_models`` of the prior, or every model.
3. **posterior** — the stage's scores enter the belief through the calibrated link; the ranking is the
   posterior mean, each model with its central interval (``level``, default 80 %).

**Known accuracies** (``known``: {model: fine-tuned accuracy on this task}, what the user has already measured)
enter the same belief as an observation of those models (:func:`zoorank.methods.posterior.accuracy_observation`, one
fine-tuning run's noise :data:`KNOWN_NOISE`) of a prior whose covariance has the shrinkage tuned on the history for
revealed accuracies (``BeliefRanker.known_shrinkage_``): they move the others as far as it says they covary, the
probe stage does not run them, and their posterior stays near the measured value, with the narrowest intervals of
the zoo (it moves from it only as far as the other evidence, through the covariance, outweighs the noise).

Without labels, or with a plan of 0 models, the ranking is the prior (with the known accuracies, if any). The cost
of the job is counted as the images passed through zoo models (``image_passes``) and the wall time of every stage.

**Open zoos.** The zoo may lack models the ranker was fitted on and hold models it has never seen (*cold* models: no
result in the knowledge base). The prior is :func:`zoorank.methods.posterior.for_zoo`'s: the exact marginal on the
known models, each cold one a draw from the population of the fitted models, or, when the task source says what a
cold model is (``model_meta``: parameter count, layers, architecture) and history shows that this predicts, a
mixture of the fitted models it resembles (:mod:`zoorank.methods.placement`, Fennec's meta phase). Cold models run
first in the probe stage (a plan of K models runs them and then the best of the prior), so their place comes from
their own measurements too; the result lists them (``cold``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from zoorank import metrics as M
from zoorank.data import accepts_rows
from zoorank.errors import InputError
from zoorank.pipeline.core import PipelineResult, Stage, TaskSource

__all__ = ["DEFAULT_PLAN", "KNOWN_NOISE", "BeliefJob", "BeliefResult", "Plan", "parse_plan"]

#: The standard deviation of one fine-tuning run's accuracy that a known accuracy is taken to carry (a point).
KNOWN_NOISE = 0.01


@dataclass(frozen=True)
class Plan:
    """What the probe stage runs: the best ``n_models`` of the prior (None = every model; 0 = none) on
    ``fraction`` of the probe set, in the prior's order; with ``chance``, only the models whose prior chance of
    beating the prior's ``top``-th model (:func:`zoorank.methods.posterior.top_chance`) is at least ``chance``
    (cold models always run, and at least 3 models); with ``seconds``, models are run until the next one would (at
    the mean time per model so far) end the stage after that many seconds (at least 3 models run)."""

    fraction: float
    n_models: int | None = None
    seconds: float | None = None
    chance: float | None = None
    top: int = 5

    def __post_init__(self):
        if not 0.0 < self.fraction <= 1.0:
            raise InputError(f"a plan's probe fraction must be in (0, 1], got {self.fraction!r}")
        if self.chance is not None and not 0.0 <= self.chance < 1.0:
            raise InputError(f"a plan's chance must be in [0, 1), got {self.chance!r}")
        if isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1:
            raise InputError(f"a plan's top must be a positive integer, got {self.top!r}")

    def describe(self, zoo: int) -> str:
        n = zoo if self.n_models is None else min(self.n_models, zoo)
        if n == 0:
            return "prior only"
        limit = "" if self.seconds is None else f", within {self.seconds:g} s"
        who = f"{n} models" if self.chance is None else (
            f"the models with a prior chance >= {100 * self.chance:g}% of the top {self.top}")
        return f"{who} on {100 * self.fraction:g}% of the probe{limit}"

    def pick(self, prior: Any, cold: Sequence[int], exclude: Sequence[int] = ()) -> list[int]:
        """The models to run, in running order: the cold ones, then the prior's best first (module doc); the
        models of ``exclude`` (their accuracy is known) are never run."""
        from zoorank.methods.posterior import top_chance

        n_zoo = len(prior.mean)
        skip = set(exclude)
        n = n_zoo - len(skip) if self.n_models is None else min(self.n_models, n_zoo - len(skip))
        order = [i for i in cold if i not in skip] + [i for i in prior.order() if i not in cold and i not in skip]
        if self.chance is not None:
            chance = top_chance(prior, min(self.top, n_zoo))
            keep = [i for i in order if i in cold or chance[i] >= self.chance]
            order = keep if len(keep) >= 3 else order[:max(3, len(keep))]
        return order[:n]


#: What ``zoorank rank`` runs with no ``--budget``: on a quarter of the probe set, every model with at least a 5 %
#: prior chance of beating the prior's 5th best (and every cold model).
DEFAULT_PLAN = Plan(0.25, None, chance=0.05, top=5)

_IMAGES = re.compile(r"^\s*(\d+)\s*(?:img|images?|image-passes)\s*$", re.IGNORECASE)
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:s|sec|seconds?)\s*$", re.IGNORECASE)


def parse_plan(budget: int | str | None, n_models: int, probe_size: int | None = None,
               fractions: Sequence[float] = (0.25, 1.0)) -> Plan:
    """A probe-stage plan from a ``--budget``: None or ``"auto"`` -> :data:`DEFAULT_PLAN`; a number K (``5``,
    ``"5"``) -> the best K models of the prior on the whole probe (``0``: the prior alone); ``"all"`` -> every
    model on the whole probe; ``"<N>img"`` (image-passes) -> every model on the largest of ``fractions`` whose
    passes fit in N, else the best N // (fraction * probe) models on the smallest (``probe_size`` needed);
    ``"<T>s"`` (seconds of the probe stage) -> the default plan, stopped when the next model would pass T."""
    if budget is None or (isinstance(budget, str) and budget.strip().lower() == "auto"):
        return DEFAULT_PLAN
    if isinstance(budget, str):
        text = budget.strip().lower()
        if text == "all":
            return Plan(1.0, None)
        m = _SECONDS.match(text)
        if m:
            if float(m.group(1)) <= 0:
                raise InputError(f"a budget of seconds must be positive, got {budget!r}")
            return replace(DEFAULT_PLAN, seconds=float(m.group(1)))
        m = _IMAGES.match(text)
        if m:
            if not probe_size:
                raise InputError("an image-pass budget needs the probe size")
            total = int(m.group(1))
            for f in sorted(fractions, reverse=True):
                if n_models * max(1, int(np.ceil(f * probe_size))) <= total:
                    return Plan(float(f), None)
            f = float(min(fractions))
            return Plan(f, total // max(1, int(np.ceil(f * probe_size))))
        try:
            budget = int(text)
        except ValueError:
            raise InputError(f"budget must be 'auto', a number of models, 'all', image-passes such as "
                             f"'20000img' or seconds such as '30s', got {budget!r}") from None
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 0:
        raise InputError(f"budget must be 'auto', a non-negative number of models, 'all' or image-passes, got "
                         f"{budget!r}")
    return Plan(1.0, int(budget))


@dataclass
class BeliefResult(PipelineResult):
    """A :class:`~zoorank.pipeline.PipelineResult` whose ``scores`` are posterior means, with each model's
    interval (``low``, ``high`` at ``level``) and the probe images each model that ran was passed
    (``probe_images``: {model index: images})."""

    low: np.ndarray = field(default_factory=lambda: np.zeros(0))
    high: np.ndarray = field(default_factory=lambda: np.zeros(0))
    level: float = 0.8
    probe_images: dict[int, int] = field(default_factory=dict)
    fraction: float = 1.0
    cold: list[int] = field(default_factory=list)
    known: dict[int, float] = field(default_factory=dict)

    @property
    def image_passes(self) -> int:
        return int(sum(self.probe_images.values()))

    def rows(self) -> list[dict[str, Any]]:
        out = super().rows()
        where = {m: i for i, m in enumerate(self.models)}
        for row in out:
            i = where[row["model"]]
            row.update(low=float(self.low[i]), high=float(self.high[i]), probe_images=self.probe_images.get(i, 0),
                       cold=i in self.cold, known=self.known.get(i))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(interval_level=self.level, image_passes=self.image_passes, probe_fraction=self.fraction,
                 cold_models=[self.models[i] for i in self.cold],
                 known_accuracies={self.models[i]: v for i, v in self.known.items()})
        return d


class BeliefJob:
    """The default rank job (module doc) over the zoo ``models`` (any order; models the fitted ``belief`` ranker
    does not know are cold) with a fitted ``belief`` ranker."""

    def __init__(self, models: Sequence[str], belief: Any, *, plan: Plan = DEFAULT_PLAN, level: float = 0.8,
                 place_cold: bool = True):
        self.models = list(models)
        if not self.models:
            raise InputError("the zoo is empty")
        if len(set(self.models)) != len(self.models):
            raise InputError("the zoo names a model twice")
        self.belief, self.plan, self.level = belief, plan, float(level)
        self.place_cold = bool(place_cold)  # False: cold models are population draws whatever is known of them

    def _link_fraction(self, task: TaskSource, notes: list[str]) -> float | None:
        links = self.belief.links_
        f = float(self.plan.fraction)
        if f < 1.0 and not accepts_rows(task):
            notes.append("this task source cannot run models on part of the probe: the whole probe is used")
            f = 1.0
        if f in links:
            return f
        if not links:
            notes.append("the knowledge base records no stacked metric scores: the ranking is the prior")
            return None
        near = min(links, key=lambda g: (abs(g - f), -g))
        notes.append(f"no link fitted for {100 * f:g}% of the probe: {100 * near:g}% is used")
        return near

    def _placement(self, task: TaskSource) -> dict:
        """The placement of the zoo's cold models from what the task source knows of them (``model_meta``)."""
        known = set(self.belief.models_)
        cold = [m for m in self.models if m not in known]
        meta = getattr(task, "model_meta", None)
        if not cold or meta is None or not self.place_cold or not hasattr(self.belief, "placement"):
            return {}
        return self.belief.placement({m: meta(m) for m in cold})

    def known_indices(self, known: Mapping[str, float] | None) -> dict[int, float]:
        """{model index: accuracy} of the known accuracies, checked (a zoo model, a fraction in [0, 1])."""
        out: dict[int, float] = {}
        where = {m: i for i, m in enumerate(self.models)}
        for m, v in (known or {}).items():
            if m not in where:
                raise InputError(f"known accuracy of {m!r}: not a model of the zoo "
                                 f"({', '.join(self.models[:5])}{' ...' if len(self.models) > 5 else ''})")
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InputError(f"known accuracy of {m!r}: {v!r} is not a number") from None
            if not 0.0 <= v <= 1.0:
                raise InputError(f"known accuracy of {m!r}: {v!r} is not a fraction in [0, 1] (0.87, not 87)")
            out[where[m]] = v
        return out

    def run(self, task: TaskSource, *, use_labels: bool = True, progress: Callable[[str], None] | None = None,
            known: Mapping[str, float] | None = None) -> BeliefResult:
        from zoorank.data import fraction_rows
        from zoorank.methods.fennec.model import summarize_proxy
        from zoorank.methods.posterior import accuracy_observation, for_zoo, posterior

        say = progress or (lambda _msg: None)
        notes: list[str] = []
        labels = task.labels() if use_labels else None
        s_prior = Stage("prior")
        t0 = time.perf_counter()
        say("prior")
        descriptor = None
        if self.belief.descriptors_ is not None:
            descriptor = summarize_proxy(np.asarray(task.proxy_features()))
            s_prior.encoder_passes = 1
        placement = self._placement(task)
        measured = self.known_indices(known)
        prior, cold = for_zoo(self.belief.prior(descriptor, known=bool(measured)), self.models, placement=placement)
        s_prior.seconds = time.perf_counter() - t0
        s_prior.detail = ("population of " if self.belief.bandwidth_ is None or descriptor is None
                          else "similarity-weighted ") + f"{len(self.belief.tasks_)} tasks"
        if cold:
            s_prior.detail += f"; {len(cold)} cold"
            how = ("placed by their size and architecture among the fitted models (Fennec's meta phase, as far as "
                   "history shows it predicts)" if placement else "placed as draws from the population of the "
                   "fitted models")
            notes.append(f"{len(cold)} model(s) have no history (cold: {', '.join(self.models[i] for i in cold)}): "
                         f"{how} and run first; after their results are recorded, zoorank fit takes them in")
        told = (accuracy_observation(list(measured), list(measured.values()), KNOWN_NOISE, "known accuracies")
                if measured else None)
        belief = posterior(prior, [told])
        if measured:
            notes.append(f"{len(measured)} known accuracies: not run, and evidence for the others")
        s_fine = Stage("probe stage")
        chosen: list[int] = []
        images: dict[int, int] = {}
        used_fraction = 1.0
        fine: dict[str, dict[int, float]] = {}
        metric = None
        n = len(self.models) if self.plan.n_models is None else min(self.plan.n_models, len(self.models))
        n = min(n, len(self.models) - len(measured))
        if labels is None:
            notes.append("no labels: the stacked metrics cannot run; the ranking is the prior")
        elif n > 0:
            f = self._link_fraction(task, notes)
            if f is not None:
                used_fraction = f
                labels = np.asarray(labels)
                chosen = self.plan.pick(belief, cold, exclude=list(measured))
                rows = None if f == 1.0 else fraction_rows(labels, f)
                say(f"forward passes of {len(chosen)} models on {100 * f:g}% of the probe")
                pairs = {}
                t_stage = time.perf_counter()
                for n_run, i in enumerate(chosen):
                    spent = time.perf_counter() - t_stage
                    if (self.plan.seconds is not None and n_run >= 3
                            and spent + spent / n_run > self.plan.seconds):
                        notes.append(f"the budget of {self.plan.seconds:g} s stopped the probe stage after "
                                     f"{n_run} of {len(chosen)} models")
                        chosen = chosen[:n_run]
                        break
                    t1 = time.perf_counter()
                    pairs[i] = task.features(self.models[i]) if rows is None else task.features(self.models[i], rows)
                    s_fine.seconds += time.perf_counter() - t1
                    images[i] = int(np.shape(pairs[i][0])[0])
                t1 = time.perf_counter()
                y = labels if rows is None else labels[rows]
                link = self.belief.links_[f]
                scores = {}
                for name in link.metrics:
                    try:
                        scores[name] = M.score_zoo(name, [pairs[i][0] for i in chosen], [pairs[i][1] for i in chosen],
                                                   y, names=[self.models[i] for i in chosen])
                    except M.MetricUnavailable as exc:
                        notes.append(f"{name} cannot score the models ({exc}): the ranking is the prior")
                        break
                if len(scores) == len(link.metrics):
                    ob = self.belief.observe(prior, f, chosen, scores)
                    if ob is None:
                        notes.append("the probe stage's scores cannot inform (too few models or no signal)")
                    belief = posterior(prior, [ob, told])
                    fine = {name: dict(zip(chosen, map(float, v), strict=True)) for name, v in scores.items()}
                    metric = "+".join(link.metrics)
                s_fine.seconds += time.perf_counter() - t1
                s_fine.forward_passes = len(chosen)
                s_fine.detail = f"{len(chosen)} models x {images[chosen[0]] if chosen else 0} images, {metric or '-'}"
        if not chosen:
            s_fine.detail = "nothing run"
        low, high = belief.interval(self.level)
        return BeliefResult(self.models, np.asarray(belief.mean, dtype=np.float64), {"prior": prior.mean},
                            prior.mean, fine, chosen, metric, list(self.belief.metrics),
                            "stacked through the belief ranker's calibrated link", [s_prior, s_fine],
                            labels is not None, notes, low=low, high=high, level=self.level, probe_images=images,
                            fraction=used_fraction, cold=cold, known=measured)
