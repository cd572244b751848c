"""The ZooBench section of ``docs/BENCHMARKS.md``: the build's measured cost, whether the ground truth
discriminates, and every method's quality per target (written by ``zoorank bench run --write``)."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from pathlib import Path

import numpy as np

from zoorank import evaluation as H
from zoorank.datasets.zoobench import build as B


def build_cost_markdown(root: str | Path) -> str:
    """The build's measured CPU time from its log, per phase, and the committed size."""
    try:
        cost = B.measured_cost(root)
    except Exception as exc:  # no log: a benchmark built elsewhere
        return f"Build cost: unknown ({exc}).\n"
    size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file() and ".work" not in p.parts)
    return (f"Build (`zoorank bench build`, 2 worker processes x 1 thread (torch and BLAS) on the 2-core machine of "
            f"`docs/BENCHMARKS.md`): measured {cost['total'] / 3600:.2f} CPU-hours = pre-training "
            f"{cost['pretrain'] / 3600:.2f} h + fine-tuning and linear probes {cost['finetune'] / 3600:.2f} h "
            f"(sum over jobs of each job's process CPU time; budget 6 CPU-hours). Committed size of "
            f"`benchmarks/zoobench/`: {size / 1e6:.1f} MB (budget 150 MB).\n")


def zoo_markdown(bench: H.Benchmark) -> str:
    """One line on the zoo's make-up."""
    inits = Counter(e.init for e in bench.zoo.values())
    archs = Counter(e.architecture for e in bench.zoo.values())
    domains = Counter(e.source_domain for e in bench.zoo.values())
    return (f"Zoo: {len(bench.models)} models ({inits.get('imagenet', 0)} ImageNet-MobileNetV2-derived, "
            f"{inits.get('scratch', 0)} trained from scratch), {len(archs)} architectures, {len(domains)} "
            f"source domains (incl. ImageNet); {len(bench.tasks)} target tasks.\n")


def metric_choice_markdown(result: H.RunResult, chooser: str = "metarank", *, tie: float = 1e-9) -> str:
    """How good the metric ``chooser`` picked for each target is (MetaRank: its top-1 metric's scores), against
    the metrics of the same run: (a) the metric best on average over the OTHER targets, (b) a random metric (the
    mean over the metrics), (c) the per-target oracle; gap closed = (pick - average-best) / (oracle -
    average-best) on the means. Empty when the run has no ``chooser`` records or fewer than 2 metrics."""
    from zoorank import metrics as M

    known = set(M.available())
    taus: dict[str, dict[str, float]] = {}
    picks: dict[str, float] = {}
    for r in result:
        if r.method in known:
            taus.setdefault(r.task, {})[r.method] = r.weighted_tau
        elif r.method == chooser:
            picks[r.task] = r.weighted_tau
    metrics = sorted({m for v in taus.values() for m in v})
    targets = [t for t in picks if t in taus and all(m in taus[t] for m in metrics)]
    if len(metrics) < 2 or len(targets) < 2:
        return ""
    rows = []
    for t in targets:
        others = [u for u in targets if u != t]
        best = max(metrics, key=lambda m: (np.mean([taus[u][m] for u in others]), m))
        vals = [taus[t][m] for m in metrics]
        oracle = max(metrics, key=lambda m: taus[t][m])
        rows.append((t, picks[t], best, taus[t][best], float(np.mean(vals)), oracle, taus[t][oracle]))
    mean = {k: float(np.mean([r[i] for r in rows])) for k, i in (("pick", 1), ("avg", 3), ("random", 4),
                                                                   ("oracle", 6))}
    gap = mean["oracle"] - mean["avg"]
    closed = f"{100 * (mean['pick'] - mean['avg']) / gap:.0f} %" if gap > tie else "-"
    wins = sum(r[1] > r[3] + tie for r in rows)
    losses = sum(r[1] < r[3] - tie for r in rows)
    lines = [f"### The metric {chooser} picks, against the run's {len(metrics)} metrics", "",
             "Weighted tau of the picked metric's ranking; average-best = the metric with the best mean over the "
             "other targets (leave-one-target-out); random = mean over the metrics; oracle = the best metric of "
             "the target. NDCG@3 and the top-3 hit rate of MetaRank's whole ranking of the metrics are in the "
             "MetaRank section (`python -m benchmarks.metarank_eval --benchmark benchmarks/zoobench`).", "",
             f"Means over {len(rows)} targets: pick {mean['pick']:.3f}, average-best {mean['avg']:.3f}, random "
             f"{mean['random']:.3f}, oracle {mean['oracle']:.3f}; gap closed {closed}; W/T/L against the "
             f"average-best {wins}/{len(rows) - wins - losses}/{losses}.", "",
             "| target | pick | average-best (tau) | random | oracle (tau) |", "| --- | ---: | --- | ---: | --- |"]
    lines += [f"| {t} | {p:.3f} | {b} ({bt:.3f}) | {rnd:.3f} | {o} ({ot:.3f}) |" for t, p, b, bt, rnd, o, ot in rows]
    return "\n".join(lines) + "\n"


