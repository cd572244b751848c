"""The resumable leave-one-target-out run loop (:func:`run`) and its checkpoint file.

Protocol of a run (:func:`run`): for each target task, for each method, the method gets a
:class:`TaskContext` and returns one score per zoo model (higher = better), or several score vectors
(a 2-D array [draws, models]: independent draws of a stochastic method, quality averaged over them).
The context gives, lazily, each model's probe features and source logits on the task (through a
:class:`FeatureProvider`), the task's probe labels, the zoo's meta-data, and a :class:`HistoryView` of
the ground truth of the OTHER tasks only — asking it for the held-out task raises :class:`LeakageError`.

With ``live_provider``, each method reads the held-out target through a provider with no feature cache and no
stored score, so that its record's ``seconds`` is the end-to-end wall time, forward passes included.

A method that cannot run on a task raises :class:`MethodSkipped` (e.g. LEEP on a headless model, PED
without general features); the run notes the reason in :attr:`RunResult.skipped` instead of a record.

"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation.benchmark import Benchmark
from zoorank.evaluation.context import FeatureProvider, LeakageError, MethodSkipped, TaskContext
from zoorank.evaluation.records import RECORD_KEYS, Record, RunResult, Skip, quality
from zoorank.evaluation.registry import Method


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
                q = quality(s, truth, method.name, task)
            except LeakageError:
                raise
            except MethodSkipped as exc:
                result = Skip(method.name, task, str(exc))
            except Exception as exc:
                if errors == "raise":
                    raise
                result = Skip(method.name, task, f"failed: {type(exc).__name__}: {exc}")
            else:
                result = Record(method.name, task, q[0], q[1], q[2], ctx.forward_passes, max(seconds, 0.0),
                                ctx.image_passes)
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
                out.append(Record(**{k: d[k] for k in RECORD_KEYS}, image_passes=d.get("image_passes")))
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
