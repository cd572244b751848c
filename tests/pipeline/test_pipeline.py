"""The end-to-end pipeline: stage logic against hand-made rankers, costs, and the harness method."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import metrics as M
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.pipeline import Pipeline, normalised_rank, rank_merge

from pipeline_cases import SyntheticTask

MODELS = [f"m{i}" for i in range(8)]
QUALITY = np.array([0.1, 0.9, 0.3, 0.8, 0.5, 0.2, 0.7, 0.4])  # how separable each model's features are


class FixedRanker:
    """A fitted coarse ranker whose scores are given."""

    def __init__(self, scores, models=MODELS):
        self.scores = np.asarray(scores, dtype=float)
        self.models_ = list(models)
        self.calls = 0

    def score(self, task):
        self.calls += 1
        return self.scores.copy()


def Task(labelled=True):
    return SyntheticTask(MODELS, QUALITY, labelled=labelled)


class FennecLike(FixedRanker):
    def score(self, task):
        assert task.proxy.ndim == 1  # the summarised proxy
        assert task.n_classes == 4 and task.n_samples > 0  # the task meta features
        return super().score(task)


def test_normalised_rank_and_rank_merge_closed_forms():
    assert normalised_rank(np.array([3.0, 1.0, 2.0])) == pytest.approx([1.0, 1 / 3, 2 / 3])
    assert normalised_rank(np.array([1.0, 1.0])) == pytest.approx([0.75, 0.75])
    a, b = np.array([1.0, 2.0, 3.0]), np.array([30.0, 10.0, 20.0])
    assert rank_merge({"a": a, "b": b}) == pytest.approx([2 / 3, 1 / 2, 5 / 6])
    assert rank_merge({"a": a, "b": b}, {"a": 3.0, "b": 1.0}) == pytest.approx([(1 + 1) / 4, (2 / 3 * 3 + 1 / 3) / 4,
                                                                               (3 + 2 / 3) / 4])
    with pytest.raises(InputError, match="no score vectors"):
        rank_merge({})


def test_budget_zero_is_the_coarse_ranking_without_forward_passes():
    coarse = np.array([8, 1, 7, 2, 6, 3, 5, 4], dtype=float)
    task = Task()
    res = Pipeline(MODELS, fennec=FennecLike(coarse), budget=0).run(task)
    assert task.passes == [] and res.forward_passes == 0
    assert res.ranking == [MODELS[i] for i in np.argsort(-coarse)]
    assert res.metric is None and res.stages[0].encoder_passes == 1


def test_top_k_are_the_only_forward_passes_and_come_first_in_metric_order():
    coarse = np.array([8, 1, 7, 2, 6, 3, 5, 4], dtype=float)  # top 3 of the coarse stage: m0, m2, m4
    task = Task()
    res = Pipeline(MODELS, fennec=FennecLike(coarse), budget=3, metrics=["logme"]).run(task)
    assert sorted(task.passes) == ["m0", "m2", "m4"] and res.forward_passes == 3
    logme = {i: M.compute("logme", task.features(MODELS[i])[0], task.y) for i in (0, 2, 4)}
    assert res.fine["metric"] == pytest.approx(logme)
    top3 = sorted((0, 2, 4), key=lambda i: -logme[i])
    assert res.order[:3] == top3  # re-ordered by the metric (m4 is the most separable of the three)
    assert res.order[3:] == [6, 7, 5, 3, 1]  # the rest keep their coarse order
    assert res.metric == "logme" and [s.name for s in res.stages] == ["coarse", "metric choice", "fine", "merge"]
    assert res.stages[2].forward_passes == 3 and res.seconds >= res.stages[2].seconds > 0


def test_budget_all_scores_the_whole_zoo_with_the_metric():
    task = Task()
    res = Pipeline(MODELS, fennec=FennecLike(np.zeros(8)), budget="all", metrics=["logme"]).run(task)
    assert res.forward_passes == len(MODELS)
    logme = M.score_zoo("logme", [task.features(m)[0] for m in MODELS], None, task.y)
    assert R.weighted_tau(res.scores, logme) == pytest.approx(1.0)


def test_coarse_rankers_are_merged_by_rank():
    f = FennecLike(np.arange(8, dtype=float))
    s = FixedRanker(-np.arange(8, dtype=float) + np.array([0, 0, 0, 0, 0, 0, 0, 10.0]))

    class SpiderLike(FixedRanker):
        specific_trained_ = frozenset()

        def score(self, task):
            assert task.token.shape == (4, 5)  # class centres of the encoder features
            assert task.proxy is not None  # the evidence the coarse stage gathered for Fennec too
            return super().score(task)

    spider = SpiderLike(s.scores)
    res = Pipeline(MODELS, fennec=f, spider=spider, budget=0).run(Task())
    assert res.coarse_merged == pytest.approx(rank_merge({"fennec": f.scores, "spider": s.scores}))
    assert res.ranking[0] == "m7"  # first for Fennec and (thanks to the +10) for Spider


def test_metarank_order_is_followed_and_unusable_metrics_are_passed_over():
    class MetaRankLike:
        metrics = ("leep", "sfda", "logme")

        def __init__(self):
            self.seen = None

        def rank_metrics(self, card, candidates):
            self.seen = (card, list(candidates))

            class Ranking:
                reason = "nearest: synthetic"

                def names(self):
                    return ["leep", "sfda", "logme"]

            return Ranking()

    mr = MetaRankLike()
    res = Pipeline(MODELS, fennec=FennecLike(np.arange(8.0)), metarank=mr, budget=4,
                   metrics=["logme", "sfda", "leep"]).run(Task())
    assert mr.seen == ("four classes of synthetic points", ["logme", "sfda", "leep"])
    assert res.metric == "sfda"  # LEEP needs source logits and the models are headless
    assert any("leep needs source-head logits" in n for n in res.notes)
    assert res.metric_reason == "nearest: synthetic"


def test_without_labels_only_label_free_parts_run():
    task = Task(labelled=False)
    spider = FixedRanker(np.arange(8.0))
    res = Pipeline(MODELS, fennec=FennecLike(np.arange(8.0)), spider=spider, budget=2).run(task)
    assert spider.calls == 0 and not res.labels_used
    assert res.metric == "energy" and "spider" not in res.coarse
    assert any("needs labels" in n for n in res.notes)
    assert res.forward_passes == 2


def test_bad_configurations_are_refused():
    with pytest.raises(InputError, match="budget must be"):
        Pipeline(MODELS, budget=-1)
    with pytest.raises(InputError, match="budget must be a number of models or 'all'"):
        Pipeline(MODELS, budget="most")
    with pytest.raises(InputError, match="fitted on another zoo"):
        Pipeline(MODELS, fennec=FixedRanker(np.zeros(3), models=["a", "b", "c"]))
    with pytest.raises(InputError, match="unknown metric"):
        Pipeline(MODELS, metrics=["logmee"])
    with pytest.raises(InputError, match="empty"):
        Pipeline([])
    with pytest.raises(InputError, match="no coarse ranking could be made"):
        Pipeline(MODELS, budget=2).run(Task())
    with pytest.raises(InputError, match="no coarse ranking could be made"):  # Spider alone needs labels
        Pipeline(MODELS, spider=FixedRanker(np.arange(8.0)), budget=2).run(Task(labelled=False))
    assert Pipeline(MODELS, budget="all", metrics=["logme"]).run(Task()).forward_passes == len(MODELS)
    assert Pipeline(MODELS, budget=100).budget == len(MODELS)
    assert Pipeline(MODELS, budget="3").budget == 3


def test_pipeline_method_on_a_planted_benchmark():
    from zoorank import evaluation as H
    from zoorank.datasets.planted import planted_benchmark
    from zoorank.evaluation.adapters.pipeline import PipelineMethod

    bench, provider = planted_benchmark(n_models=8, n_tasks=6, seed=1)
    methods = [*H.make_methods("pipeline:no-fennec@k5"),
               PipelineMethod("logme-after-spider", fennec=False, metarank=False)]
    res = H.run(bench, methods, provider, tasks=["t0", "t1"], errors="raise")
    assert len(res) == 4, res.skipped
    for r in res:
        assert r.forward_passes == 5
    pipe = methods[0].last
    assert pipe.forward_passes == 5 and len(pipe.top) == 5 and pipe.metric in M.available()
    assert "spider" in pipe.coarse and "fennec" not in pipe.coarse
    # the rankers are zoorank fit's, from a knowledge base of the fold's history: nothing of the target is read
    # but the top-K models' features (the planted provider records every request)
    from zoorank.datasets.planted import PlantedProvider
    from zoorank.evaluation.adapters.pipeline import fold_rankers

    fresh = PlantedProvider(n_models=8, n_tasks=6, seed=1)
    H.run(bench, [PipelineMethod("p", fennec=False, metarank=False, budget=3)], fresh, tasks=["t2"], errors="raise")
    assert len([m for m, t in fresh.requests if t == "t2"]) == 3
    rankers = fold_rankers(H.TaskContext("t2", bench, fresh))
    assert rankers.fennec is None and "fennec" in rankers.skipped  # the planted provider has no proxy encoder
    assert rankers.info["spider"] == {**rankers.info["spider"], "tasks": 5, "mixtures": 256}
    assert rankers.info["held_out"] == "t2" and "t2" not in rankers.info["history"]
    other = fold_rankers(H.TaskContext("t3", bench, fresh))
    assert other is not rankers and other.info["held_out"] == "t3" and "t2" in other.info["history"]
    # a variant that needs a part zoorank fit could not fit is skipped, not silently measured without it
    res = H.run(bench, H.make_methods("pipeline@k5"), fresh, tasks=["t2"])
    assert not list(res) and "could not fit fennec" in res.skipped[0].reason


def test_pipeline_scores_follow_the_benchmarks_model_order():
    """The rankers list the zoo sorted (m0, m1, m10, m11, m2, ...); the harness's scores must follow the
    benchmark's own order: the same pipeline on a reordered benchmark gives the same score per model."""
    from zoorank import evaluation as H
    from zoorank.datasets.planted import planted_benchmark
    from zoorank.evaluation.adapters.pipeline import PipelineMethod, fold_rankers, rank_in_context

    bench, provider = planted_benchmark(n_models=12, n_tasks=5, seed=4)
    ctx = H.TaskContext("t1", bench, provider)
    rankers = fold_rankers(ctx)
    assert rankers.models != list(bench.models)
    result, scores = rank_in_context(rankers, ctx, budget=3, fennec=None)
    by_model = dict(zip(rankers.models, result.scores, strict=True))
    assert [by_model[m] for m in bench.models] == list(scores)
    assert result.ranking[0] == bench.models[int(np.argmax(scores))]
    acc = {k: np.stack([bench.truth(t, k) for t in bench.tasks])[:, ::-1] for k in H.TRUTH_KINDS}
    shuffled = H.Benchmark(list(reversed(bench.models)), bench.tasks, acc, bench.zoo, bench.task_info)
    method = PipelineMethod("p", fennec=False, metarank=False, budget=3)
    a = dict(zip(bench.models, method.scores("t1", H.TaskContext("t1", bench, provider)), strict=True))
    b = dict(zip(shuffled.models, method.scores("t1", H.TaskContext("t1", shuffled, provider)), strict=True))
    assert a == pytest.approx(b)


