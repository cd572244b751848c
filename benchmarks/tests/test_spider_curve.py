"""Model Spider: the losses (equation 4, ListMLE, MSE), the one-layer Transformer scorer (equation 6), sampled
training tasks and their Copeland supervision (appendices A.4, B.1), ranking unseen tasks, re-ranking with
PTM-specific tokens (section 4.4), persistence, the incremental zoo (appendix C.4), the spider chart (section 5.4)
and the leave-one-target-out harness adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.spider_curve import curve, report, train_cost
from zoorank import evaluation as H
from zoorank.datasets.planted import PlantedProvider, planted_benchmark
from zoorank.evaluation.adapters.spider import SpiderMethod

torch.set_num_threads(1)


HARNESS = {"bank": {"n_tasks": 60, "n_specific": 6}, "spider": {"epochs": 12}, "min_tasks": 5}


def test_harness_adapter_counts_forward_passes_and_never_reads_the_held_out_task():
    bench, provider = planted_benchmark(n_models=6, n_tasks=5, hidden=1.0, seed=3)
    methods = [SpiderMethod("spider", **HARNESS), SpiderMethod("spider@k2", k=2, **HARNESS)]
    result = H.run(bench, methods, provider, errors="raise")
    assert len(result) == 2 * len(bench.tasks)
    assert {r.forward_passes for r in result if r.method == "spider"} == {0}
    assert {r.forward_passes for r in result if r.method == "spider@k2"} == {2}
    assert all(np.isfinite(r.weighted_tau) for r in result)
    # evaluating one target: none of its features is read except the k re-ranked models' (online, counted)
    fresh = PlantedProvider(n_models=6, n_tasks=5, hidden=1.0, seed=3)
    H.run(bench, [SpiderMethod("spider", **HARNESS)], fresh, tasks=["t2"], errors="raise")
    assert fresh.requests and all(t != "t2" for _, t in fresh.requests)
    fresh.requests.clear()
    H.run(bench, [SpiderMethod("spider@k2", k=2, **HARNESS)], fresh, tasks=["t2"], errors="raise")
    assert sorted(m for m, t in fresh.requests if t == "t2") == sorted(set(m for m, t in fresh.requests if t == "t2"))
    assert len([1 for _, t in fresh.requests if t == "t2"]) == 2
    # the curve command on the same benchmark: k = 0..M, forward passes = k
    res = curve(bench, provider, tasks=["t0", "t1"], ks=[0, 1, 2, 6], params=HARNESS, reference=())
    assert res["k"] == res["forward_passes"] == [0, 1, 2, 6] and len(res["weighted_tau"]) == 4
    assert res["weighted_tau"][1] == res["weighted_tau"][0]  # re-ranking the top-1 alone cannot change the order
    spider_taus = [r.weighted_tau for r in result if r.method == "spider" and r.task in ("t0", "t1")]
    assert res["weighted_tau"][0] == pytest.approx(np.mean(spider_taus))  # k = 0 is the harness's ``spider``


def test_train_cost_and_report_section(tmp_path):
    bench, provider = planted_benchmark(n_models=6, n_tasks=5, hidden=1.0, seed=3)
    cost = train_cost(bench, provider, params=HARNESS)
    assert cost["training_tasks"] == 60 and cost["targets"] == 5 and cost["models"] == 6
    assert cost["bank_seconds"] > 0 and cost["fit_seconds"] > 0
    assert 0 < cost["rank_seconds_mean"] <= cost["rank_seconds_max"] < 1.0
    md, res = report(bench, provider, out=tmp_path / "sp", command="cmd", params=HARNESS, ks=[0, 2, 6], new=2)
    assert res["curve"]["k"] == [0, 2, 6] and res["incremental"]["new_models"] == ["m4", "m5"]
    assert set(res["supervision_quality"]) == {"copeland", "nce", "leep", "logme", "hscore"}
    for name in ("sp_curve.png", "sp_chart.png", "sp_chart.svg"):
        assert (tmp_path / name).read_bytes()[:4] in (b"\x89PNG", b"<?xm", b"<svg")
    assert "Command: `cmd`" in md and "](sp_curve.png)" in md and "| copeland |" in md
