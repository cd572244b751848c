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
                     "regression": info.regression, "summary": info.summary, "paper": info.paper})
    if as_json:
        print_json(rows)
        return
    print_table(
        "zoorank metrics (higher = better transferability)",
        ["metric", "needs", "pool", "regression", "what it measures", "paper"],
        [[r["name"], ", ".join(r["needs"]), "yes" if r["pool_form"] else "", "yes" if r["regression"] else "",
          r["summary"], r["paper"]] for r in rows],
        justify_right_from=99,
    )


@metrics.command("score")
@click.option("--features", "features_path", type=click.Path(), help="Features [N, D] (.npy/.npz/.csv).")
@click.option("--labels", "labels_path", type=click.Path(),
              help="Integer labels [N] 0..C-1 (real targets [N] or [N, K] with --regression).")
@click.option("--source-probs", "probs_path", type=click.Path(), help="Source-head softmax [N, Cs].")
@click.option("--general-features", "general_path", type=click.Path(),
              help="A general feature distribution [G, D] (PED).")
@click.option("--metric", "metric_names", default="all", show_default=True,
              help="A metric name, a comma-separated list, or 'all' (those the inputs allow).")
@click.option("--regression", is_flag=True,
              help="--labels are real targets: score with the metrics that have a regression form.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter of the metric(s), e.g. --param k=5 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def score_cmd(features_path, labels_path, probs_path, general_path, metric_names, regression, params,
              as_json) -> None:
    """Score one model's features (and source probabilities) on a labelled probe set."""
    X = load_array(features_path, "--features")
    y = load_array(labels_path, "--labels")
    P = load_array(probs_path, "--source-probs")
    G = load_array(general_path, "--general-features")
    if X is None and P is None:
        raise click.UsageError("give --features and/or --source-probs")
    explicit = metric_names != "all"
    names = ([n.strip() for n in metric_names.split(",") if n.strip()] if explicit
             else M.available(regression=regression))
    kwargs = parse_params(params)
    taken = {n: _parameters(n) for n in names if n in M.available()}
    for p in kwargs:
        if not any(p in t for t in taken.values()):
            shown = "; ".join(f"{n}: {', '.join(t) or 'none'}" for n, t in taken.items())
            raise click.BadParameter(f"no selected metric takes {p!r} (their parameters: {shown})",
                                     param_hint="--param")
    if regression:
        kwargs["regression"] = True
        for name in names:
            if name in M.available() and not M.info(name).regression:
                raise click.BadParameter(f"{name} has no regression form; metrics that have one: "
                                         f"{', '.join(M.available(regression=True))}", param_hint="--metric")
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
            value = M.compute_available(name, X, y, source_probs=P, general_features=G,
                                        **{p: v for p, v in kwargs.items() if p in taken.get(name, ())})
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


def _parameters(name: str) -> tuple[str, ...]:
    """The keyword parameters of metric ``name`` beyond its inputs."""
    import inspect

    sig = inspect.signature(M.info(name).func)
    return tuple(p for p in sig.parameters if p not in ("features", "labels", "source_probs", "general_features"))


def parse_params(params) -> dict:
    """``NAME=VALUE`` strings as keyword arguments; values read as JSON when they parse (5, 0.5, true, "x"), else as
    text."""
    import json

    out = {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name.strip().isidentifier():
            raise click.BadParameter(f"give NAME=VALUE, e.g. k=5; got {p!r}", param_hint="--param")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


def _register_recommend() -> None:
    from zoorank.cli.metrics_recommend import recommend

    metrics.add_command(recommend)


_register_recommend()
