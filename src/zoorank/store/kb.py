"""The knowledge base: models, tasks and the results measured for them.

This is the historical performance matrix that Fennec factorises and Model Spider and MetaRank learn
from. One SQLite file (see :func:`zoorank.store.location.default_path`) holds

- ``models``: name (unique), identity hash, architecture, source, parameter and layer counts, and
  free meta-features as JSON;
- ``tasks``: name (unique), identity hash, number of classes and samples, a text description, and
  free meta-features as JSON;
- ``results``: one current value per (model, task, kind), with its provenance, parameters and UTC time;
- ``results_history``: the values that were replaced (when ``keep_history``).

Policy for a second value of the same (model, task, kind): by default the latest wins
(``if_exists="replace"``) and the value it replaces moves to the history (unless it was the same value);
``if_exists="keep"`` keeps the first value, ``if_exists="error"`` raises InputError. A value must be a
finite number.

Concurrency: the file is in WAL mode (readers never wait for the writer), every write is a transaction
that takes the write lock at its start (``BEGIN IMMEDIATE``), a writer waits for the lock up to
``timeout`` seconds and retries on "database is locked", so two processes recording at once lose
nothing. Every call that writes is atomic: :meth:`KnowledgeBase.record_many` writes all its rows or none.
"""

from __future__ import annotations

import base64
import csv
import math
import numbers
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO, TypeVar

import numpy as np

from zoorank.errors import InputError
from zoorank.store import schema
from zoorank.store._checks import (
    check_count,
    check_name,
    check_text,
    check_time,
    check_value,
    from_json,
    to_json,
)
from zoorank.store._dialect import IfExists, SQLiteDialect, sqlite_version_ok
from zoorank.store.kinds import check_range, validate_kind
from zoorank.store.location import Location, resolve

T = TypeVar("T")

_IN_CHUNK = 500  # names per "IN (...)" lookup (well below every database's parameter limit)
_ROW_CHUNK = 20_000  # rows per executemany in record_many
_IF_EXISTS = ("replace", "keep", "error")


class KnowledgeBaseBusy(RuntimeError):
    """The knowledge base stayed locked by another process for longer than the timeout."""


@dataclass(frozen=True, slots=True)
class Result:
    """One recorded value. ``replaced_at`` is None for a current value, the UTC time it was replaced for history."""

    model: str
    task: str
    kind: str
    value: float
    provenance: Any = None
    params: dict[str, Any] | None = None
    created_at: str = ""
    replaced_at: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A model of the knowledge base and its meta-features."""

    name: str
    identity: str | None = None
    architecture: str | None = None
    source: str | None = None
    params: int | None = None
    layers: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task (dataset) of the knowledge base and its meta-features."""

    name: str
    identity: str | None = None
    n_classes: int | None = None
    n_samples: int | None = None
    description: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Matrix(NamedTuple):
    """A models x tasks matrix of one kind: ``values[i, j]`` is ``models[i]`` on ``tasks[j]``, NaN if none."""

    values: np.ndarray
    models: list[str]
    tasks: list[str]

    def to_csv(self, file: str | os.PathLike | TextIO) -> None:
        """Write the matrix as CSV: a ``model`` column then one column per task; missing values are empty."""
        if isinstance(file, str | os.PathLike):
            with open(file, "w", newline="", encoding="utf-8") as fh:
                self.to_csv(fh)
            return
        writer = csv.writer(file)
        writer.writerow(["model", *self.tasks])
        for name, row in zip(self.models, self.values, strict=True):
            writer.writerow([name, *("" if math.isnan(v) else repr(float(v)) for v in row)])


# ---------------------------------------------------------------- the knowledge base


