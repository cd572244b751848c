import json

import numpy as np
import pytest
from click.testing import CliRunner

from zoorank import metrics as M
from zoorank.cli import cli

from metric_cases import case


@pytest.fixture
def arrays(tmp_path):
    X, y, P, _ = case(n=200, d=70, c=4)
    paths = {}
    for key, arr in {"X": X, "y": y, "P": P}.items():
        paths[key] = tmp_path / f"{key}.npy"
        np.save(paths[key], arr)
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    return paths, (X, y, P)


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_metrics_list_json():
    result = run("metrics", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == M.available()
    leep = next(r for r in rows if r["name"] == "leep")
    assert "source_probs" in leep["needs"]


def test_metrics_list_table():
    result = run("metrics", "list")
    assert result.exit_code == 0 and "logme" in result.output


def test_metrics_score_matches_api(arrays):
    paths, (X, y, P) = arrays
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(paths["y"]),
                 "--source-probs", str(paths["P"]), "--metric", "logme,leep,hscore", "--json")
    assert result.exit_code == 0, result.output
    out = {r["metric"]: r["score"] for r in json.loads(result.output)["scores"]}
    assert out["logme"] == pytest.approx(M.logme(X, y), rel=1e-12)
    assert out["leep"] == pytest.approx(M.leep(None, y, source_probs=P), rel=1e-12)
    assert out["hscore"] == pytest.approx(M.hscore(X, y), rel=1e-12)


def test_metrics_score_all_skips_what_inputs_do_not_allow(arrays, tmp_path):
    paths, _ = arrays
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(tmp_path / "y.csv"),
                 "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    scored = {r["metric"] for r in out["scores"]}
    skipped = {r["metric"] for r in out["skipped"]}
    assert {"logme", "sfda", "energy"} <= scored
    assert {"leep", "nce", "ped"} <= skipped
    assert scored | skipped == set(M.available())


def test_metrics_score_errors_are_clear(arrays, tmp_path):
    paths, _ = arrays
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(paths["y"]),
                 "--metric", "leep")
    assert result.exit_code != 0 and "--source-probs" in result.output
    result = run("metrics", "score", "--features", str(tmp_path / "missing.npy"), "--labels", str(paths["y"]))
    assert result.exit_code != 0 and "does not exist" in result.output
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(paths["y"]),
                 "--metric", "nope")
    assert result.exit_code != 0 and "unknown metric" in result.output
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(10, dtype=np.int64))
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(bad), "--metric", "logme")
    assert result.exit_code != 0 and "length" in result.output


def test_bench_metrics_writes_markdown(tmp_path):
    doc = tmp_path / "BENCH.md"
    doc.write_text("# Benchmarks\n\nkept text\n")
    result = run("bench", "metrics", "--size", "small", "--metric", "logme,leep", "--repeat", "1",
                 "--write", str(doc))
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    assert "kept text" in text and "| logme |" in text and "| leep |" in text
    assert "zoorank bench metrics --size small --metric logme,leep --repeat 1" in text
    # a second run replaces the section instead of appending another
    run("bench", "metrics", "--size", "small", "--metric", "logme", "--repeat", "1", "--write", str(doc))
    text = doc.read_text()
    assert text.count("## Metric speed") == 1 and "| leep |" not in text


def test_pipeline_demo_ranks_a_held_out_zoobench_target(tmp_path, monkeypatch):
    from zoorank import demo as D

    assert D.available(), "the demo's rankers are committed under benchmarks/zoobench/demo"
    monkeypatch.setenv("ZOORANK_CACHE", str(tmp_path / "cache"))  # a cold cache, as on a fresh machine
    report = tmp_path / "demo.html"
    result = run("demo", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert D.DEMO_TARGET in result.output and "weighted tau" in result.output
    text = " ".join(result.output.split())
    assert "32 of 37 models ran, on 25% of the probe" in text  # zoorank rank's default job: the belief ranker
    assert "interval" in text and "similarity-weighted 18 tasks" in text
    assert "toy demo instead" not in result.output
    assert D.DEMO_TARGET in report.read_text()


def test_demo_runs_and_ranks_against_truth():
    result = run("demo", "--toy")
    assert result.exit_code == 0, result.output
    assert "weighted tau" in result.output and "fine-tuned acc" in result.output
    assert "could not score" not in result.output


def test_metrics_score_takes_metric_parameters_and_real_targets(arrays, tmp_path):
    paths, (X, y, _) = arrays
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(paths["y"]),
                 "--metric", "knn,logme", "--param", "k=7", "--json")
    assert result.exit_code == 0, result.output
    out = {r["metric"]: r["score"] for r in json.loads(result.output)["scores"]}
    assert out["knn"] == M.knn(X, y, k=7)
    assert out["logme"] == pytest.approx(M.logme(X, y), rel=1e-12)  # k goes only to the metric taking it
    t = X[:, :2] @ np.array([1.0, -2.0]) + 0.1
    np.save(tmp_path / "t.npy", t)
    result = run("metrics", "score", "--features", str(paths["X"]), "--labels", str(tmp_path / "t.npy"),
                 "--regression", "--json")
    assert result.exit_code == 0, result.output
    out = {r["metric"]: r["score"] for r in json.loads(result.output)["scores"]}
    assert set(out) == set(M.available(regression=True))
    assert out["logme"] == pytest.approx(M.logme(X, t, regression=True), rel=1e-12)
    assert out["knn"] == pytest.approx(M.knn(X, t, regression=True), rel=1e-12)
