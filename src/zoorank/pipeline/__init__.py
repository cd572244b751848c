"""The end-to-end rank job (DESIGN.md, "The pipeline zoorank adds"): :class:`Pipeline` joins Fennec, Model Spider
and MetaRank with the metrics of :mod:`zoorank.metrics`; see :mod:`zoorank.pipeline.core`."""

from zoorank.pipeline.core import (
    LABEL_FREE_METRICS,
    Pipeline,
    PipelineResult,
    Stage,
    TaskSource,
    normalised_rank,
    parse_budget,
    rank_merge,
)

__all__ = ["LABEL_FREE_METRICS", "Pipeline", "PipelineResult", "Stage", "TaskSource", "normalised_rank",
           "parse_budget", "rank_merge"]
