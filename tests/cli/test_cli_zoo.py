"""The zoo, extract, score and kb commands end to end, offline, on a real image folder with the real
ImageNet MobileNetV2 and timm architectures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

from zoorank.cli import cli
from zoorank.zoo import ModelSpec, offline_mobilenet_v2_spec, save_zoo

TIMM = ["resnet18", "mobilenetv3_small_050", "efficientnet_b0", "convnext_atto", "vit_tiny_patch16_224"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits") / "digits"
    d = load_digits()
    for k in range(4):
        (root / f"digit{k}").mkdir(parents=True)
        for i, j in enumerate(np.flatnonzero(d.target == k)[:12]):
            img = (d.images[j] * 255 / 16).astype(np.uint8)
            Image.fromarray(img).resize((32, 32)).save(root / f"digit{k}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    specs = [offline_mobilenet_v2_spec(input_size=32)] + [
        ModelSpec(name=name, source="timm", ref=name, pretrained=False, input_size=32, seed=i)
        for i, name in enumerate(TIMM)
    ]
    return save_zoo(specs, tmp_path_factory.mktemp("zoo") / "zoo.yaml")


def test_score_ranks_a_real_zoo_and_the_second_run_hits_the_cache(zoo_file, digits_folder, tmp_path):
    cache = tmp_path / "cache"
    first = run("score", "--zoo", zoo_file, "--data", digits_folder, "--cache", cache, "--metric",
                "logme,leep,hscore", "--json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.output[first.output.index("{"):])
    assert out["ranked_by"] == "logme" and len(out["ranking"]) == 6 and not out["failed"]
    scores = [r["score"] for r in out["ranking"]]
    assert scores == sorted(scores, reverse=True)
    # the pretrained ImageNet model separates digits better than randomly initialised networks
    assert out["ranking"][0]["model"] == "mobilenet_v2-imagenet"
    second = run("extract", "--zoo", zoo_file, "--data", digits_folder, "--cache", cache, "--json")
    rows = json.loads(second.output[second.output.index("["):])
    assert all(r["cached"] and r["forward_passes"] == 0 for r in rows)
    kb = tmp_path / "kb.sqlite"
    table = run("score", "--zoo", zoo_file, "--data", digits_folder, "--cache", cache, "--metric", "all",
                "--kb", kb, "--task", "digits4")
    assert table.exit_code == 0 and "ranking by copeland" in table.output
    from zoorank.store import KnowledgeBase

    with KnowledgeBase(kb) as base:
        m = base.matrix("metric:logme")
        assert m.tasks == ["digits4"] and len(m.models) == 6
        logme = dict(zip(m.models, m.values[:, 0], strict=True))
        assert logme["mobilenet_v2-imagenet"] == pytest.approx(out["ranking"][0]["score"])
        assert base.model("mobilenet_v2-imagenet").params == 3504872
        assert base.task("digits4").n_classes == 4


def test_zoo_commands(tmp_path, zoo_file):
    z = tmp_path / "z.toml"
    assert run("zoo", "add", z, "timm:resnet18", "--no-pretrained", "--input-size", "32").exit_code == 0
    assert run("zoo", "add", z, "torchvision:mobilenet_v3_small", "--name", "mnv3").exit_code == 0
    dup = run("zoo", "add", z, "timm:resnet18")
    assert dup.exit_code != 0 and "already has a model named" in dup.output
    listed = json.loads(run("zoo", "list", z, "--json").output)
    assert [m["name"] for m in listed] == ["resnet18", "mnv3"]
    shown = json.loads(run("zoo", "show", zoo_file, "mobilenet_v2-imagenet", "--json").output)
    assert shown["feature_dim"] == 1280 and shown["source_classes"] == 1000 and shown["params"] == 3504872


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: p / "missing", "not found"),
        (lambda p: (p / "task" / "a").mkdir(parents=True) or (p / "task" / "b").mkdir() or
         Image.new("RGB", (8, 8)).save(p / "task" / "a" / "x.png") or p / "task", "has no images"),
    ],
    ids=["missing folder", "empty class"],
)
def test_bad_data_is_one_clear_line(tmp_path, zoo_file, setup, expected):
    result = run("score", "--zoo", zoo_file, "--data", setup(tmp_path), "--cache", tmp_path / "c")
    assert result.exit_code != 0 and expected in result.output
    assert "Traceback" not in result.output


def test_unknown_model_is_reported_and_the_rest_ranked(tmp_path, digits_folder):
    z = save_zoo([ModelSpec(name="r18", source="timm", ref="resnet18", pretrained=False, input_size=32),
                  ModelSpec(name="typo", source="timm", ref="resnet5000", pretrained=False)], tmp_path / "z.yaml")
    result = run("score", "--zoo", z, "--data", digits_folder, "--cache", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert "typo was not ranked" in result.output and "resnet5000" in result.output
    assert "1 models ranked" in result.output


def test_kb_record_and_matrix(tmp_path):
    kb = tmp_path / "kb.sqlite"
    first = run("kb", "record", "resnet18", "cifar10", "--kind", "finetune_acc", "--value", "0.91", "--kb", kb)
    assert first.exit_code == 0
    assert run("kb", "record", "vit", "pets", "--kind", "finetune_acc", "--value", "0.88", "--kb", kb).exit_code == 0
    out = run("kb", "matrix", "--kind", "finetune_acc", "--kb", kb, "--csv", "-").output.splitlines()
    assert out[0] == "model,cifar10,pets"
    assert out[1] == "resnet18,0.91," and out[2] == "vit,,0.88"
    bad = run("kb", "record", "m", "t", "--kind", "finetune_acc", "--value", "nan", "--kb", kb)
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_rank_by_first_metric_over_the_models_that_have_it(tmp_path, digits_folder):
    z = save_zoo([ModelSpec(name="head", source="timm", ref="resnet18", pretrained=False, input_size=32),
                  ModelSpec(name="headless", source="timm", ref="resnet18", pretrained=False, input_size=32,
                            num_classes=0)], tmp_path / "z.yaml")
    result = run("score", "--zoo", z, "--data", digits_folder, "--cache", tmp_path / "c", "--metric", "leep,logme",
                 "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert out["ranked_by"] == "leep" and [r["model"] for r in out["ranking"]] == ["head"]
    assert out["not_ranked"][0]["model"] == "headless" and "logits" in out["not_ranked"][0]["reason"]


def test_knowledge_base_clash_is_one_line_after_the_ranking(tmp_path, digits_folder, zoo_file):
    other = tmp_path / "other" / "digits"  # same folder name, different content
    (other / "a").mkdir(parents=True)
    (other / "b").mkdir()
    for k in range(8):
        Image.new("RGB", (32, 32), (30 * k, 0, 0)).save(other / ("a" if k % 2 else "b") / f"{k}.png")
    kb = tmp_path / "kb.sqlite"
    args = ["--zoo", zoo_file, "--cache", tmp_path / "c", "--metric", "hscore", "--kb", kb]
    assert run("score", "--data", digits_folder, *args).exit_code == 0
    clash = run("score", "--data", other, *args)
    assert clash.exit_code != 0 and "ranking by hscore" in clash.output
    assert "--task" in clash.output and "Traceback" not in clash.output
    probe_run = run("score", "--data", digits_folder, *args, "--probe", "12", "--task", "digits-probe")
    assert probe_run.exit_code == 0, probe_run.output
    from zoorank.store import KnowledgeBase

    with KnowledgeBase(kb) as base:
        (res,) = base.results(model="mobilenet_v2-imagenet", task="digits-probe", kind="metric:hscore")
        assert res.provenance["probe"] != "all" and res.provenance["n_images"] == 12


def test_zoo_add_keeps_paths_relative_to_the_zoo_file(tmp_path, monkeypatch):
    import torch
    import torchvision

    (tmp_path / "models").mkdir()
    (tmp_path / "zoos").mkdir()
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "models" / "net.pt")
    z = tmp_path / "zoos" / "z.yaml"
    z.write_text("models:\n  - name: a\n    source: local\n    ref: ../models/net.pt\n    arch: torchvision:resnet18\n")
    monkeypatch.chdir(tmp_path)
    result = run("zoo", "add", "zoos/z.yaml", "local:models/net.pt", "--name", "b", "--arch", "torchvision:resnet18",
                 "--input-size", "32")
    assert result.exit_code == 0, result.output
    text = z.read_text()
    assert text.count("ref: ../models/net.pt") == 2  # the old entry untouched, the new one relative too
    shown = json.loads(run("zoo", "show", "zoos/z.yaml", "b", "--json").output)
    assert shown["source_classes"] == 3


@pytest.fixture
def small_zoo(tmp_path):
    return save_zoo([ModelSpec(name="r18", source="timm", ref="resnet18", pretrained=False, input_size=32),
                     ModelSpec(name="mnv3", source="timm", ref="mobilenetv3_small_050", pretrained=False,
                               input_size=32, seed=1)], tmp_path / "z.yaml")


def test_metric_all_says_which_metrics_it_left_out_and_what_the_table_shows(tmp_path, small_zoo, digits_folder):
    one = tmp_path / "one" / "only"
    one.mkdir(parents=True)
    for k in range(6):
        Image.new("RGB", (32, 32), (40 * k, 10, 0)).save(one / f"{k}.png")
    result = run("score", "--zoo", small_zoo, "--data", one.parent, "--cache", tmp_path / "c", "--metric", "all")
    assert result.exit_code == 0, result.output
    assert "metrics could not score every model and are left out of the ranking" in result.output
    assert "logme:" in result.output  # each dropped metric is named with its reason

    table = run("score", "--zoo", small_zoo, "--data", digits_folder, "--cache", tmp_path / "c", "--metric", "all")
    assert table.exit_code == 0, table.output
    assert "the table shows 5 of the" in table.output and "--json has every score" in table.output


def test_a_damaged_cache_entry_is_recomputed_and_the_user_told(tmp_path, small_zoo, digits_folder):
    cache = tmp_path / "c"
    assert run("extract", "--zoo", small_zoo, "--data", digits_folder, "--cache", cache).exit_code == 0
    (entry,) = [p for p in cache.rglob("*.npz")][:1]
    entry.write_bytes(entry.read_bytes()[:200])
    again = run("extract", "--zoo", small_zoo, "--data", digits_folder, "--cache", cache)
    assert again.exit_code == 0, again.output
    assert again.output.count("a damaged cache entry was deleted and recomputed") == 1
    assert len(list(cache.rglob("*.npz"))) == 2  # recomputed and stored again


def test_the_sweep_counts_images_passed_including_failed_and_cached_models(tmp_path, digits_folder):
    from zoorank.data import open_dataset
    from zoorank.store.feature_cache import FeatureCache
    from zoorank.zoo.sweep import run_sweep

    specs = [ModelSpec(name="r18", source="timm", ref="resnet18", pretrained=False, input_size=32),
             ModelSpec(name="typo", source="timm", ref="resnet5000", pretrained=False)]
    ds = open_dataset(digits_folder)
    for _ in range(2):  # cold, then served from the cache
        counts: list[int] = []
        run_sweep(specs, ds, metrics=[], cache=FeatureCache(tmp_path / "c"), batch_size=16, on_images=counts.append)
        assert sum(counts) == 2 * len(ds)
    counts = []
    run_sweep(specs[:1], ds, metrics=[], cache=FeatureCache(tmp_path / "c2"), batch_size=16, on_images=counts.append)
    assert counts == [16, 16, 16]  # one call per batch of the local executor
