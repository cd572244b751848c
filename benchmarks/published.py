"""Published fine-tuning ground truth ("real zoos") as dense model x dataset matrices.

The tables live in ``../shared/data/groundtruth/`` (see its README for sources, licences and caveats); this
module only reads them. Every zoo becomes one :class:`PublishedZoo`:

- ``acc`` [n_models, n_datasets]: fine-tuned top-1 accuracy **in percent (0-100)**, NaN where the source has
  no number. All zoos use the same unit; no rescaling happens here.
- ``scores``: published transferability scores per metric, same shape, NaN where absent; higher = "predicted
  to transfer better" for every metric.
- ``model_meta``: per-model metadata arrays (``family`` and ``source`` as strings, ``params`` as float with NaN
  when unknown, plus zoo-specific columns).

Choices made when reading (each one a caveat of the README):

- ``transfergraph_image``/``_text`` scores: duplicated (model, dataset, metric) records are deduplicated
  keeping the **last** record; metric names ``LOG_ME``/``REG_H_SCORE`` become ``LogME``/``RegHScore``;
  score records for models without any accuracy are dropped.
- ``transfergraph_text``: only full fine-tune runs (``peft_method == "full"``; LoRA runs are ignored); when a
  (model, dataset) pair has several runs, the **max** is kept (the best run, the README's suggestion).
- ``model_recycling``: ``stsb`` is dropped (a regression task whose value is a correlation and can be
  negative); duplicated (model, dataset) rows (identical accuracies) keep the last; the per-model
  ``mnli_linear_probe`` proxy (0-1, the max over a model's rows, because duplicated rows carry 0.0) is
  broadcast to every dataset as a score.
- ``parc``: ``-1`` in the source means "not reported" and becomes NaN (the controlled-bank models also have no
  number on their own source dataset).
- ``tllib``: the NCE scores flagged as suspect (DTD, identical to LogME) become NaN.
- ``sfda_group1``/``sfda``: ETran's ``lda``/``energy`` scores (cifar100 only) are attached as
  ``ETran_lda``/``ETran_energy``.
- ``model_spider_66``: the ``multi_source_66`` zoo of ``model_spider.csv`` (``FTD_<arch>_<source>``); the
  ``single_source_10`` zoo is the same as ``tllib`` and is not repeated.
- ``emms_vit``: the image-classification part of ``emms.csv`` (the captioning part is BLEU, not accuracy).

Root folder: ``$ZOORANK_GROUNDTRUTH`` when set, else ``<repo>/../shared/data/groundtruth``. A missing folder
or file raises :class:`~zoorank.errors.InputError`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoorank.errors import InputError

__all__ = ["PublishedZoo", "available_zoos", "default_root", "load_zoo"]

ENV_VAR = "ZOORANK_GROUNDTRUTH"


@dataclass
class PublishedZoo:
    """One published zoo: accuracies in percent, metadata and published scores (module doc)."""

    name: str
    models: list[str]
    datasets: list[str]
    acc: np.ndarray  # [n_models, n_datasets], percent, NaN = missing
    model_meta: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.acc = np.asarray(self.acc, dtype=np.float64)
        shape = (len(self.models), len(self.datasets))
        if self.acc.shape != shape:
            raise InputError(f"zoo {self.name}: acc has shape {self.acc.shape}, expected {shape}")
        if len(set(self.models)) != len(self.models) or len(set(self.datasets)) != len(self.datasets):
            raise InputError(f"zoo {self.name}: model and dataset names must be unique")
        for key, s in self.scores.items():
            s = np.asarray(s, dtype=np.float64)
            if s.shape != shape:
                raise InputError(f"zoo {self.name}: score {key!r} has shape {s.shape}, expected {shape}")
            self.scores[key] = s
        for key, v in self.model_meta.items():
            v = np.asarray(v)
            if v.shape != (shape[0],):
                raise InputError(f"zoo {self.name}: model_meta[{key!r}] has shape {v.shape}, expected ({shape[0]},)")
            self.model_meta[key] = v

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_datasets(self) -> int:
        return len(self.datasets)

    def subset(self, models: Iterable[int] | None = None, datasets: Iterable[int] | None = None,
               name: str | None = None) -> PublishedZoo:
        """A copy restricted to the given model / dataset indices (all when ``None``)."""
        r = np.arange(self.n_models) if models is None else np.asarray(list(models), dtype=np.int64)
        c = np.arange(self.n_datasets) if datasets is None else np.asarray(list(datasets), dtype=np.int64)
        return PublishedZoo(
            name=name or self.name, models=[self.models[i] for i in r], datasets=[self.datasets[j] for j in c],
            acc=self.acc[np.ix_(r, c)].copy(), model_meta={k: v[r].copy() for k, v in self.model_meta.items()},
            scores={k: v[np.ix_(r, c)].copy() for k, v in self.scores.items()}, notes=list(self.notes))


# ----------------------------------------------------------------------------------------------- reading


def default_root() -> Path:
    """``$ZOORANK_GROUNDTRUTH`` when set, else ``<repo>/../shared/data/groundtruth`` (resolved)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "groundtruth").resolve()


