"""MetaRank (arXiv 2511.21007): cards, encoders, losses, meta-predictor, meta-dataset, harness adapter, CLI."""

import itertools
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from benchmarks import metarank_eval as E
from image_cases import write_image_folder
from zoorank import evaluation as H
from zoorank import metrics as M
from zoorank.errors import InputError
from zoorank.evaluation.adapters.metarank import MetaRankMethod
from zoorank.methods.metarank import (
    CachedEncoder,
    DatasetCard,
    HashingEncoder,
    MetaRank,
    MetaRecord,
    card_from_dataset,
    card_from_metadata,
    card_from_task_info,
    load_dataset_cards,
    load_metric_cards,
    make_encoder,
    meta_features,
)
from zoorank.methods.metarank.cards import dataset_card_aliases
from zoorank.methods.metarank.model import approx_ndcg_loss, listnet_loss, mse_loss, pairwise_loss
from zoorank.metrics.synthetic import make_task

from metarank_cases import FAST, MODELS, TASKS, Provider, planted_records

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------------- cards


def test_every_metric_has_a_card_that_says_what_it_needs():
    cards = load_metric_cards()
    assert sorted(cards) == M.available()
    words = {"labels": "target labels", "source_probs": "source-head logits", "general_features": "general data set",
             "features": "penultimate features"}
    for name in M.available():
        info, card = M.info(name), cards[name]
        needs = {k for k, flag in (("features", info.needs_features), ("labels", info.needs_labels),
                                   ("source_probs", info.needs_source_probs),
                                   ("general_features", info.needs_general_features)) if flag}
        assert set(card.needs) == needs, name
        text = card.to_text()
        needs_line = next(line for line in text.splitlines() if line.startswith("Needs:"))
        for k, w in words.items():
            assert (w in needs_line) == (k in needs), (name, k)
        assert "Known to fail:" in text and len(card.fails) > 40 and card.paper


def test_packaged_dataset_cards_cover_the_published_tables():
    cards = load_dataset_cards()
    alias = dataset_card_aliases(cards)
    tllib = ["Aircraft", "Caltech101", "CIFAR10", "CIFAR100", "DTD", "OxfordIIITPets", "StanfordCars", "SUN397"]
    tg = ["pets", "flowers", "caltech101", "stanfordcars", "dtd", "eurosat", "kitti", "cifar100", "svhn",
          "diabetic_retinopathy_detection", "smallnorb_label_elevation", "smallnorb_label_azimuth", "food101"]
    for d in tllib + tg:
        assert d.lower() in alias, d
    assert alias["oxfordiiitpets"] == alias["pets"] == "pets"
    ac = cards["aircraft"]
    assert ac.n_classes == 100 and ac.n_images == 10000
    f = meta_features(ac.to_text(), as_dict=True)
    assert f["log_classes"] == pytest.approx(2.0) and f["log_images"] == pytest.approx(4.0)
    assert meta_features(cards["smallnorb_elevation"].to_text(), as_dict=True)["greyscale"] == 1.0


def test_dataset_card_from_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    counts = {"cat": 2, "dog": 7, "fox": 3}
    for c, n in counts.items():
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 20), dtype=np.uint8), "L").save(tmp_path / c / f"{i}.png")
    card = card_from_dataset(tmp_path, what="Photos of pets.")
    assert card.n_classes == 3 and card.n_images == 12
    assert set(card.class_examples) == set(counts)
    assert card.image_size == "20x16 pixels" and card.colour == "greyscale"
    assert card.balance == "imbalanced, 2 to 7 images per class (ratio 4)"
    text = card.to_text()
    assert "Images: Photos of pets." in text and "3 classes" in text
    f = meta_features(text, as_dict=True)
    assert f["log_classes"] == pytest.approx(np.log10(3)) and f["log_images"] == pytest.approx(np.log10(12))
    assert f["log_side"] == pytest.approx(np.log2(np.sqrt(320))) and f["greyscale"] == 1.0
    assert f["imbalance"] == pytest.approx(np.log10(4))
    # colour images, balanced labels given as metadata
    card = card_from_metadata("x", labels=np.repeat(np.arange(4), 5), class_names=list("abcd"),
                              image_sizes=[(32, 32)] * 3, greyscale=False)
    assert card.balance == "balanced, 5 per class" and card.colour == "colour" and card.image_size == "32x32 pixels"
    with pytest.raises(InputError, match="labels"):
        card_from_metadata("x", labels=np.array([0.5, 1.0]))
    with pytest.raises(InputError, match="n_classes"):
        DatasetCard("x", n_classes=0)
    with pytest.raises(InputError, match="unknown field"):
        DatasetCard.from_dict({"name": "x", "clases": 3})


