"""Learned rankers (Fennec, Model Spider, MetaRank) under one contract (:mod:`.base`): ``fit`` offline from
history, ``score`` online from a :class:`TaskEvidence`, ``save`` / ``load``; :func:`make_ranker` builds one by name.
:mod:`.kb_adapter` reads their ``fit`` arguments from a knowledge base.

``zoorank.methods.Fennec``, ``zoorank.methods.ModelSpider`` and ``zoorank.methods.MetaRank`` are imported on
first access (Model Spider and MetaRank need torch).
"""

from __future__ import annotations

from typing import Any

from zoorank.methods.base import Ranker, TaskEvidence, make_ranker

__all__ = ["Fennec", "MetaRank", "ModelSpider", "Ranker", "TaskEvidence", "make_ranker"]

_WHERE = {"Fennec": "zoorank.methods.fennec.model", "ModelSpider": "zoorank.methods.spider",
          "MetaRank": "zoorank.methods.metarank"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'zoorank.methods' has no attribute {name!r}")
