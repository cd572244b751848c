"""Model zoos: specs (timm, torchvision, Hugging Face, local files), loading, features and logits.

Importing this package needs no torch; :func:`load_model` and the loading names import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoorank.zoo.spec import (
    SOURCES,
    ModelSpec,
    load_zoo,
    offline_mobilenet_v2_path,
    offline_mobilenet_v2_spec,
    save_zoo,
    specs_from_entries,
)

if TYPE_CHECKING:
    from zoorank.zoo.loading import LoadedModel, count_layers, load_model, resolve_device
    from zoorank.zoo.preprocess import Preprocess

_LAZY = {
    "LoadedModel": "zoorank.zoo.loading",
    "load_model": "zoorank.zoo.loading",
    "count_layers": "zoorank.zoo.loading",
    "resolve_device": "zoorank.zoo.loading",
    "Preprocess": "zoorank.zoo.preprocess",
}

__all__ = [
    "SOURCES",
    "LoadedModel",
    "ModelSpec",
    "Preprocess",
    "count_layers",
    "load_model",
    "load_zoo",
    "offline_mobilenet_v2_path",
    "offline_mobilenet_v2_spec",
    "resolve_device",
    "save_zoo",
    "specs_from_entries",
]


def __getattr__(name: str) -> Any:
    """Import the torch-dependent names on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoorank.zoo' has no attribute {name!r}")
