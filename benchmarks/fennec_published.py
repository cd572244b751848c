"""Fennec's transfer and meta phases evaluated as a recommender on published zoos (leave one dataset out).

No images come with the published tables (:mod:`benchmarks.published`), so Fennec's CLIP proxy (section 3.3)
cannot run. Instead, for every zoo and every held-out dataset ``j``:

1. **Training data** = every column except ``j``. Nothing below reads column ``j`` except the ``k`` observed
   entries (step 3) and the evaluation (step 5).
2. **Offline phases** (fitted once per held-out dataset):
   - transfer phase: masked NMF (:func:`~zoorank.methods.fennec.nmf.factorize`, eq. 4) of the training
     accuracies divided by 100 (percent -> [0, 1]; a fixed division rather than a per-column min-max, so that
     the held-out column's observed entries are on the same scale without knowing its range);
   - meta phase: :class:`~zoorank.methods.fennec.meta.MetaRegressor` (eq. 8) from the model metadata
     (log10 parameter count when the zoo has it, one-hot architecture family, one-hot source dataset with
     sources held by fewer than 3 models pooled as "other"; features that are constant are dropped). The tables
     carry no task meta features, so the task part is empty and the regression predicts the same ranking
     for every new task. The regression target is each training column z-scored (NaN-aware), so that datasets
     with a wide accuracy spread do not dominate and dataset difficulty (which no feature can explain here)
     does not enter the fit.
3. **Observations**: ``k`` in ``ks`` (default 0, 3, 5, 10) entries of column ``j`` are revealed, the models
   drawn uniformly from those with an accuracy on ``j``, ``draws`` times (default 20) with a seed fixed per
   (seed, dataset, k); ``k = 0`` is one draw (the cold start). A ``k`` that would leave fewer than
   ``min_eval`` models to rank is skipped (so ``k = 10`` is skipped on 10-13-model zoos).
4. **Predictions** for all models (higher = better):
   - ``transfer``: ``k > 0``: :func:`~zoorank.methods.fennec.nmf.fold_in` of the observed values (/100),
     then ``M @ d``; ``k = 0``: ``M @ mean(D)``, the mean of the training task vectors (without a proxy
     encoder this is the only cold-start transfer score, and it approximates popularity);
   - ``meta``: the meta-phase prediction (eq. 9), absent when the zoo has no informative metadata;
   - ``merge``: eq. 10, ``(1 - alpha) * z(transfer) + alpha * z(meta)`` with ``alpha = 0.5`` and ``z`` the
     z-score over the zoo's models (the two phases are on different scales); equals ``transfer`` without meta;
   - ``popularity``: mean accuracy on the training datasets (NaN-aware mean of percent values);
     ``popularity_z``: mean of per-dataset z-scores (robust to a model missing easy or hard datasets);
   - ``random``: the expected value of a uniformly random ranking, computed exactly: 0 for the three
     correlations (by symmetry) and ``max - mean`` of the evaluated accuracies for the top-1 regret;
   - published scores (LogME, regularised H-score, ...) of the zoo for dataset ``j``, when it has them.
   Models without any training entry get the mean prediction of the others (a neutral rank).
5. **Evaluation** on the models with an accuracy on ``j`` (and, when the zoo has published scores for ``j``,
   all of them present) **minus the observed ones**: every method is scored on exactly the same models in
   each draw. Quality: weighted Kendall tau (:func:`~zoorank.ranking.weighted_tau`), Kendall tau-b, Pearson,
   top-1 regret in accuracy points; averaged over draws, then over held-out datasets.

Hyper-parameters are fixed a priori and never tuned on a held-out dataset: latent dimension ``k_latent = 4``
(the zoos have 6-35 training columns and the fold-in sees 3-10 entries), NMF ``alpha_m = alpha_d = 1e-3``,
``max_iter = 2000``, ``tol = 1e-6``, merge ``alpha = 0.5`` (the paper's default). :func:`latent_sweep` reports
the effect of ``k_latent`` (2, 4, 8, 16) afterwards, for information only.

Command: ``python -m benchmarks.fennec_published [--zoos ...] [--write docs/BENCHMARKS.md]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from benchmarks.published import PublishedZoo, available_zoos, load_zoo
from zoorank.errors import InputError
from zoorank.methods.fennec.meta import MetaRegressor, one_hot
from zoorank.methods.fennec.nmf import NMFResult, factorize, fold_in
from zoorank.ranking import kendall_tau, pearson, top1_regret, weighted_tau

__all__ = [
    "EvalConfig",
    "TrainingFit",
    "ZooEvaluation",
    "draw_observed",
    "evaluate_column",
    "evaluate_zoo",
    "fit_without_column",
    "latent_sweep",
    "main",
    "meta_model_features",
    "predict_column",
    "render_markdown",
    "run",
    "summarise",
]

LEARNT = ("transfer", "meta", "merge")
BASELINES = ("popularity", "popularity_z", "random")
QUALITY = ("wtau", "ktau", "pearson", "regret")
DEFAULT_SWEEP_ZOOS = ("transfergraph_image", "model_recycling")
DEFAULT_LATENTS = (2, 4, 8, 16)


@dataclass(frozen=True)
class EvalConfig:
    """Protocol settings (module doc); all fixed a priori."""

    ks: tuple[int, ...] = (0, 3, 5, 10)
    draws: int = 20
    k_latent: int = 4
    alpha: float = 0.5
    alpha_m: float = 1e-3
    alpha_d: float = 1e-3
    max_iter: int = 2000
    tol: float = 1e-6
    seed: int = 0
    min_eval: int = 3

    def __post_init__(self) -> None:
        if not self.ks or any(int(k) != k or k < 0 for k in self.ks):
            raise InputError(f"ks must be non-negative integers, got {self.ks!r}")
        if self.draws < 1 or self.k_latent < 1 or self.min_eval < 2:
            raise InputError("draws and k_latent must be >= 1 and min_eval >= 2")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {self.alpha}")


# ----------------------------------------------------------------------------------------------- helpers


def _zscore(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    sd = v.std()
    return np.zeros_like(v) if not np.isfinite(sd) or sd < 1e-12 else (v - v.mean()) / sd


def _zscore_columns(X: np.ndarray) -> np.ndarray:
    """NaN-aware z-score of every column (constant columns -> 0 where observed)."""
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(X, axis=0)
        sd = np.nanstd(X, axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, np.inf)
    return (X - mu) / sd


def _row_nanmean(X: np.ndarray) -> np.ndarray:
    n = np.isfinite(X).sum(axis=1)
    s = np.where(np.isfinite(X), X, 0.0).sum(axis=1)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _neutral(pred: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Models without training data (``known`` False) get the mean prediction of the others."""
    pred = np.asarray(pred, dtype=np.float64).copy()
    bad = ~known | ~np.isfinite(pred)
    if bad.all():
        return np.zeros_like(pred)
    pred[bad] = pred[~bad].mean()
    return pred


