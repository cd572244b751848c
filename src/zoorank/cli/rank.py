"""``zoorank rank`` (the pipeline on a user's zoo and data) and ``zoorank fit`` (its rankers from the knowledge
base)."""

from __future__ import annotations

from pathlib import Path

import click

from zoorank import paths
from zoorank.cli._common import console, err_console, fmt, print_json, print_table
from zoorank.errors import InputError


def _budget_option(_ctx, param, value):
    from zoorank.pipeline.belief_job import parse_plan

    try:
        parse_plan(value, 1, probe_size=1)  # the form is checked now; the plan needs the zoo and the probe
    except InputError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    return value


def _known_option(_ctx, param, value):
    """``--known``: {model: accuracy} from a CSV file with ``model`` and ``accuracy`` columns, or from
    ``model=accuracy`` pairs separated by commas; the values are checked against the zoo later."""
    if value is None:
        return None
    pairs: list[tuple[str, str]] = []
    if Path(value).is_file():
        import csv

        with open(value, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"model", "accuracy"} <= set(reader.fieldnames):
                raise click.BadParameter(f"{value}: a CSV file needs the columns model and accuracy "
                                         f"(it has {', '.join(reader.fieldnames or []) or 'none'})", param=param)
            pairs = [(row["model"], row["accuracy"]) for row in reader]
    else:
        for item in filter(None, (x.strip() for x in value.split(","))):
            name, sep, acc = item.rpartition("=")
            if not sep or not name:
                raise click.BadParameter(f"{item!r} is not model=accuracy (e.g. resnet18=0.87), nor is "
                                         f"{value!r} a CSV file", param=param)
            pairs.append((name.strip(), acc.strip()))
    out: dict[str, float] = {}
    for name, acc in pairs:
        try:
            out[name] = float(acc)
        except ValueError:
            raise click.BadParameter(f"the accuracy of {name!r}, {acc!r}, is not a number", param=param) from None
    if not out:
        raise click.BadParameter("no model=accuracy pair given", param=param)
    return out


@click.command()
@click.option("--kb", "kb_path", default=None, metavar="PATH|URL", help="Knowledge base (default: zoorank's).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the fitted rankers (default: <zoorank data>/rankers).")
@click.option("--incremental", is_flag=True,
              help="Grow the Model Spider already fitted in --out with the knowledge base's new models instead of "
                   "refitting it: the known models' tokens stay frozen (their scores do not change) and only the new "
                   "ones are trained, replaying the historical tasks nearest the mean ranking (appendix C.4).")
@click.option("--exemplars", type=click.IntRange(min=1), default=32, show_default=True,
              help="With --incremental: the historical tasks replayed.")
@click.option("--json", "as_json", is_flag=True)
def fit(kb_path, out_dir, incremental, exemplars, as_json) -> None:
    """Refit the belief ranker, Fennec, Model Spider and MetaRank from the knowledge base (after recording new
    results)."""
    from zoorank.cli.kb import open_kb
    from zoorank.pipeline.learn import Rankers, fit_rankers

    out = Path(out_dir) if out_dir else paths.rankers_dir()
    previous = None
    if incremental:
        try:
            previous = Rankers.load(out)
        except InputError as exc:
            raise InputError(f"--incremental grows the rankers in {out}, but {exc}: run zoorank fit without "
                             "--incremental first") from None
    with open_kb(kb_path, must_exist=True) as base:
        rankers = fit_rankers(base, progress=lambda what: err_console.print(f"fitting {what} ..."),
                              previous=previous, exemplars=exemplars)
    rankers.save(out)
    if as_json:
        print_json({"out": str(out), "models": len(rankers.models), "info": rankers.info,
                    "skipped": rankers.skipped})
        return
    rows = []
    for name in ("belief", "fennec", "spider", "metarank"):
        info = rankers.info.get(name)
        rows.append([name, "fitted" if info else "skipped",
                     ", ".join(f"{k} {fmt(v, 2) if isinstance(v, float) else v}" for k, v in info.items())
                     if info else rankers.skipped.get(name, "")])
    print_table(f"rankers of {len(rankers.models)} models, written to {out}", ["ranker", "status", "detail"], rows,
                justify_right_from=9)


