"""Stable identity hashes for datasets: what the feature cache is keyed by.

Two policies for files (chosen per dataset, ``identity="auto"|"content"|"stat"``):

- ``content``: every file's bytes are hashed (with its relative path). Same content gives the same identity on any
  machine and in any folder; any edit changes it. Costs one read of every file.
- ``stat``: relative path, size and modification time (ns) of every file. Costs one ``stat`` per file (about a
  second for 100k files), reads no pixels; copying a folder without keeping mtimes, or ``touch``, changes the
  identity, which only costs a recomputation of cached features.

``auto`` (the default) hashes content when the dataset is small (at most :data:`CONTENT_MAX_FILES` files and
:data:`CONTENT_MAX_BYTES` bytes in all), and falls back to ``stat`` above that, so opening a 100k-image folder
stays cheap.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from zoorank.errors import InputError

IdentityMode = Literal["auto", "content", "stat"]

#: ``auto`` hashes file contents up to this many files ...
CONTENT_MAX_FILES = 20_000
#: ... and up to this many bytes in all; larger datasets are identified by (path, size, mtime_ns).
CONTENT_MAX_BYTES = 256 * 2**20

_DIGEST_SIZE = 16


def new_hasher() -> hashlib.blake2b:
    """The hash function used for every identity (BLAKE2b, 128-bit digest, 32 hex characters)."""
    return hashlib.blake2b(digest_size=_DIGEST_SIZE)


def hash_parts(*parts: str | bytes) -> str:
    """Hash a sequence of strings/bytes, length-prefixed so that part boundaries matter."""
    h = new_hasher()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def hash_array(array: np.ndarray) -> str:
    """Hash of an array's dtype, shape and bytes (C order)."""
    arr = np.ascontiguousarray(array)
    h = new_hasher()
    h.update(f"{arr.dtype.str}|{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def check_mode(mode: str) -> IdentityMode:
    """Validate an identity policy name."""
    if mode not in ("auto", "content", "stat"):
        raise InputError(f"identity must be 'auto', 'content' or 'stat', got {mode!r}")
    return mode  # type: ignore[return-value]


def hash_files(paths: Sequence[Path], names: Sequence[str], mode: IdentityMode = "auto") -> tuple[str, str]:
    """Identity of a list of files, in the given order; ``names`` are the (relative) names that enter the hash.

    Returns ``(hexdigest, mode_used)``. A file that vanished or cannot be read still contributes (as missing), so
    the identity is always defined; reading it will be reported by the dataset.
    """
    check_mode(mode)
    stats: list[os.stat_result | None] = []
    for p in paths:
        try:
            stats.append(os.stat(p))
        except OSError:
            stats.append(None)
    if mode == "auto":
        total = sum(s.st_size for s in stats if s is not None)
        mode = "content" if len(paths) <= CONTENT_MAX_FILES and total <= CONTENT_MAX_BYTES else "stat"
    h = new_hasher()
    h.update(f"files:{mode}:{len(paths)}\n".encode())
    for path, name, st in zip(paths, names, stats, strict=True):
        if st is None:
            h.update(f"{name}\0missing\n".encode())
        elif mode == "stat":
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            h.update(f"{name}\0{st.st_size}\0".encode())
            try:
                with open(path, "rb") as f:
                    h.update(hashlib.file_digest(f, new_hasher).digest())
            except OSError:
                h.update(b"unreadable")
            h.update(b"\n")
    return h.hexdigest(), mode


def relative_names(paths: Iterable[Path], base: Path | None) -> list[str]:
    """Names of files relative to ``base`` (POSIX form) where possible, absolute otherwise."""
    out = []
    for p in paths:
        if base is not None:
            try:
                out.append(p.relative_to(base).as_posix())
                continue
            except ValueError:
                pass
        out.append(p.as_posix())
    return out
