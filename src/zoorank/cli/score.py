"""``zoorank extract`` and ``zoorank score``: features of a zoo on a dataset, and its ranking."""

from __future__ import annotations

import click
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zoorank.cli._common import console, err_console, fmt, print_json, print_table
from zoorank.cli.zoo import read_zoo
from zoorank.errors import InputError
from zoorank.ranking import best_first


def sweep_options(f):
    for option in reversed([
        click.option("--zoo", "zoo_file", required=True, type=click.Path(), help="Zoo file (YAML/TOML)."),
        click.option("--data", "data_path", required=True, type=click.Path(),
                     help="Image folder, unlabelled folder, CSV (path,label) or a Hugging Face dataset on disk."),
        click.option("--targets", "target_columns", default=None, metavar="COLUMN[,COLUMN]",
                     help="Regression: read these CSV columns as real-valued targets (instead of the label "
                          "column); only the metrics with a regression form score them."),
        click.option("--probe", "probe_size", type=click.IntRange(min=1), default=None,
                     help="Use a stratified probe of at most this many images (default: every image)."),
        click.option("--seed", default=0, show_default=True, help="Seed of the probe."),
        click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
                     help="Feature cache folder (default: $ZOORANK_CACHE or ~/.cache/zoorank/features)."),
        click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local",
                     show_default=True),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto."),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True),
    ]):
        f = option(f)
    return f


def open_target_data(data_path, target_columns):
    """The dataset at ``data_path``; with ``target_columns`` (``--targets``) a CSV read as a regression one."""
    from pathlib import Path

    from zoorank.data import open_dataset

    if target_columns is None:
        return open_dataset(data_path)
    if Path(data_path).suffix.lower() != ".csv":
        raise click.BadParameter(f"regression targets are read from a CSV file (path,<columns>), not {data_path}; "
                                 "write the images' targets into one", param_hint="--targets")
    return open_dataset(data_path, kind="csv", target_columns=target_columns)


def dataset_line(ds) -> str:
    """``name: N images, C classes`` (or ``K regression target(s)``)."""
    what = (f"{ds.n_targets} regression target(s)" if ds.is_regression else f"{ds.n_classes or 'no'} classes")
    return f"{ds.name}: {len(ds)} images, {what}"


