"""Trivial baselines the real ranking methods must beat . None needs a forward pass.

- ``baseline:random`` — uniformly random scores, ``draws`` independent draws (default 100) from a
  generator seeded by ``(seed, crc32(task))``; the harness reports the MEAN quality over the draws
  (the expected weighted tau / Pearson / top-1 regret of picking a ranking at random), so the record
  is deterministic and not the luck of one draw.
- ``baseline:params`` — log10 of the parameter count ("bigger is better"; the log only matters for
  Pearson).
- ``baseline:popularity`` — each model's mean ground-truth accuracy (same kind as the evaluation's
  truth) on the OTHER targets (leave-one-target-out; skipped when there is no other target).
- ``baseline:source_match`` — 1 when the model's ``source_domain`` (zoo.csv) equals the target's
  ``domain`` (tasks.csv, case-insensitive), else 0; ties stay ties (weighted tau 0 when no model
  matches). Skipped for targets that declare no domain.
"""

from __future__ import annotations

import zlib

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation import MethodSkipped, TaskContext
from zoorank.evaluation.registry import register_method

__all__ = ["ParamsBaseline", "PopularityBaseline", "RandomBaseline", "SourceMatchBaseline"]


@register_method("baseline:random")
class RandomBaseline:
    """Random scores: ``draws`` rows of U(0, 1) per model, seeded by (seed, task name)."""

    name = "baseline:random"

    def __init__(self, seed: int = 0, draws: int = 100):
        if not isinstance(draws, int) or draws < 1:
            raise InputError(f"baseline:random: draws must be a positive integer, got {draws!r}")
        self.seed = int(seed)
        self.draws = draws

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(task.encode("utf-8"))])
        return rng.random((self.draws, len(context.models)))


@register_method("baseline:params")
class ParamsBaseline:
    """log10(parameter count): bigger is better."""

    name = "baseline:params"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        p = np.array([context.zoo[m].params for m in context.models], dtype=np.float64)
        return np.log10(np.maximum(p, 1.0))


@register_method("baseline:popularity")
class PopularityBaseline:
    """Mean accuracy of each model on the other targets (leave-one-target-out)."""

    name = "baseline:popularity"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        if not context.history.tasks:
            raise MethodSkipped("popularity needs at least one other target")
        return context.history.matrix(context.truth_kind).mean(axis=0)


@register_method("baseline:source_match")
class SourceMatchBaseline:
    """1 if the model was pre-trained on the target's declared domain, else 0."""

    name = "baseline:source_match"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        domain = context.task_info.domain
        if not domain:
            raise MethodSkipped("the target declares no domain (tasks.csv)")
        d = domain.strip().casefold()
        return np.array([float(context.zoo[m].source_domain.strip().casefold() == d) for m in context.models])
