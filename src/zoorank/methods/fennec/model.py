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

Online (:meth:`Fennec.predict`, or :meth:`Fennec.score` of a :class:`~zoorank.methods.base.TaskEvidence`), for a
new task with proxy features ``g_t`` and meta features ``f_t`` (no labels):
``d_t = RF(g_t)``; ``TRANS_i = m_i . d_t`` (7); ``META_i = LR([f_i, f_t])`` (9);
``s_i = (1 - alpha) TRANS_i + alpha META_i`` (10, alpha = 0.5 by default). Both scores predict ``P``'s units,
so they are merged as they are, as in the paper. The cost is one proxy pass plus ``O(n_models k)`` arithmetic:
no forward pass of any zoo model.

Persistence (:meth:`save` / :meth:`load`) writes plain arrays and JSON (no pickle): the random forest is refitted
on load from its stored training pairs with the same seed, which reproduces it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.methods._npz import read_npz, write_npz
from zoorank.methods.base import Ranker, TaskEvidence
from zoorank.methods.fennec import meta, nmf
from zoorank.methods.fennec.meta import MetaRegressor
from zoorank.ranking import best_first

FORMAT = 1


def summarize_proxy(features: np.ndarray) -> np.ndarray:
    """A task's proxy vector ``g`` from per-image proxy features [n, G]: concatenated mean and std over images."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 1 or not np.isfinite(f).all():
        raise InputError(f"fennec: proxy features must be a finite [n_images, G] array, got shape {f.shape}")
    return np.concatenate([f.mean(0), f.std(0)])


class Fennec(Ranker):
    """The Fennec recommender (module doc). ``k``: latent dimension; ``alpha``: weight of the meta score;
    ``alpha_m``/``alpha_d``: Frobenius regularisation of equation 4; ``n_estimators``: trees of the proxy RF;
    ``max_iter``/``tol``: the NMF's iterations; ``seed``: NMF initialisation and RF; ``use_transfer`` /
    ``use_meta``: the phases used (the ablations of table 2).

    Learned (by :meth:`fit` or :meth:`load`): ``models_`` and ``tasks_`` (the names of the score matrix's rows and
    columns), ``nmf_`` (the factorisation), ``meta_`` (the meta regression), ``rf_`` (the proxy regressor) and
    ``train_`` (the training arrays, from which ``rf_`` is refitted on load)."""

    _name = "fennec"
    _learned = ("models_", "tasks_", "nmf_", "meta_", "rf_", "train_")

    def __init__(self, k: int = 4, alpha: float = 0.5, alpha_m: float = 1e-3, alpha_d: float = 1e-3,
                 n_estimators: int = 300, max_iter: int = 3000, tol: float = 1e-7, seed: int = 0,
                 use_transfer: bool = True, use_meta: bool = True):
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"fennec: alpha must be in [0, 1], got {alpha}")
        if not (use_transfer or use_meta):
            raise InputError("fennec: at least one of the transfer and meta phases must be used")
        self.k, self.alpha, self.alpha_m, self.alpha_d = k, alpha, alpha_m, alpha_d
        self.n_estimators, self.max_iter, self.tol, self.seed = n_estimators, max_iter, tol, seed
        self.use_transfer, self.use_meta = use_transfer, use_meta
        self._model_part: np.ndarray | None = None  # cache of the meta regression's model term

    # -- offline ------------------------------------------------------------------------------------

    def fit(self, scores: np.ndarray, proxy: np.ndarray, model_features: np.ndarray, task_features: np.ndarray,
            *, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> Fennec:
        """Fit from history: ``scores`` [n_models, n_tasks] (>= 0, NaN = missing), ``proxy`` [n_tasks, G] task
        proxy vectors (:func:`summarize_proxy`), ``model_features`` [n_models, F], ``task_features`` [n_tasks, T]
        (:mod:`.meta`); ``models`` / ``tasks``: their names (default ``"0"``, ``"1"``, ...). A knowledge base gives
        these arguments through :func:`zoorank.methods.kb_adapter.fennec_history`. Returns self."""
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
        model_names = list(models) if models is not None else [str(i) for i in range(n_models)]
        task_names = list(tasks) if tasks is not None else [str(j) for j in range(n_tasks)]
        if len(model_names) != n_models or len(task_names) != n_tasks:
            raise InputError("fennec: models/tasks names do not match the score matrix")
        mask = np.isfinite(P)
        factors = nmf.factorize(np.where(mask, P, 0.0), self.k, mask=mask, alpha_m=self.alpha_m,
                                alpha_d=self.alpha_d, max_iter=self.max_iter, tol=self.tol, seed=self.seed)
        train = {"proxy": proxy, "D": factors.D, "model_features": fm, "task_features": ft, "P": P}
        rf = self._fit_rf(train)
        regression = MetaRegressor().fit(fm, ft, P)
        self.models_, self.tasks_, self.nmf_, self.train_, self.rf_, self.meta_ = (
            model_names, task_names, factors, train, rf, regression)
        self._model_part = None
        return self

    def _fit_rf(self, train: dict[str, np.ndarray]) -> Any:
        """The proxy regressor ``g -> d`` (equation 6) on the training pairs; seeded, so refitting it on load
        reproduces it exactly."""
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1)
        rf.fit(train["proxy"], train["D"])
        return rf

    # -- online -------------------------------------------------------------------------------------

    def task_vector(self, proxy: np.ndarray) -> np.ndarray:
        """``d_t = RF(g_t)`` (equation 6) for one proxy vector [G] or several [n, G]."""
        self._check_fitted()
        g = np.asarray(proxy, dtype=np.float64)
        one = g.ndim == 1
        g = g[None] if one else g
        if g.shape[1] != self.train_["proxy"].shape[1]:
            raise InputError(f"fennec: proxy vectors have {g.shape[1]} values, the model was fitted on "
                             f"{self.train_['proxy'].shape[1]} (use the same proxy encoder)")
        d = np.maximum(self.rf_.predict(g).reshape(len(g), -1), 0.0)
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
            self._model_part = self.meta_.model_part(self.train_["model_features"])
        return self._model_part + self.meta_.task_part(self.train_["model_features"], ft)[0]

    def predict(self, proxy: np.ndarray | None, task_features: np.ndarray | None) -> np.ndarray:
        """Scores ``s_i`` (equation 10) of every model of ``models_`` for a task with proxy vector ``proxy`` [G]
        (:func:`summarize_proxy`) and task meta features ``task_features`` [T] (:func:`.meta.task_features`),
        higher = better; needs no labels. A phase left out (``use_transfer`` / ``use_meta`` False) does not read
        its argument, which may then be None."""
        self._check_fitted()
        if not self.use_meta:
            return self.transfer_scores(proxy)
        if not self.use_transfer:
            return self.meta_scores(task_features)
        return (1 - self.alpha) * self.transfer_scores(proxy) + self.alpha * self.meta_scores(task_features)

    def score(self, task: TaskEvidence) -> np.ndarray:
        """:meth:`predict` from the task's evidence: its ``proxy`` vector (transfer phase) and its ``n_classes``
        and ``n_samples`` (meta phase)."""
        self._check_fitted()
        proxy = task.require("proxy", "fennec") if self.use_transfer else None
        counts = meta.task_features([task.require("n_classes", "fennec")],
                                    [task.require("n_samples", "fennec")])[0] if self.use_meta else None
        return self.predict(proxy, counts)

    def explain(self, proxy: np.ndarray, task_features: np.ndarray, top: int = 5) -> dict[str, Any]:
        """What drove a ranking: the task vector, the historical tasks nearest to it in the transfer space,
        and for the top models their transfer and meta scores and the latent factor contributing most."""
        d = self.task_vector(proxy)
        trans = self.nmf_.M @ d
        metas = self.meta_scores(task_features)
        s = self.predict(proxy, task_features)
        D = self.nmf_.D
        cos = (D @ d) / np.maximum(np.linalg.norm(D, axis=1) * np.linalg.norm(d), 1e-12)
        near = best_first(cos, 3)
        order = best_first(s, top)
        return {
            "task_vector": d.tolist(),
            "nearest_historical_tasks": [(self.tasks_[j], float(cos[j])) for j in near],
            "top_models": [{"model": self.models_[i], "score": float(s[i]), "transfer": float(trans[i]),
                            "meta": float(metas[i]),
                            "main_factor": int(np.argmax(self.nmf_.M[i] * d))} for i in order],
            "nmf": {"k": self.k, "iterations": self.nmf_.n_iter, "converged": self.nmf_.converged,
                    "loss": self.nmf_.loss},
        }

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.npz`` with the arrays and a JSON header; no pickle)."""
        self._check_fitted()
        header = {"format": FORMAT, "params": self.get_params(), "models": self.models_,
                  "tasks": self.tasks_, "nmf": {"n_iter": self.nmf_.n_iter, "converged": self.nmf_.converged,
                                               "losses": self.nmf_.losses[-5:]}}
        arrays = {f"train_{k}": v for k, v in self.train_.items()}
        arrays.update(M=self.nmf_.M, meta_coef=self.meta_.coef_, meta_mean=self.meta_.mean_,
                      meta_scale=self.meta_.scale_)
        return write_npz(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Fennec:
        """Read a model written by :meth:`save` (the random forest is refitted from the stored pairs)."""
        header, arrays = read_npz(path, "fennec", "a saved Fennec model", FORMAT)
        obj = cls(**header["params"])
        obj.models_, obj.tasks_ = header["models"], header["tasks"]
        obj.train_ = {k[len("train_"):]: v for k, v in arrays.items() if k.startswith("train_")}
        obj.nmf_ = nmf.NMFResult(arrays["M"], obj.train_["D"], header["nmf"]["n_iter"], header["nmf"]["converged"],
                                 header["nmf"]["losses"])
        obj.meta_ = MetaRegressor(coef_=arrays["meta_coef"], mean_=arrays["meta_mean"], scale_=arrays["meta_scale"])
        obj.rf_ = obj._fit_rf(obj.train_)
        return obj
