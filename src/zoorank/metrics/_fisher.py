"""Shared regularised-LDA machinery of the Fisher-discriminant family (SFDA, ETran, PED, FDA).

Everything here works on float64 arrays that the public metrics have already validated.

The model (TencentARC/SFDA ``SFDA`` class, reused by ETran, PED and Fennec's FDA):

- priors π_c = n_c / N, class means μ_c;
- within-class scatter Sw = Σ_c π_c · cov_c, with ``np.cov(bias=1)`` (1/n_c) class covariances,
  i.e. Sw = Xcᵀ Xc / N where Xc = X − μ_{y} (every row minus its class mean);
- adaptive shrinkage λ = max(exp(−5·λmax), 1e-10), where λmax is the *3-step power-iteration
  estimate* of Sw's top eigenvalue (start vector Sw·1, two normalised half steps per iteration,
  result xᵀ·Sw·y with the two last unit vectors) — exactly ``utils.iterative_A(Sw, 3)``;
- shrunk_Sw = (1−λ)·Sw + λ·(tr Sw / D)·I;
- St = (1−λ)·cov(X, bias=1) + λ·(tr cov / D)·I and Sb = St − shrunk_Sw, which equals
  (1−λ)·B + λ·(tr B / D)·I with B = Σ_c π_c (μ_c − μ)(μ_c − μ)ᵀ (since cov = Sw + B);
- Bayes posterior p(c|x) = softmax_c(xᵀ·coef_c + b_c) with coef = means·V·Vᵀ and
  b_c = −½·μ_cᵀ·coef_c + log π_c.

Exact shortcuts used here (all documented in the metrics that use them):

1. *All D generalised eigenvectors kept.* ``scipy.linalg.eigh(Sb, shrunk_Sw)`` returns V with
   Vᵀ·shrunk_Sw·V = I. V is square and invertible, so shrunk_Sw = V⁻ᵀV⁻¹ and V·Vᵀ = shrunk_Sw⁻¹:
   coef = means·shrunk_Sw⁻¹, one Cholesky solve. Sb never matters (and is never formed).
2. *Translation.* For any fixed point g, replacing x → x − g and μ_c → μ_c − g changes every
   logit of a sample by the same amount (−xᵀS⁻¹g + ½gᵀS⁻¹g), so the posterior is unchanged. We
   always work with features centred at their global mean, which avoids cancellation between
   large logits (e.g. for features with a large common offset).
3. *D > N.* Every vector the model touches (centred samples, class means, their differences and
   ConfMix mixtures) lies in the row space of the centred data. With Q (D×N, orthonormal) from a
   QR of the centred data's transpose, shrunk_Sw maps span(Q) to itself, so the whole fit can run
   on the N×N coordinates Z = (X − g)·Q with the *nominal* D kept for tr(Sw)/D and the power
   iteration started from Qᵀ·(Sw·1) = Sw_Z·(Qᵀ1). This is exact, not an approximation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from zoorank.errors import InputError
from zoorank.metrics._spectral import class_sums

#: Lower bound of the adaptive shrinkage, ``max(exp(-5 λmax), 1e-10)`` upstream.
SHRINKAGE_FLOOR = 1e-10
#: Power iterations used for λmax (``iterative_A(Sw, max_iterations=3)`` upstream).
POWER_ITERATIONS = 3


# ----------------------------------------------------------------------------------------------
# Working coordinates
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """Centred (and, when D > N, exactly reduced) coordinates of a feature matrix."""

    Z: np.ndarray  # [N, r] centred coordinates; r = D, or N when reduced
    y: np.ndarray  # [N] labels of the rows of Z
    ones: np.ndarray  # [r] the all-ones vector of R^D in these coordinates (power-iteration start)
    dim: int  # nominal feature dimension D (used in tr(Sw)/D)
    offset: np.ndarray  # [D] the global mean that was subtracted
    basis: np.ndarray | None  # [D, r] orthonormal basis when reduced, else None

    def lift(self, V: np.ndarray) -> np.ndarray:
        """Directions given in working coordinates, expressed in R^D."""
        return V if self.basis is None else self.basis @ V


def workspace(
    X: np.ndarray, y: np.ndarray, *, reduce: bool | None = None, overwrite: bool = False
) -> Workspace:
    """Centre ``X`` [N, D] at its mean. When D > N (or ``reduce=True``) switch to the exact
    N-dimensional coordinates of shortcut 3. ``X`` is modified (centred in place) only when
    ``overwrite=True`` — for arrays the metric owns, e.g. a float64 cast of float32 input — which
    saves an N×D copy."""
    N, D = X.shape
    offset = X.mean(axis=0)
    if overwrite:
        Z = X
        Z -= offset
    else:
        Z = X - offset
    if reduce is None:
        reduce = D > N
    if not reduce:
        return Workspace(Z=Z, y=y, ones=np.ones(D), dim=D, offset=offset, basis=None)
    Q, R = np.linalg.qr(Z.T)  # Z.T = Q R, Q: D×min(N, D)
    return Workspace(Z=np.ascontiguousarray(R.T), y=y, ones=Q.sum(axis=0), dim=D, offset=offset,
                     basis=Q)


def owns(X: np.ndarray, original) -> bool:
    """True when the validated array ``X`` is a private, writable copy: not a view of the caller's input
    (an ndarray, a torch tensor, a DataFrame or any buffer ``np.asarray`` can view without copying)."""
    if not X.flags.writeable:
        return False
    try:
        source = np.asarray(original)
    except Exception:
        return False
    return not np.shares_memory(X, source)


# ----------------------------------------------------------------------------------------------
# Class statistics and scatter matrices
# ----------------------------------------------------------------------------------------------


def class_means(Z: np.ndarray, y: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray]:
    """``(counts [C] float, means [C, r])``."""
    counts = np.bincount(y, minlength=C).astype(np.float64)
    return counts, class_sums(Z, y, C) / counts[:, None]


#: Rows per block in the blocked N×D passes (about 4 M float64 = 32 MB per block).
BLOCK_ELEMENTS = 1 << 22


def row_blocks(N: int, D: int):
    """Row slices covering 0..N-1 in blocks of about ``BLOCK_ELEMENTS`` elements."""
    step = max(256, BLOCK_ELEMENTS // max(D, 1))
    for start in range(0, N, step):
        yield slice(start, min(start + step, N))


def within_scatter(Z: np.ndarray, y: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Sw = Σ_c π_c·cov_c (bias=1) = Xcᵀ·Xc / N, Xc = Z − means[y]. Exactly symmetric.

    Accumulated over row blocks, so no N×D temporary is ever allocated.
    """
    N, D = Z.shape
    Sw = np.zeros((D, D))
    buf = np.empty((min(N, max(256, BLOCK_ELEMENTS // max(D, 1))), D))
    for rows in row_blocks(N, D):
        Xc = buf[: rows.stop - rows.start]
        np.take(means, y[rows], axis=0, out=Xc, mode="clip")  # 'clip': no buffering; y valid
        np.subtract(Z[rows], Xc, out=Xc)
        Sw += Xc.T @ Xc
    Sw /= N
    return Sw


def between_scatter(means: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """B = Σ_c π_c (μ_c − μ)(μ_c − μ)ᵀ with μ = Σ_c π_c μ_c (so cov(X, bias=1) = Sw + B)."""
    Mc = means - priors @ means
    return (Mc * priors[:, None]).T @ Mc


def total_scatter(Z: np.ndarray, lam: float, dim: int | None = None) -> np.ndarray:
    """SFDA's St = (1−λ)·cov(Z, bias=1) + λ·(tr cov / D)·I (``_cov(X, shrinkage=λ)`` upstream)."""
    Zc = Z - Z.mean(axis=0)
    cov = Zc.T @ Zc / Z.shape[0]
    return shrink(cov, lam, dim)


def sfda_between_scatter(St: np.ndarray, shrunk_Sw: np.ndarray) -> np.ndarray:
    """SFDA's Sb = St − shrunk_Sw (= (1−λ)·B + λ·(tr B / D)·I)."""
    return St - shrunk_Sw


def shrink(S: np.ndarray, lam: float, dim: int | None = None, *, out: np.ndarray | None = None):
    """(1−λ)·S + λ·(tr S / D)·I, D = ``dim`` (the nominal dimension; defaults to S's size)."""
    r = S.shape[0]
    mu = np.trace(S) / (r if dim is None else dim)
    T = np.multiply(S, 1.0 - lam, out=out)
    T.flat[:: r + 1] += lam * mu
    return T


def power_top_eigenvalue(S: np.ndarray, start: np.ndarray, iterations: int = POWER_ITERATIONS):
    """``utils.iterative_A``: x = S·start; repeat: y = Sx/‖Sx‖, x = Sy/‖Sy‖; return xᵀ·S·y.

    Degenerate rule (upstream returns NaN): if S·start is exactly 0 (start in S's null space),
    start from the column of S with the largest diagonal entry instead; for a PSD S ≠ 0 every
    later iterate lies in S's range, so no other step can hit 0. S = 0 gives 0.
    """
    x = S @ start
    if not np.any(x):
        k = int(np.argmax(np.diag(S)))
        x = S[:, k].copy()
        if not np.any(x):
            return 0.0
    y = x
    for _ in range(iterations):
        t = S @ x
        y = t / np.linalg.norm(t)
        t = S @ y
        x = t / np.linalg.norm(t)
    return float(x @ (S @ y))


def adaptive_shrinkage(Sw: np.ndarray, start: np.ndarray) -> float:
    """λ = max(exp(−5·λmax), 1e-10) with λmax from :func:`power_top_eigenvalue`."""
    lam_max = power_top_eigenvalue(Sw, start)
    return float(max(np.exp(-5.0 * lam_max), SHRINKAGE_FLOOR))


# ----------------------------------------------------------------------------------------------
# The regularised LDA classifier
# ----------------------------------------------------------------------------------------------


class SPDFactor:
    """A factor F of a symmetric positive-definite S = F·Fᵀ (Cholesky; S is overwritten).

    ``floor`` is a known lower bound of S's spectrum (λ·tr(Sw)/D for shrunk_Sw). If rounding makes
    the Cholesky factorisation fail, fall back to F = Q·diag(√w) from an eigendecomposition with
    the eigenvalues w clipped at ``floor`` (S's spectrum in exact arithmetic). ``floor=0`` means no
    such bound is known: a failing factorisation raises ``LinAlgError``.
    """

    def __init__(self, S: np.ndarray, floor: float = 0.0):
        self._chol = None
        self._eig = None
        try:
            self._chol = linalg.cholesky(S, lower=True, overwrite_a=True, check_finite=False)
        except linalg.LinAlgError:
            if not floor > 0:
                raise
            w, Q = np.linalg.eigh(S)
            self._eig = (Q, np.sqrt(np.maximum(w, floor)))

    def solve(self, B: np.ndarray) -> np.ndarray:
        """S⁻¹·B."""
        return self.solve_upper(self.solve_lower(B))

    def solve_lower(self, B: np.ndarray) -> np.ndarray:
        """F⁻¹·B."""
        if self._chol is not None:
            return linalg.solve_triangular(self._chol, B, lower=True, check_finite=False)
        Q, s = self._eig
        return (Q.T @ B) / s[:, None]

    def solve_upper(self, B: np.ndarray) -> np.ndarray:
        """F⁻ᵀ·B."""
        if self._chol is not None:
            return linalg.solve_triangular(self._chol, B, lower=True, trans="T",
                                           check_finite=False)
        Q, s = self._eig
        return Q @ (B / s[:, None])


@dataclass(frozen=True)
class RegularizedLDA:
    """A fitted shrunk-covariance LDA in working coordinates: logits = Z·coef + intercept."""

    lam: float  # shrinkage λ
    priors: np.ndarray  # [C]
    means: np.ndarray  # [C, r] class means (working coordinates)
    coef: np.ndarray  # [r, C] = shrunk_Sw⁻¹·meansᵀ
    intercept: np.ndarray  # [C] = −½·diag(means·coef) + log π

    def logits(self, Z: np.ndarray) -> np.ndarray:
        return Z @ self.coef + self.intercept

    def posterior(self, Z: np.ndarray) -> np.ndarray:
        return softmax(self.logits(Z))


@dataclass(frozen=True)
class ShrunkWithin:
    """Class statistics plus the factorised shrunk within-class scatter of one fit."""

    lam: float  # shrinkage λ
    priors: np.ndarray  # [C]
    means: np.ndarray  # [C, r] class means
    center: np.ndarray  # [r] global mean Σ_c π_c μ_c
    factor: SPDFactor  # shrunk_Sw = F·Fᵀ


def shrunk_within(
    Z: np.ndarray,
    y: np.ndarray,
    C: int,
    *,
    dim: int,
    start: np.ndarray,
    shrinkage: float | None = None,
    metric: str = "lda",
) -> ShrunkWithin:
    """Priors, means, λ and the factor of shrunk_Sw = (1−λ)·Sw + λ·(tr Sw / D)·I.

    ``shrinkage=None`` → adaptive λ; otherwise the given λ (0 ≤ λ ≤ 1). ``start`` is the power
    iteration's start direction (the all-ones vector of R^D in working coordinates), ``dim`` the
    nominal D. Raises InputError when Sw = 0 or overflows, when λ is outside [0, 1], or when
    λ = 0 is requested and Sw is singular.
    """
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise InputError(f"{metric}: shrinkage must be None (adaptive) or in [0, 1], "
                         f"got {shrinkage}")
    N = Z.shape[0]
    counts, means = class_means(Z, y, C)
    priors = counts / N
    Sw = within_scatter(Z, y, means)
    if not np.isfinite(Sw).all():
        raise InputError(f"{metric}: the within-class scatter overflows float64; the features "
                         "are too large in magnitude (rescale them)")
    lam = adaptive_shrinkage(Sw, start) if shrinkage is None else float(shrinkage)
    mu = np.trace(Sw) / dim
    if not mu > 0.0:
        raise InputError(
            f"{metric}: the within-class scatter is zero (every sample equals its class mean, "
            "e.g. constant or duplicated features), so the discriminant is undefined"
        )
    S = shrink(Sw, lam, dim, out=Sw)
    try:
        factor = SPDFactor(S, lam * mu)
    except (linalg.LinAlgError, np.linalg.LinAlgError):
        if lam * mu > 0:
            raise InputError(f"{metric}: the shrunk within-class scatter could not be "
                             "factorised; the features are too degenerate") from None
        raise InputError(
            f"{metric}: the within-class scatter is singular and shrinkage={shrinkage} leaves it "
            "singular; use the adaptive shrinkage (shrinkage=None)"
        ) from None
    return ShrunkWithin(lam=lam, priors=priors, means=means, center=priors @ means, factor=factor)


def fit_lda(Z: np.ndarray, y: np.ndarray, C: int, **kwargs) -> RegularizedLDA:
    """Fit SFDA's regularised LDA on working coordinates ``Z`` [N, r] (not modified).

    Keyword arguments as :func:`shrunk_within`. coef = S⁻¹·(μ_c − g) with g the mean of Z
    (shortcuts 1 and 2); the intercept absorbs the origin, so logits(Z) equal upstream's up to a
    per-sample constant. Z should be roughly centred (it is, in every caller) to avoid
    cancellation.
    """
    sw = shrunk_within(Z, y, C, **kwargs)
    Mg = sw.means - sw.center
    coef = sw.factor.solve(Mg.T)
    intercept = -0.5 * np.einsum("cd,dc->c", Mg, coef) + np.log(sw.priors) - sw.center @ coef
    return RegularizedLDA(lam=sw.lam, priors=sw.priors, means=sw.means, coef=coef,
                          intercept=intercept)


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def quiet(func):
    """Run ``func`` with numpy floating-point warnings off. Overflow/invalid values surface as
    non-finite results instead, which the metrics turn into InputError (``finite_score`` and
    the explicit checks here), so callers never see warning spam."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return wrapper


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax, stable (row max subtracted first)."""
    P = logits - logits.max(axis=1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=1, keepdims=True)
    return P


def true_class_mean(P: np.ndarray, y: np.ndarray) -> float:
    """mean_i P[i, y_i] (the 'leep without log' score of SFDA / ETran / NCTI)."""
    return float(np.mean(P[np.arange(y.shape[0]), y]))


def minmax_across_models(values, *, rtol: float = 1e-12) -> np.ndarray:
    """(v − min) / (max − min) across a pool of models.

    Tie rule (upstream divides by zero): when max − min ≤ rtol·max|v| (all models tie, or a pool of
    one), the component carries no ranking information and every model gets 0.
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    if not span > rtol * max(abs(lo), abs(hi)):
        return np.zeros_like(v)
    return (v - lo) / span
