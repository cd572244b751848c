"""The committed ZooBench (benchmarks/zoobench): the zoo matches its design, every committed weight file matches
the checksum the build logged, the size stays in budget, and — once the build is complete — the ground truth
discriminates and the committed results reproduce."""

from __future__ import annotations

import csv
import json
from pathlib import Path

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


def _subset_file() -> Path:
    """The committed reproducibility records of this machine's kernel family (zoorank._kernels.kernel_family):
    results_subset.json for the family results.json was made on, results_subset.<family>.json for another."""
    from zoorank._kernels import kernel_family

    family = kernel_family()
    return ROOT / ("results_subset.json" if family == "avx2" else f"results_subset.{family}.json")


SUBSET_FILE = _subset_file()


@needs_complete
@pytest.mark.skipif(not SUBSET_FILE.is_file(), reason=f"no committed records for this machine ({SUBSET_FILE.name})")
def test_committed_results_reproduce_from_an_empty_cache(tmp_path: Path, monkeypatch):
    """Every method on the reproducibility subset, from empty caches (features, metric scores, text embeddings):
    every record equals the committed `zoorank bench run --within` run of this machine's kernel family within
    REPRODUCE_TOL, and, on the family results.json was made on, every record that does not depend on the other
    targets (the metrics, the random and parameter-count baselines) equals the full benchmark's results.json as
    well."""
    from zoorank.datasets.zoobench import REPRODUCE_SUBSET
    from zoorank.datasets.zoobench.provider import ZooBenchProvider
    from zoorank.metric_sets import benchmarked_metrics
    from zoorank.store.feature_cache import FeatureCache

    monkeypatch.setenv("ZOORANK_CACHE", str(tmp_path / "cache"))
    bench = H.load_benchmark(ROOT).within(REPRODUCE_SUBSET)
    provider = ZooBenchProvider(ROOT, cache=FeatureCache(tmp_path / "cache"))
    methods = H.make_methods("all")
    res = H.run(bench, methods, provider, list(REPRODUCE_SUBSET), errors="raise")
    for m in methods:  # every method, on at least 4 targets (a method may skip a target, e.g. no source domain)
        assert sum(r.method == m.name for r in res) >= 4, m.name
    assert provider.computed > 0  # the cache really was empty
    assert H.compare_records(res, H.read_json(SUBSET_FILE)) == []
    if SUBSET_FILE.name != "results_subset.json":
        return  # results.json holds the avx2 family's digits
    alone = {(r.method, r.task) for r in res if r.method in benchmarked_metrics() or r.method in
             ("baseline:random", "baseline:params")}
    assert len(alone) >= 4 * len(benchmarked_metrics())
    assert H.compare_records(res, H.read_json(ROOT / "results.json"), keys=sorted(alone)) == []
