"""Probe sampling (the subset of a task the zoo's models are run on) and seeded train/test splits.

Both draw one random priority per image from ``numpy.random.default_rng(seed)`` and keep, within each class, the
images with the smallest priorities. So a selection is a deterministic function of (dataset, sizes, seed), and a
larger probe contains a smaller one drawn with the same seed (class by class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoorank.data._identity import hash_array, hash_parts
from zoorank.data.dataset import ImageDataset
from zoorank.errors import InputError


@dataclass(frozen=True)
class Probe:
    """A probe selection: ``indices`` into the dataset (sorted), their ``labels`` (None when unlabelled), the
    ``identity`` of the selection (dataset identity + indices: what feature caches are keyed by) and how it
    was drawn."""

    indices: np.ndarray
    labels: np.ndarray | None
    identity: str
    dataset_identity: str
    seed: int
    n_max: int | None
    per_class_max: int | None

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def apply(self, dataset: ImageDataset) -> ImageDataset:
        """The probe images as a dataset (a subset of ``dataset``, which must be the dataset it was drawn from)."""
        if dataset.identity != self.dataset_identity:
            raise InputError(f"this probe was drawn from another dataset than {dataset.name!r} (identity differs)")
        return dataset.subset(self.indices, name=f"{dataset.name}[probe]")


def _priorities(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def _check_int(value: int | None, what: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def allocate(counts: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Split ``total`` samples over classes proportionally to ``counts`` (largest remainders), giving every
    class at least ``min(count, minimum)`` and at most ``count``. Requires ``sum(counts) >= total``."""
    counts = np.asarray(counts, dtype=np.int64)
    floor = np.minimum(counts, minimum)
    if floor.sum() > total:
        raise InputError(f"cannot keep {minimum} sample(s) in each of {counts.size} classes with only {total}")
    target = total * counts / counts.sum()
    alloc = np.clip(np.floor(target).astype(np.int64), floor, counts)
    # Too many (floors pushed some classes up): take back from the classes furthest above their target.
    while alloc.sum() > total:
        excess = np.where(alloc > floor, alloc - target, -np.inf)
        alloc[int(np.argmax(excess))] -= 1
    # Too few: give to the classes furthest below their target (largest remainder), ties to the lower class id.
    while alloc.sum() < total:
        deficit = np.where(alloc < counts, target - alloc, -np.inf)
        alloc[int(np.argmax(deficit))] += 1
    return alloc


def probe(dataset: ImageDataset, n_max: int | None = None, *, per_class_max: int | None = None,
          seed: int = 0) -> Probe:
    """Draw a probe set: at most ``n_max`` images in all and ``per_class_max`` per class (None = no cap).

    Labelled datasets are sampled stratified: each class gets a share proportional to its (capped) size, and
    keeps at least 2 images (1 if ``n_max`` is below twice the number of classes; fewer only if the class has
    fewer); ``n_max`` below the number of classes is an error. Unlabelled datasets get a plain seeded subsample
    (``per_class_max`` does not apply). Deterministic given ``seed``.
    """
    n_max = _check_int(n_max, "n_max", 1)
    per_class_max = _check_int(per_class_max, "per_class_max", 1)
    n = len(dataset)
    prio = _priorities(n, seed)
    if dataset.labels is None:
        k = n if n_max is None else min(n, n_max)
        chosen = np.sort(np.argsort(prio, kind="stable")[:k])
    else:
        labels = dataset.labels
        n_classes = dataset.n_classes
        counts = np.bincount(labels, minlength=n_classes)
        caps = counts if per_class_max is None else np.minimum(counts, per_class_max)
        present = int((caps > 0).sum())
        if n_max is not None and n_max < present:
            raise InputError(f"n_max={n_max} is smaller than the number of classes ({present}) of "
                             f"{dataset.name!r}: every class needs at least one probe image")
        if n_max is None or caps.sum() <= n_max:
            alloc = caps
        else:
            alloc = allocate(caps, n_max, 2 if n_max >= 2 * present else 1)
        # Order images by (class, priority) and keep the first alloc[c] of each class.
        order = np.lexsort((prio, labels))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank_in_class = np.empty(n, dtype=np.int64)
        rank_in_class[order] = np.arange(n) - np.repeat(starts, counts)
        chosen = np.flatnonzero(rank_in_class < alloc[labels])
    chosen = chosen.astype(np.int64)
    return Probe(
        indices=chosen,
        labels=None if dataset.labels is None else dataset.labels[chosen],
        identity=hash_parts("probe", dataset.identity, hash_array(chosen)),
        dataset_identity=dataset.identity,
        seed=int(seed),
        n_max=n_max,
        per_class_max=per_class_max,
    )


