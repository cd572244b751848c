"""The noise ceiling of ZooBench: how well one fine-tuning seed's accuracies rank the zoo against another's.

ZooBench's ground truth is one fine-tuning run per (model, target) with seed 0 (``zoorank.datasets.zoobench.build``:
head initialisation, batch order and augmentation; the learning-rate choice on a fixed validation split). A second
run of the same protocol with another seed gives another accuracy vector for the target; the weighted Kendall tau
between the two (:func:`zoorank.ranking.weighted_tau`, symmetric) is what a ranker that knew one seed's truth exactly
would score against the other's: the physical limit of any ranker's figure on this benchmark. Its mean over the
targets is printed beside the rows of the committed results on the same targets (``results.json``: the popularity
prior and the best metric).

Jobs are the build's own (``run_finetune`` with ``BuildConfig(seed=...)``, the linear probe skipped), run by
``--workers`` processes of ``--threads`` threads, each result appended to ``--out`` (JSON lines) as it finishes: an
interrupted run resumes where it stopped.

Command: ``python -m benchmarks.noise_ceiling --benchmark benchmarks/zoobench --tasks printed_digits,
braille_cells,letters_on_texture,shape_outlines,object_counts,mirror_symmetry --seed 1 --out
benchmarks/zoobench/noise_ceiling.jsonl --write docs/BENCHMARKS.md`` (section ``zoobench-noise-ceiling``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError

SECTION = "zoobench-noise-ceiling"
DEFAULT_TASKS = ("printed_digits", "braille_cells", "letters_on_texture", "shape_outlines", "object_counts",
                 "mirror_symmetry")


def read_done(path: Path, seed: int) -> dict[tuple[str, str], float]:
    """The finished jobs of ``path`` for ``seed``: {(model, task): fine-tuned accuracy}."""
    done: dict[tuple[str, str], float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if int(rec["seed"]) == seed:
                    done[(rec["model"], rec["task"])] = float(rec["finetune_acc"])
    return done


def ceiling(first: dict[str, dict[str, float]], second: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per task: the weighted tau between the two seeds' accuracies over the models both have (at least 3)."""
    out = {}
    for task, accs in second.items():
        models = sorted(m for m in accs if m in first.get(task, {}))
        if len(models) >= 3:
            out[task] = float(R.weighted_tau([accs[m] for m in models], [first[task][m] for m in models]))
    return out


def _job(args: tuple) -> dict:
    from zoorank.datasets.zoobench import build as B

    config, model, task, root, work, threads, sha = args
    rec = B.run_finetune(config, model, task, root, work, threads, sha, linear_probe=False)
    return {"model": model, "task": task, "seed": config.seed, "finetune_acc": rec["finetune_acc"],
            "best_lr": rec["best_lr"], "cpu_seconds": rec["cpu_seconds"]}


