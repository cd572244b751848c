"""``zoorank bench build`` and ``zoorank bench run``: ZooBench."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from zoorank import paths
from zoorank.cli._common import console, err_console
from zoorank.errors import InputError


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@click.command("build")
@click.option("--out", "root", type=click.Path(file_okay=False), default=None,
              help="Benchmark directory (default: $ZOORANK_ZOOBENCH or ./benchmarks/zoobench).")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Training checkpoints (default: .zoobench-work in the repository, or OUT/.work).")
@click.option("--workers", type=int, default=None, help="Parallel training processes (default: min(2, CPUs)).")
@click.option("--threads", type=int, default=None,
              help="Threads per worker, torch and BLAS alike (default: CPUs / workers).")
@click.option("--models", default=None, help="Comma-separated subset of the zoo (a different benchmark).")
@click.option("--tasks", default=None, help="Comma-separated subset of the target tasks (a different benchmark).")
@click.option("--max-jobs", type=int, default=None, help="Stop after this many new jobs (resume later).")
@click.option("--dry-run", is_flag=True, help="Print the plan and the estimated cost, train nothing.")
def bench_build(root, work_dir, workers, threads, models, tasks, max_jobs, dry_run) -> None:
    """Build ZooBench: pre-train the zoo, fine-tune every (model, task) pair; resumable at any point."""
    from zoorank.datasets.zoobench import build as B

    kwargs = {}
    if models:
        kwargs["models"] = tuple(m.strip() for m in models.split(",") if m.strip())
    if tasks:
        kwargs["tasks"] = tuple(t.strip() for t in tasks.split(",") if t.strip())
    config = B.BuildConfig(**kwargs)
    root = Path(root) if root else paths.zoobench_dir()
    if dry_run:
        config.check()
        jobs = B.plan(config)
        pre = sum(j.estimate for j in jobs if j.kind == "pretrain")
        fine = sum(j.estimate for j in jobs if j.kind == "finetune")
        console.print(f"{len(config.zoo())} models x {len(config.tasks)} tasks: "
                      f"{sum(j.kind == 'pretrain' for j in jobs)} pre-training and "
                      f"{sum(j.kind == 'finetune' for j in jobs)} fine-tuning jobs; estimated single-core cost "
                      f"{_hms(pre)} + {_hms(fine)} = {_hms(pre + fine)}")
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console)
    state: dict = {}

    def report(event: str, payload) -> None:
        if event == "plan":
            state["bar"] = progress.add_task("ZooBench build", total=payload["total"], completed=payload["done"])
            console.print(f"{payload['jobs']} jobs, {payload['todo']} to do; {payload['workers']} workers x "
                          f"{payload['threads']} threads")
        elif event == "finish":
            job, rec = payload
            progress.advance(state["bar"], job.estimate)
            what = (f"{job.model}: params {rec['params']:,}, train acc {rec['final_train_acc']:.3f}"
                    if job.kind == "pretrain" else
                    f"{job.model} on {job.task}: fine-tune {rec['finetune_acc']:.3f} (lr {rec['best_lr']:g}), "
                    f"linear probe {rec['linear_probe_acc']:.3f}")
            progress.console.print(f"[dim]{job.kind}[/dim] {what} [dim]({rec['seconds']:.0f} s)[/dim]")

    with progress:
        out = B.build(root, config=config, work_dir=work_dir, workers=workers, threads=threads, report=report,
                      max_jobs=max_jobs)
    if out["complete"]:
        cost = B.measured_cost(root)
        console.print(f"ZooBench complete in {root}: ground_truth.csv written; measured cost "
                      f"{cost['total'] / 3600:.2f} CPU-hours (pre-training {cost['pretrain'] / 3600:.2f}, "
                      f"fine-tuning {cost['finetune'] / 3600:.2f})")
    else:
        console.print(f"{out['remaining']} jobs remain; run the same command again to resume")


@click.command("run")
@click.option("--methods", default="all", show_default=True,
              help="Comma-separated methods (metrics, baseline:..., learned methods) or 'all'.")
@click.option("--dir", "root", type=click.Path(file_okay=False), default=None,
              help="Benchmark directory (default: $ZOORANK_ZOOBENCH or ./benchmarks/zoobench).")
@click.option("--tasks", default=None, help="Comma-separated subset of the targets (default: all).")
@click.option("--truth", type=click.Choice(["finetune_acc", "linear_probe_acc"]), default="finetune_acc",
              show_default=True, help="The ground truth to score against.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the records (DESIGN.md format) to this JSON file; until the run ends they are "
                   "checkpointed in FILE.partial.jsonl, and a rerun resumes from there.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False), default=None,
              help="Write the tables into this Markdown file (its 'zoobench' section).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Feature cache (default: $ZOORANK_CACHE or ~/.cache/zoorank/features).")
@click.option("--threads", type=int, default=None, help="Torch threads for feature extraction.")
@click.option("--within", default=None, metavar="TASKS",
              help="Restrict the benchmark to these comma-separated targets: leave-one-out inside them, every "
                   "history made of the other chosen targets only (a smaller, cheaper benchmark).")
@click.option("--section", default="zoobench", show_default=True,
              help="Marker of the Markdown section --write replaces ('zoobench' = the full benchmark report; any "
                   "other name writes only the method tables, e.g. for ablations).")
@click.option("--title", default=None, help="Heading of a non-default section.")
@click.option("--live", is_flag=True,
              help="Run every forward pass of the held-out target on the spot (no feature cache, no stored "
                   "score), so each record's seconds are end to end; the other targets' features stay cached.")
def bench_run(methods, root, tasks, truth, json_path, write_path, cache_dir, threads, within, section,
              title, live) -> None:
    """Evaluate ranking methods on ZooBench, leave-one-target-out, against the fine-tuning ground truth."""
    from zoorank import evaluation as H
    from zoorank.datasets.zoobench import report as RP
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.store.feature_cache import FeatureCache

    root = Path(root) if root else paths.zoobench_dir()
    bench = H.load_benchmark(root)
    if within and write_path and section == "zoobench":
        raise click.BadParameter("a run --within a subset would replace the full benchmark's 'zoobench' section; "
                                 "give it its own --section", param_hint="--within")
    if within:
        try:
            bench = bench.within([t.strip() for t in within.split(",") if t.strip()])
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--within") from exc
    chosen = H.make_methods(methods)
    task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    provider = ZooBenchProvider(root, cache=FeatureCache(cache_dir) if cache_dir else None, threads=threads)
    n_tasks = len(task_list or bench.tasks)
    live_source = None
    if live:
        from zoorank.datasets.zoobench.provider import live_provider

        err_console.print("--live: warming up (every task's data, every model once; untimed)")
        live_source = live_provider(root, task_list or bench.tasks, bench.models, threads=threads)
    checkpoint = H.Checkpoint(Path(json_path).with_name(Path(json_path).name + ".partial.jsonl"), bench, truth) \
        if json_path else None
    done = checkpoint.load() if checkpoint is not None else []
    if done:
        err_console.print(f"resuming: {len(done)} (method, task) results from {checkpoint.path}")
    total = len(chosen) * n_tasks
    count = [0]

    def log_line(method: str, task: str) -> None:  # a line per evaluation when stderr is a log file
        count[0] += 1
        if not err_console.is_terminal:
            err_console.print(f"[{count[0]}/{total}] {method} on {task}", highlight=False)

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                  transient=True) as progress:
        bar = progress.add_task("ZooBench run", total=total)

        def advance(method: str, task: str) -> None:
            progress.update(bar, advance=1, description=f"{method} on {task}")
            log_line(method, task)

        result = H.run(bench, chosen, provider, task_list, truth_kind=truth, progress=advance, done=done,
                       on_result=checkpoint.add if checkpoint is not None else None, live_provider=live_source)
    console.print(H.markdown(result))
    console.print(f"forward passes computed: {provider.computed} (the rest from the feature cache)")
    if json_path:
        H.write_json(result, json_path)
        console.print(f"wrote {json_path}")
        checkpoint.path.unlink(missing_ok=True)
    if write_path:
        from zoorank.evaluation import tables as T

        cmd = "zoorank bench run" + ("" if methods == "all" else f" --methods {methods}") + \
              ("" if truth == "finetune_acc" else f" --truth {truth}") + \
              (f" --within {within}" if within else "") + (f" --tasks {tasks}" if tasks else "") + \
              (" --live" if live else "") + \
              (f" --json {json_path}" if json_path else "") + f" --write {write_path}" + \
              ("" if section == "zoobench" else f" --section {section}") + (f" --title '{title}'" if title else "")
        body = (RP.section(bench, result, root, cmd) if section == "zoobench"
                else RP.methods_section(title or section, result, cmd, bench, root))
        T.write_markdown_section(Path(write_path), section, body)
        console.print(f"wrote {write_path}")


@click.command("compare")
@click.argument("rerun", type=click.Path(exists=True, dir_okay=False))
@click.argument("committed", type=click.Path(exists=True, dir_okay=False))
@click.option("--tol", type=click.FloatRange(min=0), default=None,
              help="Largest difference of weighted tau, Pearson and top-1 regret (default: REPRODUCE_TOL, 1e-6).")
@click.option("--only-common", is_flag=True, help="Compare only the (method, task) pairs of both files.")
def bench_compare(rerun, committed, tol, only_common) -> None:
    """Check that a rerun's records (zoorank bench run --json) reproduce committed ones; exit 1 when not."""
    from zoorank import evaluation as H

    try:
        new, old = H.read_json(rerun), H.read_json(committed)
    except InputError as exc:
        raise click.ClickException(f"{exc}; give two files written by zoorank bench run --json") from exc
    new_keys, old_keys = {(r.method, r.task) for r in new}, {(r.method, r.task) for r in old}
    keys = sorted(new_keys & old_keys) if only_common else None
    tol = H.REPRODUCE_TOL if tol is None else tol
    n = len(keys) if keys is not None else len(new_keys | old_keys)
    if n == 0:
        raise click.ClickException("the two files have no (method, task) record in common; nothing was compared")
    problems = H.compare_records(new, old, tol=tol, keys=keys)
    for line in problems:
        err_console.print(line, highlight=False)
    if problems:
        raise click.ClickException(f"{len(problems)} difference(s) over {n} (method, task) records")
    console.print(f"{n} (method, task) records reproduce within {tol:g}")
