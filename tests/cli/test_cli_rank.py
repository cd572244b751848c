"""The learning loop end to end, offline: score and rank tasks into a knowledge base, record fine-tuned
accuracies, ``zoorank fit`` the rankers from it, then ``zoorank rank`` a new task with a budget."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from cli_cases import payload, run
from zoorank.zoo import ModelSpec, offline_mobilenet_v2_spec, save_zoo

TIMM = ["resnet18", "mobilenetv3_small_050", "convnext_atto"]
TASKS = {"low": (0, 1, 2), "high": (7, 8, 9), "mid": (3, 4, 5, 6), "new": (1, 5, 9)}




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    d = load_digits()
    folders = {}
    for name, digits in TASKS.items():
        for k in digits:
            (root / name / f"digit{k}").mkdir(parents=True)
            for i, j in enumerate(np.flatnonzero(d.target == k)[:10]):
                Image.fromarray((d.images[j] * 255 / 16).astype(np.uint8)).resize((32, 32)).save(
                    root / name / f"digit{k}" / f"{i}.png")
        folders[name] = root / name
    specs = [offline_mobilenet_v2_spec(input_size=32)] + [
        ModelSpec(name=n, source="timm", ref=n, pretrained=False, input_size=32, seed=i) for i, n in enumerate(TIMM)]
    return root, folders, save_zoo(specs, root / "zoo.yaml")


def test_fit_from_the_knowledge_base_then_rank_with_a_budget(setup, monkeypatch):
    root, folders, zoo = setup
    monkeypatch.setenv("ZOORANK_CACHE", str(root / "zoorank-cache"))
    kb, cache, rankers = root / "kb.sqlite", root / "cache", root / "rankers"
    models = ["mobilenet_v2-imagenet", *TIMM]
    missing = run("fit", "--kb", kb, "--out", rankers)  # no knowledge base yet: nothing is created
    assert missing.exit_code != 0 and "does not exist" in missing.output and not kb.exists()
    run("kb", "record", "mobilenet_v2-imagenet", "low", "--kind", "metric:logme", "--value", "1.0", "--kb", kb)
    empty = run("fit", "--kb", kb, "--out", rankers)  # one model recorded: a clear message
    assert empty.exit_code != 0 and "record results of at least 2" in empty.output
    for t, name in enumerate(("low", "high", "mid")):
        r = run("score", "--zoo", zoo, "--data", folders[name], "--cache", cache, "--metric",
                "fda,nce,leep,logme,hscore,sfda", "--kb", kb, "--task", name)
        assert r.exit_code == 0, r.output
        # no rankers yet: every model runs, and the task's proxy vector, task token and card are recorded
        r = run("rank", "--zoo", zoo, "--data", folders[name], "--cache", cache, "--kb", kb, "--task", name,
                "--rankers", root / "none", "--json")
        assert r.exit_code != 0 and "zoorank fit" in r.output  # an explicit --rankers that does not exist
        r = run("rank", "--zoo", zoo, "--data", folders[name], "--cache", cache, "--kb", kb, "--task", name, "--json",
                "--description", f"handwritten digits {TASKS[name]}")
        assert r.exit_code == 0, r.output
        for i, m in enumerate(models):  # the user fine-tuned every model and records the truth
            acc = 0.9 - 0.1 * ((i + t) % 4)
            assert run("kb", "record", m, name, "--kind", "finetune_acc", "--value", acc, "--kb", kb).exit_code == 0
    fitted = run("fit", "--kb", kb, "--out", rankers, "--json")
    assert fitted.exit_code == 0, fitted.output
    info = payload(fitted.output)
    assert info["skipped"] == {} and info["models"] == 4
    assert info["info"]["fennec"]["tasks"] == 3 and info["info"]["spider"]["tasks"] == 3
    assert info["info"]["belief"]["tasks"] == 3
    grow = run("fit", "--kb", kb, "--out", root / "nowhere", "--incremental")  # nothing fitted there to grow
    assert grow.exit_code != 0 and "without --incremental first" in " ".join(grow.output.split())
    assert info["info"]["encoder"]["name"] == "mobilenet_v2-imagenet"  # what made the proxy vectors and tokens
    other = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                "--encoder", "resnet18")  # a zoo member as the encoder: not the one the rankers learned from
    assert other.exit_code == 2 and "fitted with the encoder 'mobilenet_v2-imagenet'" in " ".join(other.output.split())
    out = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers, "--budget", 2,
              "--json", "--report", root / "report.html")
    assert out.exit_code == 0, out.output
    res = payload(out.output)
    assert res["forward_passes"] == 2 and res["budget"] == 2
    assert sorted(r["model"] for r in res["ranking"]) == sorted(models)
    assert {s["name"] for s in res["stages"]} == {"prior", "probe stage"}  # the belief ranker's job
    ran = [r for r in res["ranking"] if r["probe_images"] > 0]
    assert len(ran) == 2 and all(r["low"] < r["score"] < r["high"] for r in res["ranking"])
    assert res["metric"] == "reg_hscore+etran+parc" and res["labels_used"] and res["interval_level"] == 0.8
    assert (root / "report.html").is_file()
    auto = payload(run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                       "--json").output)  # the default: every model, on a quarter of the probe where a link says
    assert auto["forward_passes"] == len(models)
    assert any("no link fitted for 25%" in n for n in auto["notes"])  # this knowledge base holds full probes only
    # the user already fine-tuned two models on this dataset: they are not run, keep their accuracy, and inform
    (root / "known.csv").write_text("model,accuracy\nresnet18,0.91\nconvnext_atto,0.42\n")
    for given in ("resnet18=0.91, convnext_atto=0.42", root / "known.csv"):
        told = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers, "--known",
                   given, "--json", "--report", root / "known.html")
        assert told.exit_code == 0, told.output
        res = payload(told.output)
        assert res["known_accuracies"] == {"resnet18": 0.91, "convnext_atto": 0.42}
        rows = {r["model"]: r for r in res["ranking"]}
        assert rows["resnet18"]["probe_images"] == 0 == rows["convnext_atto"]["probe_images"]
        # near the given values (3 tasks of history make a stiff covariance: the probe's evidence pulls a little)
        assert abs(rows["resnet18"]["score"] - 0.91) < 0.05 and abs(rows["convnext_atto"]["score"] - 0.42) < 0.05
        width = {m: r["high"] - r["low"] for m, r in rows.items()}
        assert max(width["resnet18"], width["convnext_atto"]) < min(w for m, w in width.items()
                                                                     if m not in ("resnet18", "convnext_atto"))
        assert res["forward_passes"] == len(models) - 2 and "(known)" in (root / "known.html").read_text()
    typo = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers, "--known",
               "resnet19=0.9")
    assert typo.exit_code == 2 and "'resnet19': not a model of the zoo" in " ".join(typo.output.split())
    pct = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers, "--known",
              "resnet18=91")
    assert pct.exit_code == 2 and "(0.87, not 87)" in " ".join(pct.output.split())
    legacy_known = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                       "--pipeline", "--known", "resnet18=0.9")
    assert legacy_known.exit_code == 2 and "leave out --pipeline" in " ".join(legacy_known.output.split())
    # the knowledge base kept each ranked model's class centres: Spider re-ranks the top K with specific tokens
    legacy = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                 "--pipeline", "--budget", 2, "--json")
    assert legacy.exit_code == 0, legacy.output
    res = payload(legacy.output)
    assert res["forward_passes"] == 2 and "prior" not in {s["name"] for s in res["stages"]}
    assert not any("no specific projection" in n for n in res["notes"]), res["notes"]
    assert sum(r.get("fine:spider") is not None for r in res["ranking"]) == 2, res["ranking"][0]
    coarse = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                 "--budget", 0, "--no-labels", "--json")
    res0 = payload(coarse.output)
    assert res0["forward_passes"] == 0 and not res0["labels_used"]
    assert all("coarse:spider" not in r for r in res0["ranking"])  # Spider needs labels
    table = run("rank", "--zoo", zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                "--budget", "all")
    assert table.exit_code == 0 and "forward passes" in table.output and "total" in table.output
    # an open zoo: one fitted model left out, two random-init models the rankers never saw (cold, run first)
    cold_specs = [ModelSpec(name=n, source="timm", ref=n, pretrained=False, input_size=32, seed=7 + i)
                  for i, n in enumerate(("resnet10t", "mobilenetv3_small_075"))]
    kept = [offline_mobilenet_v2_spec(input_size=32)] + [
        ModelSpec(name=n, source="timm", ref=n, pretrained=False, input_size=32, seed=i)
        for i, n in enumerate(TIMM) if n != "convnext_atto"]
    open_zoo = save_zoo(kept + cold_specs, root / "open.yaml")
    opened = run("rank", "--zoo", open_zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                 "--budget", 3, "--json", "--report", root / "open.html")
    assert opened.exit_code == 0, opened.output
    res = payload(opened.output)
    assert sorted(res["cold_models"]) == ["mobilenetv3_small_075", "resnet10t"]
    assert sorted(r["model"] for r in res["ranking"]) == sorted([*models[:3], "mobilenetv3_small_075", "resnet10t"])
    assert {r["model"] for r in res["ranking"] if r["cold"]} == set(res["cold_models"])
    ran = {r["model"] for r in res["ranking"] if r["probe_images"] > 0}
    assert len(ran) == 3 and set(res["cold_models"]) <= ran  # the cold ones run first
    assert any("have no history" in n for n in res["notes"])
    assert "(cold)" in (root / "open.html").read_text()
    shown = run("rank", "--zoo", open_zoo, "--data", folders["new"], "--cache", cache, "--rankers", rankers,
                "--budget", 3)
    assert shown.exit_code == 0 and shown.output.count("(cold)") >= 2
    chart = run("explain", "mobilenet_v2-imagenet", "--kb", kb, "--rankers", rankers, "--clusters", 3,
                "--compare", "resnet18", "--out", root / "chart", "--json")
    assert chart.exit_code == 0, chart.output
    got = payload(chart.output)
    assert set(got["affinities"]) == {"mobilenet_v2-imagenet", "resnet18"} and len(set(got["clusters"].values())) == 3
    assert (root / "chart.png").stat().st_size > 5000 and (root / "chart.svg").is_file()
    assert "fewer than 3" not in chart.output
