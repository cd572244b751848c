"""The noise-ceiling study (benchmarks.noise_ceiling): the build's fine-tuning run with another seed, resumable
results, and the ceiling as the weighted tau between two seeds' accuracies."""

from __future__ import annotations

import json

import pytest

from benchmarks import noise_ceiling as N
from zoorank import paths
from zoorank import ranking as R
from zoorank.datasets.zoobench import build as B


def test_the_seed_is_part_of_the_config_and_reaches_the_fine_tuning(monkeypatch, tmp_path):
    from zoorank.datasets.zoobench import training as TR

    assert B.BuildConfig().to_json()["seed"] == 0 and B.BuildConfig(seed=1).to_json()["seed"] == 1
    seen = {}

    def fake_finetune(arch, state, train, val, test, *, seed, **kw):
        seen["seed"] = seed
        return {"finetune_acc": 0.5, "best_lr": 1e-3, "val_acc_per_lr": {1e-3: 0.5}, "test_acc_per_lr": {1e-3: 0.5}}

    monkeypatch.setattr(TR, "finetune", fake_finetune)
    rec = B.run_finetune(B.BuildConfig(tasks=("mirror_symmetry",), seed=7), "mobilenet_v2-imagenet",
                         "mirror_symmetry", str(paths.zoobench_dir()), str(tmp_path), 1, None, linear_probe=False)
    assert seen["seed"] == 7 and rec["linear_probe_acc"] is None and rec["finetune_acc"] == 0.5


def test_ceiling_is_the_weighted_tau_between_seeds_over_shared_models():
    first = {"t": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}, "u": {"a": 0.5, "b": 0.4}}
    second = {"t": {"a": 0.85, "b": 0.86, "c": 0.6, "e": 0.1}, "u": {"a": 0.1, "b": 0.2}}
    got = N.ceiling(first, second)
    assert set(got) == {"t"}  # u shares 2 models only
    assert got["t"] == pytest.approx(R.weighted_tau([0.85, 0.86, 0.6], [0.9, 0.8, 0.7]), abs=1e-15)
    assert N.ceiling(first, {"t": dict(first["t"])})["t"] == pytest.approx(1.0)


def test_finished_runs_are_read_back_for_their_seed_only(tmp_path):
    out = tmp_path / "runs.jsonl"
    assert N.read_done(out, 1) == {}
    out.write_text("\n".join(json.dumps(r) for r in [
        {"model": "a", "task": "t", "seed": 1, "finetune_acc": 0.75},
        {"model": "a", "task": "t", "seed": 2, "finetune_acc": 0.25},
        {"model": "b", "task": "t", "seed": 1, "finetune_acc": 0.5}]) + "\n\n")
    assert N.read_done(out, 1) == {("a", "t"): 0.75, ("b", "t"): 0.5}
    text = N.markdown({"t": 0.9, "u": 0.8}, {"reg_hscore": {"t": 0.7, "u": 0.6}, "partial": {"t": 0.1}}, "cmd", 1)
    assert "| seed 1 against seed 0 (ceiling) | 0.900 | 0.800 | 0.850 |" in text
    assert "| reg_hscore | 0.700 | 0.600 | 0.650 |" in text and "partial" not in text
