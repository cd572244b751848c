"""The knowledge base (zoorank.store): real SQLite files in tmp_path, real processes for concurrency."""

from __future__ import annotations

import math
import multiprocessing as mp
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from zoorank.errors import InputError
from zoorank.paths import kb_path
from zoorank.store import (
    KNOWN_KINDS,
    SCHEMA_VERSION,
    KnowledgeBase,
    KnowledgeBaseBusy,
    Result,
    metric_kind,
)

# ------------------------------------------------------------------ round trips


def test_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    emb = np.arange(4, dtype=np.float32) / 2
    with KnowledgeBase(path) as kb:
        mid = kb.add_model(
            "timm:resnet50.a1_in1k", identity="abc123", architecture="resnet50", source="timm",
            params=25_557_032, layers=50, archi2vec=emb, domain="imagenet",
        )
        tid = kb.add_task("cifar10", n_classes=10, n_samples=50_000, description="small natural images", kind="objects")
        assert isinstance(mid, int) and isinstance(tid, int)
        kb.record(
            "timm:resnet50.a1_in1k", "cifar10", "finetune_acc", np.float32(0.875),
            provenance={"command": "zoorank kb record", "seed": 0}, params={"epochs": 30, "lr": 0.01},
        )
        kb.record("timm:resnet50.a1_in1k", "cifar10", "metric:logme", 1.25, provenance="LogME on 500 probes")
    assert path.is_file()

    with KnowledgeBase(f"sqlite:///{path}") as kb:  # relative-style URL to an absolute path (4 slashes)
        model = kb.model("timm:resnet50.a1_in1k")
        assert model.identity == "abc123" and model.architecture == "resnet50" and model.source == "timm"
        assert model.params == 25_557_032 and model.layers == 50
        assert model.meta == {"archi2vec": [0.0, 0.5, 1.0, 1.5], "domain": "imagenet"}
        task = kb.task("cifar10")
        assert (task.n_classes, task.n_samples, task.description) == (10, 50_000, "small natural images")
        assert task.meta == {"kind": "objects"}

        results = kb.results()
        assert [(r.kind, r.value) for r in results] == [("finetune_acc", pytest.approx(0.875)), ("metric:logme", 1.25)]
        ft = results[0]
        assert ft.provenance == {"command": "zoorank kb record", "seed": 0}
        assert ft.params == {"epochs": 30, "lr": 0.01}
        stamp = datetime.fromisoformat(ft.created_at)
        assert ft.created_at.endswith("Z") and abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
        assert results[1].provenance == "LogME on 500 probes" and results[1].params is None
        assert kb.value("timm:resnet50.a1_in1k", "cifar10", "metric:logme") == 1.25
        assert kb.value("timm:resnet50.a1_in1k", "cifar10", "linear_probe_acc") is None
        assert kb.kinds() == ["finetune_acc", "metric:logme"]
        assert kb.results(kind="metric:logme") == [results[1]]
        assert kb.results(model="nope") == []
        summary = kb.summary()
        assert summary["schema_version"] == SCHEMA_VERSION
        assert (summary["models"], summary["tasks"], summary["results"]) == (1, 1, 2)
        assert summary["results_by_kind"] == {"finetune_acc": 1, "metric:logme": 1}


