"""Content-addressed on-disk cache of extracted features (and source-head logits).

An entry is keyed by everything that determines the arrays: the model's identity hash, the
dataset's identity hash, the probe selection and the preprocessing (see :func:`cache_key`). Each
entry is one ``.npz`` file holding the arrays plus a JSON header with their SHA-256 digests.

- Writes are atomic: the file is written under a temporary name in the same folder, flushed to
  disk and renamed over the final name, so a killed run never leaves half an entry.
- Reads verify the digests: a truncated or corrupted entry is reported, deleted and treated as a
  miss, so the caller recomputes it.
- The cache is safe to delete at any time; that only costs the time to recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoorank.paths import features_dir

FORMAT_VERSION = 1




def cache_key(*, model: str, dataset: str, probe: str, preprocess: str, extra: str = "") -> str:
    """The SHA-256 hex key of one (model, dataset, probe selection, preprocessing) combination."""
    parts = {"v": FORMAT_VERSION, "model": model, "dataset": dataset, "probe": probe,
             "preprocess": preprocess, "extra": extra}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _digest(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.dtype).encode() + str(a.shape).encode())
    h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


@dataclass
class CachedFeatures:
    features: np.ndarray
    logits: np.ndarray | None
    meta: dict = field(default_factory=dict)
    indices: np.ndarray | None = None  # which dataset items the rows belong to


class FeatureCache:
    """The feature cache rooted at ``root`` (created on first write)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else features_dir()
        self.problems: list[tuple[str, str]] = []  # (entry path, why it was discarded)

    def path(self, key: str) -> Path:
        if len(key) < 8 or not all(ch in "0123456789abcdef" for ch in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> CachedFeatures | None:
        """The cached entry, or None on a miss; a corrupt entry is deleted and counts as a miss."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                features = z["features"]
                logits = z["logits"] if "logits" in z.files else None
                indices = z["indices"] if "indices" in z.files else None
            if header.get("format") != FORMAT_VERSION or header.get("key") != key:
                raise ValueError("header does not match this entry")
            if _digest(features) != header["features_sha256"]:
                raise ValueError("features checksum mismatch")
            if (logits is None) != (header.get("logits_sha256") is None) or (
                logits is not None and _digest(logits) != header["logits_sha256"]
            ):
                raise ValueError("logits checksum mismatch")
            if (indices is None) != (header.get("indices_sha256") is None) or (
                indices is not None and _digest(indices) != header["indices_sha256"]
            ):
                raise ValueError("indices checksum mismatch")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            self.problems.append((str(p), f"{type(exc).__name__}: {exc}"))
            p.unlink(missing_ok=True)
            return None
        return CachedFeatures(features, logits, header.get("meta", {}), indices)

    def put(self, key: str, features: np.ndarray, logits: np.ndarray | None = None, meta: dict | None = None,
            *, indices: np.ndarray | None = None) -> Path:
        """Store an entry atomically (temporary file, fsync, rename) and return its path."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        features = np.ascontiguousarray(features)
        header = {
            "format": FORMAT_VERSION,
            "key": key,
            "features_sha256": _digest(features),
            "logits_sha256": None if logits is None else _digest(np.ascontiguousarray(logits)),
            "indices_sha256": None if indices is None else _digest(np.ascontiguousarray(indices)),
            "meta": meta or {},
        }
        arrays = {"header": np.array(json.dumps(header)), "features": features}
        if logits is not None:
            arrays["logits"] = np.ascontiguousarray(logits)
        if indices is not None:
            arrays["indices"] = np.ascontiguousarray(indices)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    def delete(self, key: str) -> bool:
        p = self.path(key)
        existed = p.exists()
        p.unlink(missing_ok=True)
        return existed

    def entries(self) -> list[Path]:
        return sorted(self.root.glob("??/*.npz")) if self.root.exists() else []

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.entries())

    def clear(self) -> int:
        """Delete every entry (and stray temporary files); returns how many entries were removed."""
        n = 0
        for p in self.entries():
            p.unlink(missing_ok=True)
            n += 1
        if self.root.exists():
            for tmp in self.root.glob("??/.*.tmp"):
                tmp.unlink(missing_ok=True)
        return n


class NoFeatureCache:
    """A feature cache that keeps nothing: every ``get`` is a miss, ``put`` stores nothing. For measuring what
    extraction costs (:mod:`benchmarks.end_to_end`) and for runs that must not touch the disk."""

    root = None

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []  # the FeatureCache interface; never filled

    def __contains__(self, key: str) -> bool:
        return False

    def get(self, key: str) -> CachedFeatures | None:
        return None

    def put(self, key: str, features: np.ndarray, logits: np.ndarray | None = None, meta: dict | None = None,
            *, indices: np.ndarray | None = None) -> None:
        return None
