"""Model Spider experiments on a harness benchmark (Zhang et al., NeurIPS 2023): the efficiency–accuracy curve of
re-ranking (section 4.4, figure 4a: weighted tau as the number k of PTM-specific forward passes goes from 0 to
the whole zoo), the incremental zoo (appendix C.4, table 5), the supervision and loss ablations (tables 3 and 4)
and the spider chart (section 5.4) — all leave-one-target-out, on any :class:`~zoorank.evaluation.Benchmark`
with a feature provider that has ``encoder_features``.

Benchmarks: ``planted`` (a seeded synthetic zoo, :class:`PlantedProvider`: model quality on a task depends on a
direction of the task that the general encoder's class centres reveal, plus an optional hidden part that only
the models' own features reveal), ``toy`` (the toy zoo of :mod:`zoorank.datasets.toyzoo` with several target tasks
and real fine-tuning ground truth, :func:`toy_benchmark`), or a benchmark directory (``zoobench`` provider).

    python -m benchmarks.spider_curve curve --benchmark planted --json curve.json
    python -m benchmarks.spider_curve incremental --benchmark planted --new 4
    python -m benchmarks.spider_curve ablation --benchmark planted
    python -m benchmarks.spider_curve chart --benchmark planted --model m3 --out /tmp/spider
    python -m benchmarks.spider_curve train --benchmark benchmarks/zoobench
    python -m benchmarks.spider_curve report --benchmark benchmarks/zoobench --write docs/BENCHMARKS.md \
        --out docs/spider

Every command prints a markdown table and can write the numbers as JSON. ``train`` measures what training costs
on the whole benchmark from scratch (supervision scoring + fitting) and what ranking a task costs after its
encoder pass; ``report`` runs train, curve, incremental, the supervision diagnostic and the chart and writes the
``spider`` section of a Markdown file (the plots next to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoorank import evaluation as H
from zoorank import ranking as R
from zoorank.datasets.planted import PlantedProvider, planted_benchmark
from zoorank.errors import InputError
from zoorank.methods.spider.model import merge_specific

__all__ = [
    "PlantedProvider",
    "ablation",
    "chart",
    "curve",
    "incremental",
    "main",
    "planted_benchmark",
    "report",
    "toy_benchmark",
    "train_cost",
]


# --------------------------------------------------------------------------------------------------
# the toy zoo with several targets


class ToyProvider:
    """Features of the toy zoo's models on several digit targets (see :func:`toy_benchmark`)."""

    def __init__(self, feats: dict, labels: dict, encoder: dict):
        self._feats, self._labels, self._encoder = feats, labels, encoder
        self.requests: list[tuple[str, str]] = []

    def labels(self, task: str) -> np.ndarray:
        return self._labels[task]

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray]:
        self.requests.append((model, task))
        return self._feats[(model, task)]

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        return self._encoder[task], self._labels[task]


#: Target tasks of the toy benchmark: name -> (image transform, label rule) on the held-out half of the digits.
TOY_TARGETS = ("rot90", "rot90-0to4", "rot90-5to9", "flip", "flip-parity", "transposed-loops", "upright-0to4",
               "rot180")


