import pytest

from zoorank.evaluation import metric_speed as S
from zoorank.evaluation import tables as T


def test_scaling_exponent_recovers_power_law():
    assert S.scaling_exponent([1000, 2000, 4000], [0.5, 2.0, 8.0]) == pytest.approx(2.0)
    assert S.scaling_exponent([10, 20, 40], [3.0, 3.0, 3.0]) == pytest.approx(0.0)


def test_reference_ratio_only_at_realistic_size():
    t = S.Timing("logme", 5000, 2048, 100, 2.0, [2.0], 100.0, 1.0)
    assert t.speedup == pytest.approx(S.REFERENCE_SECONDS["logme"] / 2.0)
    assert S.Timing("logme", 500, 64, 10, 2.0, [2.0], 100.0, 1.0).speedup is None


def test_markdown_section_replaced_in_place(tmp_path):
    p = tmp_path / "B.md"
    p.write_text("# B\n\nbefore\n<!-- x:start -->\nold\n<!-- x:end -->\nafter\n")
    T.write_markdown_section(p, "x", "new")
    assert p.read_text() == "# B\n\nbefore\n<!-- x:start -->\nnew\n<!-- x:end -->\nafter\n"
    T.write_markdown_section(p, "y", "other")
    assert p.read_text().endswith("<!-- y:start -->\nother\n<!-- y:end -->\n")


def test_extraction_benchmark_measures_cold_and_warm(tmp_path):
    from zoorank.evaluation import extract_speed as E

    timings = E.measure(n_images=20, input_size=32, batch_size=8)
    assert [t.model for t in timings] == ["mobilenet_v2-imagenet", *E.TIMM_ARCHS]
    for t in timings:
        assert t.images == 20 and t.cold_seconds > t.warm_seconds > 0
        assert t.images_per_second > 0 and t.cache_speedup > 1
    text = E.markdown(timings, 20, 32, "cmd", "machine")
    assert text.count("| mobilenet_v2-imagenet |") == 1 and "cache speed-up" in text


def test_the_speed_table_times_every_metric_and_logme_regression_form():
    from zoorank import metrics as M
    from zoorank.errors import InputError

    names = S.speed_names("all")
    assert set(M.available()) <= set(names) and "knn" in names and names[-1] == "logme:regression"
    assert S.speed_names("knn, logme:regression") == ["knn", "logme:regression"]
    with pytest.raises(InputError):
        S.speed_names("nope")
    t = S.measure_here("logme:regression", 200, 16, 3, repeat=1)  # in this process: the subprocess entry point
    from zoorank.metrics.synthetic import make_task

    task = make_task(200, 16, 3, seed=0, n_source_classes=50, n_general=800)
    Y = S.regression_targets(task.features, 3, 0)
    assert Y.shape == (200, 3) and t.score == pytest.approx(M.compute("logme", task.features, Y, regression=True))
    knn = S.measure_here("knn", 200, 16, 3, repeat=1)
    assert 0.0 <= knn.score <= 1.0
