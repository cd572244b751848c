"""NCTI — Neural Collapse inspired Transferability Index (Wang et al., ICCV 2023)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from zoorank.errors import InputError
from zoorank.metrics import _fisher
from zoorank.metrics._registry import register, register_pool
from zoorank.metrics._validate import check_pool, check_xy, finite_score

_PAPER = (
    "Wang, Luo, Zheng, Huang, Baktashmotlagh: How Far Pre-trained Models Are from Neural Collapse "
    "on the Target Dataset Informs their Transferability, ICCV 2023"
)

#: Floor of the LDA shrinkage; reaching it switches to the unshrunk 'svd' LDA solver (upstream).
SHRINKAGE_FLOOR = 1e-10


def _nuclear_norm(A: np.ndarray) -> float:
    """‖A‖_* = Σ singular values. For a tall A [m, n] LAPACK reduces to n×n by QR first, so this
    costs O(m·n²) — the 'small side' of A (n ≤ C here)."""
    return float(np.linalg.svd(A, compute_uv=False).sum())


#: Gram matrices up to this size get a dense eigendecomposition; larger ones use Lanczos (ARPACK).
DENSE_EIGH_MAX = 1000


def _top_eigh(G: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of the symmetric PSD ``G`` [n, n], descending, deterministic."""
    n = G.shape[0]
    if n <= DENSE_EIGH_MAX or 4 * k >= n:
        w, V = np.linalg.eigh(G)
        return w[::-1][:k], V[:, ::-1][:, :k]
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: ARPACK is deterministic
    try:
        w, V = eigsh(G, k=k, which="LA", v0=v0, tol=0.0)
    except (ArpackNoConvergence, ArpackError):
        w, V = linalg.eigh(G, subset_by_index=[n - k, n - 1])
    idx = np.argsort(w)[::-1]
    return w[idx], V[:, idx]


def exact_pca(X: np.ndarray, k: int, *, overwrite: bool = False):
    """Exact top-k PCA of ``X`` [N, D]: ``(projections [N, k], explained_variance [k])``.

    Same numbers as ``sklearn.decomposition.PCA(k, svd_solver='full').fit_transform`` up to the
    sign of each component (irrelevant downstream) and rounding, through the smaller Gram matrix:
    XcᵀXc (D×D) when D ≤ N, else XcXcᵀ (N×N); explained_variance = eigenvalue / (N − 1).
    ``overwrite=True`` centres ``X`` in place (only for arrays the metric owns).
    """
    N, D = X.shape
    Xc = np.subtract(X, X.mean(axis=0), out=X if overwrite else None)
    if D <= N:
        w, V = _top_eigh(Xc.T @ Xc, k)
        Xp = Xc @ V
    else:
        w, V = _top_eigh(Xc @ Xc.T, k)
        Xp = V * np.sqrt(np.maximum(w, 0.0))
    return Xp, np.maximum(w, 0.0) / (N - 1)


def _ncti_arrays(
    X: np.ndarray,
    y: np.ndarray,
    C: int,
    *,
    n_components: int,
    n_top: int,
    random_state,
    svd_solver: str,
    metric: str = "ncti",
    overwrite: bool = False,
) -> dict[str, float]:
    """The three NCTI parts of validated ``X``; ``overwrite=True`` lets the PCA work in place
    (only for arrays the metric owns: saves an N×D copy)."""
    k = min(n_components, X.shape[0], X.shape[1])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # collinearity / 0-variance warnings: handled below
        if svd_solver == "exact":
            Xp, explained = exact_pca(X, k, overwrite=overwrite)
        else:
            pca = PCA(n_components=k, svd_solver=svd_solver, random_state=random_state,
                      copy=not overwrite)
            Xp = pca.fit_transform(X)
            explained = pca.explained_variance_
        temp = max(float(np.exp(-explained[:n_top].sum())), SHRINKAGE_FLOOR)
        if temp == SHRINKAGE_FLOOR:
            lda = LinearDiscriminantAnalysis(solver="svd")
        else:
            lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=temp)
        try:
            z = lda.fit_transform(Xp, y)
            P = lda.predict_proba(Xp)
        except (linalg.LinAlgError, np.linalg.LinAlgError, ValueError) as exc:
            raise InputError(
                f"{metric}: the LDA on the {k} principal components failed ({exc}); the features "
                "are too degenerate (e.g. constant)"
            ) from None
    if not (np.isfinite(z).all() and np.isfinite(P).all()):
        raise InputError(f"{metric}: the LDA produced non-finite values; the features are too "
                         "degenerate (e.g. constant or duplicated)")
    z = z - z.mean(axis=0)
    a = _nuclear_norm(z)
    b = _fisher.true_class_mean(P, y)
    order = np.argsort(y, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(y, minlength=C))))
    Ps = P[order]
    class_nuc = sum(_nuclear_norm(Ps[bounds[c] : bounds[c + 1]]) for c in range(C))
    return {
        "all_lowfeat_nuc": a,
        "sfda_score": b,
        "log_class_pred_nuc": float(np.log(class_nuc)),
        "shrinkage": temp,
    }


