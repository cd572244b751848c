"""The belief ranker as the knowledge base grows, and how honest its intervals are (leave one target out).

For every target of the benchmark and every step n: a fresh knowledge base receives the first n of the OTHER
targets (a seeded order per target) as ``zoorank rank --kb`` + ``zoorank kb record`` would leave them
(:func:`zoorank.evaluation.history_kb.fill_kb`: counts, card, proxy vector, the belief ranker's stacked
metrics' scores of every zoo model on the whole probe and on a quarter of it, the fine-tuned accuracies);
``zoorank fit`` fits the belief ranker from it (:func:`zoorank.pipeline.learn.fit_rankers`), and ``zoorank
rank``'s job ranks the target twice: with no forward pass (``rank:coarse``, the prior) and with the default plan
(``rank:default``: every model on a quarter of the probe). Reported per n: mean weighted tau and top-1 regret
over the targets, and the share of the target's true accuracies inside the nominal 80 % interval (calibration:
70-90 % is the goal). The popularity prior of the same n tasks (their mean accuracy) is the baseline, measured
on the same histories.

    python -m benchmarks.belief_curve --benchmark benchmarks/zoobench --steps 2,4,8,12,18 --write docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.evaluation.tables import markdown_table

__all__ = ["belief_curve", "main", "markdown"]

SECTION = "belief-curve"


def belief_curve(bench, provider, *, steps: Sequence[int], seed: int = 0, kb_dir: str | Path,
                 targets: Sequence[str] | None = None, progress=None) -> list[dict]:
    """Rows ``{"n_tasks", "target", "method", "weighted_tau", "top1_regret", "coverage"}`` (module doc)."""
    from zoorank.evaluation import TaskContext
    from zoorank.evaluation.adapters.pipeline import ContextTask
    from zoorank.evaluation.history_kb import fill_kb
    from zoorank.methods.belief import STACK_METRICS
    from zoorank.pipeline.belief_job import DEFAULT_PLAN, BeliefJob, Plan
    from zoorank.pipeline.learn import fit_rankers
    from zoorank.store import KnowledgeBase

    say = progress or (lambda _m: None)
    targets = list(bench.tasks if targets is None else targets)
    bad = [n for n in steps if not 2 <= n <= len(bench.tasks) - 1]
    if bad:
        raise InputError(f"belief curve: steps must be between 2 and {len(bench.tasks) - 1}, got {bad}")
    cache: dict = {}
    rows = []
    for j, target in enumerate(targets):
        others = [t for t in bench.tasks if t != target]
        order = [others[i] for i in np.random.default_rng([seed, j]).permutation(len(others))]
        truth = bench.truth(target)
        t0 = time.perf_counter()
        for n in steps:
            path = Path(kb_dir) / f"kb-{j}-{n}.sqlite"
            path.unlink(missing_ok=True)
            with KnowledgeBase(path) as kb:
                fill_kb(kb, bench, provider, order[:n], cache=cache, metrics=STACK_METRICS)
                rankers = fit_rankers(kb, only=("belief",))
            path.unlink(missing_ok=True)
            where = [rankers.models.index(m) for m in bench.models]
            popularity = np.array([bench.truth(t) for t in order[:n]]).mean(axis=0)
            rows.append({"n_tasks": n, "target": target, "method": "baseline:popularity",
                         "weighted_tau": float(R.weighted_tau(popularity, truth)),
                         "top1_regret": float(R.top1_regret(popularity, truth)), "coverage": float("nan")})
            for method, plan in (("rank:coarse", Plan(1.0, 0)), ("rank:default", DEFAULT_PLAN)):
                context = TaskContext(target, bench, provider)
                res = BeliefJob(rankers.models, rankers.belief, plan=plan).run(ContextTask(context, rankers.models))
                mean, low, high = (np.asarray(v)[where] for v in (res.scores, res.low, res.high))
                rows.append({"n_tasks": n, "target": target, "method": method,
                             "weighted_tau": float(R.weighted_tau(mean, truth)),
                             "top1_regret": float(R.top1_regret(mean, truth)),
                             "coverage": float(np.mean((truth >= low) & (truth <= high)))})
        say(f"{target}: {time.perf_counter() - t0:.0f} s")
    return rows


def markdown(rows: Sequence[dict], *, command: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    steps = sorted({r["n_tasks"] for r in rows})
    n_targets = len({r["target"] for r in rows})

    def mean(n, m, key):
        v = [r[key] for r in rows if r["n_tasks"] == n and r["method"] == m]
        return float(np.mean(v)) if v else float("nan")

    body = []
    for n in steps:
        cells = []
        for m in methods:
            cov = mean(n, m, "coverage")
            cells.append(f"{mean(n, m, 'weighted_tau'):.3f} / {100 * mean(n, m, 'top1_regret'):.1f}"
                         + ("" if np.isnan(cov) else f" / {100 * cov:.0f} %"))
        body.append([str(n), *cells])
    lines = ["## The belief ranker as the knowledge base grows", "", f"Command: `{command}`  ",
             f"Leave one target out over {n_targets} targets; module doc of `benchmarks.belief_curve`. Cells: mean "
             "weighted tau / top-1 regret (points) / share of the true accuracies inside the 80 % interval.", "",
             markdown_table(["n historical tasks", *methods], body, right_from=0)]
    first, last = steps[0], steps[-1]
    lines += ["", "Rise from " + f"{first} to {last} tasks: " + ", ".join(
        f"{m} {mean(last, m, 'weighted_tau') - mean(first, m, 'weighted_tau'):+.3f}" for m in methods) + "."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.belief_curve", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--steps", default="2,4,8,12,18", help="numbers of historical tasks")
    ap.add_argument("--targets", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", default=None, help=f"Markdown file to write the section '{SECTION}' into")
    args = ap.parse_args(argv)
    bench = H.load_benchmark(args.benchmark)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    with tempfile.TemporaryDirectory() as tmp:
        rows = belief_curve(bench, ZooBenchProvider(args.benchmark), steps=steps, seed=args.seed, kb_dir=tmp,
                            targets=targets, progress=lambda m: print(m, file=sys.stderr, flush=True))
    text = markdown(rows, command=command_line("python -m benchmarks.belief_curve", argv))
    publish_section(text, args.write, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
