"""Feature extraction: pooled penultimate features and source-head logits of a model on a dataset,
batched, memory-bounded and cached.

One forward pass per batch gives both arrays (:meth:`LoadedModel.features_and_logits`). Images are
decoded and preprocessed one batch at a time, so memory is bounded by the batch plus the output
arrays (float32 [n, D] and [n, K]). Unreadable images are skipped and reported by the dataset
(:attr:`ImageDataset.problems`); the rows that were extracted are listed in ``indices``.

:func:`cached_extract` puts results in a :class:`~zoorank.store.feature_cache.FeatureCache` keyed by
(model identity, dataset identity, probe selection, preprocessing), so a second run does no forward
pass and a killed sweep resumes with the models that are missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from zoorank.data import ImageDataset
from zoorank.errors import InputError
from zoorank.store.feature_cache import FeatureCache, cache_key
from zoorank.zoo.loading import LoadedModel


@dataclass
class Extracted:
    """Features of one model on some items of a dataset."""

    model: str
    features: np.ndarray  # float32 [n, D]
    logits: np.ndarray | None  # float32 [n, K] or None for a model without a source head
    indices: np.ndarray  # int64 [n]: the dataset items of the rows (unreadable images left out)
    from_cache: bool
    seconds: float
    forward_passes: int  # batches run through the model (0 when served from the cache)
    cache_key: str | None = None  # the feature-cache entry (set by :func:`cached_extract`)


def extract_features(
    model: LoadedModel,
    dataset: ImageDataset,
    indices=None,
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Extracted:
    """Run ``model`` over ``dataset`` items ``indices`` (all when None) in batches of ``batch_size``.

    ``progress(n)`` is called after each batch with the number of images it held.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    t0 = time.perf_counter()
    n = idx.shape[0]
    feats = logits = None
    kept = np.empty(n, dtype=np.int64)
    filled = 0
    passes = 0
    batch: list[torch.Tensor] = []
    batch_idx: list[int] = []

    def flush() -> None:
        nonlocal feats, logits, filled, passes
        f, lg = model.features_and_logits(torch.stack(batch))
        passes += 1
        if feats is None:  # allocate once the output sizes are known
            feats = np.empty((n, f.shape[1]), dtype=np.float32)
            logits = None if lg is None else np.empty((n, lg.shape[1]), dtype=np.float32)
        b = f.shape[0]
        feats[filled: filled + b] = f.numpy()
        if logits is not None:
            logits[filled: filled + b] = lg.numpy()
        kept[filled: filled + b] = batch_idx
        filled += b
        if progress is not None:
            progress(b)
        batch.clear()
        batch_idx.clear()

    for i, image in dataset.iter_images(idx):
        batch.append(model.preprocess(image))
        batch_idx.append(i)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    skipped = n - filled
    if progress is not None and skipped:
        progress(skipped)
    if feats is None:
        raise InputError(f"model {model.name!r}: none of the {n} requested images of {dataset.name!r} could be read")
    return Extracted(
        model=model.name,
        features=feats[:filled],
        logits=None if logits is None else logits[:filled],
        indices=kept[:filled],
        from_cache=False,
        seconds=time.perf_counter() - t0,
        forward_passes=passes,
    )


def extraction_key(model: LoadedModel, dataset: ImageDataset, probe_identity: str) -> str:
    """The feature-cache key of (model, dataset, probe selection, preprocessing)."""
    preprocess = json.dumps(model.preprocess_config, sort_keys=True, default=str)
    return cache_key(model=model.identity, dataset=dataset.identity, probe=probe_identity, preprocess=preprocess)


def cached_extract(
    model: LoadedModel,
    dataset: ImageDataset,
    indices=None,
    *,
    probe_identity: str | None = None,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Extracted:
    """:func:`extract_features` through the feature cache: a hit costs no forward pass.

    ``probe_identity`` names the selection ``indices`` (a :class:`zoorank.data.Probe` identity); when
    None it is derived from the indices themselves.
    """
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    if probe_identity is None:
        probe_identity = "indices:" + cache_key(model="", dataset="", probe=idx.tobytes().hex(), preprocess="")
    key = extraction_key(model, dataset, probe_identity)
    if cache is not None:
        t0 = time.perf_counter()
        hit = cache.get(key)
        if hit is not None and hit.indices is not None:
            if progress is not None:
                progress(len(idx))
            return Extracted(model.name, hit.features, hit.logits, hit.indices, True,
                             time.perf_counter() - t0, 0, key)
    out = extract_features(model, dataset, idx, batch_size=batch_size, progress=progress)
    out.cache_key = key
    if cache is not None:
        cache.put(key, out.features, out.logits, indices=out.indices,
                  meta={"model": model.name, "dataset": dataset.name, "n": int(out.indices.shape[0])})
    return out