def ncti_parts(
    features,
    labels,
    *,
    n_components: int = 64,
    n_top: int = 32,
    random_state=0,
    svd_solver: str = "exact",
) -> dict[str, float]:
    """NCTI's three per-model quantities, as upstream ``NCTI_Score`` returns them.

    - ``all_lowfeat_nuc`` a = ‖z − mean z‖_*, z = the LDA projection of the PCA features
      (higher = more between-class diversity, better);
    - ``sfda_score`` b = mean_i P[i, y_i], P = the LDA posterior (higher = better);
    - ``log_class_pred_nuc`` c = log Σ_c ‖P[y == c]‖_* (lower = closer to collapse, better).
    Also ``shrinkage``, the LDA shrinkage used. See :func:`ncti` for the pipeline.
    """
    X, y, C = check_xy(features, labels, "ncti")
    return _ncti_arrays(X, y, C, n_components=n_components, n_top=n_top,
                        random_state=random_state, svd_solver=svd_solver,
                        overwrite=_fisher.owns(X, features))


@register(
    "ncti",
    summary="NCTI per model: LDA true-class posterior on 64 PCA components (paper: pool form)",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    stochastic=True,
    invariances=("rotation", "translation"),
)
def ncti(
    features,
    labels=None,
    *,
    source_probs=None,
    n_components: int = 64,
    n_top: int = 32,
    random_state=0,
    svd_solver: str = "exact",
) -> float:
    """NCTI, per model: the class-separation part b (higher = better, in [0, 1]).

    **The paper's NCTI score is the pool form** (``compute_pool("ncti", ...)`` /
    :func:`ncti_pool`): it min-max scales three per-model quantities across the candidate
    models, score = b̃ + ã − c̃, which is undefined for one model. This single-model function
    returns b = mean_i P[i, y_i] (upstream's ``sfda_score``, the LDA posterior of the true class),
    the pool score's only bounded, per-model-comparable term. All three parts:
    :func:`ncti_parts`.

    Paper: Wang, Luo, Zheng, Huang, Baktashmotlagh, "How Far Pre-trained Models Are from Neural
    Collapse on the Target Dataset Informs their Transferability", ICCV 2023. Matches
    BUserName/NCTI ``metrics.py::NCTI_Score`` and ``evaluate_metric_group1_cpu.py`` @
    b18d39514a3f2a7a949500b467a38b93de1428e4 (conformance rtol 1e-6; scikit-learn's
    LinearDiscriminantAnalysis is used exactly as upstream):

      X_p = PCA(n_components=64).fit_transform(X)   (raw features in; exact PCA, see below)
      temp = max(exp(−Σ of the top-32 explained_variance_), 1e-10)
      LDA = LinearDiscriminantAnalysis(solver='svd') if temp == 1e-10
            else LinearDiscriminantAnalysis(solver='eigen', shrinkage=temp)
      z = LDA.fit_transform(X_p, y), centred; a = ‖z‖_*
      P = LDA.predict_proba(X_p); b = mean_i P[i, y_i]; c = log Σ_c ‖P[y == c]‖_*

    Inputs: ``features`` [N, D], ``labels`` [N] 0..C-1 with every class present, N ≥ C + 1.
    ``source_probs`` is ignored.

    Parameters: ``n_components`` (64), ``n_top`` (32), ``svd_solver`` ("exact"), ``random_state``
    (0; used only by sklearn's randomized/arpack solvers).

    **PCA deviation.** Upstream calls ``PCA(64)`` with svd_solver='auto' and random_state=None:
    sklearn then uses an exact solver at small sizes (all conformance cases) but a *randomized*
    SVD at large ones (e.g. N=5000, D=2048), where upstream jitters by ~1e-4 relative from run to
    run. Our default ``svd_solver="exact"`` computes the exact top-64 PCA (what the randomized
    solver approximates) through the smaller Gram matrix — XcᵀXc (D×D) or XcXcᵀ (N×N) — with a
    dense eigendecomposition up to 1000×1000 and Lanczos (ARPACK, fixed start vector) above:
    deterministic, and identical to upstream wherever upstream is exact. Any sklearn solver name
    ('auto', 'full', 'randomized', ...) runs ``sklearn.decomposition.PCA`` instead, with
    ``random_state`` (pass svd_solver='auto', random_state=None for upstream's exact behaviour).

    Nuclear norms use the singular values of the N×(C−1) projection and of each n_c×C block of P;
    LAPACK reduces a tall matrix to its small side by QR first (O(N·C²)); no D×D work.

    Degenerate rules: fewer than 64 samples or dimensions → n_components = min(64, N, D) (matches
    upstream whenever min(N, D) ≥ 64, where upstream requires it); the LDA's collinearity
    warnings are silenced; a failing LDA (e.g. constant features, zero within-class scatter)
    raises InputError.
    """
    X, y, C = check_xy(features, labels, "ncti")
    parts = _ncti_arrays(X, y, C, n_components=n_components, n_top=n_top,
                         random_state=random_state, svd_solver=svd_solver,
                         overwrite=_fisher.owns(X, features))
    return finite_score(parts["sfda_score"], "ncti")


