"""Extraction, the feature cache and the sweep over a zoo, with real (tiny) timm models on a real
image folder; the Ray executor on a real local Ray instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from zoorank import metrics as M
from zoorank.data import from_folder, probe
from zoorank.store.feature_cache import FeatureCache
from zoorank.zoo import ModelSpec, load_model
from zoorank.zoo.extract import cached_extract, extract_features
from zoorank.zoo.sweep import model_job, run_sweep

METRICS = ["logme", "hscore", "leep", "nce", "etran", "energy"]


def write_folder(root, n_per_class=12, classes=("circle", "square", "stripes"), size=24, corrupt=False):
    rng = np.random.default_rng(0)
    for k, cls in enumerate(classes):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(n_per_class):
            img = np.full((size, size, 3), 30 + 60 * k, dtype=np.uint8)
            img[:: k + 2, :, i % 3] = 220
            img = np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{i:03d}.png")
    if corrupt:
        (root / classes[0] / "broken.png").write_bytes(b"this is not a png")
    return root


def zoo_specs():
    return [
        ModelSpec(name="resnet18", source="timm", ref="resnet18", pretrained=False, input_size=32, seed=1),
        ModelSpec(name="mobilenetv3", source="timm", ref="mobilenetv3_small_050", pretrained=False,
                  input_size=32, seed=2),
        ModelSpec(name="no-such-model", source="timm", ref="resnet5000", pretrained=False),
    ]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("imgs") / "task", corrupt=True)


def test_extract_skips_unreadable_images_and_matches_a_direct_forward(folder):
    import torch

    ds = from_folder(folder)
    model = load_model(zoo_specs()[0])
    out = extract_features(model, ds, batch_size=8)
    assert out.features.shape == (36, model.feature_dim) and out.logits.shape[0] == 36
    assert len(ds.problems) == 1 and "broken.png" in ds.problems[0].path
    assert out.forward_passes == 5  # ceil(36 / 8)
    i = int(out.indices[7])
    f, lg = model.features_and_logits(torch.stack([model.preprocess(ds.load(i))]))
    np.testing.assert_allclose(out.features[7], f[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.logits[7], lg[0].numpy(), rtol=1e-5, atol=1e-5)


def test_second_run_hits_the_cache_without_a_forward_pass(folder, tmp_path, monkeypatch):
    ds = from_folder(folder)
    p = probe(ds, n_max=30, seed=0)
    cache = FeatureCache(tmp_path / "cache")
    model = load_model(zoo_specs()[1])
    first = cached_extract(model, ds, p.indices, probe_identity=p.identity, cache=cache)
    assert not first.from_cache and first.forward_passes > 0

    def no_forward(*args, **kwargs):
        raise AssertionError("a forward pass happened on a cache hit")

    monkeypatch.setattr(type(model), "features_and_logits", no_forward)
    second = cached_extract(model, ds, p.indices, probe_identity=p.identity, cache=cache)
    assert second.from_cache and second.forward_passes == 0
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.indices, first.indices)


def test_sweep_ranks_the_zoo_and_reports_the_failed_model(folder, tmp_path):
    ds = from_folder(folder)
    p = probe(ds, seed=0)
    cache = FeatureCache(tmp_path / "cache")
    res = run_sweep(zoo_specs(), ds, probe=p, metrics=METRICS, cache=cache)
    assert [r.name for r in res.ok] == ["resnet18", "mobilenetv3"]
    (bad,) = res.failed
    assert bad.name == "no-such-model" and "resnet5000" in bad.error
    for r in res.ok:
        assert set(METRICS) <= set(r.scores), r.skipped
        assert r.n_images == len(p) - 1  # the unreadable image is skipped
    # per-model scores equal the metric applied to the cached arrays
    r = res.ok[0]
    e = cache.get(r.cache_key)
    y = ds.labels[e.indices]
    assert r.scores["logme"] == pytest.approx(M.logme(e.features, y))
    # pool scores: the paper's cross-model min-max, so exactly one model gets the top LDA part
    assert sorted(round(s, 9) for s in res.scores("etran").values())[-1] <= 1.0
    again = run_sweep(zoo_specs()[:2], ds, probe=p, metrics=METRICS, cache=cache)
    assert all(r.from_cache and r.forward_passes == 0 for r in again.results)
    assert again.scores("logme") == res.scores("logme")


def test_model_job_never_raises():
    r = model_job(ModelSpec(name="x", source="timm", ref="resnet5000"), None, np.arange(3), "p", ["logme"], None)
    assert not r.ok and "resnet5000" in r.error


SWEEP_SCRIPT = """
import sys, time
from zoorank.data import from_folder, probe
from zoorank.store.feature_cache import FeatureCache
from zoorank.zoo import ModelSpec
from zoorank.zoo.sweep import run_sweep
ds = from_folder(sys.argv[1])
specs = [ModelSpec(name=f"m{i}", source="timm", ref="resnet18", pretrained=False, input_size=32, seed=i)
         for i in range(int(sys.argv[3]))]