def test_token_mixtures_mix_class_centres_and_average_the_supervision():
    from zoorank.methods.spider import TrainingTask, token_mixtures

    rng = np.random.default_rng(0)
    tasks = [TrainingTask(f"t{i}", rng.normal(size=(4 + i, 3)), rng.random(5)) for i in range(4)]
    mixed = token_mixtures(tasks, 40, seed=3)
    again = token_mixtures(tasks, 40, seed=3)
    assert len(mixed) == 40 and all(np.array_equal(a.token, b.token) and np.array_equal(a.supervision, b.supervision)
                                    for a, b in zip(mixed, again, strict=True))
    by_name = {t.name: t for t in tasks}
    for m in mixed:
        assert 2 <= len(m.sources) <= 4 and len(set(m.sources)) == len(m.sources)
        # every row of the token is a class centre of one of its sources, in source order; the supervision is
        # the class-weighted mean of the sources' supervision
        counts, k = [], 0
        for src in m.sources:
            rows = by_name[src].token
            n = 0
            while k < m.token.shape[0] and any(np.array_equal(m.token[k], r) for r in rows):
                k, n = k + 1, n + 1
            assert 2 <= n <= 6
            counts.append(n)
        assert k == m.token.shape[0]
        want = sum(c * by_name[src].supervision for c, src in zip(counts, m.sources, strict=True)) / sum(counts)
        np.testing.assert_allclose(m.supervision, want)
    with pytest.raises(InputError, match="at least 2 tasks"):
        token_mixtures(tasks[:1], 3)
    with pytest.raises(InputError, match="same dim"):
        token_mixtures([*tasks, TrainingTask("w", np.ones((3, 4)), np.ones(5))], 3)
    with pytest.raises(InputError, match="same zoo"):
        token_mixtures([*tasks, TrainingTask("z", np.ones((3, 3)), np.ones(4))], 3)
    with pytest.raises(InputError, match="non-negative integer"):
        token_mixtures(tasks, -1)
    assert token_mixtures(tasks[:1], 0) == []


