"""Source-head probabilities from logits."""

from __future__ import annotations

import numpy as np


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of ``logits`` [N, K] in float64 (max-shifted, so large logits do not overflow):
    the ``source_probs`` that LEEP, NCE and PACTran's Dirichlet/Gamma forms take."""
    z = np.array(logits, dtype=np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
