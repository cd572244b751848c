"""An open zoo on ZooBench: the rank job (zoorank rank's default, :class:`zoorank.pipeline.belief_job.BeliefJob`)
with the committed demo rankers, fitted on the full 37-model zoo, ranks that zoo with 3 of its models removed and
3 random-init timm models added; the new models are cold, run first, and are marked."""

from __future__ import annotations

import numpy as np

from zoorank import evaluation as H
from zoorank import paths
from zoorank.data import from_arrays
from zoorank.datasets.zoobench.provider import ZooBenchProvider
from zoorank.evaluation import TaskContext
from zoorank.evaluation.adapters.pipeline import ContextTask
from zoorank.pipeline.belief_job import BeliefJob, parse_plan
from zoorank.pipeline.dataset_task import DatasetTask
from zoorank.pipeline.learn import Rankers
from zoorank.zoo import ModelSpec

NEW = [ModelSpec(name=f"random-{n}", source="timm", ref=n, pretrained=False, input_size=32, seed=3 + i)
       for i, n in enumerate(("resnet10t", "mobilenetv3_small_050", "ghostnet_050"))]


class OpenZooTask(ContextTask):
    """ZooBench's models through the harness context; the others through a :class:`DatasetTask` over the same
    probe images and labels (rows index the probe alike)."""

    def __init__(self, context: TaskContext, models, specs, images):
        super().__init__(context, models)
        labels = self.labels()
        self.extra = DatasetTask(specs, from_arrays(images, labels, class_names=[str(c) for c in
                                                                                   range(int(labels.max()) + 1)]))

    def model_meta(self, model: str):
        return self.extra.model_meta(model) if model in self.extra.specs else super().model_meta(model)

    def features(self, model: str, rows=None):
        if model in self.extra.specs:
            return self.extra.features(model, rows)
        return super().features(model, rows)


def test_an_open_zoo_of_zoobench_is_ranked_with_the_rankers_of_the_full_zoo(tmp_path, monkeypatch):
    from zoorank import demo as D
    from zoorank.datasets.zoobench import tasks as T

    monkeypatch.setenv("ZOORANK_CACHE", str(tmp_path / "cache"))
    root = paths.zoobench_dir()
    rankers = Rankers.load(D.demo_dir(root))
    assert rankers.belief is not None and len(rankers.models) == 37
    bench = H.load_benchmark(root)
    target = rankers.info["held_out"]
    provider = ZooBenchProvider(root)
    dropped = rankers.models[:3]
    zoo = [m for m in rankers.models if m not in dropped] + [s.name for s in NEW]
    images = T.load(target).images[provider.probe_indices(target)]
    source = OpenZooTask(TaskContext(target, bench, provider), zoo, NEW, images)
    result = BeliefJob(zoo, rankers.belief, plan=parse_plan("5", len(zoo))).run(source)
    assert result.models == zoo and not set(dropped) & set(result.models)
    assert [result.models[i] for i in result.cold] == [s.name for s in NEW]
    ran = {result.models[i] for i in result.top}
    assert len(ran) == 5 and {s.name for s in NEW} <= ran  # the cold models run first, then the prior's best
    assert any("have no history" in n for n in result.notes)
    rows = result.to_dict()
    assert rows["cold_models"] == [s.name for s in NEW]
    # the known models keep a ranking that agrees with the truth; the random-init ones land below the best
    truth = bench.truth(target)
    known = [i for i, m in enumerate(zoo) if m in bench.models]
    t = np.array([truth[bench.models.index(zoo[i])] for i in known])
    from zoorank import ranking as R

    assert R.weighted_tau(np.asarray(result.scores)[known], t) > 0.5
    best = max(result.scores[i] for i in known)
    assert all(result.scores[i] < best for i in result.cold)
