"""Fennec's meta phase: a linear regression from [model meta features, task meta features] to the score.

Equation 8 of Fennec (Bai et al. 2024): ``p_ij = LR([f_i^model, f_j^data])``, fitted on every observed
historical (model, task) pair; equation 9 scores a new task the same way, ``META_SCORE_it = LR([f_i, f_t])``.

Model meta features (:func:`model_features`): log10 parameter count, log10 layer count, then either the
archi2vec embedding, the one-hot archi2vec cluster, or a one-hot of the architecture family (the ablation of
Fennec's table 3). Task meta features (:func:`task_features`): log10 class count and log10 sample count.
Columns are standardised with the training statistics (constant columns left at 0); ordinary least squares
with a tiny ridge (``1e-6``) so collinear one-hot columns stay solvable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zoorank.errors import InputError


def _log10(x: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all() or (a < 1).any():
        raise InputError(f"meta features: {what} must be finite and >= 1")
    return np.log10(a)


def one_hot(values: Sequence[str], vocabulary: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """One-hot rows for ``values`` over ``vocabulary`` (default: the sorted distinct values); unknown values
    get an all-zero row."""
    vocab = sorted(set(values)) if vocabulary is None else list(vocabulary)
    index = {v: i for i, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)))
    for r, v in enumerate(values):
        if v in index:
            out[r, index[v]] = 1.0
    return out, vocab


def model_features(params: Sequence[float], layers: Sequence[float] | None = None,
                   extra: np.ndarray | None = None) -> np.ndarray:
    """[n_models, F]: log10 params, log10 layers (when given), then ``extra`` columns (archi2vec embedding,
    cluster one-hot or family one-hot)."""
    cols = [_log10(params, "parameter counts")[:, None]]
    if layers is not None:
        cols.append(_log10(layers, "layer counts")[:, None])
    if extra is not None:
        e = np.asarray(extra, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] != cols[0].shape[0]:
            raise InputError(f"meta features: extra must be [n_models, E], got {e.shape}")
        cols.append(e)
    return np.hstack(cols)


def task_features(n_classes: Sequence[float], n_samples: Sequence[float]) -> np.ndarray:
    """[n_tasks, 2]: log10 class count and log10 sample count."""
    return np.column_stack([_log10(n_classes, "class counts"), _log10(n_samples, "sample counts")])


@dataclass
class MetaRegressor:
    """``LR([f_model, f_task]) -> score`` (module doc). ``fit`` takes the feature tables and a score matrix
    [n_models, n_tasks] with NaN for missing entries."""

    ridge: float = 1e-6
    coef_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    @staticmethod
    def _pairs(fm: np.ndarray, ft: np.ndarray) -> np.ndarray:
        n, m = fm.shape[0], ft.shape[0]
        return np.hstack([np.repeat(fm, m, axis=0), np.tile(ft, (n, 1))])

    def fit(self, model_feats: np.ndarray, task_feats: np.ndarray, scores: np.ndarray) -> MetaRegressor:
        fm, ft, S = np.asarray(model_feats, float), np.asarray(task_feats, float), np.asarray(scores, float)
        if S.shape != (fm.shape[0], ft.shape[0]):
            raise InputError(f"meta regression: scores must be [{fm.shape[0]}, {ft.shape[0]}], got {S.shape}")
        X = self._pairs(fm, ft)
        y = S.ravel()
        keep = np.isfinite(y)
        if keep.sum() < 2:
            raise InputError("meta regression: needs at least 2 observed scores")
        X, y = X[keep], y[keep]
        self.mean_ = X.mean(0)
        sd = X.std(0)
        self.scale_ = np.where(sd > 1e-12, sd, np.inf)
        Z = np.hstack([np.ones((len(X), 1)), (X - self.mean_) / self.scale_])
        reg = self.ridge * np.eye(Z.shape[1])
        reg[0, 0] = 0.0
        self.coef_ = np.linalg.solve(Z.T @ Z + reg, Z.T @ y)
        return self

    def _parts(self, model_feats: np.ndarray, task_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The additive model and task terms of the (linear) prediction: ``predict = model[:, None] + task``."""
        if self.coef_ is None:
            raise InputError("meta regression: call fit first")
        fm, ft = np.atleast_2d(np.asarray(model_feats, float)), np.atleast_2d(np.asarray(task_feats, float))
        nf = fm.shape[1]
        if nf + ft.shape[1] != self.mean_.shape[0]:
            raise InputError(f"meta regression: fitted on {self.mean_.shape[0]} features, got {nf + ft.shape[1]}")
        w = self.coef_[1:]
        model = self.coef_[0] + ((fm - self.mean_[:nf]) / self.scale_[:nf]) @ w[:nf]
        task = ((ft - self.mean_[nf:]) / self.scale_[nf:]) @ w[nf:]
        return model, task

    def model_part(self, model_feats: np.ndarray) -> np.ndarray:
        """Intercept plus the model features' term, [n_models]: computed once, so that scoring a new task
        costs one addition per model."""
        fm = np.atleast_2d(np.asarray(model_feats, float))
        if self.mean_ is None:
            raise InputError("meta regression: call fit first")
        return self._parts(fm, self.mean_[fm.shape[1]:][None, :])[0]

    def task_part(self, model_feats: np.ndarray, task_feats: np.ndarray) -> np.ndarray:
        """The task features' term, [n_tasks]."""
        return self._parts(np.atleast_2d(np.asarray(model_feats, float))[:1], task_feats)[1]

    def predict(self, model_feats: np.ndarray, task_feats: np.ndarray) -> np.ndarray:
        """[n_models, n_tasks] predicted scores."""
        model, task = self._parts(model_feats, task_feats)
        return model[:, None] + task[None, :]
