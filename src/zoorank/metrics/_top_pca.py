"""Exact PCA scores of the top-k components (``PCA(k, svd_solver='full')`` semantics).

Shared by GBC (always) and PARC (``pca="exact"``). The principal directions of the centred
features Xc are the eigenvectors of the smaller Gram matrix (XcᵀXc [D×D] when D ≤ N, else
XcXcᵀ [N×N] with v = Xcᵀu/√λ), so only the top-k eigenpairs of that matrix are computed
(LAPACK MRRR on an index subset) instead of the full SVD of Xc that sklearn runs. The scores
Xc·V equal sklearn's U·S; component signs follow sklearn's ``svd_flip(u_based_decision=False)``
(the largest-magnitude loading of every component is positive).

The eigensolver runs with one BLAS thread (see ``_blas``): its tridiagonal reduction is
memory-bound level-2 work that threading barely speeds up on 2 cores and slows down badly
when the cores are busy; the Gram GEMM keeps the caller's threads.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from zoorank.errors import InputError
from zoorank.metrics import _blas
from zoorank.metrics._spectral import gram


def _top_eigh(A: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of a symmetric matrix, in descending order."""
    m = A.shape[0]
    for kwargs in ({"subset_by_index": [m - k, m - 1], "driver": "evr"}, {"driver": "evd"}):
        try:
            with _blas.single_thread():  # LAPACK's tridiagonal reduction threads badly
                lam, vecs = linalg.eigh(A, check_finite=False, **kwargs)
        except (linalg.LinAlgError, ValueError):
            continue
        return lam[::-1][:k], vecs[:, ::-1][:, :k]
    raise InputError(f"{metric}: the PCA eigendecomposition did not converge")


def top_pca_scores(X: np.ndarray, k: int, metric: str) -> np.ndarray:
    """PCA scores [N, k] of the float64 features ``X`` [N, D]; requires k ≤ min(N, D).

    Numerically null components (Gram eigenvalue ≤ λ_max·max(N, D)·eps, e.g. beyond the rank
    of duplicated or low-rank features) get exactly zero scores: their directions are
    arbitrary and their scores pure rounding noise in any solver (here ~√eps·σ_max, because a
    Gram eigenvalue carries an absolute error ~eps·λ_max).
    """
    Xc = X - X.mean(axis=0)
    G, feature_side = gram(Xc)
    lam, vecs = _top_eigh(G, k, metric)
    lam = np.where(lam > max(lam[0], 0.0) * max(X.shape) * np.finfo(np.float64).eps, lam, 0.0)
    if feature_side:
        V = vecs
    else:
        root = np.sqrt(np.maximum(lam, 0.0))
        V = np.divide(Xc.T @ vecs, root, out=np.zeros((X.shape[1], k)), where=root > 0)
    biggest = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[biggest, np.arange(k)])
    signs[signs == 0] = 1.0
    if feature_side:
        return Xc @ (V * (signs * (lam > 0)))
    return vecs * (root * signs)
