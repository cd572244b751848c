"""How far the pipeline's fine stage can lift its coarse ranking at budget K: the headroom of ``pipeline@kK``.

At budget K the pipeline (:class:`zoorank.pipeline.Pipeline`) runs the K best models of its coarse ranking ``c``
and re-orders only them; the other models keep their coarse order. Whatever the fine stage does, its result is
therefore one of the K! orders of that block above the coarse rest. For each held-out target, with ``c`` the
coarse ranking of the rankers ``zoorank fit`` makes of the OTHER targets (``pipeline:k0``, the harness's
leave-one-target-out fold), this module scores:

- ``coarse``: ``c`` alone (budget 0);
- ``fine by <metric> @K``: the top K of ``c`` ordered by the metric, then the rest of ``c`` (the pipeline with
  that metric and no Spider re-ranking, as a knowledge base fit has none);
- ``coarse top K in true order``: the top K of ``c`` in the order of their true fine-tuned accuracies, then the
  rest: what a perfect fine stage would make of this coarse ranking and budget;
- ``true top K first, true order``: the K truly best models first, in true order, then the rest of ``c``: what
  running the right K models (a better coarse stage, or an adaptive choice of what to run) would give with a
  perfect fine stage (not a maximum: another choice of K can score higher under the rank weights);
- ``true top K first, <metric> order``: the same K models ordered by the metric: what the fine stage as it is
  would make of the right K models;
Every figure is the mean weighted tau (:func:`zoorank.ranking.weighted_tau`) over the targets. The rows that name the
truth read the held-out accuracies: they are references to compare against, not methods. Ties are kept as the
pipeline keeps them (:func:`block_first`). Pool-relative metrics (ETran, NCTI), which the pipeline scores within
the top K, are refused.

    python -m benchmarks.fine_ceiling --benchmark benchmarks/zoobench --budgets 3,5,10 --metric reg_hscore \\
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


def block_first(base: np.ndarray, key: np.ndarray, k: int, order: Sequence[int] | None = None) -> np.ndarray:
    """Scores (higher = better) as :meth:`zoorank.pipeline.Pipeline.run` merges them at budget ``k``: the ``k``
    best models of ``base`` (ties picked in ``order``, default index order: the pipeline picks in its rankers'
    model order) score above every other, ordered by the normalised rank of ``key`` among them (ties: by
    ``base``); every other model keeps its ``base`` score, ties included. ``k = 0`` returns ``base``."""
    from zoorank.pipeline import normalised_rank

    base = np.asarray(base, dtype=np.float64)
    key = np.asarray(key, dtype=np.float64)
    if base.ndim != 1 or key.shape != base.shape:
        raise InputError(f"block_first: base and key must be vectors of one length, got {base.shape} and {key.shape}")
    if not (np.isfinite(base).all() and np.isfinite(key).all()):
        raise InputError("block_first: scores contain NaN or inf")
    if not 0 <= k <= base.size:
        raise InputError(f"block_first: k must be in 0..{base.size}, got {k}")
    idx = np.arange(base.size) if order is None else np.asarray(order)
    if idx.shape != base.shape or not np.array_equal(np.sort(idx), np.arange(base.size)):
        raise InputError(f"block_first: order must be a permutation of 0..{base.size - 1}")
    scores = base.copy()
    if k:
        top = idx[np.argsort(-base[idx], kind="stable")[:k]]
        span = float(base.max() - base.min())
        tie = 1e-6 * (base[top] - base.min()) / span if span > 0 else 0.0
        scores[top] = base.max() + 1.0 + normalised_rank(key[top]) + tie
    return scores


def ceiling_rows(coarse: dict[str, np.ndarray], metric: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 budgets: Sequence[int], metric_name: str, orders: dict[str, Sequence[int]] | None = None
                 ) -> list[dict]:
    """One row per (row name, target): ``{"row", "task", "weighted_tau"}`` (module doc), over the targets that have
    a coarse ranking, the metric's scores and a truth; ``orders[task]``: the order in which the pipeline picks
    among tied coarse scores (:func:`block_first`)."""
    tasks = [t for t in coarse if t in metric and t in truth]
    if not tasks:
        raise InputError("fine_ceiling: no target has a coarse ranking, the metric's scores and a truth")
    rows = []
    for t in tasks:
        c, m, y = (np.asarray(v, dtype=np.float64) for v in (coarse[t], metric[t], truth[t]))
        order = (orders or {}).get(t)
        variants: list[tuple[str, np.ndarray]] = [("coarse", c)]
        for k in budgets:
            k = min(int(k), c.size)
            true_top = np.argsort(-y, kind="stable")[:k]  # tied truths at place K: the first in index order
            lifted = c.copy()  # the true top K lifted above the rest, in their coarse order among themselves
            lifted[true_top] = c[true_top] + (c.max() - c.min() + 1.0)
            variants += [(f"fine by {metric_name} @{k}", block_first(c, m, k, order)),
                         (f"coarse top {k} in true order", block_first(c, y, k, order)),
                         (f"true top {k} first, true order", block_first(lifted, y, k, order)),
                         (f"true top {k} first, {metric_name} order", block_first(lifted, m, k, order))]
        variants.append((f"{metric_name} (whole zoo)", m))
        rows += [{"row": name, "task": t, "weighted_tau": float(R.weighted_tau(s, y))} for name, s in variants]
    return rows


class _Capture:
    """A harness method that records the scores another method returns, per task (and, for the pipeline, the
    order in which it picks among tied coarse scores: its rankers' model order, as context indices)."""

    def __init__(self, method):
        self.method, self.name, self.scores_by_task, self.orders = method, method.name, {}, {}

    def scores(self, task, context):
        s = self.method.scores(task, context)
        self.scores_by_task[task] = np.asarray(s, dtype=np.float64)
        last = getattr(self.method, "last", None)
        if last is not None:
            where = {m: i for i, m in enumerate(context.models)}
            self.orders[task] = [where[m] for m in last.models]
        return s


def collect(bench, provider, *, metric: str, tasks: Sequence[str] | None = None,
            progress: Callable[[str, str], None] | None = None) -> tuple[dict, dict, dict]:
    """(coarse scores, metric scores, the pipeline's tie orders) per target from one leave-one-target-out harness
    run of ``pipeline:k0`` and the metric; a target either skips is reported on stderr and left out."""
    from zoorank import evaluation as H
    from zoorank import metrics as M
    from zoorank.evaluation.adapters.pipeline import PipelineMethod

    if M.info(metric).pool_func is not None:
        raise InputError(f"fine_ceiling: {metric} is pool-relative (the pipeline scores it within the top K, not "
                         f"on the whole zoo); choose a per-model metric")
    coarse = _Capture(PipelineMethod("pipeline:k0", budget=0))
    scored = _Capture(H.MetricMethod(metric))
    result = H.run(bench, [coarse, scored], provider, tasks, errors="raise", progress=progress)
    for skip in result.skipped:
        print(f"skipped {skip.method} on {skip.task}: {skip.reason}", file=sys.stderr)
    return coarse.scores_by_task, scored.scores_by_task, coarse.orders


def markdown(rows: Sequence[dict], *, command: str) -> str:
    names = list(dict.fromkeys(r["row"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = ["## ZooBench: the pipeline's headroom at budget K", "",
             f"Command: `{command}`  ",
             f"Mean weighted tau over {len(tasks)} held-out targets (leave-one-target-out: the coarse ranking comes "
             "from the rankers `zoorank fit` makes of the other targets). At budget K the fine stage can only re-order "
             "the coarse top K. Rows that name the truth read the held-out accuracies: references, not methods "
             "(the module doc of `benchmarks.fine_ceiling` defines each row).", "",
             "| ranking | mean weighted tau | targets |", "| --- | ---: | ---: |"]
    for n in names:
        v = [r["weighted_tau"] for r in rows if r["row"] == n]
        lines.append(f"| {n} | {np.mean(v):.3f} | {len(v)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.fine_ceiling", description=__doc__.split("\n")[0])
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
    coarse, metric, orders = collect(bench, ZooBenchProvider(args.benchmark), metric=args.metric, tasks=tasks,
                                     progress=lambda m, t: print(f"{m} {t}", file=sys.stderr, flush=True))
    truth = {t: bench.truth(t) for t in coarse}
    rows = ceiling_rows(coarse, metric, truth, budgets, args.metric, orders)
    text = markdown(rows, command=command_line("python -m benchmarks.fine_ceiling", argv))
    publish_section(text, args.write, "zoobench-headroom")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
