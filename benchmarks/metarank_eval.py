"""MetaRank's meta-dataset and its leave-one-out evaluation (MetaRank, arXiv 2511.21007).

**Meta-dataset.** For every historical task and every transferability metric, the metric's *quality* on the task
is the weighted Kendall tau (:func:`zoorank.ranking.weighted_tau`) between its scores over the zoo and the true
fine-tuned accuracies. Sources (each gives :class:`~zoorank.methods.metarank.MetaRecord` rows):

- a harness benchmark and its feature provider (:class:`BenchmarkMetaData`): the full targets, plus sub-tasks
  sampled from each training target — class subsets (half of the classes, relabelled) and few-shot probes
  (``k`` images per class). A sub-task's metric scores come from its own probe rows; its truth is the parent
  target's fine-tuned accuracies (no fine-tuning was run on the sub-task: the ranking of the zoo on a subset of
  a task's classes or images is taken to follow the whole task's). Sub-tasks carry their own generated dataset
  card (class count, image count, "few-shot") and a lower weight. Metric scores are cached in memory and on
  disk, content-addressed (features, labels, rows), so every leave-one-out fold reuses them;
- published tables (:func:`published_records`): TLlib's and TransferGraph's metric scores against the same
  sources' fine-tuned accuracies (``../shared/data/groundtruth``, read by :mod:`benchmarks.published`), with
  the packaged dataset cards of those datasets (``zoorank/methods/metarank/data/dataset_cards``); optional
  bootstrap re-samples of the zoo as extra training lists;
- an external CSV (:func:`read_external_csv`): ``dataset,description,metric,quality`` (optional ``group``,
  ``source``, ``weight``, ``metric_description``), so that published results can be used too.

**Evaluation** (:func:`leave_one_out`): for every evaluated dataset, MetaRank is trained on the records of every
*other* group (a group is a dataset with its sub-tasks and its spellings in other sources), ranks the metrics
measured on the held-out dataset from its card, and is scored by the weighted tau of its top-1 metric, against
(a) the metric best on average over the training datasets, (b) a random metric (the mean over the candidates)
and (c) the per-dataset oracle; plus NDCG@3 (relevance = quality min-max scaled within the dataset) and the
top-3 hit rate (the truly best metric among the first three).

Command (writes the ``metarank`` section of ``docs/BENCHMARKS.md``)::

    python -m benchmarks.metarank_eval --published --write docs/BENCHMARKS.md
    python -m benchmarks.metarank_eval --benchmark benchmarks/zoobench --write docs/BENCHMARKS.md
    python -m benchmarks.metarank_eval --published --train-out ~/.cache/zoorank/metarank/model.npz
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoorank import metrics as M
from zoorank import paths
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.evaluation.metarank_data import (
    BenchmarkMetaData,
    MetricUnavailable,
    SubTask,
    average_ranking,
    benchmark_records,
    subtasks,
    zoo_scores,
)
from zoorank.methods.metarank.cards import dataset_card_aliases, load_dataset_cards
from zoorank.methods.metarank.model import MetaRank, MetaRecord

__all__ = [
    "PUBLISHED_METRICS",
    "BenchmarkMetaData",
    "LooRow",
    "MetricUnavailable",
    "SubTask",
    "benchmark_records",
    "gather_records",
    "leave_one_out",
    "main",
    "markdown_section",
    "normalize_metric_name",
    "published_records",
    "published_stability",
    "read_external_csv",
    "stability_markdown",
    "subtasks",
    "summarize",
    "write_external_csv",
    "zoo_scores",
]

#: Published metric names -> zoorank metric names.
PUBLISHED_METRICS = {
    "hscore": "hscore", "h_score": "hscore", "h-score": "hscore", "leep": "leep", "logme": "logme",
    "log_me": "logme", "nce": "nce", "reghscore": "reg_hscore", "reg_h_score": "reg_hscore",
    "reg_hscore": "reg_hscore", "regularized_h_score": "reg_hscore", "nleep": "nleep", "n_leep": "nleep",
    "n-leep": "nleep", "transrate": "transrate", "gbc": "gbc", "sfda": "sfda", "parc": "parc", "etran": "etran",
    "ncti": "ncti", "ped": "ped", "pactran": "pactran", "fda": "fda", "lfc": "lfc", "energy": "energy",
}


def normalize_metric_name(name: str) -> str:
    """A zoorank metric name from a published spelling (``LogME``, ``LOG_ME``, ``RegHScore``, ``H-Score``, ...);
    unknown names are returned lower-cased (they need a metric description)."""
    key = str(name).strip().lower()
    return PUBLISHED_METRICS.get(key, PUBLISHED_METRICS.get(key.replace(" ", "_"), key))





# --------------------------------------------------------------------------------------------- published data


def published_records(sources: Sequence[str] = ("tllib", "transfergraph_image"), root: str | Path | None = None, *,
                      min_models: int = 5, resamples: int = 0, resample_fraction: float = 0.7,
                      resample_weight: float = 0.25, seed: int = 0) -> list[MetaRecord]:
    """Records from published tables: for each zoo in ``sources`` (names of
    :func:`benchmarks.published.load_zoo`), each dataset with a packaged card and each published metric with
    a zoorank name, the weighted tau between the metric's scores and the fine-tuned accuracies over the models
    having both (at least ``min_models``). ``dataset`` is ``<zoo>:<dataset>``, ``group`` the card's canonical
    name (so one dataset in two zoos is held out together). ``resamples`` > 0 adds that many bootstrap
    sub-zoos per dataset (``resample_fraction`` of the models, weight ``resample_weight``) as extra training
    lists (evaluation never uses them)."""
    from benchmarks.published import load_zoo

    cards = load_dataset_cards()
    alias = dataset_card_aliases(cards)
    out: list[MetaRecord] = []
    for src in sources:
        zoo = load_zoo(src, root)
        rng = np.random.default_rng([seed, zlib.crc32(src.encode())])
        for j, d in enumerate(zoo.datasets):
            name = alias.get(d.lower())
            if name is None:
                continue
            text = cards[name].to_text()
            acc = zoo.acc[:, j]
            subsets: list[tuple[str, np.ndarray | None, float]] = [("", None, 1.0)]
            n_ok = int(np.isfinite(acc).sum())
            for r in range(resamples):
                k = max(min_models, round(resample_fraction * n_ok))
                pick = np.sort(rng.choice(np.flatnonzero(np.isfinite(acc)), size=min(k, n_ok), replace=False))
                subsets.append((f"#r{r}", pick, resample_weight))
            for suffix, pick, w in subsets:
                for raw_metric, S in zoo.scores.items():
                    metric = normalize_metric_name(raw_metric)

                    if metric not in M.available():
                        continue
                    s = S[:, j]
                    ok = np.isfinite(s) & np.isfinite(acc)
                    if pick is not None:
                        mask = np.zeros_like(ok)
                        mask[pick] = True
                        ok &= mask
                    if ok.sum() < min_models:
                        continue
                    q = R.weighted_tau(s[ok], acc[ok])
                    out.append(MetaRecord(f"{src}:{d}{suffix}", text, metric, q, group=name,
                                          source=src if not suffix else f"{src}:resample", weight=w))
    if not out:
        raise InputError(f"no published metric scores found for {', '.join(sources)}")
    return out


def published_stability(sources: Sequence[str] = ("tllib", "transfergraph_image"), root: str | Path | None = None,
                        *, draws: int = 500, fraction: float = 0.8, min_models: int = 5, seed: int = 0
                        ) -> list[dict]:
    """How identifiable the best metric of each published dataset is: over ``draws`` random sub-zoos of
    ``fraction`` of the models (without replacement), the share in which the full zoo's best metric stays the
    best (``p_best_stays``), and the mean and standard deviation of (best - runner-up) weighted tau
    (``gap``, ``gap_sd``). A share near 1/#metrics means the per-dataset "best metric" is mostly noise of the zoo
    sample, so no selector (MetaRank or other) can learn it from a few dozen datasets."""
    from benchmarks.published import load_zoo


    alias = dataset_card_aliases()
    out = []
    for src in sources:
        zoo = load_zoo(src, root)
        rng = np.random.default_rng([seed, zlib.crc32(src.encode())])
        for j, d in enumerate(zoo.datasets):
            if d.lower() not in alias:
                continue
            acc = zoo.acc[:, j]
            cols = {normalize_metric_name(k): v[:, j] for k, v in zoo.scores.items()
                    if normalize_metric_name(k) in M.available()}
            ok = np.isfinite(acc)
            for v in cols.values():
                ok &= np.isfinite(v) | ~np.isfinite(v).any()
            cols = {k: v for k, v in cols.items() if np.isfinite(v[ok]).all() and ok.sum() >= min_models}
            if len(cols) < 2:
                continue
            idx = np.flatnonzero(ok)
            names = sorted(cols)
            full = np.array([R.weighted_tau(cols[m][idx], acc[idx]) for m in names])
            best = int(np.argmax(full))
            k = max(min_models, round(fraction * idx.size))
            stays, gaps = 0, []
            for _ in range(draws):
                sub = rng.choice(idx, size=k, replace=False)
                q = np.array([R.weighted_tau(cols[m][sub], acc[sub]) for m in names])
                stays += int(np.argmax(q) == best)
                srt = np.sort(q)
                gaps.append(srt[-1] - srt[-2])
            srt = np.sort(full)
            out.append({"dataset": f"{src}:{d}", "n_models": int(idx.size), "metrics": names,
                        "best": names[best], "full_gap": float(srt[-1] - srt[-2]),
                        "p_best_stays": stays / draws, "gap": float(np.mean(gaps)), "gap_sd": float(np.std(gaps))})
    return out


# ------------------------------------------------------------------------------------------------ external CSV

EXTERNAL_COLUMNS = ("dataset", "description", "metric", "quality")


def read_external_csv(path: str | Path) -> tuple[list[MetaRecord], dict[str, str]]:
    """Read an external meta-dataset: columns ``dataset,description,metric,quality`` (quality = weighted tau in
    [-1, 1]; the description may be given once per dataset), optional ``group``, ``source``, ``weight`` and
    ``metric_description`` (the text of a metric without a packaged card). Metric names are normalised
    (:func:`normalize_metric_name`). Returns (records, metric descriptions)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"external meta-dataset: file {p} not found")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in EXTERNAL_COLUMNS if c not in header]
            if missing:
                raise InputError(f"{p.name}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            rows = []
            for i, raw in enumerate(reader, start=2):
                if None in raw:
                    raise InputError(f"{p.name} line {i}: more fields than columns")
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
                if any(row.values()):
                    rows.append((i, row))
    except UnicodeDecodeError as exc:
        raise InputError(f"{p.name}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{p.name}: malformed CSV ({exc})") from None
    if not rows:
        raise InputError(f"{p.name}: no rows")
    desc: dict[str, str] = {}
    for i, row in rows:
        if not row["dataset"]:
            raise InputError(f"{p.name} line {i}: empty dataset name")
        d = row["description"]
        if d:
            if desc.setdefault(row["dataset"], d) != d:
                raise InputError(f"{p.name} line {i}: dataset {row['dataset']!r} has two different descriptions")
    texts: dict[str, str] = {}
    out = []
    for i, row in rows:
        where = f"{p.name} line {i}"
        if row["dataset"] not in desc:
            raise InputError(f"{where}: dataset {row['dataset']!r} has no description on any row")
        if not row["metric"]:
            raise InputError(f"{where}: empty metric name")
        try:
            q = float(row["quality"])
        except ValueError:
            raise InputError(f"{where}: quality {row['quality']!r} is not a number") from None
        if not math.isfinite(q) or not -1.0 <= q <= 1.0:
            raise InputError(f"{where}: quality {row['quality']!r} must be a weighted tau in [-1, 1]")
        w = 1.0
        if row.get("weight"):
            try:
                w = float(row["weight"])
            except ValueError:
                raise InputError(f"{where}: weight {row['weight']!r} is not a number") from None
        metric = normalize_metric_name(row["metric"])
        if row.get("metric_description"):
            texts[metric] = row["metric_description"]
        try:
            out.append(MetaRecord(row["dataset"], desc[row["dataset"]], metric, q, group=row.get("group", ""),
                                  source=row.get("source", "") or "external", weight=w))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return out, texts


def write_external_csv(records: Iterable[MetaRecord], path: str | Path) -> Path:
    """Write records in the external CSV format of :func:`read_external_csv`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*EXTERNAL_COLUMNS, "group", "source", "weight"])
        for r in records:
            w.writerow([r.dataset, r.description, r.metric, repr(r.quality), r.group, r.source, repr(r.weight)])
    return p


# ---------------------------------------------------------------------------------------------- leave-one-out


@dataclass
class LooRow:
    """The figures of one held-out dataset (module doc)."""

    dataset: str
    group: str
    source: str
    candidates: list[str]
    ranking: list[str]
    pick: str
    pick_tau: float
    average_best: str
    average_best_tau: float
    random_tau: float
    oracle: str
    oracle_tau: float
    ndcg3: float
    top3_hit: float
    average_best_ndcg3: float
    average_best_top3_hit: float
    nearest_pick: str = ""
    nearest_tau: float = float("nan")
    reason: str = ""
    qualities: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _ndcg3(pred: np.ndarray, q: np.ndarray) -> float:
    span = float(q.max() - q.min())
    if span <= 0:
        return 1.0
    return R.ndcg_at_k(pred, (q - q.min()) / span, 3)


def _top3(pred: np.ndarray, q: np.ndarray) -> float:
    best = set(np.flatnonzero(q == q.max()))
    return float(bool(best & set(np.argsort(-pred, kind="stable")[:3])))


def leave_one_out(records: Sequence[MetaRecord], make_model: Callable[[], MetaRank], *,
                  evaluate: Callable[[MetaRecord], bool] | None = None,
                  progress: Callable[[str], None] | None = None) -> list[LooRow]:
    """Leave-one-group-out evaluation (module doc). ``evaluate(record)`` says which datasets are evaluated and
    count as targets for the average-best baseline (default: records whose source is not a sub-task or
    re-sample). A model is trained once per held-out group, on the records of the other groups."""
    recs = list(records)
    is_target = evaluate or (lambda r: not r.source.endswith((":subtask", ":resample")))
    by_ds: dict[str, list[MetaRecord]] = {}
    for r in recs:
        by_ds.setdefault(r.dataset, []).append(r)
    targets = [d for d, rs in by_ds.items() if is_target(rs[0])]
    groups: dict[str, list[str]] = {}
    for d in targets:
        groups.setdefault(by_ds[d][0].key, []).append(d)
    rows: list[LooRow] = []
    for g, datasets in groups.items():
        train = [r for r in recs if r.key != g]
        train_metrics = {r.metric for r in train}
        todo = []
        for d in datasets:
            q = {r.metric: r.quality for r in by_ds[d] if r.metric in train_metrics}
            if len(q) >= 2:
                todo.append((d, q))
        if not todo:
            continue
        if progress is not None:
            progress(g)
        model = make_model().fit(train)
        for d, q in todo:
            cands = sorted(q)
            qa = np.array([q[c] for c in cands])
            ranking = model.rank_metrics(by_ds[d][0].description, cands)
            pred = np.array([dict((r.metric, r.score) for r in ranking.metrics)[c] for c in cands])
            avg = average_ranking(train, cands, is_target)
            ia, io = int(np.argmax(avg)), int(np.argmax(qa))
            # the text-only nearest-neighbour selector: the best metric of the most similar training dataset
            near = ranking.neighbours[0].best_metric if ranking.neighbours else ranking.top
            rows.append(LooRow(
                dataset=d, group=g, source=by_ds[d][0].source, candidates=cands, ranking=ranking.names(),
                pick=ranking.top, pick_tau=q[ranking.top], average_best=cands[ia], average_best_tau=float(qa[ia]),
                random_tau=float(qa.mean()), oracle=cands[io], oracle_tau=float(qa[io]), ndcg3=_ndcg3(pred, qa),
                top3_hit=_top3(pred, qa), average_best_ndcg3=_ndcg3(avg, qa), average_best_top3_hit=_top3(avg, qa),
                nearest_pick=near, nearest_tau=q[near], reason=ranking.reason, qualities=q))
    return rows


def summarize(rows: Sequence[LooRow], tie: float = 1e-9) -> dict:
    """Means over the held-out datasets, the share of the average-best -> oracle gap that MetaRank closes, and
    wins / ties / losses of MetaRank's pick against the average-best metric."""
    if not rows:
        raise InputError("metarank summary: no evaluated datasets")
    m = {k: float(np.mean([getattr(r, k) for r in rows])) for k in
         ("pick_tau", "average_best_tau", "random_tau", "oracle_tau", "ndcg3", "top3_hit", "average_best_ndcg3",
          "average_best_top3_hit", "nearest_tau")}
    gap = m["oracle_tau"] - m["average_best_tau"]
    m["gap_closed"] = (m["pick_tau"] - m["average_best_tau"]) / gap if gap > 1e-12 else float("nan")
    d = np.array([r.pick_tau - r.average_best_tau for r in rows])
    m["wins"], m["ties"], m["losses"] = int((d > tie).sum()), int((np.abs(d) <= tie).sum()), int((d < -tie).sum())
    m["n"] = len(rows)
    m["mean_candidates"] = float(np.mean([len(r.candidates) for r in rows]))
    m["pick_is_average_best"] = float(np.mean([r.pick == r.average_best for r in rows]))
    return m


def _f(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def stability_markdown(rows: Sequence[dict]) -> str:
    """A table of :func:`published_stability`: how often each dataset's best metric survives a sub-zoo."""
    lines = ["### Is the best metric of a published dataset identifiable?", "",
             "Share of random sub-zoos (80 % of the models, 500 draws) in which the full zoo's best metric stays the "
             "best, and the mean (best − runner-up) weighted tau (`python -c 'from benchmarks.metarank_eval import "
             "published_stability'`).", "",
             "| dataset | models | metrics | best | best − runner-up | stays best | chance |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['n_models']} | {len(r['metrics'])} | {r['best']} | {r['full_gap']:.3f} | "
                     f"{r['p_best_stays']:.2f} | {1 / len(r['metrics']):.2f} |")
    return "\n".join(lines) + "\n"


def markdown_section(results: dict[str, dict[str, list[LooRow]]], *, command: str, notes: Sequence[str] = (),
                     extra: str = "") -> str:
    """The ``metarank`` section of ``docs/BENCHMARKS.md``: for every setting (a meta-dataset), a summary row per
    MetaRank variant, then the per-dataset table of the main variant (the first)."""
    lines = ["## MetaRank: which metric to trust (leave-one-dataset-out)", "",
             f"Command: `{command}`  ", f"Measured {_dt.date.today().isoformat()}.", "",
             "Each held-out dataset (with every sub-task and every other spelling of it) is left out of training; "
             "MetaRank ranks the metrics measured on it from its dataset card. Figures: weighted tau (against the "
             "fine-tuned accuracies) of MetaRank's top-1 metric, of the metric best on average over the training "
             "datasets, of a random candidate (mean over the candidates) and of the per-dataset oracle; gap closed "
             "= (pick − average-best) / (oracle − average-best) on the means; NDCG@3 with relevance = quality "
             "min-max scaled within the dataset; top-3 hit = the truly best metric is among the first three "
             "(trivially 1 with three candidates or fewer); nearest-dataset pick = the best metric of the training "
             "dataset whose card is closest (a text-only selector without learning).", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    for setting, variants in results.items():
        lines += [f"### {setting}", "",
                  "| variant | datasets | candidates | MetaRank top-1 | average-best | random | oracle | gap closed "
                  "| W/T/L vs avg-best | NDCG@3 (avg-best) | top-3 hit (avg-best) | nearest-dataset pick |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, rows in variants.items():
            if not rows:
                continue
            s = summarize(rows)
            lines.append(f"| {name} | {s['n']} | {s['mean_candidates']:.1f} | {_f(s['pick_tau'])} | "
                         f"{_f(s['average_best_tau'])} | {_f(s['random_tau'])} | {_f(s['oracle_tau'])} | "
                         f"{_f(100 * s['gap_closed'], 0)} % | {s['wins']}/{s['ties']}/{s['losses']} | "
                         f"{_f(s['ndcg3'])} ({_f(s['average_best_ndcg3'])}) | {_f(s['top3_hit'], 2)} "
                         f"({_f(s['average_best_top3_hit'], 2)}) | {_f(s['nearest_tau'])} |")
        main_name, main_rows = next(iter(variants.items()))
        if main_rows:
            lines += ["", f"Per dataset ({main_name}):", "",
                      "| dataset | candidates | MetaRank pick (tau) | average-best (tau) | oracle (tau) | random | "
                      "NDCG@3 | nearest training datasets |",
                      "| --- | ---: | --- | --- | --- | ---: | ---: | --- |"]
            for r in main_rows:
                near = r.reason.split("nearest historical datasets: ", 1)[-1] if "nearest" in r.reason else ""
                near = "; ".join(x.split(" (")[0] for x in near.split("; ")[:3])
                lines.append(f"| {r.dataset} | {len(r.candidates)} | {r.pick} ({_f(r.pick_tau)}) | "
                             f"{r.average_best} ({_f(r.average_best_tau)}) | {r.oracle} ({_f(r.oracle_tau)}) | "
                             f"{_f(r.random_tau)} | {_f(r.ndcg3)} | {near} |")
        lines.append("")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- command

VARIANTS: dict[str, dict[str, Any]] = {
    "listnet (text)": {"loss": "listnet"},
    "approxndcg (text)": {"loss": "approxndcg"},
    "pairwise (text)": {"loss": "pairwise"},
    "mse (text)": {"loss": "mse"},
    "listnet (meta-features)": {"loss": "listnet", "features": "meta"},
}


def _evaluate(records: list[MetaRecord], encoder: Any, metric_texts: dict[str, str], variants: Sequence[str],
              seed: int, log: Callable[[str], None]) -> dict[str, list[LooRow]]:
    out = {}
    for v in variants:
        kw = VARIANTS[v]
        t0 = time.perf_counter()
        out[v] = leave_one_out(records, lambda kw=kw: MetaRank(encoder=encoder, metric_texts=metric_texts,
                                                                seed=seed, **kw))
        if out[v]:
            s = summarize(out[v])
            log(f"  {v}: pick {s['pick_tau']:.3f} avg-best {s['average_best_tau']:.3f} random {s['random_tau']:.3f} "
                f"oracle {s['oracle_tau']:.3f} gap closed {100 * s['gap_closed']:.0f} % NDCG@3 {s['ndcg3']:.3f} "
                f"top-3 {s['top3_hit']:.2f} ({time.perf_counter() - t0:.1f} s)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.metarank_eval`` (module doc)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.metarank_eval",
                                 description="MetaRank leave-one-dataset-out evaluation and training.")
    ap.add_argument("--published", action="store_true",
                    help="use the published tables (TLlib, TransferGraph image); default when no other source")
    ap.add_argument("--sources", default="tllib,transfergraph_image", help="published zoos (comma-separated)")
    ap.add_argument("--groundtruth", default=None, help="folder of the published tables (default: shared/)")
    ap.add_argument("--benchmark", default=None, help="a harness benchmark folder (e.g. benchmarks/zoobench)")
    ap.add_argument("--csv", dest="csv_path", default=None, help="an external CSV (dataset,description,metric,quality)")
    ap.add_argument("--encoder", default="all-MiniLM-L6-v2", help="sentence encoder (or hashing:DIM)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--resamples", type=int, default=0, help="bootstrap sub-zoos per published dataset (training)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", default=None, help="write the 'metarank' section of this Markdown file")
    ap.add_argument("--json", dest="json_path", default=None, help="write every per-dataset row as JSON")
    ap.add_argument("--train-out", default=None, nargs="?", const=str(paths.metarank_model_path()),
                    help="also train on every record and save the model (default path: the recommend command's)")
    ap.add_argument("--no-eval", action="store_true", help="only train (with --train-out)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    use_published = args.published or not (args.benchmark or args.csv_path)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    settings, all_records, texts = gather_records(
        sources=sources if use_published else (), groundtruth=args.groundtruth, benchmark=args.benchmark,
        csv_path=args.csv_path, resamples=args.resamples, seed=args.seed, log=log)
    results: dict[str, dict[str, list[LooRow]]] = {}
    if not args.no_eval:
        for name, recs in settings.items():
            log(f"{name}: {len({r.dataset for r in recs})} datasets, {len(recs)} records")
            results[name] = _evaluate(recs, args.encoder, texts, variants, args.seed, log)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({k: {v: [r.to_dict() for r in rows] for v, rows in d.items()}
                                                    for k, d in results.items()}, indent=1) + "\n")
    if args.write and results:
        from zoorank.evaluation.tables import write_markdown_section

        cmd = "python -m benchmarks.metarank_eval" + (" --published" if use_published else "") + \
              (f" --benchmark {args.benchmark}" if args.benchmark else "") + \
              (f" --csv {args.csv_path}" if args.csv_path else "") + \
              (f" --encoder {args.encoder}" if args.encoder != "all-MiniLM-L6-v2" else "") + \
              (f" --resamples {args.resamples}" if args.resamples else "") + f" --write {args.write}"
        notes = [f"Encoder: {args.encoder}; MetaRank defaults ({_defaults()}); seed {args.seed}."]
        extra = stability_markdown(published_stability(sources, args.groundtruth)) if use_published else ""
        write_markdown_section(Path(args.write), "metarank",
                               markdown_section(results, command=cmd, notes=notes, extra=extra))
        log(f"wrote {args.write}")
    if args.train_out:
        model = MetaRank(encoder=args.encoder, metric_texts=texts, seed=args.seed).fit(all_records)
        path = model.save(args.train_out)
        log(f"trained on {len(model.datasets)} datasets x {len(model.metrics)} metrics; saved {path}")
    return 0


def gather_records(*, sources: Sequence[str] = (), groundtruth: str | Path | None = None,
                   benchmark: str | Path | None = None, csv_path: str | Path | None = None, resamples: int = 0,
                   seed: int = 0, log: Callable[[str], None] = lambda _msg: None
                   ) -> tuple[dict[str, list[MetaRecord]], list[MetaRecord], dict[str, str]]:
    """The meta-dataset from every source asked for: the published tables of ``sources``, an external CSV, a
    harness benchmark (with its sub-tasks). Returns ``(settings, every record, metric texts)``, ``settings``
    naming each evaluation setting (every source together, each published zoo alone, ...) with its records."""
    settings: dict[str, list[MetaRecord]] = {}
    texts: dict[str, str] = {}
    all_records: list[MetaRecord] = []
    if sources:
        recs = published_records(sources, groundtruth, resamples=resamples, seed=seed)
        all_records += recs
        settings[f"Published tables: {' + '.join(sources)} (trained on both, evaluated on each dataset)"] = recs
        for s in sources:
            sub = [r for r in recs if r.source.split(":")[0] == s]
            if len(sources) > 1 and sub:
                settings[f"Published tables: {s} alone"] = sub
    if csv_path:
        recs, t = read_external_csv(csv_path)
        texts.update(t)
        all_records += recs
        settings[f"External CSV {Path(csv_path).name}"] = recs
    if benchmark:
        from zoorank.datasets.zoobench.provider import ZooBenchProvider
        from zoorank.evaluation import load_benchmark

        bench = load_benchmark(benchmark)
        provider = ZooBenchProvider(benchmark)
        recs = benchmark_records(bench, provider, meta=BenchmarkMetaData(source="zoobench"),
                                 progress=lambda t: log(f"meta-data of {t}"))
        all_records += recs
        settings[f"Benchmark {bench.root.name if bench.root else ''} (leave-one-target-out, with sub-tasks)"] = recs
    return settings, all_records, texts


def _defaults() -> str:
    m = MetaRank(encoder="hashing")
    return ", ".join(f"{k} {getattr(m, k)}" for k in ("loss", "tau", "hidden", "epochs", "lr", "weight_decay",
                                                        "n_ensemble"))


def with_weight(records: Iterable[MetaRecord], weight: float) -> list[MetaRecord]:
    """The records with another loss weight (e.g. to down-weight an external source)."""
    return [replace(r, weight=weight) for r in records]


if __name__ == "__main__":
    sys.exit(main())
