"""A knowledge base holding a benchmark's historical targets, as a user's ``zoorank rank --kb`` and ``zoorank kb
record`` would have left them.

:func:`fill_kb` records each model (architecture, parameter count) and each historical task: its class and image
counts, its dataset card, the proxy encoder's summary (Fennec) and the general encoder's task token (Model Spider),
the scores of the :data:`~zoorank.metric_sets.RECORDED` metrics on every zoo model (a historical task has been run
on the whole zoo) and the fine-tuned accuracies. ``zoorank fit`` (:func:`zoorank.pipeline.learn.fit_rankers`)
then fits the rankers from it; the pipeline's harness adapter and the demo use it to fit on a fold's history.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zoorank.metric_sets import RECORDED

__all__ = ["fill_kb"]




def _task_rows(bench, provider, task: str, metrics: Sequence[str], cache: dict) -> dict:
    """Everything the knowledge base gets about one historical task (computed once per run and metric list)."""
    key = (task, tuple(metrics))
    if key in cache:
        return cache[key]
    from zoorank import metrics as M
    from zoorank.methods.metarank.cards import card_from_task_info
    from zoorank.store.scores import ScoreStore

    store = ScoreStore()  # the scores a metric method of the harness stored are reused
    info = bench.task_info[task]
    y = np.asarray(provider.labels(task))
    pairs = [provider.features(m, task) for m in bench.models]
    scores = {}
    for metric in metrics:
        try:
            s = store.score_zoo(metric, [f for f, _ in pairs], [lg for _, lg in pairs], y, names=bench.models)
        except M.MetricUnavailable:
            continue
        if np.isfinite(s).all():
            scores[metric] = s
    scores.update(_fraction_scores(bench, provider, task, y, store))
    token = _token(provider, task)
    n_train = int(info.extra.get("n_train") or y.size)
    cache[key] = {"n_classes": int(info.n_classes or np.unique(y).size), "n_samples": n_train,
                   "description": card_from_task_info(info).to_text(),
                   "proxy": _proxy(provider, task),
                   "token": token, "scores": scores,
                   "truth": bench.truth(task)}
    return cache[key]


def _fraction_scores(bench, provider, task: str, y: np.ndarray, store) -> dict[str, np.ndarray]:
    """The belief ranker's stacked metrics on every zoo model at each of its probe fractions
    (:data:`zoorank.methods.belief.PROBE_FRACTIONS`), keyed ``<metric>@probe<percent>`` (recorded as
    ``metric:<metric>@probe<percent>``); nothing when the provider cannot run a subset of the probe."""
    from zoorank import metrics as M
    from zoorank.data import accepts_rows, fraction_rows
    from zoorank.methods.belief import PROBE_FRACTIONS, STACK_METRICS, probe_kind

    if not accepts_rows(provider):
        return {}
    fetch = provider.features
    out = {}
    for f in PROBE_FRACTIONS:
        if f == 1.0:
            continue
        rows = fraction_rows(y, f)
        pairs = [fetch(m, task, rows=rows) for m in bench.models]
        for metric in STACK_METRICS:
            try:
                s = store.score_zoo(metric, [a for a, _ in pairs], [lg for _, lg in pairs], y[rows],
                                    names=bench.models)
            except M.MetricUnavailable:
                continue
            if np.isfinite(s).all():
                out[probe_kind(metric, f)[len("metric:"):]] = s
    return out


def _token(provider, task: str) -> np.ndarray | None:
    """Spider's task token of a task, or None when the provider has no general encoder (Spider then has no
    training task from it)."""
    from zoorank.evaluation import MethodSkipped
    from zoorank.methods.spider import task_token

    fetch = getattr(provider, "encoder_features", None)
    if fetch is None:
        return None
    try:
        E, y = fetch(task)
    except MethodSkipped:
        return None
    return task_token(np.asarray(E), np.asarray(y))


def _proxy(provider, task: str) -> np.ndarray | None:
    """The proxy vector of a task, or None when the provider has no proxy encoder (Fennec is then not fitted)."""
    from zoorank.evaluation import MethodSkipped
    from zoorank.methods.fennec.model import summarize_proxy

    fetch = getattr(provider, "proxy_features", None)
    if fetch is None:
        return None
    try:
        return summarize_proxy(np.asarray(fetch(task)))
    except MethodSkipped:
        return None


def _centres(bench, provider, task: str, cache: dict) -> dict[str, np.ndarray]:
    """Spider's PTM-specific token of every zoo model on a historical task (computed once per run)."""
    from zoorank.methods.spider import specific_token

    key = ("centres", task)
    if key not in cache:
        y = np.asarray(provider.labels(task))
        cache[key] = {m: specific_token(np.asarray(provider.features(m, task)[0]), y).astype(np.float32)
                      for m in bench.models}
    return cache[key]


def fill_kb(kb, bench, provider, tasks: Sequence[str], *, metrics: Sequence[str] = RECORDED,
            cache: dict | None = None, centres: bool = False) -> None:
    """Record the zoo and the historical ``tasks`` in ``kb`` (module doc), through
    :func:`zoorank.pipeline.learn.record_evidence`, as ``zoorank rank --kb`` records a ranked task; with
    ``centres``, also every model's class centres on each task (Spider's specific tokens, as ``zoorank rank --kb``
    keeps them for the models it ran)."""
    from zoorank.pipeline.learn import record_evidence

    cache = {} if cache is None else cache
    for m in bench.models:
        kb.add_model(m, architecture=bench.zoo[m].architecture, params=max(int(bench.zoo[m].params), 1))
    for t in tasks:
        rows = _task_rows(bench, provider, t, metrics, cache)
        record_evidence(kb, t, n_classes=rows["n_classes"], n_samples=rows["n_samples"], proxy=rows["proxy"],
                        token=rows["token"], description=rows["description"],
                        scores={k: dict(zip(bench.models, map(float, v), strict=True))
                                for k, v in rows["scores"].items()},
                        truth=dict(zip(bench.models, map(float, rows["truth"]), strict=True)),
                        source="zoorank.evaluation.history_kb",
                        centres=_centres(bench, provider, t, cache) if centres else None)
