"""The belief ranker (zoorank.methods.belief) and the default rank job (zoorank.pipeline.belief_job)."""

from pathlib import Path

import numpy as np
import pytest

from zoorank.data import fraction_rows
from zoorank.errors import InputError
from zoorank.methods.belief import BeliefRanker, probe_kind
from zoorank.methods.posterior import posterior
from zoorank.pipeline.belief_job import DEFAULT_PLAN, BeliefJob, Plan, parse_plan
from zoorank.ranking import weighted_tau

M = 8
MODELS = [f"m{i}" for i in range(M)]


def _clustered(T=12, seed=0):
    """Two kinds of task with opposite model orders; the descriptor says which kind a task is."""
    rng = np.random.default_rng(seed)
    a = np.linspace(0.5, 0.9, M)
    kinds = np.arange(T) % 2
    acc = np.where(kinds[:, None] == 0, a, a[::-1]) + 0.01 * rng.normal(size=(T, M))
    desc = np.stack([kinds, 1 - kinds], 1) + 0.05 * rng.normal(size=(T, 2))
    return acc, desc


def test_probe_kind_and_its_parse():
    assert probe_kind("reg_hscore", 1.0) == "metric:reg_hscore"
    assert probe_kind("reg_hscore", 0.25) == "metric:reg_hscore@probe25"
    assert probe_kind("etran", 0.125) == "metric:etran@probe12.5"
    r = BeliefRanker()
    assert r._fraction("metric:etran@probe12.5") == 0.125 and r._fraction("metric:reg_hscore") == 1.0
    assert r._fraction("metric:logme@probe25") is None and r._fraction("metric:parc@probex") is None
    with pytest.raises(InputError, match="fraction"):
        probe_kind("parc", 0.0)


def test_without_descriptors_the_prior_is_popularity():
    acc, _ = _clustered()
    r = BeliefRanker().fit(MODELS, acc)
    assert r.bandwidth_ is None
    np.testing.assert_allclose(r.prior().mean, acc.mean(axis=0), atol=1e-12)


def test_similarity_moves_the_prior_when_history_shows_it_predicts():
    acc, desc = _clustered()
    r = BeliefRanker().fit(MODELS, acc, descriptors=desc)
    assert r.bandwidth_ is not None
    # a new task of the first kind: the prior ranks as the first kind's tasks do, popularity cannot
    assert weighted_tau(r.prior(np.array([0.0, 1.0])).mean, acc[0]) > 0.9
    assert abs(weighted_tau(acc.mean(axis=0), acc[0])) < 0.5


def test_uninformative_descriptors_keep_the_population():
    acc, _ = _clustered()
    r = BeliefRanker().fit(MODELS, acc, descriptors=np.ones((len(acc), 3)))
    assert r.bandwidth_ is None  # every bandwidth ties: the population wins ties
    np.testing.assert_allclose(r.prior(np.ones(3)).mean, acc.mean(axis=0), atol=1e-12)
    with pytest.raises(InputError, match="descriptor has 2 values"):
        r.weights(np.ones(2))


def _scores_like(acc, noise, seed):
    rng = np.random.default_rng(seed)
    return acc + noise * rng.normal(size=acc.shape)


def test_links_are_calibrated_per_fraction_and_an_observation_sharpens_the_ranking():
    rng = np.random.default_rng(4)
    acc = rng.uniform(0.3, 0.9, (15, M))
    scores = {probe_kind(m, f): _scores_like(acc, n, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))
              for f, n in ((1.0, 0.05), (0.25, 0.2))}
    r = BeliefRanker().fit(MODELS, acc, scores=scores)
    assert set(r.links_) == {0.25, 1.0}
    assert r.links_[1.0].rho > r.links_[0.25].rho > 0.3
    assert all(b > 0 for b in r.links_[1.0].beta)
    target = rng.uniform(0.3, 0.9, M)
    prior = r.prior()
    ob = r.observe(prior, 1.0, range(M), {m: target + 0.02 * rng.normal(size=M) for m in r.metrics})
    post = posterior(prior, [ob])
    assert weighted_tau(post.mean, target) > weighted_tau(prior.mean, target) + 0.3
    assert np.all(np.diag(post.cov) < np.diag(prior.cov))
    assert r.observe(prior, 0.5, range(M), {}) is None  # no link for that fraction


def test_save_and_load_give_the_same_beliefs(tmp_path):
    acc, desc = _clustered()
    scores = {probe_kind(m, 0.25): _scores_like(acc, 0.05, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))}
    r = BeliefRanker().fit(MODELS, acc, descriptors=desc, scores=scores)
    back = BeliefRanker.load(r.save(tmp_path / "belief.npz"))
    x = np.array([0.2, 0.9])
    np.testing.assert_array_equal(back.prior(x).mean, r.prior(x).mean)
    np.testing.assert_array_equal(back.prior(x).cov, r.prior(x).cov)
    assert back.links_ == r.links_ and back.bandwidth_ == r.bandwidth_
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(InputError, match="not a saved belief ranker"):
        BeliefRanker.load(tmp_path / "bad.npz")


