"""``zoorank bench``: reproducible measurements."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zoorank.bench import metric_speed as S
from zoorank.cli._common import console, err_console, fmt, print_json, print_table


@click.group()
def bench() -> None:
    """Benchmarks: metric speed, extraction throughput, and ZooBench (build, run)."""


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


def _secs(x: float) -> str:
    return f"{x:.3f}" if x >= 0.01 else f"{x * 1000:.2f} ms"


def _speed_markdown(timings: list[S.Timing], scaling: dict, command: str) -> str:
    lines = [
        "## Metric speed",
        "",
        f"Command: `{command}`  ",
        f"Measured {_dt.date.today().isoformat()} on: {S.machine_line()}.  ",
        "Each metric runs in a fresh process on seeded `make_task()` data (post-ReLU-like features, "
        "~256 effective dimensions, balanced classes, 1000 source classes for LEEP, argmax source "
        "labels for NCE as in the reference timing); median of the repeats; peak = the process's "
        "peak resident memory (data included). Reference = the "
        "median of the published implementation (`../shared/conformance/REFERENCE_TIMINGS.md`, a "
        "shared 2-core machine: orders of magnitude); speed-up = reference / ours.",
        "",
    ]
    for size, (n, d, c) in S.SIZES.items():
        rows = [t for t in timings if (t.n, t.d, t.c) == (n, d, c)]
        if not rows:
            continue
        lines += [f"### {size}: N={n}, D={d}, C={c}", "",
                  "| metric | ours (s) | reference (s) | speed-up | peak MB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for t in rows:
            ref = t.reference
            lines.append(f"| {t.metric} | {_secs(t.seconds)} | {'-' if ref is None else f'{ref:.3f}'} | "
                         f"{'-' if ref is None else f'{t.speedup:.0f}x'} | {t.peak_mb:.0f} |")
        lines.append("")
    if scaling:
        lines += ["### Growth with N, D and C", "",
                  "Exponent a of time ∝ size^a, fitted over the grid "
                  + "; ".join(f"{k} ∈ {{{', '.join(str(dict(zip('NDC', g, strict=True))[k]) for g in grid)}}}"
                              for k, grid in S.SCALING_GRID.items())
                  + " (the other two at N=5000, D=2048, C=100). Below ~0.05 s the fit is dominated by noise.",
                  "",
                  "| metric | " + " | ".join(f"s at {k}={v}" for k in S.SCALING_GRID for v in
                                              [dict(zip("NDC", g, strict=True))[k] for g in S.SCALING_GRID[k]])
                  + " | a(N) | a(D) | a(C) |",
                  "| --- |" + " ---: |" * (3 * len(S.SCALING_GRID) + 3)]
        for name, per_axis in scaling.items():
            cells = [f"{t:.3f}" for axis in S.SCALING_GRID for t in per_axis[axis]["seconds"]]
            exps = [f"{per_axis[axis]['exponent']:.2f}" for axis in S.SCALING_GRID]
            lines.append(f"| {name} | " + " | ".join(cells + exps) + " |")
        lines.append("")
    return "\n".join(lines)


@bench.command("metrics")
@click.option("--size", type=click.Choice(["realistic", "small", "both"]), default="both", show_default=True)
@click.option("--metric", "metric_names", default="all", show_default=True,
              help="Comma-separated metric names, or 'all'.")
@click.option("--repeat", default=3, show_default=True, help="Calls per measurement (median reported).")
@click.option("--scaling", is_flag=True, help="Also measure how time grows with N, D and C.")
@click.option("--seed", default=0, show_default=True)
@click.option("--write", "write_path", type=click.Path(dir_okay=False), default=None,
              help="Write the table into this Markdown file (its 'metric-speed' section).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench_metrics(size, metric_names, repeat, scaling, seed, write_path, as_json) -> None:
    """Time every metric at N=5000, D=2048, C=100 (and a small size) against the references."""
    from zoorank import metrics as M

    names = M.available() if metric_names == "all" else [m.strip() for m in metric_names.split(",")]
    for name in names:
        M.info(name)
    sizes = list(S.SIZES.values()) if size == "both" else [S.SIZES[size]]
    timings: list[S.Timing] = []
    scaling_results: dict = {}
    jobs = [(name, sz) for sz in sizes for name in names]
    grid_jobs = []
    if scaling:
        grid = sorted({g for axis in S.SCALING_GRID.values() for g in axis} - set(sizes))
        grid_jobs = [(name, g) for g in grid for name in names]
    measured: dict[tuple, S.Timing] = {}
    with _progress() as progress:
        task = progress.add_task("timing metrics", total=len(jobs) + len(grid_jobs))
        for name, (n, d, c) in jobs + grid_jobs:
            progress.update(task, description=f"{name} N={n} D={d} C={c}")
            reps = repeat if (name, (n, d, c)) in jobs else 1
            try:
                t = S.measure(name, n, d, c, seed=seed, repeat=reps)
            except Exception as exc:
                err_console.print(f"[red]{exc}[/]")
                progress.advance(task)
                continue
            measured[(name, (n, d, c))] = t
            if (name, (n, d, c)) in jobs:
                timings.append(t)
            progress.advance(task)
    if scaling:
        for name in names:
            per_axis = {}
            for axis, grid in S.SCALING_GRID.items():
                ts = [measured.get((name, g)) for g in grid]
                if any(t is None for t in ts):
                    break
                axis_sizes = [dict(zip("NDC", g, strict=True))[axis] for g in grid]
                secs = [t.seconds for t in ts]
                per_axis[axis] = {"sizes": axis_sizes, "seconds": secs,
                                  "exponent": S.scaling_exponent(axis_sizes, secs)}
            else:
                scaling_results[name] = per_axis
    if as_json:
        print_json({"timings": [dict(t.__dict__, reference=t.reference, speedup=t.speedup) for t in timings],
                    "scaling": scaling_results})
    else:
        for n, d, c in sizes:
            rows = [t for t in timings if (t.n, t.d, t.c) == (n, d, c)]
            print_table(f"metric speed at N={n}, D={d}, C={c}",
                        ["metric", "ours (s)", "reference (s)", "speed-up", "peak MB", "score"],
                        [[t.metric, f"{t.seconds:.3f}", fmt(t.reference, 3),
                          "-" if t.speedup is None else f"{t.speedup:.0f}x", f"{t.peak_mb:.0f}",
                          fmt(t.score, 5)] for t in rows])
    if write_path:
        cmd = "zoorank bench metrics" + ("" if size == "both" else f" --size {size}") + \
              ("" if metric_names == "all" else f" --metric {metric_names}") + \
              (" --scaling" if scaling else "") + f" --repeat {repeat} --write {write_path}"
        S.write_markdown_section(Path(write_path), "metric-speed", _speed_markdown(timings, scaling_results, cmd))
        console.print(f"wrote {write_path}")


@bench.command("extract")
@click.option("--images", "n_images", default=1000, show_default=True, help="Number of images.")
@click.option("--size", "input_size", default=64, show_default=True, help="Image and model input size (px).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--write", "write_path", type=click.Path(dir_okay=False), default=None,
              help="Write the table into this Markdown file (its 'extraction-speed' section).")
def bench_extract(n_images, input_size, batch_size, write_path) -> None:
    """Extraction throughput (images/s) per model and the feature cache's speed-up."""
    from zoorank.bench import extract_speed as E

    with _progress() as progress:
        task = progress.add_task("extracting", total=len(E.TIMM_ARCHS) + 1)
        timings = E.measure(n_images, input_size, batch_size, progress=lambda _n: progress.advance(task))
    print_table(f"feature extraction, {n_images} images at {input_size} px",
                ["model", "params", "dim", "images/s", "cold (s)", "warm (s)", "cache speed-up"],
                [[t.model, f"{t.params:,}", str(t.feature_dim), f"{t.images_per_second:.0f}", f"{t.cold_seconds:.2f}",
                  f"{t.warm_seconds:.4f}", f"{t.cache_speedup:.0f}x"] for t in timings])
    if write_path:
        cmd = f"zoorank bench extract --images {n_images} --size {input_size} --write {write_path}"
        S.write_markdown_section(Path(write_path), "extraction-speed",
                                 E.markdown(timings, n_images, input_size, cmd, S.machine_line()))
        console.print(f"wrote {write_path}")


def _register_zoobench() -> None:
    from zoorank.cli.bench_zoobench import bench_build, bench_pareto, bench_run

    bench.add_command(bench_build)
    bench.add_command(bench_run)
    bench.add_command(bench_pareto)


_register_zoobench()
