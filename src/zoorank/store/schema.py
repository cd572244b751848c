"""The knowledge-base schema and its versioned migrations.

Every schema change is one entry of :data:`MIGRATIONS` (target version -> description and SQL
statements). Opening a knowledge base reads the highest row of ``schema_version`` and applies the
missing migrations in order, inside one write transaction, each followed by its ``schema_version`` row:
a file written by an older zoorank is brought forward, a crash mid-migration leaves the file as it was,
and a file written by a *newer* zoorank is refused with a clear error rather than misread.

Versions:

- 0: an empty database (a new file).
- 1: ``models``, ``tasks``, ``results`` (one current value per model, task and kind), ``schema_version``.
- 2: ``results.params`` (parameters of the measurement, JSON), ``results_history`` (values that were
  replaced) and an index on ``results.kind`` for fast matrix export.
- 3: ``class_centres``: per model and task, the class centres of the model's own (standardised) features on the
  task's probe set (Model Spider's PTM-specific task token, what its re-ranking is trained on), one array per
  pair stored as base64 text of little-endian float32 (portable: no BLOB type).

The SQL is portable: only ``{id}`` (the auto-increment primary key) differs between databases and is
filled in by the dialect. Types are the standard ones (``VARCHAR``, ``TEXT``, ``INTEGER``, ``BIGINT``,
``DOUBLE PRECISION``); times are ISO 8601 UTC strings, JSON is stored as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zoorank.errors import InputError


@dataclass(frozen=True)
class Migration:
    """One step of the schema: bring a database from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "models, tasks and results",
        (
            """CREATE TABLE schema_version (
                version INTEGER NOT NULL PRIMARY KEY,
                description VARCHAR(200) NOT NULL,
                applied_at VARCHAR(40) NOT NULL
            )""",
            """CREATE TABLE models (
                id {id},
                name VARCHAR(512) NOT NULL UNIQUE,
                identity VARCHAR(128),
                architecture VARCHAR(256),
                source VARCHAR(1024),
                params BIGINT,
                layers INTEGER,
                meta TEXT NOT NULL,
                created_at VARCHAR(40) NOT NULL
            )""",
            """CREATE TABLE tasks (
                id {id},
                name VARCHAR(512) NOT NULL UNIQUE,
                identity VARCHAR(128),
                n_classes INTEGER,
                n_samples BIGINT,
                description TEXT,
                meta TEXT NOT NULL,
                created_at VARCHAR(40) NOT NULL
            )""",
            """CREATE TABLE results (
                id {id},
                model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
                task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                kind VARCHAR(64) NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                provenance TEXT,
                created_at VARCHAR(40) NOT NULL,
                UNIQUE (model_id, task_id, kind)
            )""",
            "CREATE INDEX results_task ON results (task_id)",
        ),
    ),
    Migration(
        2,
        "result parameters, result history, kind index",
        (
            "ALTER TABLE results ADD COLUMN params TEXT",
            "CREATE INDEX results_kind ON results (kind)",
            """CREATE TABLE results_history (
                id {id},
                model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
                task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                kind VARCHAR(64) NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                provenance TEXT,
                params TEXT,
                created_at VARCHAR(40) NOT NULL,
                replaced_at VARCHAR(40) NOT NULL
            )""",
            "CREATE INDEX results_history_key ON results_history (model_id, task_id, kind)",
        ),
    ),
    Migration(
        3,
        "class centres of each model's features on each task",
        (
            """CREATE TABLE class_centres (
                id {id},
                model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
                task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                n_classes INTEGER NOT NULL,
                dim INTEGER NOT NULL,
                centres TEXT NOT NULL,
                provenance TEXT,
                created_at VARCHAR(40) NOT NULL,
                UNIQUE (model_id, task_id)
            )""",
            "CREATE INDEX class_centres_task ON class_centres (task_id)",
        ),
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: int = MIGRATIONS[-1].version

#: Tables of a current knowledge base.
TABLES = frozenset({"schema_version", "models", "tasks", "results", "results_history", "class_centres"})


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def current_version(conn: Any, dialect: Any, where: str | Path) -> int:
    """The schema version of an open database: 0 when it is empty; InputError when it is not a knowledge base."""
    tables = dialect.tables(conn)
    if "schema_version" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    if tables:
        raise InputError(
            f"{where} is a database but not a zoorank knowledge base (it has tables {', '.join(sorted(tables))} "
            "and no schema_version); point --kb / ZOORANK_KB at another file"
        )
    return 0


def check_not_newer(version: int, where: str | Path) -> None:
    """InputError when ``version`` was written by a newer zoorank than this one."""
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{where} has knowledge-base schema version {version}, newer than the {SCHEMA_VERSION} this zoorank "
            "knows; upgrade zoorank to open it"
        )


def migrate(conn: Any, dialect: Any, where: str | Path) -> tuple[int, int]:
    """Bring the database forward to :data:`SCHEMA_VERSION`; returns (version before, version after).

    Must run inside a write transaction (the caller commits, or rolls back on error), so that a
    concurrent process opening the same new file waits and then finds it already migrated.
    """
    before = current_version(conn, dialect, where)
    check_not_newer(before, where)
    for step in MIGRATIONS:
        if step.version <= before:
            continue
        for sql in step.statements:
            conn.execute(sql.format(id=dialect.id_column))
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (:v, :d, :t)",
            {"v": step.version, "d": step.description, "t": utc_now()},
        )
    return before, SCHEMA_VERSION
