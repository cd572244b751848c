r"""One unknown, every signal as evidence about it: a Gaussian belief over the target's accuracy vector.

The target's fine-tuned accuracies over the zoo, :math:`y \in \mathbb{R}^M`, are the unknown. Everything zoorank
knows of them is combined by Bayes' rule in one linear-Gaussian model, so that with nothing known of the task the
ranking is what history says (the prior), and every measurement can only sharpen it.

**Prior** (:func:`fit_prior`). From the knowledge base's accuracy matrix :math:`A` [T tasks x M models] (missing
entries allowed), with task weights :math:`w_t \ge 0` summing to 1 (uniform: the population; moved by task
similarity: :func:`similarity_weights`)::

    mu    = sum_t w_t A_t                                (the popularity prior when w is uniform)
    S     = sum_t w_t (A_t - mu)(A_t - mu)^T / (1 - sum_t w_t^2)     (rank <= T - 1)
    Sigma = D^{1/2} [(1 - lambda) R + lambda I] D^{1/2},  D = diag(S),  R = D^{-1/2} S D^{-1/2}

the sample covariance shrunk towards its diagonal with the analytic intensity of Schäfer & Strimmer (2005, target
"D"): :math:`\lambda^* = \sum_{i \ne j} \widehat{\mathrm{Var}}(r_{ij}) / \sum_{i \ne j} r_{ij}^2`, clipped to
[0, 1]. Missing entries are imputed by a rank-``r`` SVD fixed point before the moments are taken, ``r`` chosen
by :func:`choose_rank` (leave one history task out: the rank whose completed matrix's mean ranks it best). The
variances are floored at ``var_floor`` (a model that never varied in history still has an unknown accuracy).

**Observations** (:class:`Observation`). A block of evidence on the models ``idx`` is linear in :math:`y`::

    u = y[idx] + c 1 + e,   e ~ N(0, noise^2 I)

``offset=False``: :math:`c = 0` (revealed fine-tuned accuracies, :func:`accuracy_observation`; ``noise`` is the
fine-tuning noise). ``offset=True``: :math:`c` is unknown with a flat prior, so only the contrasts of ``u``
inform (the block is projected on the orthogonal complement of 1): a transferability metric's scores, whose
scale and offset say nothing about accuracy, enter this way (:func:`score_observation`): the scores become
normal scores :math:`z` (van der Waerden: :math:`\Phi^{-1}((r - 1/2)/k)` of their ranks, ties sharing a rank,
so one outlier cannot dominate), and with the link calibrated on the knowledge base as a within-task correlation
:math:`\rho` between normal scores and accuracies (:func:`calibrate_link`)::

    z_m = a + (rho / s_y) y_m + sqrt(1 - rho^2) eta_m,   eta ~ N(0, 1)
    =>  u = z s_y / rho = y + c + e,   noise = s_y sqrt(1 - rho^2) / rho

where :math:`s_y` is the prior's expected within-block spread of :math:`y` (:func:`expected_spread`). A link with
:math:`\rho \le 0` carries no information and is dropped.

**Posterior** (:func:`posterior`). Stacking the blocks as :math:`u = H y + \epsilon`, :math:`\epsilon \sim
N(0, R)` (after the contrast projections), the Kalman update::

    K = Sigma H^T (H Sigma H^T + R)^{-1},   m = mu + K (u - H mu),   P = Sigma - K H Sigma

gives each model's posterior mean :math:`m_i` and standard deviation :math:`\sqrt{P_{ii}}`; the central
interval at level q is :math:`m_i \pm \Phi^{-1}((1 + q)/2) \sqrt{P_{ii}}`. With no observation the posterior is
the prior; each observation can only lower every variance (:math:`K H \Sigma` is positive semi-definite).

**Open zoos** (:func:`for_zoo`). A user's zoo may lack fitted models (the Gaussian's marginal on the rest is
exact: the sub-vector and sub-matrix) and hold *cold* models with no history. A cold model is placed as a draw
from the population of the fitted models, exchangeable with them: with :math:`\bar y = \frac1M 1^T y` the
zoo's mean accuracy on the task (it carries the task's difficulty, shared by every model)::

    y_cold_j = ybar + r_j,   r_j ~ N(0, v_r) independent of y and of each other
    v_r = Var_k(mu_k) + mean_k Sigma_kk - 1^T Sigma 1 / M^2      (floored at var_floor)

so its prior mean is the fitted models' mean, its variance the population's (spread of the models' means plus
their mean variance), and its covariance with model i is :math:`\frac1M \sum_k \Sigma_{ki}`: an easy task lifts
it with the others, and only its own measurements can place it above or below them. Where history shows that a
model's size and architecture predict its accuracies (:mod:`zoorank.methods.placement`, Fennec's meta phase), the
uniform mixture :math:`\frac1M 1` is replaced by mixture weights :math:`a_j` over the fitted models that resemble
it, and :math:`v_r` by that placement's leave-one-model-out error: :math:`y_{cold,j} = a_j^T y + r_j`. Either way
the joint covariance is that of a linear map of y plus independent noise, hence positive semi-definite.

**Which covariance** (:func:`log_evidence`, :func:`averaged_posterior`, :func:`fold_in`). How far evidence on
some models moves the others depends on the shrinkage :math:`\lambda`. Rather than one value, every
:math:`\lambda_j` of a grid (the diagonal, which moves nothing, included) is a candidate prior, equally likely a
priori, weighted after the observations by their marginal likelihood (Bayesian model averaging)::

    w_j ∝ N(u; H mu, H Sigma_j H^T + R)
    m = sum_j w_j m_j,   P = sum_j w_j (P_j + (m_j - m)(m_j - m)^T)

so the history's correlations are trusted as far as the target's own measurements bear them out.

**Which models are worth measuring** (:func:`top_chance`). With ``b`` the model ranked ``k``-th by the belief's
mean, the chance that model ``i`` beats it is, under the belief::

    p_i = Phi((m_i - m_b) / sqrt(P_ii + P_bb - 2 P_ib))        (p_b = 1; p_i >= 1/2 for the top k)

A model whose chance is small can hardly enter the top ``k`` whatever its measurement says, so measuring it buys
little of the top's quality; the covariance counts: a model that moves with ``b`` across tasks (a sibling
fine-tune) has a small difference variance and is judged sharply.

All of it is closed-form linear algebra in float64 on at most M x M matrices; no randomness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from zoorank.errors import InputError
from zoorank.ranking import best_first, snap_ties

__all__ = ["GaussianBelief", "Observation", "accuracy_observation", "averaged_posterior", "calibrate_link",
           "choose_rank", "expected_spread", "fit_prior", "fold_in", "for_zoo", "log_evidence", "normal_scores",
           "posterior", "score_observation", "shrinkage_priors", "similarity_weights", "top_chance",
           "tune_shrinkage"]

#: Smallest prior variance of a model's accuracy (accuracy units^2: a standard deviation of 0.5 points).
VAR_FLOOR = 0.005 ** 2
#: The rank of the SVD that fills missing entries unless :func:`choose_rank` picks another of :data:`IMPUTE_RANKS`.
IMPUTE_RANK = 4
IMPUTE_RANKS: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True)
class GaussianBelief:
    """A Gaussian over the accuracies of ``models``: ``mean`` [M], ``cov`` [M, M]; ``notes`` say what made it."""

    models: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    notes: tuple[str, ...] = field(default=())

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def interval(self, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` interval of each model's accuracy: (low [M], high [M])."""
        if not 0.0 < level < 1.0:
            raise InputError(f"interval level must be in (0, 1), got {level!r}")
        half = float(ndtri((1.0 + level) / 2.0)) * self.sd
        return self.mean - half, self.mean + half

    def order(self) -> list[int]:
        """Model indices, best first (posterior mean; ties up to ``zoorank.ranking.TIE_RTOL`` keep model order)."""
        return [int(i) for i in best_first(self.mean)]


