"""Ranking quality against cost: the Pareto plot of a benchmark run (DESIGN.md).

Each method of a ``zoorank bench run --json`` file is one point: x = its mean zoo forward passes per target, y = its
mean weighted tau over the targets it scored (the same targets for every method, so the points are comparable:
by default the methods that skipped some target of the run are left out and named, :func:`complete_methods`;
with an explicit list of methods, only the targets all of them scored are used). Methods on the Pareto front
(no other method has at least its quality with at most its forward passes, better in one of the two) are joined
by a line and labelled in bold.

    python -m benchmarks.pareto --json benchmarks/zoobench/results.json --out docs/pareto
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoorank.errors import InputError

__all__ = ["Point", "complete_methods", "label_heights", "pareto_front", "pareto_plot", "points"]


@dataclass(frozen=True)
class Point:
    method: str
    forward_passes: float
    weighted_tau: float
    n_tasks: int


def complete_methods(records: Iterable) -> tuple[list[str], list[str]]:
    """(methods that scored every target of the run, methods that skipped some), in the records' order."""
    recs = list(records)
    targets = {r.task for r in recs}
    names = list(dict.fromkeys(r.method for r in recs))
    done = {m: {r.task for r in recs if r.method == m} for m in names}
    return [m for m in names if done[m] == targets], [m for m in names if done[m] != targets]


def points(records: Iterable, methods: Sequence[str] | None = None) -> list[Point]:
    """Mean forward passes and weighted tau per method over the targets that every chosen method scored."""
    recs = list(records)
    names = list(dict.fromkeys(r.method for r in recs)) if methods is None else list(methods)
    by = {m: {r.task: r for r in recs if r.method == m} for m in names}
    missing = [m for m in names if not by[m]]
    if missing:
        raise InputError(f"pareto: no records of {', '.join(missing)}")
    common = set.intersection(*(set(v) for v in by.values())) if by else set()
    if not common:
        raise InputError("pareto: the methods have no target in common")
    out = []
    for m in names:
        rs = [by[m][t] for t in sorted(common)]
        out.append(Point(m, float(np.mean([r.forward_passes for r in rs])),
                         float(np.mean([r.weighted_tau for r in rs])), len(rs)))
    return out


def pareto_front(pts: Sequence[Point]) -> list[Point]:
    """The points no other point dominates (fewer or equal passes and higher or equal tau, one strictly), by
    increasing forward passes."""
    front = [p for p in pts if not any(
        q.forward_passes <= p.forward_passes and q.weighted_tau >= p.weighted_tau
        and (q.forward_passes < p.forward_passes or q.weighted_tau > p.weighted_tau) for q in pts)]
    return sorted(front, key=lambda p: (p.forward_passes, -p.weighted_tau))


def label_heights(pts: Sequence[Point], gap: float, *, near: float = 6.0) -> list[float]:
    """Heights of the points' labels so that labels of points within ``near`` forward passes of each other are at
    least ``gap`` apart: each column of points is labelled from the top down, a label going below its point only
    when the one above pushes it."""
    by_x = sorted(range(len(pts)), key=lambda i: pts[i].forward_passes)
    columns: list[list[int]] = []
    for i in by_x:
        if columns and pts[i].forward_passes - pts[columns[-1][0]].forward_passes <= near:
            columns[-1].append(i)
        else:
            columns.append([i])
    heights = [p.weighted_tau for p in pts]
    for column in columns:
        above = None
        for i in sorted(column, key=lambda i: -pts[i].weighted_tau):
            if above is not None:
                heights[i] = min(pts[i].weighted_tau, heights[above] - gap)
            above = i
    return heights


