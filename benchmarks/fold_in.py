"""Revealed accuracies as evidence: the Gaussian belief's fold-in on the published zoos and ZooBench.

For every zoo and every held-out dataset ``j`` (leave one dataset out):

1. the prior is :func:`zoorank.methods.posterior.fit_prior` of the other datasets' accuracies (fractions), with
   the covariance shrinkage :func:`~zoorank.methods.posterior.tune_shrinkage` chooses on those datasets alone
   (``k = 3``, 5 draws, at most ``--tune-tasks`` of them left out in turn; the diagonal, which leaves the other
   models at the prior, wins unless the history shows a gain);
2. ``k`` accuracies of ``j`` are revealed (models drawn uniformly, ``draws`` times, seeded by (seed, dataset, k)) and
   enter as an offset-free block of :func:`~zoorank.methods.posterior.accuracy_observation` (their contrasts: the
   dataset's difficulty says nothing about the order of the others);
3. the posterior mean ranks the remaining models; the table gives its weighted tau minus the prior's on the same
   models (``k = 0`` is the prior itself, whose weighted tau is a column, beside popularity: each model's mean over
   the other datasets that have it, on the same models).

A k that would leave fewer than 3 models is skipped. Compare Fennec's NMF fold-in in "Fennec on published zoos",
which loses 0.04-0.20 at k = 3.

Command: ``python -m benchmarks.fold_in [--zoos ...] [--write docs/BENCHMARKS.md]`` (section ``fold-in``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.published import available_zoos, load_zoo
from zoorank.methods.posterior import accuracy_observation, fit_prior, posterior, tune_shrinkage
from zoorank.ranking import weighted_tau

SECTION = "fold-in"
KS = (3, 5, 10)


def zoobench_matrix() -> tuple[np.ndarray, list[str]]:
    from zoorank.evaluation import load_benchmark
    from zoorank.paths import zoobench_dir

    bench = load_benchmark(zoobench_dir())
    return bench.matrix("finetune_acc"), list(bench.models)


def evaluate(A: np.ndarray, models: Sequence[str], *, ks: Sequence[int] = KS, draws: int = 20, seed: int = 0,
             tune_tasks: int = 10) -> dict:
    """{"prior": mean weighted tau of the prior, k: mean gain of the posterior over the prior, "lambdas": [...]}
    over the held-out datasets of ``A`` [datasets, models] (NaN = no result)."""
    gains: dict[int, list[float]] = {k: [] for k in ks}
    prior_taus, popular_taus, lambdas = [], [], []
    for j in range(A.shape[0]):
        y = A[j]
        ok = np.flatnonzero(np.isfinite(y))
        if ok.size < 3:
            continue
        hist = np.delete(A, j, axis=0)
        lam, _ = tune_shrinkage(hist, models, k=3, draws=5, seed=seed, max_tasks=tune_tasks)
        lambdas.append(lam)
        prior = fit_prior(hist, models, shrinkage=lam)
        prior_taus.append(weighted_tau(prior.mean[ok], y[ok]))
        seen_any = np.isfinite(hist).any(axis=0)
        popular = np.where(seen_any, np.nanmean(np.where(seen_any, hist, 0.0), axis=0), np.nan)
        popular = np.where(np.isnan(popular), np.nanmean(popular), popular)  # never measured: the mean
        popular_taus.append(weighted_tau(popular[ok], y[ok]))
        for k in ks:
            if ok.size - k < 3:
                continue
            g = []
            for d in range(draws):
                rng = np.random.default_rng([seed, j, k, d])
                seen = rng.choice(ok, k, replace=False)
                rest = np.setdiff1d(ok, seen)
                ob = accuracy_observation(seen, y[seen])
                post = posterior(prior, [type(ob)(ob.idx, ob.values, ob.noise, True, ob.label)])
                g.append(weighted_tau(post.mean[rest], y[rest]) - weighted_tau(prior.mean[rest], y[rest]))
            gains[k].append(float(np.mean(g)))
    return {"prior": float(np.mean(prior_taus)), "popularity": float(np.mean(popular_taus)),
            "sets": len(prior_taus), "lambdas": lambdas,
            **{k: (float(np.mean(v)) if v else None) for k, v in gains.items()}}


def render(results: dict, command: str, seconds: float) -> str:
    ks = [k for k in KS if any(r.get(k) is not None for r in results.values())]
    lines = ["## Revealed accuracies as evidence (the belief's fold-in)", "", f"Command: `{command}`  ",
             f"Total {seconds:.0f} s. Protocol: module doc of `benchmarks.fold_in`.", "",
             "Gain in weighted tau of the remaining models over the prior (k = 0) when k accuracies of the held-out "
             "dataset are revealed; mean over held-out datasets of the mean over 20 draws. `-` = k leaves fewer "
             "than 3 models.", "",
             "| zoo | models x sets | popularity | prior (k=0) | " + " | ".join(f"k={k}" for k in ks)
             + " | chosen shrinkage |",
             "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in ks) + " | --- |"]
    for name, r in results.items():
        lam = {}
        for x in r["lambdas"]:
            key = "SS" if x is None else f"{x:g}"
            lam[key] = lam.get(key, 0) + 1
        cells = ["-" if r.get(k) is None else f"{r[k]:+.3f}" for k in ks]
        lines.append(f"| {name} | {r['models']} x {r['sets']} | {r['popularity']:.3f} | {r['prior']:.3f} | "
                     + " | ".join(cells)
                     + " | " + ", ".join(f"{k} ({v})" for k, v in sorted(lam.items())) + " |")
    worst = min((r[k], n, k) for n, r in results.items() for k in ks if r.get(k) is not None)
    below = [n for n, r in results.items() if r["prior"] < r["popularity"] - 1e-9]
    lines += ["", f"Smallest gain: {worst[0]:+.3f} ({worst[1]}, k={worst[2]}). Prior below popularity (each model's "
              f"mean over the datasets that have it) at k=0 on: {', '.join(below) or 'no zoo'}. `popularity` and "
              "`prior` are measured on the same models of the same held-out datasets; the prior's mean differs from "
              "popularity only where the table has missing entries (it imputes them, rank 4). `SS` = "
              "Schäfer-Strimmer's analytic intensity; 1 = the diagonal (the others stay at the prior)."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fold_in", description=__doc__.split("\n")[0])
    ap.add_argument("--zoos", nargs="+", choices=["zoobench", *available_zoos()], help="default: all")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune-tasks", type=int, default=10)
    ap.add_argument("--write", type=Path, default=None, help=f"write the '{SECTION}' section of this file")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = {}
    for name in args.zoos or ["zoobench", *available_zoos()]:
        if name == "zoobench":
            A, models = zoobench_matrix()
        else:
            z = load_zoo(name)
            A, models = z.acc.T / 100.0, list(z.models)
        r = evaluate(A, models, draws=args.draws, seed=args.seed, tune_tasks=args.tune_tasks)
        r["models"] = len(models)
        results[name] = r
        print(name, {k: v for k, v in r.items() if k != "lambdas"}, file=sys.stderr, flush=True)
    argv_list = list(argv if argv is not None else sys.argv[1:])
    body = render(results, "python -m benchmarks.fold_in" + (" " + " ".join(argv_list) if argv_list else ""),
                  time.perf_counter() - t0)
    print(body)
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        write_markdown_section(args.write, SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
