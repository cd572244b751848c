"""The sweep: extract features and score every model of a zoo on one task, through an executor.

Each model is one job (:func:`model_job`): load it, extract (or fetch from the feature cache) its
features and source logits on the probe, score it with the per-model metrics. A job never raises:
a model that fails to load or run comes back as a failed :class:`ModelResult` with the reason, and
the rest of the zoo is ranked. Metrics defined relative to the pool (ETran's and NCTI's final
scores) are computed afterwards from the cached features of the models that succeeded.

Executors (:func:`get_executor`): ``local`` (sequential, default), ``process`` (a pool of spawned
processes) and ``ray`` (each model a Ray task with its own resource request, a GPU when the cluster
has one). Jobs are deterministic, so every executor gives the same scores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from zoorank import metrics as M
from zoorank.data import ImageDataset, Probe
from zoorank.errors import InputError
from zoorank.ranking import best_first
from zoorank.store.feature_cache import FeatureCache
from zoorank.zoo.spec import ModelSpec


@dataclass
class ModelResult:
    """What a sweep learned about one model."""

    name: str
    ok: bool
    error: str | None = None
    identity: str | None = None
    num_params: int | None = None
    num_layers: int | None = None
    feature_dim: int | None = None
    num_classes: int | None = None
    n_images: int = 0
    from_cache: bool = False
    forward_passes: int = 0
    seconds: float = 0.0
    cache_key: str | None = None
    unreadable: list[int] = field(default_factory=list)  # requested dataset items that could not be read
    cache_problems: list[str] = field(default_factory=list)  # damaged cache entries found (deleted, recomputed)
    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it was not computed


def score_features(features, logits, labels, metric_names: Iterable[str], *,
                   regression: bool = False) -> tuple[dict, dict]:
    """Per-model metric scores from one model's arrays: ``(scores, skipped reasons)``.

    ``regression=True``: ``labels`` are real-valued targets ([N] or [N, K]) and only the metrics with a
    regression form score them (the others are skipped with that reason). Pool forms are left to the caller
    (see :func:`score_pool`)."""
    scores, skipped = {}, {}
    probs = None if logits is None else M.softmax(logits)
    for name in metric_names:
        if regression and not M.info(name).regression:
            skipped[name] = "has no regression form (metrics that have one: " + ", ".join(
                M.available(regression=True)) + ")"
            continue
        missing = M.missing_inputs(name, features=features, labels=labels, source_probs=probs)
        if missing:
            skipped[name] = "needs " + ", ".join(
                "source-head logits (this model has no head)" if m == "source_probs" else m for m in missing)
            continue
        try:
            extra = {"regression": True} if regression else {}
            scores[name] = M.compute_available(name, features, labels, source_probs=probs, **extra)
        except Exception as exc:  # one metric failing must not fail the model
            skipped[name] = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return scores, skipped


def targets_or_labels(dataset: ImageDataset, indices: np.ndarray) -> np.ndarray | None:
    """The rows ``indices`` of the dataset's regression targets, else of its labels (None when it has neither)."""
    values = dataset.targets if dataset.is_regression else dataset.labels
    return None if values is None else values[indices]


