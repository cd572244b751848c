import pytest

from zoorank.bench import metric_speed as S


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
    S.write_markdown_section(p, "x", "new")
    assert p.read_text() == "# B\n\nbefore\n<!-- x:start -->\nnew\n<!-- x:end -->\nafter\n"
    S.write_markdown_section(p, "y", "other")
    assert p.read_text().endswith("<!-- y:start -->\nother\n<!-- y:end -->\n")