def pareto_plot(pts: Sequence[Point], path: str | Path, *, title: str = "") -> list[Path]:
    """Draw the points and their front; writes ``path`` with ``.png`` and ``.svg``; returns the two paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not pts:
        raise InputError("pareto: nothing to plot")
    front = pareto_front(pts)
    on_front = {p.method for p in front}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    taus = [p.weighted_tau for p in pts]
    heights = label_heights(pts, 0.028 * max(max(taus) - min(min(taus), 0.0), 0.1))
    for p, h in zip(pts, heights, strict=True):
        kind = ("pipeline" if p.method.startswith("pipeline") else "learned"
                if p.method.split("@")[0].split(":")[0] in ("fennec", "spider", "metarank")
                else "baseline" if p.method.startswith("baseline") else "metric")
        colour = {"pipeline": "tab:red", "learned": "tab:blue", "baseline": "tab:gray", "metric": "tab:green"}[kind]
        ax.scatter(p.forward_passes, p.weighted_tau, color=colour, s=36 if p.method in on_front else 18, zorder=3)
        ax.annotate(p.method.replace("$", r"\$"), (p.forward_passes, p.weighted_tau), fontsize=7,
                    xytext=(p.forward_passes + 0.6, h), textcoords="data", va="center",
                    fontweight="bold" if p.method in on_front else "normal",
                    arrowprops={"arrowstyle": "-", "color": "0.7", "linewidth": 0.5} if h != p.weighted_tau else None)
    ax.plot([p.forward_passes for p in front], [p.weighted_tau for p in front], color="tab:red", linewidth=1,
            alpha=0.6, zorder=2, drawstyle="steps-post")
    ax.set_xlabel("zoo forward passes per target (mean)")
    ax.set_ylabel("weighted Kendall tau vs fine-tuned accuracy (mean)")
    n = pts[0].n_tasks
    ax.set_title(title or f"Ranking quality against cost ({n} targets; red = pipeline, blue = learned, "
                          f"green = metrics, grey = baselines)", fontsize=9)
    ax.grid(alpha=0.3)
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = [base.with_suffix(".png"), base.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.pareto``: the Pareto plot of a run, ranking quality against zoo forward passes."""
    import argparse
    import datetime as _dt
    import os

    from zoorank import evaluation as H
    from zoorank.evaluation import tables as T

    ap = argparse.ArgumentParser(prog="python -m benchmarks.pareto", description=main.__doc__)
    ap.add_argument("--json", dest="json_path", required=True, help="records written by zoorank bench run --json")
    ap.add_argument("--methods", default=None, help="comma-separated methods to plot (default: every method of the "
                                                      "file that scored all its targets)")
    ap.add_argument("--out", dest="out_path", default="pareto", help="plot file name (.png and .svg are written)")
    ap.add_argument("--write", dest="write_path", default=None, help="also write the 'pareto' section of this file")
    args = ap.parse_args(argv)
    records = H.read_json(args.json_path)
    partial: list[str] = []
    if args.methods:
        chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    else:
        chosen, partial = complete_methods(records)
        if not chosen:
            ap.error("every method of the file skipped some target: choose methods with --methods")
        if partial:
            print(f"left out (skipped some targets): {', '.join(partial)}")
    pts = points(records, chosen)
    files = pareto_plot(pts, args.out_path)
    front = {p.method for p in pareto_front(pts)}
    table = H.markdown_table(["method", "forward passes", "weighted tau", "front"],
                             [[p.method, f"{p.forward_passes:.1f}", f"{p.weighted_tau:.3f}",
                               "yes" if p.method in front else ""]
                              for p in sorted(pts, key=lambda p: (p.forward_passes, -p.weighted_tau))])
    print(table)
    print("wrote " + " and ".join(str(f) for f in files))
    if args.write_path:
        cmd = T.command_line("python -m benchmarks.pareto", list(argv) if argv is not None else None)
        link = os.path.relpath(files[0], Path(args.write_path).resolve().parent)
        left = "" if args.methods or not partial else f"Left out (skipped some targets): {', '.join(partial)}.\n\n"
        body = (f"## Ranking quality against forward passes (Pareto)\n\nCommand: `{cmd}`  \n"
                f"Measured {_dt.date.today().isoformat()}. Means over the {pts[0].n_tasks} targets every plotted "
                f"method scored; the front joins the methods no other beats on both axes.\n\n{left}"
                f"![pareto]({link})\n\n{table}\n")
        T.write_markdown_section(Path(args.write_path), "pareto", body)
        print(f"wrote {args.write_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
