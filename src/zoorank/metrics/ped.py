"""PED — Potential Energy Decline (Li et al., ICCV 2023), wrapped around SFDA."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics import _fisher
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_features, check_xy, finite_score
from zoorank.metrics.sfda import sfda_core

_PAPER = (
    "Li, Hu, Ge, Shan, Duan: Exploring Model Transferability through the Lens of Potential "
    "Energy, ICCV 2023"
)


def _pair_displacement(means, radii, *, nsigma, time_step, constant):
    """Per-class displacement of one PED step, all C×C class pairs at once.

    For classes i ≠ j: d_ij = ‖μ_i − μ_j‖, overlap F_ij = max(|ns|·R_i + |ns|·R_j − d_ij, 0),
    length L_ij = min(½·t²·constant·F_ij, F_ij), and class i moves by Σ_j L_ij·(μ_i − μ_j)/d_ij
    (away from every overlapping class). Pairs with identical means (d = 0) have no direction
    and do not push each other. Returns ``disp`` [C, D].
    """
    centred = means - means.mean(axis=0)  # Gram on centred means: small cancellation
    sq = np.einsum("cd,cd->c", centred, centred)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (centred @ centred.T)
    np.fill_diagonal(d2, 0.0)
    d = np.sqrt(np.maximum(d2, 0.0))
    ns = abs(nsigma)
    F = np.maximum(ns * radii[:, None] + ns * radii[None, :] - d, 0.0)
    length = np.minimum(0.5 * time_step**2 * constant * F, F)
    np.fill_diagonal(length, 0.0)
    W = np.divide(length, d, out=np.zeros_like(d), where=d > 0)
    return W.sum(axis=1)[:, None] * means - W @ means


@_fisher.quiet
def ped_move(
    X: np.ndarray,
    y: np.ndarray,
    C: int,
    general: np.ndarray,
    *,
    time_step: float = 0.1,
    nsigma: float = 0.6,
    exit_ratio: float = 0.5,
    constant: float = 1.0,
    max_steps: int = 6,
    eps: float = 1e-3,
) -> tuple[np.ndarray, int]:
    """The PED feature motion: returns (moved features [N, D] float64 copy, steps kept)."""
    smean = general.mean(axis=0)
    sstd = np.maximum(general.std(axis=0), eps)
    # Class statistics of the standardised X_s = (X − smean)/sstd without forming X_s:
    # μ_c(X_s) = (μ_c(X) − smean)/sstd and x_s − μ_c(X_s) = (x − μ_c(X))/sstd.
    counts, means_x = _fisher.class_means(X, y, C)
    means = (means_x - smean) / sstd
    # R_c = sqrt(Σ_d var_cd) (ddof 0) = RMS distance of class c's samples to their mean
    sq = np.empty(X.shape[0])
    for rows in _fisher.row_blocks(*X.shape):
        dev = X[rows] - np.take(means_x, y[rows], axis=0, mode="clip")
        dev /= sstd
        sq[rows] = np.einsum("nd,nd->n", dev, dev)
    radii = np.sqrt(np.bincount(y, weights=sq, minlength=C) / counts)
    # Every step moves each class rigidly, so class radii never change and only the means move.
    total = np.zeros_like(means)
    first_change = None
    steps = 0
    for _ in range(max_steps):
        disp = _pair_displacement(means, radii, nsigma=nsigma, time_step=time_step,
                                  constant=constant)
        change = float(np.abs(disp).sum())
        if first_change is None:
            first_change = change
        if not (first_change > 0 and change / first_change > exit_ratio):
            break  # upstream: ratio ≤ exit_ratio (or 0/0 = NaN) discards the step and stops
        means += disp
        total += disp
        steps += 1
    moved = np.take(total * sstd, y, axis=0, mode="clip")
    moved += X
    return moved, steps


@register(
    "ped",
    summary="Potential-energy-decline feature motion, then SFDA on the moved features",
    paper=_PAPER,
    needs_labels=True,
    needs_features=True,
    needs_general_features=True,
    invariances=(),
)
def ped(
    features,
    labels=None,
    *,
    source_probs=None,
    general_features=None,
    time_step: float = 0.1,
    nsigma: float = 0.6,
    exit_ratio: float = 0.5,
    constant: float = 1.0,
    max_steps: int = 6,
    eps: float = 1e-3,
    double_softmax: bool = True,
) -> float:
    """PED score (higher = better, in [0, 1]): SFDA after simulating the classes' repulsion.

    Paper: Li, Hu, Ge, Shan, Duan, "Exploring Model Transferability through the Lens of Potential
    Energy", ICCV 2023. Matches lixiaotong97/PED ``metrics.py::PED_Score`` @
    e5af6e79779cbbf16c3c1b4e1961fa74c9a282d2
    with the CLI defaults of ``evaluate_metric_cpu.py`` (time_step=0.1, nsigma=0.6 — the function's
    own default is 2.0 —, exit_ratio=0.5, constant=1, type='SFDA'); conformance rtol 1e-6.

    Inputs: ``features`` [N, D], ``labels`` [N] 0..C-1 (every class present, N ≥ C + 1) and the
    required keyword ``general_features`` [G, D] (upstream: the same model's features on ImageNet
    val), used only for rescaling. ``source_probs`` is ignored.

    Each step (at most ``max_steps`` = 6), in the standardised space
    X_s = (X − mean(G)) / max(std(G), eps):
      class means μ_c, radii R_c = sqrt(Σ_d var_cd) (ddof 0);
      for every class pair: d = ‖μ_i − μ_j‖, F = max(|ns|·R_i + |ns|·R_j − d, 0),
      displacement length min(½·t²·constant·F, F) pushing the two classes apart along μ_i − μ_j;
      every sample of class c moves by its class's summed displacement; change = Σ|displacements|.
      The first step's change is the reference; a step whose change / first ≤ exit_ratio is
      discarded and the loop stops (the first step is kept whenever it moves anything).
    Score = SFDA (:func:`zoorank.metrics.sfda.sfda`, same defaults, ``double_softmax`` passed on)
    on the moved features, un-standardised back to the input space.

    Exact shortcuts: the pairwise displacements are computed for all C×C pairs at once from the
    C×C Gram matrix of the (centred) class means (upstream builds a C×C×D tensor). Each step moves
    whole classes rigidly, so radii never change and the loop only updates the C class means; the
    samples are moved once at the end (X + Σ displacements·std). Same numbers up to rounding.

    Degenerate rules: missing ``general_features`` raises InputError (upstream:
    NotImplementedError); std(G) is floored at ``eps`` per dimension, so constant or single-row
    general features are fine; two classes with identical means do not push each other (upstream:
    NaN direction); if the first step moves nothing (no overlapping classes; upstream: 0/0) the
    features are left unchanged. The SFDA rules apply to the moved features.
    """
    X, y, C = check_xy(features, labels, "ped")
    if general_features is None:
        raise InputError(
            "ped: needs general_features= [G, D] (the same model's features on a general dataset, "
            "e.g. ImageNet val), used to standardise the feature space"
        )
    G = check_features(general_features, "ped", name="general_features")
    if G.shape[1] != X.shape[1]:
        raise InputError(
            f"ped: general_features have {G.shape[1]} dimensions but features have {X.shape[1]}"
        )
    if max_steps < 0 or not np.isfinite([time_step, nsigma, exit_ratio, constant, eps]).all():
        raise InputError("ped: max_steps must be ≥ 0 and the other parameters finite")
    if not eps > 0:
        raise InputError(f"ped: eps must be > 0, got {eps}")
    moved, _ = ped_move(X, y, C, G, time_step=time_step, nsigma=nsigma, exit_ratio=exit_ratio,
                        constant=constant, max_steps=max_steps, eps=eps)
    del X, G  # drop our float64 copies (if any) before SFDA allocates
    score = sfda_core(moved, y, C, double_softmax=double_softmax, metric="ped", overwrite=True)
    return finite_score(score, "ped")
