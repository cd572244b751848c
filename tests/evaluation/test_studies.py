"""The pieces of the ZooBench studies that run without torch: the open-zoo draw of the harness, a zoo with models
left out, the few-shot probe cut, and the tables the studies write."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import encoder_study as ES
from benchmarks import few_shot as FS
from benchmarks import live_cost as LC
from zoorank import evaluation as H
from zoorank import paths
from zoorank.errors import InputError
from zoorank.evaluation.adapters.pipeline import cold_models


def test_the_cold_models_of_a_fold_are_a_seeded_draw_that_leaves_at_least_three():
    models = [f"m{i}" for i in range(10)]
    a = cold_models("cifar_like", models, 3)
    assert len(a) == 3 and set(a) <= set(models) and list(a) == sorted(a)
    assert cold_models("cifar_like", list(reversed(models)), 3) == a  # the zoo's order does not matter
    assert any(cold_models(t, models, 3) != a for t in ("flowers", "birds", "digits"))
    assert cold_models("x", models, 0) == () and len(cold_models("x", models[:4], 3)) == 1


def test_a_benchmark_without_models_drops_their_truth_and_meta_data():
    bench = H.load_benchmark(paths.zoobench_dir())
    gone = [bench.models[0], bench.models[5]]
    rest = bench.without_models(gone)
    assert list(rest.models) == [m for m in bench.models if m not in gone] and rest.tasks == bench.tasks
    t = bench.tasks[0]
    np.testing.assert_array_equal(rest.truth(t), np.delete(bench.truth(t), [0, 5]))
    assert set(rest.zoo) == set(rest.models)
    with pytest.raises(InputError, match="unknown model"):
        bench.without_models(["nope"])
    with pytest.raises(InputError, match="not one string"):
        bench.without_models(gone[0])


def test_few_shot_rows_take_k_per_class_seeded_by_trial_and_target():
    labels = np.array([0] * 30 + [1] * 12 + [2] * 4)
    rows = FS.few_shot_rows(labels, 10, 0, "t")
    assert np.bincount(labels[rows]).tolist() == [10, 10, 4] and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, FS.few_shot_rows(labels, 10, 0, "t"))
    assert not np.array_equal(rows, FS.few_shot_rows(labels, 10, 1, "t"))
    assert not np.array_equal(rows, FS.few_shot_rows(labels, 10, 0, "u"))


def test_the_few_shot_provider_cuts_the_held_out_target_only():
    class Base:
        encoder_model = "enc"

        def labels(self, task):
            return np.arange(6) % 2

        def features(self, model, task, rows=None):
            f = np.arange(12.0).reshape(6, 2) + (100 if task == "b" else 0)
            return f, f[:, :1]

        def proxy_features(self, task):
            return np.zeros((3, 2))

        def general_features(self, model):
            return "general"

    p = FS.FewShotProvider(Base())
    p.target, p.rows = "a", np.array([1, 4])
    f, lg = p.features("m", "a")
    np.testing.assert_array_equal(f, np.arange(12.0).reshape(6, 2)[[1, 4]])
    np.testing.assert_array_equal(lg, f[:, :1])
    np.testing.assert_array_equal(p.labels("a"), [1, 0])
    np.testing.assert_array_equal(p.features("m", "a", rows=np.array([1]))[0], f[[1]])  # rows of the cut
    assert p.features("m", "b")[0].shape == (6, 2) and p.labels("b").size == 6  # history untouched
    E, y = p.encoder_features("a")
    assert E.shape == (2, 2) and y.tolist() == [1, 0]
    np.testing.assert_array_equal(p.proxy_features("a"), E)  # the drawn images are all a few-shot user has
    assert p.proxy_features("b").shape == (3, 2) and p.general_features("m") == "general"


def test_the_study_tables_carry_every_configuration_and_the_margins():
    rows = [{"config": c, "encoder": e, "models": n, "method": m, "n": 19, "weighted_tau": tau,
             "top1_regret": 1.0}
            for c, e, n, base in (("member", "enc", 37, 0.70), ("left out", "enc", 36, 0.60))
            for m, tau in (("rank:coarse", base + 0.03), ("baseline:popularity", base))]
    md = ES.markdown(rows, command="python -m benchmarks.encoder_study")
    assert "member (enc, 37 models)" in md and "left out (enc, 36 models)" in md
    assert "| rank:coarse | 0.730 | 0.630 |" in md and "| rank:coarse | +0.030 | +0.030 |" in md
    result = {"shots": 10, "trials": 2, "targets": 19, "rows": [
        {"method": "spider", "trial": "full", "weighted_tau": 0.5, "top1_regret": 0.03},
        {"method": "spider", "trial": 0, "weighted_tau": 0.4, "top1_regret": 0.04},
        {"method": "spider", "trial": 1, "weighted_tau": 0.2, "top1_regret": 0.06}]}
    md = FS.markdown(result, command="python -m benchmarks.few_shot")
    sd = np.std([0.4, 0.2], ddof=1)
    assert f"| spider | 0.500 | 0.300 | {sd:.3f} | [{0.3 - 1.96 * sd / np.sqrt(2):.3f}, " in md
    assert "| 5.0 | 3.0 |" in md


def test_live_cost_shares_sum_the_plan_and_the_reference_part_by_part():
    per = {m: {"load": 0.1, "forward_part": 0.2, "forward_full": 0.8, "score_full": 0.05,
               **{f"score_part:{s}": 0.01 for s in LC.STACK}} for m in "abcd"}
    per["a"]["load"] = 0.5  # the dear one to load
    rec = {"task": "t", "models": per, "probe": 40, "part": 10, "proxy": 0.3}
    r = LC.shares(rec, ["a", "b", "c", "d"], 2)
    ref = 0.5 + 0.3 + 4 * 0.85
    plan = 0.3 + 0.6 + 2 * (0.2 + 0.03)
    assert r["reference"] == pytest.approx(ref) and r["plan"] == pytest.approx(plan)
    assert r["share"] == pytest.approx(plan / ref)
    assert r["share_free_load"] == pytest.approx((plan - 0.6) / (ref - 0.8))
    assert r["images"] == 20 and r["reference_images"] == 160
    assert LC.shares(rec, ["d", "c", "b", "a"], 2)["plan"] == pytest.approx(0.3 + 0.2 + 2 * 0.23)
