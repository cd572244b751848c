"""Seeded synthetic features shaped like a real network's penultimate layer.

Used by the speed benchmark and by tests. The realistic size of the reference timings
(``../shared/conformance/REFERENCE_TIMINGS.md``) is N=5000, D=2048, C=100: post-ReLU-like features
with about 256 effective dimensions plus small isotropic noise, balanced classes, and source-head
probabilities over 1000 source classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticTask:
    features: np.ndarray  # float32 [N, D]
    labels: np.ndarray  # int64 [N], balanced 0..C-1
    source_probs: np.ndarray  # float64 [N, Cs], rows sum to 1
    general_features: np.ndarray  # float32 [G, D], a "general" distribution (PED)


def make_task(
    n: int = 5000,
    d: int = 2048,
    c: int = 100,
    *,
    effective_dim: int = 256,
    separation: float = 1.0,
    n_source_classes: int = 1000,
    n_general: int = 2000,
    seed: int = 0,
) -> SyntheticTask:
    """A seeded classification task: class clusters in a low-dimensional subspace, lifted to ``d``
    dimensions, passed through a ReLU, plus isotropic noise. ``separation`` scales the distance
    between class centres (0 = no class signal)."""
    rng = np.random.default_rng(seed)
    k = min(effective_dim, d)
    labels = np.arange(n) % c
    rng.shuffle(labels)
    centres = rng.normal(size=(c, k)) * separation
    latent = centres[labels] + rng.normal(size=(n, k))
    lift = rng.normal(size=(k, d)) / np.sqrt(k)
    feats = np.maximum(latent @ lift + 0.5, 0.0) + 0.05 * rng.normal(size=(n, d))
    general_latent = rng.normal(size=(n_general, k)) * (1.0 + separation)
    general = np.maximum(general_latent @ lift + 0.5, 0.0) + 0.05 * rng.normal(size=(n_general, d))
    src_w = rng.normal(size=(k, n_source_classes)) / np.sqrt(k)
    logits = 3.0 * (latent @ src_w)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return SyntheticTask(
        features=feats.astype(np.float32),
        labels=labels.astype(np.int64),
        source_probs=probs,
        general_features=general.astype(np.float32),
    )
