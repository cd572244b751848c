r"""The product's ranker: a Gaussian belief over the target's accuracies, fitted on the knowledge base
(the model of :mod:`zoorank.methods.posterior`, whose docstring has the math).

What :meth:`BeliefRanker.fit` learns from T historical tasks (accuracies ``A`` [T, M], optional descriptors
``X`` [T, G] such as Fennec's proxy vectors, and the scores of metrics on the whole zoo at probe fractions
``f``):

1. **Prior moved by similarity, only as far as history shows it predicts.** The prior's task weights are
   :math:`w_t = \exp(-(d_t / h)^2)` with :math:`d_t` the distance between the new task's unit-normalised, centred
   descriptor and task t's, and the bandwidth :math:`h` (in units of the median distance between historical
   tasks) chosen from ``bandwidths`` by leave-one-task-out on the history: the h whose weighted mean ranks the
   held-out tasks best (mean Pearson correlation of normal scores, a smooth rank criterion); ``None`` (infinite:
   the population mean, popularity) is in the grid and wins ties, so without a descriptor, or when similarity
   does not predict, the prior is the popularity prior.
   The knowledge base's holes (a model not measured on every task) are filled at the SVD rank that ranks
   held-out history tasks best (:func:`~zoorank.methods.posterior.choose_rank`).
2. **A calibrated link per probe fraction.** For each fraction with the scores of ``metrics`` recorded, the
   normal scores (within task) of those metrics are stacked into one signal :math:`c = \sum_k \beta_k z_k`,
   :math:`\beta` the least-squares fit of the accuracies' normal scores, pooled over the historical tasks; the
   link's correlation :math:`\rho` is :func:`~zoorank.methods.posterior.calibrate_link` of :math:`c` against the
   accuracies. A measured block then enters the belief through
   :func:`~zoorank.methods.posterior.score_observation`, its noise multiplied by :math:`\kappa` from
   ``noise_scales``: the link treats the models' errors as independent, where a metric misjudges whole families
   together, so :math:`\kappa` is chosen by leave-one-task-out on the history as the one whose posterior gives the
   held-out tasks' accuracies, centred on their task mean, the highest mean log predictive density (each model's
   marginal Gaussian; the centring keeps out the task's difficulty, which the link cannot see): the intervals are
   then as wide as history shows they must be.
3. **Cold models placed by what is known of them** (with ``model_meta``: parameter count, layer count,
   architecture of every fitted model): a :class:`~zoorank.methods.placement.ModelPlacement` (Fennec's meta
   phase) calibrated leave-one-model-out on the history; :meth:`BeliefRanker.placement` gives the mixture of
   fitted models each cold model is placed as, when history shows that this predicts better than the population.
4. **Known accuracies** (fine-tuned results the user already has for the new task) move the other models through
   the prior's covariance at the shrinkage :func:`~zoorank.methods.posterior.tune_shrinkage` chooses on the
   history (the one under which 3 revealed accuracies best improve the ranking of the rest, leave-one-task-out;
   the diagonal, which moves nothing, unless history shows a gain: the ``tuned`` rule of ``benchmarks.fold_in``).

:meth:`BeliefRanker.prior` gives the belief for a new task from its descriptor; :meth:`BeliefRanker.observe` turns
the scores measured on some models at a probe fraction into an observation; :func:`~zoorank.methods.posterior.
posterior` combines them. :meth:`BeliefRanker.score` (the Ranker contract) is the prior's mean.

Deterministic: closed-form linear algebra, no random numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.methods._npz import read_npz, write_npz
from zoorank.methods.base import Ranker, TaskEvidence
from zoorank.methods.placement import ModelPlacement
from zoorank.methods.posterior import (
    IMPUTE_RANK,
    GaussianBelief,
    Observation,
    calibrate_link,
    choose_rank,
    fit_prior,
    normal_scores,
    posterior,
    score_observation,
    similarity_weights,
    tune_shrinkage,
)
from zoorank.ranking import pearson

__all__ = ["BANDWIDTHS", "NOISE_SCALES", "PROBE_FRACTIONS", "STACK_METRICS", "BeliefRanker", "Link", "probe_kind"]

FORMAT = "zoorank-belief-v1"
#: The metrics a probe stage computes on every model it runs (cheap next to the forward pass).
STACK_METRICS: tuple[str, ...] = ("reg_hscore", "etran", "parc")
#: The probe fractions a fine stage may run its models on, and that the knowledge base records the stacked
#: metrics at for every historical task (1.0: the whole probe, recorded as plain ``metric:<name>``).
PROBE_FRACTIONS: tuple[float, ...] = (0.125, 0.25, 1.0)
#: Multipliers of a link's noise tried by the leave-one-task-out calibration of the intervals.
NOISE_SCALES: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: Bandwidths tried for the similarity-moved prior, in units of the median distance between historical tasks.
BANDWIDTHS: tuple[float | None, ...] = (None, 0.1, 0.15, 0.25, 0.5, 1.0)


def probe_kind(metric: str, fraction: float) -> str:
    """The knowledge-base kind of ``metric``'s score on a stratified ``fraction`` of the probe set
    (``metric:reg_hscore@probe25``, ``@probe12.5``; the whole probe is plain ``metric:<name>``)."""
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"probe fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return f"metric:{metric}"
    return f"metric:{metric}@probe{100 * fraction:g}"


@dataclass(frozen=True)
class Link:
    """The calibrated link of a probe fraction: stacked ``metrics`` with weights ``beta``, correlation ``rho``
    over ``n_tasks`` historical tasks."""

    fraction: float
    metrics: tuple[str, ...]
    beta: tuple[float, ...]
    rho: float
    n_tasks: int
    noise_scale: float = 1.0

    def combine(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """The stacked signal of one task's block: ``sum_k beta_k normal_scores(scores[metric_k])``."""
        return sum(b * normal_scores(np.asarray(scores[m], dtype=np.float64))
                   for m, b in zip(self.metrics, self.beta, strict=True))


