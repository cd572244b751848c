"""The learning loop measured: ranking quality on held-out targets as the knowledge base grows.

For each step n, a fresh knowledge base receives the first n historical targets (a seeded order of the targets
that are not held out) exactly as a user's ``zoorank rank --kb`` + ``zoorank kb record`` would leave them: each
model (parameter count), each task (class and image counts, dataset card, the proxy encoder's summary and the
general encoder's task token), the metric scores of every zoo model on it (``metric:<name>``) and the fine-tuned
accuracies (``finetune_acc``). :func:`zoorank.pipeline.learn.fit_rankers` fits Fennec, Model Spider and MetaRank
from it (as ``zoorank fit`` does), and the pipeline ranks each held-out target; the table gives the mean weighted
tau of the merged ranking at budget K, of its coarse stage alone, and of each coarse ranker.

    python -m zoorank.bench.learning_curve --benchmark benchmarks/zoobench --held-out 4 --steps 2,4,8,14 \\
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

__all__ = ["fill_kb", "learning_curve", "main", "markdown"]

#: Metrics recorded for every historical task (Fennec's FDA, Spider's four, and MetaRank's candidates).
KB_METRICS = ("fda", "nce", "leep", "logme", "hscore", "sfda", "nleep", "gbc", "transrate", "parc", "lfc", "ncti",
              "etran", "energy", "reg_hscore")


def _task_rows(bench, provider, task: str, metrics: Sequence[str], cache: dict) -> dict:
    """Everything the knowledge base gets about one historical task (computed once per run)."""
    if task in cache:
        return cache[task]
    from zoorank import metrics as M
    from zoorank.bench.score_store import ScoreStore, default_store_dir
    from zoorank.methods.metarank.cards import card_from_task_info

    store = ScoreStore(default_store_dir())  # the scores a metric method of the harness stored are reused
    info = bench.task_info[task]
    y = np.asarray(provider.labels(task))
    pairs = [provider.features(m, task) for m in bench.models]
    scores = {}
    for metric in metrics:
        try:
            s = store.score_zoo(metric, [f for f, _ in pairs], [lg for _, lg in pairs], y, names=bench.models)
        except M.MetricUnavailable:
            continue
        if np.isfinite(s).all():
            scores[metric] = s
    token = _token(provider, task)
    n_train = int(info.extra.get("n_train") or y.size)
    cache[task] = {"n_classes": int(info.n_classes or np.unique(y).size), "n_samples": n_train,
                   "description": card_from_task_info(info).to_text(),
                   "proxy": _proxy(provider, task),
                   "token": token, "scores": scores,
                   "truth": bench.truth(task)}
    return cache[task]


def _token(provider, task: str) -> np.ndarray | None:
    """Spider's task token of a task, or None when the provider has no general encoder (Spider then has no
    training task from it)."""
    from zoorank.bench.harness import MethodSkipped
    from zoorank.methods.spider import task_token

    fetch = getattr(provider, "encoder_features", None)
    if fetch is None:
        return None
    try:
        E, y = fetch(task)
    except MethodSkipped:
        return None
    return task_token(np.asarray(E), np.asarray(y))


def _proxy(provider, task: str) -> np.ndarray | None:
    """The proxy vector of a task, or None when the provider has no proxy encoder (Fennec is then not fitted)."""
    from zoorank.bench.harness import MethodSkipped
    from zoorank.methods.fennec.model import summarize_proxy

    fetch = getattr(provider, "proxy_features", None)
    if fetch is None:
        return None
    try:
        return summarize_proxy(np.asarray(fetch(task)))
    except MethodSkipped:
        return None


def fill_kb(kb, bench, provider, tasks: Sequence[str], *, metrics: Sequence[str] = KB_METRICS,
            cache: dict | None = None) -> None:
    """Record the zoo and the historical ``tasks`` in ``kb`` (module doc)."""
    from zoorank.pipeline.learn import record_task

    cache = {} if cache is None else cache
    for m in bench.models:
        kb.add_model(m, architecture=bench.zoo[m].architecture, params=max(int(bench.zoo[m].params), 1))
    for t in tasks:
        rows = _task_rows(bench, provider, t, metrics, cache)
        record_task(kb, t, n_classes=rows["n_classes"], n_samples=rows["n_samples"], proxy=rows["proxy"],
                    token=rows["token"], description=rows["description"])
        records = [{"model": m, "task": t, "kind": f"metric:{k}", "value": float(v[i])}
                   for k, v in rows["scores"].items() for i, m in enumerate(bench.models)]
        records += [{"model": m, "task": t, "kind": "finetune_acc", "value": float(rows["truth"][i])}
                    for i, m in enumerate(bench.models) if np.isfinite(rows["truth"][i])]
        kb.record_many(records, provenance={"source": "zoorank.bench.learning_curve"})


def learning_curve(bench, provider, *, held_out: Sequence[str], steps: Sequence[int], budget: int = 5,
                   seed: int = 0, kb_dir: str | Path, progress=None) -> list[dict]:
    """Rows ``{"n_tasks", "target", "method", "weighted_tau", "forward_passes"}`` (module doc)."""
    from zoorank.bench.harness import TaskContext
    from zoorank.bench.learned_pipeline import rank_in_context
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
    from zoorank.bench import harness as H
    from zoorank.bench.metric_speed import command_line, publish_section
    from zoorank.bench.zoobench.provider import ZooBenchProvider

    ap = argparse.ArgumentParser(prog="python -m zoorank.bench.learning_curve", description=__doc__.split("\n")[0])
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
    text = markdown(rows, command=command_line("python -m zoorank.bench.learning_curve", argv), held_out=held)
    publish_section(text, args.write, "learning-curve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