def test_fennec_is_fitted_from_the_recorded_truth_when_it_covers_as_much_as_fda(tmp_path):
    from zoorank.pipeline.learn import fennec_kinds, record_task
    from zoorank.store import KnowledgeBase

    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        for m in ("a", "b", "c"):
            kb.add_model(m)
        for t in ("t0", "t1", "t2"):  # what Fennec needs of a task: a proxy vector and both counts
            record_task(kb, t, n_classes=3, n_samples=30, proxy=np.ones(4))
        rows = [{"model": m, "task": t, "kind": k, "value": 0.5}
                for m in ("a", "b", "c") for t in ("t0", "t1") for k in ("metric:fda", "finetune_acc")]
        kb.record_many(rows)
        assert fennec_kinds(kb) == ["finetune_acc", "metric:fda"]  # a tie: the truth
        kb.record_many([{"model": "a", "task": "t2", "kind": "metric:fda", "value": 0.1}])
        assert fennec_kinds(kb) == ["metric:fda", "finetune_acc"]  # FDA covers more
        # accuracies of a task Fennec cannot use (never ranked: no proxy vector) do not count
        kb.record_many([{"model": m, "task": "t9", "kind": "finetune_acc", "value": 0.4} for m in ("a", "b", "c")])
        assert fennec_kinds(kb) == ["metric:fda", "finetune_acc"]


