"""A fitted ranker's file: one ``.npz`` of named arrays plus a JSON header (no pickle), written and read the same
way by every numpy ranker (Fennec, the belief ranker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError


def write_npz(path: str | Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``header`` (JSON, under the key ``header``) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, header=np.array(json.dumps(header)))
    return path


def read_npz(path: str | Path, who: str, what: str, fmt: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a file written by :func:`write_npz` whose header's format is ``fmt``; an InputError
    starting with ``who`` when the file is missing, not such a file (``what``: e.g. "a saved Fennec model") or of
    another format."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{who}: no saved model at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            arrays = {k: z[k] for k in z.files if k != "header"}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{who}: {path} is not {what} ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        got = header.get("format") if isinstance(header, dict) else None
        raise InputError(f"{who}: {path} has format {got}, expected {fmt}")
    return header, arrays
