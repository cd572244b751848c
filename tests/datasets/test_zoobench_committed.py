"""The committed ZooBench (benchmarks/zoobench): the zoo matches its design, every committed weight file matches
the checksum the build logged, the size stays in budget, and — once the build is complete — the ground truth
discriminates and the committed results reproduce."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from zoorank import evaluation as H
from zoorank import paths
from zoorank.datasets.zoobench import build as B
from zoorank.datasets.zoobench import training as TR
from zoorank.datasets.zoobench import zoo_design as Z

ROOT = paths.zoobench_dir()
COMPLETE = (ROOT / "ground_truth.csv").exists()


def _rows(name: str) -> list[dict[str, str]]:
    with open(ROOT / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _log() -> list[dict]:
    return [json.loads(ln) for ln in (ROOT / B.LOG_NAME).read_text().splitlines() if ln.strip()]


def test_zoo_csv_is_the_designed_zoo():
    rows = _rows("zoo.csv")
    design = Z.zoo(B.SOURCE_DOMAINS)
    assert [(r["model"], r["architecture"], r["source_domain"], r["init"]) for r in rows] == \
        [(m.name, m.arch.name, m.source_domain, m.init) for m in design]
    assert len(rows) >= 36 and sum(r["init"] == "imagenet" for r in rows) >= 9
    assert len({Z.ARCHS[r["architecture"]].family for r in rows if r["init"] == "scratch"}) >= 6


def test_log_header_is_the_default_configuration():
    assert _log()[0]["config"] == B.BuildConfig().to_json()


def test_committed_weights_match_the_logged_checksums():
    zoo = {r["model"]: r for r in _rows("zoo.csv")}
    pretrained = [r for r in _log()[1:] if r["kind"] == "pretrain"]
    assert pretrained, "the build has committed no weights yet"
    for rec in pretrained:
        path = B.weights_path(ROOT, rec["model"])
        assert TR.file_sha256(path) == rec["sha256"] == zoo[rec["model"]]["sha256"], rec["model"]
    on_disk = {p.stem for p in (ROOT / "weights").glob("*.safetensors")}
    assert on_disk == {r["model"] for r in pretrained}


def test_committed_size_is_in_budget():
    size = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert size < 150e6


def test_finished_finetunes_are_consistent():
    for rec in (r for r in _log()[1:] if r["kind"] == "finetune"):
        accs = rec["test_acc_per_lr"]
        assert rec["finetune_acc"] == accs[f"{rec['best_lr']:g}"] and 0 <= rec["linear_probe_acc"] <= 1


needs_complete = pytest.mark.skipif(not COMPLETE, reason="the ZooBench build is not finished (no ground_truth.csv)")


@needs_complete
def test_ground_truth_discriminates():
    bench = H.load_benchmark(ROOT)
    assert len(bench.models) == 37 and len(bench.tasks) == 19
    report = H.discrimination(bench)
    assert H.discrimination_problems(report) == []


@needs_complete
@pytest.mark.skipif(not (ROOT / "results.json").is_file(), reason="no committed zoorank bench run results yet")
def test_committed_results_reproduce(tmp_path: Path):
    """A subset of the committed `zoorank bench run` records, recomputed from scratch (fresh feature cache)."""
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.store.feature_cache import FeatureCache

    committed = {(r.method, r.task): r for r in H.read_json(ROOT / "results.json")}
    bench = H.load_benchmark(ROOT)
    tasks = ["shape_outlines", "blob_scale", "greek_capitals"]
    methods = ["logme", "leep", "baseline:popularity", "baseline:params"]
    provider = ZooBenchProvider(ROOT, cache=FeatureCache(tmp_path / "cache"))
    res = H.run(bench, H.make_methods(methods), provider, tasks, errors="raise")
    for r in res:
        c = committed[(r.method, r.task)]
        assert abs(r.weighted_tau - c.weighted_tau) < 1e-3 and abs(r.pearson - c.pearson) < 1e-3, (r, c)
        assert r.forward_passes == c.forward_passes
    assert np.isfinite([r.weighted_tau for r in res]).all()