def test_learning_curve_fits_the_rankers_from_a_growing_knowledge_base(tmp_path):
    from dataclasses import replace

    from benchmarks import learning_curve as LC
    from zoorank.datasets.planted import PlantedProvider

    class WithProxy(PlantedProvider):
        def proxy_features(self, task):
            return self.encoder_features(task)[0][::3]

    provider = WithProxy(n_models=6, n_tasks=7, seed=2)
    bench = provider.benchmark()
    for t in bench.tasks:
        bench.task_info[t] = replace(bench.task_info[t], extra={"n_train": "60"})
    rows = LC.learning_curve(bench, provider, held_out=["t5", "t6"], steps=[2, 5], budget=2, kb_dir=tmp_path)
    methods = {r["method"] for r in rows}
    assert {"pipeline@k2", "coarse", "coarse:fennec", "coarse:spider"} <= methods
    assert {r["n_tasks"] for r in rows} == {2, 5} and {r["target"] for r in rows} == {"t5", "t6"}
    assert all(-1 <= r["weighted_tau"] <= 1 for r in rows)
    assert all(r["forward_passes"] == (2 if r["method"] == "pipeline@k2" else 0) for r in rows)
    from zoorank.store import KnowledgeBase

    with KnowledgeBase(tmp_path / "kb-5.sqlite") as kb:  # what the loop recorded, as zoorank rank --kb would
        assert len(kb.tasks()) == 5 and "finetune_acc" in kb.kinds() and "metric:fda" in kb.kinds()
        assert all("spider_token" in t.meta and "proxy" in t.meta and t.description for t in kb.tasks())
    text = LC.markdown(rows, command="cmd", held_out=["t5", "t6"])
    assert "| 5 |" in text and "pipeline@k2" in text
    with pytest.raises(InputError, match="steps must be between 2 and 5"):
        LC.learning_curve(bench, provider, held_out=["t5", "t6"], steps=[6], kb_dir=tmp_path)


