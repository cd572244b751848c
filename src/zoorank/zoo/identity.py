"""Stable identity hashes of models: what was built (source, ref, arch, head) and with which weights.

The weights part is the SHA-256 of the weights file's bytes when the model was loaded from a file,
and otherwise the SHA-256 of its state dict: for each entry, in sorted key order, the key, dtype,
shape and the raw little-endian tensor bytes. Both are the same in every process for the same
weights, and change when any single weight changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def state_dict_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a state dict's keys, dtypes, shapes and tensor bytes (non-tensors by repr)."""
    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        h.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu").contiguous()
            h.update(f"|{t.dtype}|{tuple(t.shape)}|".encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(f"|{value!r}|".encode())
    return h.hexdigest()


def model_identity(source: str, ref: str, arch: str | None, num_classes: int | None, weights_digest: str) -> str:
    """The identity hash: SHA-256 of a canonical JSON of what was built and the weights digest."""
    payload = {"source": source, "ref": ref, "arch": arch, "num_classes": num_classes, "weights": weights_digest}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