@click.command()
@click.option("--zoo", "zoo_file", required=True, type=click.Path(), help="Zoo file (YAML/TOML).")
@click.option("--data", "data_path", required=True, type=click.Path(),
              help="Image folder, unlabelled folder, CSV (path,label) or a Hugging Face dataset on disk.")
@click.option("--targets", "target_columns", default=None, metavar="COLUMN[,COLUMN]",
              help="Regression: read these CSV columns as real-valued targets; every model is then ranked by "
                   "LogME's regression form (the fitted rankers learned from classification).")
@click.option("--budget", default="auto", show_default=True, callback=_budget_option,
              help="What runs: 'auto' (with fitted rankers: on a quarter of the probe, every model with a 5% prior "
                   "chance of the top 5, and every model with no history), a number of "
                   "models on the whole probe (0: no forward pass), 'all', image-passes ('20000img'), or seconds of "
                   "the probe stage ('30s': the best models of the prior first, until the time is up).")
@click.option("--known", default=None, callback=_known_option, metavar="CSV|MODEL=ACC[,...]",
              help="Fine-tuned accuracies already measured on this dataset (fractions in [0, 1]): a CSV file with "
                   "columns model,accuracy or model=accuracy pairs. They are not run and inform the others.")
@click.option("--no-labels", is_flag=True, help="Use only the label-free parts (Fennec, the energy score).")
@click.option("--pipeline", "use_pipeline", is_flag=True,
              help="Run the learned pipeline instead of the belief job: Fennec + Model Spider's coarse ranking, "
                   "then MetaRank's metric and Spider's model-specific re-ranking of the top K (--budget K, "
                   "default 5).")
@click.option("--rankers", "rankers_dir", type=click.Path(file_okay=False), default=None,
              help="Fitted rankers (default: <zoorank data>/rankers, written by zoorank fit).")
@click.option("--description", default="", help="What the images show (for MetaRank's dataset card).")
@click.option("--encoder", "encoder_ref", default=None, metavar="SPEC|MODEL",
              help="The proxy / general encoder of Fennec, Model Spider and the belief ranker's similarity: a model "
                   "spec (timm:vit_small_patch14_dinov2.lvd142m) or a model of the zoo (default: the one the "
                   "rankers were fitted with, else the offline ImageNet MobileNetV2).")
@click.option("--probe", "probe_size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Stratified probe of at most this many images for the metrics.")
@click.option("--seed", default=0, show_default=True)
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None, help="Feature cache folder.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report here.")
@click.option("--kb", "kb_path", default=None, metavar="PATH|URL",
              help="Record the task and what was measured on it in this knowledge base (for zoorank fit).")
