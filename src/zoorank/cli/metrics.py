"""``zoorank metrics``: list the transferability metrics and score features with them."""

from __future__ import annotations

import time

import click

from zoorank import metrics as M
from zoorank.cli._common import err_console, fmt, load_array, print_json, print_table
from zoorank.errors import InputError


@click.group()
def metrics() -> None:
    """Transferability metrics: list them, score a model's features."""


@metrics.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List every metric with what it needs."""
    rows = []
    for name in M.available():
        info = M.info(name)
        needs = [w for w, flag in (("features", info.needs_features), ("labels", info.needs_labels),
                                   ("source_probs", info.needs_source_probs)) if flag]
        rows.append({"name": name, "needs": needs, "pool_form": info.pool_func is not None,
                     "summary": info.summary, "paper": info.paper})
    if as_json:
        print_json(rows)
        return
    print_table(
        "zoorank metrics (higher = better transferability)",
        ["metric", "needs", "pool", "what it measures", "paper"],
        [[r["name"], ", ".join(r["needs"]), "yes" if r["pool_form"] else "", r["summary"], r["paper"]]
         for r in rows],
        justify_right_from=99,
    )


@metrics.command("score")
@click.option("--features", "features_path", type=click.Path(), help="Features [N, D] (.npy/.npz/.csv).")
@click.option("--labels", "labels_path", type=click.Path(), help="Integer labels [N] 0..C-1.")
@click.option("--source-probs", "probs_path", type=click.Path(), help="Source-head softmax [N, Cs].")
@click.option("--general-features", "general_path", type=click.Path(),
              help="A general feature distribution [G, D] (PED).")
@click.option("--metric", "metric_names", default="all", show_default=True,
              help="A metric name, a comma-separated list, or 'all' (those the inputs allow).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def score_cmd(features_path, labels_path, probs_path, general_path, metric_names, as_json) -> None:
    """Score one model's features (and source probabilities) on a labelled probe set."""
    X = load_array(features_path, "--features")
    y = load_array(labels_path, "--labels")
    P = load_array(probs_path, "--source-probs")
    G = load_array(general_path, "--general-features")
    if X is None and P is None:
        raise click.UsageError("give --features and/or --source-probs")
    explicit = metric_names != "all"
    names = [n.strip() for n in metric_names.split(",") if n.strip()] if explicit else M.available()
    results, skipped = [], []
    for name in names:
        try:
            missing = M.missing_inputs(name, features=X, labels=y, source_probs=P, general_features=G)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--metric") from exc
        if missing:
            options = ", ".join("--" + m.replace("_", "-") for m in missing)
            if explicit:
                raise click.UsageError(f"{name} needs {options}")
            skipped.append((name, f"needs {options}"))
            continue
        t0 = time.perf_counter()
        try:
            value = M.compute_available(name, X, y, source_probs=P, general_features=G)
        except InputError as exc:
            if explicit:
                raise click.ClickException(str(exc)) from exc
            skipped.append((name, str(exc)))
            continue
        results.append({"metric": name, "score": value, "seconds": time.perf_counter() - t0})
    if as_json:
        print_json({"scores": results, "skipped": [{"metric": n, "reason": r} for n, r in skipped]})
        return
    print_table("transferability scores (higher = better)", ["metric", "score", "seconds"],
                [[r["metric"], fmt(r["score"], 6), f"{r['seconds']:.3f}"] for r in results])
    for name, reason in skipped:
        err_console.print(f"[yellow]skipped {name}:[/] {reason}")


def _register_recommend() -> None:
    from zoorank.cli.metrics_recommend import recommend

    metrics.add_command(recommend)


_register_recommend()
