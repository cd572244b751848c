"""The ZooBench section of ``docs/BENCHMARKS.md``: the build's measured cost, whether the ground truth
discriminates, and every method's quality per target (written by ``zoorank bench run --write``)."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from pathlib import Path

from zoorank.bench import harness as H
from zoorank.bench.zoobench import build as B


def build_cost_markdown(root: str | Path) -> str:
    """The build's measured CPU time from its log, per phase, and the committed size."""
    try:
        cost = B.measured_cost(root)
    except Exception as exc:  # no log: a benchmark built elsewhere
        return f"Build cost: unknown ({exc}).\n"
    size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file() and ".work" not in p.parts)
    return (f"Build (`zoorank bench build`, 2 worker processes x 1 torch thread on the 2-core machine of "
            f"`docs/BENCHMARKS.md`): measured {cost['total'] / 3600:.2f} CPU-hours = pre-training "
            f"{cost['pretrain'] / 3600:.2f} h + fine-tuning and linear probes {cost['finetune'] / 3600:.2f} h "
            f"(sum over jobs of wall time x threads; budget 6 CPU-hours). Committed size of "
            f"`benchmarks/zoobench/`: {size / 1e6:.1f} MB (budget 150 MB).\n")


def zoo_markdown(bench: H.Benchmark) -> str:
    """One line on the zoo's make-up."""
    inits = Counter(e.init for e in bench.zoo.values())
    archs = Counter(e.architecture for e in bench.zoo.values())
    domains = Counter(e.source_domain for e in bench.zoo.values())
    return (f"Zoo: {len(bench.models)} models ({inits.get('imagenet', 0)} ImageNet-MobileNetV2-derived, "
            f"{inits.get('scratch', 0)} trained from scratch), {len(archs)} architectures, {len(domains)} "
            f"source domains (incl. ImageNet); {len(bench.tasks)} target tasks.\n")


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
    ]
    return "\n".join(parts)


def methods_section(title: str, result: H.RunResult, command: str) -> str:
    """A section with only the method tables (ablations, learned-method variants)."""
    return "\n".join([f"## {title}", "", f"Command: `{command}`  ",
                       f"Measured {_dt.date.today().isoformat()} on ZooBench, leave-one-target-out.", "",
                       H.markdown(result)])
