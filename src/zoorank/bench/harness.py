"""The ZooBench evaluation harness: leave-one-target-out evaluation of ranking methods.

A *benchmark directory* holds (columns as ``docs/../shared/DESIGN.md`` fixes them):

- ``ground_truth.csv`` — ``model,task,finetune_acc,linear_probe_acc``: one row per (model, task),
  accuracies in [0, 1], every model of ``zoo.csv`` on every task;
- ``zoo.csv`` — ``model,architecture,source_domain,init,params``;
- ``tasks.csv`` (optional) — ``task,domain,description,n_classes,...``: ``domain`` names the source
  domain a target is close to (empty = far from all of them; used by ``baseline:source_match``), the
  description is for text-based methods; further columns are kept in :attr:`TaskInfo.extra`.

Protocol of a run (:func:`run`): for each target task, for each method, the method gets a
:class:`TaskContext` and returns one score per zoo model (higher = better), or several score vectors
(a 2-D array [draws, models]: independent draws of a stochastic method, quality averaged over them).
The context gives, lazily, each model's probe features and source logits on the task (through a
:class:`FeatureProvider`), the task's probe labels, the zoo's meta-data, and a :class:`HistoryView` of
the ground truth of the OTHER tasks only — asking it for the held-out task raises :class:`LeakageError`.

Each (method, task) gives a :class:`Record` (the JSON contract of DESIGN.md):

- ``weighted_tau``, ``pearson`` — :func:`zoorank.ranking.weighted_tau` / :func:`~zoorank.ranking.pearson`
  of the scores against the task's fine-tuned accuracies (or ``truth_kind``);
- ``top1_regret`` — best true accuracy minus that of the model ranked first (accuracy units, 0..1);
- ``forward_passes`` — number of distinct (model, task) feature extractions the method asked the
  context for (counted, not declared: #models for a metric, 0 for popularity);
- ``seconds`` — the method's own wall time, EXCLUDING the time spent in the provider (extracting or
  loading features is shared by every method on a task and cached; its cost is what
  ``forward_passes`` measures) and the offline fitting of learned rankers on the other targets
  (:meth:`TaskContext.offline`: what ``zoorank fit`` does once, before any query). A metric score served
  from the score store reports the compute time it was measured with. With :func:`run`'s ``live_provider``
  (:mod:`zoorank.bench.end_to_end`) it is the end-to-end wall time instead: the forward passes included.

A method that cannot run on a task raises :class:`MethodSkipped` (e.g. LEEP on a headless model, PED
without general features); the run notes the reason in :attr:`RunResult.skipped` instead of a record.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file

__all__ = [
    "TRUTH_KINDS",
    "Benchmark",
    "FeatureProvider",
    "HistoryView",
    "LeakageError",
    "Method",
    "MethodSkipped",
    "MetricMethod",
    "Record",
    "RunResult",
    "Skip",
    "TaskContext",
    "TaskInfo",
    "ZooEntry",
    "available_methods",
    "discrimination",
    "discrimination_markdown",
    "discrimination_problems",
    "load_benchmark",
    "make_methods",
    "markdown",
    "read_json",
    "register_method",
    "run",
    "summary",
    "write_json",
]

#: The ground-truth columns a record can be scored against.
TRUTH_KINDS = ("finetune_acc", "linear_probe_acc")

GROUND_TRUTH_COLUMNS = ("model", "task", "finetune_acc", "linear_probe_acc")
ZOO_COLUMNS = ("model", "architecture", "source_domain", "init", "params")
TASKS_COLUMNS = ("task",)  # domain, description, n_classes are optional
RECORD_KEYS = ("method", "task", "weighted_tau", "pearson", "top1_regret", "forward_passes", "seconds")


class LeakageError(RuntimeError):
    """A method asked for the ground truth of the task it is being evaluated on (a bug in the method,
    never caught by the harness)."""


class MethodSkipped(Exception):
    """Raised by a method that cannot score a task; the message is the reason shown in reports."""


# --------------------------------------------------------------------------------------------------
# the benchmark


@dataclass(frozen=True)
class ZooEntry:
    model: str
    architecture: str
    source_domain: str
    init: str
    params: int


@dataclass(frozen=True)
class TaskInfo:
    task: str
    domain: str | None = None
    description: str = ""
    n_classes: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Benchmark:
    """Ground truth of a zoo on a set of target tasks (models x tasks accuracy matrices) and meta-data.

    ``acc`` maps each of :data:`TRUTH_KINDS` to a float array [n_tasks, n_models] in [0, 1].
    """

    def __init__(
        self,
        models: Sequence[str],
        tasks: Sequence[str],
        acc: dict[str, np.ndarray],
        zoo: dict[str, ZooEntry],
        task_info: dict[str, TaskInfo] | None = None,
        root: Path | None = None,
    ):
        self.models = tuple(models)
        self.tasks = tuple(tasks)
        if len(set(self.models)) != len(self.models) or len(set(self.tasks)) != len(self.tasks):
            raise InputError("benchmark: model and task names must be unique")
        if not self.models or not self.tasks:
            raise InputError("benchmark: needs at least one model and one task")
        self._acc: dict[str, np.ndarray] = {}
        for kind in TRUTH_KINDS:
            if kind not in acc:
                raise InputError(f"benchmark: missing the {kind} matrix")
            a = np.array(acc[kind], dtype=np.float64)
            if a.shape != (len(self.tasks), len(self.models)):
                raise InputError(f"benchmark: {kind} has shape {a.shape}, expected "
                                 f"({len(self.tasks)} tasks, {len(self.models)} models)")
            if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
                raise InputError(f"benchmark: {kind} values must be finite accuracies in [0, 1]")
            a.setflags(write=False)
            self._acc[kind] = a
        missing = [m for m in self.models if m not in zoo]
        if missing:
            raise InputError(f"benchmark: no zoo meta-data for model(s) {', '.join(missing[:5])}")
        self.zoo = {m: zoo[m] for m in self.models}
        info = dict(task_info or {})
        unknown = sorted(set(info) - set(self.tasks))
        if unknown:
            raise InputError(f"benchmark: task meta-data for task(s) without ground truth: {', '.join(unknown[:5])}")
        self.task_info = {t: info.get(t, TaskInfo(t)) for t in self.tasks}
        self.root = root
        self._task_index = {t: i for i, t in enumerate(self.tasks)}

    def __repr__(self) -> str:
        where = f" from {self.root}" if self.root else ""
        return f"Benchmark({len(self.models)} models x {len(self.tasks)} tasks{where})"

    def _check_kind(self, kind: str) -> None:
        if kind not in TRUTH_KINDS:
            raise InputError(f"unknown ground-truth kind {kind!r}; choose from {', '.join(TRUTH_KINDS)}")

    def task_index(self, task: str) -> int:
        try:
            return self._task_index[task]
        except KeyError:
            raise InputError(f"unknown task {task!r}; the benchmark has: {', '.join(self.tasks)}") from None

    def truth(self, task: str, kind: str = "finetune_acc") -> np.ndarray:
        """Accuracies of every model (in :attr:`models` order) on ``task``."""
        self._check_kind(kind)
        return self._acc[kind][self.task_index(task)].copy()

    def matrix(self, kind: str = "finetune_acc") -> np.ndarray:
        """The [n_tasks, n_models] accuracy matrix (a copy)."""
        self._check_kind(kind)
        return self._acc[kind].copy()

    def params(self) -> np.ndarray:
        """Parameter counts of the models (in :attr:`models` order)."""
        return np.array([self.zoo[m].params for m in self.models], dtype=np.float64)


def _read_csv(path: Path, required: Sequence[str], what: str) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise InputError(f"{what}: file {path} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(f"{path.name}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            rows = []
            for i, raw in enumerate(reader, start=2):
                if None in raw:
                    raise InputError(f"{path.name} line {i}: more fields than columns")
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
                if not any(row.values()):
                    continue
                rows.append((i, row))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path.name}: malformed CSV ({exc})") from None
    return rows


def _float(row: dict[str, str], key: str, where: str) -> float:
    try:
        v = float(row[key])
    except ValueError:
        raise InputError(f"{where}: {key} {row[key]!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{where}: {key} is {row[key]!r}, must be finite")
    return v


def load_benchmark(directory: str | Path) -> Benchmark:
    """Read and validate a benchmark directory (``ground_truth.csv``, ``zoo.csv``, optional ``tasks.csv``).

    Models keep the order of ``zoo.csv``; tasks the order of first appearance in ``ground_truth.csv``.
    Raises :class:`InputError` with one line naming the file, line and problem.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"benchmark directory {root} not found")

    zoo: dict[str, ZooEntry] = {}
    for line, row in _read_csv(root / "zoo.csv", ZOO_COLUMNS, "zoo"):
        where = f"zoo.csv line {line}"
        name = row["model"]
        if not name:
            raise InputError(f"{where}: empty model name")
        if name in zoo:
            raise InputError(f"{where}: model {name!r} listed twice")
        p = _float(row, "params", where)
        if p < 0 or p != int(p):
            raise InputError(f"{where}: params {row['params']!r} must be a non-negative integer")
        zoo[name] = ZooEntry(name, row["architecture"], row["source_domain"], row["init"], int(p))
    if not zoo:
        raise InputError("zoo.csv: no models")

    values: dict[tuple[str, str], tuple[float, float]] = {}
    tasks: list[str] = []
    for line, row in _read_csv(root / "ground_truth.csv", GROUND_TRUTH_COLUMNS, "ground truth"):
        where = f"ground_truth.csv line {line}"
        model, task = row["model"], row["task"]
        if not model or not task:
            raise InputError(f"{where}: empty model or task name")
        if model not in zoo:
            raise InputError(f"{where}: model {model!r} is not in zoo.csv")
        if (model, task) in values:
            raise InputError(f"{where}: second row for model {model!r} on task {task!r}")
        accs = []
        for key in ("finetune_acc", "linear_probe_acc"):
            v = _float(row, key, where)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{where}: {key} {v} is outside [0, 1] (accuracies are fractions)")
            accs.append(v)
        values[(model, task)] = (accs[0], accs[1])
        if task not in tasks:
            tasks.append(task)
    if not values:
        raise InputError("ground_truth.csv: no rows")
    models = list(zoo)
    absent = [(m, t) for t in tasks for m in models if (m, t) not in values]
    if absent:
        m, t = absent[0]
        raise InputError(f"ground_truth.csv: {len(absent)} (model, task) pair(s) missing, "
                         f"e.g. model {m!r} on task {t!r}")
    acc = {
        kind: np.array([[values[(m, t)][k] for m in models] for t in tasks])
        for k, kind in enumerate(("finetune_acc", "linear_probe_acc"))
    }

    info: dict[str, TaskInfo] = {}
    tasks_csv = root / "tasks.csv"
    if tasks_csv.exists():
        for line, row in _read_csv(tasks_csv, TASKS_COLUMNS, "tasks"):
            where = f"tasks.csv line {line}"
            t = row.pop("task")
            if t in info:
                raise InputError(f"{where}: task {t!r} listed twice")
            if t not in tasks:
                raise InputError(f"{where}: task {t!r} has no ground truth")
            n_classes = None
            if row.get("n_classes"):
                c = _float(row, "n_classes", where)
                if c < 2 or c != int(c):
                    raise InputError(f"{where}: n_classes {row['n_classes']!r} must be an integer >= 2")
                n_classes = int(c)
            domain = row.pop("domain", "") or None
            description = row.pop("description", "")
            row.pop("n_classes", None)
            info[t] = TaskInfo(t, domain, description, n_classes, row)
    return Benchmark(models, tasks, acc, zoo, info, root=root)


