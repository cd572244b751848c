"""ZooBench build (tiny configuration), its resumability, the feature provider and `zoorank bench run`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoorank import evaluation as H
from zoorank.cli import cli
from zoorank.datasets.zoobench import build as B
from zoorank.datasets.zoobench import tasks as T
from zoorank.datasets.zoobench import training as TR
from zoorank.datasets.zoobench import zoo_design as Z
from zoorank.datasets.zoobench.provider import ZooBenchProvider, general_images
from zoorank.errors import InputError
from zoorank.store.feature_cache import FeatureCache

TINY = B.BuildConfig(models=("mobilenet_v2-imagenet", "resnet10t-w24-latin", "densenet-g12-textures"),
                     tasks=("shape_outlines", "blob_scale"), source_images=300,
                     pretrain_epochs={"scratch": 1, "imagenet": 1}, finetune_epochs=1, lr_grid=(1e-3, 3e-3))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zoobench")
    out = B.build(root, config=TINY, workers=2, threads=1)
    assert out["complete"] and out["ran"] == 2 + 3 * 2
    return root


def test_tiny_build_writes_the_design_files(tiny: Path):
    gt = _rows(tiny / "ground_truth.csv")
    assert list(gt[0]) == ["model", "task", "finetune_acc", "linear_probe_acc"]
    assert {(r["model"], r["task"]) for r in gt} == {(m, t) for m in TINY.models for t in TINY.tasks}
    assert all(0 <= float(r[k]) <= 1 for r in gt for k in ("finetune_acc", "linear_probe_acc"))
    zoo = {r["model"]: r for r in _rows(tiny / "zoo.csv")}
    assert zoo["mobilenet_v2-imagenet"]["init"] == "imagenet" and zoo["resnet10t-w24-latin"]["init"] == "scratch"
    assert zoo["densenet-g12-textures"]["source_domain"] == "textures"
    for m in ("resnet10t-w24-latin", "densenet-g12-textures"):
        assert TR.file_sha256(B.weights_path(tiny, m)) == zoo[m]["sha256"]
        state = TR.load_fp16(B.weights_path(tiny, m), zoo[m]["sha256"])
        assert int(zoo[m]["params"]) == sum(v.numel() for k, v in state.items()
                                            if "running" not in k and "num_batches" not in k)
    tasks = {r["task"]: r for r in _rows(tiny / "tasks.csv")}
    assert tasks["blob_scale"]["n_classes"] == "2" and "blob" in tasks["blob_scale"]["description"]
    bench = H.load_benchmark(tiny)
    assert list(bench.models) == list(TINY.models) and list(bench.tasks) == list(TINY.tasks)


def test_log_records_lr_choice_on_validation(tiny: Path):
    rows = [json.loads(ln) for ln in (tiny / B.LOG_NAME).read_text().splitlines()]
    assert rows[0]["config"]["finetune"]["lr_grid"] == [1e-3, 3e-3]
    ft = [r for r in rows[1:] if r["kind"] == "finetune"]
    for r in ft:
        best = max(r["val_acc_per_lr"], key=lambda k: (r["val_acc_per_lr"][k], -float(k)))
        assert float(best) == r["best_lr"] and r["test_acc_per_lr"][best] == r["finetune_acc"]


def test_interrupted_build_resumes_without_redoing_and_matches(tiny: Path, tmp_path: Path):
    first = B.build(tmp_path, config=TINY, workers=1, threads=1, max_jobs=3)
    assert not first["complete"] and first["ran"] == 3
    done = len((tmp_path / B.LOG_NAME).read_text().splitlines()) - 1
    second = B.build(tmp_path, config=TINY, workers=2, threads=1)
    assert second["complete"] and second["ran"] == 8 - done
    assert (tmp_path / "ground_truth.csv").read_text() == (tiny / "ground_truth.csv").read_text()
    again = B.build(tmp_path, config=TINY)
    assert again["ran"] == 0


def test_a_job_caps_blas_threads_of_its_linear_probe(tiny: Path, tmp_path: Path, monkeypatch):
    """The probe's BLAS must not start a thread per core inside each worker (they spin-wait on each other)."""
    from threadpoolctl import threadpool_info

    seen: list[int] = []
    probe = TR.linear_probe

    def spy(*args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info())
        return probe(*args, **kwargs)

    monkeypatch.setattr(TR, "linear_probe", spy)
    sha = {r["model"]: r["sha256"] for r in _rows(tiny / "zoo.csv")}
    rec = B.run_finetune(TINY, "resnet10t-w24-latin", "blob_scale", str(tiny), str(tmp_path), 1,
                         sha["resnet10t-w24-latin"])
    assert seen and set(seen) == {1}
    gt = {(r["model"], r["task"]): r for r in _rows(tiny / "ground_truth.csv")}[("resnet10t-w24-latin", "blob_scale")]
    assert f"{rec['finetune_acc']:.6f}" == gt["finetune_acc"]
    assert f"{rec['linear_probe_acc']:.6f}" == gt["linear_probe_acc"]


def test_a_log_of_another_configuration_is_refused(tiny: Path, tmp_path: Path):
    (tmp_path / B.LOG_NAME).write_text((tiny / B.LOG_NAME).read_text())
    other = B.BuildConfig(**{**TINY.__dict__, "finetune_epochs": 2})
    with pytest.raises(InputError, match="another configuration"):
        B.build(tmp_path, config=other)


