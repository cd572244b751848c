"""Shared synthetic inputs and a uniform way to call any registered metric in tests."""

from __future__ import annotations

import numpy as np

from zoorank import metrics as M
from zoorank.metrics.synthetic import make_task


def case(n=300, d=72, c=4, *, separation=1.0, seed=0, effective_dim=32, n_source_classes=20):
    """(features float64 [n, d], labels, source_probs [n, Cs], general_features [G, d])."""
    t = make_task(n, d, c, effective_dim=effective_dim, separation=separation,
                  n_source_classes=n_source_classes, n_general=200, seed=seed)
    return t.features.astype(np.float64), t.labels, t.source_probs, t.general_features.astype(np.float64)


def call(name, X, y, P, G, **params):
    """Call metric ``name`` with the inputs it needs (``compute_available`` drops the others)."""
    return M.compute_available(name, X, y, source_probs=P, general_features=G, **params)


def relabel(y, perm):
    """Rename classes: class c becomes perm[c]."""
    return np.asarray(perm)[y]


def blobs(n, d, c, *, sep=1.0, seed=0, scale=1.0):
    """Gaussian class blobs: balanced labels, class centres N(0, sep²), unit isotropic noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    X = (rng.normal(size=(c, d))[y] * sep + rng.normal(size=(n, d))) * scale
    return X, y


def reference_shrinkage(Sw):
    """SFDA's adaptive shrinkage, restated literally from the reference (an oracle for the Fisher-family tests):
    λ = max(exp(−5·λmax), 1e-10), λmax from 3 power iterations started at Sw·1, as xᵀ·Sw·v."""
    x = Sw.sum(axis=1)
    for _ in range(3):
        t = Sw @ x
        v = t / np.linalg.norm(t)
        t = Sw @ v
        x = t / np.linalg.norm(t)
    return max(np.exp(-5 * (x @ Sw @ v)), 1e-10)
