"""Model Spider: the losses (equation 4, ListMLE, MSE), the one-layer Transformer scorer (equation 6), sampled
training tasks and their Copeland supervision (appendices A.4, B.1), ranking unseen tasks, re-ranking with
PTM-specific tokens (section 4.4), persistence, the incremental zoo (appendix C.4), the spider chart (section 5.4)
and the leave-one-target-out harness adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoorank import evaluation as H
from zoorank import metrics as M
from zoorank import ranking as R
from zoorank.datasets.planted import PlantedProvider
from zoorank.errors import InputError
from zoorank.evaluation.adapters.spider import SpiderMethod
from zoorank.methods.spider import ModelSpider, SupervisionBank, TrainingTask, specific_token, task_token
from zoorank.methods.spider import chart as C
from zoorank.methods.spider.losses import listmle_loss, mse_loss, ranking_loss
from zoorank.methods.spider.model import SpiderScorer

torch.set_num_threads(1)

FAST = {"epochs": 25, "batch_size": 16, "lr": 3e-3}


class Subset:
    """A history over some tasks of a provider (what a fold may read)."""

    def __init__(self, provider, tasks):
        self.p, self.tasks = provider, tuple(tasks)

    def _ok(self, task):
        assert task in self.tasks, f"read task {task} outside the history"

    def features(self, model, task):
        self._ok(task)
        return self.p.features(model, task)

    def labels(self, task):
        self._ok(task)
        return self.p.labels(task)

    def encoder_features(self, task):
        self._ok(task)
        return self.p.encoder_features(task)


# ---------------------------------------------------------------------------------------------- losses


def test_ranking_loss_matches_equation_4_by_hand_and_prefers_the_true_order():
    s = torch.tensor([2.0, 0.5, 1.0])
    t = torch.tensor([3.0, 1.0, 2.0])  # true order: model 0, model 2, model 1
    e = math.exp
    by_hand = ((-2.0 + math.log(e(2.0) + e(1.0) + e(0.5))) + (-1.0 + math.log(e(1.0) + e(0.5))) + 0.0) / 2
    assert float(ranking_loss(s, t)) == pytest.approx(by_hand, rel=1e-6)
    # a batch is the mean of its tasks
    batch = torch.stack([s, s.flip(0)]), torch.stack([t, t])
    flipped = ((-1.0 + math.log(e(1.0) + e(0.5) + e(2.0))) + (-2.0 + math.log(e(2.0) + e(0.5)))) / 2
    assert float(ranking_loss(*batch)) == pytest.approx((by_hand + flipped) / 2, rel=1e-6)
    # over every assignment of the same score values, the true order is the minimum; margins drive it to 0
    values = torch.tensor([3.0, 2.0, 1.0, 0.0])
    truth = torch.tensor([0.4, 0.9, 0.1, 0.7])
    import itertools

    losses = {p: float(ranking_loss(values[list(p)], truth)) for p in itertools.permutations(range(4))}
    best = min(losses, key=losses.get)
    assert np.argsort(-values[list(best)].numpy()).tolist() == np.argsort(-truth.numpy()).tolist()
    assert float(ranking_loss(100 * torch.tensor([1.0, 3.0, 0.0, 2.0]), truth)) < 1e-6
    # ties (Copeland half points): tied models share each other's denominators
    a, b, c = 0.3, -0.2, 1.1
    tied = ((-a + math.log(e(a) + e(b) + e(c))) + (-b + math.log(e(a) + e(b) + e(c)))) / 2
    assert float(ranking_loss(torch.tensor([a, b, c]), torch.tensor([1.0, 1.0, 0.0]))) == pytest.approx(tied, rel=1e-6)


def test_listmle_and_mse_by_hand():
    e = math.exp
    s, t = torch.tensor([2.0, 0.5, 1.0]), torch.tensor([3.0, 1.0, 2.0])
    by_hand = (-2.0 + math.log(e(2.0) + e(1.0) + e(0.5))) + (-1.0 + math.log(e(1.0) + e(0.5)))
    assert float(listmle_loss(s, t)) == pytest.approx(by_hand, rel=1e-6)  # summed over positions
    # ties are broken at random: both orders of the tied pair occur
    a, b, c = 0.3, -0.2, 1.1
    first = (-a + math.log(e(a) + e(b) + e(c))) + (-b + math.log(e(b) + e(c)))
    second = (-b + math.log(e(a) + e(b) + e(c))) + (-a + math.log(e(a) + e(c)))
    gen = torch.Generator().manual_seed(0)
    seen = {round(float(listmle_loss(torch.tensor([a, b, c]), torch.tensor([1.0, 1.0, 0.0]), gen)), 6)
            for _ in range(40)}
    assert seen == {round(first, 6), round(second, 6)}
    # MSE against the supervision min-max scaled per task; constant supervision targets 0.5
    assert float(mse_loss(torch.tensor([0.2, 0.9]), torch.tensor([1.0, 3.0]))) == pytest.approx(0.025, rel=1e-6)
    assert float(mse_loss(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 2.0]))) == pytest.approx(0.25, rel=1e-6)
    for loss in (ranking_loss, listmle_loss, mse_loss):
        with pytest.raises(InputError, match="same shape"):
            loss(torch.zeros(3), torch.zeros(4))
        with pytest.raises(InputError, match="NaN"):
            loss(torch.zeros(3), torch.tensor([0.0, float("nan"), 1.0]))


def test_scorer_is_the_first_output_of_a_standard_transformer_layer():
    torch.manual_seed(0)
    net = SpiderScorer(5, 7, [None] * 5, dim=16, heads=4, ffn=32)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu", batch_first=True)
    layer.load_state_dict({k: v for k, v in net.state_dict().items()
                           if k.split(".")[0] in ("self_attn", "linear1", "linear2", "norm1", "norm2")})
    layer.eval()
    tokens = net.general_tokens(torch.randn(2, 3, 7))  # 2 tasks of 3 classes
    with torch.no_grad():
        ours = net.score(torch.arange(5), tokens, torch.ones(2, 3, dtype=torch.bool), shared=True)
        for b in range(2):
            for m in range(5):
                seq = torch.cat([net.model_tokens[m:m + 1], tokens[b]]).unsqueeze(0)
                ref = net.fc(layer(seq)[0, 0])
                assert float(ours[b, m]) == pytest.approx(float(ref), abs=1e-5)
        # padding is ignored: a 2-class task padded to 3 scores as the 2-class task alone
        mask = torch.tensor([[True, True, False]])
        padded = net.score(torch.arange(5), tokens[:1], mask, shared=True)
        alone = net.score(torch.arange(5), tokens[:1, :2], torch.ones(1, 2, dtype=torch.bool), shared=True)
    torch.testing.assert_close(padded, alone)


# ---------------------------------------------------------------------------------------------- sampling


@pytest.fixture(scope="module")
def small():
    p = PlantedProvider(n_models=6, n_tasks=8, hidden=1.0, seed=5)
    bank = SupervisionBank(p.models, p.tasks, n_tasks=60, n_specific=3, seed=1)
    return p, bank


def test_sampled_tasks_mix_2_to_4_sources_relabel_and_avoid_the_held_out_task(small):
    p, bank = small
    held_out = "t3"
    p.requests.clear()
    hist = Subset(p, [t for t in p.tasks if t != held_out])
    tasks = bank.training_tasks(hist)
    planned = [pl for pl in bank.plans() if held_out not in pl]
    assert len(tasks) == len(planned) > 10
    assert all(held_out != t for _, t in p.requests)
    for task in tasks:
        assert 2 <= len(task.sources) <= 4 and held_out not in task.sources
        y = task.labels
        assert np.array_equal(np.unique(y), np.arange(task.n_classes))
        assert task.token.shape == (task.n_classes, p.encoder_dim)
        start = 0
        for m in task.members:  # classes of a source in new-label order, rows of those classes, <= per_class each
            py = p.labels(m.task)
            assert set(py[m.rows]) == set(m.classes) and len(set(m.rows)) == m.rows.size
            assert np.bincount(m.labels - start).max() <= bank.per_class
            assert np.array_equal(py[m.rows], m.classes[m.labels - start])
            start += m.classes.size
        E = np.concatenate([p.encoder_features(m.task)[0][m.rows] for m in task.members])
        np.testing.assert_allclose(task.token, task_token(E, y), rtol=1e-5, atol=1e-5)
        assert len(task.specific) == 3


def test_copeland_supervision_is_the_copeland_of_nce_leep_logme_hscore(small):
    p, bank = small
    tasks = bank.training_tasks(Subset(p, p.tasks))
    assert bank.metrics == ("nce", "leep", "logme", "hscore")
    for task in tasks[:5]:
        y = task.labels
        cols = []
        for name in task.metrics:
            col = []
            for model in p.models:
                X = np.concatenate([p.features(model, m.task)[0][m.rows] for m in task.members])
                lg = np.concatenate([p.features(model, m.task)[1][m.rows] for m in task.members])
                col.append(M.compute(name, X, y, source_probs=M.softmax(lg)))
            cols.append(np.array(col))
        np.testing.assert_allclose(task.scores, np.stack(cols, axis=1), rtol=1e-9)
        np.testing.assert_array_equal(task.supervision, R.copeland(cols))
    logme = bank.training_tasks(Subset(p, p.tasks), supervision="logme")
    np.testing.assert_array_equal(logme[0].supervision, tasks[0].scores[:, 2])
    with pytest.raises(InputError, match="supervision must be"):
        bank.training_tasks(Subset(p, p.tasks), supervision="sfda")


def test_bank_reuses_samples_across_folds_and_recomputes_when_data_change(small):
    p, _ = small
    bank = SupervisionBank(p.models, p.tasks, n_tasks=40, n_specific=2, seed=2)
    first = bank.training_tasks(Subset(p, [t for t in p.tasks if t != "t0"]))
    n = bank.computed
    second = bank.training_tasks(Subset(p, [t for t in p.tasks if t != "t1"]))
    both = [pl for pl in bank.plans() if "t0" not in pl and "t1" not in pl]
    assert bank.computed == n + sum("t0" in pl and "t1" not in pl for pl in bank.plans())
    shared = {t.name: t for t in first}
    assert sum(t.name in shared and t.token is shared[t.name].token for t in second) == len(both)
    # a source whose labels / encoder features changed is resampled
    other = PlantedProvider(n_models=6, n_tasks=8, hidden=1.0, seed=6)
    before = bank.computed
    bank.training_tasks(Subset(other, [t for t in p.tasks if t != "t1"]))
    assert bank.computed - before == len([pl for pl in bank.plans() if "t1" not in pl])


# ---------------------------------------------------------------------------------------------- ranking


def _fit(provider, n_history, **spider):
    hist = Subset(provider, provider.tasks[:n_history])
    bank = SupervisionBank(provider.models, hist.tasks, n_tasks=100, n_specific=len(provider.models), seed=0)
    tasks = bank.training_tasks(hist)
    return ModelSpider(**{**FAST, **spider}).fit(tasks, models=provider.models), tasks, bank


@pytest.fixture(scope="module")
def visible():
    """Quality mostly visible in the encoder's class centres (a small hidden part)."""
    p = PlantedProvider(n_models=10, n_tasks=16, hidden=0.5, seed=0)
    spider, tasks, bank = _fit(p, 10)
    return p, spider, tasks, bank


