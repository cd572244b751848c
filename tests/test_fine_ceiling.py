"""The headroom analysis of the pipeline's fine stage (zoorank.bench.fine_ceiling)."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import ranking as R
from zoorank.bench.fine_ceiling import block_first, ceiling_rows, markdown
from zoorank.errors import InputError


def _order(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def test_block_first_reorders_only_the_top_k_of_the_base():
    base = np.array([0.9, 0.1, 0.8, 0.5, 0.7])  # base order: 0, 2, 4, 3, 1
    key = np.array([1.0, 9.0, 3.0, 8.0, 2.0])
    assert _order(block_first(base, key, 3)) == [2, 4, 0, 3, 1]
    assert _order(block_first(base, key, 0)) == _order(base)
    assert _order(block_first(base, key, 5)) == [1, 3, 2, 4, 0]  # the whole zoo: key's order


def test_block_first_breaks_key_ties_by_the_base():
    base = np.array([0.2, 0.9, 0.5])
    assert _order(block_first(base, np.zeros(3), 3)) == [1, 2, 0]


@pytest.mark.parametrize("bad", [dict(k=6), dict(k=-1), dict(key=np.ones(4)),
                                 dict(key=np.array([1, 2, np.nan, 4, 5.0]))])
def test_block_first_refuses_bad_input(bad):
    args = dict(base=np.arange(5.0), key=np.arange(5.0), k=2) | bad
    with pytest.raises(InputError):
        block_first(**args)


def test_ceiling_rows_bounds_and_known_values():
    rng = np.random.default_rng(0)
    truth = {f"t{i}": rng.random(12) for i in range(4)}
    coarse = {t: y + rng.normal(0, 0.3, 12) for t, y in truth.items()}
    metric = {t: y + rng.normal(0, 0.2, 12) for t, y in truth.items()}
    rows = ceiling_rows(coarse, metric, truth, [3, 12], "m")
    by = {(r["row"], r["task"]): r["weighted_tau"] for r in rows}
    for t, y in truth.items():
        assert by[("coarse", t)] == pytest.approx(R.weighted_tau(coarse[t], y))
        assert by[("m (whole zoo)", t)] == pytest.approx(R.weighted_tau(metric[t], y))
        assert by[("oracle order @12", t)] == pytest.approx(1.0)  # the whole zoo in true order
        assert by[("oracle choice @12", t)] == pytest.approx(1.0)
        assert by[("fine by m @12", t)] == pytest.approx(by[("m (whole zoo)", t)])
    text = markdown(rows, command="cmd")
    assert "| coarse |" in text and "oracle choice @3" in text and "Command: `cmd`" in text


def test_oracle_choice_puts_the_true_best_first():
    y = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    c = np.array([5.0, 1.0, 4.0, 2.0, 3.0])  # the coarse ranking misses the best model
    rows = ceiling_rows({"t": c}, {"t": c}, {"t": y}, [2], "m")
    by = {r["row"]: r["weighted_tau"] for r in rows}
    # oracle choice @2: models 1, 3 first, then the coarse rest 0, 2, 4
    expected = R.weighted_tau(np.array([2.0, 5.0, 1.0, 4.0, 0.0]), y)
    assert by["oracle choice @2"] == pytest.approx(expected)
    # the same two models ordered by the metric (c: model 1 scores 1.0 < model 3's 2.0), then the coarse rest
    assert by["oracle choice, m order @2"] == pytest.approx(R.weighted_tau(np.array([2.0, 4.0, 1.0, 5.0, 0.0]), y))
    # oracle order @2: the coarse top 2 (models 0, 2) swapped to true order, then 4, 3, 1
    assert by["oracle order @2"] == pytest.approx(R.weighted_tau(np.array([4.0, 0.0, 5.0, 2.0, 3.0]), y))