# --------------------------------------------------------------------------------------------------
# what a method sees


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

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A model's probe features and source logits on an OTHER task (history: the knowledge base's cached
        features; not a forward pass on the evaluated task, so not counted; provider time not in the method's)."""
        self._allowed(task)
        provider = self._need_provider("features")
        return self._timed(lambda: provider.features(model, task))

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
        self.proxy_passes = 0
        self.provider_seconds = 0.0
        #: Time a method spent on offline work (fitting a learned ranker on the other targets: what
        #: ``zoorank fit`` does once, ahead of any query); the method adds it here and the harness reports
        #: ``seconds`` without it, as it does for provider time.
        self.offline_seconds = 0.0
        #: Compute time of results a method took from a store instead of recomputing them (the metric scores of
        #: :class:`MetricMethod`, :mod:`zoorank.bench.score_store`): added to ``seconds``, so that a cached run
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

    def features(self, model: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(features [N, D], source logits [N, Cs] or None) of ``model`` on this task: one forward pass."""
        if model not in self.zoo:
            raise InputError(f"unknown model {model!r}")
        provider = self._need_provider()
        self.requested.add(model)
        out = self._cached(("features", model), lambda: provider.features(model, self.task))
        try:
            feats, logits = out
        except (TypeError, ValueError):
            raise InputError(f"provider.features({model!r}, {self.task!r}) must return (features, logits)") from None
        return feats, logits

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
        from zoorank.bench.score_store import digest

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


@runtime_checkable
class Method(Protocol):
    """A ranking method: ``scores(task, context)`` -> float [n_models] (higher = better) or
    [draws, n_models]; raises :class:`MethodSkipped` when it cannot score the task."""

    name: str

    def scores(self, task: str, context: TaskContext) -> np.ndarray: ...


class MetricMethod:
    """A transferability metric of :mod:`zoorank.metrics` as a ranking method.

    Scores are kept in a content-keyed :class:`~zoorank.bench.score_store.ScoreStore` (``store``; default
    ``<zoorank cache>/metric_scores``, shared with MetaRank's meta-dataset; ``store=False``: none) together with
    their compute time, which a hit reports as the method's seconds.

    Features of every model on the task's probe set (one forward pass each); metrics with a pool form
    (ETran, NCTI) are scored with :func:`zoorank.metrics.compute_pool`; metrics needing source
    probabilities (LEEP, NCE) use softmax(logits) and skip the task when a model is headless; PED uses
    the provider's ``general_features`` and skips when it has none. ``params`` go to the metric.
    """

    def __init__(self, metric: str, *, store=None, **params):
        from zoorank import metrics as M
        from zoorank.bench.score_store import ScoreStore, default_store_dir

        self.info = M.info(metric)
        self.name = metric
        self.params = params
        self.store = None if store is False else store if store is not None else ScoreStore(default_store_dir())

    def __repr__(self) -> str:
        return f"MetricMethod({self.name!r})"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank import metrics as M

        info = self.info
        models = context.models
        pairs = [context.features(m) for m in models]
        labels = context.labels() if info.needs_labels else None
        general = None
        if info.needs_general_features and "general_features" not in self.params:
            general = [context.general_features(m) for m in models]
        key = None
        if self.store is not None and not context.live and "general_features" not in self.params:
            from zoorank.bench.score_store import digest, metric_key

            gen_ids = None if general is None else [context.digest("general", m) for m in models]
            key = metric_key(self.name, self.params, [context.digest("features", m) for m in models],
                             [context.digest("logits", m) for m in models], gen_ids,
                             "-" if labels is None else context._cached(("digest", "labels"), lambda: digest(labels)))
            hit, scores, seconds = self.store.get(key)
            if hit and scores is not None:
                context.replayed_seconds += seconds
                return scores
        try:
            t0 = time.perf_counter()
            scores = M.score_zoo(self.name, [f for f, _ in pairs], [lg for _, lg in pairs], labels, general=general,
                                 names=models, **self.params)
            if key is not None and np.isfinite(scores).all():
                self.store.put(key, scores, time.perf_counter() - t0)
            return scores
        except M.MetricUnavailable as exc:
            if not exc.missing_input:
                raise  # the metric's own complaint about the data: a failure, not a skip
            raise MethodSkipped(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# the method registry

_FACTORIES: dict[str, Callable[[], Method]] = {}
_NOT_IN_ALL: set[str] = set()


def register_method(name: str, factory: Callable[[], Method], *, in_all: bool = True) -> None:
    """Make ``name`` available to :func:`make_methods` (learned methods register themselves here);
    ``in_all=False`` (ablation variants) leaves it out of ``all``."""
    _FACTORIES[name] = factory
    if in_all:
        _NOT_IN_ALL.discard(name)
    else:
        _NOT_IN_ALL.add(name)


def _builtin() -> dict[str, Callable[[], Method]]:
    from zoorank import metrics as M
    from zoorank.bench import baselines as B
    from zoorank.bench import learned, learned_metarank, learned_pipeline, learned_spider

    learned.register()
    learned_spider.register()
    learned_metarank.register()
    learned_pipeline.register()
    out: dict[str, Callable[[], Method]] = {n: (lambda n=n: MetricMethod(n)) for n in M.available()}
    out.update(B.BASELINES)
    out.update(_FACTORIES)
    return out


def available_methods() -> list[str]:
    """Every method name :func:`make_methods` knows: the metrics, the baselines, registered methods."""
    return list(_builtin())


def make_methods(names: str | Iterable[str]) -> list[Method]:
    """Methods from a comma-separated list (or an iterable) of names; ``all`` = every available method."""
    items = [s.strip() for s in names.split(",")] if isinstance(names, str) else [str(s).strip() for s in names]
    items = [s for s in items if s]
    if not items:
        raise InputError("no methods given")
    known = _builtin()
    out: list[Method] = []
    seen: set[str] = set()
    for name in items:
        for n in ([k for k in known if k not in _NOT_IN_ALL] if name == "all" else [name]):
            if n not in known:
                raise InputError(f"unknown method {n!r}; available: all, {', '.join(known)}")
            if n not in seen:
                seen.add(n)
                out.append(known[n]())
    return out


# --------------------------------------------------------------------------------------------------
# running


@dataclass(frozen=True)
class Record:
    """One (method, task) result: the JSON record of DESIGN.md."""

    method: str
    task: str
    weighted_tau: float
    pearson: float
    top1_regret: float
    forward_passes: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Skip:
    method: str
    task: str
    reason: str


class RunResult(list):
    """A list of :class:`Record` that also carries :attr:`skipped` ((method, task, reason) of every
    method that could not score a task) and the ground-truth kind it was scored against."""

    def __init__(self, records: Iterable[Record] = (), skipped: Iterable[Skip] = (), truth_kind: str = "finetune_acc"):
        super().__init__(records)
        self.skipped: list[Skip] = list(skipped)
        self.truth_kind = truth_kind


def _quality(scores: np.ndarray, truth: np.ndarray, name: str, task: str) -> tuple[float, float, float]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.shape[1] != truth.size or s.shape[0] == 0:
        raise InputError(f"{name} on {task}: scores have shape {np.shape(scores)}, expected "
                         f"({truth.size},) or (draws, {truth.size})")
    if not np.isfinite(s).all():
        raise InputError(f"{name} on {task}: scores contain NaN or infinite values")
    q = np.array([(R.weighted_tau(row, truth), R.pearson(row, truth), R.top1_regret(row, truth)) for row in s])
    return tuple(float(v) for v in q.mean(axis=0))  # type: ignore[return-value]


def run(
    benchmark: Benchmark,
    methods: Sequence[Method],
    provider: FeatureProvider | None,
    tasks: Sequence[str] | None = None,
    *,
    truth_kind: str = "finetune_acc",
    errors: str = "skip",
    progress: Callable[[str, str], None] | None = None,
    done: Iterable[Record | Skip] = (),
    on_result: Callable[[Record | Skip], None] | None = None,
    live_provider: FeatureProvider | None = None,
) -> RunResult:
    """Evaluate every method on every task (default: all of the benchmark's), leave-one-target-out.

    ``errors="skip"``: a method raising anything but :class:`LeakageError` is skipped on that task with
    the error as the reason; ``errors="raise"`` re-raises (only :class:`MethodSkipped` is then noted).
    ``progress(method, task)`` is called after each evaluation. ``done``: results of an interrupted run
    (records and skips) that are taken as they are instead of being evaluated again (every fold is
    independent of the others, so a resumed run equals an uninterrupted one up to timings);
    ``on_result`` receives each new record or skip as soon as it exists (for checkpointing).

    ``live_provider``: end-to-end timing. Each method then reads the held-out target through this provider (give
    it no feature cache, so that every feature request is a real forward pass) with a per-method cache, nothing
    shared with the other methods; its ``seconds`` include that time (forward passes, encoder passes, loading
    the weights; PED's passes on the general data set too, though they do not depend on the target) and nothing
    is replayed from a score store. Reads of the other targets (what ``zoorank fit``
    learns from, offline) still go through ``provider``, and offline fitting stays out of ``seconds``.
    """
    if errors not in ("skip", "raise"):
        raise InputError(f"errors must be 'skip' or 'raise', got {errors!r}")
    benchmark._check_kind(truth_kind)
    names = [m.name for m in methods]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"method name(s) given twice: {', '.join(dup)}")
    task_list = list(benchmark.tasks if tasks is None else tasks)
    for t in task_list:
        benchmark.task_index(t)
    previous = {(r.method, r.task): r for r in done}
    out = RunResult(truth_kind=truth_kind)

    def keep(result: Record | Skip) -> None:
        (out.skipped if isinstance(result, Skip) else out).append(result)

    for task in task_list:
        truth = benchmark.truth(task, truth_kind)
        shared: dict = {}
        for method in methods:
            if (method.name, task) in previous:
                keep(previous[(method.name, task)])
                if progress is not None:
                    progress(method.name, task)
                continue
            if live_provider is None:
                ctx = TaskContext(task, benchmark, provider, truth_kind, shared)
            else:
                ctx = TaskContext(task, benchmark, live_provider, truth_kind, {}, history_provider=provider, live=True)
            t0 = time.perf_counter()
            result: Record | Skip
            try:
                s = method.scores(task, ctx)
                kept_out = ctx.history.provider_seconds + ctx.offline_seconds
                if live_provider is None:
                    kept_out += ctx.provider_seconds - ctx.replayed_seconds
                seconds = time.perf_counter() - t0 - kept_out
                q = _quality(s, truth, method.name, task)
            except LeakageError:
                raise
            except MethodSkipped as exc:
                result = Skip(method.name, task, str(exc))
            except Exception as exc:
                if errors == "raise":
                    raise
                result = Skip(method.name, task, f"failed: {type(exc).__name__}: {exc}")
            else:
                result = Record(method.name, task, q[0], q[1], q[2], ctx.forward_passes, max(seconds, 0.0))
            keep(result)
            if on_result is not None:
                on_result(result)
            if progress is not None:
                progress(method.name, task)
    return out


class Checkpoint:
    """Results of a run appended to a JSON-lines file as they come (one per (method, task), flushed), so that
    an interrupted run resumes where it stopped: :meth:`load` gives them back for :func:`run`'s ``done``. The
    file's first line names the benchmark's ground truth (a checkpoint of another benchmark or truth kind is
    refused)."""

    def __init__(self, path: str | Path, benchmark: Benchmark, truth_kind: str = "finetune_acc"):
        self.path = Path(path)
        truth = np.nan_to_num(benchmark.matrix(truth_kind)).round(6)
        digest = hashlib.sha256(json.dumps([benchmark.models, benchmark.tasks, truth.tolist()]).encode())
        self.header = {"zoorank_run_checkpoint": 1, "truth_kind": truth_kind, "benchmark": digest.hexdigest()[:16]}

    def load(self) -> list[Record | Skip]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line torn by the interruption: cut it off (in place) before appending again
            os.truncate(self.path, end)
            data = data[:end]
        if not data.strip():
            return []
        rows = []
        for i, ln in enumerate(x for x in data.decode("utf-8").splitlines() if x.strip()):
            try:
                rows.append(json.loads(ln))
            except json.JSONDecodeError:
                raise InputError(f"{self.path}: line {i + 1} is not JSON; delete the file to start afresh") from None
        if rows[0] != self.header:
            raise InputError(f"{self.path} is a checkpoint of another benchmark or ground truth; delete it to "
                             f"start the run afresh")
        out: list[Record | Skip] = []
        for d in rows[1:]:
            if "reason" in d:
                out.append(Skip(d["method"], d["task"], d["reason"]))
            else:
                out.append(Record(**{k: d[k] for k in RECORD_KEYS}))
        return out

    def add(self, result: Record | Skip) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            if new:
                fh.write(json.dumps(self.header) + "\n")
            fh.write(json.dumps(asdict(result)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# --------------------------------------------------------------------------------------------------
# JSON, summaries, tables


def write_json(records: Iterable[Record], path: str | Path) -> Path:
    """Write the records as a JSON list of DESIGN.md records (keys in contract order)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps([r.to_dict() for r in records], indent=1) + "\n", encoding="utf-8")
    return p


def read_json(path: str | Path) -> list[Record]:
    """Read records written by :func:`write_json` (validated: every key present, numbers finite)."""
    p = Path(path)
    data = read_json_file(p, missing=f"{p}: file not found")
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a JSON list of records")
    out = []
    for i, d in enumerate(data):
        if not isinstance(d, dict) or set(RECORD_KEYS) - set(d):
            raise InputError(f"{p}: record {i} must have the keys {', '.join(RECORD_KEYS)}")
        try:
            r = Record(str(d["method"]), str(d["task"]), float(d["weighted_tau"]), float(d["pearson"]),
                       float(d["top1_regret"]), int(d["forward_passes"]), float(d["seconds"]))
        except (TypeError, ValueError):
            raise InputError(f"{p}: record {i} has a non-numeric value") from None
        if not all(math.isfinite(v) for v in (r.weighted_tau, r.pearson, r.top1_regret, r.seconds)):
            raise InputError(f"{p}: record {i} has a non-finite value")
        out.append(r)
    return out


@dataclass(frozen=True)
class Summary:
    """A method's means over the tasks it scored."""

    method: str
    n_tasks: int
    weighted_tau: float
    pearson: float
    top1_regret: float
    forward_passes: float  # per task
    seconds: float  # per task


def summary(records: Iterable[Record]) -> list[Summary]:
    """Mean over tasks per method, sorted by mean weighted tau (best first; ties by name)."""
    by: dict[str, list[Record]] = {}
    for r in records:
        by.setdefault(r.method, []).append(r)
    out = [
        Summary(m, len(rs), *(float(np.mean([getattr(r, k) for r in rs]))
                              for k in ("weighted_tau", "pearson", "top1_regret", "forward_passes", "seconds")))
        for m, rs in by.items()
    ]
    return sorted(out, key=lambda s: (-s.weighted_tau, s.method))


def _cell(v: float | None, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(records: Iterable[Record], *, skipped: Iterable[Skip] | None = None, digits: int = 3,
             rows: str = "method") -> str:
    """Markdown: the weighted tau of every (method, target) and a summary table.

    ``rows="method"`` puts one method per row and the targets as columns (plus the mean);
    ``rows="task"`` transposes. Missing cells (skipped) show as "–". Methods are sorted by mean
    weighted tau. Skipped (method, task) pairs (default: ``records.skipped`` of a :class:`RunResult`)
    are listed below the tables.
    """
    if rows not in ("method", "task"):
        raise InputError(f"rows must be 'method' or 'task', got {rows!r}")
    recs = list(records)
    if skipped is None:
        skipped = getattr(records, "skipped", [])
    skipped = list(skipped)
    kind = getattr(records, "truth_kind", "finetune_acc")
    summ = summary(recs)
    methods = [s.method for s in summ]
    tasks: list[str] = []
    for r in recs:
        if r.task not in tasks:
            tasks.append(r.task)
    tau = {(r.method, r.task): r.weighted_tau for r in recs}
    mean = {s.method: s.weighted_tau for s in summ}
    parts = [f"### Weighted Kendall tau against {kind} (per target)\n"]
    if rows == "method":
        header = ["method", *tasks, "mean"]
        body = [[m, *(_cell(tau.get((m, t)), digits) for t in tasks), _cell(mean[m], digits)] for m in methods]
    else:
        header = ["target", *methods]
        body = [[t, *(_cell(tau.get((m, t)), digits) for m in methods)] for t in tasks]
        body.append(["**mean**", *(_cell(mean[m], digits) for m in methods)])
    parts.append(_table(header, body))
    parts.append("\n\n### Summary (means over targets)\n")
    parts.append(_table(
        ["method", "targets", "weighted tau", "pearson", "top-1 regret (points)", "forward passes / target",
         "seconds / target"],
        [[s.method, str(s.n_tasks), _cell(s.weighted_tau, digits), _cell(s.pearson, digits),
          f"{100 * s.top1_regret:.1f}", f"{s.forward_passes:.0f}", f"{s.seconds:.3g}"] for s in summ],
    ))
    if skipped:
        parts.append("\n\n### Skipped\n")
        parts.append(_table(["method", "target", "reason"],
                            [[s.method, s.task, s.reason.replace("|", "/")] for s in skipped], right_from=3))
    return "".join(parts) + "\n"


# --------------------------------------------------------------------------------------------------
# does the benchmark discriminate? (issue 4, item 5)


def discrimination(benchmark: Benchmark, kind: str = "finetune_acc") -> dict:
    """How much the ground truth of ``benchmark`` can tell ranking methods apart.

    Returns a JSON-ready dict:

    - ``per_task[task]``: ``spread_points`` = 100·(max − min) accuracy over the zoo, ``best_model``,
      ``best_acc``, ``worst_acc``, ``params_spearman`` = Spearman correlation between parameter count
      and accuracy ("does bigger-is-better explain the task?");
    - ``pairwise_kendall``: Kendall tau-b between the ground-truth rankings of every pair of tasks
      (``{"a|b": tau}``) and ``mean_pairwise_kendall`` their mean (1 = every task ranks the zoo alike);
    - ``median_spread_points``, ``mean_params_spearman``, ``distinct_best_models`` (how many different
      models are best somewhere).
    """
    benchmark._check_kind(kind)
    A = benchmark.matrix(kind)
    params = benchmark.params()
    per_task = {}
    for i, t in enumerate(benchmark.tasks):
        a = A[i]
        best = int(np.argmax(a))
        per_task[t] = {
            "spread_points": float(100.0 * (a.max() - a.min())),
            "best_model": benchmark.models[best],
            "best_acc": float(a.max()),
            "worst_acc": float(a.min()),
            "params_spearman": R.spearman(params, a) if a.size >= 2 else 0.0,
        }
    pairs = {}
    for i in range(len(benchmark.tasks)):
        for j in range(i + 1, len(benchmark.tasks)):
            tau = R.kendall_tau(A[i], A[j]) if A.shape[1] >= 2 else 0.0
            pairs[f"{benchmark.tasks[i]}|{benchmark.tasks[j]}"] = tau
    spreads = [v["spread_points"] for v in per_task.values()]
    return {
        "kind": kind,
        "n_models": len(benchmark.models),
        "n_tasks": len(benchmark.tasks),
        "per_task": per_task,
        "pairwise_kendall": pairs,
        "mean_pairwise_kendall": float(np.mean(list(pairs.values()))) if pairs else None,
        "median_spread_points": float(np.median(spreads)),
        "mean_params_spearman": float(np.mean([v["params_spearman"] for v in per_task.values()])),
        "distinct_best_models": len({v["best_model"] for v in per_task.values()}),
    }


def discrimination_problems(report: dict, *, min_spread_points: float = 15.0, min_fraction: float = 0.5,
                            max_mean_kendall: float = 0.7, max_params_spearman: float = 0.8) -> list[str]:
    """The ways a :func:`discrimination` report fails issue 4's checks (empty list = it discriminates):
    at least ``min_fraction`` of the tasks spread by ``min_spread_points`` or more, the mean pairwise
    Kendall tau at most ``max_mean_kendall``, and the mean params–accuracy Spearman at most
    ``max_params_spearman`` (bigger-is-better must not explain the zoo)."""
    problems = []
    spreads = {t: v["spread_points"] for t, v in report["per_task"].items()}
    wide = sum(s >= min_spread_points for s in spreads.values())
    if wide < min_fraction * len(spreads):
        narrow = sorted((t for t, s in spreads.items() if s < min_spread_points), key=spreads.get)
        problems.append(f"only {wide} of {len(spreads)} targets spread by >= {min_spread_points:g} points "
                        f"(narrowest: {', '.join(narrow[:5])})")
    mk = report["mean_pairwise_kendall"]
    if mk is not None and mk > max_mean_kendall:
        problems.append(f"mean pairwise Kendall tau between targets is {mk:.2f} > {max_mean_kendall:g}: "
                        "the best model hardly depends on the target")
    ps = report["mean_params_spearman"]
    if ps > max_params_spearman:
        problems.append(f"mean Spearman(params, accuracy) is {ps:.2f} > {max_params_spearman:g}: "
                        "bigger-is-better explains the zoo")
    return problems


def discrimination_markdown(report: dict, digits: int = 2) -> str:
    """Markdown rendering of a :func:`discrimination` report: one row per target, then the aggregates."""
    rows = [[t, v["best_model"], f"{v['spread_points']:.1f}", f"{100 * v['worst_acc']:.1f}",
             f"{100 * v['best_acc']:.1f}", f"{v['params_spearman']:.{digits}f}"] for t, v in report["per_task"].items()]
    mk = report["mean_pairwise_kendall"]
    lines = [
        f"### Does the benchmark discriminate? ({report['kind']}, {report['n_models']} models, "
        f"{report['n_tasks']} targets)\n",
        _table(["target", "best model", "spread (points)", "worst (%)", "best (%)", "Spearman(params, acc)"],
               rows, right_from=2),
        "",
        f"- median spread across models: {report['median_spread_points']:.1f} points",
        f"- mean pairwise Kendall tau between targets' rankings: {'–' if mk is None else f'{mk:.{digits}f}'}",
        f"- mean Spearman(params, accuracy): {report['mean_params_spearman']:.{digits}f}",
        f"- distinct best models: {report['distinct_best_models']} over {report['n_tasks']} targets",
    ]
    return "\n".join(lines) + "\n"
