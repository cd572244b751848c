"""N-LEEP — LEEP of a Gaussian-mixture posterior on PCA-reduced features (Li et al., CVPR 2021)."""

from __future__ import annotations

import warnings

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _blas, _spectral
from zoorank.metrics._gmm import fit_full_gmm
from zoorank.metrics._registry import register
from zoorank.metrics._top_pca import top_pca_scores
from zoorank.metrics._validate import check_xy, finite_score, require_samples

_PAPER = (
    "Li, Jia, Sang, Zhu, Green, Wang, Gong: Ranking Neural Checkpoints, CVPR 2021"
)

#: Fraction of the variance the PCA keeps (google-research and SFDA both use 0.8).
VARIANCE_FRACTION = 0.8
#: sklearn GaussianMixture defaults that N-LEEP relies on.
REG_COVAR, TOL, MAX_ITER = 1e-6, 1e-3, 100


def _variance_fraction_rank(X: np.ndarray, fraction: float) -> int:
    """k of ``PCA(n_components=fraction)``: the fewest components whose explained-variance ratio
    sums to more than ``fraction`` (sklearn: searchsorted(cumsum(ratio), fraction, 'right') + 1);
    0 when every feature is constant. Eigenvalues of the smaller Gram matrix of the centred
    features (the squared singular values of Xc), without eigenvectors, one BLAS thread (see
    ``_blas``: the tridiagonal reduction threads badly on a busy 2-core machine).
    """
    G, _ = _spectral.gram(X - X.mean(axis=0))
    with _blas.single_thread():
        lam = _spectral.eigvalsh(G, "nleep")[::-1]
    np.maximum(lam, 0.0, out=lam)
    total = lam.sum()
    if not total > 0.0:
        return 0
    return min(int(np.searchsorted(np.cumsum(lam / total), fraction, side="right")) + 1, lam.size)


def _pca_scores(X: np.ndarray, fraction: float) -> np.ndarray | None:
    """Exact ``PCA(n_components=fraction, svd_solver='full').fit_transform(X)`` (up to rounding;
    same component signs), via :func:`zoorank.metrics._top_pca.top_pca_scores` — the top-k
    eigenpairs of the smaller Gram matrix instead of sklearn's full SVD of Xc. ``None`` if every
    feature is constant.
    """
    k = _variance_fraction_rank(X, fraction)
    return None if k == 0 else top_pca_scores(X, k, "nleep")


def _sklearn_pipeline(X, K, random_state, fraction, as_float32):
    """Upstream verbatim: sklearn PCA(fraction, svd_solver='full') then GaussianMixture(K)."""
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    Z = PCA(n_components=fraction, svd_solver="full").fit_transform(X)
    if as_float32:
        Z = Z.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            gmm = GaussianMixture(n_components=K, random_state=random_state).fit(Z)
        except ValueError as exc:
            raise InputError(
                f"nleep: sklearn's GaussianMixture failed on the {Z.shape[1]} PCA dimensions "
                f"({exc}); gmm='fast' cannot fail this way"
            ) from None
        return gmm.predict_proba(Z)


def _leep_from_posterior(P: np.ndarray, y: np.ndarray, C: int, *, log: bool = True) -> float:
    """LEEP of a posterior ``P`` [N, K] over K "source" states (google-research ``get_leep_score``).

    P(y, z) ∝ Σ_{i: y_i = y} P[i, z];  P(y | z) = P(y, z) / Σ_y' P(y', z), with 0 where a state has
    no mass (TF ``divide_no_nan``);  eep_i = Σ_z P[i, z]·P(y_i | z).
    log=True: mean_i log eep_i, with −log C substituted where eep_i = 0 (TF quirk).
    log=False: mean_i eep_i (the SFDA repo's variant).
    """
    P = np.asarray(P, dtype=np.float64)
    joint = _spectral.class_sums(P, y, C)  # [C, K]
    mass = joint.sum(axis=0)
    cond = np.divide(joint, mass, out=np.zeros_like(joint), where=mass > 0)
    eep = np.einsum("ik,ik->i", P, cond[y])
    if not log:
        return float(eep.mean())
    logs = np.full(eep.shape, -np.log(C))
    np.log(eep, out=logs, where=eep > 0)
    return float(logs.mean())