class KnowledgeBase:
    """A knowledge base of models, tasks and results, stored in SQLite.

    ``path``: a file path, a ``sqlite:///`` URL (``sqlite:///:memory:`` for a throw-away one) or None for
    :func:`~zoorank.store.location.default_path`. The file and its folder are created when missing; an
    older schema is migrated forward; a newer one is refused. ``timeout``: seconds a write waits for
    another process's write lock before :class:`KnowledgeBaseBusy`. ``keep_history``: move replaced values
    to ``results_history`` (see :meth:`history`).

    Use it as a context manager or call :meth:`close`. One instance per thread; a process started by
    ``fork`` reconnects on its first call instead of sharing the parent's connection.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, *, timeout: float = 30.0, keep_history: bool = True
    ) -> None:
        if not sqlite_version_ok():  # pragma: no cover - every supported Python ships a newer SQLite
            raise InputError("the knowledge base needs SQLite >= 3.24; upgrade Python's sqlite3")
        if not (isinstance(timeout, numbers.Real) and timeout > 0):
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.location: Location = resolve(path)
        self.timeout = float(timeout)
        self.keep_history = bool(keep_history)
        self._dialect = SQLiteDialect()
        self._conn: Any = None
        self._pid = os.getpid()
        self._depth = 0  # transaction nesting
        self._inherited: list[Any] = []  # connections inherited through fork: never used, never closed
        self.schema_version_at_open = 0
        self._open()

    # ------------------------------------------------------------ connection and transactions

    @property
    def path(self) -> Path | None:
        """The database file, or None for an in-memory knowledge base."""
        return None if self.location.is_memory else Path(self.location.database)

    def _open(self) -> None:
        where = self.location
        if not where.is_memory:
            try:
                Path(where.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the folder of knowledge base {where}: {exc.strerror}") from exc
        try:
            conn = self._dialect.connect(where.database, timeout=self.timeout)
        except self._dialect.Error as exc:
            raise InputError(f"cannot open knowledge base {where}: {exc}") from exc
        self._conn = conn
        self._pid = os.getpid()
        try:
            self._retry(lambda: self._dialect.configure(conn))
            version = self._retry(lambda: schema.current_version(conn, self._dialect, where))
            schema.check_not_newer(version, where)
            self.schema_version_at_open = version
            if version < schema.SCHEMA_VERSION:
                with self.transaction() as c:
                    schema.migrate(c, self._dialect, where)
        except InputError:
            self._close_connection()
            raise
        except self._dialect.Error as exc:
            self._close_connection()
            if self._dialect.is_busy(exc):
                raise KnowledgeBaseBusy(f"knowledge base {where} stayed locked for {self.timeout:g}s") from exc
            raise InputError(f"{where} is not a usable SQLite knowledge base: {exc}") from exc

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Any:
        if self._conn is None:
            raise InputError(f"knowledge base {self.location} is closed; open a new KnowledgeBase")
        if os.getpid() != self._pid:
            # A forked child must not use (or close) the parent's SQLite connection.
            if self.location.is_memory:
                raise InputError("an in-memory knowledge base cannot be shared with a child process")
            self._inherited.append(self._conn)
            self._conn = None
            self._depth = 0
            self._open()
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None and os.getpid() == self._pid:
            self._close_connection()
        elif self._conn is not None:  # inherited through fork: the parent still uses it, leave it alone
            self._inherited.append(self._conn)
        self._conn = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"KnowledgeBase({str(self.location)!r}, {state})"

    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying with jittered back-off while the database is locked, up to ``timeout``."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                return fn()
            except self._dialect.OperationalError as exc:
                if not self._dialect.is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseBusy(
                        f"knowledge base {self.location} stayed locked by another process for {self.timeout:g}s; "
                        "retry later or raise timeout"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction: everything inside commits together or not at all.

        Nested use is allowed (the inner block is a savepoint: its failure undoes only the inner block if
        the caller catches the exception). The write lock is held for the whole block, so keep it short.
        """
        conn = self._connection()
        if self._depth:
            name = f"zr_sp{self._depth}"
            conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            finally:
                self._depth -= 1
            return
        self._retry(lambda: self._dialect.begin_write(conn))
        self._depth = 1
        try:
            yield conn
            self._retry(lambda: conn.execute("COMMIT"))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """A read transaction: several SELECTs see one consistent state even while others write."""
        conn = self._connection()
        if self._depth:
            yield conn
            return
        self._retry(lambda: self._dialect.begin_read(conn))
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # ------------------------------------------------------------ models and tasks

    def add_model(
        self,
        name: str,
        *,
        identity: str | None = None,
        architecture: str | None = None,
        source: str | None = None,
        params: int | None = None,
        layers: int | None = None,
        meta: Mapping[str, Any] | None = None,
        **more_meta: Any,
    ) -> int:
        """Add a model or update it (upsert); returns its id.

        Columns given (not None) overwrite the stored ones; ``meta`` and extra keyword arguments are merged
        into the stored meta-features (JSON; numpy arrays become lists). Giving an identity hash different
        from the stored one raises InputError: results recorded for the old weights would be misattributed.
        """
        check_name(name, "model")
        columns = {
            "identity": check_text(identity, f"identity of model {name!r}"),
            "architecture": check_text(architecture, f"architecture of model {name!r}"),
            "source": check_text(source, f"source of model {name!r}"),
            "params": check_count(params, f"params of model {name!r}", minimum=0),
            "layers": check_count(layers, f"layers of model {name!r}", minimum=0),
        }
        return self._upsert_entity("models", "model", name, columns, {**(meta or {}), **more_meta})

    def add_task(
        self,
        name: str,
        *,
        identity: str | None = None,
        n_classes: int | None = None,
        n_samples: int | None = None,
        description: str | None = None,
        meta: Mapping[str, Any] | None = None,
        **more_meta: Any,
    ) -> int:
        """Add a task or update it (upsert); returns its id. Same merge rules as :meth:`add_model`."""
        check_name(name, "task")
        columns = {
            "identity": check_text(identity, f"identity of task {name!r}"),
            "n_classes": check_count(n_classes, f"n_classes of task {name!r}", minimum=1),
            "n_samples": check_count(n_samples, f"n_samples of task {name!r}", minimum=0),
            "description": check_text(description, f"description of task {name!r}"),
        }
        return self._upsert_entity("tasks", "task", name, columns, {**(meta or {}), **more_meta})

    def _upsert_entity(self, table: str, what: str, name: str, columns: dict[str, Any], meta: dict) -> int:
        if not all(isinstance(k, str) for k in meta):
            raise InputError(f"meta-feature names of {what} {name!r} must be strings")
        to_json(meta, f"meta-features of {what} {name!r}")  # validate before taking the lock
        cols = list(columns)
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT id, meta, {', '.join(cols)} FROM {table} WHERE name = :name", {"name": name}
            ).fetchone()
            if row is None:
                values = {**columns, "name": name, "meta": to_json(meta, what), "created_at": schema.utc_now()}
                names = ["name", *cols, "meta", "created_at"]
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + c for c in names)})", values
                )
                return int(conn.execute(f"SELECT id FROM {table} WHERE name = :name", {"name": name}).fetchone()[0])
            entity_id, old_meta, *old = row
            stored = dict(zip(cols, old, strict=True))
            new_id = columns["identity"]
            if new_id is not None and stored["identity"] is not None and new_id != stored["identity"]:
                raise InputError(
                    f"{what} {name!r} is already in the knowledge base with identity {stored['identity']}, "
                    f"not {new_id}: record the new weights under another name, or delete_{what}({name!r}) first"
                )
            merged = {c: (columns[c] if columns[c] is not None else stored[c]) for c in cols}
            merged_meta = {**(from_json(old_meta) or {}), **meta}
            sets = ", ".join(f"{c} = :{c}" for c in cols)
            conn.execute(
                f"UPDATE {table} SET {sets}, meta = :meta WHERE id = :id",
                {**merged, "meta": to_json(merged_meta, what), "id": entity_id},
            )
            return int(entity_id)

    def _ids(self, conn: Any, table: str, names: Iterable[str], *, create: bool) -> dict[str, int]:
        """Map names to ids of ``table``; create the missing rows (bare, no meta-features) when ``create``."""
        wanted = list(dict.fromkeys(names))
        found: dict[str, int] = {}
        for i in range(0, len(wanted), _IN_CHUNK):
            part = wanted[i : i + _IN_CHUNK]
            marks = ", ".join(f":n{j}" for j in range(len(part)))
            rows = conn.execute(
                f"SELECT name, id FROM {table} WHERE name IN ({marks})", {f"n{j}": n for j, n in enumerate(part)}
            ).fetchall()
            found.update((n, int(i_)) for n, i_ in rows)
        missing = [n for n in wanted if n not in found]
        if missing and create:
            now = schema.utc_now()
            conn.executemany(
                f"INSERT INTO {table} (name, meta, created_at) VALUES (:name, :meta, :now)",
                [{"name": n, "meta": "{}", "now": now} for n in missing],
            )
            found.update(self._ids(conn, table, missing, create=False))
        return found

    def model(self, name: str) -> ModelRecord:
        """The model called ``name``; InputError if the knowledge base has none."""
        found = self._entities("models", name)
        if not found:
            raise InputError(f"model {name!r} is not in knowledge base {self.location}; add it with add_model()")
        return found[0]

    def task(self, name: str) -> TaskRecord:
        """The task called ``name``; InputError if the knowledge base has none."""
        found = self._entities("tasks", name)
        if not found:
            raise InputError(f"task {name!r} is not in knowledge base {self.location}; add it with add_task()")
        return found[0]

    def models(self) -> list[ModelRecord]:
        """All models, sorted by name."""
        return self._entities("models")

    def tasks(self) -> list[TaskRecord]:
        """All tasks, sorted by name."""
        return self._entities("tasks")

    def _entities(self, table: str, name: str | None = None) -> list[Any]:
        if table == "models":
            cols, cls = ("identity", "architecture", "source", "params", "layers"), ModelRecord
        else:
            cols, cls = ("identity", "n_classes", "n_samples", "description"), TaskRecord
        sql = f"SELECT name, {', '.join(cols)}, meta FROM {table}"
        args: dict[str, Any] = {}
        if name is not None:
            sql += " WHERE name = :name"
            args["name"] = name
        with self._snapshot() as conn:
            rows = conn.execute(sql + " ORDER BY name", args).fetchall()
        return [cls(r[0], *r[1:-1], meta=from_json(r[-1]) or {}) for r in rows]

    def delete_model(self, name: str) -> int:
        """Delete a model with its results and history; returns the number of current results removed."""
        return self._delete_entity("models", "model", name)

    def delete_task(self, name: str) -> int:
        """Delete a task with its results and history; returns the number of current results removed."""
        return self._delete_entity("tasks", "task", name)

    def _delete_entity(self, table: str, what: str, name: str) -> int:
        check_name(name, what)
        column = "model_id" if table == "models" else "task_id"
        with self.transaction() as conn:
            row = conn.execute(f"SELECT id FROM {table} WHERE name = :name", {"name": name}).fetchone()
            if row is None:
                raise InputError(f"{what} {name!r} is not in knowledge base {self.location}; nothing deleted")
            args = {"id": row[0]}
            n = conn.execute(f"SELECT COUNT(*) FROM results WHERE {column} = :id", args).fetchone()[0]
            # Explicit deletes (not only ON DELETE CASCADE) so the behaviour does not hang on a pragma.
            conn.execute(f"DELETE FROM results_history WHERE {column} = :id", args)
            conn.execute(f"DELETE FROM results WHERE {column} = :id", args)
            conn.execute(f"DELETE FROM class_centres WHERE {column} = :id", args)
            conn.execute(f"DELETE FROM {table} WHERE id = :id", args)
        return int(n)

    # ------------------------------------------------------------ recording results

    def record(
        self,
        model: str,
        task: str,
        kind: str,
        value: float,
        *,
        provenance: Any = None,
        params: Mapping[str, Any] | None = None,
        created_at: datetime | str | None = None,
        if_exists: IfExists = "replace",
    ) -> None:
        """Record one value of ``kind`` for ``model`` on ``task`` (both created on first mention).

        ``provenance``: any JSON value saying where the number comes from (a string, or a dict such as
        ``{"command": ..., "zoorank": ..., "seed": ...}``); ``params``: a dict of the measurement's
        parameters; ``created_at``: when it was measured (default now, UTC). ``if_exists``: see the module
        docstring ("replace" = latest wins, the old value goes to the history).
        """
        self._record_rows(
            [
                {
                    "model": model,
                    "task": task,
                    "kind": kind,
                    "value": value,
                    "provenance": provenance,
                    "params": params,
                    "created_at": created_at,
                }
            ],
            provenance=None,
            if_exists=if_exists,
            label_rows=False,
        )

    def record_many(self, rows: Iterable[Any], *, provenance: Any = None, if_exists: IfExists = "replace") -> int:
        """Record many values in one transaction (all or nothing); returns the number of rows.

        Each row is a mapping with keys ``model, task, kind, value`` and optionally ``provenance, params,
        created_at``, a tuple ``(model, task, kind, value[, provenance])`` or a :class:`Result`. ``provenance``
        is the default for rows without one. ``rows`` may be a generator: it is consumed in chunks while the
        transaction is open, and an exception from it (or a bad row) rolls back every row written so far.
        Within one call, a later row for the same (model, task, kind) replaces an earlier one. Error
        messages start with the index of the bad row.
        """
        return self._record_rows(rows, provenance=provenance, if_exists=if_exists, label_rows=True)

    def _record_rows(self, rows: Iterable[Any], *, provenance: Any, if_exists: IfExists, label_rows: bool) -> int:
        if if_exists not in _IF_EXISTS:
            raise InputError(f"if_exists must be one of {', '.join(_IF_EXISTS)}, got {if_exists!r}")
        default_prov = None if provenance is None else to_json(provenance, "provenance")
        total = 0
        checked: set[tuple[str, str]] = set()  # names and kinds already validated in this call
        now = schema.utc_now()  # one time for the rows of a call that do not give theirs
        with self.transaction() as conn:
            chunk: list[dict[str, Any]] = []
            for row in rows:
                try:
                    chunk.append(self._normalise_row(row, total, default_prov, checked, now))
                except InputError as exc:
                    if not label_rows:
                        raise
                    raise InputError(f"row {total} of record_many: {exc}") from None
                total += 1
                if len(chunk) >= _ROW_CHUNK:
                    self._write_chunk(conn, chunk, if_exists)
                    chunk = []
            if chunk:
                self._write_chunk(conn, chunk, if_exists)
        return total

    def _normalise_row(
        self, row: Any, index: int, default_prov: str | None, checked: set[tuple[str, str]], now: str
    ) -> dict[str, Any]:
        if isinstance(row, Result):
            row = {
                "model": row.model, "task": row.task, "kind": row.kind, "value": row.value,
                "provenance": row.provenance, "params": row.params, "created_at": row.created_at or None,
            }
        elif isinstance(row, Mapping):
            unknown = set(row) - {"model", "task", "kind", "value", "provenance", "params", "created_at"}
            if unknown:
                raise InputError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))} in a result row")
            missing = {"model", "task", "kind", "value"} - set(row)
            if missing:
                raise InputError(f"missing field(s) {', '.join(sorted(missing))} in a result row")
        elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) in (4, 5):
            row = dict(zip(("model", "task", "kind", "value", "provenance"), row, strict=False))
        else:
            raise InputError(
                f"a result row must be a mapping or a (model, task, kind, value[, provenance]) tuple: {row!r:.80}"
            )
        model, task, kind = row["model"], row["task"], row["kind"]
        if not (isinstance(model, str) and ("m", model) in checked):
            checked.add(("m", check_name(model, "model")))
        if not (isinstance(task, str) and ("t", task) in checked):
            checked.add(("t", check_name(task, "task")))
        if not (isinstance(kind, str) and ("k", kind) in checked):
            checked.add(("k", validate_kind(kind)))
        where = f"({model!r}, {task!r}, {kind!r})"
        prov = row.get("provenance")
        params = row.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise InputError(f"params for {where} must be a dict, got {type(params).__name__}")
        return {
            "model": model,
            "task": task,
            "kind": kind,
            "value": check_range(kind, check_value(row["value"], where), where),
            "provenance": default_prov if prov is None else to_json(prov, f"provenance for {where}"),
            "params": None if params is None else to_json(dict(params), f"params for {where}"),
            "created_at": check_time(row.get("created_at"), where, now),
        }

    def _write_chunk(self, conn: Any, chunk: list[dict[str, Any]], if_exists: IfExists) -> None:
        model_ids = self._ids(conn, "models", (r["model"] for r in chunk), create=True)
        task_ids = self._ids(conn, "tasks", (r["task"] for r in chunk), create=True)
        for r in chunk:
            r["model_id"] = model_ids[r["model"]]
            r["task_id"] = task_ids[r["task"]]
        columns = ("model_id", "task_id", "kind", "value", "provenance", "params", "created_at")
        key = ("model_id", "task_id", "kind")
        insert = self._dialect.insert(
            "results", columns, key=key, if_exists=if_exists, update=("value", "provenance", "params", "created_at")
        )
        if if_exists == "error":
            for r in chunk:
                try:
                    conn.execute(insert, r)
                except self._dialect.IntegrityError as exc:
                    raise InputError(
                        f"a {r['kind']!r} value for model {r['model']!r} on task {r['task']!r} is already recorded; "
                        "use if_exists='replace' to overwrite it or 'keep' to skip it"
                    ) from exc
            return
        if if_exists == "replace" and self.keep_history:
            to_history = (
                "INSERT INTO results_history "
                "(model_id, task_id, kind, value, provenance, params, created_at, replaced_at) "
                "SELECT model_id, task_id, kind, value, provenance, params, created_at, :replaced_at FROM results "
                "WHERE model_id = :model_id AND task_id = :task_id AND kind = :kind AND value <> :value"
            )
            now = schema.utc_now()
            for batch in _without_repeated_keys(chunk):
                for r in batch:
                    r["replaced_at"] = now
                conn.executemany(to_history, batch)
                conn.executemany(insert, batch)
        else:
            conn.executemany(insert, chunk)

    # ------------------------------------------------------------ class centres (Spider's specific tokens)

    def put_centres(self, model: str, task: str, centres: Any, *, provenance: Any = None) -> None:
        """Keep the class centres [C, D] of ``model``'s own features on ``task`` (Model Spider's PTM-specific
        task token: :func:`zoorank.methods.spider.specific_token`), replacing earlier ones; the model and task
        are created when new. Stored as float32."""
        check_name(model, "model")
        check_name(task, "task")
        arr = np.asarray(centres, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise InputError(f"class centres of {model!r} on {task!r} must be a non-empty [classes, dim] array, "
                             f"got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise InputError(f"class centres of {model!r} on {task!r} contain NaN or infinite values")
        text = base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode("ascii")
        row = {"c": int(arr.shape[0]), "d": int(arr.shape[1]), "x": text, "p": to_json(provenance, "provenance"),
               "now": schema.utc_now()}
        with self.transaction() as conn:
            row["m"] = self._ids(conn, "models", [model], create=True)[model]
            row["t"] = self._ids(conn, "tasks", [task], create=True)[task]
            conn.execute("DELETE FROM class_centres WHERE model_id = :m AND task_id = :t", row)
            conn.execute("INSERT INTO class_centres (model_id, task_id, n_classes, dim, centres, provenance, "
                         "created_at) VALUES (:m, :t, :c, :d, :x, :p, :now)", row)

    def centres(self, model: str | None = None, task: str | None = None) -> dict[tuple[str, str], np.ndarray]:
        """The kept class centres, ``{(model, task): [C, D] float32}``, filtered by model and/or task."""
        where, args = self._filters(model, task, None)
        sql = ("SELECT m.name, t.name, c.n_classes, c.dim, c.centres FROM class_centres c "
               "JOIN models m ON m.id = c.model_id JOIN tasks t ON t.id = c.task_id" + where +
               " ORDER BY m.name, t.name")
        with self._snapshot() as conn:
            rows = conn.execute(sql, args).fetchall()
        out = {}
        for m, t, c, d, text in rows:
            arr = np.frombuffer(base64.b64decode(text), dtype="<f4")
            out[(m, t)] = arr.reshape(int(c), int(d)).astype(np.float32)
        return out

    # ------------------------------------------------------------ reading results

    def results(self, model: str | None = None, task: str | None = None, kind: str | None = None) -> list[Result]:
        """Current results, filtered by any of model, task and kind; sorted by model, task, kind."""
        where, args = self._filters(model, task, kind)
        sql = (
            "SELECT m.name, t.name, r.kind, r.value, r.provenance, r.params, r.created_at "
            "FROM results r JOIN models m ON m.id = r.model_id JOIN tasks t ON t.id = r.task_id"
            f"{where} ORDER BY m.name, t.name, r.kind"
        )
        with self._snapshot() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Result(m, t, k, float(v), from_json(p), from_json(q), c) for m, t, k, v, p, q, c in rows]

    def value(self, model: str, task: str, kind: str) -> float | None:
        """The current value of ``kind`` for ``model`` on ``task``, or None when there is none."""
        found = self.results(model, task, validate_kind(kind))
        return found[0].value if found else None

    def history(self, model: str | None = None, task: str | None = None, kind: str | None = None) -> list[Result]:
        """Replaced and current values, oldest first per (model, task, kind); current ones have ``replaced_at=None``."""
        where, args = self._filters(model, task, kind)
        sql = (
            "SELECT m.name, t.name, r.kind, r.value, r.provenance, r.params, r.created_at, r.replaced_at "
            "FROM results_history r JOIN models m ON m.id = r.model_id JOIN tasks t ON t.id = r.task_id"
            f"{where}"
        )
        with self._snapshot() as conn:
            rows = conn.execute(sql, args).fetchall()
        old = [Result(m, t, k, float(v), from_json(p), from_json(q), c, rp) for m, t, k, v, p, q, c, rp in rows]
        old.extend(self.results(model, task, kind))
        return sorted(old, key=lambda r: (r.model, r.task, r.kind, r.replaced_at is None, r.replaced_at or ""))

    @staticmethod
    def _filters(model: str | None, task: str | None, kind: str | None) -> tuple[str, dict[str, str]]:
        clauses, args = [], {}
        if model is not None:
            clauses.append("m.name = :model")
            args["model"] = check_name(model, "model")
        if task is not None:
            clauses.append("t.name = :task")
            args["task"] = check_name(task, "task")
        if kind is not None:
            clauses.append("r.kind = :kind")
            args["kind"] = validate_kind(kind)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def delete_results(self, model: str | None = None, task: str | None = None, kind: str | None = None) -> int:
        """Delete current results (and their history) matching the filters; at least one filter is required.

        Returns the number of current results deleted. The models and tasks themselves stay.
        """
        if model is None and task is None and kind is None:
            raise InputError("delete_results needs at least one of model, task, kind (refusing to delete everything)")
        clauses, args = [], {}
        if model is not None:
            clauses.append("model_id IN (SELECT id FROM models WHERE name = :model)")
            args["model"] = check_name(model, "model")
        if task is not None:
            clauses.append("task_id IN (SELECT id FROM tasks WHERE name = :task)")
            args["task"] = check_name(task, "task")
        if kind is not None:
            clauses.append("kind = :kind")
            args["kind"] = validate_kind(kind)
        where = " WHERE " + " AND ".join(clauses)
        with self.transaction() as conn:
            n = conn.execute("SELECT COUNT(*) FROM results" + where, args).fetchone()[0]
            conn.execute("DELETE FROM results_history" + where, args)
            conn.execute("DELETE FROM results" + where, args)
        return int(n)

    def kinds(self) -> list[str]:
        """The kinds that have at least one current result, sorted."""
        with self._snapshot() as conn:
            return sorted(r[0] for r in conn.execute("SELECT DISTINCT kind FROM results").fetchall())

    def summary(self) -> dict[str, Any]:
        """Counts for a status line: location, schema version, models, tasks, results per kind, history rows."""
        with self._snapshot() as conn:
            count = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in sorted(schema.TABLES)}
            per_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM results GROUP BY kind ORDER BY kind").fetchall())
            version = schema.current_version(conn, self._dialect, self.location)
        return {
            "location": str(self.location),
            "schema_version": version,
            "models": count["models"],
            "tasks": count["tasks"],
            "results": count["results"],
            "results_by_kind": per_kind,
            "history": count["results_history"],
        }

    def matrix(self, kind: str, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> Matrix:
        """The models x tasks matrix of ``kind`` (float64, NaN where nothing is recorded).

        Rows and columns are ``models`` / ``tasks`` in the order given (names never recorded give NaN rows or
        columns), or by default every model / task with at least one ``kind`` value, sorted by name. One query
        and a vectorised fill: a 1000 x 1000 matrix with 100k entries takes well under a second.
        InputError when the knowledge base holds no value of ``kind`` at all (the message lists the kinds
        it does hold).
        """
        validate_kind(kind)
        wanted_models = self._wanted(models, "model")
        wanted_tasks = self._wanted(tasks, "task")
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT model_id, task_id, value FROM results WHERE kind = :kind", {"kind": kind}
            ).fetchall()
            if not rows:
                have = sorted(r[0] for r in conn.execute("SELECT DISTINCT kind FROM results").fetchall())
                raise InputError(
                    f"knowledge base {self.location} has no {kind!r} results; "
                    + (f"it has: {', '.join(have)}" if have else "it holds no results yet")
                )
            model_names = dict(conn.execute("SELECT id, name FROM models").fetchall())
            task_names = dict(conn.execute("SELECT id, name FROM tasks").fetchall())
        data = np.array(rows, dtype=np.float64)
        model_id = data[:, 0].astype(np.int64)
        task_id = data[:, 1].astype(np.int64)
        row_of, row_names = _index(model_id, model_names, wanted_models)
        col_of, col_names = _index(task_id, task_names, wanted_tasks)
        r, c = row_of[model_id], col_of[task_id]
        keep = (r >= 0) & (c >= 0)
        values = np.full((len(row_names), len(col_names)), np.nan)
        values[r[keep], c[keep]] = data[keep, 2]
        return Matrix(values, row_names, col_names)

    @staticmethod
    def _wanted(names: Sequence[str] | None, what: str) -> list[str] | None:
        if names is None:
            return None
        if isinstance(names, str):
            raise InputError(f"{what}s must be a list of names, not the single string {names!r}")
        names = [check_name(n, what) for n in names]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"{what} names are repeated in the list: {', '.join(dup)}")
        return names


def _index(ids: np.ndarray, id_to_name: dict[int, str], wanted: list[str] | None) -> tuple[np.ndarray, list[str]]:
    """A lookup array id -> row/column (-1 = not in the matrix) and the ordered names."""
    size = max(max(id_to_name, default=0), int(ids.max(initial=0))) + 1
    lookup = np.full(size, -1, dtype=np.int64)
    if wanted is None:
        present = np.unique(ids)
        names = sorted(id_to_name[int(i)] for i in present)
    else:
        names = wanted
    position = {n: k for k, n in enumerate(names)}
    for i, n in id_to_name.items():
        k = position.get(n)
        if k is not None:
            lookup[i] = k
    return lookup, names


def _without_repeated_keys(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split rows into runs in which no (model, task, kind) repeats, keeping their order."""
    batch: list[dict[str, Any]] = []
    seen: set[tuple[int, int, str]] = set()
    for r in rows:
        k = (r["model_id"], r["task_id"], r["kind"])
        if k in seen:
            yield batch
            batch, seen = [], set()
        batch.append(r)
        seen.add(k)
    if batch:
        yield batch