def run_jobs(root: Path, tasks: Sequence[str], seed: int, out: Path, *, workers: int, threads: int,
             work: Path, log=print) -> None:
    """Fine-tune every model of the zoo on ``tasks`` with ``seed`` (the jobs not yet in ``out``)."""
    import csv

    from zoorank.datasets.zoobench import build as B

    with open(root / "zoo.csv", newline="") as fh:
        zoo = {row["model"]: row.get("sha256") or None for row in csv.DictReader(fh)}
    config = B.BuildConfig(tasks=tuple(tasks), seed=seed)
    done = read_done(out, seed)
    todo = [(config, m, t, str(root), str(work), threads, zoo[m]) for t in tasks for m in zoo if (m, t) not in done]
    log(f"{len(done)} jobs done, {len(todo)} to run ({workers} workers x {threads} threads)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with cf.ProcessPoolExecutor(max_workers=workers) as pool, open(out, "a") as fh:
        futures = [pool.submit(_job, job) for job in todo]
        for k, fut in enumerate(cf.as_completed(futures), 1):
            rec = fut.result()
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            log(f"[{k}/{len(todo)}] {rec['model']} on {rec['task']}: {rec['finetune_acc']:.4f}")


def markdown(per_task: dict[str, float], rows: dict[str, dict[str, float]], command: str, seed: int) -> str:
    """The section: per target, the ceiling beside the committed methods' weighted tau on it."""
    import datetime as _dt

    tasks = sorted(per_task)
    lines = ["## ZooBench: the noise ceiling (a second fine-tuning seed)", "", f"Command: `{command}`  ",
             f"Measured {_dt.date.today().isoformat()}.", "",
             f"Weighted Kendall tau between the fine-tuned accuracies of seed 0 (the committed ground truth) and of "
             f"seed {seed} (the same protocol rerun), over the whole zoo: the most any ranker can score against one "
             "seed's truth when the other seed's is as true. Beside it, the committed results on the same targets "
             "(`results.json`, leave-one-target-out).", "",
             "| ranking | " + " | ".join(tasks) + " | mean |", "| --- |" + " ---: |" * (len(tasks) + 1)]
    lines.append(f"| seed {seed} against seed 0 (ceiling) | " + " | ".join(f"{per_task[t]:.3f}" for t in tasks)
                 + f" | {np.mean([per_task[t] for t in tasks]):.3f} |")
    for name, vals in rows.items():
        if all(t in vals for t in tasks):
            lines.append(f"| {name} | " + " | ".join(f"{vals[t]:.3f}" for t in tasks)
                         + f" | {np.mean([vals[t] for t in tasks]):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.noise_ceiling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="ZooBench directory")
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated targets")
    ap.add_argument("--seed", type=int, default=1, help="the second fine-tuning seed (the committed truth is 0)")
    ap.add_argument("--out", default=None, help="JSON lines of the runs (default: <benchmark>/noise_ceiling.jsonl)")
    ap.add_argument("--work-dir", default=".zoobench-work/noise", help="fine-tuning checkpoints (resumable)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="baseline:popularity,reg_hscore,rank:default,rank:coarse",
                    help="committed rows of results.json and ablations/belief_live.json shown beside the ceiling")
    ap.add_argument("--write", default=None, help="write the 'zoobench-noise-ceiling' section of this Markdown file")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: report the targets whose every model is already in --out")
    args = ap.parse_args(argv)
    from zoorank import evaluation as H

    root = Path(args.benchmark)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bench = H.load_benchmark(root)
    unknown = [t for t in tasks if t not in bench.tasks]
    if unknown or args.seed == 0:
        raise InputError(f"unknown target(s) {unknown}" if unknown else "--seed must differ from the truth's seed 0")
    out = Path(args.out) if args.out else root / "noise_ceiling.jsonl"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if not args.report_only:
        run_jobs(root, tasks, args.seed, out, workers=args.workers, threads=args.threads, work=Path(args.work_dir),
                 log=log)
    second: dict[str, dict[str, float]] = {}
    for (m, t), acc in read_done(out, args.seed).items():
        if t in tasks:
            second.setdefault(t, {})[m] = acc
    complete = [t for t in tasks if len(second.get(t, {})) == len(bench.models)]  # a target counts once whole
    pending = [t for t in tasks if t not in complete]
    if pending:
        log(f"not complete yet (resume with the same command): {', '.join(pending)}")
    first = {t: dict(zip(bench.models, map(float, bench.truth(t)), strict=True)) for t in complete}
    per_task = ceiling(first, {t: second[t] for t in complete})
    if not per_task:
        raise InputError(f"no target has all {len(bench.models)} models fine-tuned with seed {args.seed} yet in {out}")
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows: dict[str, dict[str, float]] = {}
    for path in (root / "results.json", root / "ablations" / "belief_live.json"):
        if path.is_file():
            for r in H.read_json(path):
                if r.method in wanted and r.task in per_task:
                    rows.setdefault(r.method, {})[r.task] = r.weighted_tau
    print(json.dumps({"seed": args.seed, "ceiling": per_task, "mean": float(np.mean(list(per_task.values())))},
                     indent=1))
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        command = (f"python -m benchmarks.noise_ceiling --benchmark {args.benchmark} --tasks {','.join(tasks)} "
                   f"--seed {args.seed} --write {args.write}")
        text = markdown(per_task, {m: rows[m] for m in wanted if m in rows}, command, args.seed)
        if pending:
            text += (f"\nStill running: {', '.join(pending)} ({sum(len(second.get(t, {})) for t in pending)} of "
                     f"{len(pending) * len(bench.models)} runs in `{out}`); the same command resumes them.\n")
        write_markdown_section(Path(args.write), SECTION, text)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