def section(bench: H.Benchmark, result: H.RunResult, root: str | Path, command: str) -> str:
    """The whole Markdown section."""
    disc = H.discrimination(bench, result.truth_kind)
    problems = H.discrimination_problems(disc)
    parts = [
        "## ZooBench",
        "",
        f"Command: `{command}`  ",
        f"Measured {_dt.date.today().isoformat()}. Every metric scores each model's penultimate features on the "
        "target's whole train split (the probe; the test split is never seen); the truth is the test accuracy "
        "after full fine-tuning (LR chosen on a validation part of train). Learned methods and the popularity "
        "baseline see the ground truth of the other targets only (leave-one-target-out).",
        "",
        zoo_markdown(bench),
        build_cost_markdown(root),
        H.discrimination_markdown(disc),
        ("Discrimination checks: all pass." if not problems else
         "Discrimination checks FAIL: " + "; ".join(problems)),
        "",
        H.markdown(result),
        noise_ceiling_markdown(bench, result, root),
        metric_choice_markdown(result),
    ]
    return "\n".join(parts)


def methods_section(title: str, result: H.RunResult, command: str, bench: H.Benchmark | None = None,
                    root: str | Path | None = None) -> str:
    """A section with only the method tables (ablations, learned-method variants), and the noise ceiling beside
    them when ``bench`` and its directory ``root`` are given and ``root`` has the second seed's runs."""
    ceiling = [noise_ceiling_markdown(bench, result, root)] if bench is not None and root is not None else []
    return "\n".join([f"## {title}", "", f"Command: `{command}`  ",
                       f"Measured {_dt.date.today().isoformat()} on ZooBench, leave-one-target-out.", "",
                       H.markdown(result), *ceiling])


#: The second fine-tuning seed's results (``python -m benchmarks.noise_ceiling``), beside the build's.
NOISE_CEILING_FILE = "noise_ceiling.jsonl"


def noise_ceiling_markdown(bench: H.Benchmark, result: H.RunResult, root: str | Path) -> str:
    """A paragraph: the noise ceiling (mean weighted tau of the second seed's accuracies against the ground truth
    over the targets where every model has its second run) beside each method's mean on the same targets; empty
    when ``root`` has no second-seed runs of a whole target."""
    import json

    from zoorank import ranking as R

    path = Path(root) / NOISE_CEILING_FILE
    if not path.is_file():
        return ""
    second: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            if int(rec.get("seed", 0)) == B.SEED:  # the build's own seed: the ground truth itself
                continue
            second.setdefault(rec["task"], {})[rec["model"]] = float(rec["finetune_acc"])
    per = {t: float(R.weighted_tau([accs[m] for m in bench.models], bench.truth(t, result.truth_kind)))
           for t, accs in second.items() if t in bench.tasks and set(bench.models) <= set(accs)}
    if not per:
        return ""
    means = []
    for m in dict.fromkeys(r.method for r in result):
        got = {r.task: r.weighted_tau for r in result if r.method == m and r.task in per}
        if len(got) == len(per):
            means.append((float(np.mean(list(got.values()))), m))
    shown = ", ".join(f"`{m}` {v:.3f}" for v, m in sorted(means, reverse=True))
    return (f"Noise ceiling (a second fine-tuning seed, `{NOISE_CEILING_FILE}`, on {len(per)} targets: "
            f"{', '.join(sorted(per))}): {float(np.mean(list(per.values()))):.3f} mean weighted tau against the "
            f"ground truth; the methods above on the same targets: {shown or '-'}.\n")