def _unit(X: np.ndarray, centre: np.ndarray) -> np.ndarray:
    Z = np.asarray(X, dtype=np.float64) - centre
    n = np.linalg.norm(Z, axis=-1, keepdims=True)
    return Z / np.where(n > 0, n, 1.0)


class BeliefRanker(Ranker):
    """The Gaussian belief ranker (module doc). ``bandwidths``: the similarity grid; ``metrics``: the stacked
    metrics of a probe stage; ``shrinkage``: the prior covariance's (None = Schäfer-Strimmer)."""

    _name = "belief"
    _learned = ("models_", "history_", "links_", "bandwidth_")

    def __init__(self, *, bandwidths: Sequence[float | None] = BANDWIDTHS,
                 metrics: Sequence[str] = STACK_METRICS, shrinkage: float | None = None):
        self.bandwidths = tuple(bandwidths)
        if None not in self.bandwidths or any(b is not None and not b > 0 for b in self.bandwidths):
            raise InputError("belief: bandwidths must hold None (the population) and positive numbers")
        self.metrics = tuple(metrics)
        if not self.metrics:
            raise InputError("belief: at least one stacked metric is needed")
        self.shrinkage = shrinkage

    # -- fitting ------------------------------------------------------------------------------------------

    def fit(self, models: Sequence[str], accuracies: np.ndarray, *, descriptors: np.ndarray | None = None,
            scores: Mapping[str, np.ndarray] | None = None, tasks: Sequence[str] | None = None,
            model_meta: Sequence[Mapping[str, Any]] | None = None) -> BeliefRanker:
        """Learn from ``accuracies`` [T, M] (NaN = not measured), optional ``descriptors`` [T, G], the metric
        scores ``{probe_kind(metric, f): [T, M]}`` of the historical tasks and ``model_meta`` (per model
        ``{"params", "layers", "architecture"}``: the placement of cold models, point 3 of the module doc)."""
        A = np.asarray(accuracies, dtype=np.float64)
        if A.ndim != 2 or A.shape[1] != len(models) or A.shape[0] < 1:
            raise InputError(f"belief: accuracies must be [tasks, {len(models)} models], got {A.shape}")
        self.models_ = list(models)
        self.tasks_ = list(tasks) if tasks is not None else [f"task{t}" for t in range(A.shape[0])]
        self.history_ = A
        self.rank_, self.rank_scores_ = choose_rank(A)
        self.known_shrinkage_ = tune_shrinkage(A, self.models_, k=3, draws=5, max_tasks=10, rank=self.rank_)[0]
        self.centre_ = None
        self.descriptors_ = None
        self.scale_ = 1.0
        self.bandwidth_ = None
        self.bandwidth_scores_ = {}
        if descriptors is not None and A.shape[0] >= 3:
            X = np.asarray(descriptors, dtype=np.float64)
            if X.shape[0] != A.shape[0] or X.ndim != 2 or not np.all(np.isfinite(X)):
                raise InputError(f"belief: descriptors must be finite [{A.shape[0]} tasks, G], got {X.shape}")
            self.centre_ = X.mean(axis=0)
            self.descriptors_ = _unit(X, self.centre_)
            D = self._distances(self.descriptors_)
            off = D[~np.eye(len(D), dtype=bool)]
            self.scale_ = float(np.median(off)) if off.size and np.median(off) > 0 else 1.0
            self.bandwidth_, self.bandwidth_scores_ = self._choose_bandwidth(D)
        self.links_ = self._fit_links(A, scores or {})
        self.placement_ = None
        if model_meta is not None:
            if len(model_meta) != len(models):
                raise InputError(f"belief: model_meta describes {len(model_meta)} models, the zoo has {len(models)}")
            if len(models) >= 3 and all(m.get("params") for m in model_meta):
                self.placement_ = ModelPlacement().fit(model_meta, A)
        return self

    @staticmethod
    def _distances(U: np.ndarray, V: np.ndarray | None = None) -> np.ndarray:
        V = U if V is None else V
        return np.sqrt(np.clip(2.0 - 2.0 * (U @ V.T), 0.0, None))

    def _choose_bandwidth(self, D: np.ndarray) -> tuple[float | None, dict]:
        A = self.history_
        out: dict = {}
        for h in self.bandwidths:
            taus = []
            for t in range(A.shape[0]):
                rest = [s for s in range(A.shape[0]) if s != t]
                ok = np.isfinite(A[t])
                if ok.sum() < 3:
                    continue
                w = similarity_weights(D[t, rest], None if h is None else h * self.scale_)
                mu = fit_prior(A[rest], self.models_, weights=w, shrinkage=1.0, rank=self.rank_).mean
                taus.append(pearson(normal_scores(mu[ok]), normal_scores(A[t, ok])))
            out[h] = float(np.mean(taus)) if taus else 0.0
        best = max(out, key=lambda h: (round(out[h], 9), h is None, h or 0.0))  # ties: the population, then wider
        return best, out

    def _fit_links(self, A: np.ndarray, scores: Mapping[str, np.ndarray]) -> dict[float, Link]:
        fractions = sorted({self._fraction(kind) for kind in scores if self._fraction(kind) is not None})
        links = {}
        for f in fractions:
            mats = {m: np.asarray(scores[probe_kind(m, f)], dtype=np.float64) for m in self.metrics
                    if probe_kind(m, f) in scores}
            if set(mats) != set(self.metrics):
                continue
            rows = [t for t in range(A.shape[0])
                    if all(np.isfinite(M[t]).all() for M in mats.values()) and np.isfinite(A[t]).all()]
            if len(rows) < 2:
                continue
            Z = np.concatenate([np.stack([normal_scores(mats[m][t]) for m in self.metrics], 1) for t in rows])
            y = np.concatenate([normal_scores(A[t]) for t in rows])
            beta = np.linalg.lstsq(Z, y, rcond=None)[0]
            link = Link(f, self.metrics, tuple(float(b) for b in beta), float("nan"), 0)
            comb = np.array([link.combine({m: mats[m][t] for m in self.metrics}) for t in rows])
            rho, n = calibrate_link(comb, A[rows])
            link = Link(f, self.metrics, link.beta, rho, n)
            links[f] = Link(f, self.metrics, link.beta, rho, n, self._noise_scale(link, rows, mats))
        return links

    def _noise_scale(self, link: Link, rows: list[int], mats: Mapping[str, np.ndarray]) -> float:
        """kappa of the module doc: the noise multiplier with the best leave-one-task-out log predictive density."""
        A = self.history_
        if len(rows) < 3 or not np.isfinite(link.rho) or link.rho <= 0:
            return 1.0
        D = self._distances(self.descriptors_) if self.descriptors_ is not None else None
        cases = []
        for t in rows:
            rest = [s for s in range(A.shape[0]) if s != t]
            w = None
            if D is not None and self.bandwidth_ is not None:
                w = similarity_weights(D[t, rest], self.bandwidth_ * self.scale_)
            prior = fit_prior(A[rest], self.models_, weights=w, shrinkage=self.shrinkage, rank=self.rank_)
            ob = score_observation(prior, range(A.shape[1]), link.combine({m: mats[m][t] for m in link.metrics}),
                                   link.rho)
            if ob is not None:
                cases.append((prior, ob, A[t]))
        best, best_ll = 1.0, -np.inf
        for kappa in NOISE_SCALES:
            ll = []
            for prior, ob, y in cases:
                post = posterior(prior, [Observation(ob.idx, ob.values, ob.noise * kappa, True, ob.label)])
                C = np.eye(y.size) - 1.0 / y.size  # the contrasts: what the observation speaks of
                sd = np.sqrt(np.clip(np.diag(C @ post.cov @ C), 1e-12, None))
                ll.append(float(np.mean(-0.5 * ((C @ (y - post.mean)) / sd) ** 2 - np.log(sd))))
            if ll and np.mean(ll) > best_ll + 1e-12:
                best, best_ll = kappa, float(np.mean(ll))
        return best

    def _fraction(self, kind: str) -> float | None:
        if not kind.startswith("metric:"):
            return None
        name, _, probe = kind[len("metric:"):].partition("@")
        if name not in self.metrics:
            return None
        if not probe:
            return 1.0
        try:
            pct = float(probe[len("probe"):]) if probe.startswith("probe") else float("nan")
        except ValueError:
            return None
        return pct / 100.0 if 0.0 < pct <= 100.0 else None

    # -- ranking ------------------------------------------------------------------------------------------

    def weights(self, descriptor: np.ndarray | None) -> np.ndarray | None:
        """The prior's task weights for a new task's descriptor (None: the population)."""
        self._check_fitted()
        if descriptor is None or self.descriptors_ is None:
            return None
        x = np.asarray(descriptor, dtype=np.float64).reshape(1, -1)
        if x.shape[1] != self.descriptors_.shape[1] or not np.all(np.isfinite(x)):
            raise InputError(f"belief: the task descriptor has {x.shape[1]} values, the fitted ones "
                             f"{self.descriptors_.shape[1]}; refit the rankers (zoorank fit)")
        if self.bandwidth_ is None:
            return None
        d = self._distances(_unit(x, self.centre_), self.descriptors_)[0]
        return similarity_weights(d, self.bandwidth_ * self.scale_)

    def prior(self, descriptor: np.ndarray | None = None, *, known: bool = False) -> GaussianBelief:
        """The belief before any forward pass of the new task; ``known``: for a task some of whose fine-tuned
        accuracies are given, with the covariance shrinkage tuned on the history for revealed accuracies
        (``known_shrinkage_``, point 4 of the module doc)."""
        self._check_fitted()
        lam = self.known_shrinkage_ if known else self.shrinkage
        return fit_prior(self.history_, self.models_, weights=self.weights(descriptor), shrinkage=lam, rank=self.rank_)

    def observe(self, belief: GaussianBelief, fraction: float, idx: Sequence[int],
                scores: Mapping[str, np.ndarray]) -> Observation | None:
        """The stacked metric scores of the models ``idx`` measured on ``fraction`` of the probe as an
        observation (None when no link of that fraction was fitted or the block cannot inform)."""
        self._check_fitted()
        link = self.links_.get(float(fraction))
        if link is None:
            return None
        ob = score_observation(belief, idx, link.combine(scores), link.rho,
                               label=f"{'+'.join(link.metrics)} on {100 * fraction:g}% of the probe")
        if ob is None:
            return None
        return Observation(ob.idx, ob.values, ob.noise * link.noise_scale, True, ob.label)

    def placement(self, metas: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, float]]:
        """The placement of cold models described by ``metas`` ({model: {"params", "layers", "architecture"}})
        for :func:`~zoorank.methods.posterior.for_zoo`: empty when the ranker was fitted without model meta
        features, when history shows they predict no better than the population, or for a model without a
        parameter count (those stay population draws)."""
        self._check_fitted()
        p = getattr(self, "placement_", None)
        known = {m: d for m, d in metas.items() if d.get("params")}
        if p is None or not p.informative or not known:
            return {}
        W = p.weights(list(known.values()))
        return {m: (W[i], p.variance_) for i, m in enumerate(known)}

    def score(self, task: TaskEvidence) -> np.ndarray:
        """The prior mean (uses ``task.proxy`` as the descriptor when the ranker was fitted with descriptors)."""
        return self.prior(task.proxy if self.descriptors_ is not None else None).mean

    # -- persistence ----------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.npz`` with the arrays and a JSON header; no pickle)."""
        self._check_fitted()
        header = {"format": FORMAT, "params": {**self.get_params(), "bandwidths": list(self.bandwidths),
                                               "metrics": list(self.metrics)},
                  "models": self.models_, "tasks": self.tasks_, "bandwidth": self.bandwidth_, "scale": self.scale_,
                  "rank": self.rank_, "rank_scores": [[r, v] for r, v in self.rank_scores_.items()],
                  "known_shrinkage": self.known_shrinkage_,
                  "bandwidth_scores": [[h, v] for h, v in self.bandwidth_scores_.items()],
                  "links": [vars(link) for link in self.links_.values()],
                  "placement": None if self.placement_ is None else self.placement_.to_json()}
        arrays = {"history": self.history_}
        if self.descriptors_ is not None:
            arrays.update(descriptors=self.descriptors_, centre=self.centre_)
        return write_npz(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> BeliefRanker:
        header, arrays = read_npz(path, "belief", "a saved belief ranker", FORMAT)
        params = header["params"]
        obj = cls(bandwidths=tuple(params["bandwidths"]), metrics=tuple(params["metrics"]),
                  shrinkage=params["shrinkage"])
        obj.models_, obj.tasks_ = header["models"], header["tasks"]
        obj.history_ = arrays["history"]
        obj.rank_ = int(header.get("rank", IMPUTE_RANK))  # rankers saved before the rank was chosen used the default
        obj.rank_scores_ = {int(r): v for r, v in header.get("rank_scores", [])}
        # rankers saved before it was tuned: the diagonal (known accuracies then leave the other models alone)
        obj.known_shrinkage_ = header.get("known_shrinkage", 1.0)
        obj.descriptors_ = arrays.get("descriptors")
        obj.centre_ = arrays.get("centre")
        obj.bandwidth_, obj.scale_ = header["bandwidth"], header["scale"]
        obj.bandwidth_scores_ = {h: v for h, v in header["bandwidth_scores"]}
        obj.links_ = {float(d["fraction"]): Link(float(d["fraction"]), tuple(d["metrics"]), tuple(d["beta"]),
                                                 float(d["rho"]), int(d["n_tasks"]), float(d["noise_scale"]))
                      for d in header["links"]}
        obj.placement_ = None if header.get("placement") is None else ModelPlacement.from_json(header["placement"])
        return obj
