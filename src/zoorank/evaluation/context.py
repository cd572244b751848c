"""What a ranking method sees while it is evaluated on a held-out target: a :class:`TaskContext` (counted
forward passes, the task's labels and encoders) and a leakage-checked :class:`HistoryView` of the other targets.

Protocol of a run (:func:`zoorank.evaluation.run`): for each target task, for each method, the method gets a
:class:`TaskContext` and returns one score per zoo model (higher = better), or several score vectors
(a 2-D array [draws, models]: independent draws of a stochastic method, quality averaged over them).
The context gives, lazily, each model's probe features and source logits on the task (through a
:class:`FeatureProvider`), the task's probe labels, the zoo's meta-data, and a :class:`HistoryView` of
the ground truth of the OTHER tasks only — asking it for the held-out task raises :class:`LeakageError`.

"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation.benchmark import Benchmark, TaskInfo


class LeakageError(RuntimeError):
    """A method asked for the ground truth of the task it is being evaluated on (a bug in the method,
    never caught by the harness)."""


class MethodSkipped(Exception):
    """Raised by a method that cannot score a task; the message is the reason shown in reports."""


@runtime_checkable
class FeatureProvider(Protocol):
    """Probe features of the zoo's models on the benchmark's tasks.

    ``features(model, task)`` -> (features [N, D], logits [N, Cs] of the model's source head, or None
    for a headless model), rows aligned with ``labels(task)`` -> int [N] in 0..C-1 (the task's probe
    set, drawn from its train split). Optionally ``general_features(model)`` -> [G, D] or None: the
    model's features on a general data set (PED's reference distribution); ``proxy_features(task)`` and
    ``encoder_features(task)`` -> (features, labels): Fennec's proxy encoder and Model Spider's general encoder; and
    ``encoder_model``, when that general encoder is a model of the zoo (then ``encoder_features(task)`` must equal
    ``(features(encoder_model, task)[0], labels(task))``, and :class:`TaskContext` shares the pass).
    """

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray | None]: ...

    def labels(self, task: str) -> np.ndarray: ...


class HistoryView:
    """Read-only ground truth of every task but ``held_out`` (what a leave-one-target-out learner may see)."""

    def __init__(self, benchmark: Benchmark, held_out: str, provider: FeatureProvider | None = None):
        benchmark.task_index(held_out)
        self._bench = benchmark
        self._provider = provider
        self.provider_seconds = 0.0
        self.held_out = held_out
        self.models = benchmark.models
        self.tasks = tuple(t for t in benchmark.tasks if t != held_out)
        self.zoo = benchmark.zoo

    def _allowed(self, task: str) -> None:
        if task == self.held_out:
            raise LeakageError(f"the ground truth of task {task!r} is held out: a method may learn from "
                               f"the other tasks only")
        self._bench.task_index(task)

    def truth(self, task: str, kind: str = "finetune_acc") -> np.ndarray:
        self._allowed(task)
        return self._bench.truth(task, kind)

    def matrix(self, kind: str = "finetune_acc") -> np.ndarray:
        """[n_tasks - 1, n_models] accuracies on the other tasks (rows in :attr:`tasks` order)."""
        keep = [self._bench.task_index(t) for t in self.tasks]
        return self._bench.matrix(kind)[keep]

    def task_info(self, task: str) -> TaskInfo:
        """Meta-data of any task (including the held-out one: descriptions are not ground truth)."""
        self._bench.task_index(task)
        return self._bench.task_info[task]

    def _need_provider(self, what: str):
        if self._provider is None or (what != "features" and not hasattr(self._provider, what)):
            raise MethodSkipped(f"the feature provider gives no historical {what.replace('_', ' ')}")
        return self._provider

    def _timed(self, fetch: Callable):
        t0 = time.perf_counter()
        try:
            return fetch()
        finally:
            self.provider_seconds += time.perf_counter() - t0

    @property
    def accepts_rows(self) -> bool:
        """Whether the history's provider can run a model on part of a probe set (:func:`accepts_rows`)."""
        from zoorank.data import accepts_rows

        return accepts_rows(self._provider)

    def features(self, model: str, task: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """A model's probe features and source logits on an OTHER task (history: the knowledge base's cached
        features; not a forward pass on the evaluated task, so not counted; provider time not in the method's);
        ``rows``: of those probe images only."""
        self._allowed(task)
        provider = self._need_provider("features")
        if rows is None:
            return self._timed(lambda: provider.features(model, task))
        return self._timed(lambda: provider.features(model, task, rows=rows))

    @property
    def provider(self) -> FeatureProvider | None:
        """The provider the history is read from, for data that are no target's (a provider's auxiliary source
        tasks); a target's data go through the accessors, which refuse the held-out one."""
        return self._provider

    def labels(self, task: str) -> np.ndarray:
        """Probe labels of an OTHER task."""
        self._allowed(task)
        provider = self._need_provider("features")
        return self._timed(lambda: np.asarray(provider.labels(task)))

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of the general encoder on an OTHER task's probe set."""
        self._allowed(task)
        provider = self._need_provider("encoder_features")
        return self._timed(lambda: provider.encoder_features(task))

    def general_features(self, model: str) -> np.ndarray | None:
        """The model's features on the provider's general data set (not a task's; the same in every fold), or
        None when the provider has none. Not a forward pass on the held-out target."""
        get = getattr(self._provider, "general_features", None)
        if get is None:
            return None
        return self._timed(lambda: get(model))

    def proxy_features(self, task: str, **options) -> np.ndarray:
        """Proxy-encoder features of an unlabelled sample of an OTHER task (``options`` go to the provider,
        e.g. ``encoder=``)."""
        self._allowed(task)
        provider = self._need_provider("proxy_features")
        return self._timed(lambda: np.asarray(provider.proxy_features(task, **options)))


class TaskContext:
    """Everything a method may use to rank the zoo for one target task.

    Feature requests go through here so that forward passes are counted per method and provider time
    is kept out of the method's seconds; features are cached across the methods of one task.
    """

    def __init__(self, task: str, benchmark: Benchmark, provider: FeatureProvider | None,
                 truth_kind: str = "finetune_acc", cache: dict | None = None, *,
                 history_provider: FeatureProvider | None = None, live: bool = False):
        self.task = task
        self.models = benchmark.models
        self.zoo = benchmark.zoo
        self.task_info = benchmark.task_info[task]
        self.truth_kind = truth_kind
        self.history = HistoryView(benchmark, task, provider if history_provider is None else history_provider)
        self._provider = provider
        #: End-to-end timing (:func:`run`'s ``live_provider``): the method must compute what it reports now, not
        #: replay it from a store, since its seconds are to include everything it costs.
        self.live = live
        self._cache = cache if cache is not None else {}
        self.requested: set[str] = set()
        self._images: dict = {}
        self.proxy_passes = 0
        self.provider_seconds = 0.0
        #: Time a method spent on offline work (fitting a learned ranker on the other targets: what
        #: ``zoorank fit`` does once, ahead of any query); the method adds it here and the harness reports
        #: ``seconds`` without it, as it does for provider time.
        self.offline_seconds = 0.0
        #: Compute time of results a method took from a store instead of recomputing them (the metric scores of
        #: :class:`MetricMethod`, :mod:`zoorank.store.scores`): added to ``seconds``, so that a cached run
        #: reports what the computation costs.
        self.replayed_seconds = 0.0

    @property
    def forward_passes(self) -> int:
        return len(self.requested)

    def offline(self, fit: Callable):
        """Run ``fit()`` (a learned ranker's fitting on the other targets) and count its time as offline, minus
        the provider time inside it (already kept out of ``seconds``); returns what ``fit`` returns."""
        t0 = time.perf_counter()
        p0 = self.provider_seconds + self.history.provider_seconds
        try:
            return fit()
        finally:  # in a live run, a read of the target inside the fit thereby stays online, where a user waits for it
            provider = self.provider_seconds + self.history.provider_seconds - p0
            self.offline_seconds += max(time.perf_counter() - t0 - provider, 0.0)

    @property
    def provider(self) -> FeatureProvider | None:
        """The feature provider (for methods that keep per-run state keyed by it; data still goes through
        the counted accessors)."""
        return self._provider

    def _need_provider(self):
        if self._provider is None:
            raise MethodSkipped("no feature provider was given")
        return self._provider

    def _cached(self, key, fetch: Callable):
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = fetch()
            self.provider_seconds += time.perf_counter() - t0
        return self._cache[key]

    def features(self, model: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(features [N, D], source logits [N, Cs] or None) of ``model`` on this task: one forward pass. With
        ``rows`` (indices into the probe set), of those probe images only (the provider must accept ``rows``);
        :attr:`image_passes` counts the images each distinct request passes through a model."""
        if model not in self.zoo:
            raise InputError(f"unknown model {model!r}")
        provider = self._need_provider()
        self.requested.add(model)
        if rows is None:
            key = ("features", model)
            out = self._cached(key, lambda: provider.features(model, self.task))
        else:
            from zoorank.store.scores import digest

            rows = np.asarray(rows, dtype=np.int64)
            key = ("features", model, digest(rows))
            out = self._cached(key, lambda: provider.features(model, self.task, rows=rows))
        try:
            feats, logits = out
        except (TypeError, ValueError):
            raise InputError(f"provider.features({model!r}, {self.task!r}) must return (features, logits)") from None
        if key not in self._images:
            self._images[key] = int(np.shape(feats)[0])
        return feats, logits

    @property
    def image_passes(self) -> int:
        """Images passed through zoo models for this task (each distinct (model, rows) request once)."""
        return sum(self._images.values())

    def labels(self) -> np.ndarray:
        provider = self._need_provider()
        return self._cached(("labels",), lambda: np.asarray(provider.labels(self.task)))

    def proxy_features(self, **options) -> np.ndarray:
        """Features of a general proxy encoder on an unlabelled sample of this task's images (Fennec's
        equation 5); one pass of the proxy encoder, not of a zoo model. ``options`` go to the provider."""
        provider = self._need_provider()
        get = getattr(provider, "proxy_features", None)
        if get is None:
            raise MethodSkipped("the feature provider has no proxy encoder")
        self.proxy_passes = 1
        key = ("proxy", tuple(sorted(options.items())))
        return self._cached(key, lambda: np.asarray(get(self.task, **options)))

    def encoder_features(self) -> tuple[np.ndarray, np.ndarray]:
        """(features [N, G], labels [N]) of a frozen general encoder on this task's probe set: Model Spider's task
        tokens (its equation 5). One encoder pass, not counted as a zoo forward pass. When the provider's
        ``encoder_model`` is a model of the zoo (its ``encoder_features(task)`` must then be
        ``features(encoder_model, task)[0], labels(task)``), the pass is that model's and a later :meth:`features`
        of it (then counted) reuses it within this context, as the product's rank job reuses one extraction."""
        provider = self._need_provider()
        get = getattr(provider, "encoder_features", None)
        if get is None:
            raise MethodSkipped("the feature provider has no general encoder")
        self.proxy_passes = 1
        encoder = getattr(provider, "encoder_model", None)
        if encoder is not None and encoder in self.zoo:
            feats = self._cached(("features", encoder), lambda: provider.features(encoder, self.task))[0]
            return feats, self.labels()
        return self._cached(("encoder",), lambda: get(self.task))

    def digest(self, what: str, model: str) -> str:
        """Content digest of the model's ``features`` / ``logits`` / ``general`` features on this task (for
        content-keyed caches; computed once per task, its time counted as provider time)."""
        from zoorank.store.scores import digest

        def make() -> str:
            if what == "general":
                return digest(self.general_features(model))
            feats, logits = self.features(model)
            return digest(feats if what == "features" else logits)

        return self._cached(("digest", what, model), make)

    def general_features(self, model: str) -> np.ndarray | None:
        """The model's features on a general data set, or None when the provider has none."""
        provider = self._need_provider()
        get = getattr(provider, "general_features", None)
        if get is None:
            return None
        self.requested.add(model)
        return self._cached(("general", model), lambda: get(model))
