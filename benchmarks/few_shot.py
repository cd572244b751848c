"""The few-shot protocol of Model Spider's table 1 on ZooBench: each target ranked from a probe set of ``--shots``
labelled images per class, several random draws (``--trials``), mean and spread.

Zhang et al. (NeurIPS 2023), section 5: "We sample 10 examples per class from the training set as a probe set and
report the average results over trials" (30 trials, 95 % intervals, appendix C.5). Here, for each target and trial
``s``, the probe set of the held-out target is cut to ``shots`` images per class (a class with fewer keeps all),
drawn with the seed ``(s, CRC-32 of the target's name)``; everything the methods learn from (the other targets,
the source domains) is as in the standard protocol, so a fitted ranker (Spider's fold, the belief ranker's fold) is
fitted once and reused by every trial. The held-out target's features of the drawn images are the rows of its
cached probe features (the zoo's networks run in eval mode, image by image); its proxy descriptor comes from the
same drawn images (a few-shot user has no other). ``full`` is the standard protocol in the same run.

Per method: the mean over trials of the mean weighted tau over targets, the standard deviation of that mean across
trials, a 95 % interval of the mean (normal, 1.96 sd / sqrt(trials)), and the mean top-1 regret.

    python -m benchmarks.few_shot --benchmark benchmarks/zoobench --json benchmarks/zoobench/ablations/few_shot.json \\
        --write docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank.evaluation.tables import markdown_table

__all__ = ["FewShotProvider", "few_shot_rows", "main", "markdown", "study"]

SECTION = "few-shot"
METHODS = ("spider", "spider:shrinkage", "spider:source-shrinkage", "rank:default", "reg_hscore", "logme",
           "baseline:popularity")


def few_shot_rows(labels: np.ndarray, shots: int, seed: int, task: str) -> np.ndarray:
    """Sorted probe rows: ``shots`` per class (all of a smaller class), drawn with the seed (seed, CRC-32(task))."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), zlib.crc32(task.encode("utf-8"))])
    out = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        out.append(rows if rows.size <= shots else rng.choice(rows, size=shots, replace=False))
    return np.sort(np.concatenate(out))


class FewShotProvider:
    """A feature provider whose held-out ``target`` (set before each run) is seen through ``rows`` of its probe set
    only; every other task and every other attribute is the base provider's."""

    def __init__(self, base):
        self.base = base
        self.target: str | None = None
        self.rows: np.ndarray | None = None

    def __getattr__(self, name: str):
        return getattr(self.base, name)

    def _cut(self, task: str) -> np.ndarray | None:
        return self.rows if task == self.target else None

    def labels(self, task: str) -> np.ndarray:
        y = np.asarray(self.base.labels(task))
        cut = self._cut(task)
        return y if cut is None else y[cut]

    def features(self, model: str, task: str, rows: np.ndarray | None = None):
        feats, logits = self.base.features(model, task)
        cut = self._cut(task)
        sel = cut if cut is not None else None
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            sel = rows if sel is None else sel[rows]
        if sel is None:
            return feats, logits
        return feats[sel], None if logits is None else logits[sel]

    def encoder_features(self, task: str):
        return self.features(self.base.encoder_model, task)[0], self.labels(task)

    def proxy_features(self, task: str, *args, **kwargs) -> np.ndarray:
        if self._cut(task) is None:
            return self.base.proxy_features(task, *args, **kwargs)
        return self.features(self.base.encoder_model, task)[0]


