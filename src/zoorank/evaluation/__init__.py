"""Evaluation of ranking methods on a benchmark directory, leave one target out (the harness of ZooBench).

- :mod:`.benchmark` — a benchmark directory (``ground_truth.csv``, ``zoo.csv``, ``tasks.csv``) loaded and checked;
- :mod:`.context` — what a method sees on a held-out target: counted feature accessors and a leakage-checked view
  of the other targets' history;
- :mod:`.registry` — method names (``@register_method``), :func:`make_methods`;
- :mod:`.adapters` — the metrics, the baselines and the learned rankers as harness methods;
- :mod:`.runner` — the resumable run loop; :mod:`.records` — records and JSON; :mod:`.tables` — Markdown.

Nothing here knows ZooBench: its loader and generators are :mod:`zoorank.datasets.zoobench`.
"""

from zoorank.evaluation.benchmark import (
    GROUND_TRUTH_COLUMNS,
    TRUTH_KINDS,
    Benchmark,
    TaskInfo,
    ZooEntry,
    discrimination,
    discrimination_problems,
    load_benchmark,
)
from zoorank.evaluation.context import FeatureProvider, HistoryView, LeakageError, MethodSkipped, TaskContext
from zoorank.evaluation.records import (
    RECORD_KEYS,
    REPRODUCE_TOL,
    Record,
    RunResult,
    Skip,
    Summary,
    compare_records,
    read_json,
    summary,
    write_json,
)
from zoorank.evaluation.registry import (
    Method,
    available_methods,
    make_methods,
    register_method,
    register_variants,
    unregister_method,
)
from zoorank.evaluation.runner import Checkpoint, run
from zoorank.evaluation.tables import discrimination_markdown, markdown, markdown_table

__all__ = [
    "GROUND_TRUTH_COLUMNS",
    "RECORD_KEYS",
    "REPRODUCE_TOL",
    "TRUTH_KINDS",
    "Benchmark",
    "Checkpoint",
    "FeatureProvider",
    "HistoryView",
    "LeakageError",
    "Method",
    "MethodSkipped",
    "Record",
    "RunResult",
    "Skip",
    "Summary",
    "TaskContext",
    "TaskInfo",
    "ZooEntry",
    "available_methods",
    "compare_records",
    "discrimination",
    "discrimination_markdown",
    "discrimination_problems",
    "load_benchmark",
    "make_methods",
    "markdown",
    "markdown_table",
    "read_json",
    "register_method",
    "register_variants",
    "run",
    "summary",
    "unregister_method",
    "write_json",
]


def __getattr__(name: str):
    if name == "MetricMethod":  # the metrics as methods (imports the metric library on first use)
        from zoorank.evaluation.adapters.metrics import MetricMethod

        return MetricMethod
    raise AttributeError(f"module 'zoorank.evaluation' has no attribute {name!r}")