@pytest.fixture(scope="module")
def hidden():
    """Quality mostly hidden from the encoder, visible in the models' own features."""
    p = PlantedProvider(n_models=10, n_tasks=16, hidden=3.0, seed=0)
    spider, _, _ = _fit(p, 10)
    return p, spider


def test_spider_ranks_unseen_tasks_from_the_task_token(visible):
    p, spider, _, _ = visible
    acc = p.accuracy()
    popularity = acc[:10].mean(axis=0)
    rng = np.random.default_rng(0)
    ours, pop, rand = [], [], []
    for j in range(10, 16):
        s = spider.predict(task_token(*p.encoder_features(p.tasks[j])))
        ours.append(R.weighted_tau(s, acc[j]))
        pop.append(R.weighted_tau(popularity, acc[j]))
        rand.append(np.mean([R.weighted_tau(rng.random(10), acc[j]) for _ in range(50)]))
    assert np.mean(ours) > 0.55
    assert np.mean(ours) > np.mean(pop) + 0.3 and np.mean(ours) > np.mean(rand) + 0.4
    assert spider.report_["loss_curve"][-1] < spider.report_["loss_curve"][0]


def test_reranking_with_informative_specific_features_improves_the_ranking(hidden):
    p, spider = hidden
    acc = p.accuracy()
    rng = np.random.default_rng(1)
    coarse, full, top5, shuffled = [], [], [], []
    for j in range(10, 16):
        task = p.tasks[j]
        E, y = p.encoder_features(task)
        token = task_token(E, y)
        s = spider.predict(token)
        spec = {m: specific_token(p.features(p.models[m], task)[0], y) for m in range(10)}
        noise = {m: specific_token(p.features(p.models[m], task)[0], rng.permutation(y)) for m in range(10)}
        top = [int(i) for i in np.argsort(-s)[:5]]
        coarse.append(R.weighted_tau(s, acc[j]))
        full.append(R.weighted_tau(spider.rerank(token, spec), acc[j]))
        top5.append(R.weighted_tau(spider.rerank(token, {m: spec[m] for m in top}), acc[j]))
        shuffled.append(R.weighted_tau(spider.rerank(token, noise), acc[j]))
        # block mode keeps the re-ranked models ahead; replace mode uses their specific scores as they are
        blk = spider.rerank(token, {m: spec[m] for m in top})
        assert set(np.argsort(-blk)[:5].tolist()) == set(top)
        rep = spider.rerank(token, {top[0]: spec[top[0]]}, mode="replace")
        assert rep[top[0]] == pytest.approx(spider.specific_scores({top[0]: spec[top[0]]})[top[0]], rel=1e-6)
        np.testing.assert_array_equal(np.delete(rep, top[0]), np.delete(s, top[0]))
    assert np.mean(full) > np.mean(coarse) + 0.15
    assert np.mean(top5) > np.mean(coarse)
    assert np.mean(full) > np.mean(shuffled) + 0.3


