"""How far the pipeline's fine stage can lift its coarse ranking at budget K: the headroom of ``pipeline@kK``.

At budget K the pipeline (:class:`zoorank.pipeline.Pipeline`) runs the K best models of its coarse ranking ``c``
and re-orders only them; the other models keep their coarse order. Whatever the fine stage does, its result is
therefore one of the K! orders of that block above the coarse rest. For each held-out target, with ``c`` the
coarse ranking of the rankers ``zoorank fit`` makes of the OTHER targets (``pipeline:k0``, the harness's
leave-one-target-out fold), this module scores:

- ``coarse``: ``c`` alone (budget 0);
- ``fine by <metric> @K``: the top K of ``c`` ordered by the metric, then the rest of ``c`` (the pipeline with
  that metric and no Spider re-ranking, as a knowledge base fit has none);
- ``oracle order @K``: the top K of ``c`` in the order of their true fine-tuned accuracies, then the rest: the
  ceiling of any fine stage on this coarse ranking and budget;
- ``oracle choice @K``: the K truly best models first, in true order, then the rest of ``c``: the ceiling of any
  choice of K models to run (a better coarse stage or an adaptive choice of what to run);
- ``oracle choice, <metric> order @K``: the K truly best models first, ordered by the metric, then the rest of
  ``c``: what the fine stage would make of the right K models;
- ``<metric> (whole zoo)``: the metric on every model (K = the zoo), the figure ``pipeline@k5`` must beat.

Every figure is the mean weighted tau (:func:`zoorank.ranking.weighted_tau`) over the targets. The oracle rows read
the held-out truth: they are bounds to compare against, not methods.

    python -m zoorank.bench.fine_ceiling --benchmark benchmarks/zoobench --budgets 3,5,10 --metric reg_hscore \\
        --write docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError

__all__ = ["block_first", "ceiling_rows", "collect", "main", "markdown"]


def block_first(base: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """Scores (higher = better) of the ranking: the ``k`` best models of ``base`` first, ordered by ``key`` (ties:
    by ``base``), then every other model in ``base`` order. ``k = 0`` gives ``base``'s ranking."""
    base = np.asarray(base, dtype=np.float64)
    key = np.asarray(key, dtype=np.float64)
    if base.ndim != 1 or key.shape != base.shape:
        raise InputError(f"block_first: base and key must be vectors of one length, got {base.shape} and {key.shape}")
    if not (np.isfinite(base).all() and np.isfinite(key).all()):
        raise InputError("block_first: scores contain NaN or inf")
    if not 0 <= k <= base.size:
        raise InputError(f"block_first: k must be in 0..{base.size}, got {k}")
    by_base = np.argsort(-base, kind="stable")
    top, rest = by_base[:k], by_base[k:]
    top = top[np.lexsort((-base[top], -key[top]))]
    order = np.concatenate([top, rest])
    scores = np.empty(base.size)
    scores[order] = -np.arange(base.size, dtype=np.float64)
    return scores


def ceiling_rows(coarse: dict[str, np.ndarray], metric: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 budgets: Sequence[int], metric_name: str) -> list[dict]:
    """One row per (row name, target): ``{"row", "task", "weighted_tau"}`` (module doc), over the targets that have
    a coarse ranking, the metric's scores and a truth."""
    tasks = [t for t in coarse if t in metric and t in truth]
    if not tasks:
        raise InputError("fine_ceiling: no target has a coarse ranking, the metric's scores and a truth")
    rows = []
    for t in tasks:
        c, m, y = (np.asarray(v, dtype=np.float64) for v in (coarse[t], metric[t], truth[t]))
        variants: list[tuple[str, np.ndarray]] = [("coarse", c)]
        for k in budgets:
            k = min(int(k), c.size)
            true_top = np.argsort(-y, kind="stable")[:k]
            lifted = c.copy()
            lifted[true_top] = c.max() + 1.0  # the true top K become the block that block_first re-orders
            variants += [(f"fine by {metric_name} @{k}", block_first(c, m, k)),
                         (f"oracle order @{k}", block_first(c, y, k)),
                         (f"oracle choice @{k}", block_first(lifted, y, k)),
                         (f"oracle choice, {metric_name} order @{k}", block_first(lifted, m, k))]
        variants.append((f"{metric_name} (whole zoo)", m))
        rows += [{"row": name, "task": t, "weighted_tau": float(R.weighted_tau(s, y))} for name, s in variants]
    return rows


class _Capture:
    """A harness method that records the scores another method returns, per task."""

    def __init__(self, method):
        self.method, self.name, self.scores_by_task = method, method.name, {}

    def scores(self, task, context):
        s = self.method.scores(task, context)
        self.scores_by_task[task] = np.asarray(s, dtype=np.float64)
        return s


def collect(bench, provider, *, metric: str, tasks: Sequence[str] | None = None,
            progress: Callable[[str, str], None] | None = None) -> tuple[dict, dict]:
    """(coarse scores, metric scores) per target from one leave-one-target-out harness run of ``pipeline:k0`` and
    the metric."""
    from zoorank.bench import harness as H
    from zoorank.bench.learned_pipeline import PipelineMethod

    coarse = _Capture(PipelineMethod("pipeline:k0", budget=0))
    scored = _Capture(H.MetricMethod(metric))
    H.run(bench, [coarse, scored], provider, tasks, progress=progress)
    return coarse.scores_by_task, scored.scores_by_task


def markdown(rows: Sequence[dict], *, command: str) -> str:
    names = list(dict.fromkeys(r["row"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = ["## ZooBench: the pipeline's headroom at budget K", "",
             f"Command: `{command}`  ",
             f"Mean weighted tau over {len(tasks)} held-out targets (leave-one-target-out: the coarse ranking comes "
             "from the rankers `zoorank fit` makes of the other targets). At budget K the fine stage can only re-order "
             "the coarse top K; *oracle order* is the best it could do, *oracle choice* the best any choice of K "
             "models to run could do (both read the held-out truth: bounds, not methods).", "",
             "| ranking | mean weighted tau | targets |", "| --- | ---: | ---: |"]
    for n in names:
        v = [r["weighted_tau"] for r in rows if r["row"] == n]
        lines.append(f"| {n} | {np.mean(v):.3f} | {len(v)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank.bench import harness as H
    from zoorank.bench.metric_speed import command_line, publish_section
    from zoorank.bench.zoobench.provider import ZooBenchProvider

    ap = argparse.ArgumentParser(prog="python -m zoorank.bench.fine_ceiling", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--budgets", default="3,5,10", help="comma-separated budgets K")
    ap.add_argument("--metric", default="reg_hscore", help="the metric of the fine stage and of the whole-zoo row")
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--write", default=None, help="Markdown file to write the section 'zoobench-headroom' into")
    args = ap.parse_args(argv)
    try:
        budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        ap.error(f"--budgets must be comma-separated integers, got {args.budgets!r}")
    if not budgets or min(budgets) < 1:
        ap.error("--budgets needs at least one budget >= 1")
    bench = H.load_benchmark(args.benchmark)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    coarse, metric = collect(bench, ZooBenchProvider(args.benchmark), metric=args.metric, tasks=tasks,
                             progress=lambda m, t: print(f"{m} {t}", file=sys.stderr, flush=True))
    truth = {t: bench.truth(t) for t in coarse}
    rows = ceiling_rows(coarse, metric, truth, budgets, args.metric)
    text = markdown(rows, command=command_line("python -m zoorank.bench.fine_ceiling", argv))
    publish_section(text, args.write, "zoobench-headroom")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
