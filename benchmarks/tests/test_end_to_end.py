"""End-to-end wall time on ZooBench (benchmarks.end_to_end) and the cache that keeps nothing."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.end_to_end import TimedProvider, markdown, passes_alone
from zoorank import evaluation as H
from zoorank.errors import InputError
from zoorank.store.feature_cache import NoFeatureCache, cache_key


def _rec(method, task, tau, passes, seconds):
    return H.Record(method, task, tau, 0.5, 0.01, passes, seconds)


def test_markdown_shares_are_of_the_reference_means_over_common_targets():
    recs = [_rec("metric", "a", 0.8, 10, 10.0), _rec("metric", "b", 0.6, 10, 30.0),
            _rec("pipe", "a", 0.7, 2, 2.0), _rec("pipe", "b", 0.9, 2, 6.0),
            _rec("metric", "c", 0.1, 10, 99.0)]  # c: not scored by every method, left out of both means
    text = markdown(H.RunResult(recs), reference="metric", command="cmd")
    assert "| metric | 0.700 | 10 | 100 % | 20.00 | 100 % |" in text
    assert "| pipe | 0.800 | 2 | 20 % | 4.00 | 20 % |" in text
    assert "| a | 10.00 | 2.00 | 20 % |" in text and "| c |" not in text
    with pytest.raises(InputError, match="reference 'other'"):
        markdown(H.RunResult(recs), reference="other", command="cmd")
    with pytest.raises(InputError, match="no target"):
        markdown(H.RunResult([_rec("metric", "a", 0.8, 10, 1.0), _rec("pipe", "b", 0.8, 2, 1.0)]),
                 reference="metric", command="cmd")


def test_no_feature_cache_keeps_nothing():
    cache = NoFeatureCache()
    key = cache_key(model="m", dataset="d", probe="p", preprocess="x")
    assert cache.put(key, np.ones((2, 3))) is None
    assert cache.get(key) is None and key not in cache and cache.problems == []


def test_zoobench_provider_without_cache_runs_every_request():
    from zoorank.datasets.zoobench.provider import ZooBenchProvider

    provider = ZooBenchProvider("benchmarks/zoobench", cache=NoFeatureCache(), threads=1)
    a, _ = provider.features("densenet-g12-handwritten_digits", "shape_outlines")
    b, _ = provider.features("densenet-g12-handwritten_digits", "shape_outlines")
    assert provider.computed == 2 and np.array_equal(a, b)


def test_passes_alone_by_hand(tmp_path):
    from harness_cases import write_benchmark

    models, tasks = ["a", "b", "c", "d"], ["t0", "t1"]
    ft = np.array([[0.9, 0.8, 0.7, 0.6], [0.6, 0.7, 0.8, 0.9]])
    bench = H.load_benchmark(write_benchmark(tmp_path / "b", models, tasks, ft))
    cost = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}  # the best model of t0 is the dearest, of t1 the cheapest
    passes = {(m, t): cost[m] for m in models for t in tasks}
    (one, two) = passes_alone(passes, bench, {"t0": 10.0, "t1": 20.0}, [1, 2])  # the reference's seconds
    assert one == {"k": 1, "true_top": pytest.approx((4 + 1) / 30), "cheapest": pytest.approx(2 / 30)}
    assert two["true_top"] == pytest.approx((7 + 3) / 30) and two["cheapest"] == pytest.approx(6 / 30)
    text = markdown(H.RunResult([_rec("m", "t0", 0.5, 4, 1.0)]), reference="m", command="c", alone=[one, two])
    assert "| 1 | 17 % | 7 % |" in text and "| 2 | 33 % | 20 % |" in text


def test_timed_provider_records_each_request_and_passes_the_rest_through():
    class Slow:
        def features(self, model, task):
            import time

            time.sleep(0.02)
            return np.zeros((2, 2)), None

        def labels(self, task):
            return np.array([0, 1])

    p = TimedProvider(Slow())
    p.features("m", "t")
    assert list(p.seconds) == [("m", "t")] and p.seconds[("m", "t")] >= 0.02
    assert p.labels("t").tolist() == [0, 1]


def test_zoobench_encoder_features_are_its_encoder_models_features():
    from zoorank.datasets.zoobench.provider import ZooBenchProvider

    provider = ZooBenchProvider("benchmarks/zoobench", threads=1)
    feats, labels = provider.encoder_features("shape_outlines")
    assert provider.encoder_model in provider._zoo
    assert np.array_equal(feats, provider.features(provider.encoder_model, "shape_outlines")[0])
    assert np.array_equal(labels, provider.labels("shape_outlines"))


def test_main_runs_the_reference_first_and_writes_the_section(tmp_path, monkeypatch):
    import json

    from benchmarks import end_to_end as E

    seen = {}

    def fake_measure(root, methods, **kw):
        seen["methods"] = list(methods)
        recs = [_rec("reg_hscore", "hebrew_letters", 0.8, 37, 10.0), _rec("pipeline@k5", "hebrew_letters", 0.7, 5, 3.0)]
        bench = H.load_benchmark(root)
        return H.RunResult(recs), {(m, "hebrew_letters"): 0.25 for m in bench.models}

    monkeypatch.setattr(E, "measure", fake_measure)
    out = tmp_path / "B.md"
    out.write_text("# B\n")
    E.main(["--methods", "pipeline@k5,reg_hscore", "--budgets", "5", "--write", str(out),
            "--passes-json", str(tmp_path / "p.json"), "--json", str(tmp_path / "r.json")])
    assert seen["methods"] == ["reg_hscore", "pipeline@k5"]
    text = out.read_text()
    assert "<!-- zoobench-end-to-end:start -->" in text and "| pipeline@k5 | 0.700 | 5 | 14 % | 3.00 | 30 % |" in text
    assert "| 5 | 12 % | 12 % |" in text  # five passes of 0.25 s over the reference's 10 s
    assert len(json.loads((tmp_path / "p.json").read_text())) == 37
    assert [r.method for r in H.read_json(tmp_path / "r.json")] == ["reg_hscore", "pipeline@k5"]
    with pytest.raises(SystemExit):
        E.main(["--methods", "pipeline@k5", "--reference", "reg_hscore"])
