"""The named sets of metrics the rankers and the pipeline use, each defined once.

- :data:`SPIDER_SUPERVISION` — the metrics whose Copeland aggregation supervises Model Spider (appendix A.4 of
  Zhang et al., NeurIPS 2023: NCE, LEEP, LogME, H-Score);
- :data:`LABEL_FREE` — the metrics a run without labels may use (ETran's energy score);
- :func:`fine_stage_candidates` — the metrics the pipeline's fine stage may use, in fallback order (every
  registered metric, LogME first: the most used metric of the papers; a fitted MetaRank re-orders them);
- :data:`RECORDED` — what a ranked task records into the knowledge base (Fennec's FDA, Spider's four and
  MetaRank's candidates), on the models that ran: ``zoorank rank --kb`` and the benchmark's history alike.

:func:`first_usable` is the one "try these metrics in order, keep the first that scores every model" loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from zoorank.errors import InputError

__all__ = [
    "FALLBACK_FIRST",
    "LABEL_FREE",
    "NOT_YET_BENCHMARKED",
    "RECORDED",
    "SPIDER_SUPERVISION",
    "FirstUsable",
    "benchmarked_metrics",
    "fine_stage_candidates",
    "first_usable",
]

SPIDER_SUPERVISION = ("nce", "leep", "logme", "hscore")
LABEL_FREE = ("energy",)
FALLBACK_FIRST = "logme"
RECORDED = ("fda", "nce", "leep", "logme", "hscore", "sfda", "nleep", "gbc", "transrate", "parc", "lfc", "ncti",
            "etran", "energy", "reg_hscore")


#: Registered metrics the committed benchmark runs (``benchmarks/zoobench/results*.json``) do not hold yet: left out
#: of ``all`` in the harness, of MetaRank's default meta-dataset, of the fine stage's candidates and of the demo
#: until those runs are regenerated with them (they stay available by name everywhere).
NOT_YET_BENCHMARKED = ("knn",)


def benchmarked_metrics() -> list[str]:
    """Every registered metric except :data:`NOT_YET_BENCHMARKED`, sorted."""
    from zoorank import metrics as M

    return [m for m in M.available() if m not in NOT_YET_BENCHMARKED]


def fine_stage_candidates() -> list[str]:
    """Every registered metric, :data:`FALLBACK_FIRST` first, the rest in registry order."""
    names = benchmarked_metrics()
    return [FALLBACK_FIRST, *[m for m in names if m != FALLBACK_FIRST]] if FALLBACK_FIRST in names else names


@dataclass
class FirstUsable:
    """The outcome of :func:`first_usable`: the metric used (None if none could), its scores, and why each metric
    before it was passed over."""

    metric: str | None
    scores: np.ndarray | None
    problems: list[str] = field(default_factory=list)


def first_usable(order: Iterable[str], score: Callable[[str], np.ndarray],
                 skip: tuple[type[BaseException], ...] = (InputError,)) -> FirstUsable:
    """Call ``score(metric)`` along ``order``; a metric that raises one of ``skip`` (a missing input, the metric's
    own complaint) or returns a non-finite score is passed over with its reason; the first finite score vector
    wins."""
    problems: list[str] = []
    for metric in order:
        try:
            s = np.asarray(score(metric), dtype=np.float64)
        except skip as exc:
            problems.append(f"{metric}: {exc}" if not str(exc).startswith(metric) else str(exc))
            continue
        if not np.isfinite(s).all():
            problems.append(f"{metric}: non-finite scores")
            continue
        return FirstUsable(metric, s, problems)
    return FirstUsable(None, None, problems)
