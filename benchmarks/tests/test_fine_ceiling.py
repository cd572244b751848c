"""The headroom analysis of the pipeline's fine stage (benchmarks.fine_ceiling)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.fine_ceiling import block_first, ceiling_rows, markdown
from zoorank import ranking as R
from zoorank.errors import InputError


def _order(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def test_block_first_reorders_only_the_top_k_of_the_base():
    base = np.array([0.9, 0.1, 0.8, 0.5, 0.7])  # base order: 0, 2, 4, 3, 1
    key = np.array([1.0, 9.0, 3.0, 8.0, 2.0])
    assert _order(block_first(base, key, 3)) == [2, 4, 0, 3, 1]
    assert np.array_equal(block_first(base, key, 0), base)
    assert _order(block_first(base, key, 5)) == [1, 3, 2, 4, 0]  # the whole zoo: key's order


def test_block_first_keeps_the_ties_of_the_rest_and_picks_tied_models_in_the_given_order():
    base = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    key = np.array([3.0, 1.0, 2.0, 9.0, 0.0])
    s = block_first(base, key, 2)  # 1, then one of the tied 0, 2, 3: the first in index order
    assert _order(s)[:2] == [0, 1] and s[2] == s[3] == 0.5 and s[4] == 0.1
    s = block_first(base, key, 2, order=[4, 3, 2, 1, 0])  # the same tie, picked in another order
    assert _order(s)[:2] == [3, 1] and s[0] == s[2] == 0.5
    assert _order(block_first(np.array([0.2, 0.9, 0.5]), np.zeros(3), 3)) == [1, 2, 0]  # key ties: by base


@pytest.mark.parametrize("bad", [dict(k=6), dict(k=-1), dict(key=np.ones(4)),
                                 dict(key=np.array([1, 2, np.nan, 4, 5.0])), dict(order=[0, 1, 2, 3, 3])])
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
        assert by[("coarse top 12 in true order", t)] == pytest.approx(1.0)  # the whole zoo in true order
        assert by[("true top 12 first, m order", t)] == pytest.approx(by[("m (whole zoo)", t)])
        assert by[("fine by m @12", t)] == pytest.approx(by[("m (whole zoo)", t)])
    text = markdown(rows, command="cmd")
    assert "| coarse |" in text and "true top 3 first, true order" in text and "Command: `cmd`" in text


def test_oracle_choice_puts_the_true_best_first():
    y = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    c = np.array([5.0, 1.0, 4.0, 2.0, 3.0])  # the coarse ranking misses the best model
    rows = ceiling_rows({"t": c}, {"t": c}, {"t": y}, [2], "m")
    by = {r["row"]: r["weighted_tau"] for r in rows}
    # the true top 2 (models 1, 3) first in true order, then the coarse rest 0, 2, 4
    assert by["true top 2 first, true order"] == pytest.approx(R.weighted_tau(np.array([2.0, 5.0, 1.0, 4.0, 0.0]), y))
    # the same two models ordered by the metric (c: model 1 scores 1.0 < model 3's 2.0), then the coarse rest
    assert by["true top 2 first, m order"] == pytest.approx(R.weighted_tau(np.array([2.0, 4.0, 1.0, 5.0, 0.0]), y))
    # the coarse top 2 (models 0, 2) swapped to true order, then 4, 3, 1
    assert by["coarse top 2 in true order"] == pytest.approx(R.weighted_tau(np.array([4.0, 0.0, 5.0, 2.0, 3.0]), y))


class _Fennec:
    def __init__(self, models, scores):
        self.models_, self._scores = models, scores

    def score(self, task):
        return self._scores


class _Task:
    def __init__(self, models, feats, labels):
        self.models, self._feats, self._labels = models, feats, labels

    def labels(self):
        return self._labels

    def features(self, model):
        return self._feats[model], None

    def proxy_features(self):
        return np.random.default_rng(1).normal(size=(20, 8))

    def task_meta(self):
        return int(self._labels.max()) + 1, self._labels.size

    def card(self):
        return "a task"


@pytest.mark.parametrize("k", [0, 2, 3, 6])
def test_fine_by_metric_is_what_the_pipeline_outputs_with_tied_coarse_scores(k):
    from zoorank import metrics as M
    from zoorank.pipeline import Pipeline

    rng = np.random.default_rng(0)
    models = [f"m{i}" for i in range(6)]
    labels = np.repeat(np.arange(3), 10)
    feats = {m: rng.normal(size=(30, 5)) + labels[:, None] * rng.random() for m in models}
    fennec = np.array([2.0, 5.0, 2.0, 2.0, 1.0, 5.0])  # ties across the budget boundaries
    pipe = Pipeline(models, fennec=_Fennec(models, fennec), budget=k, metrics=["reg_hscore"])
    result = pipe.run(_Task(models, feats, labels))
    metric = np.array([M.compute("reg_hscore", feats[m], labels) for m in models])
    expected = block_first(result.coarse_merged, metric, k)
    truth = rng.random(6)
    assert np.array_equal(np.argsort(-result.scores, kind="stable"), np.argsort(-expected, kind="stable"))
    assert R.weighted_tau(result.scores, truth) == pytest.approx(R.weighted_tau(expected, truth))


def test_a_pool_relative_metric_is_refused():
    from benchmarks.fine_ceiling import collect

    with pytest.raises(InputError, match="pool-relative"):
        collect(None, None, metric="ncti")
