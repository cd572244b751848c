"""Revealed accuracies as evidence: the Gaussian belief's fold-in on the published zoos and ZooBench.

For every zoo and every held-out dataset ``j`` (leave one dataset out):

1. the prior is :func:`zoorank.methods.posterior.fit_prior` of the other datasets' accuracies (fractions), their
   holes filled at the SVD rank :func:`~zoorank.methods.posterior.choose_rank` picks on them (as the product's
   belief ranker does); its covariance shrinkage is set by one of two rules (``--rules``, both by default, on
   the same draws):
   ``tuned``, the intensity :func:`~zoorank.methods.posterior.tune_shrinkage` chooses on those datasets alone
   (``k = 3``, 5 draws, at most ``--tune-tasks`` of them left out in turn; the diagonal, which leaves the other
   models at the prior, wins unless the history shows a gain); ``averaged``,
   :func:`~zoorank.methods.posterior.fold_in`: every intensity of ``SHRINKAGE_GRID`` (the diagonal included),
   weighted by the marginal likelihood of the revealed contrasts under it (Bayesian model averaging; no tuning);
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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.published import available_zoos, load_zoo
from zoorank.methods.posterior import (
    SHRINKAGE_GRID,
    accuracy_observation,
    averaged_posterior,
    choose_rank,
    fit_prior,
    posterior,
    shrinkage_priors,
    tune_shrinkage,
)
from zoorank.ranking import weighted_tau

SECTION = "fold-in"
KS = (3, 5, 10)


def zoobench_matrix() -> tuple[np.ndarray, list[str]]:
    from zoorank.evaluation import load_benchmark
    from zoorank.paths import zoobench_dir

    bench = load_benchmark(zoobench_dir())
    return bench.matrix("finetune_acc"), list(bench.models)


RULES = ("tuned", "averaged")


def evaluate(A: np.ndarray, models: Sequence[str], *, ks: Sequence[int] = KS, draws: int = 20, seed: int = 0,
             tune_tasks: int = 10, rules: Sequence[str] = RULES) -> dict:
    """{"prior": mean weighted tau of the prior, "popularity": popularity's, "sets", "lambdas": the tuned
    shrinkages, "weights": the averaged rule's mean weight per shrinkage, (rule, k): mean gain of that rule's
    posterior over the prior} over the held-out datasets of ``A`` [datasets, models] (NaN = no result). Both rules
    see the same draws."""
    gains: dict[tuple[str, int], list[float]] = {(r, k): [] for r in rules for k in ks}
    prior_taus, popular_taus, lambdas, weights, ranks = [], [], [], [], []
    for j in range(A.shape[0]):
        y = A[j]
        ok = np.flatnonzero(np.isfinite(y))
        if ok.size < 3:
            continue
        hist = np.delete(A, j, axis=0)
        rank, _ = choose_rank(hist, seed=seed)  # the imputation's rank, as the product's BeliefRanker chooses it
        ranks.append(rank)
        base = fit_prior(hist, models, shrinkage=1.0, rank=rank)  # every shrinkage has this mean: the k = 0 ranking
        tuned = None
        if "tuned" in rules:
            lam, _ = tune_shrinkage(hist, models, k=3, draws=5, seed=seed, max_tasks=tune_tasks, rank=rank)
            lambdas.append(lam)
            tuned = fit_prior(hist, models, shrinkage=lam, rank=rank)
        priors = shrinkage_priors(hist, models, rank=rank) if "averaged" in rules else []
        prior_taus.append(weighted_tau(base.mean[ok], y[ok]))
        seen_any = np.isfinite(hist).any(axis=0)
        popular = np.where(seen_any, np.nanmean(np.where(seen_any, hist, 0.0), axis=0), np.nan)
        popular = np.where(np.isnan(popular), np.nanmean(popular), popular)  # never measured: the mean
        popular_taus.append(weighted_tau(popular[ok], y[ok]))
        for k in ks:
            if ok.size - k < 3:
                continue
            g: dict[str, list[float]] = {r: [] for r in rules}
            for d in range(draws):
                rng = np.random.default_rng([seed, j, k, d])
                seen = rng.choice(ok, k, replace=False)
                rest = np.setdiff1d(ok, seen)
                ob = accuracy_observation(seen, y[seen])
                ob = type(ob)(ob.idx, ob.values, ob.noise, True, ob.label)  # offset-free: the contrasts
                at_zero = weighted_tau(base.mean[rest], y[rest])
                if tuned is not None:
                    g["tuned"].append(weighted_tau(posterior(tuned, [ob]).mean[rest], y[rest]) - at_zero)
                if priors:
                    post, w = averaged_posterior(priors, [ob])
                    weights.append(w)
                    g["averaged"].append(weighted_tau(post.mean[rest], y[rest]) - at_zero)
            for r in rules:
                gains[(r, k)].append(float(np.mean(g[r])))
    return {"prior": float(np.mean(prior_taus)), "popularity": float(np.mean(popular_taus)),
            "sets": len(prior_taus), "lambdas": lambdas, "ranks": ranks,
            "weights": [float(x) for x in np.mean(weights, axis=0)] if weights else [],
            **{key: (float(np.mean(v)) if v else None) for key, v in gains.items()}}


def render(results: dict, command: str, seconds: float, draws: int = 20) -> str:
    rules = [r for r in RULES if any(key[0] == r for res in results.values() for key in res if isinstance(key, tuple))]
    ks = [k for k in KS if any(res.get((r, k)) is not None for res in results.values() for r in rules)]
    cols = [(r, k) for r in rules for k in ks]
    lines = ["## Revealed accuracies as evidence (the belief's fold-in)", "", f"Command: `{command}`  ",
             f"Total {seconds:.0f} s. Protocol: module doc of `benchmarks.fold_in`.", "",
             "Gain in weighted tau of the remaining models over the prior (k = 0) when k accuracies of the held-out "
             f"dataset are revealed; mean over held-out datasets of the mean over {draws} draws (the same draws "
             "for both rules). `-` = k leaves fewer than 3 models.", "",
             "| zoo | models x sets | popularity | prior (k=0) | " + " | ".join(f"{r} k={k}" for r, k in cols)
             + " | tuned: chosen shrinkage | averaged: mean weight of " + ", ".join(
                 "SS" if lam is None else f"{lam:g}" for lam in SHRINKAGE_GRID) + " |",
             "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in cols) + " | --- | --- |"]
    for name, r in results.items():
        lam = Counter("SS" if x is None else f"{x:g}" for x in r["lambdas"])
        cells = ["-" if r.get(c) is None else f"{r[c]:+.3f}" for c in cols]
        lines.append(f"| {name} | {r['models']} x {r['sets']} | {r['popularity']:.3f} | {r['prior']:.3f} | "
                     + " | ".join(cells) + " | " + (", ".join(f"{k} ({v})" for k, v in sorted(lam.items())) or "-")
                     + " | " + (", ".join(f"{w:.2f}" for w in r["weights"]) or "-") + " |")
    lines.append("")
    for rule in rules:
        vals = [(r[(rule, k)], n, k) for n, r in results.items() for k in ks if r.get((rule, k)) is not None]
        neg = [v for v in vals if v[0] < -0.0005]
        worst = min(vals)
        lines.append(f"- `{rule}`: smallest gain {worst[0]:+.3f} ({worst[1]}, k={worst[2]}); {len(neg)} of "
                     f"{len(vals)} cells below -0.0005; mean gain {np.mean([v[0] for v in vals]):+.4f}.")
    below = [n for n, r in results.items() if r["prior"] < r["popularity"] - 1e-9]
    lines += ["", "`tuned`: the shrinkage `zoorank.methods.posterior.tune_shrinkage` picks on the history "
              "(SS = Schäfer-Strimmer's analytic intensity; 1 = the diagonal, the others stay at the prior). "
              "`averaged`: `zoorank.methods.posterior.fold_in`, every shrinkage of the grid weighted by the "
              "evidence of the revealed contrasts (no tuning on the history). Prior below popularity (each model's "
              f"mean over the datasets that have it) at k=0 on: {', '.join(below) or 'no zoo'}. `popularity` and "
              "`prior` are measured on the same models of the same held-out datasets; the prior's mean differs from "
              "popularity only where the table has missing entries: it imputes them at the SVD rank "
              "`zoorank.methods.posterior.choose_rank` picks on the other datasets (ranks chosen: "
              + "; ".join(f"{n} " + ", ".join(f"{k} ({v})" for k, v in sorted(Counter(r["ranks"]).items()))
                          for n, r in results.items() if r.get("ranks") and any(x != 4 for x in r["ranks"]))
              + "; 4 elsewhere)."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fold_in", description=__doc__.split("\n")[0])
    ap.add_argument("--zoos", nargs="+", choices=["zoobench", *available_zoos()], help="default: all")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune-tasks", type=int, default=10)
    ap.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES), help="default: both")
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
        r = evaluate(A, models, draws=args.draws, seed=args.seed, tune_tasks=args.tune_tasks, rules=args.rules)
        r["models"] = len(models)
        results[name] = r
        print(name, {str(k): v for k, v in r.items() if k not in ("lambdas", "ranks")}, file=sys.stderr, flush=True)
    argv_list = list(argv if argv is not None else sys.argv[1:])
    body = render(results, "python -m benchmarks.fold_in" + (" " + " ".join(argv_list) if argv_list else ""),
                  time.perf_counter() - t0, args.draws)
    print(body)
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        write_markdown_section(args.write, SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
