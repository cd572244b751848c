"""The learning loop measured: ranking quality on held-out targets as the knowledge base grows.

For each step n, a fresh knowledge base receives the first n historical targets (a seeded order of the targets
that are not held out) exactly as a user's ``zoorank rank --kb`` + ``zoorank kb record`` would leave them: each
model (parameter count), each task (class and image counts, dataset card, the proxy encoder's summary and the
general encoder's task token), the metric scores of every zoo model on it (``metric:<name>``) and the fine-tuned
accuracies (``finetune_acc``). :func:`zoorank.pipeline.learn.fit_rankers` fits Fennec, Model Spider and MetaRank
from it (as ``zoorank fit`` does), and the pipeline ranks each held-out target; the table gives the mean weighted
tau of the merged ranking at budget K, of its coarse stage alone, and of each coarse ranker.

    python -m benchmarks.learning_curve --benchmark benchmarks/zoobench --held-out 4 --steps 2,4,8,14 \\
        --write docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.evaluation.history_kb import fill_kb

__all__ = ["fill_kb", "learning_curve", "main", "markdown"]

def learning_curve(bench, provider, *, held_out: Sequence[str], steps: Sequence[int], budget: int = 5,
                   seed: int = 0, kb_dir: str | Path, progress=None) -> list[dict]:
    """Rows ``{"n_tasks", "target", "method", "weighted_tau", "forward_passes"}`` (module doc)."""
    from zoorank.evaluation import TaskContext
    from zoorank.evaluation.adapters.pipeline import rank_in_context
    from zoorank.pipeline.learn import fit_rankers
    from zoorank.store import KnowledgeBase

    say = progress or (lambda _m: None)
    unknown = [t for t in held_out if t not in bench.tasks]
    if unknown:
        raise InputError(f"learning curve: unknown held-out target(s) {', '.join(unknown)}")
    history = [t for t in bench.tasks if t not in held_out]
    order = [history[i] for i in np.random.default_rng(seed).permutation(len(history))]
    bad = [n for n in steps if not 2 <= n <= len(order)]
    if bad:
        raise InputError(f"learning curve: steps must be between 2 and {len(order)} (the targets not held out), "
                         f"got {bad}")
    cache: dict = {}
    rows = []
    for n in steps:
        path = Path(kb_dir) / f"kb-{n}.sqlite"
        path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with KnowledgeBase(path) as kb:
            fill_kb(kb, bench, provider, order[:n], cache=cache)
            rankers = fit_rankers(kb)
        say(f"{n} tasks: rankers fitted in {time.perf_counter() - t0:.0f} s "
            f"({', '.join(sorted(rankers.skipped)) or 'none'} skipped)")
        where = {m: i for i, m in enumerate(rankers.models)}
        perm = [where[m] for m in bench.models]
        for target in held_out:
            truth = bench.truth(target)
            res, scores = rank_in_context(rankers, TaskContext(target, bench, provider), budget=budget)
            named = {f"pipeline@k{budget}": scores}
            if res.coarse_merged is not None:
                named["coarse"] = np.asarray(res.coarse_merged)[perm]
            named.update({f"coarse:{k}": np.asarray(v)[perm] for k, v in res.coarse.items()})
            for method, s in named.items():
                rows.append({"n_tasks": n, "target": target, "method": method,
                             "weighted_tau": float(R.weighted_tau(s, truth)),
                             "forward_passes": res.forward_passes if method.startswith("pipeline") else 0})
    return rows


def markdown(rows: Sequence[dict], *, command: str, held_out: Sequence[str]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    steps = sorted({r["n_tasks"] for r in rows})
    lines = ["## Learning curve: ranking quality as the knowledge base grows", "",
             f"Command: `{command}`  ",
             f"Held-out targets: {', '.join(held_out)}. Each column: mean weighted tau over them, with the rankers "
             "fitted (`zoorank fit`) from a knowledge base holding the first n other targets (seeded order).", "",
             "| n historical tasks | " + " | ".join(methods) + " |",
             "| ---: | " + " | ".join("---:" for _ in methods) + " |"]
    for n in steps:
        cells = []
        for m in methods:
            v = [r["weighted_tau"] for r in rows if r["n_tasks"] == n and r["method"] == m]
            cells.append(f"{np.mean(v):.3f}" if v else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.learning_curve", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--held-out", default="4", help="comma-separated targets, or a count (the last N targets)")
    ap.add_argument("--steps", default="2,4,8", help="numbers of historical tasks")
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--kb-dir", default=None, help="where the knowledge bases go (default: a temporary folder)")
    ap.add_argument("--write", default=None, help="Markdown file to write the section 'learning-curve' into")
    args = ap.parse_args(argv)
    bench = H.load_benchmark(args.benchmark)
    held = (list(bench.tasks[-int(args.held_out):]) if args.held_out.isdigit()
            else [t.strip() for t in args.held_out.split(",") if t.strip()])
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = learning_curve(bench, ZooBenchProvider(args.benchmark), held_out=held, steps=steps,
                              budget=args.budget, kb_dir=args.kb_dir or tmp,
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    text = markdown(rows, command=command_line("python -m benchmarks.learning_curve", argv), held_out=held)
    publish_section(text, args.write, "learning-curve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
