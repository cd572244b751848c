"""Cold models placed by their size and architecture (zoorank.methods.placement, Fennec's meta phase) in the belief:
the calibration picks the placement only when it predicts held-out models better than the population, the mixture
enters for_zoo exactly, and it survives save / load and the rank job."""

from pathlib import Path

import numpy as np
import pytest

from zoorank.errors import InputError
from zoorank.methods import posterior as P
from zoorank.methods.belief import BeliefRanker
from zoorank.methods.placement import ModelPlacement, meta_matrix
from zoorank.pipeline.belief_job import BeliefJob, parse_plan

M, T = 10, 14
MODELS = [f"m{i}" for i in range(M)]
PARAMS = np.logspace(5, 8, M)  # 1e5 .. 1e8 parameters
ARCHS = ["cnn" if i % 2 == 0 else "vit" for i in range(M)]


def _metas(params=PARAMS, archs=ARCHS, layers=None):
    return [{"params": float(p), "architecture": a, "layers": None if layers is None else layers[i]}
            for i, (p, a) in enumerate(zip(params, archs, strict=True))]


def _history(informative: bool, seed: int = 0) -> np.ndarray:
    """Accuracies [T, M]: with ``informative``, a model's accuracy grows with its size on every task (plus a task
    level and noise); otherwise each model's place is random, unrelated to its size."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.5, 0.8, size=(T, 1))
    size = np.log10(PARAMS) - np.log10(PARAMS).mean()
    place = 0.05 * size if informative else 0.05 * rng.permutation(size)
    return level + place[None, :] + 0.004 * rng.normal(size=(T, M))


def test_meta_features_standardise_sizes_and_put_other_architectures_at_distance_one():
    F, stats = meta_matrix(_metas())
    assert stats["columns"] == ["params"] and stats["architectures"] == ["cnn", "vit"]
    np.testing.assert_allclose(F[:, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(F[:, 0].std(), 1.0, rtol=1e-12)
    new, _ = meta_matrix([{"params": PARAMS[0], "architecture": "cnn"}, {"params": PARAMS[0], "architecture": "rnn"}],
                         stats=stats)
    np.testing.assert_allclose(new[0], F[0])  # the same description, the same features
    assert np.sum((new[1] - F[0]) ** 2) == pytest.approx(0.5)  # an unseen architecture: half of a mismatch
    assert np.sum((F[1, 1:] - F[0, 1:]) ** 2) == pytest.approx(1.0)  # cnn vs vit: exactly 1
    F2, stats2 = meta_matrix(_metas(layers=list(range(10, 10 + M))))
    assert stats2["columns"] == ["params", "layers"] and F2.shape == (M, 4)
    with pytest.raises(InputError, match="parameter count"):
        meta_matrix([{"params": None}, {"params": 10}])


def test_calibration_places_by_size_when_size_predicts_and_keeps_the_population_when_it_does_not():
    good = ModelPlacement().fit(_metas(), _history(True))
    assert good.informative and good.errors_[good.bandwidth_] < good.errors_[None]
    assert good.variance_ == pytest.approx(good.errors_[good.bandwidth_])
    w = good.weights([{"params": PARAMS[-1] * 1.1, "architecture": "vit"}])[0]
    assert w.sum() == pytest.approx(1.0) and int(np.argmax(w)) == M - 1  # the nearest in size weighs most
    bad = ModelPlacement().fit(_metas(), _history(False))
    assert not bad.informative and bad.bandwidth_ is None
    # leave-one-model-out by hand for the population: each model's column against the mean of the others
    A = _history(False)
    err = np.mean([(A[:, j] - np.delete(A, j, axis=1).mean(1)) ** 2 for j in range(M)])
    assert bad.errors_[None] == pytest.approx(err, rel=1e-12)
    with pytest.raises(InputError, match="None"):
        ModelPlacement(bandwidths=(0.5,))
    with pytest.raises(InputError, match="at least 3 models"):
        ModelPlacement().fit(_metas()[:2], A[:, :2])


def test_a_placed_cold_model_is_the_mixture_of_the_fitted_models_plus_its_residual():
    prior = P.fit_prior(_history(True), MODELS)
    w = np.zeros(M)
    w[[8, 9]] = 0.5
    zoo = ["m0", "big_new", "m9", "m8"]
    belief, cold = P.for_zoo(prior, zoo, placement={"big_new": (w, 0.0004)})
    assert cold == [1] and any("size and architecture" in n for n in belief.notes)
    mu, S = prior.mean, prior.cov
    assert belief.mean[1] == pytest.approx(w @ mu, abs=1e-15)
    assert belief.cov[1, 1] == pytest.approx(w @ S @ w + 0.0004, rel=1e-12)
    assert belief.cov[1, 2] == pytest.approx((S @ w)[9], rel=1e-12)
    assert np.linalg.eigvalsh(belief.cov).min() > -1e-15
    # the uniform mixture with the population's variance is exactly the population draw
    a = np.full(M, 1 / M)
    v_r = np.var(mu) + np.mean(np.diag(S)) - a @ S @ a
    same, _ = P.for_zoo(prior, zoo, placement={"big_new": (a, v_r)})
    pop, _ = P.for_zoo(prior, zoo)
    np.testing.assert_allclose(same.mean, pop.mean, atol=1e-15)
    np.testing.assert_allclose(same.cov, pop.cov, atol=1e-15)
    with pytest.raises(InputError, match="summing to 1"):
        P.for_zoo(prior, zoo, placement={"big_new": (np.full(M, 0.5), 0.001)})


def test_the_belief_ranker_places_cold_models_through_the_rank_job_and_keeps_it_on_disk(tmp_path: Path):
    A = _history(True)
    ranker = BeliefRanker().fit(MODELS, A, model_meta=_metas())
    assert ranker.placement_ is not None and ranker.placement_.informative
    loaded = BeliefRanker.load(ranker.save(tmp_path / "belief.npz"))
    new = {"tiny_new": {"params": PARAMS[0], "architecture": "cnn"}, "huge_new": {"params": PARAMS[-1],
                                                                                  "architecture": "vit"}}
    placed = loaded.placement(new)
    np.testing.assert_allclose(placed["huge_new"][0], ranker.placement(new)["huge_new"][0])

    class Source:  # what the job asks of a task source: labels, and what is known of a model
        def labels(self):
            return None

        def model_meta(self, model):
            return new[model]

    zoo = [*MODELS, *new]
    result = BeliefJob(zoo, loaded, plan=parse_plan("0", len(zoo))).run(Source(), use_labels=False)
    order = [zoo[i] for i in np.argsort(-np.asarray(result.scores), kind="stable")]
    assert order.index("huge_new") < 3 and order.index("tiny_new") > len(zoo) - 4  # placed by size, no pass
    assert any("size and architecture" in n for n in result.notes)
    flat = BeliefJob(zoo, loaded, plan=parse_plan("0", len(zoo)), place_cold=False).run(Source(), use_labels=False)
    assert flat.scores[zoo.index("huge_new")] == pytest.approx(flat.scores[zoo.index("tiny_new")])
    # a ranker fitted without model meta features (or where they do not predict) keeps the population draws
    assert BeliefRanker().fit(MODELS, A).placement(new) == {}
    assert BeliefRanker().fit(MODELS, _history(False), model_meta=_metas()).placement(new) == {}
