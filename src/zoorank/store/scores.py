"""Metric scores over a zoo, kept on disk by content, with the time they took to compute.

A benchmark run scores the same (metric, task) pairs several times: the metric as a method, MetaRank's meta-dataset
of the other targets in every fold, a resumed or repeated run. :class:`ScoreStore` keeps each score vector under a
key made of the metric, its parameters and digests of exactly the inputs the metric reads (:func:`metric_key`:
features, source logits, general features, labels, and the rows of a sub-task), so a hit is the same numbers a
recomputation would give (the key also holds the store format, bumped when a metric's numbers change, and the
zoorank release, so an upgrade never serves scores of older code). It also keeps the seconds the computation took,
so that a method served from the store still reports its real compute time
(:attr:`zoorank.evaluation.TaskContext.replayed_seconds`).

Files: ``<dir>/<key[:2]>/<key>.npy`` holding ``[seconds, *scores]`` (``[seconds]`` alone: the metric could not
score the zoo). Default ``<dir>``: ``<zoorank cache>/metric_scores``; safe to delete.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ScoreStore", "digest", "metric_key"]

#: Part of every key, with the zoorank release: bumped whenever a metric's numbers change (v3: the tie rules of
#: ``zoorank.ranking``), so neither a new release nor such a change is served scores of other code.
_FORMAT = "zoorank-scores-v3"




def digest(*arrays: np.ndarray | None) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes (``None`` hashes as a marker)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def metric_key(metric: str, params: dict[str, Any], features: Sequence[str], logits: Sequence[str],
               general: Sequence[str] | None, labels: str, rows: str = "all") -> str:
    """The store key of ``metric`` over a zoo, from digests of each model's inputs; inputs the metric does not
    read are left out (so LEEP's key does not change when features do)."""
    from zoorank import metrics as M

    info = M.info(metric)
    from zoorank import __version__

    parts = [_FORMAT, __version__, metric, sorted(params.items()),
             list(features) if info.needs_features else "-",
             list(logits) if info.needs_source_probs else "-",
             list(general or []) if info.needs_general_features else "-",
             labels if info.needs_labels else "-", rows]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


class ScoreStore:
    """Score vectors by key, in memory and (``directory`` not None) on disk (module doc)."""

    def __init__(self, directory: str | Path | bool | None = True):
        if directory is True:  # the default: the user's score cache
            from zoorank.paths import scores_dir

            directory = scores_dir()
        self.directory = None if directory is None or directory is False else Path(directory)
        self.memory: dict[str, tuple[np.ndarray | None, float]] = {}

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> tuple[bool, np.ndarray | None, float]:
        """(hit, scores or None when the metric could not score the zoo, seconds the computation took)."""
        if key in self.memory:
            scores, seconds = self.memory[key]
            return True, scores, seconds
        if self.directory is not None:
            p = self._path(key)
            if p.is_file():
                try:
                    v = np.load(p, allow_pickle=False)
                except (OSError, ValueError):
                    return False, None, 0.0
                if v.ndim != 1 or v.size == 0:
                    return False, None, 0.0
                scores = None if v.size == 1 else v[1:]
                self.memory[key] = (scores, float(v[0]))
                return True, scores, float(v[0])
        return False, None, 0.0

    def put(self, key: str, scores: np.ndarray | None, seconds: float) -> None:
        value = None if scores is None else np.asarray(scores, dtype=np.float64)
        self.memory[key] = (value, float(seconds))
        if self.directory is not None:
            p = self._path(key)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + ".tmp.npy")
            row = np.concatenate([[float(seconds)], [] if value is None else value])
            np.save(tmp, row)
            tmp.replace(p)

    def score_zoo(self, metric: str, features: Sequence[np.ndarray], logits: Sequence[np.ndarray | None],
                  labels: np.ndarray | None, *, names: Sequence[str] | None = None) -> np.ndarray:
        """:func:`zoorank.metrics.score_zoo` through the store: the stored vector when the same inputs were scored
        before, else computed (and kept when finite). Raises what ``score_zoo`` raises."""
        from zoorank import metrics as M

        key = metric_key(metric, {}, [digest(f) for f in features], [digest(lg) for lg in logits], None,
                         "-" if labels is None else digest(labels))
        hit, scores, _ = self.get(key)
        if hit and scores is not None:
            return scores
        t0 = time.perf_counter()
        scores = M.score_zoo(metric, list(features), list(logits), labels, names=names)
        if np.isfinite(scores).all():
            self.put(key, scores, time.perf_counter() - t0)
        return scores