def meta_model_features(zoo: PublishedZoo, *, min_source: int = 3) -> tuple[np.ndarray, list[str]]:
    """[n_models, F] meta features from ``zoo.model_meta`` and their names: log10 params (median-imputed,
    when any is known), one-hot family, one-hot source (sources with < ``min_source`` models -> "other").
    Constant columns are dropped; F may be 0."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    params = np.asarray(zoo.model_meta.get("params", np.full(zoo.n_models, np.nan)), dtype=np.float64)
    ok = np.isfinite(params) & (params >= 1)
    if ok.any():
        p = np.where(ok, params, np.median(params[ok]))
        cols.append(np.log10(p)[:, None])
        names.append("log10_params")
    for key in ("family", "source"):
        if key not in zoo.model_meta:
            continue
        vals = [str(v) for v in zoo.model_meta[key]]
        if key == "source":
            counts = defaultdict(int)
            for v in vals:
                counts[v] += 1
            vals = [v if counts[v] >= min_source else "other" for v in vals]
        oh, vocab = one_hot(vals)
        cols.append(oh)
        names += [f"{key}={v}" for v in vocab]
    if not cols:
        return np.zeros((zoo.n_models, 0)), []
    F = np.hstack(cols)
    keep = F.std(axis=0) > 1e-12
    return F[:, keep], [n for n, k in zip(names, keep, strict=True) if k]


# ----------------------------------------------------------------------------------------------- fitting


@dataclass
class TrainingFit:
    """Everything learnt without the held-out column ``j`` (module doc, step 2)."""

    j: int
    nmf: NMFResult
    transfer_cold: np.ndarray  # M @ mean(D)
    meta: np.ndarray | None
    popularity: np.ndarray
    popularity_z: np.ndarray
    known: np.ndarray  # models with at least one training entry
    train_rmse: float  # NMF reconstruction error on the observed training entries (accuracy fraction)


def fit_without_column(acc: np.ndarray, j: int, model_feats: np.ndarray | None, cfg: EvalConfig,
                       *, k_latent: int | None = None) -> TrainingFit:
    """Fit the offline phases on every column of ``acc`` (percent) except ``j``."""
    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim != 2 or not 0 <= j < acc.shape[1] or acc.shape[1] < 2:
        raise InputError(f"held-out column {j} invalid for a matrix of shape {acc.shape}")
    train = np.delete(acc, j, axis=1)
    known = np.isfinite(train).any(axis=1)
    if known.sum() < 2:
        raise InputError("fewer than 2 models have training entries")
    P = train / 100.0
    finite = np.isfinite(P)
    if (P[finite] < 0).any():
        raise InputError("accuracies must be non-negative percentages for the NMF")
    kl = cfg.k_latent if k_latent is None else int(k_latent)
    res = factorize(P, kl, mask=finite, alpha_m=cfg.alpha_m, alpha_d=cfg.alpha_d, max_iter=cfg.max_iter,
                    tol=cfg.tol, seed=cfg.seed)
    R = res.reconstruct()
    rmse = float(np.sqrt(np.mean((R[finite] - P[finite]) ** 2)))
    transfer_cold = _neutral(res.M @ res.D.mean(axis=0), known)
    meta = None
    if model_feats is not None and np.asarray(model_feats).shape[1] > 0:
        fm = np.asarray(model_feats, dtype=np.float64)
        target = _zscore_columns(train)
        reg = MetaRegressor().fit(fm, np.zeros((train.shape[1], 0)), target)
        meta = reg.predict(fm, np.zeros((1, 0)))[:, 0]
    pop = _neutral(_row_nanmean(train), known)
    pop_z = _neutral(_row_nanmean(_zscore_columns(train)), known)
    return TrainingFit(j, res, transfer_cold, meta, pop, pop_z, known, rmse)


def predict_column(fit: TrainingFit, observed: np.ndarray, values: np.ndarray, cfg: EvalConfig
                   ) -> dict[str, np.ndarray]:
    """Scores of every model for the held-out column from the fit and the observed entries
    (``observed`` model indices, ``values`` their accuracies in percent). Methods of module doc step 4
    except ``random`` and the published scores."""
    observed = np.asarray(observed, dtype=np.int64)
    if observed.size:
        d = fold_in(fit.nmf.M, np.asarray(values, dtype=np.float64) / 100.0, observed, alpha_d=cfg.alpha_d)
        transfer = _neutral(fit.nmf.M @ d, fit.known)
    else:
        transfer = fit.transfer_cold
    out = {"transfer": transfer}
    if fit.meta is not None:
        out["meta"] = fit.meta
        out["merge"] = (1.0 - cfg.alpha) * _zscore(transfer) + cfg.alpha * _zscore(fit.meta)
    else:
        out["merge"] = transfer
    out["popularity"] = fit.popularity
    out["popularity_z"] = fit.popularity_z
    return out


# ----------------------------------------------------------------------------------------------- evaluation


def draw_observed(candidates: np.ndarray, k: int, draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``draws`` sets of ``k`` distinct models from ``candidates`` (one empty set when ``k == 0``)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if k == 0:
        return [np.zeros(0, dtype=np.int64)]
    if k > candidates.size:
        raise InputError(f"cannot observe {k} of {candidates.size} models")
    return [np.sort(rng.choice(candidates, size=k, replace=False)) for _ in range(draws)]


def _quality(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"wtau": weighted_tau(pred, truth), "ktau": kendall_tau(pred, truth), "pearson": pearson(pred, truth),
            "regret": top1_regret(pred, truth)}


def _score_metrics(zoo: PublishedZoo, j: int) -> list[str]:
    return [m for m, s in zoo.scores.items() if np.isfinite(s[:, j]).any()]


def evaluate_column(zoo: PublishedZoo, j: int, cfg: EvalConfig, *, model_feats: np.ndarray | None = None,
                    fit: TrainingFit | None = None, observed_sets: dict[int, list[np.ndarray]] | None = None,
                    methods: Sequence[str] | None = None) -> list[dict]:
    """Records (one per k and method, averaged over draws) for held-out dataset ``j`` (module doc).
    ``observed_sets`` replaces the random draws for the given k (tests); ``methods`` limits the output."""
    truth_all = zoo.acc[:, j]
    candidates = np.flatnonzero(np.isfinite(truth_all))
    metrics = _score_metrics(zoo, j)
    evaluable = np.isfinite(truth_all)
    for m in metrics:
        evaluable &= np.isfinite(zoo.scores[m][:, j])
    if fit is None:
        fit = fit_without_column(zoo.acc, j, model_feats, cfg)
    elif fit.j != j:
        raise InputError(f"the fit left out column {fit.j}, not {j}")
    records = []
    for k in cfg.ks:
        if observed_sets is not None and k in observed_sets:
            sets = [np.asarray(s, dtype=np.int64) for s in observed_sets[k]]
        else:
            if candidates.size - k < cfg.min_eval:
                continue
            rng = np.random.default_rng([cfg.seed, j, k])
            sets = draw_observed(candidates, k, cfg.draws, rng)
        acc_q: dict[str, list[dict[str, float]]] = defaultdict(list)
        n_eval = []
        for obs in sets:
            if not np.isin(obs, candidates).all():
                raise InputError("observed models must have an accuracy on the held-out dataset")
            ev = evaluable.copy()
            ev[obs] = False  # observed models are never evaluated
            idx = np.flatnonzero(ev)
            if idx.size < cfg.min_eval:
                continue
            n_eval.append(idx.size)
            truth = truth_all[idx]
            preds = predict_column(fit, obs, truth_all[obs], cfg)
            for m in metrics:
                preds[m] = zoo.scores[m][:, j]
            for name, p in preds.items():
                if methods is None or name in methods:
                    acc_q[name].append(_quality(p[idx], truth))
            if methods is None or "random" in methods:
                acc_q["random"].append({"wtau": 0.0, "ktau": 0.0, "pearson": 0.0,
                                        "regret": float(truth.max() - truth.mean())})
        if not n_eval:
            continue
        for name, qs in acc_q.items():
            rec = {"zoo": zoo.name, "dataset": zoo.datasets[j], "k": int(k), "method": name,
                   "n_eval": float(np.mean(n_eval)), "n_draws": len(qs), "scored_dataset": bool(metrics),
                   "published": name in metrics}
            for q in QUALITY:
                rec[q] = float(np.mean([x[q] for x in qs]))
            records.append(rec)
    return records


@dataclass
class ZooEvaluation:
    """Per-record results of one zoo (plain data) and the NMF diagnostics per held-out dataset."""

    zoo: str
    n_models: int
    n_datasets: int
    meta_features: list[str]
    records: list[dict] = field(default_factory=list)
    nmf: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def evaluate_zoo(zoo: PublishedZoo, cfg: EvalConfig | None = None, *, k_latent: int | None = None,
                 methods: Sequence[str] | None = None) -> ZooEvaluation:
    """Leave each dataset out in turn (module doc)."""
    cfg = cfg or EvalConfig()
    if k_latent is not None:
        cfg = replace(cfg, k_latent=int(k_latent))
    if zoo.n_datasets < 2:
        raise InputError(f"zoo {zoo.name} needs at least 2 datasets")
    t0 = time.perf_counter()
    feats, fnames = meta_model_features(zoo)
    out = ZooEvaluation(zoo.name, zoo.n_models, zoo.n_datasets, fnames)
    for j in range(zoo.n_datasets):
        fit = fit_without_column(zoo.acc, j, feats, cfg)
        out.nmf.append({"zoo": zoo.name, "dataset": zoo.datasets[j], "k_latent": cfg.k_latent,
                        "max_iter": cfg.max_iter, "n_iter": fit.nmf.n_iter, "converged": fit.nmf.converged,
                        "loss": fit.nmf.loss, "train_rmse": fit.train_rmse})
        out.records += evaluate_column(zoo, j, cfg, model_feats=feats, fit=fit, methods=methods)
    out.seconds = time.perf_counter() - t0
    return out


def latent_sweep(zoo: PublishedZoo, latents: Sequence[int] = DEFAULT_LATENTS, cfg: EvalConfig | None = None,
                 *, long_iter: int | None = 20000) -> list[ZooEvaluation]:
    """The transfer phase at several latent dimensions (same draws for every dimension), plus the default
    dimension with ``max_iter = long_iter`` (the NMF convergence check; skipped when ``None``)."""
    cfg = cfg or EvalConfig()
    out = [evaluate_zoo(zoo, cfg, k_latent=kl, methods=("transfer",)) for kl in latents]
    if long_iter is not None and long_iter > cfg.max_iter:
        out.append(evaluate_zoo(zoo, replace(cfg, max_iter=int(long_iter)), methods=("transfer",)))
    return out


def summarise(records: Sequence[dict], *, scored_only: bool = False) -> dict[tuple[str, int, str], dict]:
    """Mean quality over held-out datasets per (zoo, k, method); ``scored_only`` keeps the datasets that have
    published scores. Each value also gives ``n_datasets``."""
    groups: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for r in records:
        if scored_only and not r["scored_dataset"]:
            continue
        groups[(r["zoo"], r["k"], r["method"])].append(r)
    return {key: {**{q: float(np.mean([r[q] for r in rs])) for q in QUALITY}, "n_datasets": len(rs)}
            for key, rs in groups.items()}


def nmf_summary(nmf: Sequence[dict]) -> dict[str, float]:
    it = np.array([r["n_iter"] for r in nmf], dtype=float)
    conv = np.array([r["converged"] for r in nmf], dtype=bool)
    return {"mean_iter": float(it.mean()), "max_iter": float(it.max()), "converged": float(conv.mean()),
            "train_rmse": float(np.mean([r["train_rmse"] for r in nmf]))}


# ----------------------------------------------------------------------------------------------- report


def _method_order(keys: Sequence[str]) -> list[str]:
    fixed = [m for m in (*LEARNT, *BASELINES) if m in keys]
    return fixed + sorted(k for k in keys if k not in fixed)


def _cell(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['wtau']:.2f} / {s['ktau']:.2f} / {s['pearson']:.2f} / {s['regret']:.2f}"


def _zoo_table(ev: ZooEvaluation, ks: Sequence[int], *, scored_only: bool, with_published: bool) -> str:
    summ = summarise(ev.records, scored_only=scored_only)
    published = {r["method"] for r in ev.records if r["published"]}
    methods = [m for m in _method_order(sorted({m for (_, _, m) in summ})) if with_published or m not in published]
    ks = [k for k in ks if any(kk == k for (_, kk, _) in summ)]
    if not methods or not ks:
        return ""
    lines = ["| method | sets | " + " | ".join(f"k={k}" for k in ks) + " |", "| --- | ---: |" + " ---: |" * len(ks)]
    for m in methods:
        n = max(summ[key]["n_datasets"] for key in summ if key[2] == m)
        lines.append(f"| {m} | {n} | " + " | ".join(_cell(summ.get((ev.zoo, k, m))) for k in ks) + " |")
    return "\n".join(lines)


def paired_with_popularity(ev: ZooEvaluation, metric: str, *, k: int = 0, q: str = "wtau") -> tuple[float, float, int]:
    """Mean ``q`` of a published ``metric`` and of popularity over the datasets where the metric exists."""
    recs = [r for r in ev.records if r["k"] == k]
    sets = {r["dataset"] for r in recs if r["method"] == metric}
    a = [r[q] for r in recs if r["method"] == metric]
    b = [r[q] for r in recs if r["method"] == "popularity" and r["dataset"] in sets]
    return float(np.mean(a)), float(np.mean(b)), len(sets)


def _per_dataset_table(ev: ZooEvaluation, methods: Sequence[str], q: str = "ktau") -> str:
    recs = [r for r in ev.records if r["k"] == 0 and r["scored_dataset"]]
    datasets = list(dict.fromkeys(r["dataset"] for r in recs))
    val = {(r["dataset"], r["method"]): r[q] for r in recs}
    methods = [m for m in methods if any(key[1] == m for key in val)]
    lines = ["| dataset | models | " + " | ".join(methods) + " |", "| --- | ---: |" + " ---: |" * len(methods)]
    for d in datasets:
        n = next(r["n_eval"] for r in recs if r["dataset"] == d)
        lines.append(f"| {d} | {n:.0f} | " + " | ".join(f"{val[(d, m)]:.2f}" if (d, m) in val else "-"
                                                        for m in methods) + " |")
    return "\n".join(lines)


#: The issue's reference point (plain Kendall tau at k=0, popularity vs published LogME), quoted for comparison.
ISSUE_REFERENCE = {"tllib": (0.71, 0.57), "transfergraph_image": (0.18, 0.24)}


def _compare(evals: Sequence[ZooEvaluation], a: tuple[int, str], b: tuple[int, str], tie: float = 0.02) -> str:
    """Which zoos have method a (k, name) above / level with / below method b in mean weighted tau."""
    better, level, worse = [], [], []
    for ev in evals:
        s = summarise(ev.records)
        ka, kb = (ev.zoo, *a), (ev.zoo, *b)
        if ka not in s or kb not in s:
            continue
        d = s[ka]["wtau"] - s[kb]["wtau"]
        (better if d >= tie else worse if d <= -tie else level).append(f"{ev.zoo} {d:+.2f}")
    return (f"higher on {len(better)} ({', '.join(better) or '-'}), within {tie} on {len(level)}, "
            f"lower on {len(worse)} ({', '.join(worse) or '-'})")


def _findings(evals: Sequence[ZooEvaluation], ks: Sequence[int]) -> list[str]:
    out = [f"- cold-start transfer (k=0) vs popularity: {_compare(evals, (0, 'transfer'), (0, 'popularity'))}.",
           f"- meta phase alone vs popularity: {_compare(evals, (0, 'meta'), (0, 'popularity'))}.",
           f"- merge vs cold-start transfer (k=0): {_compare(evals, (0, 'merge'), (0, 'transfer'))}."]
    for k in ks:
        if k > 0:
            out.append(f"- transfer with k={k} observations (fold-in) vs the cold start: "
                       f"{_compare(evals, (k, 'transfer'), (0, 'transfer'))}.")
    return out


def _verdict(pop: float, logme: float, tie: float = 0.02) -> str:
    if abs(pop - logme) < tie:
        return f"popularity and LogME tie (|difference| < {tie})"
    return "popularity beats LogME" if pop > logme else "LogME beats popularity"


def render_markdown(results: dict, command: str) -> str:
    """The Markdown section (plain text) for the results of :func:`run`."""
    cfg: EvalConfig = results["config"]
    evals: list[ZooEvaluation] = results["zoos"]
    ks = list(cfg.ks)
    L: list[str] = ["## Fennec on published zoos (leave one dataset out)", ""]
    L.append(f"Command: `{command}`  ")
    L.append(f"Machine: Python {platform.python_version()}, numpy {np.__version__}; "
             f"total {results['seconds']:.0f} s.  ")
    L.append(
        "Protocol (`benchmarks.fennec_published`, module doc): hold out one dataset; fit the NMF "
        f"(k_latent={cfg.k_latent}, alpha_m=alpha_d={cfg.alpha_m:g}, max_iter={cfg.max_iter}, accuracies/100) and "
        "the meta regression (model metadata only, target z-scored per dataset) on the other datasets; reveal k "
        f"held-out accuracies (random models, {cfg.draws} draws, seed {cfg.seed}); rank the remaining models. "
        "k=0 is the cold start: `transfer` = M @ mean of the training task vectors, `meta` = metadata regression, "
        f"`merge` = eq. 10 with alpha={cfg.alpha} on z-scores. k>0: `transfer` = `fold_in` of the k observations, "
        "`merge` = that with the same meta score. Observed models are excluded from every evaluation and all "
        "methods are scored on the same models per draw (on datasets with published scores: the models that have "
        "them). `popularity` = mean accuracy on the other datasets, `popularity_z` = mean per-dataset z-score, "
        "`random` = exact expectation. Hyper-parameters fixed a priori, never tuned on a held-out dataset.")
    L.append("")
    L.append("Cells: weighted Kendall tau / Kendall tau-b / Pearson / top-1 regret (accuracy points), mean over "
             "held-out datasets (each the mean over draws); `sets` = held-out datasets averaged. A k that would "
             f"leave fewer than {cfg.min_eval} models to rank is skipped.")
    L.append("")
    L.append("### Headline: weighted tau, mean over held-out datasets")
    L.append("")
    L.append("| zoo | models x sets | popularity | popularity_z | meta | transfer k=0 | merge k=0 | "
             + " | ".join(f"transfer k={k}" for k in ks if k > 0) + " | published (k=0, vs popularity on its sets) |")
    L.append("| --- | --- |" + " ---: |" * (5 + sum(k > 0 for k in ks)) + " --- |")
    for ev in evals:
        s = summarise(ev.records)

        def w(k: int, m: str, s: dict = s, ev: ZooEvaluation = ev) -> str:
            return f"{s[(ev.zoo, k, m)]['wtau']:.2f}" if (ev.zoo, k, m) in s else "-"

        pubs = []
        for m in sorted({r["method"] for r in ev.records if r["published"]}):
            a, b, n = paired_with_popularity(ev, m)
            pubs.append(f"{m} {a:.2f} vs {b:.2f} ({n})")
        L.append(f"| {ev.zoo} | {ev.n_models} x {ev.n_datasets} | {w(0, 'popularity')} | {w(0, 'popularity_z')} | "
                 f"{w(0, 'meta')} | {w(0, 'transfer')} | {w(0, 'merge')} | "
                 + " | ".join(w(k, "transfer") for k in ks if k > 0) + f" | {'; '.join(pubs) or '-'} |")
    L.append("")
    L.append("Computed comparisons (mean weighted tau; differences below 0.02 count as level):")
    L.append("")
    L += _findings(evals, ks)
    L.append("")
    ref = results.get("reference") or []
    if ref:
        L.append("### Reference point: popularity vs published LogME (k=0, plain Kendall tau, datasets with LogME)")
        L.append("")
        L.append("| zoo | sets | popularity | popularity_z | transfer k=0 | LogME | other published | issue's figure "
                 "(popularity vs LogME) |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for r in ref:
            others = ", ".join(f"{m} {v:.2f}" for m, v in r["others"].items())
            iss = ISSUE_REFERENCE.get(r["zoo"])
            iss_txt = "-" if iss is None else f"{iss[0]:.2f} vs {iss[1]:.2f}"
            L.append(f"| {r['zoo']} | {r['n_datasets']} | {r['popularity']:.2f} | {r['popularity_z']:.2f} | "
                     f"{r['transfer']:.2f} | {r['LogME']:.2f} | {others} | {iss_txt} |")
        L.append("")
        for r in ref:
            iss = ISSUE_REFERENCE.get(r["zoo"])
            if iss is None:
                continue
            L.append(f"- {r['zoo']}: here {_verdict(r['popularity'], r['LogME'])} "
                     f"({r['popularity']:.2f} vs {r['LogME']:.2f}; popularity_z {r['popularity_z']:.2f}); "
                     f"the issue: {_verdict(*iss)} ({iss[0]:.2f} vs {iss[1]:.2f}).")
        L.append("")
        for ev in evals:
            if any(r["zoo"] == ev.zoo for r in ref):
                pub = sorted({r["method"] for r in ev.records if r["published"]})
                L.append(f"Per dataset, {ev.zoo}, k=0, Kendall tau:")
                L.append("")
                L.append(_per_dataset_table(ev, ["popularity", "popularity_z", "transfer", "meta", *pub]))
                L.append("")
    for ev in evals:
        ns = nmf_summary(ev.nmf)
        L.append(f"### {ev.zoo} ({ev.n_models} models x {ev.n_datasets} datasets)")
        L.append("")
        L.append(f"Meta features: {', '.join(_short_features(ev.meta_features)) or 'none (meta phase absent)'}. "
                 f"NMF: {ns['mean_iter']:.0f} iterations on average (max {ns['max_iter']:.0f}), "
                 f"{100 * ns['converged']:.0f}% converged at tol {cfg.tol:g}, training RMSE {ns['train_rmse']:.3f} "
                 f"(accuracy fraction). {ev.seconds:.1f} s.")
        L.append("")
        scored_sets = {r["dataset"] for r in ev.records if r["scored_dataset"]}
        all_sets = {r["dataset"] for r in ev.records}
        if scored_sets == all_sets:
            L.append(_zoo_table(ev, ks, scored_only=False, with_published=True))
            L.append("")
        else:
            L.append(_zoo_table(ev, ks, scored_only=False, with_published=False))
            L.append("")
            if scored_sets:
                L.append(f"Datasets with published scores only ({len(scored_sets)}):")
                L.append("")
                L.append(_zoo_table(ev, ks, scored_only=True, with_published=True))
                L.append("")
    sweep = results.get("sweep") or {}
    if sweep:
        L.append("### Latent dimension and NMF convergence (transfer phase only; for information, not used to "
                 "choose k_latent)")
        L.append("")
        L.append("| zoo | k_latent | max_iter | " + " | ".join(f"wtau k={k}" for k in ks)
                 + " | mean NMF iterations | converged | objective vs longest run | training RMSE |")
        L.append("| --- | ---: | ---: |" + " ---: |" * (len(ks) + 4))
        for zname, evs in sweep.items():
            longest = {}
            for ev in evs:
                for r in ev.nmf:
                    key = (r["k_latent"], r["dataset"])
                    if key not in longest or r["max_iter"] > longest[key]["max_iter"]:
                        longest[key] = r
            for ev in evs:
                s = summarise(ev.records)
                kl, mi = ev.nmf[0]["k_latent"], ev.nmf[0]["max_iter"]
                ns = nmf_summary(ev.nmf)
                has_longer = all(longest[(r["k_latent"], r["dataset"])]["max_iter"] > r["max_iter"] for r in ev.nmf)
                gap = np.mean([r["loss"] / longest[(r["k_latent"], r["dataset"])]["loss"] - 1.0 for r in ev.nmf])
                gap_txt = f"+{100 * gap:.2f}%" if has_longer else "-"
                cells = " | ".join(f"{s[(zname, k, 'transfer')]['wtau']:.2f}" if (zname, k, "transfer") in s
                                   else "-" for k in ks)
                L.append(f"| {zname} | {kl} | {mi} | {cells} | {ns['mean_iter']:.0f} | {100 * ns['converged']:.0f}% "
                         f"| {gap_txt} | {ns['train_rmse']:.3f} |")
        L.append("")
    return "\n".join(L)


def _short_features(names: list[str], limit: int = 8) -> list[str]:
    groups: dict[str, int] = defaultdict(int)
    for n in names:
        groups[n.split("=")[0]] += 1
    return [f"{g} ({c})" if c > 1 or "=" in g else g for g, c in groups.items()][:limit]


def reference_point(ev: ZooEvaluation) -> dict | None:
    """Popularity vs LogME (and other published scores): plain Kendall tau at k=0 on the scored datasets."""
    ss = summarise(ev.records, scored_only=True)
    if (ev.zoo, 0, "LogME") not in ss:
        return None
    others = {m: ss[(z, k, m)]["ktau"] for (z, k, m) in ss
              if k == 0 and m not in ("LogME", *LEARNT, *BASELINES)}
    return {"zoo": ev.zoo, "n_datasets": ss[(ev.zoo, 0, "LogME")]["n_datasets"],
            "popularity": ss[(ev.zoo, 0, "popularity")]["ktau"],
            "popularity_z": ss[(ev.zoo, 0, "popularity_z")]["ktau"], "transfer": ss[(ev.zoo, 0, "transfer")]["ktau"],
            "LogME": ss[(ev.zoo, 0, "LogME")]["ktau"],
            "others": others}


def run(zoos: Sequence[str] | None = None, *, cfg: EvalConfig | None = None,
        sweep_zoos: Sequence[str] = DEFAULT_SWEEP_ZOOS, latents: Sequence[int] = DEFAULT_LATENTS,
        long_iter: int | None = 20000, root: Path | str | None = None, log=None) -> dict:
    """Evaluate the zoos (default: all) and the latent sweep; plain data for the report / a CLI."""
    cfg = cfg or EvalConfig()
    names = list(zoos) if zoos else available_zoos()
    t0 = time.perf_counter()
    out: dict = {"config": cfg, "zoos": [], "sweep": {}, "reference": []}
    for name in names:
        zoo = load_zoo(name, root)
        ev = evaluate_zoo(zoo, cfg)
        out["zoos"].append(ev)
        ref = reference_point(ev)
        if ref:
            out["reference"].append(ref)
        if log:
            log(f"{name}: {zoo.n_models} x {zoo.n_datasets}, {ev.seconds:.1f} s")
    for name in sweep_zoos:
        zoo = load_zoo(name, root)
        out["sweep"][name] = latent_sweep(zoo, latents, cfg, long_iter=long_iter)
        if log:
            log(f"sweep {name}: done")
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fennec_published", description=__doc__.split("\n")[0])
    ap.add_argument("--zoos", nargs="+", choices=available_zoos(), help="default: all")
    ap.add_argument("--ks", nargs="+", type=int, default=list(EvalConfig.ks))
    ap.add_argument("--draws", type=int, default=EvalConfig.draws)
    ap.add_argument("--k-latent", type=int, default=EvalConfig.k_latent)
    ap.add_argument("--alpha", type=float, default=EvalConfig.alpha)
    ap.add_argument("--seed", type=int, default=EvalConfig.seed)
    ap.add_argument("--sweep-zoos", nargs="*", default=list(DEFAULT_SWEEP_ZOOS), choices=available_zoos())
    ap.add_argument("--latents", nargs="+", type=int, default=list(DEFAULT_LATENTS))
    ap.add_argument("--long-iter", type=int, default=20000, help="max_iter of the NMF convergence check (sweep zoos)")
    ap.add_argument("--root", type=Path, default=None, help="ground-truth folder (default: $ZOORANK_GROUNDTRUTH "
                                                             "or ../shared/data/groundtruth)")
    ap.add_argument("--write", type=Path, default=None, help="write the 'fennec-published' section of this file")
    args = ap.parse_args(argv)
    try:
        cfg = EvalConfig(ks=tuple(args.ks), draws=args.draws, k_latent=args.k_latent, alpha=args.alpha,
                         seed=args.seed)
        res = run(args.zoos, cfg=cfg, sweep_zoos=args.sweep_zoos, latents=args.latents,
                  long_iter=args.long_iter, root=args.root,
                  log=lambda s: print(s, file=sys.stderr, flush=True))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cmd = "python -m benchmarks.fennec_published" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                                        if (argv if argv is not None else sys.argv[1:]) else "")
    body = render_markdown(res, cmd)
    print(body)
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        write_markdown_section(args.write, "fennec-published", body)
        print(f"wrote section 'fennec-published' to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