def test_save_load_is_exact_and_fitting_is_deterministic(visible, tmp_path):
    p, spider, tasks, _ = visible
    task = p.tasks[12]
    E, y = p.encoder_features(task)
    token = task_token(E, y)
    spec = {m: specific_token(p.features(p.models[m], task)[0], y) for m in (0, 3)}
    back = ModelSpider.load(spider.save(tmp_path / "spider"))
    assert back.models_ == spider.models_ and back.get_params() == spider.get_params()
    np.testing.assert_array_equal(back.predict(token), spider.predict(token))
    np.testing.assert_array_equal(back.rerank(token, spec), spider.rerank(token, spec))
    again = ModelSpider(**FAST).fit(tasks, models=p.models)
    np.testing.assert_array_equal(again.predict(token), spider.predict(token))
    other = ModelSpider(**{**FAST, "seed": 1, "epochs": 2}).fit(tasks, models=p.models)
    assert not np.array_equal(other.predict(token), spider.predict(token))
    (tmp_path / "junk").mkdir()
    with pytest.raises(InputError, match="not a saved Model Spider"):
        ModelSpider.load(tmp_path / "junk")
    with pytest.raises(InputError, match="dimension"):
        spider.predict(np.ones((3, 5)))
    with pytest.raises(InputError, match="out of range"):
        spider.rerank(token, {99: spec[0]})
    with pytest.raises(InputError, match=r"call fit \(or load\) first"):
        ModelSpider().predict(token)
    with pytest.raises(InputError, match="no training tasks"):
        ModelSpider().fit([], models=p.models)
    with pytest.raises(InputError, match="supervision must be"):
        ModelSpider().fit([TrainingTask("x", np.ones((2, 3)), np.ones(3))], models=p.models)
    with pytest.raises(InputError, match="2 distinct model names"):
        ModelSpider().fit(tasks, models=["a", "a"])