def _toy_target(name: str, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    view, _, rule = name.partition("-")
    img = {"rot90": np.rot90(X, 1, axes=(1, 2)), "rot180": np.rot90(X, 2, axes=(1, 2)), "flip": X[:, :, ::-1],
           "transposed": np.transpose(X, (0, 2, 1)), "upright": X}[view]
    keep = np.ones(len(y), bool)
    lab = y.copy()
    if rule == "0to4":
        keep = y < 5
    elif rule == "5to9":
        keep, lab = y >= 5, y - 5
    elif rule == "parity":
        lab = y % 2
    elif rule == "loops":
        lab = np.isin(y, [0, 6, 8, 9]).astype(np.int64)
    return np.ascontiguousarray(img[keep], dtype=np.float32), lab[keep].astype(np.int64)


def toy_benchmark(seed: int = 0, *, epochs: int = 8, progress=None) -> tuple[H.Benchmark, ToyProvider]:
    """The toy zoo (:mod:`zoorank.datasets.toyzoo`: 8 small networks pre-trained on digit source tasks) on the
    targets of :data:`TOY_TARGETS`, each split in a probe (train) half and a test half; ground truth = test
    accuracy after fine-tuning the whole network for ``epochs`` epochs (toyzoo's recipe otherwise). The general
    encoder is a PCA (16 components) of the raw pixels fitted on the source half: not a zoo model."""
    import copy

    import torch

    from zoorank.datasets import toyzoo as T

    torch.set_num_threads(1)
    X, y, src, _, tgt_train, tgt_test = T._split(seed)
    Xs_all = X[src].reshape(len(src), -1)
    mean = Xs_all.mean(0)
    _, _, vt = np.linalg.svd(Xs_all - mean, full_matrices=False)
    pca = vt[:16].T
    tgt = np.concatenate([tgt_train, tgt_test])
    feats, labels, encoder = {}, {}, {}
    acc = np.zeros((len(TOY_TARGETS), len(T.ZOO)))
    models = [s.name for s in T.ZOO]
    bodies = []
    for k, spec in enumerate(T.ZOO):
        rng = np.random.default_rng(seed + 1000 + k)
        Xs, ys = T._source_task(spec.source, X, y, src, rng)
        torch.manual_seed(seed + k)
        body, head = T._build(spec.arch, int(ys.max()) + 1)
        if spec.source != "untrained":
            T._train(body, head, Xs, ys, seed=seed + k, **T.PRETRAIN)
        bodies.append((body, head))
    for j, name in enumerate(TOY_TARGETS):
        imgs, lab = _toy_target(name, X[tgt], y[tgt])
        half = np.random.default_rng([seed, j]).permutation(len(lab))
        tr, te = np.sort(half[: len(lab) // 2]), np.sort(half[len(lab) // 2:])
        labels[name] = lab[tr]
        encoder[name] = (imgs[tr].reshape(len(tr), -1) - mean) @ pca
        for k, (body, head) in enumerate(bodies):
            f, p = T._forward(body, head, imgs[tr])
            feats[(models[k], name)] = (f, np.log(np.maximum(p, 1e-300)))
            ft_body = copy.deepcopy(body)
            torch.manual_seed(seed + 100 + k)
            ft_head = torch.nn.Linear(f.shape[1], int(lab.max()) + 1)
            recipe = dict(T.FINETUNE, epochs=epochs)
            T._train(ft_body, ft_head, imgs[tr], lab[tr], seed=seed + 100 + k, **recipe)
            _, q = T._forward(ft_body, ft_head, imgs[te])
            acc[j, k] = float((q.argmax(1) == lab[te]).mean())
            if progress is not None:
                progress(f"{models[k]} on {name}")
    zoo = {}
    for k, spec in enumerate(T.ZOO):
        body, head = bodies[k]
        n = sum(p.numel() for p in body.parameters()) + sum(p.numel() for p in head.parameters())
        zoo[spec.name] = H.ZooEntry(spec.name, spec.arch, spec.source, "scratch", int(n))
    info = {t: H.TaskInfo(t, None, f"digits, {t}", int(labels[t].max()) + 1) for t in TOY_TARGETS}
    bench = H.Benchmark(models, TOY_TARGETS, {"finetune_acc": acc, "linear_probe_acc": acc}, zoo, info)
    return bench, ToyProvider(feats, labels, encoder)


# --------------------------------------------------------------------------------------------------
# experiments


class _FullHistory:
    """Every task of a benchmark as history (for the diagnostics and the chart, which evaluate no target)."""

    def __init__(self, bench: H.Benchmark, provider):
        self.tasks, self._bench, self._provider = bench.tasks, bench, provider

    def features(self, model: str, task: str):
        return self._provider.features(model, task)

    def labels(self, task: str) -> np.ndarray:
        return np.asarray(self._provider.labels(task))

    def encoder_features(self, task: str):
        return self._provider.encoder_features(task)


def _method(params: dict | None):
    from zoorank.evaluation.adapters.spider import SpiderMethod

    p = dict(params or {})
    # the H-Score slot swapped for the shrinkage form on small tasks (BANK_DEFAULTS), i.e. `spider:shrinkage`
    return SpiderMethod("spider", loss=p.pop("loss", "rank"), bank=p.pop("bank", None), spider=p.pop("spider", None),
                        **p)


def _tasks(bench: H.Benchmark, tasks: Sequence[str] | None) -> list[str]:
    out = list(bench.tasks if tasks is None else tasks)
    for t in out:
        bench.task_index(t)
    return out


def curve(bench: H.Benchmark, provider, *, tasks: Sequence[str] | None = None, ks: Sequence[int] | None = None,
          params: dict | None = None, reference: Sequence[str] = ("logme",), mode: str = "block",
          progress=None) -> dict:
    """Efficiency–accuracy curve of re-ranking (section 4.4, figure 4a), leave-one-target-out.

    For each target: one Spider fitted on the other targets' sampled tasks; the coarse ranking (k = 0, no zoo
    forward pass), then for every k in ``ks`` (default 0..M) the scores of the top-k models replaced by their
    specific-token scores (k forward passes; ``mode`` as in :meth:`ModelSpider.rerank`: ``block`` keeps the top-k
    ahead and re-orders it, ``replace`` ranks everything together). Returns means over targets per k of weighted
    tau, Pearson and top-1 regret, the per-target values, fit and rank times, and the ``reference`` metrics' means
    (M forward passes).
    """
    from zoorank.methods.spider import specific_token, task_token

    if mode not in ("block", "replace"):
        raise InputError(f"curve: mode must be block or replace, got {mode!r}")
    method = _method(params)
    M = len(bench.models)
    ks = list(range(M + 1)) if ks is None else sorted({int(k) for k in ks})
    if not ks or ks[0] < 0 or ks[-1] > M:
        raise InputError(f"curve: k must be in 0..{M}, got {ks}")
    per_task: dict[str, dict] = {}
    fit_s, rank_s = [], []
    for task in _tasks(bench, tasks):
        ctx = H.TaskContext(task, bench, provider)
        t0 = time.perf_counter()
        try:
            spider = method.fitted(ctx)
        except H.MethodSkipped as exc:
            per_task[task] = {"skipped": str(exc)}
            continue
        fit_s.append(time.perf_counter() - t0)
        E, y = ctx.encoder_features()
        t0 = time.perf_counter()
        token = task_token(E, y)
        coarse = spider.predict(token)
        rank_s.append(time.perf_counter() - t0)
        order = np.argsort(-coarse, kind="stable")
        labels = np.asarray(ctx.labels())
        spec = spider.specific_scores({int(m): specific_token(ctx.features(bench.models[int(m)])[0], labels)
                                       for m in order[: ks[-1]]})
        truth = bench.truth(task)
        rows = []
        for k in ks:
            s = merge_specific(coarse, {int(m): spec[int(m)] for m in order[:k]}, mode)
            rows.append((R.weighted_tau(s, truth), R.pearson(s, truth), R.top1_regret(s, truth)))
        ref = {}
        for name in reference:
            rctx = H.TaskContext(task, bench, provider)
            ref[name] = R.weighted_tau(H.MetricMethod(name).scores(task, rctx), truth)
        per_task[task] = {"weighted_tau": [r[0] for r in rows], "pearson": [r[1] for r in rows],
                          "top1_regret": [r[2] for r in rows], "reference": ref}
        if progress is not None:
            progress(task)
    done = [v for v in per_task.values() if "skipped" not in v]
    if not done:
        raise InputError("curve: Spider could not be fitted for any target")
    mean = {key: np.mean([v[key] for v in done], axis=0).tolist() for key in ("weighted_tau", "pearson", "top1_regret")}
    return {"k": ks, "forward_passes": ks, "mode": mode, **mean, "n_targets": len(done),
            "reference": {n: float(np.mean([v["reference"][n] for v in done])) for n in reference},
            "fit_seconds_per_target": float(np.mean(fit_s)), "rank_seconds_per_target": float(np.mean(rank_s)),
            "per_task": per_task}


def incremental(bench: H.Benchmark, provider, *, new: Sequence[str] | int = 2, tasks: Sequence[str] | None = None,
                params: dict | None = None, exemplars: int | None = None, progress=None) -> dict:
    """Incremental zoo (appendix C.4, table 5), leave-one-target-out: a Spider fitted on the old models (the zoo
    without ``new``, or without its last ``new`` models) gets ``new`` through :meth:`ModelSpider.add_models`;
    compared with a Spider retrained from scratch on the whole zoo (weighted tau over the whole zoo, and the old
    Spider's tau over the old models), with the times of each."""
    import copy

    from zoorank.methods.spider import ModelSpider, task_token

    method = _method(params)
    new_models = list(bench.models[-int(new):]) if isinstance(new, int) else [str(m) for m in new]
    if not new_models or any(m not in bench.models for m in new_models) or len(new_models) >= len(bench.models) - 1:
        raise InputError(f"incremental: new models must be 1..{len(bench.models) - 2} models of the zoo")
    old_models = [m for m in bench.models if m not in new_models]
    order = [bench.models.index(m) for m in old_models + new_models]
    rows = {}
    for task in _tasks(bench, tasks):
        ctx = H.TaskContext(task, bench, provider)
        bank = method.bank(ctx)
        t_old = bank.training_tasks(ctx.history, models=old_models)
        t_all = bank.training_tasks(ctx.history, models=old_models + new_models)
        if len(t_all) < method.min_tasks:
            rows[task] = {"skipped": f"{len(t_all)} training tasks"}
            continue
        dims = [bank.feature_dims.get(m) for m in old_models + new_models]
        sp = method.spider_params
        t0 = time.perf_counter()
        old = ModelSpider(**sp).fit(t_old, models=old_models, feature_dims=dims[: len(old_models)])
        s_old = time.perf_counter() - t0
        inc = copy.deepcopy(old)
        t0 = time.perf_counter()
        inc.add_models(new_models, t_all, feature_dims=dims[len(old_models):], exemplars=exemplars)
        s_inc = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = ModelSpider(**sp).fit(t_all, models=old_models + new_models, feature_dims=dims)
        s_full = time.perf_counter() - t0
        E, y = ctx.encoder_features()
        token = task_token(E, y)
        truth = bench.truth(task)[order]
        rows[task] = {"old_on_old": R.weighted_tau(old.predict(token), truth[: len(old_models)]),
                      "incremental": R.weighted_tau(inc.predict(token), truth),
                      "retrained": R.weighted_tau(full.predict(token), truth),
                      "seconds_old": s_old, "seconds_incremental": s_inc, "seconds_retrained": s_full}
        if progress is not None:
            progress(task)
    done = [v for v in rows.values() if "skipped" not in v]
    if not done:
        raise InputError("incremental: no target could be evaluated")
    mean = {k: float(np.mean([v[k] for v in done])) for k in done[0]}
    return {"old_models": old_models, "new_models": new_models, "n_targets": len(done), **mean,
            "loss_vs_retraining": mean["retrained"] - mean["incremental"], "per_task": rows}


def supervision_quality(bench: H.Benchmark, provider, *, params: dict | None = None) -> dict:
    """Diagnostic for table 3: on the sampled tasks of ALL targets, the weighted tau of each supervision (Copeland
    and every single metric) against the true accuracy of the task (row-weighted mean over its sources). Uses the
    ground truth of every target on purpose: it measures the supervision, it trains nothing."""
    method = _method(params)
    ctx = H.TaskContext(bench.tasks[0], bench, provider)
    bank = method.bank(ctx)
    hist = _FullHistory(bench, provider)
    acc = {t: bench.truth(t) for t in bench.tasks}
    out = {}
    for sup in ("copeland", *bank.metrics):
        taus = []
        for task in bank.training_tasks(hist, supervision=sup):
            w = np.array([m.rows.size for m in task.members], dtype=np.float64)
            truth = sum(wi * acc[m.task] for wi, m in zip(w, task.members, strict=True)) / w.sum()
            taus.append(R.weighted_tau(task.supervision, truth))
        out[sup] = {"weighted_tau": float(np.mean(taus)), "n_tasks": len(taus)}
    return out


def train_cost(bench: H.Benchmark, provider, *, params: dict | None = None) -> dict:
    """What Model Spider costs on the whole benchmark, from scratch: a fresh supervision bank scores its sampled
    tasks on every target (the metrics on the zoo's features; run it on a warm feature cache: extraction is the
    cache's cost, as in the harness, and would otherwise be counted here) and the scorer is fitted on them; then
    the online cost per target: the task token from the general encoder's features (equation 5) and the ranking
    of the zoo (equation 6). Uses no ground truth."""
    from zoorank.evaluation.adapters.spider import SpiderMethod
    from zoorank.methods.spider import ModelSpider, SupervisionBank, task_token

    method: SpiderMethod = _method(params)
    bank = SupervisionBank(bench.models, bench.tasks, **method.bank_params)  # private: no shared scores
    hist = _FullHistory(bench, provider)
    t0 = time.perf_counter()
    tasks = bank.training_tasks(hist)
    s_bank = time.perf_counter() - t0
    t0 = time.perf_counter()
    spider = ModelSpider(**method.spider_params).fit(
        tasks, models=bench.models, feature_dims=[bank.feature_dims.get(m) for m in bench.models])
    s_fit = time.perf_counter() - t0
    rank_s = []
    for task in bench.tasks:
        E, y = provider.encoder_features(task)
        t0 = time.perf_counter()
        spider.predict(task_token(E, y))
        rank_s.append(time.perf_counter() - t0)
    return {"models": len(bench.models), "targets": len(bench.tasks), "training_tasks": len(tasks),
            "bank_seconds": s_bank, "fit_seconds": s_fit, "train_seconds": s_bank + s_fit,
            "rank_seconds_mean": float(np.mean(rank_s)), "rank_seconds_max": float(np.max(rank_s))}


def ablation(bench: H.Benchmark, provider, *, methods: Sequence[str] | None = None,
             tasks: Sequence[str] | None = None, progress=None) -> tuple[H.RunResult, dict]:
    """Tables 3 and 4 on a benchmark: the Spider variants (supervision by Copeland vs one metric; ranking loss vs
    MSE vs ListMLE) and the baselines through the harness, plus :func:`supervision_quality`."""
    names = list(methods or ["spider", "spider:mse", "spider:listmle", "spider:nce-only", "spider:leep-only",
                             "spider:logme-only", "spider:hscore-only", "baseline:popularity", "baseline:random"])
    result = H.run(bench, H.make_methods(names), provider, tasks, progress=progress)
    return result, supervision_quality(bench, provider)


def chart(bench: H.Benchmark, provider, models: Sequence[str], out: str | Path, *, clusters: str = "auto",
          n_clusters: int = 6, params: dict | None = None) -> dict:
    """Spider chart (section 5.4) of ``models``: a Spider fitted on the sampled tasks of every target, task
    tokens of every target, clusters = the targets' ``domain`` (``clusters="domain"``; targets without one are
    ``other``), k-means on the tokens (``"kmeans"``), or the domains when every target has one and there are
    >= 3 of them, else k-means (``"auto"``). Writes ``out``.png / .svg; returns the affinities and the paths."""
    from zoorank.methods.spider import ModelSpider, task_token
    from zoorank.methods.spider import chart as C

    if clusters not in ("auto", "domain", "kmeans"):
        raise InputError(f"chart: clusters must be auto, domain or kmeans, got {clusters!r}")
    method = _method(params)
    ctx = H.TaskContext(bench.tasks[0], bench, provider)
    bank = method.bank(ctx)
    tasks = bank.training_tasks(_FullHistory(bench, provider))
    spider = ModelSpider(**method.spider_params).fit(
        tasks, models=bench.models, feature_dims=[bank.feature_dims.get(m) for m in bench.models])
    tokens = {t: task_token(*provider.encoder_features(t)) for t in bench.tasks}
    domains = {t: (bench.task_info[t].domain or "other") for t in bench.tasks}
    use_domain = clusters == "domain" or (clusters == "auto" and all(bench.task_info[t].domain for t in bench.tasks)
                                          and len(set(domains.values())) >= 3)
    groups = domains if use_domain else C.member_labels(C.cluster_tasks(tokens, n_clusters))
    aff = C.affinities(spider, tokens, groups, models)
    paths = C.spider_chart({m: {c: v["scaled"] for c, v in a.items()} for m, a in aff.items()}, out,
                           title=f"Model Spider chart ({', '.join(models)})")
    return {"affinities": aff, "clusters": groups, "files": [str(p) for p in paths]}


# --------------------------------------------------------------------------------------------------
# command line


def _load(spec: str, seed: int, hidden: float):
    if spec == "planted":
        return planted_benchmark(n_models=12, n_tasks=10, hidden=hidden, seed=seed)
    if spec == "toy":
        return toy_benchmark(seed)
    root = Path(spec)
    if not (root / "ground_truth.csv").is_file():
        raise InputError(f"{root}: no ground_truth.csv (build the benchmark first, or use planted / toy)")
    from zoorank.datasets.zoobench.provider import ZooBenchProvider

    return H.load_benchmark(root), ZooBenchProvider(root)


def _curve_md(res: dict) -> str:
    lines = ["| k (forward passes) | weighted tau | pearson | top-1 regret (points) |", "| ---: | ---: | ---: | ---: |"]
    for i, k in enumerate(res["k"]):
        lines.append(f"| {k} | {res['weighted_tau'][i]:.3f} | {res['pearson'][i]:.3f} | "
                     f"{100 * res['top1_regret'][i]:.1f} |")
    refs = ", ".join(f"{n} {v:.3f}" for n, v in res["reference"].items())
    lines.append(f"\n{res['n_targets']} targets; reference (every model's forward pass): {refs}; fit "
                 f"{res['fit_seconds_per_target']:.1f} s / target, rank {1000 * res['rank_seconds_per_target']:.1f} ms")
    return "\n".join(lines)


def _train_md(res: dict) -> str:
    return (f"Training on all {res['targets']} targets and {res['models']} models from scratch: "
            f"{res['training_tasks']} sampled tasks scored in {res['bank_seconds']:.0f} s (NCE, LEEP, LogME, "
            f"H-Score on cached features, Copeland aggregation) + scorer fitted in {res['fit_seconds']:.0f} s = "
            f"**{res['train_seconds'] / 60:.1f} min**. Ranking a target after its encoder pass: mean "
            f"{1000 * res['rank_seconds_mean']:.1f} ms, max {1000 * res['rank_seconds_max']:.1f} ms.")


def _incremental_md(res: dict) -> str:
    return "\n".join([
        f"Old zoo {len(res['old_models'])} models, added {', '.join(res['new_models'])}; {res['n_targets']} targets.",
        "", "| Spider | weighted tau | fit seconds |", "| --- | ---: | ---: |",
        f"| old zoo (old models only) | {res['old_on_old']:.3f} | {res['seconds_old']:.1f} |",
        f"| + new models incrementally | {res['incremental']:.3f} | {res['seconds_incremental']:.1f} |",
        f"| retrained on the whole zoo | {res['retrained']:.3f} | {res['seconds_retrained']:.1f} |",
        "", f"Loss of the incremental zoo against retraining: {res['loss_vs_retraining']:+.3f} weighted tau."])


def _quality_md(quality: dict) -> str:
    lines = ["| supervision | weighted tau | sampled tasks |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {v['weighted_tau']:.3f} | {v['n_tasks']} |" for name, v in quality.items()]
    return "\n".join(lines)


def report(bench: H.Benchmark, provider, *, out: Path, command: str, params: dict | None = None,
           ks: Sequence[int] | None = None, new: int = 4, markdown_dir: Path | None = None,
           progress=None) -> tuple[str, dict]:
    """Every Spider experiment on a benchmark as one Markdown section (``train``, ``curve`` with its plot,
    ``incremental``, the supervision diagnostic, the chart of the model best on average): (markdown, numbers).
    Plots go next to ``out``; the Markdown links them relative to ``markdown_dir`` (default: their folder)."""
    import datetime as _dt
    import os

    say = progress or (lambda _m: None)
    say("train cost")
    cost = train_cost(bench, provider, params=params)
    say("curve")
    M = len(bench.models)
    ks = sorted({k for k in (ks or (0, 1, 2, 3, 5, 8, 12, 20, M)) if 0 <= k <= M})
    cur = curve(bench, provider, ks=ks, params=params, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    curve_png = out.with_name(out.name + "_curve.png")
    _plot_curve(cur, curve_png)
    say("incremental")
    inc = incremental(bench, provider, new=new, params=params, progress=progress)
    say("supervision quality")
    quality = supervision_quality(bench, provider, params=params)
    popular = max(bench.models, key=lambda m: np.mean([bench.truth(t)[bench.models.index(m)] for t in bench.tasks]))
    say("chart")
    ch = chart(bench, provider, [popular], out.with_name(out.name + "_chart"), params=params)
    where = Path(markdown_dir) if markdown_dir is not None else out.parent
    rel = [os.path.relpath(Path(p).resolve(), where.resolve()) for p in [curve_png, *ch["files"]]]
    md = "\n".join([
        "## Model Spider on the benchmark", "",
        f"Command: `{command}`  ", f"Measured {_dt.date.today().isoformat()}.", "",
        "### Training and ranking cost", "", _train_md(cost), "",
        "### Efficiency-accuracy curve of re-ranking (figure 4a), leave-one-target-out", "",
        f"![curve]({rel[0]})", "", _curve_md(cur), "",
        "### Incremental zoo (appendix C.4), leave-one-target-out", "", _incremental_md(inc), "",
        "### Supervision quality on the sampled tasks (table 3's question)", "",
        "Weighted tau of each supervision against the sampled task's true accuracy (row-weighted mean of its "
        "sources' fine-tuned accuracies); a diagnostic that reads every target's ground truth and trains nothing.",
        "", _quality_md(quality), "",
        f"### Spider chart of {popular} (the model best on average; section 5.4)", "",
        f"![spider chart]({rel[1]})", ""])
    return md, {"train": cost, "curve": cur, "incremental": inc, "supervision_quality": quality, "chart": ch}


def _plot_curve(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(res["k"], res["weighted_tau"], marker="o", label="Model Spider (re-rank top k)")
    for name, v in res["reference"].items():
        ax.axhline(v, linestyle="--", color="grey", label=f"{name} ({res['k'][-1]} forward passes)")
    ax.set_xlabel("k = PTM-specific forward passes")
    ax.set_ylabel("weighted Kendall tau (mean over targets)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def ks_arg(args: argparse.Namespace) -> list[int] | None:
    """The ``--ks`` option as a list of integers (None = the command's default)."""
    if args.ks is None:
        return None
    try:
        return [int(k) for k in args.ks.split(",") if k.strip()]
    except ValueError:
        raise InputError(f"--ks must be comma-separated integers, got {args.ks!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.spider_curve {curve,incremental,ablation,chart} --benchmark planted|toy|DIR``."""
    import torch

    ap = argparse.ArgumentParser(prog="python -m benchmarks.spider_curve", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["curve", "incremental", "ablation", "chart", "train", "report"])
    ap.add_argument("--benchmark", default="planted", help="planted, toy, or a benchmark directory (ZooBench)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the planted / toy benchmark")
    ap.add_argument("--hidden", type=float, default=1.0, help="planted: quality part invisible to the encoder")
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: all)")
    ap.add_argument("--ks", default=None, help="curve: comma-separated k values (default 0..M)")
    ap.add_argument("--mode", default="block", choices=["block", "replace"], help="curve: re-ranking mode")
    ap.add_argument("--new", type=int, default=2, help="incremental: number of models added (the zoo's last)")
    ap.add_argument("--exemplars", type=int, default=None, help="incremental: training tasks kept (appendix C.4)")
    ap.add_argument("--model", action="append", default=None, help="chart: model(s) to draw (repeatable)")
    ap.add_argument("--out", default="spider_chart", help="chart: output path without suffix; curve: plot path")
    ap.add_argument("--epochs", type=int, default=None, help="Spider training epochs")
    ap.add_argument("--json", default=None, help="write the numbers to this JSON file")
    ap.add_argument("--write", default=None, help="report: write the 'spider' section of this Markdown file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        bench, provider = _load(args.benchmark, args.seed, args.hidden)
        tasks = None if args.tasks is None else [t.strip() for t in args.tasks.split(",") if t.strip()]
        params = {"spider": {"epochs": args.epochs}} if args.epochs else None

        def tick(what: str) -> None:
            print(f"  done: {what}", file=sys.stderr, flush=True)

        if args.command == "curve":
            res = curve(bench, provider, tasks=tasks, ks=ks_arg(args), params=params, mode=args.mode, progress=tick)
            print(_curve_md(res))
            if args.out != "spider_chart":
                _plot_curve(res, Path(args.out))
        elif args.command == "incremental":
            res = incremental(bench, provider, new=args.new, tasks=tasks, params=params, exemplars=args.exemplars,
                              progress=tick)
            print(f"old zoo {len(res['old_models'])} models, added {', '.join(res['new_models'])}; "
                  f"{res['n_targets']} targets\n")
            print("| Spider | weighted tau | fit seconds |\n| --- | ---: | ---: |")
            print(f"| old zoo (old models only) | {res['old_on_old']:.3f} | {res['seconds_old']:.1f} |")
            print(f"| + new models incrementally | {res['incremental']:.3f} | {res['seconds_incremental']:.1f} |")
            print(f"| retrained on the whole zoo | {res['retrained']:.3f} | {res['seconds_retrained']:.1f} |")
            print(f"\nloss of the incremental zoo against retraining: {res['loss_vs_retraining']:+.3f} tau")
        elif args.command == "train":
            res = train_cost(bench, provider, params=params)
            print(_train_md(res))
        elif args.command == "report":
            out = Path(args.out if args.out != "spider_chart" else "spider")
            cmd = f"python -m benchmarks.spider_curve report --benchmark {args.benchmark} --out {args.out}" + \
                f" --new {args.new}" + (f" --ks {args.ks}" if args.ks else "") + \
                (f" --write {args.write}" if args.write else "") + (f" --epochs {args.epochs}" if args.epochs else "")
            md, res = report(bench, provider, out=out, command=cmd, params=params, ks=ks_arg(args), new=args.new,
                             markdown_dir=Path(args.write).parent if args.write else None, progress=tick)
            print(md)
            if args.write:
                from zoorank.evaluation.tables import write_markdown_section

                write_markdown_section(Path(args.write), "spider", md)
        elif args.command == "ablation":
            result, quality = ablation(bench, provider, tasks=tasks, progress=lambda m, t: tick(f"{m} on {t}"))
            print(H.markdown(result))
            print("### Supervision quality on the sampled tasks (weighted tau against the sources' true accuracy)\n")
            print("| supervision | weighted tau | sampled tasks |\n| --- | ---: | ---: |")
            for name, v in quality.items():
                print(f"| {name} | {v['weighted_tau']:.3f} | {v['n_tasks']} |")
            res = {"records": [r.to_dict() for r in result], "supervision_quality": quality}
        else:
            models = args.model or [bench.models[0]]
            res = chart(bench, provider, models, args.out, params=params)
            for m, a in res["affinities"].items():
                print(m + ": " + ", ".join(f"{c} {v['scaled']:.2f}" for c, v in a.items()))
            print("wrote " + ", ".join(res["files"]))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