def test_record_creates_models_and_tasks_on_first_mention_and_add_merges(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record("m1", "t1", "linear_probe_acc", 0.5)
        assert [m.name for m in kb.models()] == ["m1"] and [t.name for t in kb.tasks()] == ["t1"]
        assert kb.model("m1").identity is None and kb.model("m1").meta == {}
        # Upsert: columns given overwrite, missing ones are kept, meta-features merge.
        kb.add_model("m1", identity="h1", params=10, meta={"a": 1, "b": 2})
        kb.add_model("m1", layers=3, b=20, c=[1, 2])
        m = kb.model("m1")
        assert (m.identity, m.params, m.layers) == ("h1", 10, 3)
        assert m.meta == {"a": 1, "b": 20, "c": [1, 2]}
        kb.add_model("m1", identity="h1")  # the same identity again is fine
        with pytest.raises(InputError, match=r"m1.*identity h1, not h2"):
            kb.add_model("m1", identity="h2")
        kb.add_task("t1", description="first", n_classes=3)
        kb.add_task("t1", n_samples=7)
        t = kb.task("t1")
        assert (t.description, t.n_classes, t.n_samples) == ("first", 3, 7)
        assert kb.results()[0].value == 0.5  # results untouched by the upserts


def test_record_many_accepts_tuples_mappings_and_results(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        n = kb.record_many(
            [
                ("a", "t", "finetune_acc", 0.1),
                ("b", "t", "finetune_acc", 0.2, {"src": "tuple"}),
                {"model": "c", "task": "t", "kind": "finetune_acc", "value": 1, "params": {"k": 1}},
                Result("d", "t", "finetune_acc", 0.4, provenance="copied"),
            ],
            provenance="batch default",
        )
        assert n == 4
        got = {r.model: (r.value, r.provenance, r.params) for r in kb.results()}
        assert got == {
            "a": (0.1, "batch default", None),
            "b": (0.2, {"src": "tuple"}, None),
            "c": (1.0, "batch default", {"k": 1}),
            "d": (0.4, "copied", None),
        }
        when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        kb.record("a", "t", "knn_acc", 0.3, created_at=when)
        assert kb.results(kind="knn_acc")[0].created_at == "2024-05-01T10:00:00.000000Z"


# ------------------------------------------------------------------ the policy for a second value


def test_latest_wins_and_replaced_values_go_to_history(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record("m", "t", "finetune_acc", 0.80, provenance="run 1")
        kb.record("m", "t", "finetune_acc", 0.85, provenance="run 2")
        kb.record("m", "t", "finetune_acc", 0.85, provenance="run 3")  # same value: no new history row
        assert kb.value("m", "t", "finetune_acc") == 0.85
        assert kb.results()[0].provenance == "run 3"
        hist = kb.history("m", "t", "finetune_acc")
        assert [(r.value, r.provenance, r.replaced_at is None) for r in hist] == [
            (0.80, "run 1", False),
            (0.85, "run 3", True),
        ]
        # Within one batch, a later row for the same key wins and the earlier one is kept in the history.
        kb.record_many([("m", "t", "metric:logme", v) for v in (1.0, 2.0, 3.0)])
        assert kb.value("m", "t", "metric:logme") == 3.0
        assert [r.value for r in kb.history(kind="metric:logme")] == [1.0, 2.0, 3.0]
        assert len(kb.results()) == 2


def test_if_exists_keep_and_error(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record("m", "t", "finetune_acc", 0.5)
        kb.record("m", "t", "finetune_acc", 0.9, if_exists="keep")
        assert kb.value("m", "t", "finetune_acc") == 0.5
        kb.record_many([("m", "t", "finetune_acc", 0.7), ("m", "t2", "finetune_acc", 0.6)], if_exists="keep")
        assert kb.value("m", "t", "finetune_acc") == 0.5 and kb.value("m", "t2", "finetune_acc") == 0.6
        with pytest.raises(InputError, match=r"'finetune_acc' value for model 'm' on task 't' is already recorded"):
            kb.record_many([("new", "t", "finetune_acc", 0.1), ("m", "t", "finetune_acc", 0.2)], if_exists="error")
        # The failing batch left nothing behind, not even its new model.
        assert [m.name for m in kb.models()] == ["m"]
        assert kb.value("m", "t", "finetune_acc") == 0.5
        assert kb.history() == kb.results()  # keep / error never replaced anything


def test_keep_history_false(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", keep_history=False) as kb:
        kb.record("m", "t", "finetune_acc", 0.5)
        kb.record("m", "t", "finetune_acc", 0.6)
        assert [r.value for r in kb.history()] == [0.6]
        assert kb.summary()["history"] == 0


# ------------------------------------------------------------------ matrix export


def test_matrix_missing_entries_and_ordering(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record_many(
            [
                ("zeta", "t2", "finetune_acc", 0.1),
                ("alpha", "t1", "finetune_acc", 0.2),
                ("alpha", "t3", "finetune_acc", 0.3),
                ("mid", "t3", "finetune_acc", 0.4),
                ("mid", "t2", "metric:logme", 9.0),  # another kind: not in the finetune matrix
                ("only_logme", "t9", "metric:logme", 5.0),
            ]
        )
        values, models, tasks = kb.matrix("finetune_acc")
        assert models == ["alpha", "mid", "zeta"] and tasks == ["t1", "t2", "t3"]
        expected = np.array([[0.2, np.nan, 0.3], [np.nan, np.nan, 0.4], [np.nan, 0.1, np.nan]])
        np.testing.assert_array_equal(values, expected)
        assert values.dtype == np.float64

        m = kb.matrix("finetune_acc", models=["zeta", "never_seen", "alpha"], tasks=["t3", "t1"])
        assert m.models == ["zeta", "never_seen", "alpha"] and m.tasks == ["t3", "t1"]
        np.testing.assert_array_equal(m.values, [[np.nan, np.nan], [np.nan, np.nan], [0.3, 0.2]])

        logme = kb.matrix(metric_kind("logme"))
        assert logme.models == ["mid", "only_logme"] and logme.tasks == ["t2", "t9"]
        np.testing.assert_array_equal(logme.values, [[9.0, np.nan], [np.nan, 5.0]])

        out = tmp_path / "m.csv"
        m.to_csv(out)
        assert out.read_text().splitlines() == ["model,t3,t1", "zeta,,", "never_seen,,", "alpha,0.3,0.2"]

        with pytest.raises(InputError, match=r"no 'linear_probe_acc' results; it has: finetune_acc, metric:logme"):
            kb.matrix("linear_probe_acc")
        with pytest.raises(InputError, match="repeated"):
            kb.matrix("finetune_acc", models=["alpha", "alpha"])
        with pytest.raises(InputError, match="list of names"):
            kb.matrix("finetune_acc", tasks="t1")


# ------------------------------------------------------------------ atomicity


def test_record_many_crash_mid_batch_leaves_nothing(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record("keep", "me", "finetune_acc", 0.5)

        def rows():
            for i in range(30_000):  # more than one internal chunk is written before the crash
                if i == 25_000:
                    raise RuntimeError("killed halfway")
                yield (f"m{i % 300}", f"t{i // 300}", "metric:logme", float(i))

        with pytest.raises(RuntimeError, match="killed halfway"):
            kb.record_many(rows())
        assert kb.summary()["results"] == 1 and [m.name for m in kb.models()] == ["keep"]

        bad = [(f"m{i}", "t", "metric:logme", 1.0) for i in range(25_000)] + [("x", "t", "metric:logme", math.nan)]
        message = r"row 25000 of record_many: value for \('x', 't', 'metric:logme'\) is nan"
        with pytest.raises(InputError, match=message):
            kb.record_many(bad)
        assert kb.summary()["results"] == 1 and len(kb.models()) == 1

    # and after reopening, nothing of either batch shows up
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        assert [(r.model, r.value) for r in kb.results()] == [("keep", 0.5)]


def test_transaction_groups_calls_and_nests(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        with pytest.raises(KeyError), kb.transaction():
            kb.add_model("gone", params=1)
            kb.record("gone", "t", "finetune_acc", 0.1)
            raise KeyError("abort")
        assert kb.models() == [] and kb.results() == []

        with kb.transaction():
            kb.record("a", "t", "finetune_acc", 0.1)
            with pytest.raises(InputError):
                kb.record_many([("b", "t", "finetune_acc", 0.2), ("c", "t", "finetune_acc", math.inf)])
            kb.record("d", "t", "finetune_acc", 0.4)
        # the failed inner batch is undone (savepoint), the rest of the outer transaction is kept
        assert [r.model for r in kb.results()] == ["a", "d"]


# ------------------------------------------------------------------ deleting


def test_delete_model_task_and_results(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record_many([(m, t, k, 0.5) for m in "abc" for t in "xy" for k in ("finetune_acc", "metric:leep")])
        kb.record("a", "x", "finetune_acc", 0.6)  # one history row for a
        assert kb.delete_model("a") == 4
        assert "a" not in [m.name for m in kb.models()] and kb.history(model="a") == []
        assert kb.summary()["history"] == 0
        assert kb.delete_results(kind="metric:leep") == 4
        assert kb.kinds() == ["finetune_acc"]
        assert kb.delete_results(model="b", task="y") == 1
        assert kb.delete_task("x") == 2
        assert [(r.model, r.task) for r in kb.results()] == [("c", "y")]
        assert [m.name for m in kb.models()] == ["b", "c"]  # models stay when only results are deleted
        with pytest.raises(InputError, match="model 'a' is not in knowledge base"):
            kb.delete_model("a")
        with pytest.raises(InputError, match="at least one of model, task, kind"):
            kb.delete_results()


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kind", ["", "Finetune_acc", "metric:", "metric:LogME", "fine tune", "1acc", "a::b", "k" * 65, 3, None]
)
def test_bad_kind(tmp_path: Path, kind: object) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb, pytest.raises(InputError, match="kind"):
        kb.record("m", "t", kind, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), "0.8", True, None])
def test_bad_value(tmp_path: Path, value: object) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        with pytest.raises(InputError, match=r"value for \('m', 't', 'finetune_acc'\)"):
            kb.record("m", "t", "finetune_acc", value)  # type: ignore[arg-type]
        assert kb.summary()["results"] == 0 and kb.models() == []


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "tab\there", None, 5, "x" * 513])
def test_bad_names(tmp_path: Path, name: object) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        with pytest.raises(InputError, match="model name"):
            kb.record(name, "t", "finetune_acc", 0.5)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="task name"):
            kb.record("m", name, "finetune_acc", 0.5)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="model name"):
            kb.add_model(name)  # type: ignore[arg-type]


def test_other_bad_input(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        with pytest.raises(InputError, match="if_exists must be one of replace, keep, error"):
            kb.record("m", "t", "finetune_acc", 0.5, if_exists="overwrite")  # type: ignore[arg-type]
        with pytest.raises(InputError, match=r"params for .* must be a dict"):
            kb.record("m", "t", "finetune_acc", 0.5, params=[1, 2])  # type: ignore[arg-type]
        with pytest.raises(InputError, match="no time zone"):
            kb.record("m", "t", "finetune_acc", 0.5, created_at=datetime(2024, 1, 1))
        with pytest.raises(InputError, match="not an ISO 8601 time"):
            kb.record("m", "t", "finetune_acc", 0.5, created_at="yesterday")
        with pytest.raises(InputError, match="JSON-serialisable"):
            kb.record("m", "t", "finetune_acc", 0.5, provenance=object())
        with pytest.raises(InputError, match="meta-features of model 'm' must be JSON"):
            kb.add_model("m", weird=object())
        with pytest.raises(InputError, match="JSON-serialisable with finite numbers"):
            kb.add_model("m", bad=float("nan"))
        with pytest.raises(InputError, match="n_classes of task 't' must be an integer >= 1"):
            kb.add_task("t", n_classes=0)
        with pytest.raises(InputError, match="params of model 'm' must be an integer >= 0"):
            kb.add_model("m", params=2.5)
        with pytest.raises(InputError, match="row 1 of record_many: missing field"):
            kb.record_many([("m", "t", "finetune_acc", 0.5), {"model": "m", "task": "t", "value": 1.0}])
        with pytest.raises(InputError, match="row 0 of record_many: unknown field"):
            kb.record_many([{"model": "m", "task": "t", "kind": "finetune_acc", "value": 1.0, "vaule": 2}])
        with pytest.raises(InputError, match="a result row must be a mapping or a"):
            kb.record_many(["m,t,finetune_acc,0.5"])
        with pytest.raises(InputError, match="model 'ghost' is not in knowledge base"):
            kb.model("ghost")
        with pytest.raises(InputError, match="task 'ghost' is not in knowledge base"):
            kb.task("ghost")
        assert kb.models() == [] and kb.summary()["results"] == 0
    with pytest.raises(InputError, match="is closed"):
        kb.results()
    kb.close()  # idempotent


@pytest.mark.parametrize(
    "url", ["postgresql://user@localhost/zoorank", "mysql+pymysql://u:p@h/db", "duckdb:///x.db"]
)
def test_non_sqlite_url_is_refused(url: str) -> None:
    with pytest.raises(InputError, match=r"only SQLite is supported so far"):
        KnowledgeBase(url)


def test_bad_locations(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        KnowledgeBase(tmp_path)
    with pytest.raises(InputError, match="query parameters"):
        KnowledgeBase(f"sqlite:///{tmp_path}/kb.sqlite?mode=ro")
    with pytest.raises(InputError, match="file path or a sqlite:/// URL"):
        KnowledgeBase("   ")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all, just text " * 100)
    with pytest.raises(InputError, match=r"garbage.sqlite is not a usable SQLite knowledge base"):
        KnowledgeBase(garbage)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    with pytest.raises(InputError, match=r"not a zoorank knowledge base \(it has tables customers"):
        KnowledgeBase(other)


# ------------------------------------------------------------------ locations


def test_default_path_and_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ZOORANK_KB", "ZOORANK_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kb_path() == tmp_path / "home" / ".local" / "share" / "zoorank" / "kb.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert kb_path() == tmp_path / "xdg" / "zoorank" / "kb.sqlite"
    monkeypatch.setenv("ZOORANK_HOME", str(tmp_path / "zhome"))
    assert kb_path() == tmp_path / "zhome" / "kb.sqlite"
    with KnowledgeBase() as kb:  # creates the folder and the file
        kb.record("m", "t", "finetune_acc", 0.5)
        assert kb.path == tmp_path / "zhome" / "kb.sqlite"
    assert (tmp_path / "zhome" / "kb.sqlite").is_file()
    monkeypatch.setenv("ZOORANK_KB", str(tmp_path / "explicit.sqlite"))
    assert kb_path() == tmp_path / "explicit.sqlite"

    monkeypatch.chdir(tmp_path)
    with KnowledgeBase("sqlite:///rel/kb.sqlite") as kb:  # SQLAlchemy: three slashes = relative path
        kb.record("m", "t", "finetune_acc", 0.25)
    with KnowledgeBase(tmp_path / "rel" / "kb.sqlite") as kb:
        assert kb.value("m", "t", "finetune_acc") == 0.25
    for memory in ("sqlite://", "sqlite:///:memory:", ":memory:"):
        with KnowledgeBase(memory) as kb:
            assert kb.path is None
            kb.record("m", "t", "finetune_acc", 0.5)
            assert kb.matrix("finetune_acc").values.tolist() == [[0.5]]


# ------------------------------------------------------------------ schema versions and migrations

# Version 1 of the schema, written out by hand (as zoorank 1 would have created it): no results.params,
# no results_history.
_V1_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL,
                             applied_at VARCHAR(40) NOT NULL);
CREATE TABLE models (id INTEGER PRIMARY KEY, name VARCHAR(512) NOT NULL UNIQUE, identity VARCHAR(128),
                     architecture VARCHAR(256), source VARCHAR(1024), params BIGINT, layers INTEGER,
                     meta TEXT NOT NULL, created_at VARCHAR(40) NOT NULL);
CREATE TABLE tasks (id INTEGER PRIMARY KEY, name VARCHAR(512) NOT NULL UNIQUE, identity VARCHAR(128),
                    n_classes INTEGER, n_samples BIGINT, description TEXT, meta TEXT NOT NULL,
                    created_at VARCHAR(40) NOT NULL);
CREATE TABLE results (id INTEGER PRIMARY KEY,
                      model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
                      task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                      kind VARCHAR(64) NOT NULL, value DOUBLE PRECISION NOT NULL, provenance TEXT,
                      created_at VARCHAR(40) NOT NULL, UNIQUE (model_id, task_id, kind));
CREATE INDEX results_task ON results (task_id);
INSERT INTO schema_version VALUES (1, 'models, tasks and results', '2025-01-01T00:00:00.000000Z');
INSERT INTO models (id, name, identity, params, meta, created_at)
    VALUES (1, 'old_model', 'h-old', 1000, '{"domain": "imagenet"}', '2025-01-01T00:00:00.000000Z');
INSERT INTO tasks (id, name, n_classes, description, meta, created_at)
    VALUES (1, 'old_task', 5, 'flowers', '{}', '2025-01-01T00:00:00.000000Z');
INSERT INTO results (model_id, task_id, kind, value, provenance, created_at)
    VALUES (1, 1, 'finetune_acc', 0.75, '"v1 run"', '2025-01-02T00:00:00.000000Z');
"""


def _versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        conn.close()


def test_migrates_a_version_1_file_forward(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_V1_DDL)
    conn.close()
    assert _versions(path) == [1]

    with KnowledgeBase(path) as kb:
        assert kb.schema_version_at_open == 1
        assert kb.summary()["schema_version"] == SCHEMA_VERSION == 3
        old = kb.results()
        assert [(r.model, r.task, r.kind, r.value, r.provenance, r.params) for r in old] == [
            ("old_model", "old_task", "finetune_acc", 0.75, "v1 run", None)
        ]
        assert kb.model("old_model").meta == {"domain": "imagenet"}
        # features of version 2 work on the migrated file: params and history
        kb.record("old_model", "old_task", "finetune_acc", 0.8, params={"epochs": 5})
        assert [r.value for r in kb.history()] == [0.75, 0.8]
        assert kb.results()[0].params == {"epochs": 5}
    assert _versions(path) == [1, 2, 3]
    with KnowledgeBase(path) as kb:  # reopening does not migrate again
        assert kb.schema_version_at_open == 3


def test_empty_file_is_version_0_and_gets_the_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()  # a 0-byte file is a valid, empty SQLite database
    with KnowledgeBase(path) as kb:
        assert kb.schema_version_at_open == 0
        kb.record("m", "t", "finetune_acc", 0.5)
    assert _versions(path) == [1, 2, 3]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    with KnowledgeBase(path) as kb:
        kb.record("m", "t", "finetune_acc", 0.5)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01T00:00:00Z')")
    conn.close()
    with pytest.raises(InputError, match=r"future.sqlite has knowledge-base schema version 99, newer than the 3"):
        KnowledgeBase(path)
    assert _versions(path)[-1] == 99  # refused without touching the file


# ------------------------------------------------------------------ concurrency

_PER_PROCESS_SINGLE = 150
_PER_PROCESS_BATCH = 4_000


def _writer(path: str, who: int, start: mp.synchronize.Event) -> None:
    start.wait(10)
    with KnowledgeBase(path, timeout=60) as kb:
        # Many small transactions, interleaved with the other process; both touch the shared model and task.
        for i in range(_PER_PROCESS_SINGLE):
            kb.record("shared_model", f"task{i}", f"metric:p{who}", float(i))
            if i % 50 == 0:
                kb.add_model("shared_model", **{f"seen_by_{who}": True})
            if i % 30 == 0:
                kb.record_many(
                    [(f"m{who}_{i}", "shared_task", "finetune_acc", 0.5), (f"b{who}_{i}", f"bt{i}", "finetune_acc", 0)]
                )
        kb.record_many(
            ({"model": f"p{who}_m{j % 97}", "task": f"p{who}_t{j // 97}", "kind": "linear_probe_acc", "value": j / 1e4}
             for j in range(_PER_PROCESS_BATCH)),
            provenance={"process": who},
        )


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "kb.sqlite"  # not created yet: both processes race to create and migrate it
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(path), who, start)) for who in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]

    with KnowledgeBase(path) as kb:
        batches_each = len(range(0, _PER_PROCESS_SINGLE, 30)) * 2
        expected_each = _PER_PROCESS_SINGLE + batches_each + _PER_PROCESS_BATCH
        assert kb.summary()["results"] == 2 * expected_each
        for who in (1, 2):
            values, models, tasks = kb.matrix(f"metric:p{who}")
            assert models == ["shared_model"] and len(tasks) == _PER_PROCESS_SINGLE
            assert sorted(values[0].tolist()) == [float(i) for i in range(_PER_PROCESS_SINGLE)]
            probe = kb.results(kind="linear_probe_acc")
            assert sum(r.provenance == {"process": who} for r in probe) == _PER_PROCESS_BATCH
        assert kb.model("shared_model").meta == {"seen_by_1": True, "seen_by_2": True}
        assert _versions(path) == [1, 2, 3]  # migrated exactly once


def test_a_writer_waits_for_the_lock_and_gives_up_clearly(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    KnowledgeBase(path).close()
    holding, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with KnowledgeBase(path) as other, other.transaction():
            other.record("holder", "t", "finetune_acc", 1.0)
            holding.set()
            release.wait(10)
            time.sleep(0.3)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    assert holding.wait(10)
    with KnowledgeBase(path, timeout=0.2) as impatient, pytest.raises(KnowledgeBaseBusy, match="stayed locked"):
        impatient.record("waiter", "t", "finetune_acc", 0.5)
    with KnowledgeBase(path, timeout=20) as patient:
        assert patient.results() == []  # readers are not blocked by the writer (WAL), and see committed data only
        release.set()
        t0 = time.perf_counter()
        patient.record("waiter", "t", "finetune_acc", 0.5)
        waited = time.perf_counter() - t0
        thread.join(10)
        assert waited > 0.1  # it really waited for the other writer
        assert sorted(r.model for r in patient.results()) == ["holder", "waiter"]


def _forked_child(kb: KnowledgeBase) -> None:
    kb.record("from_child", "t", "finetune_acc", 0.3)


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_forked_child_reconnects_instead_of_sharing_the_connection(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.record("from_parent", "t", "finetune_acc", 0.1)
        child = mp.get_context("fork").Process(target=_forked_child, args=(kb,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        kb.record("parent_again", "t", "finetune_acc", 0.2)
        assert [r.model for r in kb.results()] == ["from_child", "from_parent", "parent_again"]


# ------------------------------------------------------------------ speed at 100k rows


def test_speed_record_many_and_matrix_100k(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_models = n_tasks = 1000
    cells = rng.choice(n_models * n_tasks, size=100_000, replace=False)
    vals = rng.random(cells.size)
    rows = [
        (f"model{c // n_tasks:04d}", f"task{c % n_tasks:04d}", "metric:fda", float(v))
        for c, v in zip(cells, vals, strict=True)
    ]
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        t0 = time.perf_counter()
        assert kb.record_many(rows) == 100_000
        t_record = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = kb.matrix("metric:fda")
        t_matrix = time.perf_counter() - t0
        t0 = time.perf_counter()
        kb.record_many((a, b, k, v + 1.0) for a, b, k, v in rows)  # every value replaced, old ones to history
        t_replace = time.perf_counter() - t0
        assert kb.summary()["history"] == 100_000
    print(
        f"\nknowledge base, 100k rows over 1000 x 1000: record_many {t_record:.2f} s, "
        f"replace all {t_replace:.2f} s, matrix {t_matrix * 1000:.0f} ms"
    )
    expected = np.full((n_models, n_tasks), np.nan)
    expected[cells // n_tasks, cells % n_tasks] = vals
    assert m.models == [f"model{i:04d}" for i in range(n_models)]
    assert m.tasks == [f"task{j:04d}" for j in range(n_tasks)]
    np.testing.assert_array_equal(m.values, expected)
    assert t_record < 10 and t_replace < 10
    assert t_matrix < 2


def test_known_kinds_are_valid() -> None:
    assert metric_kind("logme") == "metric:logme"
    assert {"finetune_acc", "linear_probe_acc", "metric:<name>"} == set(KNOWN_KINDS)
    with pytest.raises(InputError):
        metric_kind("Not A Metric")


@pytest.mark.parametrize("value", [2.0, -1, 87, 1.0000001])
def test_accuracy_kinds_are_kept_in_their_range(tmp_path: Path, value) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        with pytest.raises(InputError, match=r"outside \[0, 1\]: finetune_acc is a fraction") as err:
            kb.record("m", "t", "finetune_acc", value)
        if value == 87:
            assert "record 0.87" in str(err.value)
        with pytest.raises(InputError, match=r"row 1 of record_many: .*linear_probe_acc"):
            kb.record_many([("m", "t", "finetune_acc", 0.5), ("m", "t", "linear_probe_acc", value)])
        assert kb.results() == []  # all or nothing
        kb.record("m", "t", "metric:logme", value)  # metric scores have no range
        kb.record("m", "t", "finetune_acc", 1.0)
        kb.record("m", "t", "finetune_acc", 0.0)


# ------------------------------------------------------------------ class centres (schema 3)


def test_class_centres_round_trip_as_float32_replace_and_go_with_their_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(4, 2))
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.put_centres("m1", "t1", a, provenance="probe 25%")
        kb.put_centres("m2", "t1", b)
        kb.put_centres("m1", "t2", b)
        got = kb.centres()
        assert sorted(got) == [("m1", "t1"), ("m1", "t2"), ("m2", "t1")]
        assert got[("m1", "t1")].dtype == np.float32
        np.testing.assert_array_equal(got[("m1", "t1")], a.astype(np.float32))
        assert sorted(kb.centres(task="t1")) == [("m1", "t1"), ("m2", "t1")]
        assert sorted(kb.centres(model="m1", task="t2")) == [("m1", "t2")]
        kb.put_centres("m1", "t1", b)  # replaces
        np.testing.assert_array_equal(kb.centres("m1", "t1")[("m1", "t1")], b.astype(np.float32))
        kb.delete_model("m1")
        assert sorted(kb.centres()) == [("m2", "t1")]
        for bad, match in ((np.zeros(3), "non-empty"), (np.full((2, 2), np.nan), "NaN")):
            with pytest.raises(InputError, match=match):
                kb.put_centres("m2", "t1", bad)
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:  # persisted
        assert sorted(kb.centres()) == [("m2", "t1")]