def test_unknown_model_or_unfinished_ground_truth_is_an_error(tmp_path: Path):
    with pytest.raises(InputError, match="unknown zoo model"):
        B.BuildConfig(models=("no-such-model",)).zoo()
    log = B.BuildLog(tmp_path / B.LOG_NAME, TINY)
    with pytest.raises(InputError, match="not finished"):
        B.write_ground_truth(tmp_path, TINY, log)


def test_full_plan_is_within_the_budget():
    jobs = B.plan(B.BuildConfig())
    assert sum(j.kind == "pretrain" for j in jobs) == 36 and sum(j.kind == "finetune" for j in jobs) == 37 * 19
    assert sum(j.estimate for j in jobs) / 3600 < 6.0


def test_provider_features_are_cached_and_checked(tiny: Path, tmp_path: Path, monkeypatch):
    provider = ZooBenchProvider(tiny, cache=FeatureCache(tmp_path / "cache"), threads=1)
    feats, logits = provider.features("resnet10t-w24-latin", "blob_scale")
    labels = provider.labels("blob_scale")
    assert feats.shape == (350, 192) and logits.shape == (350, 44) and labels.shape == (350,)
    net = TR.load_state(Z.ARCHS["resnet10t-w24"], TR.load_fp16(B.weights_path(tiny, "resnet10t-w24-latin")))

    data = T.load("blob_scale")
    ref, _ = TR.features_and_logits(net, data.images[data.train])
    np.testing.assert_allclose(feats, ref, rtol=1e-5, atol=1e-6)
    assert provider.computed == 1
    again = ZooBenchProvider(tiny, cache=FeatureCache(tmp_path / "cache"))
    np.testing.assert_array_equal(again.features("resnet10t-w24-latin", "blob_scale")[0], feats)
    assert again.computed == 0
    g = provider.general_features("mobilenet_v2-imagenet")
    assert g.shape == (len(general_images()), 1280) == (400, 1280)

    from zoorank.datasets.zoobench import checksums as C

    doc = C.read()
    doc["tasks"]["shape_outlines"]["sha256"] = "0" * 64
    monkeypatch.setattr(C, "read", lambda *a, **k: doc)
    fresh = ZooBenchProvider(tiny, cache=FeatureCache(tmp_path / "cache2"))
    with pytest.raises(InputError, match="differ from the committed checksum"):
        fresh.features("mobilenet_v2-imagenet", "shape_outlines")


def test_provider_refuses_changed_weights(tiny: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(tiny, copy)
    w = B.weights_path(copy, "densenet-g12-textures")
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    provider = ZooBenchProvider(copy, cache=FeatureCache(tmp_path / "cache"))
    with pytest.raises(InputError, match="differs from the expected"):
        provider.features("densenet-g12-textures", "blob_scale")


def test_bench_run_cli_writes_design_records(tiny: Path, tmp_path: Path):
    out = tmp_path / "r.json"
    md = tmp_path / "B.md"
    res = CliRunner().invoke(cli, ["bench", "run", "--dir", str(tiny), "--methods", "logme,leep,baseline:popularity",
                                   "--cache-dir", str(tmp_path / "c"), "--json", str(out), "--write", str(md)])
    assert res.exit_code == 0, res.output
    recs = json.loads(out.read_text())
    assert {r["method"] for r in recs} == {"logme", "leep", "baseline:popularity"}
    # DESIGN.md's keys in its order, then the optional count of images passed through the zoo
    assert all(list(r) == [*H.RECORD_KEYS, "image_passes"] for r in recs)
    provider = ZooBenchProvider(tiny, cache=FeatureCache(tmp_path / "c"))
    for r in recs:  # every model on the whole probe for a metric, nothing for popularity
        assert r["image_passes"] == r["forward_passes"] * len(provider.labels(r["task"]))
    assert {r["forward_passes"] for r in recs if r["method"] == "logme"} == {3}
    assert {r["forward_passes"] for r in recs if r["method"] == "baseline:popularity"} == {0}
    text = md.read_text()
    assert "## ZooBench" in text and "Does the benchmark discriminate?" in text and "blob_scale" in text


def test_bench_build_dry_run_prints_the_estimate():
    res = CliRunner().invoke(cli, ["bench", "build", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "37 models x 19 tasks" in res.output and "703 fine-tuning jobs" in res.output


def test_fennec_archi2vec_features_of_the_zoo(tiny: Path, tmp_path: Path):
    from zoorank.evaluation.adapters.fennec import _archi2vec_features

    bench = H.load_benchmark(tiny)
    provider = ZooBenchProvider(tiny, cache=FeatureCache(tmp_path / "cache"))
    ctx = H.TaskContext("blob_scale", bench, provider)
    feats = _archi2vec_features(ctx, [bench.zoo[m].params for m in bench.models])
    assert feats.shape == (3, 2 + 32) and np.isfinite(feats).all()
    assert ctx.forward_passes == 0
    # log10 params and log10 layer counts come first; three different architectures, three different embeddings
    np.testing.assert_allclose(feats[:, 0], np.log10([bench.zoo[m].params for m in bench.models]))
    assert len({tuple(np.round(r[2:], 6)) for r in feats}) == 3