def slow(r):
    print("done", r.name, r.from_cache, flush=True)
    time.sleep(float(sys.argv[4]))
run_sweep(specs, ds, probe=probe(ds, seed=0), metrics=["logme"], cache=FeatureCache(sys.argv[2]),
          on_model_done=slow)
"""


def test_killed_sweep_resumes_without_redoing_finished_models(tmp_path):
    folder = write_folder(tmp_path / "task", n_per_class=6)
    cache_dir = tmp_path / "cache"
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(cache_dir), "4", "30"],
                            stdout=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()  # the first model finished; the sweep is now "halfway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.startswith("done m0 False")
    finished = FeatureCache(cache_dir).entries()
    assert len(finished) == 1
    t0 = time.time()
    out = subprocess.run([sys.executable, str(script), str(folder), str(cache_dir), "4", "0"],
                         capture_output=True, text=True, env=env, check=True).stdout.splitlines()
    assert out[0] == "done m0 True"  # finished work is not redone
    assert all(line.endswith("False") for line in out[1:]) and len(out) == 4
    assert len(FeatureCache(cache_dir).entries()) == 4 and time.time() - t0 < 120


def test_ray_executor_gives_identical_scores(folder, tmp_path):
    ray = pytest.importorskip("ray")
    ds = from_folder(folder)
    p = probe(ds, seed=0)
    local = run_sweep(zoo_specs(), ds, probe=p, metrics=METRICS, cache=FeatureCache(tmp_path / "local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(zoo_specs(), ds, probe=p, metrics=METRICS, cache=FeatureCache(tmp_path / "ray"),
                           executor="ray")
    finally:
        ray.shutdown()
    assert [r.name for r in remote.results] == [r.name for r in local.results]
    assert [r.ok for r in remote.results] == [r.ok for r in local.results]
    for a, b in zip(local.ok, remote.ok, strict=True):
        assert not b.from_cache
        assert a.scores == pytest.approx(b.scores, rel=1e-6)


def test_process_executor_gives_identical_scores(folder, tmp_path):
    ds = from_folder(folder)
    p = probe(ds, seed=0)
    specs = zoo_specs()
    local = run_sweep(specs, ds, probe=p, metrics=METRICS, cache=FeatureCache(tmp_path / "local"))
    pooled = run_sweep(specs, ds, probe=p, metrics=METRICS, cache=FeatureCache(tmp_path / "proc"),
                       executor="process")
    assert [r.name for r in pooled.results] == [r.name for r in local.results]
    assert [r.ok for r in pooled.results] == [r.ok for r in local.results]
    for a, b in zip(local.ok, pooled.ok, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-6)


def test_unreadable_images_are_known_on_a_cache_hit(folder, tmp_path):
    ds = from_folder(folder)
    cache = FeatureCache(tmp_path / "cache")
    first = run_sweep(zoo_specs()[:1], ds, metrics=["logme"], cache=cache)
    second = run_sweep(zoo_specs()[:1], from_folder(folder), metrics=["logme"], cache=cache)
    assert second.results[0].from_cache
    assert first.results[0].unreadable == second.results[0].unreadable and len(second.results[0].unreadable) == 1


def test_a_dead_worker_is_a_failed_model_not_a_dead_sweep():
    from zoorank.zoo.sweep import _worker_failure

    r = _worker_failure((zoo_specs()[0], None), RuntimeError("killed\nmore"))
    assert not r.ok and r.name == "resnet18" and r.error == "worker failed: RuntimeError: killed"


def test_probe_of_another_dataset_is_refused(folder, tmp_path):
    from zoorank import InputError
    from zoorank.data import from_arrays

    other = from_arrays(np.zeros((6, 8, 8), dtype=np.uint8), [0, 1, 0, 1, 0, 1])
    with pytest.raises(InputError, match="another dataset"):
        run_sweep(zoo_specs()[:1], from_folder(folder), probe=probe(other, seed=0), metrics=["logme"])
