"""PARC — Pairwise Annotation Representation Comparison (Bolya et al., NeurIPS 2021)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _blas
from zoorank.metrics._registry import register
from zoorank.metrics._top_pca import top_pca_scores
from zoorank.metrics._validate import check_xy, finite_score

_PAPER = (
    "Bolya, Mittapalli, Hoffman: Scalable Diverse Model Selection for Accessible Transfer "
    "Learning, NeurIPS 2021"
)

#: Upstream ``feature_reduce``: ``PCA(f, svd_solver='randomized', random_state=1919,
#: iterated_power=1)``.
PCA_RANDOM_STATE = 1919
PCA_ITERATED_POWER = 1
#: rdm1 is rounded to multiples of 1/TIE_GRID (≈ 9e-13) before ranking.
TIE_GRID = float(2**40)
#: Elements per row block of the N×N correlation matrix (8 MiB of float64).
_BLOCK_ELEMENTS = 1 << 20


def reduce_features(X: np.ndarray, n_dims: int | None, pca: str) -> np.ndarray:
    """Upstream's PCA step (``n_dims=None`` skips it) followed by StandardScaler."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    N, D = X.shape
    # sklearn warns (0/0 in explained_variance_ratio_) on constant features; the scores are
    # still well defined (zeros), and degenerate rows are handled downstream.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_dims is not None:
            k = int(min(n_dims, *X.shape))
            if pca == "randomized":
                with _blas.single_thread():  # its small QR/LU steps thread badly
                    X = PCA(
                        n_components=k,
                        svd_solver="randomized",
                        random_state=PCA_RANDOM_STATE,
                        iterated_power=PCA_ITERATED_POWER,
                    ).fit_transform(X)
            else:
                X = top_pca_scores(X, k, "parc")
            # Numerically null components (beyond the rank of the features) hold rounding
            # noise that StandardScaler would blow up to unit variance: make them constant.
            std = X.std(axis=0)
            X[:, std <= std.max() * max(N, D) * np.finfo(np.float64).eps] = 0.0
        F = StandardScaler().fit_transform(X)
    if not np.isfinite(F).all():
        raise InputError("parc: the PCA / standardisation of the features is not finite")
    return F


def triangle_offsets(N: int, rows: np.ndarray) -> np.ndarray:
    """Position of pair (i, i+1) in the row-major strict upper triangle, for each i in rows."""
    return rows * (N - 1) - rows * (rows - 1) // 2


def sample_dissimilarity_triangle(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strict upper triangle (row-major, as ``rdm[np.triu_indices(N, 1)]``) of
    rdm1 = 1 − corrcoef(F) and of the same-class indicator, built in row blocks.

    Returns ``(v1 [M] float64, different_class [M] uint8)``, M = N(N−1)/2. Each sample row is
    centred and scaled to unit norm once, so a block of correlations is one GEMM; the N×N
    matrix is never materialised (peak extra memory: one block). The correlations equal
    ``np.corrcoef``'s up to a few ulps (clipped to [−1, 1] as numpy does).

    A sample whose row of F is constant has no defined correlation (numpy: 0/0 = NaN); we give it
    correlation 0, i.e. dissimilarity 1 to every other sample.
    """
    N = F.shape[0]
    U = F - F.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", U, U))
    constant = (np.ptp(F, axis=1) == 0) | (norms == 0)
    U = np.divide(U, norms[:, None], out=np.zeros_like(U), where=~constant[:, None])
    M = N * (N - 1) // 2
    v1 = np.empty(M)
    different = np.empty(M, dtype=np.uint8)
    step = max(1, _BLOCK_ELEMENTS // max(N, 1))
    for i0 in range(0, N - 1, step):  # row blocks of the triangle (a few dozen at N = 5000)
        i1 = min(N - 1, i0 + step)
        block = U[i0:i1] @ U[i0:].T  # correlations of rows i0..i1-1 with samples i0..N-1
        keep = np.triu(np.ones(block.shape, dtype=bool), 1)
        lo, hi = triangle_offsets(N, np.array([i0, i1]))
        np.clip(block, -1.0, 1.0, out=block)
        np.subtract(1.0, block, out=block)
        v1[lo:hi] = block[keep]
        different[lo:hi] = (y[i0:i1, None] != y[None, i0:])[keep]
    return v1, different


def numpy_label_groups(y: np.ndarray, C: int) -> np.ndarray:
    """Tie-group codes (ascending value) of upstream's literal floating-point rdm2 =
    ``1 − np.corrcoef(onehot(y))`` over the row-major strict upper triangle.

    Mathematically rdm2 is 0 within a class and C/(C−1) across classes; numpy's last-bit
    rounding (BLAS kernel and class-index dependent) splits those values into a few distinct
    ones, and every distinct value is its own tie group, as in upstream's ``spearmanr``.
    """
    N = y.shape[0]
    onehot = np.zeros((N, C))
    onehot[np.arange(N), y] = 1.0
    rdm2 = np.corrcoef(onehot)
    np.subtract(1.0, rdm2, out=rdm2)
    _, codes = np.unique(rdm2[np.triu(np.ones((N, N), dtype=bool), 1)], return_inverse=True)
    return codes


def _tie_correction(sorted_values: np.ndarray) -> float:
    """Σ over tie groups of (t³ − t) for a sorted array (0 without ties); memory O(#groups)."""
    equal = sorted_values[1:] == sorted_values[:-1]
    if not equal.any():
        return 0.0
    edges = np.diff(np.concatenate(([0], equal.view(np.int8), [0])))
    t = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1) + 1).astype(np.float64)
    return float(np.sum(t**3 - t))


