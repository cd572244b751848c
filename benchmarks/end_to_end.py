"""End-to-end wall time of ranking methods on ZooBench: the forward passes included.

``zoorank bench run`` reports each method's ``seconds`` without feature extraction: extraction is shared by
every method of a run and served from the feature cache, and its cost shows as ``forward_passes``. What a
user waits for is the sum. This module measures it, leave-one-target-out, with :func:`zoorank.evaluation.run`'s
``live_provider``: each method reads the held-out target through a :class:`ZooBenchProvider` that has no feature
cache (:class:`~zoorank.store.feature_cache.NoFeatureCache`), so every feature request of the method is a real
forward pass: loading the weights from disk (SHA-256 checked), preprocessing and the network on the target's
probe set. Nothing is shared between methods and no metric score is replayed from a store.

A method's end-to-end seconds on a target = wall time of its ``scores`` call, minus what the product does offline:
the fit of learned rankers on the other targets (``zoorank fit``, once for all later queries) and its reads of
those targets' cached features. For a metric that is 37 forward passes plus 37 scores; for the pipeline, the
proxy-encoder pass (Fennec), the general-encoder pass (Model Spider's task token), the coarse ranking, MetaRank's
choice, K forward passes and K scores, and the merge.

Before the timed run, every task's data are generated and checked against their committed checksums, and every
model is run once on the first target (untimed), so that process start-up costs (the task generators, torch's first
calls) fall on no method. The proxy and the general encoder are the same ImageNet MobileNetV2 in ZooBench; the live
provider loads its weights for each of the two passes, where the product's rank job loads them once.

Command: ``python -m benchmarks.end_to_end --benchmark benchmarks/zoobench --methods reg_hscore,pipeline@k5,
pipeline@k3 --reference reg_hscore --json benchmarks/zoobench/ablations/end_to_end.json --passes-json
benchmarks/zoobench/ablations/end_to_end_passes.json --write docs/BENCHMARKS.md`` (section ``zoobench-end-to-end``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError

__all__ = ["TimedProvider", "main", "markdown", "measure", "passes_alone"]

SECTION = "zoobench-end-to-end"


class TimedProvider:
    """A feature provider that records the wall time of ``features(model, task)`` requests in :attr:`seconds` (the
    first request of each pair; :func:`main` runs the reference method first, so its own passes are the ones
    kept); everything else is the wrapped provider's."""

    def __init__(self, provider: Any):
        self._provider = provider
        self.seconds: dict[tuple[str, str], float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def features(self, model: str, task: str, rows=None):
        t0 = time.perf_counter()
        out = self._provider.features(model, task) if rows is None else self._provider.features(model, task, rows)
        self.seconds.setdefault((model, task), time.perf_counter() - t0)
        return out


def measure(root: str | Path, methods: Sequence[str], *, tasks: Sequence[str] | None = None,
            threads: int | None = None, progress: Callable[[str, str], None] | None = None):
    """End-to-end records (``seconds`` = end-to-end wall time, module doc) of ``methods`` on ZooBench at ``root``:
    (a :class:`~zoorank.evaluation.RunResult`, the seconds of each timed forward pass {(model, task): s}).
    ``threads``: torch threads of the forward passes."""
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider, live_provider

    bench = H.load_benchmark(root)
    chosen = H.make_methods(list(methods))
    task_list = list(bench.tasks if tasks is None else tasks)
    if not task_list:
        raise InputError("no targets to measure")
    history = ZooBenchProvider(root, threads=threads)  # the other targets: the feature cache, as `zoorank fit` has
    live = TimedProvider(live_provider(root, task_list, bench.models, threads=threads))  # warmed up, untimed
    result = H.run(bench, chosen, history, task_list, errors="raise", progress=progress, live_provider=live)
    return result, dict(live.seconds)


def passes_alone(passes: dict[tuple[str, str], float], bench: Any, reference_seconds: dict[str, float],
                 budgets: Sequence[int]) -> list[dict]:
    """What K forward passes cost by themselves, as a share of the reference method's end-to-end seconds (summed
    over the targets of ``reference_seconds``, as the summary's shares are ratios of means): for the K truly best
    models of each target (what a budget-K pipeline that picks right runs, before its encoder passes and its
    scoring) and for the K cheapest (a floor under any budget-K pipeline's share)."""
    rows = []
    total = sum(reference_seconds.values())
    for k in budgets:
        best = cheap = 0.0
        for t in reference_seconds:
            cost = np.array([passes[(m, t)] for m in bench.models])
            best += cost[np.argsort(-bench.truth(t), kind="stable")[:k]].sum()
            cheap += np.sort(cost)[:k].sum()
        rows.append({"k": k, "true_top": best / total, "cheapest": cheap / total})
    return rows


def markdown(result, *, reference: str, command: str, alone: Sequence[dict] = ()) -> str:
    """The section: per-target end-to-end seconds, and the means with each method's share of ``reference``'s
    forward passes and seconds (the share of means over the targets every method scored); ``alone``: the rows of
    :func:`passes_alone`, if any."""
    from zoorank import evaluation as H

    recs = list(result)
    by = {(r.method, r.task): r for r in recs}
    methods = [s.method for s in H.summary(recs)]
    if reference not in methods:
        raise InputError(f"the reference {reference!r} is not among the measured methods ({', '.join(methods)})")
    methods = [reference, *(m for m in methods if m != reference)]  # the reference first, then by weighted tau
    tasks = [t for t in dict.fromkeys(r.task for r in recs) if all((m, t) in by for m in methods)]
    if not tasks:
        raise InputError("no target was scored by every method")

    def mean(method: str, key: str) -> float:
        return float(np.mean([getattr(by[(method, t)], key) for t in tasks]))

    ref_fp, ref_s = mean(reference, "forward_passes"), mean(reference, "seconds")
    summary = [[m, f"{mean(m, 'weighted_tau'):.3f}", f"{mean(m, 'forward_passes'):.0f}",
                f"{100 * mean(m, 'forward_passes') / ref_fp:.0f} %", f"{mean(m, 'seconds'):.2f}",
                f"{100 * mean(m, 'seconds') / ref_s:.0f} %"] for m in methods]
    per_task = [[t, *(f"{by[(m, t)].seconds:.2f}" for m in methods),
                 *(f"{100 * by[(m, t)].seconds / by[(reference, t)].seconds:.0f} %" for m in methods if m != reference)]
                for t in tasks]
    return "\n".join([
        "## ZooBench: end-to-end wall time (forward passes included)", "",
        f"Command: `{command}`  ",
        f"Measured {_dt.date.today().isoformat()} on this machine, leave-one-target-out over {len(tasks)} targets. "
        "Seconds are what a user waits for: every forward pass the method asks for is run on the spot (the "
        "weights loaded from the files, warm in the OS page cache; no feature cache), plus the method's own work. "
        "Left out: the fits of learned rankers on the other targets (`zoorank fit`, offline, once) and generating "
        "the targets' images (done before the timing). Module doc of `benchmarks.end_to_end`.", "",
        "### Means over targets", "",
        H.markdown_table(["method", "weighted tau", "forward passes / target", f"share of {reference}'s passes",
                  "end-to-end seconds / target", f"share of {reference}'s seconds"], summary),
        "", "### End-to-end seconds per target", "",
        H.markdown_table(["target", *methods, *(f"{m} / {reference}" for m in methods if m != reference)], per_task),
        "", *_alone_markdown(alone)])


def _alone_markdown(rows: Sequence[dict]) -> list[str]:
    from zoorank import evaluation as H

    if not rows:
        return []
    return ["### What K forward passes cost by themselves", "",
            "The seconds of K forward passes alone (each as timed in the reference's run above), as a share of "
            "the reference's end-to-end seconds (sums over the targets): for the K truly best models of each "
            "target, what a budget-K pipeline that picks right must run before its encoder passes and its scoring; "
            "for the K cheapest, a floor under any budget-K pipeline (`passes_alone`).", "",
            H.markdown_table(["K", "the K truly best models", "the K cheapest models"],
                     [[str(r["k"]), f"{100 * r['true_top']:.0f} %", f"{100 * r['cheapest']:.0f} %"] for r in rows]),
            ""]


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank import evaluation as H
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.end_to_end", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--methods", default="reg_hscore,pipeline@k5,pipeline@k3", help="comma-separated methods")
    ap.add_argument("--reference", default="reg_hscore", help="the method the shares are taken of")
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the forward passes")
    ap.add_argument("--budgets", default="3,5", help="budgets K of the 'passes by themselves' table")
    ap.add_argument("--json", default=None, help="write the records (seconds = end-to-end) to this JSON file")
    ap.add_argument("--passes-json", default=None, help="write the seconds of every timed forward pass here")
    ap.add_argument("--write", default=None, help=f"Markdown file to write the section '{SECTION}' into")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.reference not in methods:
        ap.error(f"--reference {args.reference!r} must be one of --methods")
    methods = [args.reference, *(m for m in methods if m != args.reference)]  # its passes are the ones timed
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    try:
        budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        ap.error(f"--budgets must be comma-separated integers, got {args.budgets!r}")
    result, passes = measure(args.benchmark, methods, tasks=tasks, threads=args.threads,
                             progress=lambda m, t: print(f"{m} {t}", file=sys.stderr, flush=True))
    if args.json:
        H.write_json(result, args.json)
    if args.passes_json:
        Path(args.passes_json).write_text(json.dumps([{"model": m, "task": t, "seconds": v}
                                                      for (m, t), v in sorted(passes.items())], indent=1) + "\n")
    bench = H.load_benchmark(args.benchmark)
    ref = {r.task: r.seconds for r in result if r.method == args.reference
           and all((m, r.task) in passes for m in bench.models)}
    alone = passes_alone(passes, bench, ref, budgets) if ref else []
    text = markdown(result, reference=args.reference, alone=alone,
                    command=command_line("python -m benchmarks.end_to_end", argv))
    publish_section(text, args.write, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