def study(root, *, shots: int, trials: int, methods: Sequence[str] = METHODS, tasks: Sequence[str] | None = None,
          checkpoints: str | Path | None = None, progress=None) -> dict:
    """{"shots", "trials", "rows": per method and trial (``"full"`` = the standard protocol) the mean weighted tau
    and top-1 regret over targets} (module doc)."""
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench.provider import ZooBenchProvider

    bench = H.load_benchmark(root)
    provider = FewShotProvider(ZooBenchProvider(root))
    made = H.make_methods(",".join(methods))  # one set of method objects: their fold fits are shared by the trials
    targets = list(tasks or bench.tasks)
    trials_ = ["full", *range(trials)]
    cks = {tr: H.Checkpoint(f"{checkpoints}.{tr}.partial.jsonl", bench) for tr in trials_} if checkpoints else {}
    done = {tr: (cks[tr].load() if cks else []) for tr in trials_}
    recs = {tr: list(done[tr]) for tr in trials_}
    for t in targets:  # every trial of a target in a row: the fold's fitted rankers are reused by all of them
        for trial in trials_:
            provider.target = None if trial == "full" else t
            provider.rows = None if trial == "full" else few_shot_rows(provider.base.labels(t), shots, trial, t)
            before = [r for r in done[trial] if r.task == t]
            res = H.run(bench, made, provider, [t], done=before, on_result=cks[trial].add if cks else None,
                        progress=(lambda m, task, trial=trial: progress(f"trial {trial}: {m} on {task}"))
                        if progress else None)
            recs[trial] += [r for r in res if r.task == t and r not in before]
    rows = []
    for trial in trials_:
        for m in methods:
            got = [r for r in recs[trial] if getattr(r, "method", None) == m and hasattr(r, "weighted_tau")]
            rows.append({"method": m, "trial": trial, "n": len(got),
                         "weighted_tau": float(np.mean([r.weighted_tau for r in got])) if got else float("nan"),
                         "top1_regret": float(np.mean([r.top1_regret for r in got])) if got else float("nan")})
    return {"shots": shots, "trials": trials, "targets": len(targets), "rows": rows}


def markdown(result: dict, *, command: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in result["rows"]))
    table = []
    for m in methods:
        full = next(r for r in result["rows"] if r["method"] == m and r["trial"] == "full")
        few = [r for r in result["rows"] if r["method"] == m and r["trial"] != "full"]
        tau = np.array([r["weighted_tau"] for r in few])
        sd = float(tau.std(ddof=1)) if tau.size > 1 else 0.0
        half = 1.96 * sd / np.sqrt(tau.size) if tau.size else float("nan")
        table.append([m, f"{full['weighted_tau']:.3f}", f"{tau.mean():.3f}", f"{sd:.3f}",
                      f"[{tau.mean() - half:.3f}, {tau.mean() + half:.3f}]",
                      f"{100 * np.mean([r['top1_regret'] for r in few]):.1f}", f"{100 * full['top1_regret']:.1f}"])
    k, n = result["shots"], result["trials"]
    lines = [f"## ZooBench few-shot: {k} labelled images per class ({n} random draws per target)", "",
             f"Command: `{command}`  ",
             f"Protocol: module doc of `benchmarks.few_shot` (Model Spider's few-shot evaluation: the held-out "
             f"target's probe cut to {k} images per class, {n} draws, everything learned from the other targets "
             f"as in the standard protocol; {result['targets']} targets, leave-one-target-out).", "",
             markdown_table(["method", "full probe", f"{k}-shot mean", "sd over draws", "95% interval",
                             f"{k}-shot top-1 regret (points)", "full top-1 regret (points)"], table)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from zoorank.evaluation.tables import command_line, publish_section

    ap = argparse.ArgumentParser(prog="python -m benchmarks.few_shot", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--shots", type=int, default=10, help="labelled images per class (the paper: 10)")
    ap.add_argument("--trials", type=int, default=5, help="random draws per target (the paper: 30)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated harness methods")
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--json", default=None, help="write the rows to this JSON file; each trial's results are "
                                                 "checkpointed beside it and a rerun resumes from them")
    ap.add_argument("--write", default=None, help=f"Markdown file to write the section '{SECTION}' into")
    args = ap.parse_args(argv)
    if args.shots < 1 or args.trials < 2:
        raise SystemExit("--shots must be >= 1 and --trials >= 2 (a spread needs two draws)")
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    result = study(args.benchmark, shots=args.shots, trials=args.trials, methods=methods, tasks=tasks,
                   checkpoints=args.json, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    publish_section(markdown(result, command=command_line("python -m benchmarks.few_shot", argv)), args.write,
                    SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