@register(
    "nleep",
    summary="N-LEEP: LEEP of a 5C-component Gaussian-mixture posterior on PCA(0.8) features",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    stochastic=True,
    invariances=("rotation", "translation"),
)
def nleep(
    features,
    labels=None,
    *,
    source_probs=None,
    gmm: str = "fast",
    component_ratio: int = 5,
    random_state: int | None = 123,
    log: bool = True,
    float32: bool = True,
) -> float:
    """N-LEEP score (higher = better; ≤ 0 with ``log=True``, in [0, 1] with ``log=False``).

    Matches google-research ``stable_transfer/transferability/nleep.py`` @
    4963f325fe8bf41c69aeb2717d0ef408f623500e with ``features_targets_utils.pca_reduction`` and
    ``leep.get_leep_score`` @ 1d4d2f1a (conformance ``score``). Paper: Y. Li, X. Jia, R. Sang,
    Y. Zhu, B. Green, L. Wang, B. Gong, "Ranking Neural Checkpoints", CVPR 2021.

    Inputs: ``features`` [N, D] (raw, not standardised; cast to float64), ``labels`` [N] in 0..C-1
    with every class present. ``source_probs`` is ignored (the mixture plays the source head).

    Steps:
      1. Z = PCA(features) keeping the fewest components whose explained-variance ratio sums to
         more than 0.8 (``PCA(n_components=0.8, svd_solver='full')``), **cast to float32**.
      2. A Gaussian mixture with K = component_ratio·C components, full covariances,
         reg_covar = 1e-6, k-means initialisation (``KMeans(K, n_init=1, random_state)``),
         tol = 1e-3 on the mean log-likelihood, max_iter = 100 — sklearn's
         ``GaussianMixture(n_components=K, random_state=random_state)`` defaults — fitted on Z.
      3. Posterior P[i, k] = p(k | z_i), **cast to float32**, then LEEP with the mixture
         components as source classes: P(y|k) = Σ_{i:y_i=y} P[i,k] / Σ_i P[i,k] (0 if a
         component has no mass), eep_i = Σ_k P[i,k]·P(y_i|k), score = mean_i log eep_i
         (−log C where eep_i = 0, the TF ``divide_no_nan`` / ``where`` quirks).

    Parameters:
      gmm: ``"fast"`` (default) — this package's EM (:mod:`zoorank.metrics._gmm`): the same model,
        k-means initialisation (sklearn's KMeans, same settings), updates and stopping rule, with
        each covariance kept as (low-rank scatter + reg·I) in eigen form: the E-step projects on
        the component's own r_k = min(m_k, d) directions plus an isotropic residual term
        (Woodbury in SVD form; the plain full-covariance computation when m_k ≥ d), the M-step
        is one small SVD per component, responsibilities below 1e-12 of their row's maximum are
        dropped from the M-step, and the loop stops early (exactly) at a fixed point of the
        responsibilities. PCA via the eigen-decomposition of the smaller Gram matrix.
        Deterministic given ``random_state``. Measured agreement with ``gmm="sklearn"``: scores
        equal to 8e-9 (case0) and 0 (case1); posteriors to 7e-7 against sklearn's float32 EM and
        to 4e-14 against its float64 EM; ~1e-9 in soft full-rank regimes (many EM iterations);
        at N=5000, D=2048, C=100 (float32=False) the same posterior (max difference 0) in 2 s
        instead of sklearn's 131 s.
        ``"sklearn"`` — sklearn's PCA and GaussianMixture called exactly as upstream (matches the
        conformance vectors to ~1e-8). Note: with ``float32=True`` sklearn runs EM in float32,
        whose Cholesky of (rank-~10 scatter + 1e-6·I) fails once components are low-rank in
        ≳100 dimensions — e.g. ``make_task(5000, 2048, 100)`` and ``make_task(2000, 512, 40)``
        with sklearn 1.9.1; that ValueError becomes an InputError. The upstream pipeline itself
        fails there; ``gmm="fast"`` computes what it would compute in float64.
      component_ratio: K = component_ratio·C (paper and both references: 5; the SFDA authors use
        1 for some datasets).
      random_state: seed of the k-means initialisation (google-research: 123). ``None`` uses
        numpy's global RNG, as sklearn does.
      log: True = google-research N-LEEP (mean log eep). False = the SFDA repo's
        ``NLEEP(component_ratio=5)``, which drops the log (mean eep).
      float32: True = google-research's float32 casts of the PCA output and of the posterior
        (the mixture is then fitted on float32-rounded data; sklearn fits it in float32, the fast
        path in float64 on the same rounded values). False = keep float64, as the SFDA repo does.

    Secondary reference: ``TencentARC/SFDA`` ``metrics.py::NLEEP`` @ 3b7edf76 after
    ``np.random.seed(0)`` equals ``log=False, float32=False, random_state=0`` (sklearn's
    GaussianMixture with random_state=None draws from the freshly seeded global RNG). It uses
    ``PCA(0.8)`` with the default solver, which resolves to an exact solver for a fractional
    n_components; results agree to rounding.

    The result depends on the k-means seed: on conformance case1 the seeds 123/0/1/2/3 give
    −1.649/−1.671/−1.694/−1.640/−1.668. Sample order also changes the k-means initialisation.

    Degenerate input (rules):
      - N < K = component_ratio·C: InputError naming the K samples needed (one per component);
        pass a smaller ``component_ratio`` or more samples.
      - Every feature constant (PCA keeps 0 dimensions): every sample has the same posterior
        whatever the mixture, so P(y|k) = n_y/N and the score is its exact limit
        Σ_y (n_y/N)·log(n_y/N) = −H(Y) (log=True), Σ_y (n_y/N)² (log=False).
      - Duplicated samples / fewer distinct samples than K: k-means leaves clusters empty and
        they become zero-weight components (as in sklearn; no warning is emitted). Components
        with a single distinct point have covariance reg·I and are handled exactly.
      - D ≫ N: the PCA runs on the N × N Gram matrix.
      - ``gmm="sklearn"`` only: sklearn's float32 Cholesky can fail on low-rank or collapsed
        components; that ValueError becomes an InputError (``gmm="fast"`` cannot fail this way:
        every variance is ≥ reg_covar by construction).

    Invariances: rotation and translation (declared). The PCA scores of X·Q + b equal those of X
    up to sign and rounding, and k-means and the full-covariance mixture with an isotropic ridge
    are equivariant under orthogonal maps; in tests the score was bit-identical under random
    rotations and shifts (the float32 casts absorb the rounding), though in principle a rounding
    difference could flip a k-means assignment. Not scale: reg_covar = 1e-6 is absolute
    (conformance case1 × 1e-3 gives −2.300 instead of −1.649).
    """
    metric = "nleep"
    if gmm not in ("fast", "sklearn"):
        raise InputError(f"{metric}: gmm must be 'fast' or 'sklearn', got {gmm!r}")
    if (
        isinstance(component_ratio, bool)
        or not isinstance(component_ratio, (int, np.integer))
        or component_ratio < 1
    ):
        raise InputError(
            f"{metric}: component_ratio must be a positive integer, got {component_ratio!r}"
        )
    if random_state is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))
    ):
        raise InputError(f"{metric}: random_state must be an int or None, got {random_state!r}")
    X, y, C = check_xy(features, labels, metric)
    n = X.shape[0]
    K = int(component_ratio) * C
    require_samples(metric, n, K, f"one per Gaussian component: component_ratio={component_ratio} "
                    f"× {C} classes; pass a smaller component_ratio")

    if not np.any(X != X[0]):  # every feature constant: the exact limit (docstring)
        freq = np.bincount(y, minlength=C) / n
        value = float(freq @ np.log(freq)) if log else float(freq @ freq)
        return finite_score(value, metric)

    if gmm == "sklearn":
        P = _sklearn_pipeline(X, K, random_state, VARIANCE_FRACTION, float32)
    else:
        Z = _pca_scores(X, VARIANCE_FRACTION)
        if Z is None:  # pragma: no cover - only exactly constant features give 0 variance
            raise InputError(f"{metric}: the features have zero variance")
        if float32:
            Z = Z.astype(np.float32)
        P = fit_full_gmm(Z, K, random_state=random_state, reg_covar=REG_COVAR, tol=TOL,
                         max_iter=MAX_ITER).posterior
    if float32:
        P = P.astype(np.float32)
    return finite_score(_leep_from_posterior(P, y, C, log=log), metric)

