"""The README's demo: the pipeline on a ZooBench target its rankers never learned from, next to the truth.

``fit`` (run once, its output committed under ``benchmarks/zoobench/demo/``) fills a knowledge base with every
ZooBench target but the demo target — as ``zoorank rank --kb`` and ``zoorank kb record`` would have left it — and
fits Fennec, Model Spider and MetaRank from it with :func:`zoorank.pipeline.learn.fit_rankers` (``zoorank fit``).
``run`` (``zoorank demo``) loads those rankers, ranks the zoo for the demo target with a budget of K forward passes,
prints the ranking beside the true fine-tuned accuracies (``ground_truth.csv``), the ranking's weighted tau and the
cost of every stage, and writes the HTML report.

    python -m zoorank.bench.zoobench.demo fit [--target hebrew_letters]
    zoorank demo
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank.bench.zoobench import build as B
from zoorank.errors import InputError

__all__ = ["DEMO_DIR", "DEMO_TARGET", "available", "fit", "run"]

DEMO_TARGET = "hebrew_letters"
DEMO_DIR = B.DEFAULT_DIR / "demo"


def available(root: Path = B.DEFAULT_DIR, rankers: Path = DEMO_DIR) -> bool:
    """True when ZooBench's ground truth and the demo's fitted rankers are there."""
    return (root / "ground_truth.csv").is_file() and (rankers / "rankers.json").is_file()


def fit(root: Path = B.DEFAULT_DIR, target: str = DEMO_TARGET, out: Path = DEMO_DIR, progress=None) -> Path:
    """Fit the demo's rankers on every ZooBench target but ``target`` through a knowledge base (module doc)."""
    from zoorank.bench import harness as H
    from zoorank.bench.learning_curve import fill_kb
    from zoorank.bench.zoobench.provider import ZooBenchProvider
    from zoorank.pipeline.learn import fit_rankers
    from zoorank.store import KnowledgeBase

    bench = H.load_benchmark(root)
    bench.task_index(target)
    history = [t for t in bench.tasks if t != target]
    with tempfile.TemporaryDirectory() as tmp, KnowledgeBase(Path(tmp) / "kb.sqlite") as kb:
        fill_kb(kb, bench, ZooBenchProvider(root), history)
        rankers = fit_rankers(kb, progress=progress)
    rankers.info.update(held_out=target, history=history)
    return rankers.save(out)


def run(root: Path = B.DEFAULT_DIR, rankers_dir: Path = DEMO_DIR, *, budget: int = 5,
        report: str | Path | None = "zoorank-demo.html", show=None) -> dict:
    """Rank the demo target (module doc); returns the pipeline's result dict with the truth's figures."""
    from zoorank import ranking as R
    from zoorank.bench import harness as H
    from zoorank.bench.harness import TaskContext
    from zoorank.bench.learned_pipeline import rank_in_context
    from zoorank.bench.zoobench.provider import ZooBenchProvider
    from zoorank.pipeline.learn import Rankers

    rankers = Rankers.load(rankers_dir)
    target = rankers.info.get("held_out")
    bench = H.load_benchmark(root)
    if target not in bench.tasks:
        raise InputError(f"the demo rankers were fitted for target {target!r}, which ZooBench does not have")
    if target in rankers.info.get("history", []):
        raise InputError(f"the demo rankers learned from {target!r}: refit them (python -m "
                         f"zoorank.bench.zoobench.demo fit)")
    if sorted(rankers.models) != sorted(bench.models):
        raise InputError("the demo rankers were fitted on another zoo: refit them")
    result, _ = rank_in_context(rankers, TaskContext(target, bench, ZooBenchProvider(root)), budget=budget)
    truth_vec = bench.truth(target)
    truth = {m: float(truth_vec[bench.models.index(m)]) for m in rankers.models}
    t = np.array([truth[m] for m in rankers.models])
    figures = {"target": target, "weighted_tau": float(R.weighted_tau(result.scores, t)),
               "top1_regret": float(R.top1_regret(result.scores, t)), "best_model": max(truth, key=truth.get),
               "picked": result.ranking[0], "zoo": len(rankers.models)}
    if show is not None:
        show(result, truth, figures, bench.task_info[target].description)
    if report:
        from zoorank.report.html import write_html

        write_html(result, report, title=f"zoorank demo: {target} (ZooBench)", truth=truth)
        figures["report"] = str(report)
    return {"result": result, "truth": truth, "figures": figures}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zoorank.bench.zoobench.demo", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the demo's rankers on every target but the demo target")
    f.add_argument("--target", default=DEMO_TARGET)
    f.add_argument("--out", default=str(DEMO_DIR))
    args = ap.parse_args(argv)
    path = fit(target=args.target, out=Path(args.out), progress=lambda m: print(f"fitting {m} ...", file=sys.stderr))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