@click.option("--task", "task_name", default=None, help="Task name in the knowledge base (default: the dataset's).")
@click.option("--json", "as_json", is_flag=True)
def rank(zoo_file, data_path, target_columns, budget, known, no_labels, use_pipeline, rankers_dir, description,
         encoder_ref, probe_size, seed, cache_dir, device, report_path, kb_path, task_name, as_json) -> None:
    """Rank a zoo for a dataset. With fitted rankers: the belief ranker's prior from the knowledge base, sharpened by
    the models the budget runs (cold models, with no history, first), each model with its interval; rankers fitted
    before the belief ranker run the older pipeline (coarse ranking, MetaRank's metric on the top K). Without:
    every model, scored by the metric the shipped MetaRank picks. With --targets: regression, by LogME."""
    from zoorank.cli.score import dataset_line, open_target_data
    from zoorank.cli.zoo import read_zoo
    from zoorank.data import probe
    from zoorank.methods.metarank.shipped import default_metric_order
    from zoorank.metric_sets import fine_stage_candidates
    from zoorank.pipeline import Pipeline
    from zoorank.pipeline.dataset_task import DatasetTask
    from zoorank.pipeline.learn import rankers_for_zoo
    from zoorank.store.feature_cache import FeatureCache

    specs = read_zoo(zoo_file)
    ds = open_target_data(data_path, target_columns)
    p = probe(ds, n_max=probe_size, seed=seed) if probe_size and len(ds) > probe_size else None
    if ds.is_regression and known:
        raise click.BadParameter("not available with regression targets (--targets)", param_hint="--known")
    if ds.is_regression:
        _rank_regression(specs, ds, p, budget=budget, no_labels=no_labels, report_path=report_path,
                         cache_dir=cache_dir, device=device, kb_path=kb_path, task_name=task_name, as_json=as_json)
        return
    by_name = {s.name: s for s in specs}
    rankers, models, note = rankers_for_zoo(rankers_dir, list(by_name))
    if note:
        err_console.print(f"[yellow]{note}[/]")
        budget = "all"
    elif (rankers.belief is None or use_pipeline) and str(budget).strip().lower() == "auto":
        budget = "5"  # the pipeline (asked for, or rankers fitted before the belief ranker) with its default
    passes: list[str] = []
    fitted_encoder = rankers.info.get("encoder")
    encoder = _encoder_spec(encoder_ref, by_name, fitted_encoder)
    task = DatasetTask([by_name[m] for m in models], ds, probe=p, cache=FeatureCache(cache_dir), device=device,
                       description=description, encoder=encoder,
                       on_pass=lambda what, out: passes.append(what) or err_console.print(
                           f"  {what}: {'cached' if out.from_cache else f'{out.seconds:.1f} s'}"))
    if fitted_encoder:  # the proxy vectors and task tokens the rankers learned from came from this encoder
        used = task.encoder_record()
        if used["identity"] != fitted_encoder["identity"]:
            mend = ("leave out --encoder" if encoder_ref is not None else "its weights changed since zoorank fit")
            raise click.BadParameter(f"the rankers were fitted with the encoder {fitted_encoder.get('name')!r} "
                                     f"(identity {fitted_encoder['identity'][:12]}), not {used['name']!r} "
                                     f"({used['identity'][:12]}): {mend}, or rank the knowledge base's tasks with "
                                     "it (zoorank rank --kb) and zoorank fit", param_hint="--encoder")
    if rankers.belief is not None and not use_pipeline:
        from zoorank.pipeline.belief_job import BeliefJob, parse_plan

        plan = parse_plan(budget, len(models), probe_size=len(task.indices))
        pipe = BeliefJob(models, rankers.belief, plan=plan)
        what = plan.describe(len(models))
    elif known:
        raise click.BadParameter("known accuracies enter the belief ranker's job: fit it with zoorank fit"
                                 + (" and leave out --pipeline" if use_pipeline else ""), param_hint="--known")
    else:
        try:
            pipe = Pipeline(models, fennec=rankers.fennec, spider=rankers.spider, metarank=rankers.metarank,
                            budget=budget, metrics=default_metric_order(fine_stage_candidates()) if note else None)
        except InputError as exc:
            raise click.BadParameter(f"{exc} (image-pass budgets need rankers fitted by this release: zoorank fit)",
                                     param_hint="--budget") from None
        what = f"budget {pipe.budget}"
    err_console.print(f"{dataset_line(ds)}; {len(models)} models; {what}")
    extra = {}
    if known:  # only the belief job takes known accuracies; checked against the zoo before anything runs
        try:
            pipe.known_indices(known)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--known") from None
        extra = {"known": known}
    result = pipe.run(task, use_labels=not no_labels, progress=lambda msg: err_console.print(f"{msg} ..."), **extra)
    if kb_path is not None:
        _record(kb_path, task_name or ds.name, result, task, ds, use_labels=not no_labels)
    if report_path:
        from zoorank.report.html import write_html

        write_html(result, report_path, title=f"zoorank: {ds.name}")
        err_console.print(f"wrote {report_path}")
    if as_json:
        print_json(result.to_dict())
        return
    show_result(result)


