"""The learning loop: fit the pipeline's rankers from the knowledge base, and record what a ranking measured.

What the knowledge base must hold for each ranker (each is fitted only when its data suffice; the reason is kept
in :attr:`Rankers.skipped` otherwise):

- **Fennec** (:meth:`~zoorank.methods.Fennec.fit_from_kb`): a models x tasks matrix — the recorded fine-tuned
  accuracies (``finetune_acc``) or the FDA scores (``metric:fda``), whichever has more observed entries, the
  truth on a tie: the paper fills its matrix with FDA only as a cheap substitute for true results (its appendix
  C), so the results a user records must not be ignored when they are there — each task's proxy vector (task meta
  ``proxy``), ``n_classes`` and ``n_samples``, each model's parameter count.
- **Model Spider**: one training task per historical task with a task token (task meta ``spider_token``: the class
  centres of the general encoder, equation 5), supervised by the recorded ``finetune_acc`` where every model has
  one, else by the Copeland aggregation of the recorded ``metric:nce``, ``metric:leep``, ``metric:logme`` and
  ``metric:hscore`` scores (appendix A.4). At least 2 such tasks. As the paper samples its training tasks from
  mixtures of class subsets of 2–4 historical tasks (appendix B.1), ``mixtures`` more tasks are drawn from the
  stored class centres of the truth-supervised tasks, each supervised by the class-weighted mean accuracy of its
  sources (:func:`zoorank.methods.spider.token_mixtures`; the knowledge base keeps no images, so metrics cannot
  be recomputed on a mixture and metric-supervised tasks are not mixed).
- **MetaRank**: for every task with a description (the task's ``description``) and ``finetune_acc`` of at least 3
  models, the weighted tau of each recorded metric against those accuracies (the meta-dataset of MetaRank).

:func:`record_ranking` writes into the knowledge base what ``zoorank rank`` measured on a new task (its proxy
vector, task token, description, counts and the metric scores of the models that ran), so that once the user
records a fine-tuned accuracy (``zoorank kb record MODEL TASK --kind finetune_acc --value V``), the next
``zoorank fit`` learns from the task.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file

__all__ = ["PROXY_KEY", "SPIDER_METRICS", "TOKEN_KEY", "Rankers", "fennec_kinds", "fit_rankers",
           "metarank_records", "record_ranking", "record_task", "spider_tasks"]

#: The metrics whose Copeland aggregation supervises Model Spider (appendix A.4).
SPIDER_METRICS = ("nce", "leep", "logme", "hscore")
#: Task meta-features the rankers are fitted from: Fennec's proxy vector, Spider's task token.
PROXY_KEY, TOKEN_KEY = "proxy", "spider_token"
MANIFEST = "rankers.json"


@dataclass
class Rankers:
    """The fitted rankers of one zoo (``models``, in the rankers' order), any of which may be None."""

    models: list[str]
    fennec: Any = None
    spider: Any = None
    metarank: Any = None
    skipped: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """Write ``rankers.json`` and one file per fitted ranker into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, target in (("fennec", "fennec.npz"), ("spider", "spider"), ("metarank", "metarank.npz")):
            obj = getattr(self, name)
            if obj is not None:
                path = obj.save(d / target)
                files[name] = Path(path).name
        manifest = {"zoorank_rankers": 1, "models": self.models, "files": files, "skipped": self.skipped,
                    "info": self.info}
        (d / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Rankers:
        from zoorank.methods.fennec.model import Fennec
        from zoorank.methods.metarank import MetaRank
        from zoorank.methods.spider import ModelSpider

        d = Path(directory)
        path = d / MANIFEST
        manifest = read_json_file(path, missing=f"{d} holds no fitted rankers ({MANIFEST} is missing): run "
                                                f"`zoorank fit` first")
        if not isinstance(manifest, dict) or manifest.get("zoorank_rankers") != 1:
            raise InputError(f"{path}: not a zoorank rankers manifest")
        loaders = {"fennec": Fennec.load, "spider": ModelSpider.load, "metarank": MetaRank.load}
        files = manifest.get("files", {})
        if not isinstance(manifest.get("models"), list) or not isinstance(files, dict) or set(files) - set(loaders):
            raise InputError(f"{path}: the manifest lacks its model list or names unknown rankers")
        parts = {}
        for name, f in files.items():
            if not (d / f).exists():
                raise InputError(f"{d / f} is missing (named by {path}): run `zoorank fit` again")
            parts[name] = loaders[name](d / f)
        return cls(list(manifest["models"]), parts.get("fennec"), parts.get("spider"), parts.get("metarank"),
                   dict(manifest.get("skipped", {})), dict(manifest.get("info", {})))


def spider_tasks(kb: Any, models: list[str], *, with_counts: bool = False) -> list | tuple[list, int]:
    """Model Spider's training tasks from the knowledge base (module doc): the truth-supervised tasks first, then
    the metric-supervised ones; ``with_counts`` also returns the number of truth-supervised tasks."""
    from zoorank.methods.spider import TrainingTask, copeland_supervision

    by_truth, by_metrics = [], []
    kinds = set(kb.kinds())
    metric_mats = {m: kb.matrix(f"metric:{m}", models=models) for m in SPIDER_METRICS if f"metric:{m}" in kinds}
    truth = kb.matrix("finetune_acc", models=models) if "finetune_acc" in kinds else None
    for t in kb.tasks():
        token = t.meta.get(TOKEN_KEY)
        if token is None:
            continue
        sup = None
        if truth is not None and t.name in truth.tasks:
            col = truth.values[:, truth.tasks.index(t.name)]
            if np.isfinite(col).all():
                sup = col
        sup_is_truth = sup is not None
        if sup is None:  # only metrics measured on every model: a partial column (the top K of a ranking)
            cols = [c for c in (mat.values[:, mat.tasks.index(t.name)] for mat in metric_mats.values()
                                if t.name in mat.tasks) if np.isfinite(c).all()]
            if not cols:
                continue
            try:
                sup = copeland_supervision(np.stack(cols, axis=1))
            except InputError:
                continue
        task = TrainingTask(t.name, np.asarray(token, dtype=np.float64), np.asarray(sup, dtype=np.float64))
        (by_truth if sup_is_truth else by_metrics).append(task)
    return (by_truth + by_metrics, len(by_truth)) if with_counts else by_truth + by_metrics


def metarank_records(kb: Any, models: list[str] | None = None, *, min_models: int = 3) -> list:
    """MetaRank's meta-dataset from the knowledge base: weighted tau of every recorded metric against the
    recorded fine-tuned accuracies, per task with a description (module doc)."""
    from zoorank.methods.metarank import MetaRecord

    kinds = kb.kinds()
    if "finetune_acc" not in kinds:
        return []
    truth = kb.matrix("finetune_acc", models=models)
    out = []
    tasks = {t.name: t for t in kb.tasks()}
    for kind in kinds:
        if not kind.startswith("metric:"):
            continue
        mat = kb.matrix(kind, models=models)
        for j, task in enumerate(truth.tasks):
            desc = tasks[task].description
            if not desc or task not in mat.tasks:
                continue
            acc = truth.values[:, j]
            s = mat.values[:, mat.tasks.index(task)]
            ok = np.isfinite(acc) & np.isfinite(s)
            if ok.sum() < min_models:
                continue
            out.append(MetaRecord(task, str(desc), kind.split(":", 1)[1], float(R.weighted_tau(s[ok], acc[ok])),
                                  source="kb"))
    return out


def fennec_kinds(kb: Any) -> list[str]:
    """The matrices Fennec may be fitted from, in the order tried (module doc): ``finetune_acc`` and
    ``metric:fda`` by decreasing number of observed entries on the tasks Fennec can use (a proxy vector and
    both counts recorded), the truth first on a tie."""
    kinds = set(kb.kinds())
    usable = {t.name for t in kb.tasks()
              if t.meta.get(PROXY_KEY) is not None and t.n_classes is not None and t.n_samples is not None}
    observed = {}
    for k in ("finetune_acc", "metric:fda"):
        if k in kinds:
            mat = kb.matrix(k)
            cols = [j for j, t in enumerate(mat.tasks) if t in usable]
            observed[k] = int(np.isfinite(np.asarray(mat.values)[:, cols]).sum())
    return sorted(observed, key=lambda k: (-observed[k], k != "finetune_acc"))


def fit_rankers(kb: Any, *, fennec: dict | None = None, spider: dict | None = None,
                metarank: dict | None = None, mixtures: int = 256, progress: Any = None) -> Rankers:
    """Fit Fennec, Model Spider and MetaRank from the knowledge base (module doc); ``fennec`` / ``spider`` /
    ``metarank``: keyword arguments of each ranker; ``mixtures``: Spider's extra training tasks mixed from the
    truth-supervised tasks' class centres. The zoo is every model of the knowledge base."""
    from zoorank.methods.fennec.model import Fennec
    from zoorank.methods.metarank import MetaRank
    from zoorank.methods.spider import ModelSpider, token_mixtures

    say = progress or (lambda _msg: None)
    models = sorted(m.name for m in kb.models())
    if len(models) < 2:
        raise InputError(f"the knowledge base has {len(models)} model(s); record results of at least 2 first")
    out = Rankers(models, info={"fitted_at": time.strftime("%Y-%m-%d %H:%M:%S"), "n_tasks": len(kb.tasks())})
    say("Fennec")
    problems = []
    for kind in fennec_kinds(kb):
        try:
            t0 = time.perf_counter()
            f = Fennec(**(fennec or {})).fit_from_kb(kb, kind=kind)
            if list(f.models) != models:
                raise InputError(f"fennec: the {kind!r} matrix covers {len(f.models)} of the {len(models)} models")
        except InputError as exc:
            problems.append(str(exc))
            continue
        out.fennec = f
        out.info["fennec"] = {"kind": kind, "tasks": len(f.tasks), "seconds": time.perf_counter() - t0}
        break
    if out.fennec is None:
        out.skipped["fennec"] = "; ".join(problems) or "no metric:fda or finetune_acc results"
    say("Model Spider")
    tasks, n_truth = spider_tasks(kb, models, with_counts=True)
    if len(tasks) < 2:
        out.skipped["spider"] = (f"{len(tasks)} task(s) with a task token and a supervision; at least 2 are "
                                 f"needed (rank tasks with zoorank rank --kb, then record results)")
    else:
        try:
            t0 = time.perf_counter()
            mixed = token_mixtures(tasks[:n_truth], mixtures) if n_truth >= 2 else []
            out.spider = ModelSpider(models, **(spider or {})).fit(tasks + mixed)
            out.info["spider"] = {"tasks": len(tasks), "mixtures": len(mixed), "seconds": time.perf_counter() - t0}
        except InputError as exc:
            out.skipped["spider"] = str(exc)
    say("MetaRank")
    records = metarank_records(kb, models)
    n_data, n_metrics = len({r.dataset for r in records}), len({r.metric for r in records})
    if n_data < 2 or n_metrics < 2:
        out.skipped["metarank"] = (f"{n_data} described task(s) with fine-tuned accuracies and {n_metrics} "
                                   f"metric(s) recorded on them; at least 2 of each are needed")
    else:
        try:
            t0 = time.perf_counter()
            out.metarank = MetaRank(**(metarank or {})).fit(records)
            out.info["metarank"] = {"datasets": n_data, "metrics": n_metrics, "seconds": time.perf_counter() - t0}
        except InputError as exc:
            out.skipped["metarank"] = str(exc)
    return out


def record_task(kb: Any, task: str, *, n_classes: int | None, n_samples: int, proxy: np.ndarray | None = None,
                token: np.ndarray | None = None, description: str | None = None) -> None:
    """Add (or update) a task with what the rankers are fitted from: counts, card, proxy vector, task token."""
    meta: dict[str, Any] = {}
    if proxy is not None:
        meta[PROXY_KEY] = np.asarray(proxy, dtype=float).round(6).tolist()
    if token is not None:
        meta[TOKEN_KEY] = np.asarray(token, dtype=float).round(6).tolist()
    kb.add_task(task, n_classes=n_classes, n_samples=n_samples, description=description or None, meta=meta)


def record_ranking(kb: Any, task: str, result: Any, *, n_classes: int | None, n_samples: int,
                   proxy: np.ndarray | None = None, token: np.ndarray | None = None,
                   description: str | None = None, models: dict[str, dict] | None = None,
                   scores: dict[str, dict[str, float]] | None = None) -> int:
    """Record a ranked task and what was measured on it (module doc); returns the number of scores written.
    ``models``: what is known of the models that ran ({name: {"params", "layers", "architecture"}}: Fennec's
    meta features); ``scores``: more metric scores of those models ({metric: {model: score}}, e.g. every
    candidate metric on the top K features: MetaRank learns from several metrics per task)."""
    for name, known in (models or {}).items():
        kb.add_model(name, **{k: v for k, v in known.items() if k in ("params", "layers", "architecture")})
    record_task(kb, task, n_classes=n_classes, n_samples=n_samples, proxy=proxy, token=token,
                description=description)
    measured = {metric: dict(per) for metric, per in (scores or {}).items()}
    if result.metric is not None:
        measured.setdefault(result.metric, {}).update(
            {result.models[i]: float(v) for i, v in result.fine.get("metric", {}).items()})
    rows = [{"model": m, "task": task, "kind": f"metric:{metric}", "value": float(v)}
            for metric, per in measured.items() for m, v in per.items() if np.isfinite(v)]
    if rows:
        kb.record_many(rows, provenance={"source": "zoorank rank"})
    return len(rows)
