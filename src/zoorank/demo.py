"""The README's demo: the pipeline on a ZooBench target its rankers never learned from, next to the truth.

``fit`` (run once, its output committed under ``benchmarks/zoobench/demo/``) fills a knowledge base with every
ZooBench target but the demo target — as ``zoorank rank --kb`` and ``zoorank kb record`` would have left it — and
fits the belief ranker, Fennec, Model Spider and MetaRank from it with :func:`zoorank.pipeline.learn.fit_rankers`
(``zoorank fit``). ``run`` (``zoorank demo``) loads those rankers and ranks the zoo for the demo target as
``zoorank rank`` does by default (the belief job: on a quarter of the probe, the models with a 5 % prior chance of
the top 5; rankers without a belief
ranker: the pipeline with a budget of K forward passes), prints the ranking with its intervals beside the true
fine-tuned accuracies (``ground_truth.csv``), the ranking's weighted tau and the cost of every stage, and writes the
HTML report.

    python -m zoorank.demo fit [--target hebrew_letters]
    zoorank demo
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank import paths
from zoorank.errors import InputError

__all__ = ["DEMO_TARGET", "available", "demo_dir", "fit", "run", "score_zoo", "toy"]

DEMO_TARGET = "hebrew_letters"


def demo_dir(root: str | Path | None = None) -> Path:
    """The demo's fitted rankers: ``demo/`` of the ZooBench directory (default :func:`zoorank.paths.zoobench_dir`)."""
    return Path(root if root is not None else paths.zoobench_dir()) / "demo"


def available(root: Path | None = None, rankers: Path | None = None) -> bool:
    """True when ZooBench's ground truth and the demo's fitted rankers are there."""
    root = Path(root) if root is not None else paths.zoobench_dir()
    rankers = Path(rankers) if rankers is not None else demo_dir(root)
    return (root / "ground_truth.csv").is_file() and (rankers / "rankers.json").is_file()


def fit(root: Path | None = None, target: str = DEMO_TARGET, out: Path | None = None, progress=None) -> Path:
    """Fit the demo's rankers on every ZooBench target but ``target`` through a knowledge base (module doc)."""
    root = Path(root) if root is not None else paths.zoobench_dir()
    out = Path(out) if out is not None else demo_dir(root)
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation.history_kb import fill_kb
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


def run(root: Path | None = None, rankers_dir: Path | None = None, *, budget: int | str | None = None,
        report: str | Path | None = "zoorank-demo.html", show=None) -> dict:
    """Rank the demo target (module doc); returns the pipeline's result dict with the truth's figures."""
    from zoorank import evaluation as H
    from zoorank import ranking as R
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation import TaskContext
    from zoorank.evaluation.adapters.pipeline import rank_in_context
    from zoorank.pipeline.learn import Rankers

    root = Path(root) if root is not None else paths.zoobench_dir()
    rankers = Rankers.load(rankers_dir if rankers_dir is not None else demo_dir(root))
    target = rankers.info.get("held_out")
    bench = H.load_benchmark(root)
    if target not in bench.tasks:
        raise InputError(f"the demo rankers were fitted for target {target!r}, which ZooBench does not have")
    if target in rankers.info.get("history", []):
        raise InputError(f"the demo rankers learned from {target!r}: refit them (python -m "
                         f"zoorank.demo fit)")
    if sorted(rankers.models) != sorted(bench.models):
        raise InputError("the demo rankers were fitted on another zoo: refit them")
    context = TaskContext(target, bench, ZooBenchProvider(root))
    if rankers.belief is not None:  # zoorank rank's default job: the belief ranker (budget None: its default plan)
        from zoorank.evaluation.adapters.pipeline import ContextTask
        from zoorank.pipeline.belief_job import BeliefJob, parse_plan

        source = ContextTask(context, rankers.models)
        plan = parse_plan(budget, len(rankers.models), probe_size=len(source.labels()))
        result = BeliefJob(rankers.models, rankers.belief, plan=plan).run(source)
    else:  # rankers fitted before the belief ranker: the pipeline at budget K (5 unless given)
        result, _ = rank_in_context(rankers, context, budget=5 if budget is None else budget)
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


def score_zoo(zoo, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, str]]:
    """Every metric of ``names`` on every model of the toy ``zoo``: ({metric: scores over models}, seconds,
    failures)."""
    from zoorank import metrics as M

    scores, seconds, failed = {}, {}, {}
    for name in names:
        t0 = time.perf_counter()
        try:
            scores[name] = M.score_zoo(name, [m.features for m in zoo.models],
                                       [np.log(np.maximum(m.source_probs, 1e-300)) for m in zoo.models],
                                       zoo.probe_labels, general=[m.general_features for m in zoo.models])
        except Exception as exc:  # one metric failing must not hide the others
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        seconds[name] = time.perf_counter() - t0
    return scores, seconds, failed


def toy(seed: int = 0, progress=None) -> dict:
    """The toy demo (``zoorank demo --toy``): build the toy zoo with its fine-tuned ground truth, score it with
    every metric, and rank it by the Copeland aggregate of the metrics (best metric first). Returns the zoo, the
    truth, each metric's scores, seconds and (weighted tau, Pearson, top-1 regret), the failures, the metrics in
    order of quality and the Copeland scores with their quality."""
    from zoorank import ranking as R
    from zoorank.datasets.toyzoo import build_toy_zoo
    from zoorank.metric_sets import benchmarked_metrics

    zoo = build_toy_zoo(seed, progress=progress)
    truth = np.array([m.finetune_acc for m in zoo.models])
    scores, seconds, failed = score_zoo(zoo, benchmarked_metrics())
    quality = {name: (R.weighted_tau(s, truth), R.pearson(s, truth), R.top1_regret(s, truth))
               for name, s in scores.items()}
    order = sorted(quality, key=lambda n: -quality[n][0])
    agg = R.copeland([scores[n] for n in order])
    return {"zoo": zoo, "truth": truth, "scores": scores, "seconds": seconds, "failed": failed, "quality": quality,
            "order": order, "copeland": agg,
            "copeland_quality": (R.weighted_tau(agg, truth), R.pearson(agg, truth), R.top1_regret(agg, truth))}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zoorank.demo", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the demo's rankers on every target but the demo target")
    f.add_argument("--target", default=DEMO_TARGET)
    f.add_argument("--out", default=None, help="default: demo/ of the ZooBench directory")
    args = ap.parse_args(argv)
    path = fit(target=args.target, out=Path(args.out) if args.out else None,
               progress=lambda m: print(f"fitting {m} ...", file=sys.stderr))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