def spearman_with_groups(v1: np.ndarray, codes: np.ndarray) -> float:
    """Spearman correlation (average ranks for ties) of ``v1`` [M] with a vector whose values are
    the ascending group codes ``codes`` [M] (any integer dtype, codes 0..G−1).

    The second vector's ranks are constant per group (ρ_g = #before + (n_g + 1)/2), so
    Spearman = Pearson(r1, r2) needs only S_g = Σ_{p∈g} r1_p. v1 is sorted once (in place);
    r1 of a value v is (#{< v} + #{≤ v} + 1)/2 by two binary searches, done for the members of
    every group except the largest, whose S_g follows from Σ (r1 − m) = 0 (m = (M+1)/2).
    Var(r1) is the closed form (M³ − M − Σ_ties (t³ − t))/12. ``v1`` is overwritten.
    """
    M = v1.shape[0]
    counts = np.bincount(codes)
    mean = (M + 1) / 2.0
    rho = np.cumsum(counts) - counts + (counts + 1) / 2.0  # average rank of each group
    largest = int(np.argmax(counts))
    centred_sums = np.zeros(counts.shape[0])  # Σ_{p∈g} (r1_p − m)
    members = {g: v1[codes == g] for g in range(counts.shape[0]) if g != largest and counts[g]}
    v1.sort()
    for g, values in members.items():  # loop over tie groups of rdm2 (two or a handful)
        left = np.searchsorted(v1, values, side="left")
        right = np.searchsorted(v1, values, side="right")
        centred_sums[g] = (left + right + 1).sum() / 2.0 - counts[g] * mean
    centred_sums[largest] = -centred_sums.sum()
    var1 = (float(M) ** 3 - M - _tie_correction(v1)) / 12.0
    var2 = float(np.sum(counts * (rho - mean) ** 2))
    if not (var1 > 0 and var2 > 0):
        raise InputError(
            "parc: every pair of samples is equally (dis)similar in feature space, so the rank "
            "correlation is undefined (constant or degenerate features)"
        )
    return float(np.dot(rho - mean, centred_sums)) / np.sqrt(var1 * var2)


