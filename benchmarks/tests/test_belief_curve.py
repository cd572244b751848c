"""benchmarks.belief_curve: the table of the learning curve and the interval coverage."""

import math

import pytest

from benchmarks.belief_curve import markdown


def test_markdown_gives_means_coverage_and_the_rise():
    rows = [{"n_tasks": n, "target": t, "method": m, "weighted_tau": tau, "top1_regret": 0.01 * n,
             "coverage": math.nan if m == "baseline:popularity" else cov}
            for n, tau, cov in ((2, 0.5, 0.6), (18, 0.7, 0.8)) for t in ("a", "b")
            for m in ("baseline:popularity", "rank:default")]
    text = markdown(rows, command="cmd")
    assert "| 2 | 0.500 / 2.0 | 0.500 / 2.0 / 60 % |" in text
    assert "| 18 | 0.700 / 18.0 | 0.700 / 18.0 / 80 % |" in text
    assert "rank:default +0.200" in text and "over 2 targets" in text
    from types import SimpleNamespace

    from benchmarks.belief_curve import belief_curve
    from zoorank.errors import InputError

    with pytest.raises(InputError, match="steps must be between 2 and 2"):
        belief_curve(SimpleNamespace(tasks=["a", "b", "c"]), None, steps=[5], kb_dir=".")
