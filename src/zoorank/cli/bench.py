"""``zoorank bench``: reproducible measurements."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zoorank.cli._common import console, err_console, fmt, print_json, print_table
from zoorank.evaluation import metric_speed as S
from zoorank.evaluation import tables as T


@click.group()
def bench() -> None:
    """Benchmarks: metric speed, extraction throughput, and ZooBench (build, run)."""


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


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
    names = S.speed_names(metric_names)
    sizes = list(S.SIZES.values()) if size == "both" else [S.SIZES[size]]
    with _progress() as progress:
        task = progress.add_task("timing metrics", total=S.n_jobs(names, sizes, scaling))

        def on_job(name, n, d, c, error):
            if error is not None:
                err_console.print(f"[red]{error}[/]")
            progress.update(task, description=f"{name} N={n} D={d} C={c}", advance=1)

        timings, scaling_results = S.measure_all(names, sizes, repeat=repeat, scaling=scaling, seed=seed,
                                                 on_job=on_job)
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
        T.write_markdown_section(Path(write_path), "metric-speed", S.markdown(timings, scaling_results, cmd))
        console.print(f"wrote {write_path}")


@bench.command("extract")
@click.option("--images", "n_images", default=1000, show_default=True, help="Number of images.")
@click.option("--size", "input_size", default=64, show_default=True, help="Image and model input size (px).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--write", "write_path", type=click.Path(dir_okay=False), default=None,
              help="Write the table into this Markdown file (its 'extraction-speed' section).")
def bench_extract(n_images, input_size, batch_size, write_path) -> None:
    """Extraction throughput (images/s) per model and the feature cache's speed-up."""
    from zoorank.evaluation import extract_speed as E

    with _progress() as progress:
        task = progress.add_task("extracting", total=len(E.TIMM_ARCHS) + 1)
        timings = E.measure(n_images, input_size, batch_size, progress=lambda _n: progress.advance(task))
    print_table(f"feature extraction, {n_images} images at {input_size} px",
                ["model", "params", "dim", "images/s", "cold (s)", "warm (s)", "cache speed-up"],
                [[t.model, f"{t.params:,}", str(t.feature_dim), f"{t.images_per_second:.0f}", f"{t.cold_seconds:.2f}",
                  f"{t.warm_seconds:.4f}", f"{t.cache_speedup:.0f}x"] for t in timings])
    if write_path:
        cmd = f"zoorank bench extract --images {n_images} --size {input_size} --write {write_path}"
        T.write_markdown_section(Path(write_path), "extraction-speed",
                                 E.markdown(timings, n_images, input_size, cmd, T.machine_line()))
        console.print(f"wrote {write_path}")


def _register_zoobench() -> None:
    from zoorank.cli.bench_zoobench import bench_build, bench_compare, bench_run

    bench.add_command(bench_build)
    bench.add_command(bench_run)
    bench.add_command(bench_compare)


_register_zoobench()
