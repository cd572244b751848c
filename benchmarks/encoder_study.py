"""How much of the learned rankers' score comes from their encoder being a member of the zoo.

The proxy encoder of Fennec and of the belief ranker's similarity, and the task encoder of Model Spider, is by
default ZooBench's untouched ImageNet MobileNetV2 (``mobilenet_v2-imagenet``), itself a model of the zoo, and the
parent of the 8 fine-tunes that win most targets. Three configurations, each leave-one-target-out on every target:

- ``member``: the zoo as it is, the default encoder (what every other section measures);
- ``left out``: the same encoder, with ``mobilenet_v2-imagenet`` left out of the zoo (36 models): the encoder is
  then no candidate, and the methods are judged on the 36 others (so are the baselines);
- ``other encoder``: the full zoo, with another zoo model as the encoder (``--other``, default the scratch ViT
  ``vit-p4-d96x4-latin``, trained on one source domain only): how much the encoder's own quality counts.

For each, the learned rankers (``rank:coarse``: the belief ranker's prior, which uses the encoder through task
similarity; ``rank:default``; ``fennec``) beside ``reg_hscore`` and the popularity prior on the same zoo. The
margins over popularity say what the learned part adds in each case.

    python -m benchmarks.encoder_study --benchmark benchmarks/zoobench --write docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank.evaluation.tables import markdown_table

__all__ = ["main", "markdown", "study"]

SECTION = "encoder-study"
MEMBER = "mobilenet_v2-imagenet"
METHODS = ("rank:coarse", "rank:default", "fennec", "reg_hscore", "baseline:popularity")


def _provider(root, encoder: str):
    """A ZooBench provider whose proxy / task encoder is the zoo model ``encoder``."""
    from zoorank.datasets.zoobench.provider import ZooBenchProvider

    class WithEncoder(ZooBenchProvider):
        encoder_model = encoder

        def proxy_features(self, task: str, encoder: str = encoder) -> np.ndarray:
            return super().proxy_features(task, encoder)

    return WithEncoder(root)


def study(root, *, other: str, methods: Sequence[str] = METHODS, tasks: Sequence[str] | None = None,
          progress=None, checkpoints: str | Path | None = None) -> list[dict]:
    """Rows ``{"config", "encoder", "models", "method", "weighted_tau", "top1_regret", "n"}`` (module doc).
    ``checkpoints``: a path prefix; each configuration's results are appended to ``<prefix>.<config>.partial.jsonl``
    as they come, and a rerun resumes from them (an interrupted study loses nothing)."""
    from zoorank import evaluation as H

    bench = H.load_benchmark(root)
    if other not in bench.models:
        raise SystemExit(f"--other {other!r} is not a model of the benchmark")
    configs = [("member", MEMBER, bench), ("left out", MEMBER, bench.without_models([MEMBER])),
               ("other encoder", other, bench)]
    rows = []
    for name, encoder, b in configs:
        ck = None if checkpoints is None else H.Checkpoint(f"{checkpoints}.{name.replace(' ', '-')}.partial.jsonl",
                                                           b)
        res = H.run(b, H.make_methods(",".join(methods)), _provider(root, encoder), list(tasks or b.tasks),
                    progress=(lambda m, t, name=name: progress(f"{name}: {m} on {t}")) if progress else None,
                    done=ck.load() if ck else (), on_result=ck.add if ck else None)
        for m in methods:
            recs = [r for r in res if getattr(r, "method", None) == m and hasattr(r, "weighted_tau")]
            rows.append({"config": name, "encoder": encoder, "models": len(b.models), "method": m, "n": len(recs),
                         "weighted_tau": float(np.mean([r.weighted_tau for r in recs])) if recs else float("nan"),
                         "top1_regret": float(np.mean([r.top1_regret for r in recs])) if recs else float("nan")})
    return rows


def markdown(rows: list[dict], *, command: str) -> str:
    configs = list(dict.fromkeys(r["config"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    at = {(r["config"], r["method"]): r for r in rows}
    table = []
    for m in methods:
        table.append([m] + [f"{at[(c, m)]['weighted_tau']:.3f}" for c in configs])
    pop = {c: at[(c, "baseline:popularity")]["weighted_tau"] for c in configs if (c, "baseline:popularity") in at}
    margin = [[m] + [f"{at[(c, m)]['weighted_tau'] - pop[c]:+.3f}" for c in configs]
              for m in methods if m != "baseline:popularity" and pop]
    head = ["method"] + [f"{c} ({at[(c, methods[0])]['encoder']}, {at[(c, methods[0])]['models']} models)"
                         for c in configs]
    lines = ["## The encoder of the learned rankers: a zoo member or not", "",
             f"Command: `{command}`  ", "Protocol: module doc of `benchmarks.encoder_study` (leave-one-target-out, "
             "every target; mean weighted tau against finetune_acc).", "",
             markdown_table(head, table), "", "Margin over the popularity prior of the same zoo:", "",
             markdown_table(head, margin)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.encoder_study", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--other", default="vit-p4-d96x4-latin", help="the other encoder (a zoo model)")
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--write", default=None, help=f"Markdown file to write the section '{SECTION}' into")
    ap.add_argument("--json", default=None, help="write the rows to this JSON file; the run's results are "
                                                 "checkpointed beside it (<json>.<config>.partial.jsonl) and a "
                                                 "rerun resumes from them")
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    rows = study(args.benchmark, other=args.other, tasks=tasks, checkpoints=args.json,
                 progress=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1) + "\n", encoding="utf-8")
    publish_section(markdown(rows, command=command_line("python -m benchmarks.encoder_study", argv)), args.write,
                    SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
