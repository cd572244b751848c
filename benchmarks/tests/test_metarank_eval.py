"""MetaRank (arXiv 2511.21007): cards, encoders, losses, meta-predictor, meta-dataset, harness adapter, CLI."""


import numpy as np
import pytest
import torch

from benchmarks import metarank_eval as E
from zoorank import evaluation as H
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.methods.metarank import (
    MetaRank,
)

from metarank_cases import FAST, METRICS3, TASKS, Provider, planted_records

torch.set_num_threads(1)


def test_planted_best_metric_depends_on_a_word():
    recs = planted_records(16)
    rows = E.leave_one_out(recs, lambda: MetaRank(encoder="hashing", **FAST))
    s = E.summarize(rows)
    assert s["n"] == 16
    assert s["pick_tau"] > s["average_best_tau"] + 0.1  # beats the average-best metric (logme) ...
    assert s["gap_closed"] > 0.5  # ... and closes more than half of the gap to the oracle
    assert {r.average_best for r in rows} == {"logme"}
    assert s["top3_hit"] == 1.0 and 0.0 <= s["ndcg3"] <= 1.0
    for r in rows:
        assert r.random_tau <= r.oracle_tau and r.pick_tau <= r.oracle_tau + 1e-12
    # conventional meta-features cannot see the word: the text version must do better
    meta = E.summarize(E.leave_one_out(recs, lambda: MetaRank(encoder="hashing", features="meta", **FAST)))
    assert s["pick_tau"] > meta["pick_tau"]


def test_trains_from_an_external_csv_alone(tmp_path):
    path = tmp_path / "external.csv"
    rows = ["dataset,description,metric,quality,metric_description"]
    published = {"leep": "LEEP", "hscore": "HScore", "logme": "LogME"}
    for r in planted_records(16, seed=1):
        rows.append(f'{r.dataset},"{r.description}",{published[r.metric]},{r.quality},')
    rows.append('d0,,MyMetric,0.1,"Metric: MyMetric. Measures: something new."')
    rows.append('d1,,MyMetric,0.3,')
    path.write_text("\n".join(rows) + "\n")
    recs, texts = E.read_external_csv(path)
    assert {r.metric for r in recs} == {"leep", "hscore", "logme", "mymetric"}
    assert texts == {"mymetric": "Metric: MyMetric. Measures: something new."}
    assert all(r.source == "external" for r in recs)
    model = MetaRank(encoder="hashing", metric_texts=texts, **FAST).fit(recs)  # no benchmark, no published table
    assert model.rank_metrics("Images: pictures of textures.", list(METRICS3)).top == "leep"
    assert model.rank_metrics("Images: pictures of digits.", list(METRICS3)).top == "hscore"
    # round trip through the writer
    E.write_external_csv(recs, tmp_path / "again.csv")
    again, _ = E.read_external_csv(tmp_path / "again.csv")
    assert [(r.dataset, r.metric, r.quality) for r in again] == [(r.dataset, r.metric, r.quality) for r in recs]
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,description,metric\nd,x,logme\n")
    with pytest.raises(InputError, match="missing column"):
        E.read_external_csv(bad)
    bad.write_text("dataset,description,metric,quality\nd,x,logme,1.7\n")
    with pytest.raises(InputError, match=r"line 2.*\[-1, 1\]"):
        E.read_external_csv(bad)
    bad.write_text("dataset,description,metric,quality\nd,,logme,0.5\n")
    with pytest.raises(InputError, match="no description"):
        E.read_external_csv(bad)


def test_planted_word_with_the_real_encoder(minilm):
    rows = E.leave_one_out(planted_records(16, seed=2), lambda: MetaRank(encoder=minilm, **FAST))
    s = E.summarize(rows)
    assert s["pick_tau"] > s["average_best_tau"] + 0.1 and s["gap_closed"] > 0.5