def _encoder_spec(ref, zoo: dict, fitted: dict | None):
    """The encoder a rank uses: ``--encoder`` (a zoo model's name or a spec), else the fitted rankers' (its
    recorded spec), else None (the offline ImageNet MobileNetV2)."""
    from zoorank.zoo import ModelSpec

    try:
        if ref is not None:
            return zoo[ref] if ref in zoo else ModelSpec.parse(ref)
        if fitted and isinstance(fitted.get("spec"), dict):
            return ModelSpec.from_mapping(fitted["spec"], where="the rankers' encoder")
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--encoder") from None
    return None


REGRESSION_METRIC = "logme"


def _rank_regression(specs, ds, p, *, budget, no_labels, report_path, cache_dir, device, kb_path, task_name,
                     as_json) -> None:
    """``zoorank rank`` on real-valued targets: every model of the zoo runs on the probe and is ranked by LogME's
    regression form (You et al., ICML 2021, section 4.3); the fitted rankers, learned from classification
    accuracies, do not apply. Options that only the classification path has are refused, not ignored."""
    from zoorank.cli.score import dataset_line, record_sweep, show_sweep_ranking
    from zoorank.store.feature_cache import FeatureCache
    from zoorank.zoo.sweep import run_sweep

    if str(budget).strip().lower() not in ("auto", "all"):
        raise click.BadParameter(f"{budget!r}: with regression targets every model runs (auto or all); "
                                 "a smaller budget needs the classification rankers", param_hint="--budget")
    for flag, given in (("--no-labels", no_labels), ("--report", report_path)):
        if given:
            raise click.BadParameter("not available with regression targets (--targets)", param_hint=flag)
    n = len(p) if p is not None else len(ds)
    err_console.print(f"{dataset_line(ds)}; {n} used; {len(specs)} models; every model, ranked by "
                      f"{REGRESSION_METRIC}'s regression form")
    try:
        result = run_sweep(specs, ds, probe=p, metrics=[REGRESSION_METRIC], cache=FeatureCache(cache_dir),
                           device=device,
                           on_model_done=lambda r: err_console.print(f"  {r.name}: " + (
                               "cached" if r.from_cache else f"{r.seconds:.1f} s") if r.ok
                               else f"  {r.name}: [red]failed[/]: {r.error}"))
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    show_sweep_ranking(result, [REGRESSION_METRIC], aggregate=False, as_json=as_json)
    if kb_path is not None:
        record_sweep(kb_path, result, ds, specs, task_name, p)


def show_result(result, truth=None) -> None:
    """The ranking and the cost table in the terminal (``truth``: {model: accuracy} to show beside it)."""
    fine_keys = list(result.fine)
    intervals = hasattr(result, "low")
    cols = ["rank", "model", "score", *([f"{100 * result.level:g}% interval"] if intervals else []),
            *[f"{k}" for k in result.coarse],
            *[("metric " + (result.metric or "")) if k == "metric" else f"{k} (specific)" for k in fine_keys]]
    if truth is not None:
        cols.append("true acc")
    rows = []
    for r in result.rows():
        i = result.models.index(r["model"])
        row = [str(r["rank"]), r["model"] + (" *" if i in result.top else "") + (" (cold)" if r.get("cold") else "")
               + (" (known)" if r.get("known") is not None else ""),
               fmt(r["score"], 3),
               *([f"{fmt(r['low'], 3)} - {fmt(r['high'], 3)}"] if intervals else []),
               *[fmt(r[f"coarse:{k}"], 3) for k in result.coarse],
               *["-" if r[f"fine:{k}"] is None else fmt(r[f"fine:{k}"], 3) for k in fine_keys]]
        if truth is not None:
            row.append(fmt(truth.get(r["model"]), 3))
        rows.append(row)
    ran = (f"* = ran on {getattr(result, 'fraction', 1.0) * 100:g}% of the probe" if intervals
           else "* = ran in the fine stage")
    print_table(f"ranking (best first; {ran})", cols, rows, justify_right_from=2)
    print_table("cost", ["stage", "forward passes", "encoder passes", "seconds", "detail"],
                [[s.name, str(s.forward_passes), str(s.encoder_passes), f"{s.seconds:.2f}", s.detail]
                 for s in result.stages]
                + [["total", str(result.forward_passes), str(sum(s.encoder_passes for s in result.stages)),
                    f"{result.seconds:.2f}", ""]], justify_right_from=1)
    if result.metric:
        console.print(f"metric: {result.metric} ({result.metric_reason})")
    for note in result.notes:
        console.print(f"note: {note}")


