"""NCE — negative conditional entropy of target labels given source labels (Tran et al., 2019)."""

from __future__ import annotations

import numpy as np

from zoorank.errors import InputError
from zoorank.metrics._registry import register
from zoorank.metrics._validate import check_labels, check_probs, finite_score, require_samples

_PAPER = (
    "Tran, Nguyen, Hassner: Transferability and Hardness of Supervised Classification Tasks, "
    "ICCV 2019"
)

#: ε that dbolya/parc ``NegativeCrossEntropy.forward`` adds to every joint cell and marginal.
DBOLYA_EPS = 1e-5
#: Added to p(y|z) before the log upstream (thuml/LogME).
_LOG_EPS = 1e-20

_VARIANTS = ("thuml", "dbolya")


def _probs(source_probs, n, metric):
    P = check_probs(source_probs, None, metric)
    if P.shape[0] != n:
        raise InputError(
            f"{metric}: labels have length {n} but source_probs have {P.shape[0]} rows"
        )
    return P


def _source_labels(source_labels, n, metric):
    z = np.asarray(source_labels)
    if z.ndim != 1:
        raise InputError(f"{metric}: source_labels must be 1-D [N], got shape {z.shape}")
    if z.shape[0] != n:
        raise InputError(
            f"{metric}: source_labels have length {z.shape[0]} but there are {n} samples"
        )
    integral = np.issubdtype(z.dtype, np.integer) or z.dtype == bool
    if not integral and not (
        np.issubdtype(z.dtype, np.floating) and np.all(np.isfinite(z)) and np.all(z == np.round(z))
    ):
        raise InputError(f"{metric}: source_labels must be non-negative integers")
    z = z.astype(np.int64)
    if z.min() < 0:
        raise InputError(f"{metric}: source_labels must be non-negative integers, found {z.min()}")
    return z


@register(
    "nce",
    summary="Negative conditional entropy H(Y|Z) of target labels given hard source labels",
    paper=_PAPER,
    needs_labels=True,
    needs_features=False,
    needs_source_probs=True,
)
def nce(
    features=None,
    labels=None,
    *,
    source_probs=None,
    source_labels=None,
    variant: str = "thuml",
    n_source_classes: int | None = None,
) -> float:
    """NCE = −H(Y|Z) (≤ 0; higher = better).

    Default (``variant="thuml"``) matches ``thuml/LogME`` ``NCE.py``
    @ 56551ca94a3295bcc37e6a01b1291911af985f07 (same numbers as ``tllib/ranking/nce.py``;
    conformance rtol 1e-10):

        z_i = argmax_z source_probs[i, z]          (hard source labels)
        p(y, z) = #{i: y_i = y, z_i = z}/N,  p(z) = Σ_y p(y, z),  p(y|z) = p(y, z)/p(z)
        H(Y|Z) = Σ_{z: p(z)>0} p(z)·Σ_y −p(y|z)·log(p(y|z) + 1e-20)

    ``variant="dbolya"`` is ``dbolya/parc`` ``methods.py::NegativeCrossEntropy``
    @ ddfca43a84d35328897d107d6f86e860b11801ce: ε = 1e-5 is added to *every* joint cell of the
    C×Cs table and to every marginal p(z), over all Cs source classes (unobserved ones included;
    their cells contribute ε·log(ε/ε) = 0, so Cs does not change the value), and
    NCE = Σ_{y,z} p̃(y,z)·log(p̃(y,z)/p̃(z)). It differs from the default in the 3rd decimal.

    Inputs: ``labels`` [N] in 0..C-1, every class present; either ``source_probs`` [N, Cs]
    (softmax outputs; argmax is taken, ties → lowest index as numpy) or ``source_labels`` [N]
    (precomputed hard labels, non-negative integers). When both are given, ``source_labels`` is
    used for z and ``source_probs`` (still validated) only supplies Cs. ``features`` is unused.

    Parameters
    ----------
    source_labels : 1-D int array, optional
        Hard source labels z; overrides argmax(source_probs).
    variant : {"thuml", "dbolya"}
    n_source_classes : int, optional
        Cs for the dbolya variant when only ``source_labels`` is given (default
        max(source_labels) + 1); ignored when ``source_probs`` is given (its width is Cs).

    Computation: the joint is one ``bincount`` over (z, y) pairs, O(N + C·Cs).

    Degenerate input (documented rule): always finite. Source classes that never occur are
    skipped (p(z) = 0), as upstream; a single target class per source class gives 0 (perfect).
    """
    metric = "nce"
    if variant not in _VARIANTS:
        raise InputError(f"{metric}: variant must be one of {list(_VARIANTS)}, got {variant!r}")
    y, C = check_labels(labels, None, metric)
    N = y.shape[0]
    if source_labels is None:
        P = _probs(source_probs, N, metric)  # raises when source_probs is missing too
        z, Cs = P.argmax(axis=1), P.shape[1]
    else:
        z = _source_labels(source_labels, N, metric)
        top = int(z.max())
        if source_probs is not None:
            Cs = _probs(source_probs, N, metric).shape[1]
        else:
            Cs = top + 1 if n_source_classes is None else int(n_source_classes)
        if top >= Cs:
            raise InputError(
                f"{metric}: source_labels reach {top} but there are only {Cs} source classes"
            )
    require_samples(metric, N, C + 1, f"more samples than the {C} classes")
    joint = np.bincount(z * C + y, minlength=Cs * C).reshape(Cs, C) / N  # [Cs, C]
    if variant == "dbolya":
        joint_e = joint + DBOLYA_EPS
        marginal = joint.sum(axis=1) + DBOLYA_EPS  # counts_z/N + ε
        return finite_score(np.sum(joint_e * np.log(joint_e / marginal[:, None])), metric)
    p_z = joint.sum(axis=1)
    used = p_z > 0
    cond = joint[used] / p_z[used, None] + _LOG_EPS
    entropy = -np.sum(cond * np.log(cond), axis=1)
    return finite_score(-np.sum(entropy * p_z[used]), metric)
