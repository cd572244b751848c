"""A benchmark directory: the ground truth of a zoo on a set of targets, its meta-data, and how much it
can tell ranking methods apart.

A *benchmark directory* holds (the columns DESIGN.md fixes):

- ``ground_truth.csv`` — ``model,task,finetune_acc,linear_probe_acc``: one row per (model, task),
  accuracies in [0, 1], every model of ``zoo.csv`` on every task;
- ``zoo.csv`` — ``model,architecture,source_domain,init,params``;
- ``tasks.csv`` (optional) — ``task,domain,description,n_classes,...``: ``domain`` names the source
  domain a target is close to (empty = far from all of them; used by ``baseline:source_match``), the
  description is for text-based methods; further columns are kept in :attr:`TaskInfo.extra`.

"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError

TRUTH_KINDS = ("finetune_acc", "linear_probe_acc")

GROUND_TRUTH_COLUMNS = ("model", "task", "finetune_acc", "linear_probe_acc")
ZOO_COLUMNS = ("model", "architecture", "source_domain", "init", "params")
TASKS_COLUMNS = ("task",)  # domain, description, n_classes are optional
RECORD_KEYS = ("method", "task", "weighted_tau", "pearson", "top1_regret", "forward_passes", "seconds")



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

    def within(self, tasks: Sequence[str]) -> Benchmark:
        """The benchmark restricted to ``tasks`` (in this benchmark's order): leave-one-out then runs inside them,
        every history made of the other chosen tasks only. Needs at least two distinct known tasks."""
        if isinstance(tasks, str):
            raise InputError("within: give a list of task names, not one string")
        for t in tasks:
            self.task_index(t)
        chosen = set(tasks)
        if len(chosen) < 2:
            raise InputError("a benchmark restricted to fewer than 2 tasks has no history to learn from; "
                             "give at least 2 tasks")
        keep = [t for t in self.tasks if t in chosen]
        rows = [self._task_index[t] for t in keep]
        return Benchmark(self.models, keep, {k: v[rows] for k, v in self._acc.items()}, self.zoo,
                         {t: self.task_info[t] for t in keep}, self.root)


    def without_models(self, models: Sequence[str]) -> Benchmark:
        """The benchmark with ``models`` left out of the zoo (their ground truth and meta-data dropped): what a
        method sees of a zoo that never held them. At least two models must remain."""
        if isinstance(models, str):
            raise InputError("without_models: give a list of model names, not one string")
        unknown = [m for m in models if m not in self.zoo]
        if unknown:
            raise InputError(f"without_models: unknown model(s) {', '.join(unknown[:5])}")
        keep = [m for m in self.models if m not in set(models)]
        if len(keep) < 2:
            raise InputError("without_models: fewer than 2 models would remain")
        cols = [self.models.index(m) for m in keep]
        return Benchmark(keep, self.tasks, {k: v[:, cols] for k, v in self._acc.items()},
                         {m: self.zoo[m] for m in keep}, self.task_info, self.root)


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



# --------------------------------------------------------------------------------------------------
# does the benchmark discriminate?


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
    """The ways a :func:`discrimination` report fails the discrimination checks (empty list = it discriminates):
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


