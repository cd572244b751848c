"""Every transferability metric of :mod:`zoorank.metrics` as a ranking method of the harness."""

from __future__ import annotations

import time

import numpy as np

from zoorank.evaluation.context import MethodSkipped, TaskContext


class MetricMethod:
    """A transferability metric of :mod:`zoorank.metrics` as a ranking method.

    Scores are kept in a content-keyed :class:`~zoorank.store.scores.ScoreStore` (``store``; default
    ``<zoorank cache>/metric_scores``, shared with MetaRank's meta-dataset; ``store=False``: none) together with
    their compute time, which a hit reports as the method's seconds.

    Features of every model on the task's probe set (one forward pass each); metrics with a pool form
    (ETran, NCTI) are scored with :func:`zoorank.metrics.compute_pool`; metrics needing source
    probabilities (LEEP, NCE) use softmax(logits) and skip the task when a model is headless; PED uses
    the provider's ``general_features`` and skips when it has none. ``params`` go to the metric.
    """

    def __init__(self, metric: str, *, store=None, **params):
        from zoorank import metrics as M
        from zoorank.store.scores import ScoreStore

        self.info = M.info(metric)
        self.name = metric
        self.params = params
        self.store = None if store is False else store if store is not None else ScoreStore()

    def __repr__(self) -> str:
        return f"MetricMethod({self.name!r})"

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank import metrics as M

        info = self.info
        models = context.models
        pairs = [context.features(m) for m in models]
        labels = context.labels() if info.needs_labels else None
        general = None
        if info.needs_general_features and "general_features" not in self.params:
            general = [context.general_features(m) for m in models]
        key = None
        if self.store is not None and not context.live and "general_features" not in self.params:
            from zoorank.store.scores import digest, metric_key

            gen_ids = None if general is None else [context.digest("general", m) for m in models]
            key = metric_key(self.name, self.params, [context.digest("features", m) for m in models],
                             [context.digest("logits", m) for m in models], gen_ids,
                             "-" if labels is None else context._cached(("digest", "labels"), lambda: digest(labels)))
            hit, scores, seconds = self.store.get(key)
            if hit and scores is not None:
                context.replayed_seconds += seconds
                return scores
        try:
            t0 = time.perf_counter()
            scores = M.score_zoo(self.name, [f for f, _ in pairs], [lg for _, lg in pairs], labels, general=general,
                                 names=models, **self.params)
            if key is not None and np.isfinite(scores).all():
                self.store.put(key, scores, time.perf_counter() - t0)
            return scores
        except M.MetricUnavailable as exc:
            if not exc.missing_input:
                raise  # the metric's own complaint about the data: a failure, not a skip
            raise MethodSkipped(str(exc)) from None
