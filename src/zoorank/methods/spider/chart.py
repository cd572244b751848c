"""The spider chart of Model Spider (Zhang et al., NeurIPS 2023, section 5.4, figure 4b): a model's affinity to
clusters of task domains, drawn as a radar plot.

The tasks are grouped into clusters (given, e.g. the domains of ``tasks.csv``, or found by k-means on the task
tokens, :func:`cluster_tasks`). A model's ability on a cluster is approximated by the mean similarity that the
trained Spider gives between the model token and the tasks of the cluster (equation 6):

    affinity(m, K) = (1/|K|) Σ_{task ∈ K} ŝ(θ_m, task token),

reported raw and rescaled to [0, 1] with the minimum and maximum similarity of ANY model on the charted tasks, so
that the charts of different models share one scale (:func:`affinities`). :func:`spider_chart` draws one or
several models on the same axes with matplotlib (Agg backend) and writes a PNG and an SVG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from zoorank.errors import InputError

__all__ = ["affinities", "cluster_tasks", "member_labels", "spider_chart"]


def cluster_tasks(tokens: Mapping[str, np.ndarray], n_clusters: int = 6, *, seed: int = 0) -> dict[str, str]:
    """Group tasks by k-means (scikit-learn, ``n_init=10``) on the mean of each task token's class centres,
    standardised over the tasks; clusters are named ``cluster 1`` … by order of their first task."""
    from sklearn.cluster import KMeans

    names = list(tokens)
    if len(names) < 2:
        raise InputError("spider chart: need at least 2 tasks to cluster")
    k = min(int(n_clusters), len(names))
    if k < 1:
        raise InputError(f"spider chart: n_clusters must be >= 1, got {n_clusters}")
    X = np.stack([np.asarray(tokens[t], dtype=np.float64).mean(axis=0) for t in names])
    sd = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    order: dict[int, int] = {}
    for lab in labels:
        order.setdefault(int(lab), len(order) + 1)
    return {t: f"cluster {order[int(lab)]}" for t, lab in zip(names, labels, strict=True)}


def member_labels(clusters: Mapping[str, str], max_names: int = 2) -> dict[str, str]:
    """Rename clusters by their first members (``"hebrew_letters, georgian_letters +3"``) so that a chart's axes
    say which tasks they stand for; tasks keep their order of appearance."""
    members: dict[str, list[str]] = {}
    for task, c in clusters.items():
        members.setdefault(c, []).append(task)
    names = {c: ", ".join(ts[:max_names]) + (f" +{len(ts) - max_names}" if len(ts) > max_names else "")
             for c, ts in members.items()}
    return {task: names[c] for task, c in clusters.items()}


def affinities(spider, tokens: Mapping[str, np.ndarray], clusters: Mapping[str, str],
               models: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {cluster: {"similarity": mean ŝ, "scaled": in [0, 1]}}}`` for ``models`` (default: all of the
    Spider's) over the tasks of ``tokens`` (task -> encoder class centres) grouped by ``clusters`` (task ->
    cluster name; every task of ``tokens`` must have one)."""
    missing = [t for t in tokens if t not in clusters]
    if missing:
        raise InputError(f"spider chart: no cluster for task(s) {', '.join(missing[:5])}")
    names = list(spider.models_ if models is None else models)
    unknown = [m for m in names if m not in spider.models_]
    if unknown:
        raise InputError(f"spider chart: unknown model(s) {', '.join(unknown[:5])}")
    if not tokens:
        raise InputError("spider chart: no tasks")
    S = np.stack([spider.predict(tokens[t]) for t in tokens])  # [tasks, models]
    lo, hi = float(S.min()), float(S.max())
    span = hi - lo if hi > lo else 1.0
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        groups.setdefault(str(clusters[t]), []).append(i)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for m in names:
        j = spider.models_.index(m)
        out[m] = {c: {"similarity": float(S[rows, j].mean()), "scaled": float((S[rows, j].mean() - lo) / span)}
                  for c, rows in groups.items()}
    return out


def spider_chart(values: Mapping[str, Mapping[str, float]], path: str | Path, *, title: str = "") -> list[Path]:
    """Draw a radar chart of ``values`` ({model: {cluster: value in [0, 1]}}, every model over the same clusters,
    at least 3) and write ``path`` with the suffixes ``.png`` and ``.svg``; returns the two paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not values:
        raise InputError("spider chart: no model to draw")
    axes_names = list(next(iter(values.values())))
    if len(axes_names) < 3:
        raise InputError(f"spider chart: needs at least 3 clusters (axes), got {len(axes_names)}")
    for m, v in values.items():
        if list(v) != axes_names:
            raise InputError(f"spider chart: model {m!r} has clusters {list(v)}, expected {axes_names}")
        if not all(np.isfinite(float(x)) for x in v.values()):
            raise InputError(f"spider chart: model {m!r} has non-finite values")
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    angles = np.linspace(0, 2 * np.pi, len(axes_names), endpoint=False)
    closed = np.append(angles, angles[0])
    fig = plt.figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(projection="polar")
    for m, v in values.items():
        r = np.array([float(v[c]) for c in axes_names])
        ax.plot(closed, np.append(r, r[0]), linewidth=1.8, label=m)
        ax.fill(closed, np.append(r, r[0]), alpha=0.15)
    ax.set_xticks(angles)
    ax.set_xticklabels(axes_names, fontsize=9)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=7)
    ax.set_title(title or "Model Spider: affinity to task clusters", fontsize=11, pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.28, 1.12), fontsize=8)
    out = [base.with_suffix(".png"), base.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight")
    plt.close(fig)
    return out
