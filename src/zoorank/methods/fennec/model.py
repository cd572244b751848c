"""Fennec (Bai et al., "Pre-Trained Model Recommendation for Downstream Fine-tuning", 2024): the whole method.

Offline (:meth:`Fennec.fit`), from history:

1. **Transfer phase** — the historical performance matrix ``P`` [n_models, n_tasks] (FDA scores by default, any
   metric or true accuracies; NaN = missing) is factorised by regularised NMF, ``P ~= M D^T`` (equation 4,
   :mod:`.nmf`): model vectors ``m_i`` and task vectors ``d_j``.
2. **Proxy regressor** — each historical task's proxy-encoder features ``g_j`` (equation 5: a frozen general
   encoder over a small unlabelled sample of the task's images, summarised by the mean and standard deviation
   of the per-image features) are mapped to ``d_j`` by a random-forest regressor (equation 6).
3. **Meta phase** — a linear regression from [model meta features, task meta features] to ``P`` (equation 8,
   :mod:`.meta`).

Online (:meth:`Fennec.rank`), for a new task with proxy features ``g_t`` and meta features ``f_t`` (no labels):
``d_t = RF(g_t)``; ``TRANS_i = m_i . d_t`` (7); ``META_i = LR([f_i, f_t])`` (9);
``s_i = (1 - alpha) TRANS_i + alpha META_i`` (10, alpha = 0.5 by default). Both scores predict ``P``'s units,
so they are merged as they are, as in the paper. The cost is one proxy pass plus ``O(n_models k)`` arithmetic:
no forward pass of any zoo model.

Persistence (:meth:`save` / :meth:`load`) writes plain arrays and JSON (no pickle): the random forest is refitted
on load from its stored training pairs with the same seed, which reproduces it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.methods.fennec import nmf
from zoorank.methods.fennec.meta import MetaRegressor

FORMAT = 1


def summarize_proxy(features: np.ndarray) -> np.ndarray:
    """A task's proxy vector ``g`` from per-image proxy features [n, G]: concatenated mean and std over images."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 1 or not np.isfinite(f).all():
        raise InputError(f"fennec: proxy features must be a finite [n_images, G] array, got shape {f.shape}")
    return np.concatenate([f.mean(0), f.std(0)])


