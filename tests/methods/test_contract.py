"""The one contract of the learned rankers (zoorank.methods.base), checked on Fennec, Model Spider and MetaRank alike:
hyper-parameters from ``__init__``, ``fit`` -> self, learned attributes ending in ``_``, ``score`` of a
TaskEvidence, exact save/load, clear errors; and the committed demo rankers still load and score."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zoorank.errors import InputError
from zoorank.methods import Ranker, TaskEvidence, make_ranker
from zoorank.methods.fennec.meta import task_features
from zoorank.methods.spider import TrainingTask

from metarank_cases import planted_records

torch.set_num_threads(1)

DEMO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoobench" / "demo"


@dataclass
class Case:
    """A ranker on a tiny synthetic history: its name, hyper-parameters, ``fit`` arguments, the evidence of a new
    task and the one evidence field it cannot do without."""

    name: str
    params: dict[str, Any]
    args: tuple
    kwargs: dict[str, Any]
    evidence: TaskEvidence
    needs: str


def _fennec() -> Case:
    rng = np.random.default_rng(0)
    n_models, n_tasks = 6, 5
    M, D = rng.random((n_models, 2)), rng.random((n_tasks, 2))
    history = {"scores": M @ D.T, "proxy": np.hstack([D, rng.normal(0, 0.01, (n_tasks, 2))]),
               "model_features": rng.random((n_models, 2)),
               "task_features": task_features(rng.integers(2, 20, n_tasks), rng.integers(50, 500, n_tasks)),
               "models": [f"m{i}" for i in range(n_models)], "tasks": [f"t{j}" for j in range(n_tasks)]}
    return Case("fennec", {"k": 2, "n_estimators": 20}, (), history,
                TaskEvidence(proxy=rng.random(4), n_classes=7, n_samples=140), "proxy")


def _spider() -> Case:
    rng = np.random.default_rng(1)
    models = [f"m{i}" for i in range(5)]
    tasks = []
    for j in range(12):
        c = int(rng.integers(2, 5))
        specific = {m: rng.normal(size=(c, 3 + m)) for m in range(2) if rng.random() < 0.7}
        tasks.append(TrainingTask(f"t{j}", rng.normal(size=(c, 6)), rng.random(5), specific))
    return Case("spider", {"dim": 16, "heads": 2, "ffn": 16, "epochs": 3, "batch_size": 4}, (tasks,),
                {"models": models}, TaskEvidence(token=rng.normal(size=(3, 6))), "token")


def _metarank() -> Case:
    return Case("metarank", {"encoder": "hashing", "epochs": 20, "n_ensemble": 2}, (planted_records(8),), {},
                TaskEvidence(card="Dataset new. Images: photographs of textures. Classes: 10 classes."), "card")


CASES = {"fennec": _fennec, "spider": _spider, "metarank": _metarank}


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> Case:
    return CASES[request.param]()


@pytest.fixture(scope="module")
def fitted(case) -> Ranker:
    ranker = make_ranker(case.name, **case.params)
    assert ranker.fit(*case.args, **case.kwargs) is ranker
    return ranker


def _public(ranker: Ranker) -> set[str]:
    return {k for k in vars(ranker) if not k.startswith("_")}


def test_hyper_parameters_are_the_init_arguments_and_round_trip(case, fitted):
    params = fitted.get_params()
    assert {k: params[k] for k in case.params} == case.params
    again = make_ranker(case.name, **params)
    assert type(again) is type(fitted) and again.get_params() == params and not again.is_fitted
    assert repr(again) == repr(fitted) and all(f"{k}=" in repr(fitted) for k in case.params)
    assert repr(make_ranker(case.name)) == f"{type(fitted).__name__}()"
    first = next(iter(case.params))
    assert again.set_params(**{first: case.params[first]}) is again
    with pytest.raises(InputError, match="unknown parameter"):
        again.set_params(no_such_parameter=1)
    with pytest.raises(InputError):
        again.set_params(**({"alpha": 2.0} if case.name == "fennec" else {"loss": "hinge"}))
    assert again.get_params() == params  # a refused change leaves the parameters as they were


def test_learned_attributes_end_in_an_underscore_and_exist_only_after_fit(case, fitted):
    fresh = make_ranker(case.name, **case.params)
    assert not fresh.is_fitted and not any(k.endswith("_") for k in _public(fresh))
    assert not hasattr(fresh, "models_")
    with pytest.raises(InputError, match=r"call fit \(or load\) first"):
        fresh.models_  # noqa: B018
    assert fitted.is_fitted and all(hasattr(fitted, k) and k.endswith("_") for k in fitted._learned)
    assert all(k in fitted.get_params() or k.endswith("_") for k in _public(fitted))
    assert len(fitted.models_) >= 2


def test_score_is_one_finite_float_per_model(case, fitted):
    s = fitted.score(case.evidence)
    assert isinstance(s, np.ndarray) and s.dtype == np.float64
    assert s.shape == (len(fitted.models_),) and np.isfinite(s).all()


def test_save_then_load_gives_the_same_scores_exactly(case, fitted, tmp_path):
    back = type(fitted).load(fitted.save(tmp_path / case.name))
    assert back.is_fitted and back.get_params() == fitted.get_params()
    assert list(back.models_) == list(fitted.models_)
    assert np.array_equal(back.score(case.evidence), fitted.score(case.evidence))


def test_unfitted_score_and_missing_evidence_are_clear_input_errors(case, fitted):
    with pytest.raises(InputError, match=r"call fit \(or load\) first"):
        make_ranker(case.name, **case.params).score(case.evidence)
    with pytest.raises(InputError, match=case.needs):
        fitted.score(replace(case.evidence, **{case.needs: None}))
    with pytest.raises(InputError, match=case.needs):
        fitted.score(TaskEvidence())


def test_fennec_reads_only_the_evidence_of_the_phases_it_uses():
    case = _fennec()
    transfer = make_ranker("fennec", use_meta=False, **case.params).fit(**case.kwargs)
    assert transfer.score(TaskEvidence(proxy=case.evidence.proxy)).shape == (6,)
    meta = make_ranker("fennec", use_transfer=False, **case.params).fit(**case.kwargs)
    with pytest.raises(InputError, match="n_classes"):
        meta.score(TaskEvidence(proxy=case.evidence.proxy))


def test_make_ranker_knows_the_three_rankers():
    from zoorank.methods import Fennec, MetaRank, ModelSpider

    assert [type(make_ranker(n)) for n in ("fennec", "spider", "metarank")] == [Fennec, ModelSpider, MetaRank]
    with pytest.raises(InputError, match="unknown ranker"):
        make_ranker("lasso")


def test_the_committed_demo_rankers_load_and_score():
    from zoorank.pipeline.learn import Rankers

    rankers = Rankers.load(DEMO)
    fennec, spider, metarank = rankers.fennec, rankers.spider, rankers.metarank
    assert fennec.models_ == rankers.models and spider.models_ == rankers.models
    rng = np.random.default_rng(0)
    evidence = TaskEvidence(proxy=rng.normal(size=fennec.train_["proxy"].shape[1]), n_classes=22, n_samples=462,
                            token=rng.normal(size=(4, spider.token_mean_.shape[0])),
                            card="Printed Hebrew letters in 8 typefaces. 22 classes, 660 greyscale images.")
    for part in (fennec, spider, metarank):
        s = part.score(evidence)
        assert s.shape == (len(part.models_),) and np.isfinite(s).all()
    assert metarank.models_ == metarank.metrics
