"""The MetaRank and the default metric order shipped in the package (zoorank.methods.metarank.shipped): the
order follows its documented formula, the files are checked, a damaged one is a clear error, and a user with no
fitted rankers gets them in zoorank rank."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from zoorank import metrics as M
from zoorank.errors import InputError
from zoorank.methods.metarank import MetaRecord
from zoorank.methods.metarank.shipped import (
    MODEL_FILE,
    ORDER_FILE,
    SHIPPED_DIR,
    default_metric_order,
    metric_order_from_records,
    read_default_order,
    shipped_metarank,
)


def _rec(dataset, metric, quality, *, group="", source="x", weight=1.0):
    return MetaRecord(dataset=dataset, description=f"images of {dataset}", metric=metric, quality=quality,
                      group=group, source=source, weight=weight)


def test_order_compares_metrics_on_the_datasets_both_measured():
    records = [
        _rec("a", "logme", 0.2), _rec("a", "hscore", 0.6),
        _rec("b", "logme", 0.4), _rec("b", "hscore", 0.0),
        # one dataset in two sources is one group: its records are averaged (by weight) first
        _rec("z1:c", "logme", 0.9, group="c"), _rec("z2:c", "logme", 0.3, group="c", weight=2.0),
        _rec("z1:c", "hscore", 0.1, group="c"),
        _rec("a:sub", "hscore", 1.0, source="zoobench:subtask"),  # sub-tasks are not targets: ignored
        # ncti measured on an easy dataset only: a high mean, but below logme where both ran
        _rec("e", "ncti", 0.8), _rec("e", "logme", 0.85), _rec("e", "hscore", 0.9),
    ]
    order = metric_order_from_records(records)
    # logme - hscore on a, b, c, e: (-0.4 + 0.4 + 0.4 - 0.05) / 4 > 0; ncti loses to both on e
    assert [e["metric"] for e in order] == ["logme", "hscore", "ncti"]
    assert [e["copeland"] for e in order] == [2, 0, -2]
    means = {"logme": np.mean([0.2, 0.4, (0.9 + 2 * 0.3) / 3, 0.85]), "hscore": np.mean([0.6, 0.0, 0.1, 0.9]),
             "ncti": 0.8}
    for e in order:
        assert e["mean_quality"] == pytest.approx(means[e["metric"]], abs=1e-12)
    assert {e["metric"]: e["datasets"] for e in order} == {"logme": 4, "hscore": 4, "ncti": 1}
    tied = metric_order_from_records([_rec("a", "nce", 0.5), _rec("a", "gbc", 0.5 + 1e-12)])
    assert [e["metric"] for e in tied] == ["gbc", "nce"]  # equal up to rounding: a tie, in name order
    with pytest.raises(InputError, match="no full-target records"):
        metric_order_from_records([_rec("a:sub", "nce", 0.5, source="y:subtask")])


def test_the_shipped_files_are_consistent():
    doc = read_default_order()
    names = [e["metric"] for e in doc["order"]]
    wins = [e["copeland"] for e in doc["order"]]
    assert wins == sorted(wins, reverse=True) and len(set(names)) == len(names)
    assert set(names) <= set(M.available())
    assert any(s.startswith("benchmark:") for s in doc["sources"]) and any(s.startswith("published:")
                                                                          for s in doc["sources"])
    order = default_metric_order()
    assert order[: len(names)] == names and sorted(order) == M.available()  # every metric, the evidence's first
    assert default_metric_order(["logme", "knn", "hscore"]) == [m for m in names if m in ("logme", "hscore")] + [
        "knn"]
    model = shipped_metarank()  # the file loads and its checksum matches
    assert set(model.metrics) == set(doc["metarank_metrics"]) and len(model.datasets) == doc["metarank_datasets"]


def test_a_damaged_shipped_file_is_a_clear_error(tmp_path):
    d = tmp_path / "shipped"
    shutil.copytree(SHIPPED_DIR, d)
    data = bytearray((d / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x10
    (d / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"does not match its checksum .* python -m benchmarks\.ship_defaults"):
        shipped_metarank(d)
    (d / ORDER_FILE).write_text("{not json")
    with pytest.raises(InputError, match="is damaged"):
        default_metric_order(directory=d)
    (d / ORDER_FILE).unlink()
    with pytest.raises(InputError, match="is missing"):
        read_default_order(d)


def test_rank_without_fitted_rankers_uses_the_shipped_metarank(tmp_path, monkeypatch):
    from zoorank.pipeline.learn import rankers_for_zoo

    monkeypatch.setenv("ZOORANK_RANKERS", str(tmp_path / "none"))
    rankers, models, note = rankers_for_zoo(None, ["b", "a"])
    assert models == ["b", "a"] and rankers.metarank is not None
    assert "chosen by the MetaRank shipped with zoorank" in note