@dataclass
class Fennec:
    """The Fennec recommender (module doc). ``k``: latent dimension; ``alpha``: weight of the meta score;
    ``alpha_m``/``alpha_d``: Frobenius regularisation of equation 4; ``n_estimators``: trees of the proxy RF."""

    k: int = 4
    alpha: float = 0.5
    alpha_m: float = 1e-3
    alpha_d: float = 1e-3
    n_estimators: int = 300
    max_iter: int = 3000
    tol: float = 1e-7
    seed: int = 0
    use_transfer: bool = True
    use_meta: bool = True
    models: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    nmf_: nmf.NMFResult | None = None
    meta_: MetaRegressor | None = None
    _rf: Any = None
    _train: dict[str, np.ndarray] = field(default_factory=dict)
    _model_part: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"fennec: alpha must be in [0, 1], got {self.alpha}")
        if not (self.use_transfer or self.use_meta):
            raise InputError("fennec: at least one of the transfer and meta phases must be used")

    # -- offline ------------------------------------------------------------------------------------

    def fit(self, scores: np.ndarray, proxy: np.ndarray, model_features: np.ndarray, task_features: np.ndarray,
            *, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> Fennec:
        """Fit from history: ``scores`` [n_models, n_tasks] (>= 0, NaN = missing), ``proxy`` [n_tasks, G] task
        proxy vectors (:func:`summarize_proxy`), ``model_features`` [n_models, F], ``task_features`` [n_tasks, T]."""
        P = np.asarray(scores, dtype=np.float64)
        proxy = np.asarray(proxy, dtype=np.float64)
        fm = np.asarray(model_features, dtype=np.float64)
        ft = np.asarray(task_features, dtype=np.float64)
        if P.ndim != 2:
            raise InputError(f"fennec: scores must be [n_models, n_tasks], got shape {P.shape}")
        n_models, n_tasks = P.shape
        if n_tasks < 2:
            raise InputError("fennec: needs at least 2 historical tasks")
        if proxy.ndim != 2 or proxy.shape[0] != n_tasks:
            raise InputError(f"fennec: proxy must be [{n_tasks}, G], got {proxy.shape}")
        if fm.shape[0] != n_models or ft.shape[0] != n_tasks:
            raise InputError(f"fennec: model_features must have {n_models} rows and task_features {n_tasks}, got "
                             f"{fm.shape[0]} and {ft.shape[0]}")
        self.models = list(models) if models is not None else [str(i) for i in range(n_models)]
        self.tasks = list(tasks) if tasks is not None else [str(j) for j in range(n_tasks)]
        if len(self.models) != n_models or len(self.tasks) != n_tasks:
            raise InputError("fennec: models/tasks names do not match the score matrix")
        mask = np.isfinite(P)
        self.nmf_ = nmf.factorize(np.where(mask, P, 0.0), self.k, mask=mask, alpha_m=self.alpha_m,
                                  alpha_d=self.alpha_d, max_iter=self.max_iter, tol=self.tol, seed=self.seed)
        self._train = {"proxy": proxy, "D": self.nmf_.D, "model_features": fm, "task_features": ft, "P": P}
        self._fit_rf()
        self.meta_ = MetaRegressor().fit(fm, ft, P)
        self._model_part = None
        return self

    def fit_from_kb(self, kb: Any, *, kind: str = "fda", proxy_key: str = "proxy",
                    embedding_key: str = "archi2vec") -> Fennec:
        """Fit from a :class:`zoorank.store.KnowledgeBase`: the ``kind`` matrix (models x tasks, missing allowed),
        each task's proxy vector from its meta-feature ``proxy_key`` (tasks without one are left out) and its
        ``n_classes``/``n_samples``, each model's ``params``, ``layers`` and, when every model has it, the
        archi2vec embedding stored under ``embedding_key``."""
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
        return self.fit(mat.values[:, keep], proxy, fm, ft, models=mat.models, tasks=names)

    def _fit_rf(self) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self._rf = RandomForestRegressor(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1)
        self._rf.fit(self._train["proxy"], self._train["D"])

    def _check_fitted(self) -> None:
        if self.nmf_ is None or self.meta_ is None or self._rf is None:
            raise InputError("fennec: call fit (or load) first")

    # -- online -------------------------------------------------------------------------------------

    def task_vector(self, proxy: np.ndarray) -> np.ndarray:
        """``d_t = RF(g_t)`` (equation 6) for one proxy vector [G] or several [n, G]."""
        self._check_fitted()
        g = np.asarray(proxy, dtype=np.float64)
        one = g.ndim == 1
        g = g[None] if one else g
        if g.shape[1] != self._train["proxy"].shape[1]:
            raise InputError(f"fennec: proxy vectors have {g.shape[1]} values, the model was fitted on "
                             f"{self._train['proxy'].shape[1]} (use the same proxy encoder)")
        d = np.maximum(self._rf.predict(g).reshape(len(g), -1), 0.0)
        return d[0] if one else d

    def transfer_scores(self, proxy: np.ndarray) -> np.ndarray:
        """``TRANS_i = m_i . d_t`` (equation 7) for every model."""
        return self.nmf_.M @ self.task_vector(proxy)

    def meta_scores(self, task_features: np.ndarray) -> np.ndarray:
        """``META_i = LR([f_i, f_t])`` (equation 9) for every model; the regression is linear, so the models'
        term is computed once and a new task adds one number per model."""
        self._check_fitted()
        ft = np.asarray(task_features, dtype=np.float64).reshape(1, -1)
        if self._model_part is None:
            self._model_part = self.meta_.model_part(self._train["model_features"])
        return self._model_part + self.meta_.task_part(self._train["model_features"], ft)[0]

    def rank(self, proxy: np.ndarray, task_features: np.ndarray) -> np.ndarray:
        """Scores ``s_i`` (equation 10) for every model of the zoo, higher = better; needs no labels."""
        self._check_fitted()
        if not self.use_meta:
            return self.transfer_scores(proxy)
        if not self.use_transfer:
            return self.meta_scores(task_features)
        return (1 - self.alpha) * self.transfer_scores(proxy) + self.alpha * self.meta_scores(task_features)

    def explain(self, proxy: np.ndarray, task_features: np.ndarray, top: int = 5) -> dict[str, Any]:
        """What drove a ranking: the task vector, the historical tasks nearest to it in the transfer space,
        and for the top models their transfer and meta scores and the latent factor contributing most."""
        d = self.task_vector(proxy)
        trans = self.nmf_.M @ d
        meta = self.meta_scores(task_features)
        s = self.rank(proxy, task_features)
        D = self.nmf_.D
        cos = (D @ d) / np.maximum(np.linalg.norm(D, axis=1) * np.linalg.norm(d), 1e-12)
        near = np.argsort(-cos)[:3]
        order = np.argsort(-s)[:top]
        return {
            "task_vector": d.tolist(),
            "nearest_historical_tasks": [(self.tasks[j], float(cos[j])) for j in near],
            "top_models": [{"model": self.models[i], "score": float(s[i]), "transfer": float(trans[i]),
                            "meta": float(meta[i]),
                            "main_factor": int(np.argmax(self.nmf_.M[i] * d))} for i in order],
            "nmf": {"k": self.k, "iterations": self.nmf_.n_iter, "converged": self.nmf_.converged,
                    "loss": self.nmf_.loss},
        }

    # -- persistence --------------------------------------------------------------------------------

    _PARAMS = ("k", "alpha", "alpha_m", "alpha_d", "n_estimators", "max_iter", "tol", "seed", "use_transfer",
               "use_meta")

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.npz`` with the arrays and a JSON header; no pickle)."""
        self._check_fitted()
        header = {"format": FORMAT, "params": {p: getattr(self, p) for p in self._PARAMS}, "models": self.models,
                  "tasks": self.tasks, "nmf": {"n_iter": self.nmf_.n_iter, "converged": self.nmf_.converged,
                                               "losses": self.nmf_.losses[-5:]}}
        arrays = {f"train_{k}": v for k, v in self._train.items()}
        arrays.update(M=self.nmf_.M, meta_coef=self.meta_.coef_, meta_mean=self.meta_.mean_,
                      meta_scale=self.meta_.scale_, header=np.array(json.dumps(header)))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Fennec:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"fennec: no saved model at {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in z.files if k != "header"}
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"fennec: {path} is not a saved Fennec model ({exc})") from None
        if header.get("format") != FORMAT:
            raise InputError(f"fennec: {path} has format {header.get('format')}, expected {FORMAT}")
        obj = cls(**header["params"])
        obj.models, obj.tasks = header["models"], header["tasks"]
        obj._train = {k[len("train_"):]: v for k, v in arrays.items() if k.startswith("train_")}
        obj.nmf_ = nmf.NMFResult(arrays["M"], obj._train["D"], header["nmf"]["n_iter"], header["nmf"]["converged"],
                                 header["nmf"]["losses"])
        obj.meta_ = MetaRegressor(coef_=arrays["meta_coef"], mean_=arrays["meta_mean"], scale_=arrays["meta_scale"])
        obj._fit_rf()
        return obj
