"""Fennec's transfer phase: non-negative matrix factorisation of the historical model x task matrix.

Objective (Fennec, Bai et al. 2024, equation 4), with missing entries allowed through a 0/1 weight mask W::

    min_{M >= 0, D >= 0}  || W * (P - M D^T) ||_F^2 + alpha_m ||M||_F^2 + alpha_d ||D||_F^2

``P`` [n_models, n_tasks] >= 0 (FDA scores by default, or accuracies), ``M`` [n_models, k] model vectors,
``D`` [n_tasks, k] task vectors. Two solvers, both of which never increase the objective:

* ``"hals"`` (default): hierarchical alternating least squares (Cichocki & Phan 2009) with the mask, i.e. exact
  block coordinate descent over the latent columns. With ``R = W*(P - M D^T)`` and ``R_r = R + W*(m_r d_r^T)``::

      m_r <- max(0, (R_r d_r) / (W (d_r * d_r) + alpha_m)),   d_r <- max(0, (R_r^T m_r) / (W^T (m_r * m_r) + alpha_d))

  each the exact minimiser of the objective in that column with the others fixed;
* ``"mu"``: the regularised multiplicative updates of Lee & Seung (2000), the paper's reference [28]::

      M <- M * ((W*P) D) / ((W*(M D^T)) D + alpha_m M),   D <- D * ((W*P)^T M) / ((W*(M D^T))^T M + alpha_d D)

  which converge far more slowly (thousands of iterations where HALS needs tens to hundreds).

Iteration stops when the relative decrease of the objective over one iteration falls below ``tol`` (converged)
or after ``max_iter`` iterations (not converged: reported).

:func:`fold_in` places a new task in the same space from a few observed entries of its column (the cold start
of section 3.3 with a small probing budget): ``min_{d >= 0} ||p_obs - M_obs d||^2 + alpha_d ||d||^2``, a
non-negative least-squares problem (``scipy.optimize.nnls`` on the ridge-augmented system).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoorank.errors import InputError

EPS = 1e-12


@dataclass
class NMFResult:
    """Model vectors ``M`` [n_models, k], task vectors ``D`` [n_tasks, k] and the optimisation trace."""

    M: np.ndarray
    D: np.ndarray
    n_iter: int
    converged: bool
    losses: list[float] = field(default_factory=list)  # objective after each iteration

    @property
    def loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")

    def reconstruct(self) -> np.ndarray:
        return self.M @ self.D.T


def _check_matrix(P: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    P = np.array(P, dtype=np.float64)
    if P.ndim != 2 or min(P.shape) < 1:
        raise InputError(f"nmf: the matrix must be 2-D and non-empty, got shape {P.shape}")
    W = np.isfinite(P) if mask is None else np.asarray(mask, dtype=bool)
    if W.shape != P.shape:
        raise InputError(f"nmf: mask shape {W.shape} differs from the matrix shape {P.shape}")
    if not W.any():
        raise InputError("nmf: no observed entries")
    observed = P[W]
    if not np.isfinite(observed).all():
        raise InputError("nmf: observed entries contain NaN or inf (mask them as missing)")
    if (observed < 0).any():
        raise InputError(f"nmf: the matrix must be non-negative (min observed {observed.min():.4g}); shift or "
                         "rescale the scores first")
    P = np.where(W, P, 0.0)
    return P, W.astype(np.float64)


def _objective(P: np.ndarray, W: np.ndarray, M: np.ndarray, D: np.ndarray, am: float, ad: float) -> float:
    R = W * (P - M @ D.T)
    return float((R * R).sum() + am * (M * M).sum() + ad * (D * D).sum())


def _hals_sweep(WP: np.ndarray, W: np.ndarray, M: np.ndarray, D: np.ndarray, am: float, ad: float) -> None:
    """One HALS sweep over the latent columns, in place (module doc)."""
    R = WP - W * (M @ D.T)
    for r in range(M.shape[1]):
        R += W * np.outer(M[:, r], D[:, r])
        M[:, r] = np.maximum(0.0, (R @ D[:, r]) / np.maximum(W @ (D[:, r] ** 2) + am, EPS))
        D[:, r] = np.maximum(0.0, (R.T @ M[:, r]) / np.maximum(W.T @ (M[:, r] ** 2) + ad, EPS))
        R -= W * np.outer(M[:, r], D[:, r])


def _mu_step(WP: np.ndarray, W: np.ndarray, M: np.ndarray, D: np.ndarray, am: float, ad: float) -> None:
    """One multiplicative update of M then D, in place (module doc)."""
    M *= (WP @ D) / np.maximum((W * (M @ D.T)) @ D + am * M, EPS)
    D *= (WP.T @ M) / np.maximum((W * (M @ D.T)).T @ M + ad * D, EPS)


SOLVERS = {"hals": _hals_sweep, "mu": _mu_step}


def factorize(P: np.ndarray, k: int = 8, *, mask: np.ndarray | None = None, alpha_m: float = 1e-3,
              alpha_d: float = 1e-3, max_iter: int = 2000, tol: float = 1e-6, seed: int = 0,
              solver: str = "hals") -> NMFResult:
    """Factorise ``P`` ~= ``M @ D.T`` with non-negative factors (module doc). ``mask`` marks observed entries
    (default: the finite ones); missing entries do not enter the objective. Deterministic given ``seed``."""
    if solver not in SOLVERS:
        raise InputError(f"nmf: solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"nmf: k must be a positive integer, got {k!r}")
    if alpha_m < 0 or alpha_d < 0:
        raise InputError(f"nmf: alpha_m and alpha_d must be >= 0, got {alpha_m}, {alpha_d}")
    if max_iter < 1 or not tol >= 0:
        raise InputError(f"nmf: max_iter must be >= 1 and tol >= 0, got {max_iter}, {tol}")
    P, W = _check_matrix(P, mask)
    n, m = P.shape
    rng = np.random.default_rng(seed)
    scale = np.sqrt(max(P[W > 0].mean(), EPS) / k)
    M = scale * rng.uniform(0.5, 1.5, size=(n, k))
    D = scale * rng.uniform(0.5, 1.5, size=(m, k))
    WP = W * P
    losses = [_objective(P, W, M, D, alpha_m, alpha_d)]
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        SOLVERS[solver](WP, W, M, D, alpha_m, alpha_d)
        losses.append(_objective(P, W, M, D, alpha_m, alpha_d))
        prev = losses[-2]
        if prev - losses[-1] <= tol * max(prev, EPS):
            converged = True
            break
    return NMFResult(M, D, n_iter, converged, losses[1:])


def fold_in(M: np.ndarray, values: np.ndarray, rows: np.ndarray, *, alpha_d: float = 1e-3,
            d0: np.ndarray | None = None) -> np.ndarray:
    """A new task's vector from observed entries ``values`` at model ``rows``:
    ``argmin_{d >= 0} ||values - M[rows] d||^2 + alpha_d ||d - d0||^2`` (``d0``: a prior centre, e.g. the mean of
    the historical task vectors; default 0). With no observations: ``max(d0, 0)``."""
    from scipy.optimize import nnls

    M = np.asarray(M, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if rows.shape != values.shape or rows.ndim != 1:
        raise InputError(f"fold_in: rows and values must be 1-D of the same length, got {rows.shape}, {values.shape}")
    k = M.shape[1]
    centre = np.zeros(k) if d0 is None else np.asarray(d0, dtype=np.float64)
    if centre.shape != (k,) or not np.isfinite(centre).all():
        raise InputError(f"fold_in: d0 must be a finite vector of length {k}")
    if rows.size == 0:
        return np.maximum(centre, 0.0)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("fold_in: observed values must be finite and non-negative")
    A = np.vstack([M[rows], np.sqrt(alpha_d) * np.eye(k)])
    b = np.concatenate([values, np.sqrt(alpha_d) * centre])
    d, _ = nnls(A, b)
    return d