@register(
    "parc",
    summary="Spearman correlation between feature and label dissimilarity matrices (x100)",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    invariances=("scale", "translation"),
)
def parc(
    features,
    labels=None,
    *,
    source_probs=None,
    n_dims: int | None = 32,
    pca: str = "randomized",
    label_rdm: str = "exact",
) -> float:
    """PARC (in [−100, 100]; higher = better).

    Matches ``dbolya/parc`` ``methods.py::PARC(n_dims=32)`` @
    ddfca43a84d35328897d107d6f86e860b11801ce (the setting of ``demo.py`` and of the SFDA repo's
    ``PARC_Score``), apart from a floating-point artefact of upstream's label matrix, below.

    Inputs: ``features`` [N, D] (cast to float64), ``labels`` [N] in 0..C-1, every class present.
    ``source_probs`` is unused.

        F = StandardScaler(PCA(k, svd_solver='randomized', random_state=1919,
                               iterated_power=1).fit_transform(X)),   k = min(n_dims, N, D)
        rdm1 = 1 − corrcoef(F)            (N×N correlation between samples)
        rdm2 = 1 − corrcoef(onehot(y))    (0 within a class, C/(C−1) across classes)
        PARC = 100 · spearman(upper_triangle(rdm1), upper_triangle(rdm2))   (ties averaged)

    Parameters:

    - ``n_dims`` (default 32): PCA dimensions; ``None`` skips the PCA (upstream's
      ``n_dims=None``).
    - ``pca``: "randomized" (default; upstream's sklearn call, made exactly so the numbers match;
      it is *not* the exact PCA) or "exact" (``PCA(k, svd_solver='full')`` semantics including
      sklearn's component signs, which PARC depends on because it centres each sample across its
      k coordinates; on conformance case1 13.85 → 15.45).
    - ``label_rdm``: "exact" (default) or "numpy" (upstream's literal floating-point rdm2).

    Quirk (not reproduced by default): mathematically rdm2 takes two values, but upstream computes
    it with ``np.corrcoef`` and its last-bit rounding depends on the BLAS kernel and on the class
    indices: some classes' same-class entries come out as 1.1e-16 or 2.2e-16 instead of 0, which
    splits that tie group and moves the score (conformance case0/case1: −0.4 % / −0.65 %; up to
    ~25 % in a contrived case). The reference vectors were made with OpenBLAS's SkylakeX kernels;
    ``label_rdm="numpy"`` reproduces them exactly when numpy uses the same kernels
    (``OPENBLAS_CORETYPE=SkylakeX``), but changes with the CPU, with renaming the classes and with
    reordering the samples. The default uses the exact two values, so the score is a property of
    the data: invariant to sample order and class names, identical on every machine.

    Implementation (exact shortcuts): neither N×N matrix is formed. rdm1's upper triangle is
    written directly in row blocks (rows centred and normalised once, one GEMM per block). rdm2
    has two tie groups (same / different class), so its ranks come from counting, and
    Spearman = Pearson(ranks) needs only the sum of rdm1's ranks over the same-class pairs:
    the triangle is sorted once in place and the same-class values are ranked by binary search
    (``spearman_with_groups``); rdm1's variance of ranks is the closed form with the tie
    correction. Peak memory ≈ the M = N(N−1)/2 triangle values (100 MB at N = 5000) plus one
    8 MiB block. The randomized PCA runs with one BLAS thread (see ``_blas``).

    Degenerate input (documented rules):

    - k = min(n_dims, N, D) (upstream caps at N only; sklearn fails when D < n_dims).
    - k < 3 raises InputError: over 2 coordinates every sample correlation is ±1, so rdm1 has
      two values whose ranks upstream decides by rounding noise.
    - Numerically null PCA components (std ≤ max std·max(N, D)·eps, i.e. beyond the rank of
      duplicated or low-rank features) are set to 0 before StandardScaler; upstream scales their
      rounding noise up to unit variance, which makes its score noise-dependent.
    - A sample whose standardised coordinates are all equal has an undefined correlation
      (upstream: NaN); it gets correlation 0 (dissimilarity 1) with every sample.
    - rdm1 is rounded to multiples of 2⁻⁴⁰ ≈ 9e-13 before ranking, so that mathematically tied
      dissimilarities (e.g. pairs of duplicated samples, correlation exactly 1) tie in floating
      point as well; upstream ranks their last-bit rounding noise. On continuous data this
      changes the score by ~1e-12 relative.
    - If all sample pairs are equally dissimilar (e.g. constant features) the rank correlation
      is undefined: InputError. Fewer than C + 1 samples: InputError.
    """
    metric = "parc"
    if pca not in ("randomized", "exact"):
        raise InputError(f"{metric}: pca must be 'randomized' or 'exact', got {pca!r}")
    if label_rdm not in ("exact", "numpy"):
        raise InputError(f"{metric}: label_rdm must be 'exact' or 'numpy', got {label_rdm!r}")
    if n_dims is not None and (not isinstance(n_dims, numbers.Integral) or n_dims < 1):
        raise InputError(f"{metric}: n_dims must be a positive integer or None, got {n_dims!r}")
    X, y, C = check_xy(features, labels, metric)
    N, D = X.shape
    k = D if n_dims is None else int(min(n_dims, N, D))
    if k < 3:
        raise InputError(
            f"{metric}: needs at least 3 feature dimensions to correlate samples (over 2 "
            f"coordinates every correlation is ±1 and the ranks are decided by rounding), got "
            f"min(n_dims, N, D) = {k}"
        )
    F = reduce_features(X, n_dims, pca)
    v1, codes = sample_dissimilarity_triangle(F, y)
    # rdm1 ∈ [0, 2]: snap it to a grid of 2⁻⁴⁰ so that mathematically equal dissimilarities
    # (duplicated samples) tie in floating point too instead of being ranked by rounding noise.
    v1 *= TIE_GRID
    np.rint(v1, out=v1)
    if label_rdm == "numpy":
        codes = numpy_label_groups(y, C)
    return finite_score(100.0 * spearman_with_groups(v1, codes), metric)
