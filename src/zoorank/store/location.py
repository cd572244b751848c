"""Where the knowledge base lives: the default file, and paths or ``sqlite:///`` URLs given by the user."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoorank.errors import InputError

KB_FILENAME = "kb.sqlite"
MEMORY = ":memory:"




@dataclass(frozen=True)
class Location:
    """A resolved knowledge-base location: the dialect name and the database (a file path or ``:memory:``)."""

    dialect: str
    database: str

    @property
    def is_memory(self) -> bool:
        """True for an in-memory database (nothing on disk; gone when closed)."""
        return self.database == MEMORY

    def __str__(self) -> str:
        return self.database if not self.is_memory else "sqlite:///:memory:"


def resolve(target: str | os.PathLike | None) -> Location:
    """Resolve a path, a ``sqlite:///`` URL (SQLAlchemy spelling) or None (the default) to a :class:`Location`.

    ``sqlite:///relative/kb.sqlite``, ``sqlite:////absolute/kb.sqlite``, ``sqlite://`` and
    ``sqlite:///:memory:`` (in memory) are understood; other URL schemes raise InputError (only SQLite
    is implemented so far).
    """
    if target is None:
        from zoorank.paths import kb_path

        target = kb_path()
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str) or not target.strip():
        raise InputError(f"knowledge base location must be a file path or a sqlite:/// URL, got {target!r}")
    if "://" in target:
        scheme, rest = target.split("://", 1)
        if scheme.lower() not in {"sqlite", "sqlite+pysqlite"}:
            raise InputError(
                f"knowledge base URL {target!r}: only SQLite is supported so far (got '{scheme}'); "
                "use a file path or a URL like sqlite:///path/to/kb.sqlite"
            )
        if "?" in rest:
            raise InputError(f"knowledge base URL {target!r}: query parameters are not supported; remove '?...'")
        if rest in {"", "/", "/:memory:"}:
            return Location("sqlite", MEMORY)
        if not rest.startswith("/"):
            raise InputError(
                f"knowledge base URL {target!r} is not a sqlite URL; write sqlite:///relative/kb.sqlite "
                "or sqlite:////absolute/kb.sqlite"
            )
        target = rest[1:]  # sqlite:///x -> "x" (relative), sqlite:////x -> "/x" (absolute)
    if target == MEMORY:
        return Location("sqlite", MEMORY)
    path = Path(target).expanduser()
    if path.is_dir():
        raise InputError(f"knowledge base path {path} is a folder; give a file such as {path / KB_FILENAME}")
    return Location("sqlite", str(path))