def test_dataset_card_from_task_info_and_sub_tasks():
    info = H.TaskInfo("georgian", None, "Printed Georgian letters in 21 DejaVu typefaces, few-shot. 33 classes, "
                      "e.g. georgian letter an (ა), georgian letter rae (რ). 660 greyscale images of 32x32 pixels, 20 "
                      "per class; fixed split 330 train / 330 test. Few-shot: 10 training images per class.", 33,
                      {"n_train": "330", "fewshot": "1"})
    text = card_from_task_info(info).to_text()
    assert "33 classes, e.g. georgian letter an" in text and "330 images of 32x32 pixels (greyscale)" in text
    assert "Few-shot: 10 images per class" in text and "balanced, 10 per class" in text
    sub = card_from_task_info(info, n_images=80, n_classes=16, subset_of="georgian").to_text()
    assert "16 classes." in sub and "80 images" in sub and "A subset of the classes of georgian" in sub
    y = np.repeat(np.arange(6), 8)
    subs = E.subtasks("t", y, class_subsets=2, fewshot=(3, 20))
    assert [s.name for s in subs] == ["full", "classes0", "classes1", "fewshot3"]
    for s in subs[1:3]:
        assert s.n_classes == 3 and sorted(set(s.labels)) == [0, 1, 2] and s.labels.size == 24
        assert set(y[s.rows]) != set(range(6))
    assert np.bincount(subs[3].labels).tolist() == [3] * 6
    again = E.subtasks("t", y, class_subsets=2, fewshot=(3, 20))
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(subs, again, strict=True))


# ---------------------------------------------------------------------------------------------------- losses


def test_losses_by_hand():
    s0 = torch.zeros(1, 3)
    q = torch.tensor([[0.5, 0.1, 0.7]])
    assert float(listnet_loss(s0, q)) == pytest.approx(np.log(3), rel=1e-6)  # uniform prediction: log K
    s = torch.tensor([[1.0, 0.0, -1.0]])
    p = np.exp(np.array([0.5, 0.1, 0.7]) / 0.1)
    p /= p.sum()
    logp = np.array([1.0, 0.0, -1.0]) - np.log(np.exp([1.0, 0.0, -1.0]).sum())
    assert float(listnet_loss(s, q, tau=0.1)) == pytest.approx(-(p * logp).sum(), rel=1e-5)
    two = torch.tensor([[1.0, 0.0]])
    # ApproxNDCG with tied scores: the relevant item's smooth rank is 1.5 -> 1 - 1/log2(2.5)
    assert float(approx_ndcg_loss(torch.zeros(1, 2), two)) == pytest.approx(1 - 1 / np.log2(2.5), rel=1e-6)
    assert float(pairwise_loss(torch.zeros(1, 2), two)) == pytest.approx(np.log(2), rel=1e-6)
    assert float(mse_loss(torch.tensor([[0.5, 0.5]]), two)) == pytest.approx(0.25)
    # masked entries and rows with < 2 entries are ignored
    qm = torch.tensor([[0.5, 0.1, 0.7], [0.3, float("nan"), float("nan")]])
    sm = torch.tensor([[1.0, 0.0, -1.0], [9.0, 9.0, 9.0]])
    assert float(listnet_loss(sm, qm, tau=0.1)) == pytest.approx(float(listnet_loss(s, q, tau=0.1)), rel=1e-6)