def test_fraction_rows_are_stratified_nested_and_deterministic():
    y = np.repeat(np.arange(4), [40, 20, 8, 2])
    quarter = fraction_rows(y, 0.25)
    assert quarter.size == 18 and np.array_equal(quarter, np.sort(quarter))
    assert np.bincount(y[quarter]).min() >= 2
    assert set(fraction_rows(y, 0.125)) <= set(quarter) <= set(fraction_rows(y, 0.5))
    np.testing.assert_array_equal(fraction_rows(y, 0.25), quarter)
    np.testing.assert_array_equal(fraction_rows(y, 1.0), np.arange(y.size))
    with pytest.raises(InputError, match="fraction"):
        fraction_rows(y, 1.5)


def test_parse_plan_forms():
    assert parse_plan(None, 10) == DEFAULT_PLAN == parse_plan("auto", 10)
    assert parse_plan("5", 10) == Plan(1.0, 5) and parse_plan(0, 10) == Plan(1.0, 0)
    assert parse_plan("all", 10) == Plan(1.0, None)
    assert parse_plan("4000img", 10, probe_size=400) == Plan(1.0, None)
    assert parse_plan("1000img", 10, probe_size=400) == Plan(0.25, None)
    assert parse_plan("500 images", 10, probe_size=400) == Plan(0.25, 5)
    assert parse_plan("30s", 10) == Plan(0.25, None, 30.0, chance=0.05) == parse_plan("30 seconds", 10)
    for bad in ("abc", "-1", "0s", "12x"):
        with pytest.raises(InputError, match="budget"):
            parse_plan(bad, 10)


class _Task:
    """A task whose model i has features that separate the classes with strength quality[i]."""

    def __init__(self, quality, n=120, classes=4, seed=0):
        rng = np.random.default_rng(seed)
        self.y = np.arange(n) % classes
        self.models = MODELS
        self.quality = quality
        self.noise = rng.normal(size=(M, n, 6))
        self.passes = []

    def labels(self):
        return self.y

    def features(self, model, rows=None):
        i = MODELS.index(model)
        onehot = np.eye(6)[self.y]
        f = self.quality[i] * onehot + self.noise[i]
        self.passes.append((model, None if rows is None else len(rows)))
        return (f, None) if rows is None else (f[rows], None)

    def proxy_features(self):
        raise AssertionError("no descriptor was fitted: the job must not ask for the proxy")


def test_the_default_job_runs_every_model_on_a_quarter_and_follows_the_evidence():
    rng = np.random.default_rng(2)
    acc = rng.uniform(0.4, 0.9, (10, M))
    scores = {probe_kind(m, 0.25): _scores_like(acc, 0.1, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))}
    r = BeliefRanker().fit(MODELS, acc, scores=scores)
    quality = np.linspace(0.0, 3.0, M)[::-1]
    task = _Task(quality)
    result = BeliefJob(MODELS, r).run(task)
    assert sorted(task.passes) == sorted((m, 30) for m in MODELS)
    assert result.image_passes == 30 * M and result.forward_passes == M
    assert weighted_tau(result.scores, quality) > weighted_tau(r.prior().mean, quality)
    assert np.all(result.low < result.scores) and np.all(result.scores < result.high)
    row = result.rows()[0]
    assert {"low", "high", "probe_images"} <= set(row) and row["probe_images"] == 30
    coarse = BeliefJob(MODELS, r, plan=Plan(1.0, 0)).run(_Task(quality))
    np.testing.assert_array_equal(coarse.scores, r.prior().mean)
    assert coarse.image_passes == 0


def test_the_report_shows_each_models_interval_and_probe_images(tmp_path):
    from zoorank.report.html import _fmt, write_html

    rng = np.random.default_rng(3)
    acc = rng.uniform(0.4, 0.9, (10, M))
    scores = {probe_kind(m, 0.25): _scores_like(acc, 0.1, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))}
    result = BeliefJob(MODELS, BeliefRanker().fit(MODELS, acc, scores=scores)).run(_Task(np.linspace(3, 0, M)))
    page = Path(write_html(result, tmp_path / "r.html")).read_text()
    assert "80% interval" in page and "Probe images" in page and "25% of the probe set" in page
    best = result.order[0]
    assert f"{_fmt(result.low[best])} – {_fmt(result.high[best])}" in page


def test_a_budget_of_seconds_stops_the_probe_stage_and_says_so():
    import time

    rng = np.random.default_rng(2)
    acc = rng.uniform(0.4, 0.9, (10, M))
    scores = {probe_kind(m, 0.25): _scores_like(acc, 0.1, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))}
    r = BeliefRanker().fit(MODELS, acc, scores=scores)

    class Slow(_Task):
        def features(self, model, rows=None):
            time.sleep(0.1)
            return super().features(model, rows)

    task = Slow(np.linspace(3, 0, M))
    result = BeliefJob(MODELS, r, plan=parse_plan("0.45s", M)).run(task)
    assert 3 <= len(task.passes) < M and result.forward_passes == len(task.passes)
    assert any("stopped the probe stage" in n for n in result.notes)
    assert set(result.probe_images) == set(result.top) and len(result.top) == len(task.passes)