def ncti_pool_parts(features_list, labels, **params) -> dict[str, np.ndarray]:
    """Per-model ``all_lowfeat_nuc``, ``sfda_score``, ``log_class_pred_nuc`` arrays of a pool and
    the cross-model ``score`` (see :func:`ncti_pool`)."""
    y, C, models = check_pool(features_list, labels, "ncti")
    rows = []
    for X, f in models:
        rows.append(_ncti_arrays(X, y, C, overwrite=_fisher.owns(X, f), **{
            "n_components": params.get("n_components", 64),
            "n_top": params.get("n_top", 32),
            "random_state": params.get("random_state", 0),
            "svd_solver": params.get("svd_solver", "exact"),
        }))
    out = {k: np.array([r[k] for r in rows]) for k in
           ("all_lowfeat_nuc", "sfda_score", "log_class_pred_nuc")}
    for k, v in out.items():
        if not np.isfinite(v).all():
            raise InputError(f"ncti: {k} is not finite for some model")
    out["score"] = (
        _fisher.minmax_across_models(out["sfda_score"])
        + _fisher.minmax_across_models(out["all_lowfeat_nuc"])
        - _fisher.minmax_across_models(out["log_class_pred_nuc"])
    )
    return out


@register_pool("ncti")
def ncti_pool(
    features_list,
    labels,
    *,
    n_components: int = 64,
    n_top: int = 32,
    random_state=0,
    svd_solver: str = "exact",
) -> np.ndarray:
    """NCTI, the paper's score: one value per model of the pool, higher = better.

        score_m = minmax(b)_m + minmax(a)_m − minmax(c)_m,
        minmax(v)_m = (v_m − min v) / (max v − min v) across the pool's models,

    with a, b, c from :func:`ncti_parts` (``evaluate_metric_group1_cpu.py``; conformance rtol
    1e-6). Range [−1, 2]. Tie rule (upstream divides by zero): a part whose values all tie
    (max − min ≤ 1e-12·max|v|, e.g. a pool of one) contributes 0 to every model.
    """
    return ncti_pool_parts(features_list, labels, n_components=n_components, n_top=n_top,
                           random_state=random_state, svd_solver=svd_solver)["score"]