def model_job(spec: ModelSpec, dataset: ImageDataset, indices: np.ndarray, probe_identity: str,
              metric_names: Sequence[str], cache_root: str | None, device: str = "cpu",
              batch_size: int = 64, torch_threads: int | None = None,
              progress: Callable[[int], None] | None = None) -> ModelResult:
    """Load, extract (through the cache) and score one model; never raises. ``progress(n)`` is called with
    the number of images of each batch passed (or of the whole probe on a cache hit)."""
    t0 = time.perf_counter()
    try:
        import torch

        from zoorank.zoo.extract import cached_extract
        from zoorank.zoo.loading import load_model

        if torch_threads:
            torch.set_num_threads(torch_threads)
        model = load_model(spec, device=device)
        cache = FeatureCache(cache_root) if cache_root is not None else None
        out = cached_extract(model, dataset, indices, probe_identity=probe_identity, cache=cache,
                             batch_size=batch_size, progress=progress)
        labels = targets_or_labels(dataset, out.indices)
        per_model = [m for m in metric_names if M.info(m).pool_func is None]
        scores, skipped = score_features(out.features, out.logits, labels, per_model,
                                         regression=dataset.is_regression)
        return ModelResult(
            name=spec.name, ok=True, identity=model.identity, num_params=model.num_params,
            num_layers=model.num_layers, feature_dim=model.feature_dim, num_classes=model.num_classes,
            n_images=int(out.indices.shape[0]), from_cache=out.from_cache, forward_passes=out.forward_passes,
            seconds=time.perf_counter() - t0, cache_key=out.cache_key,
            unreadable=sorted(set(np.asarray(indices).tolist()) - set(out.indices.tolist())),
            cache_problems=[why for _path, why in cache.problems] if cache is not None else [],
            scores=scores, skipped=skipped,
        )
    except Exception as exc:  # one model must never kill the sweep
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ModelResult(name=spec.name, ok=False, error=f"{type(exc).__name__}: {line}",
                           seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------


def _worker_failure(job: tuple, exc: BaseException) -> ModelResult:
    """A failed result for a job whose worker died before it could report (its spec is job[0])."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelResult(name=job[0].name, ok=False, error=f"worker failed: {type(exc).__name__}: {line}")


class LocalExecutor:
    """Runs the jobs one after the other in this process."""

    name = "local"

    def map(self, fn: Callable, jobs: list[tuple], on_done: Callable[[int, object], None]) -> None:
        for i, args in enumerate(jobs):
            on_done(i, fn(*args))


class ProcessExecutor:
    """Runs the jobs in a pool of ``workers`` spawned processes (each with 1 torch thread by default)."""

    name = "process"

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(1, (os.cpu_count() or 2) // 2)

    def map(self, fn: Callable, jobs: list[tuple], on_done: Callable[[int, object], None]) -> None:
        import multiprocessing as mp

        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(fn, *args): i for i, args in enumerate(jobs)}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # the worker died (e.g. killed for memory)
                    result = _worker_failure(jobs[i], exc)
                on_done(i, result)


class RayExecutor:
    """Runs each job as a Ray task with its own resource request (``num_cpus`` each, and one GPU per
    task when the cluster has GPUs). Connects to ``address`` or starts a local Ray instance."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0,
                 gpus_per_task: float | None = None):
        try:
            import ray
        except ImportError as exc:
            raise InputError("the ray executor needs Ray: pip install 'zoorank[ray]'") from exc
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=False, **kwargs)
        self.cpus_per_task = cpus_per_task
        if gpus_per_task is None:
            gpus_per_task = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self.gpus_per_task = gpus_per_task

    def map(self, fn: Callable, jobs: list[tuple], on_done: Callable[[int, object], None]) -> None:
        remote = self.ray.remote(fn).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task)
        refs = {remote.remote(*args): i for i, args in enumerate(jobs)}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    result = self.ray.get(ref)
                except Exception as exc:  # the task or its worker died
                    result = _worker_failure(jobs[i], exc)
                on_done(i, result)