@pytest.fixture(scope="module")
def tllib_records():
    try:
        return E.published_records(("tllib",))
    except InputError as exc:
        pytest.skip(f"published ground truth not available: {exc}")


def test_published_tllib_meta_dataset(tllib_records):
    by = {(r.dataset, r.metric): r for r in tllib_records}
    assert len({r.dataset for r in tllib_records}) == 8
    assert {r.metric for r in tllib_records} == {"hscore", "leep", "logme", "nce"}
    assert ("tllib:DTD", "nce") not in by  # flagged suspect in the source
    from benchmarks.published import load_zoo

    zoo = load_zoo("tllib")
    j = zoo.datasets.index("Aircraft")
    assert by[("tllib:Aircraft", "logme")].quality == pytest.approx(R.weighted_tau(zoo.scores["LogME"][:, j],
                                                                                   zoo.acc[:, j]))
    assert by[("tllib:OxfordIIITPets", "leep")].group == "pets"
    assert "37 classes" in by[("tllib:OxfordIIITPets", "leep")].description


def test_leave_one_dataset_out_on_the_tllib_table_runs(tllib_records):
    rows = E.leave_one_out(tllib_records, lambda: MetaRank(encoder="hashing", **FAST))
    assert sorted(r.dataset for r in rows) == sorted({r.dataset for r in tllib_records})
    for r in rows:
        q = r.qualities
        assert r.pick in q and r.oracle_tau == max(q.values()) and r.random_tau == pytest.approx(np.mean(list(
            q.values())))
        assert r.group not in {n.split(" (")[0] for n in r.reason.split(": ", 1)[-1].split("; ")}
    s = E.summarize(rows)
    assert s["random_tau"] <= s["oracle_tau"] and 0 <= s["ndcg3"] <= 1 and s["n"] == 8
    assert all(r.nearest_pick in r.qualities and r.nearest_tau == r.qualities[r.nearest_pick] for r in rows)
    stab = E.published_stability(("tllib",), draws=20)
    assert len(stab) == 8 and all(0.0 <= x["p_best_stays"] <= 1.0 and x["full_gap"] >= 0 for x in stab)
    assert next(x for x in stab if x["dataset"] == "tllib:DTD")["metrics"] == ["hscore", "leep", "logme"]
    md = E.markdown_section({"TLlib": {"listnet (text)": rows}}, command="test", extra=E.stability_markdown(stab))
    assert "| listnet (text) | 8 |" in md and "tllib:Aircraft" in md and "stays best" in md


def test_benchmark_meta_dataset_and_leave_one_target_out(bench):
    meta = E.BenchmarkMetaData(["logme", "hscore", "lfc"], cache_dir=False, source="zoobench")
    recs = E.benchmark_records(bench, Provider(bench), meta=meta)
    full = [r for r in recs if r.source == "zoobench"]
    assert {r.dataset for r in full} == set(TASKS) and all(r.weight == 1.0 for r in full)
    subs = [r for r in recs if r.source == "zoobench:subtask"]
    assert subs and all(r.weight == 0.5 and r.group == r.dataset.split("/")[0] for r in subs)
    assert all("Few-shot: 5 images per class" in r.description for r in subs if r.dataset.endswith("fewshot5"))
    # the quality of a full target is the weighted tau of the metric's scores against its fine-tuned accuracies
    provider = Provider(bench)
    t = "t2"
    scores = H.MetricMethod("logme").scores(t, H.TaskContext(t, bench, provider))
    r = next(r for r in full if r.dataset == t and r.metric == "logme")
    assert r.quality == pytest.approx(R.weighted_tau(scores, bench.truth(t)))
    rows = E.leave_one_out(recs, lambda: MetaRank(encoder="hashing", **FAST))
    assert sorted(r.dataset for r in rows) == TASKS  # sub-tasks are trained on, never evaluated
    for row in rows:
        assert row.group not in row.reason.split("nearest historical datasets: ", 1)[-1]