def test_listwise_losses_prefer_the_true_order():
    q = torch.tensor([[0.2, 0.9, -0.1, 0.5]])
    true_order = torch.argsort(torch.argsort(q[0]))  # higher quality -> higher score rank
    for fn in (listnet_loss, approx_ndcg_loss, pairwise_loss):
        values = {}
        for perm in itertools.permutations(range(4)):
            s = torch.tensor([list(perm)], dtype=torch.float64) * 2.0
            values[perm] = float(fn(s, q))
        best = min(values, key=values.get)
        assert list(best) == true_order.tolist(), fn.__name__
        # the top matters most: swapping the two best costs more than swapping the two worst
        good = [float(v) for v in true_order]
        top_swap = good.copy()
        i, j = int(np.argmax(q[0].numpy())), int(np.argsort(q[0].numpy())[-2])
        top_swap[i], top_swap[j] = top_swap[j], top_swap[i]
        bottom_swap = good.copy()
        a, b = (int(k) for k in np.argsort(q[0].numpy())[:2])
        bottom_swap[a], bottom_swap[b] = bottom_swap[b], bottom_swap[a]
        if fn is not pairwise_loss:
            assert float(fn(torch.tensor([top_swap]) * 2, q)) > float(fn(torch.tensor([bottom_swap]) * 2, q))


# ---------------------------------------------------------------------------------------------- planted data







def test_ranking_reason_names_the_nearest_historical_datasets():
    model = MetaRank(encoder="hashing", **FAST).fit(planted_records())
    r = model.rank_metrics("Dataset new. Images: photographs of textures, crops. Classes: 10 classes. "
                           "Size: 200 images.")
    assert r.top == "leep" and r.names()[-1] == "hscore"
    assert len(r.neighbours) == 3 and r.neighbours[0].best_metric == "leep"
    sims = [n.similarity for n in r.neighbours]
    assert sims == sorted(sims, reverse=True)
    assert "nearest historical datasets" in r.reason and r.neighbours[0].dataset in r.reason
    assert r.seconds < 1.0
    digits = "Dataset new. Images: scans of digits, views. Classes: 10 classes. Size: 200 images."
    assert model.rank_metrics(digits, ["logme", "hscore"]).names() == ["hscore", "logme"]
    with pytest.raises(InputError, match="description"):
        model.rank_metrics("   ")
    with pytest.raises(InputError, match="no metric card"):
        model.rank_metrics("Images: digits.", ["no_such_metric"])




def test_save_load_reproduces_rankings(tmp_path):
    recs = planted_records(12)
    for features in ("text", "meta"):
        model = MetaRank(encoder="hashing", features=features, **FAST).fit(recs)
        path = model.save(tmp_path / f"m-{features}")
        assert path.suffix == ".npz"
        with np.load(path, allow_pickle=False) as z:  # plain arrays only
            assert "__config__" in z.files
        loaded = MetaRank.load(path)
        for text in ("Images: shots of digits. Classes: 7 classes.", "Images: views of textures."):
            a, b = model.rank_metrics(text), loaded.rank_metrics(text)
            assert a.names() == b.names()
            np.testing.assert_allclose([m.score for m in a.metrics], [m.score for m in b.metrics], rtol=1e-6)
            assert [n.dataset for n in a.neighbours] == [n.dataset for n in b.neighbours]
    with pytest.raises(InputError, match="not found"):
        MetaRank.load(tmp_path / "none.npz")
    with pytest.raises(InputError, match="fit"):
        MetaRank(encoder="hashing").rank_metrics("x")
    with pytest.raises(InputError, match="loss"):
        MetaRank(loss="hinge")