def get_executor(name: str = "local", **kwargs):
    """``local`` | ``process`` | ``ray`` (keyword arguments go to the executor)."""
    executors = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}
    if name not in executors:
        raise InputError(f"unknown executor {name!r}; choose from {', '.join(executors)}")
    return executors[name](**kwargs)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """Per-model results (in zoo order) and pool-relative scores."""

    results: list[ModelResult]
    metrics: list[str]
    seconds: float

    @property
    def ok(self) -> list[ModelResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[ModelResult]:
        return [r for r in self.results if not r.ok]

    def scores(self, metric: str) -> dict[str, float]:
        """{model name: score} of the models that have ``metric``."""
        return {r.name: r.scores[metric] for r in self.results if metric in r.scores}

    def ranking(self, metric: str) -> list[tuple[str, float]]:
        """Models by decreasing ``metric`` score (ties, equal up to ``zoorank.ranking.TIE_RTOL``, in zoo order)."""
        items = list(self.scores(metric).items())
        return [items[i] for i in best_first([v for _, v in items])]


def score_pool(result: SweepResult, dataset: ImageDataset, cache: FeatureCache, names: Iterable[str]) -> None:
    """Add pool-relative scores (``compute_pool``) to the successful models of ``result``."""
    names = [n for n in names if M.info(n).pool_func is not None]
    ok = [r for r in result.ok if r.cache_key is not None]
    if not names or not ok or dataset.labels is None:
        why = ("has no regression form" if dataset.is_regression else
               "needs labels" if dataset.labels is None else "no model succeeded")
        for r in result.ok:
            for n in names:
                r.skipped.setdefault(n, why)
        return
    entries = [cache.get(r.cache_key) for r in ok]
    if any(e is None for e in entries):
        raise InputError("a cached feature entry vanished during the sweep; run it again")
    common = entries[0].indices
    for e in entries[1:]:
        common = np.intersect1d(common, e.indices)
    feats = []
    for e in entries:  # rows of `common`, whatever order the entry's indices are in
        order = np.argsort(e.indices, kind="stable")
        feats.append(e.features[order[np.searchsorted(e.indices, common, sorter=order)]])
    labels = dataset.labels[common]
    for n in names:
        try:
            values = M.compute_pool(n, feats, labels)
        except InputError as exc:
            for r in ok:
                r.skipped[n] = str(exc)
            continue
        for r, v in zip(ok, values, strict=True):
            r.scores[n] = float(v)


def run_sweep(
    specs: Sequence[ModelSpec],
    dataset: ImageDataset,
    *,
    probe: Probe | None = None,
    metrics: Sequence[str] | str = "all",
    cache: FeatureCache | None = None,
    executor="local",
    device: str = "cpu",
    batch_size: int = 64,
    on_model_done: Callable[[ModelResult], None] | None = None,
    on_images: Callable[[int], None] | None = None,
) -> SweepResult:
    """Extract and score every model of ``specs`` on ``dataset`` (its ``probe`` items when given).

    ``on_model_done(result)`` is called as each model finishes; ``on_images(n)`` counts the images passed
    (len(specs) × probe size in all): after every batch with the local executor, per finished model with the
    others (their workers cannot call back)."""
    if not specs:
        raise InputError("the zoo is empty")
    names = M.available() if metrics == "all" else list(metrics)
    for n in names:
        M.info(n)
    cache = cache if cache is not None else FeatureCache()
    ex = get_executor(executor) if isinstance(executor, str) else executor
    if probe is not None and probe.dataset_identity != dataset.identity:
        raise InputError(f"the probe was drawn from another dataset than {dataset.name!r} (identity differs)")
    indices = probe.indices if probe is not None else np.arange(len(dataset))
    probe_identity = probe.identity if probe is not None else f"all:{dataset.identity}"
    local = ex.name == "local"
    threads = None if local else 1
    passed = [0]  # images counted for the running model (local executor: one model at a time)

    def count(n: int) -> None:
        passed[0] += n
        on_images(n)  # type: ignore[misc]

    per_batch = count if (local and on_images is not None) else None
    jobs = [(spec, dataset, indices, probe_identity, names, str(cache.root), device, batch_size, threads, per_batch)
            for spec in specs]
    results: list[ModelResult | None] = [None] * len(jobs)
    t0 = time.perf_counter()

    def done(i: int, r: ModelResult) -> None:
        results[i] = r
        if on_images is not None:  # the rest of this model's share (all of it for remote workers, or on failure)
            rest = len(indices) - passed[0]
            passed[0] = 0
            if rest > 0:
                on_images(rest)
        if on_model_done is not None:
            on_model_done(r)

    ex.map(model_job, jobs, done)
    out = SweepResult([r for r in results if r is not None], names, 0.0)
    score_pool(out, dataset, cache, names)
    out.seconds = time.perf_counter() - t0
    return out


def record_to_kb(kb, result: SweepResult, dataset: ImageDataset, specs: Sequence[ModelSpec], *,
                 task: str | None = None, probe: Probe | None = None) -> int:
    """Store a sweep in the knowledge base: each model (identity, params, layers, ...), the task (class and
    sample counts) and every score as ``metric:<name>``. Returns the number of results recorded."""
    task = task or dataset.name
    by_name = {s.name: s for s in specs}
    with kb.transaction():
        kb.add_task(task, identity=dataset.identity, n_classes=dataset.n_classes or None,
                    n_samples=len(dataset), description=None)
        for r in result.ok:
            spec = by_name.get(r.name)
            kb.add_model(r.name, identity=r.identity, architecture=spec.ref if spec else None,
                         source=spec.source if spec else None, params=r.num_params, layers=r.num_layers,
                         feature_dim=r.feature_dim)
        provenance = {"by": "zoorank score", "probe": probe.identity if probe is not None else "all"}
        rows = [{"model": r.name, "task": task, "kind": f"metric:{m}", "value": v,
                 "provenance": {**provenance, "n_images": r.n_images}}
                for r in result.ok for m, v in r.scores.items()]
        return kb.record_many(rows)
