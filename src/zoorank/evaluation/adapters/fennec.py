"""Learned rankers as harness methods, leave-one-target-out: each is refitted for every held-out target from
the OTHER targets only (their ground truth, their cached features, their proxy features), then ranks the held-out
target from what the method may see online.

- ``fennec`` (:class:`FennecMethod`): Fennec with FDA scores as the historical matrix, the proxy encoder of the
  feature provider, and the model meta features named by ``meta``; online it uses the target's proxy features and
  its meta-data (class count, train size) only: no labels, no zoo forward pass. The ablations of Fennec's tables
  2 and 3 and figure 5 are named variants (:data:`ABLATIONS`, left out of ``all``): ``fennec:no-transfer``,
  ``fennec:no-meta``, ``fennec:onehot``, ``fennec:basic-meta``, ``fennec:acc`` (the historical matrix is the true
  fine-tuned accuracy instead of FDA scores), ``fennec:alpha=A``, ``fennec:k=K`` and ``fennec:proxy=MODEL``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoorank.errors import InputError
from zoorank.evaluation import HistoryView, MethodSkipped, TaskContext, TaskInfo
from zoorank.evaluation.registry import register_variants


def _n_train(info: TaskInfo) -> float:
    for key in ("n_train", "n_samples"):
        if info.extra.get(key):
            return float(info.extra[key])
    raise MethodSkipped(f"task {info.task!r} has no n_train in tasks.csv (a task meta feature of Fennec)")


class FennecMethod:
    """Fennec on a harness benchmark (module doc). ``meta``: ``"onehot"`` (log params + architecture one-hot),
    ``"basic"`` (log params only), or ``"archi2vec"`` (log params, log layer count and the archi2vec embedding of
    each architecture's autograd graph, from the provider's ``network(model)``)."""

    def __init__(self, name: str = "fennec", *, history: str = "fda", meta: str = "archi2vec", k: int = 4,
                 alpha: float = 0.5, use_transfer: bool = True, use_meta: bool = True, seed: int = 0,
                 proxy: str | None = None):
        if history not in ("fda", "finetune_acc", "linear_probe_acc"):
            raise InputError(f"fennec: history must be fda, finetune_acc or linear_probe_acc, got {history!r}")
        if meta not in ("archi2vec", "onehot", "basic"):
            raise InputError(f"fennec: meta must be archi2vec, onehot or basic, got {meta!r}")
        self.name = name
        self.history = history
        self.meta = meta
        self.params = {"k": k, "alpha": alpha, "use_transfer": use_transfer, "use_meta": use_meta, "seed": seed}
        self.proxy_options = {} if proxy is None else {"encoder": proxy}
        self._scores: dict[str, np.ndarray] = {}  # historical FDA scores by task, shared across held-out targets
        self._store = None
        self._model_features: np.ndarray | None = None
        self._fits: dict[str, tuple] = {}

    def _fda(self, hist: HistoryView, task: str) -> np.ndarray:
        """FDA of every model on historical ``task``, through the shared score store (every Fennec variant of a
        run, every fold and every later run reads the same vectors)."""
        if task not in self._scores:
            from zoorank.store.scores import ScoreStore

            if self._store is None:
                self._store = ScoreStore()
            pairs = [hist.features(m, task) for m in hist.models]
            self._scores[task] = np.asarray(self._store.score_zoo("fda", [f for f, _ in pairs], [lg for _, lg in pairs],
                                                                  hist.labels(task), names=hist.models))
        return self._scores[task]

    def _history_matrix(self, hist: HistoryView) -> np.ndarray:
        if self.history == "fda":
            return np.stack([self._fda(hist, t) for t in hist.tasks], axis=1)
        return hist.matrix(self.history).T

    def _features_of_models(self, context: TaskContext) -> np.ndarray:
        if self._model_features is None:
            from zoorank.methods.fennec.meta import model_features, one_hot

            zoo = context.zoo
            params = [max(zoo[m].params, 1) for m in context.models]
            if self.meta == "basic":
                self._model_features = model_features(params)
            elif self.meta == "onehot":
                self._model_features = model_features(params, extra=one_hot([zoo[m].architecture
                                                                              for m in context.models])[0])
            else:
                self._model_features = _archi2vec_features(context, params)
        return self._model_features

    def scores(self, task: str, context: TaskContext) -> np.ndarray:
        from zoorank.methods.fennec.model import summarize_proxy

        model, target = context.offline(lambda: self.fitted(context))
        return model.predict(summarize_proxy(context.proxy_features(**self.proxy_options)), target)

    def fitted(self, context: TaskContext):
        """(Fennec fitted on the other targets, the held-out target's task meta features), once per fold."""
        held_out = context.history.held_out
        if held_out not in self._fits:
            self._fits.clear()  # one fold at a time: the folds of a run come task by task
            self._fits[held_out] = self._fit(context)
        return self._fits[held_out]

    def _fit(self, context: TaskContext):
        from zoorank.methods.fennec.meta import task_features
        from zoorank.methods.fennec.model import Fennec, summarize_proxy

        hist = context.history
        if len(hist.tasks) < 2:
            raise MethodSkipped("fennec needs at least 2 other targets")
        P = self._history_matrix(hist)
        if np.nanmin(P) < 0:
            P = P - np.nanmin(P)
        proxy = np.stack([summarize_proxy(hist.proxy_features(t, **self.proxy_options)) for t in hist.tasks])
        infos = [hist.task_info(t) for t in hist.tasks]
        if any(i.n_classes is None for i in [*infos, context.task_info]):
            raise MethodSkipped("fennec needs n_classes of every task (tasks.csv)")
        ft = task_features([i.n_classes for i in infos], [_n_train(i) for i in infos])
        target = task_features([context.task_info.n_classes], [_n_train(context.task_info)])[0]
        model = Fennec(**self.params).fit(P, proxy, self._features_of_models(context), ft,
                                          models=list(context.models), tasks=list(hist.tasks))
        return model, target


def _archi2vec_features(context: TaskContext, params: list[int]) -> np.ndarray:
    """log params, log layer count and the archi2vec embedding of every model's architecture."""
    from zoorank.methods.fennec.meta import model_features
    from zoorank.zoo import archi2vec as A

    provider = context._need_provider()
    network = getattr(provider, "network", None)
    if network is None:
        raise MethodSkipped("fennec (archi2vec): the feature provider cannot build the zoo's networks")
    graphs: dict[str, object] = {}
    for m in context.models:
        arch = context.zoo[m].architecture
        if arch not in graphs:
            net, input_shape = network(m)
            graphs[arch] = A.autograd_graph(net, input_shape=input_shape, name=arch)
    archs = list(graphs)
    emb = A.Archi2Vec(seed=0).fit([graphs[a] for a in archs]).embeddings_
    row = {a: i for i, a in enumerate(archs)}
    layers = [max(A.layer_count(graphs[context.zoo[m].architecture]), 1) for m in context.models]
    return model_features(params, layers, np.stack([emb[row[context.zoo[m].architecture]] for m in context.models]))


#: Ablations (Fennec's tables 2 and 3, figure 5): phases, architecture encoding, historical matrix, alpha, k,
#: and the proxy encoder (a from-scratch zoo model instead of the ImageNet MobileNetV2).
ABLATIONS: dict[str, dict] = {
    "fennec:no-transfer": {"use_transfer": False},
    "fennec:no-meta": {"use_meta": False},
    "fennec:onehot": {"meta": "onehot"},
    "fennec:basic-meta": {"meta": "basic"},
    "fennec:acc": {"history": "finetune_acc"},
    **{f"fennec:alpha={a:g}": {"alpha": a} for a in (0.0, 0.25, 0.75, 1.0)},
    **{f"fennec:k={k}": {"k": k} for k in (2, 8, 16)},
    "fennec:proxy=resnet10t-w32-handwritten_digits": {"proxy": "resnet10t-w32-handwritten_digits"},
}


@register_variants
def _variants() -> dict[str, Callable[[], FennecMethod]]:
    out: dict[str, Callable[[], FennecMethod]] = {"fennec": lambda: FennecMethod("fennec")}
    for name, options in ABLATIONS.items():
        out[name] = lambda name=name, options=options: FennecMethod(name, **options)
    return out
