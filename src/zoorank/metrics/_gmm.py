"""Full-covariance Gaussian-mixture EM that exploits low-rank components (private; used by N-LEEP).

It fits the same model as ``sklearn.mixture.GaussianMixture(covariance_type="full",
init_params="kmeans", n_init=1)`` with the same k-means initialisation, M-step formulas, E-step and
stopping rule, but represents every component's covariance by an eigen-decomposition instead of a
dense Cholesky factor.

Model. Component k has responsibilities r_ik, n_k = Σ_i r_ik + 10·eps, weight π_k = n_k / Σ n_k
(n_k / N at initialisation, as sklearn), mean μ_k = Σ_i r_ik x_i / n_k and covariance

    Σ_k = B_kᵀ B_k + reg·I,   B_k = rows √(r_ik / n_k) · (x_i − μ_k)   (m_k × d)

where the rows run over the m_k samples that carry responsibility for k (its *support*). With the
thin SVD B_k = W S Vᵀ (V: d × r_k orthonormal, r_k = min(m_k, d)):

    Σ_k = V (S² + reg) Vᵀ + reg (I − V Vᵀ)                              (exact)
    log det Σ_k = Σ_j log(s_j² + reg) + (d − r_k) · log reg
    (x−μ)ᵀ Σ_k⁻¹ (x−μ) = Σ_j p_j² / (s_j² + reg) + (‖x−μ‖² − Σ_j p_j²) / reg,   p = Vᵀ(x−μ)

(the last term only when r_k < d; when m_k ≥ d the basis spans R^d and this *is* the plain
full-covariance computation). With ~10 samples per component in ~200 dimensions, r_k ≈ 10, so the
E-step costs N·d·Σ_k r_k ≈ N²·d flops instead of N·d²·K, and the M-step a small SVD per component
instead of a d × d covariance and Cholesky. The SVD is taken of B_k itself (not of its Gram matrix;
of its d × d QR factor R when m_k > d, which has the same s and V), so V is orthonormal to machine
precision even for singular values far below √reg, and no component can fail to be positive
definite (every variance is ≥ reg). Components with equal support size are batched into one
stacked SVD call.

Sparse responsibilities. After each E-step, responsibilities below ``resp_tol`` (default 1e-12)
times the largest responsibility of their sample are dropped from the next M-step (they still
count in the log-likelihood and in the returned posterior, which are computed densely). This is
not bit-exact but nearly: a dropped r_ik < 1e-12 changes n_k by < 1e-12 and μ_k, Σ_k by
< 1e-12·(x_i − μ_k)(x_i − μ_k)ᵀ/n_k, and a sample that close in likelihood (within log 1e12 ≈ 28
nats of its best component) is near component k, so the perturbation is ~1e-12 relative. Measured
against ``resp_tol=0`` (every non-zero responsibility kept, the literal algorithm): posteriors
within 1e-11 after 15-17 soft EM iterations, identical in the low-rank regime — where non-member
responsibilities are exp(−‖residual‖²/(2·reg)) ≈ exp(−10⁶) and underflow to exactly 0 anyway.

Numerics: float64 throughout; ‖x − μ‖² is taken from ‖x‖² − 2xᵀμ + ‖μ‖² (absolute error ~eps·‖x‖²,
i.e. ~1e-6 in a Mahalanobis distance divided by reg = 1e-6 — negligible against the ~O(d) values
that decide responsibilities).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from zoorank.metrics import _blas

#: Default relative threshold below which a responsibility is dropped from the M-step.
RESP_TOL = 1e-12

#: Elements of one N × (block of basis columns) projection kept in memory at once (32 MB).
_BLOCK_ELEMENTS = 1 << 22

_EPS10 = 10.0 * np.finfo(np.float64).eps  # sklearn adds 10·eps to every n_k


@dataclass(frozen=True)
class Mixture:
    """A fitted mixture in eigen form (see the module docstring)."""

    log_weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    basis: np.ndarray  # (d, R): every component's orthonormal directions, concatenated
    starts: np.ndarray  # (K + 1,): component k owns basis columns starts[k]:starts[k+1]
    scale: np.ndarray  # (R,): 1/(s² + reg) − outside[k] for each basis column
    outside: np.ndarray  # (K,): 1/reg where the basis does not span R^d, else 0
    log_det: np.ndarray  # (K,): log det Σ_k


@dataclass(frozen=True)
class GMMResult:
    posterior: np.ndarray  # (N, K) float64 responsibilities of the final model
    n_iter: int
    converged: bool
    lower_bound: float  # mean log-likelihood at the last EM iteration


def kmeans_labels(X: np.ndarray, n_components: int, random_state) -> np.ndarray:
    """The k-means initialisation sklearn's GaussianMixture uses: ``KMeans(n_clusters=K,
    n_init=1, random_state=RandomState(seed))`` on the data as given (float32 stays float32).

    Runs with one BLAS thread (``_blas.single_thread``; sklearn's own Lloyd loop does the same):
    the k-means++ seeding makes K tiny matrix products, which two-threaded OpenBLAS ran up to 15x
    slower on a busy 2-core machine (0.5 s vs 7-18 s at N=5000, K=500). Same labels either way.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    rng = random_state
    if isinstance(random_state, (int, np.integer)):
        rng = np.random.RandomState(random_state)
    with warnings.catch_warnings():
        # "Number of distinct clusters found smaller than n_clusters" (duplicated samples):
        # the empty clusters become zero-weight components, exactly as in sklearn's mixture.
        warnings.simplefilter("ignore", ConvergenceWarning)
        with _blas.single_thread():
            km = KMeans(n_clusters=n_components, n_init=1, random_state=rng).fit(X)
    return km.labels_.astype(np.int64)


def _fit_components(
    X: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    n_components: int,
    reg_covar: float,
    *,
    initial: bool,
) -> Mixture:
    """M-step from sparse responsibilities (``cols`` sorted ascending)."""
    n, d = X.shape
    K = n_components
    nk = np.bincount(cols, weights=vals, minlength=K) + _EPS10
    R = sparse.csr_matrix((vals, (cols, rows)), shape=(K, n))
    means = np.asarray(R @ X) / nk[:, None]
    weights = nk / (n if initial else nk.sum())

    first = np.searchsorted(cols, np.arange(K + 1))  # support of k: first[k]:first[k+1]
    m = np.diff(first)
    r = np.minimum(m, d)
    starts = np.zeros(K + 1, dtype=np.int64)
    np.cumsum(r, out=starts[1:])
    basis = np.empty((d, int(starts[-1])))
    s2 = np.empty(int(starts[-1]))
    with _blas.single_thread():  # many small LAPACK calls: threads only synchronise
        for size in np.unique(m[m > 0]):
            group = np.flatnonzero(m == size)
            rank = min(int(size), d)
            per_chunk = max(1, _BLOCK_ELEMENTS // (int(size) * d))
            for lo in range(0, group.size, per_chunk):
                ks = group[lo : lo + per_chunk]
                pos = first[ks][:, None] + np.arange(size)  # (G, size) positions in rows/vals
                B = X[rows[pos]] - means[ks][:, None, :]  # (G, size, d)
                B *= np.sqrt(vals[pos] / nk[ks][:, None])[:, :, None]
                if size > d:  # tall: the same s and V from the d × d triangular factor
                    B = np.linalg.qr(B, mode="r")
                _, s, vt = np.linalg.svd(B, full_matrices=False)  # s (G, rank), vt (G, rank, d)
                where = (starts[ks][:, None] + np.arange(rank)).ravel()
                basis[:, where] = vt.reshape(-1, d).T
                s2[where] = (s * s).ravel()
    owner = np.repeat(np.arange(K), r)
    var = s2 + reg_covar
    outside = np.where(r < d, 1.0 / reg_covar, 0.0)
    log_det = np.bincount(owner, weights=np.log(var), minlength=K) + (d - r) * math.log(reg_covar)
    return Mixture(
        log_weights=np.log(weights),
        means=means,
        basis=basis,
        starts=starts,
        scale=1.0 / var - outside[owner],
        outside=outside,
        log_det=log_det,
    )


def weighted_log_prob(X: np.ndarray, mix: Mixture) -> np.ndarray:
    """log π_k + log N(x_i | μ_k, Σ_k) for every sample and component: (N, K)."""
    n, d = X.shape
    K = mix.means.shape[0]
    x2 = np.einsum("ij,ij->i", X, X)
    mu2 = np.einsum("ij,ij->i", mix.means, mix.means)
    maha = X @ mix.means.T
    maha *= -2.0
    maha += x2[:, None]
    maha += mu2
    np.maximum(maha, 0.0, out=maha)  # ‖x − μ_k‖²
    maha *= mix.outside
    owner = np.repeat(np.arange(K), np.diff(mix.starts))
    mu_proj = np.einsum("jd,dj->j", mix.means[owner], mix.basis)  # μ_kᵀ v_j per column
    cols_per_block = max(1, _BLOCK_ELEMENTS // n)
    k0 = 0
    while k0 < K:
        k1 = int(np.searchsorted(mix.starts, mix.starts[k0] + cols_per_block, side="right")) - 1
        k1 = min(max(k1, k0 + 1), K)
        c0, c1 = int(mix.starts[k0]), int(mix.starts[k1])
        if c1 > c0:
            P = X @ mix.basis[:, c0:c1]
            P -= mu_proj[c0:c1]
            P *= P
            P *= mix.scale[c0:c1]
            ks = k0 + np.flatnonzero(np.diff(mix.starts[k0 : k1 + 1]) > 0)
            maha[:, ks] += np.add.reduceat(P, mix.starts[ks] - c0, axis=1)
        k0 = k1
    out = maha
    out += d * math.log(2.0 * math.pi)
    out += mix.log_det
    out *= -0.5
    out += mix.log_weights
    return out


def _log_normaliser(logp: np.ndarray) -> np.ndarray:
    """Row-wise log Σ_k exp(logp[i, k]) (every row has a finite entry)."""
    top = logp.max(axis=1)
    work = logp - top[:, None]
    np.exp(work, out=work)
    return np.log(work.sum(axis=1)) + top


def _sparse_responsibilities(logp: np.ndarray, norm: np.ndarray, resp_tol: float):
    """(rows, cols sorted ascending, values) of the responsibilities kept for the M-step."""
    if resp_tol > 0.0:
        keep = logp >= (logp.max(axis=1) + math.log(resp_tol))[:, None]
    else:
        keep = np.isfinite(logp)
    cols, rows = np.nonzero(keep.T)
    vals = np.exp(logp[rows, cols] - norm[rows])
    return rows, cols, vals


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def fit_full_gmm(
    X: np.ndarray,
    n_components: int,
    *,
    random_state=None,
    reg_covar: float = 1e-6,
    tol: float = 1e-3,
    max_iter: int = 100,
    resp_tol: float = RESP_TOL,
    init_labels: np.ndarray | None = None,
) -> GMMResult:
    """EM for a full-covariance Gaussian mixture; returns the final posterior p(k | x_i).

    ``X`` [N, d] is used as given for the k-means initialisation (pass float32 to reproduce a
    sklearn mixture fitted on float32 data) and in float64 for EM. Iterates E-step, M-step until
    the change of the mean log-likelihood is below ``tol`` or ``max_iter`` steps, then returns
    the responsibilities of one more E-step — sklearn's ``fit(X).predict_proba(X)``.

    Shortcut: when an E-step returns exactly the responsibilities the current parameters were
    fitted from (typical: k-means labels that are already the posterior's hard assignment), the
    M-step would reproduce the same parameters and every later E-step the same numbers, so the
    next iteration's change is 0 and the final posterior is this E-step's — the loop ends without
    recomputing them (same n_iter and convergence flag as the full loop). Exact, except that
    after the k-means initialisation sklearn's first M-step divides the weights by Σn_k instead
    of N: a factor 1 + O(K·1e-15) common to all components, which cancels in the posterior.
    """
    n = X.shape[0]
    labels = kmeans_labels(X, n_components, random_state) if init_labels is None else init_labels
    X = np.ascontiguousarray(X, dtype=np.float64)
    order = np.argsort(labels, kind="stable")
    resp = (order, labels[order], np.ones(n))
    mix = _fit_components(X, *resp, n_components, reg_covar, initial=True)
    lower_bound, converged, n_iter = -np.inf, False, 0
    logp = None
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        logp = weighted_log_prob(X, mix)
        norm = _log_normaliser(logp)
        lower_bound = float(norm.mean())
        new_resp = _sparse_responsibilities(logp, norm, resp_tol)
        if _same(new_resp, resp):  # fixed point: parameters (and all later E-steps) unchanged
            if abs(lower_bound - previous) < tol:
                converged = True
            elif n_iter < max_iter:
                n_iter += 1  # the next iteration sees change 0 and stops
                converged = True
            break
        resp = new_resp
        mix = _fit_components(X, *resp, n_components, reg_covar, initial=False)
        logp = None
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    if logp is None:
        logp = weighted_log_prob(X, mix)
        norm = _log_normaliser(logp)
    logp -= norm[:, None]
    np.exp(logp, out=logp)
    return GMMResult(posterior=logp, n_iter=n_iter, converged=converged, lower_bound=lower_bound)