def _record(kb_path, name, result, task, ds, *, use_labels: bool) -> None:
    from zoorank.cli.kb import open_kb
    from zoorank.pipeline.learn import record_ranking

    with open_kb(kb_path) as base:
        n = record_ranking(base, name, result, task, n_classes=ds.n_classes, n_samples=len(ds),
                           use_labels=use_labels, models=task.loaded)
    err_console.print(f"recorded task {name!r} and {n} metric scores in the knowledge base")


@click.command()
@click.argument("model")
@click.option("--kb", "kb_path", default=None, metavar="PATH|URL",
              help="Knowledge base whose tasks (their task tokens) are charted (default: zoorank's).")
@click.option("--rankers", "rankers_dir", type=click.Path(file_okay=False), default=None,
              help="Fitted rankers with a Model Spider (default: <zoorank data>/rankers).")
@click.option("--clusters", "n_clusters", default=6, show_default=True,
              help="Task clusters (k-means on the task tokens); a task's `domain` meta-feature names it instead "
                   "when every task has one.")
@click.option("--compare", default="", help="Comma-separated models drawn on the same chart.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="spider_chart",
              show_default=True, help="Chart file name (.png and .svg are written).")
@click.option("--json", "as_json", is_flag=True)
def explain(model, kb_path, rankers_dir, n_clusters, compare, out_path, as_json) -> None:
    """The spider chart of MODEL: its affinity to clusters of the knowledge base's tasks, as the trained Model
    Spider sees it (Model Spider, section 5.4), and what Fennec knows of it."""
    import numpy as np

    from zoorank.cli.kb import open_kb
    from zoorank.methods.spider.chart import affinities, cluster_tasks, spider_chart
    from zoorank.pipeline.learn import TOKEN_KEY, Rankers

    rankers = Rankers.load(Path(rankers_dir) if rankers_dir else paths.rankers_dir())
    if rankers.spider is None:
        raise click.ClickException(f"the rankers have no Model Spider ({rankers.skipped.get('spider', 'not fitted')})")
    names = [model, *[m.strip() for m in compare.split(",") if m.strip()]]
    with open_kb(kb_path) as base:
        tasks = [t for t in base.tasks() if TOKEN_KEY in t.meta]
    if len(tasks) < 3:
        raise click.ClickException(f"the knowledge base has {len(tasks)} task(s) with a task token; the chart needs "
                                   f"at least 3 (rank tasks with zoorank rank --kb)")
    tokens = {t.name: np.asarray(t.meta[TOKEN_KEY], dtype=float) for t in tasks}
    if all(t.meta.get("domain") for t in tasks):
        clusters = {t.name: str(t.meta["domain"]) for t in tasks}
    else:
        clusters = cluster_tasks(tokens, n_clusters)
    values = affinities(rankers.spider, tokens, clusters, names)
    scaled = {m: {c: v["scaled"] for c, v in per.items()} for m, per in values.items()}
    if len(next(iter(scaled.values()))) >= 3:
        files = [str(p) for p in spider_chart(scaled, out_path, title=f"Model Spider: {model}")]
    else:
        files = []
    if as_json:
        print_json({"model": model, "affinities": values, "clusters": clusters, "files": files})
        return
    groups: dict[str, list[str]] = {}
    for t, c in clusters.items():
        groups.setdefault(c, []).append(t)
    print_table(f"affinity of {model} to the task clusters (Model Spider)", ["cluster", *names, "tasks"],
                [[c, *[fmt(values[m][c]["scaled"], 2) for m in names], ", ".join(sorted(groups[c])[:4])]
                 for c in values[model]], justify_right_from=1)
    if files:
        console.print("wrote " + " and ".join(files))
    else:
        console.print("fewer than 3 clusters: no radar chart (use more tasks or --clusters)")