def _run(zoo_file, data_path, target_columns, probe_size, seed, cache_dir, executor, device, batch_size, metrics,
         doing="extracting and scoring"):
    """Open the zoo and the data and run the sweep; ``metrics`` is a list of names or a function of the dataset
    that returns one."""
    from zoorank.data import probe
    from zoorank.store.feature_cache import FeatureCache
    from zoorank.zoo.sweep import run_sweep

    specs = read_zoo(zoo_file)
    try:
        ds = open_target_data(data_path, target_columns)
        p = probe(ds, n_max=probe_size, seed=seed) if probe_size else None
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    metrics = metrics(ds) if callable(metrics) else metrics
    n = len(p) if p is not None else len(ds)
    err_console.print(f"{dataset_line(ds)}; {n} used; {len(specs)} models")
    finished = [0]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                  TextColumn("{task.fields[models]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task(doing, total=len(specs) * n, models=f"0/{len(specs)} models")

        def done(r):
            status = ("cached" if r.from_cache else f"{r.n_images / max(r.seconds, 1e-9):.0f} img/s") if r.ok \
                else f"[red]failed[/]: {r.error}"
            for why in r.cache_problems:
                status += f" [yellow](a damaged cache entry was deleted and recomputed: {why})[/]"
            progress.console.print(f"  {r.name}: {status}")
            finished[0] += 1
            progress.update(task, models=f"{finished[0]}/{len(specs)} models")

        try:
            result = run_sweep(specs, ds, probe=p, metrics=metrics, cache=FeatureCache(cache_dir),
                               executor=executor, device=device, batch_size=batch_size, on_model_done=done,
                               on_images=lambda k: progress.advance(task, k))
        except InputError as exc:
            raise click.ClickException(str(exc)) from exc
    for prob in ds.problems:
        err_console.print(f"[yellow]skipped unreadable image[/] {prob.path}: {prob.reason}")
    unreadable = sorted({i for r in result.ok for i in r.unreadable} - {prob.index for prob in ds.problems})
    if unreadable:  # found in a worker process or in an earlier, cached run
        shown = ", ".join(str(ds.ref(i)) for i in unreadable[:5])
        err_console.print(f"[yellow]skipped {len(unreadable)} unreadable image(s)[/]: {shown}"
                          f"{' ...' if len(unreadable) > 5 else ''}")
    return result, ds, p, specs


@click.command()
@sweep_options
@click.option("--json", "as_json", is_flag=True)
def extract(zoo_file, data_path, target_columns, probe_size, seed, cache_dir, executor, device, batch_size,
            as_json) -> None:
    """Extract (and cache) the features of every model of a zoo on a dataset."""
    result, _, _, _ = _run(zoo_file, data_path, target_columns, probe_size, seed, cache_dir, executor, device,
                           batch_size, [], doing="extracting")
    rows = [{"model": r.name, "ok": r.ok, "error": r.error, "images": r.n_images, "feature_dim": r.feature_dim,
             "cached": r.from_cache, "forward_passes": r.forward_passes, "seconds": r.seconds}
            for r in result.results]
    if as_json:
        print_json(rows)
    else:
        print_table("feature extraction", ["model", "images", "dim", "cached", "batches", "seconds"],
                    [[r["model"], str(r["images"]), str(r["feature_dim"] or "-"), "yes" if r["cached"] else "",
                      str(r["forward_passes"]), f"{r['seconds']:.2f}"] for r in rows if r["ok"]])
    if result.failed:
        raise SystemExit(1 if not result.ok else 0)


@click.command()
@sweep_options
@click.option("--metric", "metric_names", default="logme", show_default=True,
              help="A metric, a comma-separated list, or 'all'; the zoo is ranked by the first one "
                   "(by the Copeland aggregate of every metric with 'all').")
@click.option("--kb", "kb_path", default=None, metavar="PATH|URL",
              help="Also record every score (kind metric:<name>) in this knowledge base.")
@click.option("--task", "task_name", default=None, help="Task name in the knowledge base (default: the dataset's).")
@click.option("--json", "as_json", is_flag=True)
def score(zoo_file, data_path, target_columns, probe_size, seed, cache_dir, executor, device, batch_size,
          metric_names, kb_path, task_name, as_json) -> None:
    """Extract, score and rank every model of a zoo on a dataset (a regression one with --targets)."""
    from zoorank import metrics as M

    names = [m.strip() for m in metric_names.split(",") if m.strip()] if metric_names != "all" else []
    for name in names:
        try:
            M.info(name)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--metric") from exc

    def chosen(ds) -> list[str]:
        if metric_names == "all":
            return M.available(regression=ds.is_regression)
        no_form = [n for n in names if ds.is_regression and not M.info(n).regression]
        if no_form:
            raise click.BadParameter(f"{', '.join(no_form)} has no regression form; metrics that have one: "
                                     f"{', '.join(M.available(regression=True))}", param_hint="--metric")
        return names

    result, ds, p, specs = _run(zoo_file, data_path, target_columns, probe_size, seed, cache_dir, executor, device,
                                batch_size, chosen)
    show_sweep_ranking(result, result.metrics, aggregate=metric_names == "all", as_json=as_json)
    if kb_path is not None:
        record_sweep(kb_path, result, ds, specs, task_name, p)


def record_sweep(kb_path, result, ds, specs, task_name, p) -> None:
    """Record a sweep's scores in the knowledge base at ``kb_path`` (``--kb``) and say how many."""
    from zoorank.cli.kb import open_kb
    from zoorank.zoo.sweep import record_to_kb

    with open_kb(kb_path) as base:
        try:
            n = record_to_kb(base, result, ds, specs, task=task_name, probe=p)
        except InputError as exc:
            raise click.ClickException(f"{exc} (choose another name with --task)") from exc
    err_console.print(f"recorded {n} scores in {kb_path}")


def show_sweep_ranking(result, names: list[str], *, aggregate: bool, as_json: bool) -> None:
    """Rank a sweep's models by its first metric (by the Copeland aggregate of every metric that scored every model
    with ``aggregate``) and print the table (or the JSON document)."""
    from zoorank import ranking as R

    if aggregate:
        common = [n for n in names if result.ok and all(n in r.scores for r in result.ok)]
        _note_dropped_metrics(result, names, common)
        if len(common) > 1:
            key = "copeland"
            ok = result.ok
            order_scores = R.copeland([[r.scores[n] for r in ok] for n in common])
        else:
            key = common[0] if common else None
    else:
        key = names[0]
    if key != "copeland":
        ok = [r for r in result.ok if key is not None and key in r.scores]
        if not ok:
            reasons = sorted({r.skipped.get(key, "") for r in result.ok} - {""}) if key else []
            raise click.ClickException(f"no model could be scored with {key or 'any metric'}"
                                       + (f": {'; '.join(reasons)}" if reasons else ""))
        order_scores = np.array([r.scores[key] for r in ok])
    ranked_ids = {id(r) for r in ok}
    unranked = [r for r in result.ok if id(r) not in ranked_ids]
    others = [n for n in names if n != key and all(n in r.scores for r in ok)]
    shown = others[:5]
    order = best_first(order_scores)
    if as_json:
        print_json({"ranked_by": key, "ranking": [{"rank": i + 1, "model": ok[j].name, "score": float(order_scores[j]),
                                                   "scores": ok[j].scores, "params": ok[j].num_params}
                                                  for i, j in enumerate(order)],
                    "not_ranked": [{"model": r.name, "reason": r.skipped.get(key, "")} for r in unranked],
                    "failed": [{"model": r.name, "error": r.error} for r in result.failed],
                    "seconds": result.seconds})
        return
    if len(others) > len(shown):
        err_console.print(f"the table shows {len(shown)} of the {len(others)} other metrics scored "
                          f"({', '.join(shown)}); --json has every score")
    print_table(f"ranking by {key} (higher = better)", ["rank", "model", key, *shown, "params", "cached"],
                [[str(i + 1), ok[j].name, fmt(float(order_scores[j]), 4),
                  *[fmt(ok[j].scores[n], 4) for n in shown], str(ok[j].num_params),
                  "yes" if ok[j].from_cache else ""] for i, j in enumerate(order)], justify_right_from=2)
    for r in unranked:
        err_console.print(f"[yellow]{r.name} has no {key} score:[/] {r.skipped.get(key, '')}")
    for r in result.failed:
        err_console.print(f"[red]{r.name} was not ranked:[/] {r.error}")
    console.print(f"{len(ok)} models ranked in {result.seconds:.1f} s")


def _note_dropped_metrics(result, names: list[str], common: list[str]) -> None:
    """One line per metric that ``--metric all`` leaves out of the aggregate, with its reason."""
    dropped = [n for n in names if n not in common]
    if not dropped or not result.ok:  # with no model scored, the error that follows says it all
        return
    err_console.print(f"[yellow]{len(dropped)} of {len(names)} metrics could not score every model and are left "
                      f"out of the ranking:[/]")
    for n in dropped:
        reasons = sorted({r.skipped.get(n, "") for r in result.ok} - {""})
        err_console.print(f"  {n}: {'; '.join(reasons) or 'no score'}")