def test_fit_rejects_bad_meta_data():
    with pytest.raises(InputError, match="no meta records"):
        MetaRank(encoder="hashing").fit([])
    with pytest.raises(InputError, match="at least 2 datasets"):
        MetaRank(encoder="hashing").fit([MetaRecord("a", "x", "logme", 0.1), MetaRecord("a", "x", "leep", 0.2)])
    with pytest.raises(InputError, match="two different descriptions"):
        MetaRank(encoder="hashing").fit([MetaRecord("a", "x", "logme", 0.1), MetaRecord("a", "y", "leep", 0.2)])
    with pytest.raises(InputError, match="weighted tau"):
        MetaRecord("a", "x", "logme", 1.5)


# ---------------------------------------------------------------------------------------------- the real encoder




def test_real_sentence_encoder_and_its_cache(minilm):
    cards = load_dataset_cards()
    texts = [cards[n].to_text() for n in ("pets", "eurosat", "cars")]
    query = "Dataset: mydogs. Images: Photographs of dog breeds, one dog per image."
    emb = minilm([*texts, query])
    assert emb.shape == (4, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert emb[3] @ emb[0] > emb[3] @ emb[1]  # a dog-breed dataset is closer to pets than to satellite images
    assert isinstance(minilm, CachedEncoder) and minilm.inner.loaded
    fresh = make_encoder("all-MiniLM-L6-v2", cache_dir=minilm.cache_dir)  # a new process would start like this
    np.testing.assert_allclose(fresh([texts[1], query]), emb[[1, 3]], atol=1e-6)
    assert fresh.misses == 0 and not fresh.inner.loaded  # served from the disk cache: no model loaded




# ------------------------------------------------------------------------------------- published tables








# ---------------------------------------------------------------------------------------- harness adapter







def test_adapter_returns_the_chosen_metrics_scores_without_touching_the_held_out_truth(bench, tmp_path, monkeypatch):
    method = MetaRankMethod(metrics=["logme", "hscore", "leep", "lfc"], cache_dir=tmp_path / "scores",
                            encoder="hashing", **FAST)
    provider = Provider(bench)
    read: list[str] = []
    real_truth = bench.truth

    def spy(task, kind="finetune_acc"):
        read.append(task)
        return real_truth(task, kind)

    monkeypatch.setattr(bench, "truth", spy)
    monkeypatch.setattr(bench, "matrix", lambda kind="finetune_acc": pytest.fail("the full truth matrix was read"))
    for task in TASKS:
        read.clear()
        ctx = H.TaskContext(task, bench, provider)
        s = method.scores(task, ctx)
        assert task not in read and set(read) == set(TASKS) - {task}
        pick = method.picks[task]
        assert pick.metric in pick.ranking and pick.n_records > 0 and "nearest historical" in pick.reason
        expected = H.MetricMethod(pick.metric).scores(task, H.TaskContext(task, bench, provider))
        np.testing.assert_allclose(s, expected)
        assert ctx.forward_passes == len(MODELS)
    # every (task, sub-task, metric) was computed once and shared across the folds; the disk cache is reused
    again = MetaRankMethod(metrics=["logme", "hscore", "leep", "lfc"], cache_dir=tmp_path / "scores",
                           encoder="hashing", **FAST)
    again.scores("t0", H.TaskContext("t0", bench, provider))
    assert again.meta.computed == 0 and method.meta.computed > 0
    subs = {r.dataset for r in method.meta.history_records(H.TaskContext("t0", bench, provider))}
    assert {"t1", "t1/fewshot5"} <= subs and "t0" not in subs and not any(d.startswith("t0/") for d in subs)


def test_adapter_in_a_harness_run_and_registry(bench, tmp_path):
    names = H.available_methods()
    assert "metarank" in names and "metarank:mse" in names and "metarank:average-best" in names
    assert [m.name for m in H.make_methods("metarank,metarank:meta")] == ["metarank", "metarank:meta"]
    methods = [MetaRankMethod(metrics=["logme", "hscore", "lfc"], cache_dir=False, encoder="hashing", **FAST),
               MetaRankMethod("metarank:average-best", metrics=["logme", "hscore", "lfc"], cache_dir=False,
                              strategy="average-best")]
    out = H.run(bench, methods, Provider(bench), errors="raise")
    assert len(out) == 2 * len(TASKS) and not out.skipped
    for r in out:
        assert r.forward_passes == len(MODELS) and -1 <= r.weighted_tau <= 1


def test_adapter_skips_a_metric_that_cannot_run_and_takes_the_next(bench):
    class Headless(Provider):
        def features(self, model, task):
            return super().features(model, task)[0], None

    method = MetaRankMethod(metrics=["leep", "nce", "logme", "hscore"], cache_dir=False, encoder="hashing", **FAST)
    s = method.scores("t1", H.TaskContext("t1", bench, Headless(bench)))
    # leep and nce need source logits: never measured on the history, never ranked, never picked
    assert set(method.picks["t1"].ranking) == {"logme", "hscore"}
    assert ("t0", "full", "leep") in method.meta.skipped
    assert s.shape == (len(MODELS),)




# -------------------------------------------------------------------------------------------------- CLI


def test_recommend_command(tmp_path, monkeypatch):
    from zoorank.cli.metrics_recommend import recommend

    monkeypatch.setenv("ZOORANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOORANK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOORANK_RANKERS", raising=False)
    model = MetaRank(encoder="hashing", **FAST).fit(planted_records(12))
    path = model.save(tmp_path / "model.npz")
    data = write_image_folder(tmp_path / "data")
    runner = CliRunner()
    res = runner.invoke(recommend, ["--data", str(data), "--description", "Close-up photographs of textures.",
                                    "--model", str(path), "--json", "--top", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [m["metric"] for m in out["metrics"]] == ["leep", "logme"]
    assert "2 classes" in out["card"] and "6 images" in out["card"] and out["neighbours"]
    assert out["seconds"]["rank"] < 1.0
    res = runner.invoke(recommend, ["--description", "scans of digits", "--model", str(path)])
    assert res.exit_code == 0 and "hscore" in res.output and "nearest historical datasets" in res.output
    res = runner.invoke(recommend, ["--description", "digits", "--json"])  # nothing fitted: the shipped model
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["model"].endswith("shipped/metarank.npz")
    res = runner.invoke(recommend, ["--description", "digits", "--model", str(tmp_path / "typo.npz")])
    assert res.exit_code != 0 and "no trained MetaRank model at" in res.output
    fitted = tmp_path / "home" / "rankers" / "metarank.npz"  # the MetaRank zoorank fit wrote is the fallback
    fitted.parent.mkdir(parents=True)
    fitted.write_bytes(path.read_bytes())
    res = runner.invoke(recommend, ["--description", "scans of digits"])
    assert res.exit_code == 0 and "hscore" in res.output
    res = runner.invoke(recommend, ["--model", str(path)])
    assert res.exit_code != 0 and "--data" in res.output


def test_hashing_encoder_is_deterministic():
    enc = HashingEncoder(64)
    a = enc(["textures of wood", "digits"])
    assert a.shape == (2, 64) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    np.testing.assert_array_equal(a, HashingEncoder(64)(["textures of wood", "digits"]))
    with pytest.raises(InputError, match="list of texts"):
        enc("one string")


def test_zoo_scores_matches_the_metric_method():
    t = make_task(60, 8, 3, n_source_classes=5, n_general=10, seed=0)
    feats = [t.features, t.features[:, ::-1] * 0.5]
    logits = [np.log(t.source_probs), None]
    s = E.zoo_scores("logme", feats, logits, t.labels)
    assert s == pytest.approx([M.logme(f, t.labels) for f in feats])
    with pytest.raises(E.MetricUnavailable, match="headless"):
        E.zoo_scores("leep", feats, logits, t.labels)
    with pytest.raises(E.MetricUnavailable, match="general"):
        E.zoo_scores("ped", feats, logits, t.labels)
