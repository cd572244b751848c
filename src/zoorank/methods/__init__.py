"""Learned rankers (Fennec, Model Spider, MetaRank): ``fit`` offline from history, ``rank`` online.

``zoorank.methods.Fennec``, ``zoorank.methods.ModelSpider`` and ``zoorank.methods.MetaRank`` are imported on
first access (Model Spider and MetaRank need torch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Fennec", "MetaRank", "ModelSpider"]

_WHERE = {"Fennec": "zoorank.methods.fennec.model", "ModelSpider": "zoorank.methods.spider",
          "MetaRank": "zoorank.methods.metarank"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'zoorank.methods' has no attribute {name!r}")
