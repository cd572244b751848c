"""Every default location zoorank reads or writes, in one place.

Two kinds of places, kept apart:

- **caches** (safe to delete; they only cost time to rebuild): ``cache_home()`` is ``$XDG_CACHE_HOME/zoorank``
  (``~/.cache/zoorank``). Features live in ``features_dir()`` (``$ZOORANK_CACHE`` when set); text embeddings,
  metric scores and archi2vec embeddings are siblings of it (inside ``$ZOORANK_CACHE`` when that is set, so that one
  variable moves or isolates every cache).
- **user data** (what ``zoorank fit``, ``zoorank kb`` and MetaRank's training write; never inside a cache):
  ``data_home()`` is ``$ZOORANK_HOME``, else ``$XDG_DATA_HOME/zoorank`` (``~/.local/share/zoorank``). The knowledge
  base is ``kb_path()`` (``$ZOORANK_KB`` when set), the fitted rankers ``rankers_dir()`` (``$ZOORANK_RANKERS``
  when set), the trained MetaRank of ``zoorank metrics recommend`` ``metarank_model_path()``.

The ZooBench directory of a source checkout is ``zoobench_dir()``: ``$ZOORANK_ZOOBENCH``, else
``benchmarks/zoobench`` under the current directory (the package never looks for the checkout from its own files).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["archi2vec_dir", "cache_home", "data_home", "embeddings_dir", "features_dir", "kb_path",
           "metarank_model_path", "rankers_dir", "scores_dir", "zoobench_dir", "zoobench_work_dir"]


def _env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/zoorank``, else ``~/.cache/zoorank``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "zoorank"


def features_dir() -> Path:
    """The feature cache: ``$ZOORANK_CACHE``, else ``<cache_home>/features``."""
    return _env("ZOORANK_CACHE") or cache_home() / "features"


def _cache(name: str) -> Path:
    root = _env("ZOORANK_CACHE")
    return (root / name) if root is not None else cache_home() / name


def embeddings_dir() -> Path:
    """Cached text embeddings (MetaRank's encoder): ``$ZOORANK_CACHE/embeddings`` or ``<cache_home>/embeddings``."""
    return _cache("embeddings")


def scores_dir() -> Path:
    """Cached metric scores (:class:`zoorank.store.scores.ScoreStore`)."""
    return _cache("metric_scores")


def archi2vec_dir() -> Path:
    """Cached archi2vec embeddings of networks."""
    return _cache("archi2vec")


def data_home() -> Path:
    """``$ZOORANK_HOME``, else ``$XDG_DATA_HOME/zoorank``, else ``~/.local/share/zoorank``."""
    home = _env("ZOORANK_HOME")
    if home is not None:
        return home
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "zoorank"


def kb_path() -> Path:
    """The default knowledge base: ``$ZOORANK_KB``, else ``<data_home>/kb.sqlite``."""
    return _env("ZOORANK_KB") or data_home() / "kb.sqlite"


def rankers_dir() -> Path:
    """Where ``zoorank fit`` writes and ``zoorank rank`` reads the fitted rankers: ``$ZOORANK_RANKERS``, else
    ``<data_home>/rankers``."""
    return _env("ZOORANK_RANKERS") or data_home() / "rankers"


def metarank_model_path() -> Path:
    """The trained MetaRank ``zoorank metrics recommend`` reads by default: ``<data_home>/metarank/model.npz``."""
    return data_home() / "metarank" / "model.npz"


def zoobench_dir() -> Path:
    """ZooBench's directory: ``$ZOORANK_ZOOBENCH``, else ``./benchmarks/zoobench`` (a source checkout's)."""
    return _env("ZOORANK_ZOOBENCH") or Path("benchmarks") / "zoobench"


def zoobench_work_dir() -> Path:
    """The scratch folder of ``zoorank bench build`` into the default directory: ``./.zoobench-work``."""
    return Path(".zoobench-work")
