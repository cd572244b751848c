"""What the learned rankers are fitted from, read from a knowledge base (:class:`zoorank.store.KnowledgeBase`).

The rankers themselves only take arrays and records; these readers turn the knowledge base into their ``fit``
arguments (:func:`zoorank.pipeline.learn.fit_rankers` fits each ranker whose data suffice):

- **Fennec** (:func:`fennec_history`): a models x tasks matrix (:func:`fennec_kinds` chooses it: the recorded
  fine-tuned accuracies ``finetune_acc`` or the FDA scores ``metric:fda``, whichever has more observed entries,
  the truth on a tie: the paper fills its matrix with FDA only as a cheap substitute for true results (its
  appendix C), so the results a user records must not be ignored when they are there), each task's proxy vector
  (task meta :data:`PROXY_KEY`), ``n_classes`` and ``n_samples``, each model's parameter count.
- **Model Spider** (:func:`spider_tasks`): one training task per historical task with a task token (task meta
  :data:`TOKEN_KEY`: the class centres of the general encoder, equation 5), supervised by the recorded
  ``finetune_acc`` where every model has one, else by the Copeland aggregation of the recorded ``metric:nce``,
  ``metric:leep``, ``metric:logme`` and ``metric:hscore`` scores (appendix A.4); with the PTM-specific tokens the
  knowledge base keeps for it (:meth:`~zoorank.store.KnowledgeBase.centres`: the class centres of a model's own
  features on the task, section 4.4), from which Spider learns the projections its top-k re-ranking uses.
- **the belief ranker** (:func:`belief_history`): the ``finetune_acc`` matrix (tasks x models, missing allowed)
  of the tasks with at least 3 recorded accuracies, their proxy vectors as descriptors when every one of them has
  one, and the stacked metrics' scores at each probe fraction (``metric:<name>`` and ``metric:<name>@probe<pct>``).
- **MetaRank** (:func:`metarank_records`): for every task with a description (the task's ``description``) and
  ``finetune_acc`` of at least 3 models, the weighted tau of each recorded metric against those accuracies (the
  meta-dataset of MetaRank).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.metric_sets import SPIDER_SUPERVISION

__all__ = ["PROXY_KEY", "TOKEN_KEY", "belief_history", "fennec_history", "fennec_kinds", "metarank_records",
           "spider_tasks"]

#: Task meta-features the rankers are fitted from: Fennec's proxy vector, Spider's task token.
PROXY_KEY, TOKEN_KEY = "proxy", "spider_token"


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


def fennec_history(kb: Any, kind: str = "fda", *, proxy_key: str = PROXY_KEY,
                   embedding_key: str = "archi2vec") -> dict[str, Any]:
    """The arguments of :meth:`zoorank.methods.Fennec.fit` from a knowledge base: the ``kind`` matrix (models x
    tasks, missing allowed), each task's proxy vector from its meta-feature ``proxy_key`` (tasks without one are
    left out) and its ``n_classes``/``n_samples``, each model's ``params``, ``layers`` and, when every model has it,
    the archi2vec embedding stored under ``embedding_key``. ``Fennec(...).fit(**fennec_history(kb, kind))``."""
    from zoorank.methods.fennec.meta import model_features, task_features

    mat = kb.matrix(kind)
    tasks = {t.name: t for t in kb.tasks()}
    models = {m.name: m for m in kb.models()}
    keep = [j for j, t in enumerate(mat.tasks) if proxy_key in tasks[t].meta and tasks[t].n_classes
            and tasks[t].n_samples]
    if len(keep) < 2:
        raise InputError(f"fennec: the knowledge base has {len(keep)} task(s) with a {kind!r} column, a "
                         f"{proxy_key!r} proxy vector, n_classes and n_samples; at least 2 are needed")
    names = [mat.tasks[j] for j in keep]
    missing = [m for m in mat.models if not models[m].params]
    if missing:
        raise InputError(f"fennec: model(s) without a parameter count in the knowledge base: {missing[:3]}")
    recs = [models[m] for m in mat.models]
    layers = [r.layers for r in recs]
    emb = [r.meta.get(embedding_key) for r in recs]
    fm = model_features([r.params for r in recs], layers if all(layers) else None,
                        np.array(emb, dtype=float) if all(e is not None for e in emb) else None)
    ft = task_features([tasks[t].n_classes for t in names], [tasks[t].n_samples for t in names])
    proxy = np.array([tasks[t].meta[proxy_key] for t in names], dtype=float)
    return {"scores": mat.values[:, keep], "proxy": proxy, "model_features": fm, "task_features": ft,
            "models": mat.models, "tasks": names}


def spider_tasks(kb: Any, models: list[str], *, with_counts: bool = False) -> list | tuple[list, int]:
    """Model Spider's training tasks from the knowledge base (module doc): the truth-supervised tasks first, then
    the metric-supervised ones; ``with_counts`` also returns the number of truth-supervised tasks."""
    from zoorank.methods.spider import TrainingTask, copeland_supervision

    by_truth, by_metrics = [], []
    kinds = set(kb.kinds())
    metric_mats = {m: kb.matrix(f"metric:{m}", models=models) for m in SPIDER_SUPERVISION if f"metric:{m}" in kinds}
    truth = kb.matrix("finetune_acc", models=models) if "finetune_acc" in kinds else None
    kept = kb.centres() if hasattr(kb, "centres") else {}
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
        token = np.asarray(token, dtype=np.float64)
        specific = {j: kept[(m, t.name)] for j, m in enumerate(models)
                    if (m, t.name) in kept and kept[(m, t.name)].shape[0] == token.shape[0]}
        task = TrainingTask(t.name, token, np.asarray(sup, dtype=np.float64), specific)
        (by_truth if sup_is_truth else by_metrics).append(task)
    return (by_truth + by_metrics, len(by_truth)) if with_counts else by_truth + by_metrics


def metarank_records(kb: Any, models: list[str] | None = None, *, min_models: int = 3) -> list:
    """MetaRank's meta-dataset from the knowledge base: weighted tau of every recorded metric against the
    recorded fine-tuned accuracies, per task with a description (module doc). Scores on part of a probe
    (``metric:<name>@probe<pct>``, the belief ranker's) are not metrics MetaRank chooses among and are left out."""
    from zoorank.methods.metarank import MetaRecord

    kinds = kb.kinds()
    if "finetune_acc" not in kinds:
        return []
    truth = kb.matrix("finetune_acc", models=models)
    out = []
    tasks = {t.name: t for t in kb.tasks()}
    for kind in kinds:
        if not kind.startswith("metric:") or "@" in kind:
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


def belief_history(kb: Any, models: list[str]) -> dict[str, Any]:
    """The arguments of :meth:`zoorank.methods.belief.BeliefRanker.fit` from a knowledge base (module doc):
    ``BeliefRanker().fit(**belief_history(kb, models))``. InputError when no task has 3 recorded accuracies."""
    from zoorank.methods.belief import PROBE_FRACTIONS, STACK_METRICS, probe_kind

    if "finetune_acc" not in set(kb.kinds()):
        raise InputError("belief: the knowledge base holds no finetune_acc results; record fine-tuned accuracies "
                         "(zoorank kb record MODEL TASK --kind finetune_acc --value V)")
    mat = kb.matrix("finetune_acc", models=models)
    A = np.asarray(mat.values, dtype=float).T  # [tasks, models]
    keep = [j for j in range(A.shape[0]) if np.isfinite(A[j]).sum() >= 3]
    if not keep:
        raise InputError("belief: no task of the knowledge base has fine-tuned accuracies of 3 models")
    names = [mat.tasks[j] for j in keep]
    meta = {t.name: t.meta for t in kb.tasks()}
    proxies = [meta.get(t, {}).get(PROXY_KEY) for t in names]
    descriptors = np.array(proxies, dtype=float) if all(p is not None for p in proxies) else None
    kinds = set(kb.kinds())
    scores = {}
    for f in PROBE_FRACTIONS:
        for metric in STACK_METRICS:
            kind = probe_kind(metric, f)
            if kind in kinds:
                scores[kind] = np.asarray(kb.matrix(kind, models=models, tasks=names).values, dtype=float).T
    records = {m.name: m for m in kb.models()}
    model_meta = [{"params": getattr(records.get(m), "params", None), "layers": getattr(records.get(m), "layers", None),
                   "architecture": getattr(records.get(m), "architecture", None)} for m in models]
    return {"models": list(models), "accuracies": A[keep], "descriptors": descriptors, "scores": scores,
            "tasks": names, "model_meta": model_meta}