def test_add_models_keeps_old_scores_and_learns_the_new_tokens(visible):
    import copy

    from scipy import stats

    p, _, _, bank = visible
    hist = Subset(p, p.tasks[:10])
    old_models, new_models = list(p.models[:7]), list(p.models[7:])
    old = ModelSpider(**FAST).fit(bank.training_tasks(hist, models=old_models), models=old_models)
    tokens = {t: task_token(*p.encoder_features(t)) for t in p.tasks[10:]}
    before = {t: old.predict(tok) for t, tok in tokens.items()}
    enlarged = bank.training_tasks(hist, models=p.models)
    untrained = copy.deepcopy(old).add_models(new_models, enlarged, epochs=0)
    inc = old.add_models(new_models, enlarged)
    assert inc.models_ == list(p.models) and inc.report_["incremental"]["added"] == new_models
    assert len(inc.feature_dims_) == len(p.models)
    acc = p.accuracy()
    predicted, predicted0, true = [], [], []
    for t, tok in tokens.items():
        s = inc.predict(tok)
        np.testing.assert_array_equal(s[:7], before[t])  # the old models' scores do not move, to the last bit
        predicted += list(stats.rankdata(s)[7:])  # where the new models land in the zoo's ranking
        predicted0 += list(stats.rankdata(untrained.predict(tok))[7:])
        true += list(stats.rankdata(acc[p.tasks.index(t)])[7:])
    learned, random_tokens = R.spearman(predicted, true), R.spearman(predicted0, true)
    assert learned > 0.6 and learned > random_tokens + 0.3
    with pytest.raises(InputError, match="new, distinct"):
        inc.add_models(["m0"], [])


