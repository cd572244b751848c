"""What an end-to-end ranking costs, part by part: why a probe stage of n models on a quarter of the probe cannot
fall far below a quarter of the best metric's wall time on ZooBench.

For every target, each of the 37 models is loaded from its committed weights (SHA-256 checked, the network built
and the weights copied in) and run on the spot (no feature cache) twice: on the stratified quarter of the probe
the default plan uses (:func:`zoorank.data.fraction_rows`, 25 %) and on the whole probe. Timed apart:

* ``load``: building the network and reading its weights, once per model and query;
* ``forward``: preprocessing and the network on the images;
* ``score``: the stacked metrics of the belief's link (``reg_hscore``, ``etran``, ``parc``) on the quarter, for the
  models of a plan, and ``reg_hscore`` on the whole probe for every model (the reference);
* ``proxy``: the proxy encoder's pass on its unlabelled sample (the prior's one forward pass).

The reference is ``reg_hscore`` end to end: 37 x (load + forward on the whole probe) + its scores. A plan of n models
is the proxy pass + n x (load + forward on the quarter) + the stacked scores of the n, for the n best models of
the popularity prior (each model's mean accuracy on the other targets; the default plan runs the models the prior
gives a chance of the top, which are mostly these). Each row gives its share of the reference's seconds as
measured, and with loading taken as free in both (the floor that a faster loader could reach). Means over targets
of the per-target shares.

Command: ``python -m benchmarks.live_cost --json benchmarks/zoobench/ablations/live_cost.json --write
docs/BENCHMARKS.md`` (section ``live-cost``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SECTION = "live-cost"
PLAN_SIZES = (37, 32, 29, 25, 22, 15)
FRACTION = 0.25
STACK = ("reg_hscore", "etran", "parc")


def measure_target(provider, bench, task: str, fraction: float = FRACTION) -> dict:
    """Per-model seconds of ``load``, ``forward_part``, ``forward_full``, the scores and the proxy pass on ``task``."""
    from zoorank import metrics as M
    from zoorank.data import fraction_rows
    from zoorank.datasets.zoobench import tasks as T
    from zoorank.datasets.zoobench import training as TR
    from zoorank.methods._torch import torch_threads

    labels = provider.labels(task)
    rows = fraction_rows(labels, fraction)
    images = T.load(task).images[provider.probe_indices(task)]
    out: dict = {"task": task, "models": {}, "probe": len(labels), "part": len(rows)}
    part, full = {}, {}
    for m in bench.models:
        t0 = time.perf_counter()
        arch, net, _ = provider._model(m)
        t1 = time.perf_counter()
        with torch_threads(provider.threads):
            part[m] = TR.features_and_logits(net, images[rows], input_size=arch.input_size)
            t2 = time.perf_counter()
            full[m] = TR.features_and_logits(net, images, input_size=arch.input_size)
        t3 = time.perf_counter()
        out["models"][m] = {"load": t1 - t0, "forward_part": t2 - t1, "forward_full": t3 - t2}
    for m in bench.models:  # the scores of one model at a time: a plan's sum is over its own models
        for name in STACK:
            t0 = time.perf_counter()
            M.score_zoo(name, [part[m][0]], [part[m][1]], labels[rows], names=[m])
            out["models"][m][f"score_part:{name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        M.score_zoo("reg_hscore", [full[m][0]], [full[m][1]], labels, names=[m])
        out["models"][m]["score_full"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    provider.proxy_features(task)
    out["proxy"] = time.perf_counter() - t0
    return out


def shares(record: dict, order: Sequence[str], n: int) -> dict:
    """The plan of the first ``n`` models of ``order`` against the reference, as measured and with free loading."""
    per = record["models"]
    ref_load = sum(v["load"] for v in per.values())
    ref = ref_load + sum(v["forward_full"] + v["score_full"] for v in per.values())
    chosen = list(order)[:n]
    load = sum(per[m]["load"] for m in chosen)
    plan = record["proxy"] + load + sum(per[m]["forward_part"] + sum(per[m][f"score_part:{s}"] for s in STACK)
                                        for m in chosen)
    return {"n": n, "plan": plan, "reference": ref, "share": plan / ref,
            "share_free_load": (plan - load) / (ref - ref_load), "images": n * record["part"],
            "reference_images": len(per) * record["probe"]}


def popularity_order(bench, task: str) -> list[str]:
    A = bench.matrix("finetune_acc")
    keep = [i for i, t in enumerate(bench.tasks) if t != task]
    mean = np.nanmean(A[keep], axis=0)
    return [bench.models[i] for i in np.argsort(-mean, kind="stable")]


def markdown(records: Sequence[dict], bench, command: str) -> str:
    rows = {n: [shares(r, popularity_order(bench, r["task"]), n) for r in records] for n in PLAN_SIZES}
    per = [r["models"] for r in records]
    mean = lambda key: float(np.mean([sum(v[key] for v in p.values()) for p in per]))  # noqa: E731
    lines = ["## What an end-to-end ranking costs, part by part", "", f"Command: `{command}`  ",
             f"Measured {time.strftime('%Y-%m-%d')} on {len(records)} targets; module doc of `benchmarks.live_cost`. "
             "Every forward pass run on the spot (no feature cache).", "",
             "Per target, summed over the 37 models (mean over targets): loading "
             f"{mean('load'):.2f} s, forward on the quarter of the probe {mean('forward_part'):.2f} s, on the whole "
             f"probe {mean('forward_full'):.2f} s; the stacked scores on the quarter "
             f"{float(np.mean([sum(v[f'score_part:{s}'] for v in p.values() for s in STACK) for p in per])):.2f} s, "
             f"reg_hscore on the whole probe {mean('score_full'):.2f} s; the proxy pass "
             f"{float(np.mean([r['proxy'] for r in records])):.2f} s.", "",
             "| plan: the prior's best n models on 25 % of the probe | seconds / target "
             "| reg_hscore's seconds / target | share of reg_hscore's seconds | share with loading free "
             "| share of reg_hscore's images |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, rs in rows.items():
        lines.append(f"| {n} | {np.mean([r['plan'] for r in rs]):.2f} | {np.mean([r['reference'] for r in rs]):.2f} | "
                     f"{100 * np.mean([r['share'] for r in rs]):.0f} % | "
                     f"{100 * np.mean([r['share_free_load'] for r in rs]):.0f} % | "
                     f"{100 * np.mean([r['images'] / r['reference_images'] for r in rs]):.0f} % |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.evaluation import load_benchmark
    from zoorank.paths import zoobench_dir
    from zoorank.store.feature_cache import NoFeatureCache

    ap = argparse.ArgumentParser(prog="python -m benchmarks.live_cost", description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--json", type=Path, default=None, help="write (and resume from) the per-target timings")
    ap.add_argument("--write", type=Path, default=None, help=f"write the '{SECTION}' section of this file")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    bench = load_benchmark(zoobench_dir())
    tasks = args.tasks.split(",") if args.tasks else list(bench.tasks)
    provider = ZooBenchProvider(cache=NoFeatureCache(), threads=args.threads)
    partial = args.json.with_suffix(args.json.suffix + ".partial.jsonl") if args.json else None
    done = {}
    if partial is not None and partial.is_file():
        done = {r["task"]: r for r in map(json.loads, partial.read_text().splitlines()) if r.get("task") in tasks}
    for t in tasks:  # warm-up, untimed: every task's data, every model once
        provider.prepare(t)
    for m in bench.models:
        provider.features(m, tasks[0])
    records = []
    for i, t in enumerate(tasks):
        rec = done.get(t) or measure_target(provider, bench, t)
        if t not in done and partial is not None:
            with open(partial, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        records.append(rec)
        print(f"[{i + 1}/{len(tasks)}] {t}", file=sys.stderr, flush=True)
    argv_list = list(argv if argv is not None else sys.argv[1:])
    body = markdown(records, bench, "python -m benchmarks.live_cost" + (" " + " ".join(argv_list) if argv_list else ""))
    print(body)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
        if partial is not None and partial.exists():
            partial.unlink()
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        write_markdown_section(args.write, SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