def _root(root: Path | str | None) -> Path:
    r = default_root() if root is None else Path(root).expanduser()
    if not r.is_dir():
        raise InputError(f"ground-truth folder not found: {r} (set ${ENV_VAR} or pass root=)")
    return r


def _read(root: Path, fname: str) -> list[dict[str, str]]:
    path = root / fname
    if not path.is_file():
        raise InputError(f"ground-truth file missing: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _float(x: str | None) -> float:
    if x is None or x.strip() == "":
        return float("nan")
    try:
        return float(x)
    except ValueError as e:
        raise InputError(f"ground truth: not a number: {x!r}") from e


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _matrix(rows: list[dict[str, str]], models: list[str], datasets: list[str], value: str,
            *, agg: str = "last", model_key: str = "model", dataset_key: str = "dataset") -> np.ndarray:
    """[n_models, n_datasets] from long rows; duplicates resolved by ``agg`` ("last" or "max"); rows whose
    model or dataset is not listed are ignored."""
    mi = {m: i for i, m in enumerate(models)}
    di = {d: j for j, d in enumerate(datasets)}
    out = np.full((len(models), len(datasets)), np.nan)
    for r in rows:
        i, j = mi.get(r[model_key]), di.get(r[dataset_key])
        if i is None or j is None:
            continue
        v = _float(r[value])
        if agg == "max" and np.isfinite(out[i, j]):
            out[i, j] = max(out[i, j], v) if np.isfinite(v) else out[i, j]
        elif np.isfinite(v) or agg == "last":
            out[i, j] = v
    return out


def _scores(rows: list[dict[str, str]], models: list[str], datasets: list[str],
            rename: dict[str, str] | None = None, drop: Callable[[dict[str, str]], bool] | None = None
            ) -> dict[str, np.ndarray]:
    rename = rename or {}
    out: dict[str, np.ndarray] = {}
    for metric in _ordered(r["metric"] for r in rows):
        sub = [r for r in rows if r["metric"] == metric and not (drop and drop(r))]
        out[rename.get(metric, metric)] = _matrix(sub, models, datasets, "score", agg="last")
    return out


def family_from_name(name: str) -> str:
    """Architecture family from a torchvision/timm-style name: ``resnet50`` -> ``resnet``,
    ``mobilenet_v2`` -> ``mobilenet``, ``mnasnet1_0`` -> ``mnasnet``, ``pvtv2_b2`` -> ``pvtv2``."""
    head = name.lower().split("_")[0].split("-")[0]
    return re.sub(r"(?<!v)\d+$", "", head) or head


def _families(models: list[str]) -> np.ndarray:
    return np.array([family_from_name(m) for m in models])


def _nan_params(n: int) -> np.ndarray:
    return np.full(n, np.nan)


# ----------------------------------------------------------------------------------------------- loaders


def _tllib(root: Path) -> PublishedZoo:
    rows = _read(root, "tllib.csv")
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    srows = _read(root, "tllib_scores.csv")
    scores = _scores(srows, models, datasets, drop=lambda r: "suspect" in (r.get("note") or ""))
    meta = {"family": _families(models), "source": np.array(["imagenet"] * len(models)),
            "params": _nan_params(len(models))}
    return PublishedZoo("tllib", models, datasets, _matrix(rows, models, datasets, "accuracy"), meta, scores,
                        ["NCE on DTD flagged suspect in the source (identical to LogME): set to NaN"])


def _sfda(root: Path, group: str | None) -> PublishedZoo:
    rows = _read(root, "sfda.csv")
    if group is not None:
        rows = [r for r in rows if r["group"].startswith(group)]
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    grp = {r["model"]: r["group"] for r in rows}
    supervised = np.array([grp[m].startswith("group1") for m in models])
    # group2 models are all ResNet-50s with different self-supervised objectives
    family = np.where(supervised, _families(models), "resnet")
    meta = {"family": family, "group": np.array([grp[m] for m in models]),
            "pretraining": np.array([m if not s else "supervised" for m, s in zip(models, supervised, strict=True)]),
            "source": np.array(["imagenet"] * len(models)), "params": _nan_params(len(models))}
    scores: dict[str, np.ndarray] = {}
    if group in (None, "group1"):
        et = _scores(_read(root, "etran_scores.csv"), models, datasets)
        scores = {f"ETran_{k}": v for k, v in et.items()}
    name = "sfda" if group is None else f"sfda_{group}"
    return PublishedZoo(name, models, datasets, _matrix(rows, models, datasets, "accuracy"), meta, scores)


def _parc(root: Path) -> PublishedZoo:
    rows = _read(root, "parc.csv")
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    acc = _matrix(rows, models, datasets, "accuracy")
    acc[acc < 0] = np.nan  # -1 = not reported
    first = {r["model"]: r for r in reversed(rows)}
    meta = {"family": np.array([first[m]["architecture"] for m in models]),
            "source": np.array([first[m]["source_dataset"] for m in models]),
            "in_controlled_bank": np.array([first[m]["in_controlled_bank"] == "yes" for m in models]),
            "params": _nan_params(len(models))}
    return PublishedZoo("parc", models, datasets, acc, meta, {}, ["-1 (not reported) -> NaN"])


def _model_spider_66(root: Path) -> PublishedZoo:
    rows = [r for r in _read(root, "model_spider.csv") if r["zoo"] == "multi_source_66"]
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    arch, source = [], []
    for m in models:
        rest = m[4:] if m.startswith("FTD_") else m
        a, _, s = rest.rpartition("_")
        arch.append(a or rest)
        source.append(s)
    in42 = {r["model"]: r["in_42_model_zoo"] == "yes" for r in rows}
    meta = {"family": np.array(arch), "source": np.array(source),
            "in_42_model_zoo": np.array([in42[m] for m in models]), "params": _nan_params(len(models))}
    return PublishedZoo("model_spider_66", models, datasets, _matrix(rows, models, datasets, "accuracy"), meta)


def _emms_vit(root: Path) -> PublishedZoo:
    rows = [r for r in _read(root, "emms.csv") if r["task"] == "image_classification"]
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    meta = {"family": _families(models), "source": np.array(["imagenet"] * len(models)),
            "params": _nan_params(len(models))}
    return PublishedZoo("emms_vit", models, datasets, _matrix(rows, models, datasets, "accuracy"), meta)


_TG_RENAME = {"LOG_ME": "LogME", "REG_H_SCORE": "RegHScore"}


def _transfergraph(root: Path, kind: str) -> PublishedZoo:
    rows = _read(root, f"transfergraph_{kind}.csv")
    notes = ["score duplicates: last record kept"]
    agg = "last"
    if kind == "text":
        rows = [r for r in rows if r["peft_method"] == "full"]
        agg = "max"
        notes.append("full fine-tune runs only; max over repeated runs")
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    acc = _matrix(rows, models, datasets, "accuracy", agg=agg)
    srows = _read(root, f"transfergraph_{kind}_scores.csv")
    scores = _scores(srows, models, datasets, rename=_TG_RENAME)
    meta_rows = {r["model"]: r for r in _read(root, f"transfergraph_{kind}_model_meta.csv")}
    labels_key = "#labels" if kind == "image" else "number_of_labels"

    def col(key: str) -> list[str]:
        return [(meta_rows.get(m) or {}).get(key) or "" for m in models]

    meta = {"params": np.array([_float(v) for v in col("number_of_parameters")]),
            "family": np.array([v or "unknown" for v in col("model_type")]),
            "source": np.array([v or "unknown" for v in col("dataset")]),
            "n_labels": np.array([_float(v) for v in col(labels_key)]),
            "architecture": np.array([v.strip("[]'\" ") or "unknown" for v in col("architectures")])}
    return PublishedZoo(f"transfergraph_{kind}", models, datasets, acc, meta, scores, notes)


def _model_recycling(root: Path) -> PublishedZoo:
    rows = [r for r in _read(root, "model_recycling.csv") if r["dataset"] != "stsb"]
    models, datasets = _ordered(r["model"] for r in rows), _ordered(r["dataset"] for r in rows)
    acc = _matrix(rows, models, datasets, "accuracy", agg="last")
    probe: dict[str, float] = {}
    base: dict[str, str] = {}
    for r in rows:
        v = _float(r["mnli_linear_probe_score"])
        probe[r["model"]] = max(probe.get(r["model"], -np.inf), v)
        base[r["model"]] = r["base_model"]
    p = np.array([probe[m] for m in models])
    meta = {"family": np.array([base[m] for m in models]), "params": _nan_params(len(models)),
            "source": np.array(["unknown"] * len(models))}
    scores = {"mnli_linear_probe": np.repeat(p[:, None], len(datasets), axis=1)}
    return PublishedZoo("model_recycling", models, datasets, acc, meta, scores,
                        ["stsb (regression) dropped", "mnli_linear_probe: one per-model score for every dataset"])


_LOADERS: dict[str, Callable[[Path], PublishedZoo]] = {
    "tllib": _tllib,
    "sfda_group1": lambda r: _sfda(r, "group1"),
    "sfda_group2": lambda r: _sfda(r, "group2"),
    "sfda": lambda r: _sfda(r, None),
    "parc": _parc,
    "model_spider_66": _model_spider_66,
    "emms_vit": _emms_vit,
    "transfergraph_image": lambda r: _transfergraph(r, "image"),
    "transfergraph_text": lambda r: _transfergraph(r, "text"),
    "model_recycling": _model_recycling,
}


def available_zoos() -> list[str]:
    """Names accepted by :func:`load_zoo`."""
    return list(_LOADERS)


def load_zoo(name: str, root: Path | str | None = None) -> PublishedZoo:
    """Load one published zoo (module doc). ``root`` defaults to :func:`default_root`."""
    if name not in _LOADERS:
        raise InputError(f"unknown zoo {name!r}; available: {', '.join(available_zoos())}")
    return _LOADERS[name](_root(root))