def test_spider_chart_writes_png_and_svg(visible, tmp_path):
    p, spider, _, _ = visible
    tokens = {t: task_token(*p.encoder_features(t)) for t in p.tasks}
    groups = C.cluster_tasks(tokens, 4)
    assert len(set(groups.values())) == 4
    named = C.member_labels(groups, max_names=1)
    assert len(set(named.values())) == 4
    first = {}
    for t in p.tasks:
        first.setdefault(groups[t], t)
    size = {c: sum(1 for v in groups.values() if v == c) for c in set(groups.values())}
    assert named == {t: first[groups[t]] + (f" +{size[groups[t]] - 1}" if size[groups[t]] > 1 else "") for t in p.tasks}
    aff = C.affinities(spider, tokens, groups, ["m0", "m5"])
    assert all(0.0 <= v["scaled"] <= 1.0 for a in aff.values() for v in a.values())
    # m0 and m5 prefer opposite task directions: their affinity profiles differ
    assert max(abs(aff["m0"][c]["scaled"] - aff["m5"][c]["scaled"]) for c in aff["m0"]) > 0.1
    files = C.spider_chart({m: {c: v["scaled"] for c, v in a.items()} for m, a in aff.items()}, tmp_path / "chart")
    assert [f.suffix for f in files] == [".png", ".svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in files[1].read_bytes()[:500]
    with pytest.raises(InputError, match="at least 3"):
        C.spider_chart({"m0": {"a": 0.1, "b": 0.2}}, tmp_path / "bad")


# ---------------------------------------------------------------------------------------------- harness








def test_registered_names():
    names = [m.name for m in H.make_methods("spider,spider@k3,spider@k5,spider:mse,spider:listmle,spider:logme-only")]
    assert names == ["spider", "spider@k3", "spider@k5", "spider:mse", "spider:listmle", "spider:logme-only"]
    everything = [m.name for m in H.make_methods("all")]
    assert "spider@k5" in everything and "spider:mse" not in everything
    with pytest.raises(InputError, match="supervision"):
        SpiderMethod("x", supervision="sfda")


def test_the_paper_form_is_spider_and_the_swap_and_the_source_sampling_are_named_variants():
    from zoorank.evaluation.adapters.spider import SOURCE_BANK

    got = {m.name: m for m in H.make_methods("spider,spider@k5,spider:shrinkage,spider:source,spider:source-shrinkage")}
    assert got["spider"].bank_params["hscore_form"] == "raw" == got["spider@k5"].bank_params["hscore_form"]
    assert got["spider:shrinkage"].bank_params["hscore_form"] == "auto"
    assert got["spider:source"].source and got["spider:source"].bank_params["hscore_form"] == "raw"
    assert got["spider:source-shrinkage"].bank_params["hscore_form"] == "auto"
    for key, value in SOURCE_BANK.items():
        assert got["spider:source"].bank_params[key] == value
    everything = {m.name for m in H.make_methods("all")}
    assert "spider" in everything and not {"spider:shrinkage", "spider:source"} & everything
    with pytest.raises(InputError, match="source tasks have no fine-tuned"):
        SpiderMethod("x", supervision="finetune_acc", source=True)


class _WithSources:
    """A planted provider whose tasks ``sources`` are auxiliary source tasks, never targets."""

    def __init__(self, p, sources):
        self.p, self.sources = p, tuple(sources)
        self.source_reads: list[str] = []

    def labels(self, task):
        return self.p.labels(task)

    def features(self, model, task):
        return self.p.features(model, task)

    def encoder_features(self, task):
        return self.p.encoder_features(task)

    def source_tasks(self):
        return self.sources

    def source_labels(self, task):
        assert task in self.sources
        return self.p.labels(task)

    def source_features(self, model, task):
        assert task in self.sources
        self.source_reads.append(task)
        return self.p.features(model, task)

    def source_encoder_features(self, task):
        assert task in self.sources
        return self.p.encoder_features(task)


def test_source_sampled_spider_trains_on_the_auxiliary_tasks_only_and_once_for_every_fold():
    p = PlantedProvider(n_models=6, n_tasks=10, hidden=0.5, seed=3)
    targets, sources = p.tasks[:4], p.tasks[4:]
    bench = p.benchmark().within(targets)
    provider = _WithSources(p, sources)
    fits = []

    class Recording(SpiderMethod):
        def scores(self, task, context):
            out = super().scores(task, context)
            fits.append(self.last_spider)
            return out

    method = Recording("spider:source", source=True, spider=FAST,
                       bank={"n_tasks": 24, "sources": (1, 3), "classes_per_source": (2, 4), "per_class": 8,
                             "n_specific": 2, "hscore_form": "raw"})
    res = H.run(bench, [method], provider, errors="raise")
    assert sorted(r.task for r in res) == sorted(targets)
    assert set(provider.source_reads) <= set(sources) and provider.source_reads
    assert all(t in sources for _, t in p.requests)  # no target's model features were read to train
    assert len({id(f) for f in fits}) == 1  # one fit serves every fold: no target is read
    from zoorank.evaluation.adapters import spider as adapter

    bank = next(b for _, b in adapter._BANKS.values() if b.universe == tuple(sorted(sources)))
    trained = bank.training_tasks(adapter.SourceHistory(provider))
    assert trained and all(set(t.sources) <= set(sources) for t in trained)
    assert all("hscore" in t.metrics and "reg_hscore" not in t.metrics for t in trained)  # the paper's form


def test_product_spider_learns_specific_projections_from_the_knowledge_base_and_reranks(tmp_path):
    from zoorank.evaluation.history_kb import fill_kb
    from zoorank.methods.kb_adapter import spider_tasks
    from zoorank.store import KnowledgeBase

    p = PlantedProvider(n_models=6, n_tasks=6, hidden=0.5, seed=4)
    bench = p.benchmark()
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        fill_kb(kb, bench, p, list(bench.tasks[:3]), centres=True)
        kept = kb.centres()
        assert len(kept) == 6 * 3
        y = p.labels("t0")
        np.testing.assert_allclose(kept[("m2", "t0")], specific_token(p.features("m2", "t0")[0], y), atol=1e-6)
        tasks = spider_tasks(kb, list(bench.models))
        assert all(sorted(t.specific) == list(range(6)) for t in tasks)
    res = H.run(bench, H.make_methods("spider:product,spider:product@k5"), p, errors="raise")
    by = {(r.method, r.task): r for r in res}
    assert all(by[("spider:product@k5", t)].forward_passes == 5 for t in bench.tasks)
    assert all(by[("spider:product", t)].forward_passes == 0 for t in bench.tasks)
    assert any(by[("spider:product@k5", t)].weighted_tau != by[("spider:product", t)].weighted_tau
               for t in bench.tasks)
