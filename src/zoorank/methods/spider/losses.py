"""Training losses of Model Spider (Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models
Efficiently", NeurIPS 2023): the paper's ranking loss (equation 4) and the two alternatives of its table 4 /
appendix C.2 (MSE regression and ListMLE).

Notation: a batch of B training tasks, each with predicted scores ŝ [M] for the M models (higher = better) and
a supervision vector t [M] (higher = better; Copeland scores, equations 7–8, or one metric's scores).

**Ranking loss, equation 4.** With ↓t the operator that lists the models by decreasing supervision
(t_{↓t(1)} ≥ t_{↓t(2)} ≥ …), the loss of one task is the Plackett–Luce negative log-likelihood of the
supervised order, one softmax cross-entropy per ranked position:

    ℓ_rank(ŝ, t) = Σ_{m=1}^{M} −log( exp(ŝ_{↓t(m)}) / Σ_{l=m}^{M} exp(ŝ_{↓t(l)}) ).

Here it is averaged over the M − 1 non-trivial positions (the last term is identically 0) and over the batch,
as the per-position cross-entropy of the authors' formulation. Copeland supervision has ties (half points); the
order ↓t is then ambiguous, and this implementation resolves it deterministically: the denominator of model i
runs over every model not strictly above it, {j : t_j ≤ t_i} (tied models are in each other's denominators,
Breslow's rule). Without ties this is exactly equation 4; it is minimised (→ 0) by scores that follow the true
order with growing margins, and any swap of two models raises it.

**ListMLE** (Xia et al., ICML 2008, the paper's reference [80]): the same Plackett–Luce likelihood of ONE
permutation π consistent with t, ties broken uniformly at random (a fresh draw per call, from ``generator``),
summed over positions and averaged over the batch:

    ℓ_ListMLE(ŝ, t) = Σ_{m=1}^{M} [ −ŝ_{π(m)} + log Σ_{l=m}^{M} exp(ŝ_{π(l)}) ].

Equation 4 and ListMLE share the likelihood family; what tells them apart here is what the paper's ablation
compares in practice — the normalisation (per position vs per list) and the handling of tied supervision
(deterministic group denominators vs a random tie-break).

**MSE**: regression of the scores on the supervision min–max normalised per task to [0, 1]
(constant supervision → 0.5):  ℓ_MSE = mean_{b, m} (ŝ_bm − t̃_bm)².

All losses take torch tensors [B, M] (or [M] for one task) and return a scalar tensor; bad shapes or
non-finite values raise :class:`zoorank.errors.InputError`.
"""

from __future__ import annotations

import torch

from zoorank.errors import InputError

__all__ = ["LOSSES", "listmle_loss", "mse_loss", "normalise_targets", "ranking_loss"]


def _check(scores: torch.Tensor, truth: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(scores, torch.Tensor) or not isinstance(truth, torch.Tensor):
        raise InputError(f"{what}: scores and truth must be torch tensors")
    s = scores if scores.dim() == 2 else scores.unsqueeze(0)
    t = truth if truth.dim() == 2 else truth.unsqueeze(0)
    if s.dim() != 2 or s.shape != t.shape:
        raise InputError(f"{what}: scores {tuple(scores.shape)} and truth {tuple(truth.shape)} must both be "
                         f"[M] or [B, M] of the same shape")
    if s.shape[1] < 2:
        raise InputError(f"{what}: a ranking needs at least 2 models, got {s.shape[1]}")
    if not torch.isfinite(t).all() or not torch.isfinite(s.detach()).all():
        raise InputError(f"{what}: scores or truth contain NaN or infinite values")
    return s, t.to(s.dtype)


def ranking_loss(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Equation 4 of Model Spider (module doc): mean over tasks and the M − 1 ranked positions of
    −ŝ_i + log Σ_{j: t_j ≤ t_i} exp(ŝ_j); ties in ``truth`` share their denominators."""
    s, t = _check(scores, truth, "ranking loss")
    below = t.unsqueeze(1) <= t.unsqueeze(2)  # [B, i, j]: model j is not strictly above model i
    masked = s.unsqueeze(1).expand_as(below).masked_fill(~below, float("-inf"))
    terms = torch.logsumexp(masked, dim=2) - s  # [B, M]
    return terms.sum(dim=1).mean() / (s.shape[1] - 1)


def listmle_loss(scores: torch.Tensor, truth: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): Plackett–Luce negative log-likelihood of one order consistent with ``truth``
    (ties broken at random with ``generator``), summed over positions, averaged over tasks."""
    s, t = _check(scores, truth, "ListMLE")
    noise = torch.rand(t.shape, generator=generator, dtype=t.dtype)
    # sort by truth descending; among ties, by a random key (lexicographic via a stable two-pass sort)
    order = torch.argsort(noise, dim=1)
    t_shuffled = torch.gather(t, 1, order)
    by_truth = torch.argsort(-t_shuffled, dim=1, stable=True)
    perm = torch.gather(order, 1, by_truth)
    ranked = torch.gather(s, 1, perm)
    tail = torch.logcumsumexp(ranked.flip(1), dim=1).flip(1)  # log Σ_{l ≥ m} exp(ŝ_π(l))
    return (tail - ranked).sum(dim=1).mean()


def normalise_targets(truth: torch.Tensor) -> torch.Tensor:
    """Supervision min–max scaled per task (row) to [0, 1]; a constant row becomes 0.5."""
    t = truth if truth.dim() == 2 else truth.unsqueeze(0)
    lo, hi = t.min(dim=1, keepdim=True).values, t.max(dim=1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (t - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                      torch.full_like(t, 0.5))
    return out if truth.dim() == 2 else out.squeeze(0)


def mse_loss(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the scores and the per-task min–max normalised supervision."""
    s, t = _check(scores, truth, "MSE loss")
    return ((s - normalise_targets(t)) ** 2).mean()


#: name -> loss, as :class:`zoorank.methods.spider.ModelSpider` accepts them (``loss=``).
LOSSES = {"rank": ranking_loss, "listmle": listmle_loss, "mse": mse_loss}
