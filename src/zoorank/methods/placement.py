r"""Where a model with no history sits: Fennec's meta phase as the prior of a cold model in the belief.

A model of the user's zoo that the knowledge base has no result of (a *cold* model) can still be described by
what is known without running it on any task: its size and its architecture (Fennec, Bai et al. 2024, section
3.3, the meta phase: parameter count, layer count, the architecture). This module turns that description into a
place in the Gaussian belief of :mod:`zoorank.methods.posterior`, and only as far as history shows it predicts.

**Meta features** (:func:`meta_matrix`). For each model: :math:`\log_{10}` of its parameter count, of its layer
count (a column only when every fitted model has one; a cold model without it sits at the fitted models' mean),
both standardised with the fitted models' statistics, and its architecture name as a one-hot scaled by
:math:`1/\sqrt 2`, so that two different architectures add exactly 1 to the squared distance and an
architecture no fitted model has is at distance 1 from all of them.

**Placement.** A cold model :math:`c` is a mixture of the fitted models plus a residual of its own::

    y_c = a_c^T y + r_c,   r_c ~ N(0, v),   a_ck = exp(-(d(f_c, f_k) / h)^2) / sum_l exp(-(d(f_c, f_l) / h)^2)

with :math:`d` the Euclidean distance of meta features and the bandwidth :math:`h` in units of the median
distance between fitted models. :math:`h = \infty` (``None``) gives :math:`a_c = 1/M`: the population draw of
:func:`~zoorank.methods.posterior.for_zoo` (with its own residual variance), so a zoo whose sizes and architectures
say nothing of accuracy keeps the population placement. The mixture keeps the belief's covariance: a cold model
that resembles a family moves with that family across tasks, and one measurement of it or of its family informs
the other.

**Calibration** (:meth:`ModelPlacement.fit`), leave one model out on the knowledge base's accuracies
:math:`A` [T, M]: each fitted model :math:`j` is placed from the others, :math:`\hat A_{tj} = \sum_{k \ne j}
a_{jk} A_{tk}` (missing entries skipped, the weights renormalised), and each bandwidth of the grid is scored by
the mean squared error :math:`\overline{(A_{tj} - \hat A_{tj})^2}`. A bandwidth may replace the population only when
it beats it by more than one standard error: with :math:`\delta_j` model j's error under the population minus its
error under h, :math:`\bar\delta - \mathrm{sd}(\delta)/\sqrt M > 0` (a grid of bandwidths tried on few models
beats the population by chance otherwise); among those, the smallest error wins, else ``None`` (always in the grid).
The winner's error is :math:`v` (floored at the belief's variance floor).

Deterministic: closed form, no random numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zoorank.errors import InputError

__all__ = ["PLACEMENT_BANDWIDTHS", "ModelPlacement", "meta_matrix"]

#: Bandwidths tried (units of the median distance between fitted models); None: the population draw.
PLACEMENT_BANDWIDTHS: tuple[float | None, ...] = (None, 0.25, 0.5, 1.0, 2.0)
_ARCH_SCALE = 1.0 / np.sqrt(2.0)


def _number(meta: Mapping[str, Any], key: str) -> float | None:
    v = meta.get(key)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) and x >= 1 else None


def meta_matrix(metas: Sequence[Mapping[str, Any]], *, stats: Mapping[str, Any] | None = None
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Meta features [n, F] of models described by ``{"params", "layers", "architecture"}`` (module doc), and the
    statistics that standardise them (from these models when ``stats`` is None: the fitted models)."""
    if stats is None:
        params = [_number(m, "params") for m in metas]
        if any(p is None for p in params):
            raise InputError("placement: every fitted model needs a parameter count")
        layers = [_number(m, "layers") for m in metas]
        cols = {"params": np.log10(np.array(params, dtype=np.float64))}
        if all(x is not None for x in layers):
            cols["layers"] = np.log10(np.array(layers, dtype=np.float64))
        stats = {"columns": list(cols), "mean": [float(c.mean()) for c in cols.values()],
                 "std": [float(c.std()) if c.std() > 0 else 1.0 for c in cols.values()],
                 "architectures": sorted({str(m["architecture"]) for m in metas if m.get("architecture")})}
    out = np.zeros((len(metas), len(stats["columns"]) + len(stats["architectures"])))
    for j, (col, mu, sd) in enumerate(zip(stats["columns"], stats["mean"], stats["std"], strict=True)):
        for i, m in enumerate(metas):
            x = _number(m, col)
            out[i, j] = 0.0 if x is None else (np.log10(x) - mu) / sd
    arch = {a: len(stats["columns"]) + k for k, a in enumerate(stats["architectures"])}
    for i, m in enumerate(metas):
        a = m.get("architecture")
        if a is not None and str(a) in arch:
            out[i, arch[str(a)]] = _ARCH_SCALE
    return out, dict(stats)


