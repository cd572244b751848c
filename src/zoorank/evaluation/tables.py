"""Markdown tables of run records, and the marked sections of ``docs/BENCHMARKS.md`` they are published in.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

from zoorank.errors import InputError
from zoorank.evaluation.records import Record, Skip, summary


def _cell(v: float | None, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
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
    parts.append(markdown_table(header, body))
    parts.append("\n\n### Summary (means over targets)\n")
    images = any(math.isfinite(s.image_passes) for s in summ)
    parts.append(markdown_table(
        ["method", "targets", "weighted tau", "pearson", "top-1 regret (points)", "forward passes / target",
         *(["images passed / target"] if images else []), "seconds / target"],
        [[s.method, str(s.n_tasks), _cell(s.weighted_tau, digits), _cell(s.pearson, digits),
          f"{100 * s.top1_regret:.1f}", f"{s.forward_passes:.0f}",
          *([f"{s.image_passes:.0f}" if math.isfinite(s.image_passes) else "-"] if images else []),
          f"{s.seconds:.3g}"] for s in summ],
    ))
    if skipped:
        parts.append("\n\n### Skipped\n")
        parts.append(markdown_table(["method", "target", "reason"],
                            [[s.method, s.task, s.reason.replace("|", "/")] for s in skipped], right_from=3))
    return "".join(parts) + "\n"



def discrimination_markdown(report: dict, digits: int = 2) -> str:
    """Markdown rendering of a :func:`discrimination` report: one row per target, then the aggregates."""
    rows = [[t, v["best_model"], f"{v['spread_points']:.1f}", f"{100 * v['worst_acc']:.1f}",
             f"{100 * v['best_acc']:.1f}", f"{v['params_spearman']:.{digits}f}"] for t, v in report["per_task"].items()]
    mk = report["mean_pairwise_kendall"]
    lines = [
        f"### Does the benchmark discriminate? ({report['kind']}, {report['n_models']} models, "
        f"{report['n_tasks']} targets)\n",
        markdown_table(["target", "best model", "spread (points)", "worst (%)", "best (%)", "Spearman(params, acc)"],
               rows, right_from=2),
        "",
        f"- median spread across models: {report['median_spread_points']:.1f} points",
        f"- mean pairwise Kendall tau between targets' rankings: {'–' if mk is None else f'{mk:.{digits}f}'}",
        f"- mean Spearman(params, accuracy): {report['mean_params_spearman']:.{digits}f}",
        f"- distinct best models: {report['distinct_best_models']} over {report['n_tasks']} targets",
    ]
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    import numpy
    import scipy
    import sklearn

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version', '')}".strip()
                                 for i in threadpool_info() if i["user_api"] == "blas"}))
    except Exception:  # pragma: no cover - informational only
        blas = "?"

    return (f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"scikit-learn {sklearn.__version__}, BLAS {blas}, {os.cpu_count()} CPU cores")


def write_markdown_section(path: Path, marker: str, body: str) -> None:
    """Replace the text between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in ``path``
    (appending the section when absent); the rest of the file is kept."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def command_line(prog: str, argv: list[str] | None) -> str:
    """The command a report was made by (``argv``: the arguments given, or None for ``sys.argv``)."""
    import shlex

    return f"{prog} " + shlex.join(argv if argv is not None else sys.argv[1:])


def publish_section(text: str, write: str | Path | None, marker: str) -> None:
    """Print a report section and, with ``write``, put it between ``marker``'s comments in that Markdown file."""
    print(text)
    if write:
        write_markdown_section(Path(write), marker, text)
