"""Everything database-specific the knowledge base needs, in one place.

The rest of :mod:`zoorank.store` writes plain, portable SQL (``CREATE TABLE``, ``INSERT``, ``SELECT``,
``UPDATE``, ``DELETE``, ``SAVEPOINT``) with named ``:param`` placeholders, which both the standard
library's ``sqlite3`` and SQLAlchemy's ``text()`` accept. What differs between database engines lives
here: how to connect, the auto-increment primary key, how to start a write transaction, how to list
tables, the "insert or update" statement and how to recognise a "database is busy" error. Only SQLite
is implemented; a server database (through a SQLAlchemy URL) would add a second dialect class.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Literal

IfExists = Literal["replace", "keep", "error"]


class SQLiteDialect:
    """SQLite through the standard library: WAL journal, busy timeout, ``BEGIN IMMEDIATE`` writes."""

    name = "sqlite"
    #: Column definition of an auto-increment integer primary key.
    id_column = "INTEGER PRIMARY KEY"
    #: Exceptions the driver raises (for callers that translate them).
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError
    OperationalError = sqlite3.OperationalError

    def connect(self, database: str, *, timeout: float) -> sqlite3.Connection:
        """Open ``database`` (a file path or ``:memory:``) in autocommit mode; transactions are explicit."""
        conn = sqlite3.connect(database, timeout=timeout, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def configure(self, conn: sqlite3.Connection) -> None:
        """Switch a file database to write-ahead logging (readers never block the one writer)."""
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() == "wal":
            # In WAL mode NORMAL is still crash-safe (a power cut may drop the last commits, never corrupt).
            conn.execute("PRAGMA synchronous = NORMAL")

    def begin_write(self, conn: sqlite3.Connection) -> None:
        """Start a transaction that takes the write lock now, so two writers never deadlock on upgrade."""
        conn.execute("BEGIN IMMEDIATE")

    def begin_read(self, conn: sqlite3.Connection) -> None:
        """Start a read transaction (a consistent snapshot across several SELECTs)."""
        conn.execute("BEGIN")

    def is_busy(self, exc: BaseException) -> bool:
        """True for "database is locked" / "database is busy": worth retrying after a short wait."""
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        msg = str(exc).lower()
        return "locked" in msg or "busy" in msg

    def tables(self, conn: sqlite3.Connection) -> set[str]:
        """Names of the user tables in the database."""
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows if not r[0].startswith("sqlite_")}

    def insert(
        self, table: str, columns: Sequence[str], *, key: Sequence[str], if_exists: IfExists, update: Sequence[str]
    ) -> str:
        """An INSERT of one row of named parameters; on a clash of ``key``: replace ``update`` columns,
        keep the old row, or fail with an integrity error (``if_exists``).

        ``INSERT ... ON CONFLICT (...) DO UPDATE / DO NOTHING`` is understood by SQLite >= 3.24 and
        PostgreSQL; a MySQL dialect would return ``ON DUPLICATE KEY UPDATE`` here instead.
        """
        cols = ", ".join(columns)
        vals = ", ".join(f":{c}" for c in columns)
        sql = f"INSERT INTO {table} ({cols}) VALUES ({vals})"
        if if_exists == "replace":
            sets = ", ".join(f"{c} = excluded.{c}" for c in update)
            sql += f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
        elif if_exists == "keep":
            sql += f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
        return sql


def sqlite_version_ok() -> bool:
    """The upsert syntax needs SQLite >= 3.24 (2018)."""
    return sqlite3.sqlite_version_info >= (3, 24, 0)