def _distances(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(((U[:, None, :] - V[None, :, :]) ** 2).sum(-1), 0.0, None))


def _mix(d: np.ndarray, h: float | None) -> np.ndarray:
    """Mixture weights over the last axis of distances ``d`` (module doc)."""
    if h is None:
        return np.full(d.shape, 1.0 / d.shape[-1])
    z = -((d / h) ** 2)
    w = np.exp(z - z.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


class ModelPlacement:
    """Fennec's meta phase as the prior of cold models (module doc). ``bandwidths``: the grid (must hold None);
    ``var_floor``: the smallest residual variance."""

    def __init__(self, bandwidths: Sequence[float | None] = PLACEMENT_BANDWIDTHS, var_floor: float = 0.005 ** 2):
        self.bandwidths = tuple(bandwidths)
        if None not in self.bandwidths or any(b is not None and not b > 0 for b in self.bandwidths):
            raise InputError("placement: bandwidths must hold None (the population) and positive numbers")
        self.var_floor = float(var_floor)

    def fit(self, metas: Sequence[Mapping[str, Any]], accuracies: np.ndarray) -> ModelPlacement:
        """Calibrate on the fitted models' meta features and their accuracies [T, M] (NaN = not measured)."""
        A = np.asarray(accuracies, dtype=np.float64)
        if A.ndim != 2 or A.shape[1] != len(metas) or len(metas) < 3:
            raise InputError(f"placement: accuracies must be [tasks, {len(metas)} models] with at least 3 models, "
                             f"got {A.shape}")
        self.features_, self.stats_ = meta_matrix(metas)
        D = _distances(self.features_, self.features_)
        off = D[~np.eye(len(D), dtype=bool)]
        self.scale_ = float(np.median(off)) if off.size and np.median(off) > 0 else 1.0
        ok = np.isfinite(A)
        A0 = np.where(ok, A, 0.0)
        self.errors_: dict[float | None, float] = {}
        per_model: dict[float | None, np.ndarray] = {}
        eye = np.eye(len(D), dtype=bool)
        for h in self.bandwidths:  # each model from the others: its own column is left out of its mixture
            W = np.where(eye, 0.0, 1.0 / (len(D) - 1)) if h is None else _mix(np.where(eye, np.inf, D),
                                                                            h * self.scale_)
            num, den = A0 @ W.T, ok.astype(np.float64) @ W.T  # [T, M]: sum_k a_jk A_tk over measured k
            pred = num / np.where(den > 0, den, 1.0)
            use = ok & (den > 0)
            sq = np.where(use, (A0 - pred) ** 2, 0.0)
            per_model[h] = sq.sum(0) / np.maximum(use.sum(0), 1)
            self.errors_[h] = float(sq.sum() / use.sum()) if use.any() else float("inf")
        M = len(D)

        def beats_population(h: float | None) -> bool:
            d = per_model[None] - per_model[h]
            return h is not None and float(d.mean() - d.std(ddof=1) / np.sqrt(M)) > 0.0

        better = [h for h in self.bandwidths if beats_population(h)]
        self.bandwidth_ = min(better, key=lambda h: (round(self.errors_[h], 12), -h)) if better else None
        self.variance_ = max(self.errors_[self.bandwidth_], self.var_floor)
        return self

    def weights(self, metas: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Mixture weights [n, M] over the fitted models of models described by ``metas``."""
        if not hasattr(self, "features_"):
            raise InputError("placement: not fitted")
        F, _ = meta_matrix(metas, stats=self.stats_)
        h = None if self.bandwidth_ is None else self.bandwidth_ * self.scale_
        return _mix(_distances(F, self.features_), h)

    @property
    def informative(self) -> bool:
        """Whether history says meta features place a model better than the population does."""
        return self.bandwidth_ is not None

    # -- persistence: a plain dict of JSON values -----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"bandwidths": list(self.bandwidths), "var_floor": self.var_floor, "stats": self.stats_,
                "features": self.features_.tolist(), "scale": self.scale_, "bandwidth": self.bandwidth_,
                "variance": self.variance_, "errors": [[h, e] for h, e in self.errors_.items()]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelPlacement:
        obj = cls(tuple(d["bandwidths"]), d["var_floor"])
        obj.stats_, obj.features_ = dict(d["stats"]), np.asarray(d["features"], dtype=np.float64)
        obj.scale_, obj.bandwidth_, obj.variance_ = float(d["scale"]), d["bandwidth"], float(d["variance"])
        obj.errors_ = {h: float(e) for h, e in d["errors"]}
        return obj
