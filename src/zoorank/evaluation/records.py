"""Records of a run (the JSON contract of DESIGN.md) and their summaries.

Each (method, task) gives a :class:`Record` (the JSON contract of DESIGN.md):

- ``weighted_tau``, ``pearson`` — :func:`zoorank.ranking.weighted_tau` / :func:`~zoorank.ranking.pearson`
  of the scores against the task's fine-tuned accuracies (or ``truth_kind``);
- ``top1_regret`` — best true accuracy minus that of the model ranked first (accuracy units, 0..1);
- ``forward_passes`` — number of distinct (model, task) feature extractions the method asked the
  context for (counted, not declared: #models for a metric, 0 for popularity);
- ``image_passes`` (optional) — images passed through zoo models for the task (each distinct (model, probe
  rows) request once): the cost of a method that runs models on part of the probe set;
- ``seconds`` — the method's own wall time, EXCLUDING the time spent in the provider (extracting or
  loading features is shared by every method on a task and cached; its cost is what
  ``forward_passes`` measures) and the offline fitting of learned rankers on the other targets
  (:meth:`TaskContext.offline`: what ``zoorank fit`` does once, before any query). A metric score served
  from the score store reports the compute time it was measured with. With
  :func:`~zoorank.evaluation.runner.run`'s ``live_provider`` it is the end-to-end wall time instead: the forward
  passes included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file

RECORD_KEYS = ("method", "task", "weighted_tau", "pearson", "top1_regret", "forward_passes", "seconds")


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
    image_passes: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["image_passes"] is None:
            del d["image_passes"]
        return d


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


def quality(scores: np.ndarray, truth: np.ndarray, name: str, task: str) -> tuple[float, float, float]:
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
            images = d.get("image_passes")
            r = Record(str(d["method"]), str(d["task"]), float(d["weighted_tau"]), float(d["pearson"]),
                       float(d["top1_regret"]), int(d["forward_passes"]), float(d["seconds"]),
                       None if images is None else int(images))
        except (TypeError, ValueError):
            raise InputError(f"{p}: record {i} has a non-numeric value") from None
        if not all(math.isfinite(v) for v in (r.weighted_tau, r.pearson, r.top1_regret, r.seconds)):
            raise InputError(f"{p}: record {i} has a non-finite value")
        out.append(r)
    return out


#: Records of two runs agree when every quality figure differs by at most this (absolute; weighted tau and
#: Pearson in [-1, 1], regret in accuracy units). Every ranking is made with :data:`zoorank.ranking.TIE_RTOL`, so
#: rounding reorders models only if a real gap between two scores lies within a few ulps of that threshold; what is
#: left is float noise of a few ulps in the statistics themselves.
REPRODUCE_TOL = 1e-6


def compare_records(rerun: Iterable[Record], committed: Iterable[Record], *, tol: float = REPRODUCE_TOL,
                    keys: Iterable[tuple[str, str]] | None = None) -> list[str]:
    """What differs between two runs, one line per problem (empty: they agree).

    Compared for every (method, task) of ``keys`` (default: every pair of either run): presence in both runs,
    ``weighted_tau``, ``pearson`` and ``top1_regret`` within ``tol``, ``forward_passes`` exactly. ``seconds``
    are machine facts and are not compared.
    """
    new = {(r.method, r.task): r for r in rerun}
    old = {(r.method, r.task): r for r in committed}
    wanted = sorted(set(new) | set(old)) if keys is None else list(keys)
    out = []
    for key in wanted:
        a, b = new.get(key), old.get(key)
        if a is None or b is None:
            out.append(f"{key[0]} on {key[1]}: only in the {'committed run' if a is None else 'rerun'}")
            continue
        for field in ("weighted_tau", "pearson", "top1_regret"):
            x, y = getattr(a, field), getattr(b, field)
            if not (abs(x - y) <= tol or (math.isnan(x) and math.isnan(y))):
                out.append(f"{key[0]} on {key[1]}: {field} {x:.9g} against {y:.9g} committed")
        if a.forward_passes != b.forward_passes:
            out.append(f"{key[0]} on {key[1]}: forward_passes {a.forward_passes} against {b.forward_passes} committed")
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
    image_passes: float = float("nan")  # per task, over the records that count them


def summary(records: Iterable[Record]) -> list[Summary]:
    """Mean over tasks per method, sorted by mean weighted tau (best first; ties by name)."""
    by: dict[str, list[Record]] = {}
    for r in records:
        by.setdefault(r.method, []).append(r)
    out = [
        Summary(m, len(rs), *(float(np.mean([getattr(r, k) for r in rs]))
                              for k in ("weighted_tau", "pearson", "top1_regret", "forward_passes", "seconds")),
                float(np.mean(images)) if (images := [r.image_passes for r in rs if r.image_passes is not None])
                else float("nan"))
        for m, rs in by.items()
    ]
    return sorted(out, key=lambda s: (-s.weighted_tau, s.method))