def accepts_rows(source: object) -> bool:
    """Whether ``source.features`` can run a model on part of the probe set (takes ``rows``); a view over
    another source answers through its own ``accepts_rows`` attribute."""
    import inspect

    answer = getattr(source, "accepts_rows", None)
    if isinstance(answer, bool):
        return answer
    fetch = getattr(source, "features", None)
    return fetch is not None and "rows" in inspect.signature(fetch).parameters


def fraction_rows(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Rows (sorted indices into ``labels``) of a stratified ``fraction`` of a probe set: ``ceil(fraction * N)``
    rows split over the classes in proportion to their sizes (:func:`allocate`), each class keeping at least 2
    (all it has if fewer; 1 when the total cannot give every class 2), the rows of smallest seeded priority in
    each class, so a smaller fraction is contained in a larger one. ``fraction == 1`` is every row."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise InputError("fraction_rows: labels must be a non-empty 1-D array")
    if isinstance(fraction, bool) or not isinstance(fraction, float | int | np.floating) or not 0 < fraction <= 1:
        raise InputError(f"the probe fraction must be a number in (0, 1], got {fraction!r}")
    if fraction == 1:
        return np.arange(y.size, dtype=np.int64)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    total = min(y.size, max(int(np.ceil(fraction * y.size)), classes.size))
    alloc = allocate(counts, total, 2 if total >= 2 * classes.size else 1)
    prio = _priorities(y.size, seed)
    order = np.lexsort((prio, inverse))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank_in_class = np.empty(y.size, dtype=np.int64)
    rank_in_class[order] = np.arange(y.size) - np.repeat(starts, counts)
    return np.flatnonzero(rank_in_class < alloc[inverse]).astype(np.int64)


def split(dataset: ImageDataset, test_fraction: float = 0.2, seed: int = 0, *,
          stratify: bool = True) -> tuple[ImageDataset, ImageDataset]:
    """A fixed, seeded train/test split: ``(train, test)`` subsets of ``dataset`` (``parent_indices`` hold their
    indices). Labelled datasets are split class by class (``stratify``): each class with at least 2 images puts
    ``round(count * test_fraction)`` of them, clipped to 1..count-1, in test; a class with one image stays in
    train. Unlabelled ones (or ``stratify=False``) put ``round(N * test_fraction)`` images, clipped to 1..N-1,
    in test."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float) or not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}")
    n = len(dataset)
    if n < 2:
        raise InputError(f"cannot split {dataset.name!r}: it has {n} image(s), at least 2 are needed")
    prio = _priorities(n, seed)
    is_test = np.zeros(n, dtype=bool)
    if dataset.labels is not None and stratify:
        for c in range(dataset.n_classes):
            members = np.flatnonzero(dataset.labels == c)
            if members.size < 2:
                continue
            k = int(np.clip(round(members.size * test_fraction), 1, members.size - 1))
            is_test[members[np.argsort(prio[members], kind="stable")[:k]]] = True
    else:
        k = int(np.clip(round(n * test_fraction), 1, n - 1))
        is_test[np.argsort(prio, kind="stable")[:k]] = True
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return (dataset.subset(train_idx, name=f"{dataset.name}[train]"),
            dataset.subset(test_idx, name=f"{dataset.name}[test]"))