def test_the_encoder_of_the_recorded_tasks_is_kept_and_mixing_encoders_is_refused(tmp_path):
    from zoorank.pipeline.learn import record_task, recorded_encoder
    from zoorank.store import KnowledgeBase

    a = {"identity": "a" * 32, "name": "dinov2", "spec": {"name": "dinov2", "source": "timm", "ref": "vit"}}
    b = {"identity": "b" * 32, "name": "mobilenet", "spec": {}}
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        assert recorded_encoder(kb) is None  # nothing recorded: the default encoder
        record_task(kb, "t1", n_classes=2, n_samples=10, proxy=np.ones(3), encoder=a)
        record_task(kb, "t2", n_classes=2, n_samples=10, proxy=np.ones(3), encoder=a)
        record_task(kb, "t0", n_classes=2, n_samples=10)  # a task without encoder features does not count
        assert recorded_encoder(kb) == a
        record_task(kb, "t3", n_classes=2, n_samples=10, proxy=np.ones(3), encoder=b)
        with pytest.raises(InputError, match=r"2 different encoders \(dinov2 on t1, t2; mobilenet on t3\)"):
            recorded_encoder(kb)


def _spider_kb(kb, models, tasks, rng, quality):
    from zoorank.pipeline.learn import record_task

    for m in models:
        kb.add_model(m, params=1000 + models.index(m))
    for t in tasks:
        record_task(kb, t, n_classes=3, n_samples=30, token=rng.normal(size=(3, 4)))
    kb.record_many([{"model": m, "task": t, "kind": "finetune_acc", "value": float(quality[m] + 0.01 * rng.normal())}
                    for m in models for t in tasks])


def test_an_incremental_fit_grows_spider_with_the_new_models_and_leaves_the_others_unchanged(tmp_path):
    """Model Spider's incremental zoo (appendix C.4) through zoorank fit: the known models keep their scores, the
    new ones get tokens trained on the tasks that supervise them, and the zoo is in the rankers' (sorted) order."""
    from zoorank.methods.spider import task_token
    from zoorank.pipeline.learn import fit_rankers
    from zoorank.store import KnowledgeBase

    rng = np.random.default_rng(0)
    old = ["a", "b", "c", "d"]
    quality = {"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.3, "n_good": 0.95, "n_bad": 0.1}
    spider = {"epochs": 8, "dim": 16, "ffn": 32}
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        _spider_kb(kb, old, [f"t{i}" for i in range(6)], rng, quality)
        first = fit_rankers(kb, only=("spider",), spider=spider, mixtures=0)
        assert first.spider is not None and first.spider.models_ == old
        probe = task_token(rng.normal(size=(30, 4)), np.arange(30) % 3)
        before = first.spider.predict(probe)
        # nothing supervises the new models yet: the growth is refused with the mend, nothing is lost
        for m in ("n_good", "n_bad"):
            kb.add_model(m)
        none = fit_rankers(kb, only=("spider",), previous=first)
        assert none.spider is None and "no task of the knowledge base supervises" in none.skipped["spider"]
        _spider_kb(kb, [*old, "n_bad", "n_good"], ["u0", "u1", "u2"], rng, quality)
        grown = fit_rankers(kb, only=("spider",), previous=first, exemplars=2)
    s = grown.spider
    assert s.models_ == sorted([*old, "n_bad", "n_good"]) == grown.models
    assert grown.info["spider"]["incremental"] and grown.info["spider"]["tasks"] == 2
    after = s.predict(probe)
    np.testing.assert_allclose([after[s.models_.index(m)] for m in old], before, rtol=0, atol=1e-6)
    assert first.spider.models_ == old  # the rankers grown from are left as they were
    # a permutation of the zoo moves each model's token with it
    perm = list(reversed(s.models_))
    scores = dict(zip(s.models_, s.predict(probe), strict=True))
    s.reorder(perm)
    np.testing.assert_allclose(s.predict(probe), [scores[m] for m in perm], rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="permutation"):
        s.reorder(perm[:-1])
