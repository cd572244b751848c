"""Access to the public reference vectors in ``../shared/conformance`` (read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CONFORMANCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


def load(metric: str) -> dict:
    """The arrays of ``<metric>.npz`` as a dict, plus ``meta`` (the parsed ``meta_json``)."""
    path = CONFORMANCE_DIR / f"{metric}.npz"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path} (they live in ../shared/conformance)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out.pop("meta_json")))
    return out