def _weights(n: int, weights: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(f"task weights must be {n} finite non-negative numbers with a positive sum")
    return w / w.sum()


def _impute(A: np.ndarray, rank: int, iters: int = 50) -> np.ndarray:
    """Missing entries of ``A`` filled by a rank-``rank`` SVD fixed point (observed entries kept), started from each
    model's mean plus each task's offset; a model with no entry at all starts from the mean of all entries."""
    miss = np.isnan(A)
    if not miss.any():
        return A
    never = miss.all(axis=0)  # a model with no result at all starts at the mean of every result (the population)
    col = np.nanmean(np.where(never[None, :], np.nanmean(A), A), axis=0)
    row = np.nanmean(A - col, axis=1)
    row = np.where(np.isnan(row), 0.0, row)
    X = np.where(miss, col[None, :] + row[:, None], A)
    r = max(1, min(rank, min(A.shape) - 1))
    for _ in range(iters):
        mean = X.mean(axis=0)
        U, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
        low = mean + (U[:, :r] * s[:r]) @ Vt[:r]
        new = np.where(miss, low, A)
        if np.max(np.abs(new - X)) < 1e-9:
            X = new
            break
        X = new
    return X


def _shrinkage(Z: np.ndarray, w: np.ndarray) -> float:
    """Schäfer-Strimmer's intensity towards the diagonal for the weighted standardised rows ``Z`` [T, M]:
    ``sum_{i != j} Var(r_ij) / sum_{i != j} r_ij^2`` with ``r_ij = sum_t w_t z_ti z_tj / (1 - sum w^2)`` and
    ``Var(r_ij) = sum_w2 / (1 - sum_w2)^3 * sum_t w_t (z_ti z_tj - pbar_ij)^2`` (weighted moments; memory O(M^2))."""
    if Z.shape[0] < 3:
        return 1.0
    sw2 = float(np.sum(w ** 2))
    denom = 1.0 - sw2
    pbar = (Z * w[:, None]).T @ Z
    p2 = (Z ** 2 * w[:, None]).T @ (Z ** 2)
    var_r = (p2 - pbar ** 2) * sw2 / denom ** 3
    r = pbar / denom
    np.fill_diagonal(var_r, 0.0)
    np.fill_diagonal(r, 0.0)
    num, den = float(var_r.sum()), float((r ** 2).sum())
    return 1.0 if den <= 0 else float(np.clip(num / den, 0.0, 1.0))


def choose_rank(accuracies: np.ndarray, *, ranks: Sequence[int] = IMPUTE_RANKS, max_tasks: int | None = 10,
                seed: int = 0) -> tuple[int, dict[int, float]]:
    """The rank of the imputation of missing entries under which the prior's mean ranks held-out history best:
    leave each history task out (at most ``max_tasks`` of them, a seeded choice), impute the rest at each rank of
    ``ranks`` and take the weighted tau of the mean of the completed matrix against the held-out task's measured
    entries. Returns (the rank with the highest mean, ties to :data:`IMPUTE_RANK` and then the smaller rank,
    {rank: mean weighted tau}); (:data:`IMPUTE_RANK`, {}) when nothing is missing or fewer than 3 tasks remain (the
    rank then changes nothing, or nothing can be learned). The choice matters where a model was measured on few
    tasks: too low a rank ignores which tasks those were, too high a rank fits noise into the hole."""
    from zoorank.ranking import weighted_tau

    A = np.asarray(accuracies, dtype=np.float64)
    if not np.isnan(A).any() or A.shape[0] < 3:
        return IMPUTE_RANK, {}
    held = np.arange(A.shape[0])
    if max_tasks is not None and max_tasks < held.size:
        held = np.sort(np.random.default_rng([seed, A.shape[0]]).choice(held, max_tasks, replace=False))
    per: dict[int, list[float]] = {int(r): [] for r in ranks}
    for t in held:
        y = A[t]
        ok = np.flatnonzero(np.isfinite(y))
        rest = np.delete(A, t, axis=0)
        if ok.size < 3 or np.isnan(rest).all(axis=0).all():
            continue
        for r in per:
            per[r].append(weighted_tau(_impute(rest, r).mean(axis=0)[ok], y[ok]))
    means = {r: float(np.mean(v)) for r, v in per.items() if v}
    if not means:
        return IMPUTE_RANK, {}
    best = max(means, key=lambda r: (round(means[r], 9), r == IMPUTE_RANK, -r))
    return best, means


def fit_prior(accuracies: np.ndarray, models: Sequence[str], *, weights: Sequence[float] | None = None,
              shrinkage: float | None = None, rank: int = IMPUTE_RANK, var_floor: float = VAR_FLOOR) -> GaussianBelief:
    """The prior over a new task's accuracies from the history matrix ``accuracies`` [T, M] (NaN = missing;
    module doc): weighted mean, sample covariance shrunk towards its diagonal with intensity ``shrinkage`` in
    [0, 1] (None: Schäfer-Strimmer's analytic value; 1: a diagonal covariance, so that evidence on some models
    says nothing of the others; :func:`tune_shrinkage` chooses it on the history)."""
    if shrinkage is not None and not 0.0 <= float(shrinkage) <= 1.0:
        raise InputError(f"prior: shrinkage must be in [0, 1] or None, got {shrinkage!r}")
    A = np.array(accuracies, dtype=np.float64)
    if A.ndim != 2 or A.shape[1] != len(models):
        raise InputError(f"prior: the accuracy matrix must be [tasks, {len(models)} models], got {A.shape}")
    if A.shape[0] < 1 or np.isnan(A).all():
        raise InputError("prior: the knowledge base holds no accuracy of these models; record fine-tuned results "
                         "(zoorank kb record) first")
    if np.isinf(A).any():
        raise InputError("prior: the accuracy matrix holds infinite values")
    w = _weights(A.shape[0], weights)
    X = _impute(A, rank)
    mu = w @ X
    notes = [f"prior from {A.shape[0]} tasks" + ("" if weights is None else " weighted by similarity")]
    if A.shape[0] < 2:
        var = np.full(len(models), max(var_floor, float(np.var(X[0]))))
        return GaussianBelief(tuple(models), mu, np.diag(var), (*notes, "one task: diagonal covariance"))
    R = X - mu
    denom = 1.0 - float(np.sum(w ** 2))
    S = (R * w[:, None]).T @ R / denom
    d = np.maximum(np.diag(S), var_floor)
    Z = R / np.sqrt(d)
    lam = _shrinkage(Z, w) if shrinkage is None else float(shrinkage)
    corr = S / np.sqrt(np.outer(d, d))
    corr = (1.0 - lam) * corr + lam * np.eye(len(models))
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.sqrt(np.outer(d, d))
    notes.append(f"covariance shrunk towards its diagonal, lambda {lam:.2f}"
                 + (" (Schäfer-Strimmer)" if shrinkage is None else ""))
    return GaussianBelief(tuple(models), mu, (cov + cov.T) / 2.0, tuple(notes))


def for_zoo(belief: GaussianBelief, zoo: Sequence[str], var_floor: float = VAR_FLOOR,
            placement: Mapping[str, tuple[np.ndarray, float]] | None = None) -> tuple[GaussianBelief, list[int]]:
    """The belief over the models of ``zoo`` (in that order): the marginal of the fitted ones, and every model the
    belief does not know placed as a cold draw from the population (module doc), or, for the cold models named in
    ``placement`` ({model: (mixture weights over ``belief.models``, residual variance)}, from
    :class:`zoorank.methods.placement.ModelPlacement`), as that mixture of the fitted models plus its residual.
    Returns the belief and the indices (into ``zoo``) of the cold models."""
    zoo = list(zoo)
    if len(set(zoo)) != len(zoo):
        raise InputError("the zoo names a model twice")
    where = {m: i for i, m in enumerate(belief.models)}
    cold = [j for j, m in enumerate(zoo) if m not in where]
    if not cold:
        idx = [where[m] for m in zoo]
        return GaussianBelief(tuple(zoo), belief.mean[idx], belief.cov[np.ix_(idx, idx)], belief.notes), []
    mu, S = belief.mean, belief.cov
    M, C = len(mu), len(cold)
    a = np.full(M, 1.0 / M)  # ybar = a^T y
    v_r = max(float(np.var(mu)) + float(np.mean(np.diag(S))) - float(a @ S @ a), var_floor)
    placement = dict(placement or {})
    rows, var = [], []
    for j in cold:  # y_cold_j = a_j^T y + r_j
        w, v = placement.get(zoo[j], (a, v_r))
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (M,) or not np.all(np.isfinite(w)) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
            raise InputError(f"the placement of {zoo[j]} must be {M} non-negative weights summing to 1")
        rows.append(w)
        var.append(max(float(v), var_floor))
    L = np.vstack([np.eye(M), np.array(rows)])
    mean = L @ mu
    cov = L @ S @ L.T
    cov[M:, M:] += np.diag(var)
    pos = {j: M + k for k, j in enumerate(cold)}
    idx = [pos[j] if j in pos else where[m] for j, m in enumerate(zoo)]
    placed = [zoo[j] for j in cold if zoo[j] in placement]
    note = f"{C} cold model(s) placed as draws from the population of the {M} fitted models"
    if placed:
        note = (f"{C} cold model(s): {len(placed)} placed by their size and architecture (Fennec's meta phase) "
                f"among the {M} fitted models" + (f", {C - len(placed)} as population draws" if C > len(placed)
                                                  else ""))
    return (GaussianBelief(tuple(zoo), mean[idx], (cov + cov.T)[np.ix_(idx, idx)] / 2.0, (*belief.notes, note)),
            cold)


def similarity_weights(distances: np.ndarray, bandwidth: float | None) -> np.ndarray | None:
    """Kernel weights ``exp(-(d / bandwidth)^2)`` of the history tasks from their ``distances`` to the new task
    (None: bandwidth None = infinite, the population). A tiny floor keeps every task in."""
    if bandwidth is None:
        return None
    d = np.asarray(distances, dtype=np.float64)
    if bandwidth <= 0 or not np.all(np.isfinite(d)):
        raise InputError("similarity weights need a positive bandwidth and finite distances")
    w = np.exp(-((d - d.min()) / bandwidth) ** 2)
    return np.maximum(w, 1e-6 * w.max())


@dataclass(frozen=True)
class Observation:
    """A block of evidence ``u = y[idx] + c 1 + e``, ``e ~ N(0, noise^2 I)`` (module doc); ``offset``: c unknown."""

    idx: tuple[int, ...]
    values: np.ndarray
    noise: float
    offset: bool
    label: str = ""

    def __post_init__(self):
        if len(self.idx) != len(self.values) or len(set(self.idx)) != len(self.idx):
            raise InputError(f"observation {self.label!r}: one value per distinct model is needed")
        if not np.all(np.isfinite(self.values)):
            raise InputError(f"observation {self.label!r}: the values must be finite")
        if not (np.isfinite(self.noise) and self.noise > 0):
            raise InputError(f"observation {self.label!r}: the noise must be a positive number, got {self.noise!r}")


def accuracy_observation(idx: Sequence[int], accuracies: Sequence[float], noise: float = 0.01,
                         label: str = "revealed accuracies") -> Observation:
    """Fine-tuned accuracies of some models of the target (``noise``: one run's standard deviation)."""
    return Observation(tuple(int(i) for i in idx), np.asarray(accuracies, dtype=np.float64), float(noise), False,
                       label)


def top_chance(belief: GaussianBelief, k: int) -> np.ndarray:
    """Each model's chance under ``belief`` of beating the model ranked ``k``-th by the mean (module doc):
    ``Phi((m_i - m_b) / sd(y_i - y_b))``, 1 for that model itself (and for every model when ``k`` reaches the
    zoo's size). A zero difference variance gives 1 or 0 by the sign of the mean difference (1/2 at a tie)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    M = len(belief.mean)
    if k >= M:
        return np.ones(M)
    b = belief.order()[k - 1]
    diff = belief.mean - belief.mean[b]
    var = np.diag(belief.cov) + belief.cov[b, b] - 2.0 * belief.cov[:, b]
    sd = np.sqrt(np.clip(var, 0.0, None))
    out = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    ok = sd > 1e-12
    out[ok] = ndtr(diff[ok] / sd[ok])
    out[b] = 1.0
    return out


def normal_scores(scores: np.ndarray) -> np.ndarray:
    """Van der Waerden normal scores ``Phi^-1((rank - 1/2) / k)`` (ties, up to ``TIE_RTOL``, share a rank)."""
    s = snap_ties(np.asarray(scores, dtype=np.float64))
    return ndtri((rankdata(s) - 0.5) / s.size)


def expected_spread(belief: GaussianBelief, idx: Sequence[int]) -> float:
    """The prior's expected standard deviation of ``y[idx]`` around its own mean:
    ``sqrt((tr(C Sigma C) + |C mu|^2) / k)``, C the centring matrix of the block."""
    idx = list(idx)
    k = len(idx)
    mu = belief.mean[idx]
    S = belief.cov[np.ix_(idx, idx)]
    C = np.eye(k) - 1.0 / k
    return float(np.sqrt(max((np.trace(C @ S @ C) + np.sum((C @ mu) ** 2)) / k, 0.0)))


def score_observation(belief: GaussianBelief, idx: Sequence[int], scores: Sequence[float], rho: float,
                      label: str = "scores") -> Observation | None:
    """A metric's (or a ranker's) scores of the models ``idx`` as an offset-free observation, through a link of
    within-task correlation ``rho`` (module doc); None when the block cannot inform (fewer than 3 models,
    constant scores, ``rho <= 0``)."""
    idx = [int(i) for i in idx]
    s = np.asarray(scores, dtype=np.float64)
    if len(idx) < 3 or not np.all(np.isfinite(s)) or not np.isfinite(rho) or rho <= 0:
        return None
    z = normal_scores(s)
    if np.ptp(z) == 0:
        return None
    rho = min(float(rho), 0.999)
    s_y = expected_spread(belief, idx)
    if s_y <= 0:
        return None
    scale = s_y / rho / float(np.std(z))
    return Observation(tuple(idx), z * scale, s_y * np.sqrt(1.0 - rho ** 2) / rho, True, label)


def calibrate_link(scores: np.ndarray, truths: np.ndarray, *, min_models: int = 3) -> tuple[float, int]:
    """The within-task correlation of a signal's normal scores with the accuracies over the history:
    ``(rho, n_tasks)``, rho the back-transformed mean Fisher z (``atanh``) of the per-task Pearson correlations
    between :func:`normal_scores` of ``scores[t]`` and ``truths[t]`` ([T, M]; NaN = not measured), each task
    weighted by its models minus 3 (the Fisher z's inverse variance). (nan, 0) when no task has ``min_models``."""
    S, Y = np.asarray(scores, dtype=np.float64), np.asarray(truths, dtype=np.float64)
    if S.shape != Y.shape:
        raise InputError(f"calibrate_link: scores {S.shape} and truths {Y.shape} differ in shape")
    zs, ws = [], []
    for s, y in zip(S, Y, strict=True):
        ok = np.isfinite(s) & np.isfinite(y)
        if ok.sum() < max(min_models, 4):
            continue
        z = normal_scores(s[ok])
        if np.ptp(z) == 0 or np.ptp(y[ok]) == 0:
            continue
        r = float(np.clip(np.corrcoef(z, y[ok])[0, 1], -0.999, 0.999))
        zs.append(np.arctanh(r))
        ws.append(ok.sum() - 3)
    if not zs:
        return float("nan"), 0
    return float(np.tanh(np.average(zs, weights=ws))), len(zs)


def _stack(belief: GaussianBelief, observations: Sequence[Observation | None]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None:
    """The observations as one linear block ``u = H y + eps``, ``eps ~ N(0, diag(Rn))`` (offset blocks projected
    on their contrasts): (H, u, Rn, labels), or None when nothing informs."""
    M = len(belief.models)
    rows, values, noise = [], [], []
    used = []
    for ob in observations:
        if ob is None:
            continue
        if max(ob.idx) >= M or min(ob.idx) < 0:
            raise InputError(f"observation {ob.label!r} names a model outside the zoo of {M}")
        k = len(ob.idx)
        H = np.zeros((k, M))
        H[np.arange(k), list(ob.idx)] = 1.0
        u = np.asarray(ob.values, dtype=np.float64)
        if ob.offset:
            if k < 2:
                continue
            Q = _contrasts(k)  # [k-1, k], orthonormal rows orthogonal to 1
            H, u = Q @ H, Q @ u
        rows.append(H)
        values.append(u)
        noise.append(np.full(len(u), ob.noise ** 2))
        used.append(ob.label or "observation")
    if not rows:
        return None
    return np.vstack(rows), np.concatenate(values), np.concatenate(noise), used


def _bayes(belief: GaussianBelief, observations: Sequence[Observation | None]) -> tuple[GaussianBelief, float]:
    """Bayes' rule for the stacked observations and their log marginal likelihood, from one Cholesky factor of
    ``G = H Sigma H^T + R``: (the posterior, ``log N(u; H mu, G)``); (the belief itself, 0.0) when nothing informs."""
    block = _stack(belief, observations)
    if block is None:
        return belief, 0.0
    H, u, Rn, used = block
    Sigma = belief.cov
    SH = Sigma @ H.T
    G = H @ SH + np.diag(Rn)
    L = np.linalg.cholesky((G + G.T) / 2.0)
    K = np.linalg.solve(L.T, np.linalg.solve(L, SH.T)).T  # Sigma H^T G^-1
    resid = u - H @ belief.mean
    mean = belief.mean + K @ resid
    cov = Sigma - K @ SH.T
    cov = (cov + cov.T) / 2.0
    r = np.linalg.solve(L, resid)
    logev = float(-0.5 * (r @ r) - np.sum(np.log(np.diag(L))) - 0.5 * len(u) * np.log(2.0 * np.pi))
    return GaussianBelief(belief.models, mean, cov, belief.notes + tuple(f"observed: {u}" for u in used)), logev


def log_evidence(belief: GaussianBelief, observations: Sequence[Observation | None]) -> float:
    """The log marginal likelihood of the observations under ``belief``: with the stacked block
    ``u = H y + eps`` (offset blocks by their contrasts), ``log N(u; H mu, H Sigma H^T + R)``; 0.0 when nothing
    informs (every belief explains nothing equally well)."""
    return _bayes(belief, observations)[1]


def averaged_posterior(beliefs: Sequence[GaussianBelief], observations: Sequence[Observation | None]
                       ) -> tuple[GaussianBelief, np.ndarray]:
    """Bayesian model averaging over candidate priors (e.g. the covariance shrinkages of :data:`SHRINKAGE_GRID`),
    equally likely before the observations: ``w_j ∝ exp(log_evidence(prior_j, obs))``, the posterior the mixture
    ``sum_j w_j N(m_j, P_j)`` summarised by its moments (mean ``sum_j w_j m_j``, covariance
    ``sum_j w_j (P_j + (m_j - m)(m_j - m)^T)``). Returns (that belief, w). With no observation the weights are
    uniform and the mean is the priors' mean (one prior: itself)."""
    if not beliefs:
        raise InputError("averaged_posterior needs at least one belief")
    models = beliefs[0].models
    if any(b.models != models for b in beliefs):
        raise InputError("averaged_posterior: the beliefs must be over the same models")
    posts, logev = zip(*(_bayes(b, observations) for b in beliefs), strict=True)
    logev = np.asarray(logev)
    w = np.exp(logev - logev.max())
    w /= w.sum()
    mean = sum(wj * p.mean for wj, p in zip(w, posts, strict=True))
    cov = sum(wj * (p.cov + np.outer(p.mean - mean, p.mean - mean)) for wj, p in zip(w, posts, strict=True))
    notes = (*posts[0].notes, "averaged over " + ", ".join(f"{wj:.2f}" for wj in w) + " by evidence")
    return GaussianBelief(models, np.asarray(mean), (cov + cov.T) / 2.0, notes), w


def posterior(belief: GaussianBelief, observations: Sequence[Observation | None]) -> GaussianBelief:
    """Bayes' rule for the stacked observations (module doc); None entries are skipped."""
    return _bayes(belief, observations)[0]


def _contrasts(k: int) -> np.ndarray:
    """An orthonormal basis [k-1, k] of the vectors orthogonal to the all-ones vector (Helmert)."""
    Q = np.zeros((k - 1, k))
    for j in range(1, k):
        Q[j - 1, :j] = 1.0
        Q[j - 1, j] = -float(j)
        Q[j - 1] /= np.sqrt(j * (j + 1))
    return Q


#: The shrinkage intensities :func:`tune_shrinkage` tries (None = Schäfer-Strimmer's analytic value); 1.0, the
#: diagonal covariance, leaves the unobserved models at the prior and is chosen on ties (the safe side).
SHRINKAGE_GRID: tuple[float | None, ...] = (None, 0.5, 0.8, 0.95, 1.0)


def tune_shrinkage(accuracies: np.ndarray, models: Sequence[str], *, k: int = 3, draws: int = 5, seed: int = 0,
                   grid: Sequence[float | None] = SHRINKAGE_GRID, noise: float = 0.01,
                   max_tasks: int | None = None, rank: int = IMPUTE_RANK) -> tuple[float | None, dict]:
    """The shrinkage under which conditioning on ``k`` revealed accuracies (offset-free: their contrasts) best
    improves the ranking of a task's other models, as far as the history itself shows: leave each history task
    out, fit the prior on the rest (missing entries imputed at ``rank``) at each intensity of ``grid``, reveal
    ``k`` random entries (``draws`` times, seeded by ``(seed, task, draw)``) and measure the weighted tau of the
    posterior mean on the remaining models minus that of the prior. Returns (the intensity whose gain has the
    largest lower bound, mean minus one standard error, ties to the larger intensity, {intensity: that bound});
    1.0 when the history has fewer than 3 tasks.
    ``max_tasks``: leave out only that many history tasks (a seeded choice; large zoos).
    The diagonal's gain is exactly 0, so an intensity is chosen only when the history shows it helps.)"""
    from zoorank.ranking import weighted_tau

    A = np.asarray(accuracies, dtype=np.float64)
    if A.shape[0] < 3:
        return 1.0, {}
    held = np.arange(A.shape[0])
    if max_tasks is not None and max_tasks < held.size:
        held = np.sort(np.random.default_rng([seed, A.shape[0]]).choice(held, max_tasks, replace=False))
    per: dict = {lam: [] for lam in grid}
    for t in held:
        y = A[t]
        ok = np.flatnonzero(np.isfinite(y))
        if ok.size - k < 3:
            continue
        rest = _impute(np.delete(A, t, axis=0), rank)  # once per held-out task: the same for every intensity
        for lam in grid:
            prior = fit_prior(rest, models, shrinkage=lam, rank=rank)
            for d in range(draws):
                rng = np.random.default_rng([seed, t, d])
                seen = rng.choice(ok, k, replace=False)
                others = np.setdiff1d(ok, seen)
                ob = accuracy_observation(seen, y[seen], noise)
                post = posterior(prior, [Observation(ob.idx, ob.values, ob.noise, True, ob.label)])
                per[lam].append(weighted_tau(post.mean[others], y[others])
                                - weighted_tau(prior.mean[others], y[others]))
    gains = {lam: (float(np.mean(g) - np.std(g) / np.sqrt(len(g))) if len(g) > 1 else 0.0)
             for lam, g in per.items()}
    order = sorted(gains, key=lambda lam: (round(gains[lam], 9), 1.0 if lam is None else float(lam) + 1.0))
    return order[-1], gains


def shrinkage_priors(accuracies: np.ndarray, models: Sequence[str], *,
                     grid: Sequence[float | None] = SHRINKAGE_GRID, weights: Sequence[float] | None = None,
                     rank: int = IMPUTE_RANK) -> list[GaussianBelief]:
    """:func:`fit_prior` at each covariance shrinkage of ``grid``, the history's holes imputed once for all."""
    X = _impute(np.asarray(accuracies, dtype=np.float64), rank)
    return [fit_prior(X, models, weights=weights, shrinkage=lam, rank=rank) for lam in grid]


def fold_in(accuracies: np.ndarray, models: Sequence[str], observations: Sequence[Observation | None], *,
            grid: Sequence[float | None] = SHRINKAGE_GRID, weights: Sequence[float] | None = None,
            rank: int = IMPUTE_RANK) -> tuple[GaussianBelief, dict]:
    """What the history ``accuracies`` [T, M] and the target's ``observations`` (e.g. revealed accuracies,
    offset-free) say of the target: the prior of :func:`fit_prior` at each covariance shrinkage of ``grid``,
    averaged by the evidence of the observations (:func:`averaged_posterior`). The diagonal (1.0) is one of the
    candidates: where the observed models' contrasts are better explained without the history's correlations, it
    takes the weight and the other models stay near the prior. Returns (the belief, {shrinkage: weight})."""
    priors = shrinkage_priors(accuracies, models, grid=grid, weights=weights, rank=rank)
    belief, w = averaged_posterior(priors, observations)
    return belief, dict(zip(grid, map(float, w), strict=True))