def test_a_chance_plan_runs_the_cold_models_and_those_that_may_reach_the_top():
    from zoorank.methods.posterior import GaussianBelief, top_chance

    mean = np.array([0.9, 0.5, 0.85, 0.2, 0.8, 0.3])
    prior = GaussianBelief(tuple("abcdef"), mean, np.diag([0.002] * 6))
    chance = top_chance(prior, 2)
    plan = Plan(0.25, chance=0.05, top=2)
    picked = plan.pick(prior, cold=[5])
    assert picked[0] == 5  # cold first
    assert set(picked[1:]) == {i for i in range(5) if chance[i] >= 0.05} == {0, 2, 4}
    assert picked[1:] == [0, 2, 4]  # the prior's order
    assert Plan(0.25).pick(prior, []) == [0, 2, 4, 1, 5, 3]
    assert len(Plan(0.25, chance=0.99, top=1).pick(prior, [])) == 3  # never fewer than 3
    assert Plan(0.25, 2, chance=0.05, top=2).pick(prior, []) == [0, 2]
    assert "chance >= 5% of the top 2" in plan.describe(6)
    for bad in (dict(fraction=0.0), dict(fraction=0.5, chance=1.0), dict(fraction=0.5, top=0)):
        with pytest.raises(InputError):
            Plan(**bad)


def test_known_accuracies_are_not_run_keep_their_value_and_move_the_models_that_covary():
    rng = np.random.default_rng(4)
    fam = np.arange(M) % 2
    swing = rng.normal(size=(12, 1)) * 0.1
    acc = 0.6 + np.where(fam == 0, swing, -swing) + 0.01 * rng.normal(size=(12, M))
    scores = {probe_kind(m, 0.25): _scores_like(acc, 0.1, i) for i, m in enumerate(("reg_hscore", "etran", "parc"))}
    r = BeliefRanker(shrinkage=0.0).fit(MODELS, acc, scores=scores)
    quality = np.linspace(0.0, 3.0, M)[::-1]
    task = _Task(quality)
    told = {MODELS[0]: 0.75, MODELS[1]: 0.45}  # family 0 up, family 1 down on this task
    result = BeliefJob(MODELS, r, plan=Plan(0.25, 0)).run(task, known=told)  # the prior and the known only
    assert task.passes == [] and result.known == {0: 0.75, 1: 0.45}
    assert abs(result.scores[0] - 0.75) < 0.01 and abs(result.scores[1] - 0.45) < 0.01
    prior = r.prior().mean
    up, down = fam[2:] == 0, fam[2:] == 1
    assert np.all((result.scores[2:] - prior[2:])[up] > 0) and np.all((result.scores[2:] - prior[2:])[down] < 0)
    run = BeliefJob(MODELS, r).run(_Task(quality), known=told)  # every other model runs, the known do not
    assert set(run.probe_images) == set(range(2, M))
    rows = {row["model"]: row for row in run.rows()}
    assert rows[MODELS[0]]["known"] == 0.75 and rows[MODELS[2]]["known"] is None
    assert run.to_dict()["known_accuracies"] == told
    assert any("2 known accuracies" in n for n in run.notes)
    for bad, what in (({"nope": 0.5}, "not a model of the zoo"), ({MODELS[0]: 87}, "0.87, not 87"),
                      ({MODELS[0]: "high"}, "not a number")):
        with pytest.raises(InputError, match=what):
            BeliefJob(MODELS, r).run(_Task(quality), known=bad)


def test_known_accuracies_use_the_shrinkage_tuned_for_revealed_accuracies_and_it_survives_save(tmp_path):
    from zoorank.methods.posterior import tune_shrinkage

    rng = np.random.default_rng(4)
    fam = np.arange(M) % 2
    swing = rng.normal(size=(12, 1)) * 0.1
    acc = 0.6 + np.where(fam == 0, swing, -swing) + 0.01 * rng.normal(size=(12, M))
    r = BeliefRanker().fit(MODELS, acc)
    assert r.known_shrinkage_ == tune_shrinkage(acc, MODELS, k=3, draws=5, max_tasks=10, rank=r.rank_)[0]
    assert r.known_shrinkage_ != 1.0  # two families that swing against each other: history shows revealing pays
    same = BeliefRanker(shrinkage=r.known_shrinkage_).fit(MODELS, acc)
    np.testing.assert_allclose(r.prior(known=True).cov, same.prior().cov)
    np.testing.assert_allclose(r.prior(known=True).mean, r.prior().mean)  # the shrinkage moves no mean
    back = BeliefRanker.load(r.save(tmp_path / "b.npz"))
    assert back.known_shrinkage_ == r.known_shrinkage_
    # at the diagonal (what history that shows no gain gives, and rankers saved before it was tuned), known
    # accuracies leave the other models at the prior
    back.known_shrinkage_ = 1.0
    res = BeliefJob(MODELS, back, plan=Plan(0.25, 0)).run(_Task(np.zeros(M)), known={MODELS[0]: 0.99})
    np.testing.assert_allclose(res.scores[1:], back.prior().mean[1:])
    assert abs(res.scores[0] - 0.99) < 0.01
