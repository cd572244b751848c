"""The ZooBench evaluation harness: loading, leave-one-target-out runs, baselines, reports, discrimination."""

import json
import time
import zlib

import numpy as np
import pytest
import torch

from zoorank import evaluation as H
from zoorank import metrics as M
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.evaluation.adapters.baselines import PopularityBaseline, RandomBaseline
from zoorank.metric_sets import NOT_YET_BENCHMARKED, benchmarked_metrics
from zoorank.metrics.synthetic import make_task

from harness_cases import write_benchmark

torch.set_num_threads(1)

N, D, C = 150, 24, 5


class SyntheticProvider:
    """Seeded synthetic probe features whose class separation grows with the model's true accuracy."""

    def __init__(self, bench, *, headless=(), general=True, delay=0.0):
        self.bench, self.headless, self.delay = bench, set(headless), delay
        self.calls = 0
        if not general:
            self.general_features = None

    def labels(self, task):
        return make_task(N, D, C, separation=0.0, n_source_classes=8, n_general=8,
                         seed=zlib.crc32(task.encode())).labels

    def features(self, model, task):
        self.calls += 1
        time.sleep(self.delay)
        acc = self.bench.truth(task)[self.bench.models.index(model)]
        x = make_task(N, D, C, separation=2.0 * acc**2, n_source_classes=8, n_general=8,
                      seed=zlib.crc32(f"{model}/{task}".encode()))
        # reorder the rows so that they carry the task's labels (make_task shuffles them by seed)
        dst, src = np.argsort(self.labels(task), kind="stable"), np.argsort(x.labels, kind="stable")
        feats = np.empty_like(x.features)
        feats[dst] = x.features[src]
        logits = np.empty_like(x.source_probs)
        logits[dst] = np.log(np.maximum(x.source_probs, 1e-300))[src]
        return feats, (None if model in self.headless else logits)

    def general_features(self, model):
        return make_task(60, D, C, n_general=60, seed=zlib.crc32(model.encode())).general_features


MODELS = [f"m{i}" for i in range(6)]
TASKS = ["t0", "t1", "t2", "t3"]


@pytest.fixture
def synth(tmp_path):
    ft = np.random.default_rng(0).uniform(0.3, 0.95, (len(TASKS), len(MODELS)))
    root = write_benchmark(tmp_path / "bench", MODELS, TASKS, ft,
                           domains=["glyphs", "digits", "glyphs", "faces", "digits", "textures"],
                           task_domains={"t0": "digits", "t1": "glyphs", "t2": "Faces"})
    return H.load_benchmark(root), ft


# -------------------------------------------------------------------------------------------- loading


def test_within_restricts_the_benchmark_and_every_history(synth):
    bench, ft = synth
    sub = bench.within(["t3", "t1"])
    assert sub.tasks == ("t1", "t3") and sub.models == bench.models  # the benchmark's order
    np.testing.assert_array_equal(sub.matrix(), bench.matrix()[[1, 3]])
    assert sub.task_info["t1"] == bench.task_info["t1"]
    pop = PopularityBaseline()
    (rec,) = H.run(sub, [pop], SyntheticProvider(sub), ["t1"])
    # popularity on t1 inside the subset is the mean accuracy over t3 alone
    assert rec.weighted_tau == pytest.approx(R.weighted_tau(ft[3], ft[1]))
    with pytest.raises(InputError, match="at least 2 tasks"):
        bench.within(["t1", "t1"])
    with pytest.raises(InputError, match="unknown task 'nope'"):
        bench.within(["t1", "nope", "zzz"])  # the first unknown name, whatever the hash seed
    with pytest.raises(InputError, match="not one string"):
        bench.within("t1,t2")


def test_compare_records_names_each_difference():
    a = [H.Record("m", "t", 0.5, 0.4, 0.01, 3, 1.0), H.Record("m", "u", 0.1, 0.2, 0.0, 3, 1.0)]
    same = [H.Record("m", "t", 0.5 + 1e-9, 0.4, 0.01, 3, 99.0), H.Record("m", "u", 0.1, 0.2, 0.0, 3, 0.1)]
    assert H.compare_records(a, same) == []  # seconds are not compared; 1e-9 is within the tolerance
    moved = [H.Record("m", "t", 0.51, 0.4, 0.01, 4, 1.0)]
    assert H.compare_records(a, moved) == [
        "m on t: weighted_tau 0.5 against 0.51 committed",
        "m on t: forward_passes 3 against 4 committed",
        "m on u: only in the rerun",
    ]
    assert H.compare_records(a, moved, keys=[("m", "t")], tol=0.1) == ["m on t: forward_passes 3 against 4 committed"]


def test_load_benchmark(synth):
    bench, ft = synth
    assert bench.models == tuple(MODELS) and bench.tasks == tuple(TASKS)
    np.testing.assert_allclose(bench.truth("t2"), ft[2], atol=1e-6)
    np.testing.assert_allclose(bench.truth("t2", "linear_probe_acc"), 0.9 * ft[2], atol=1e-6)
    np.testing.assert_allclose(bench.matrix(), ft, atol=1e-6)
    assert bench.zoo["m3"].source_domain == "faces" and bench.zoo["m3"].params == 4000
    info = bench.task_info["t2"]
    assert (info.domain, info.n_classes, info.description) == ("Faces", C, "images of t2")
    assert info.extra == {"images_per_class": "30"}
    assert bench.task_info["t3"].domain is None
    with pytest.raises(InputError, match="unknown task 'nope'"):
        bench.truth("nope")
    with pytest.raises(InputError, match="unknown ground-truth kind"):
        bench.truth("t0", "top5")


GOOD_ZOO = "model,architecture,source_domain,init,params\na,resnet,x,scratch,10\nb,vit,y,imagenet,20\n"
GOOD_GT = "model,task,finetune_acc,linear_probe_acc\na,t,0.5,0.4\nb,t,0.7,0.6\n"


@pytest.mark.parametrize("zoo, gt, tasks, message", [
    (GOOD_ZOO, GOOD_GT.replace("finetune_acc,", ""), None, "missing column.*finetune_acc"),
    (GOOD_ZOO, GOOD_GT.replace("0.7,", "70,"), None, r"line 3: finetune_acc 70.0 is outside \[0, 1\]"),
    (GOOD_ZOO, GOOD_GT.replace("0.4", "nan"), None, "linear_probe_acc is 'nan', must be finite"),
    (GOOD_ZOO, GOOD_GT.replace("0.4", "abc"), None, "linear_probe_acc 'abc' is not a number"),
    (GOOD_ZOO, GOOD_GT + "a,t,0.5,0.5\n", None, "line 4: second row for model 'a' on task 't'"),
    (GOOD_ZOO, GOOD_GT + "c,t,0.5,0.5\n", None, "model 'c' is not in zoo.csv"),
    (GOOD_ZOO, GOOD_GT + "a,u,0.5,0.5\n", None, r"1 \(model, task\) pair\(s\) missing, e.g. model 'b' on task 'u'"),
    (GOOD_ZOO.replace(",20", ",2.5"), GOOD_GT, None, "params '2.5' must be a non-negative integer"),
    (GOOD_ZOO + "a,resnet,x,scratch,10\n", GOOD_GT, None, "model 'a' listed twice"),
    (GOOD_ZOO, GOOD_GT, "task,domain\nzzz,x\n", "task 'zzz' has no ground truth"),
    (GOOD_ZOO, GOOD_GT, "task,domain,n_classes\nt,x,1\n", "n_classes '1' must be an integer >= 2"),
    (GOOD_ZOO, "model,task,finetune_acc,linear_probe_acc\n", None, "ground_truth.csv: no rows"),
    (GOOD_ZOO, None, None, "ground truth: file .* not found"),
])
def test_bad_benchmark_csvs(tmp_path, zoo, gt, tasks, message):
    (tmp_path / "zoo.csv").write_text(zoo)
    if gt is not None:
        (tmp_path / "ground_truth.csv").write_text(gt)
    if tasks is not None:
        (tmp_path / "tasks.csv").write_text(tasks)
    with pytest.raises(InputError, match=message):
        H.load_benchmark(tmp_path)


def test_good_small_benchmark_and_missing_dir(tmp_path):
    (tmp_path / "zoo.csv").write_text(GOOD_ZOO)
    (tmp_path / "ground_truth.csv").write_text(GOOD_GT)
    bench = H.load_benchmark(tmp_path)
    np.testing.assert_array_equal(bench.truth("t"), [0.5, 0.7])
    assert bench.zoo["b"].init == "imagenet"
    with pytest.raises(InputError, match="not found"):
        H.load_benchmark(tmp_path / "absent")


# -------------------------------------------------------------------------------------------- running


def test_run_metrics_correlate_with_truth(synth):
    bench, ft = synth
    methods = H.make_methods("logme,hscore,leep,etran,ped,baseline:random,baseline:params,"
                             "baseline:popularity,baseline:source_match")
    provider = SyntheticProvider(bench)
    res = H.run(bench, methods, provider)
    by = {(r.method, r.task): r for r in res}
    # every method on every task, except source_match on the task that declares no domain
    assert len(res) == 9 * 4 - 1
    assert [(s.method, s.task) for s in res.skipped] == [("baseline:source_match", "t3")]
    assert provider.calls == len(MODELS) * len(TASKS)  # features cached across the methods of a task
    for r in res:  # DESIGN.md's keys in its order, then the images passed through the zoo
        assert list(r.to_dict()) == [*H.RECORD_KEYS, "image_passes"]
        assert r.image_passes == r.forward_passes * N
        assert -1 <= r.weighted_tau <= 1 and -1 <= r.pearson <= 1 and r.top1_regret >= 0 and r.seconds >= 0
        assert r.forward_passes == (0 if r.method.startswith("baseline:") else len(MODELS))
    # the harness's numbers are those of the ranking functions on the metric's own scores
    labels = provider.labels("t1")
    feats = [provider.features(m, "t1")[0] for m in MODELS]
    logme = M.compute_pool("logme", feats, labels)
    assert by[("logme", "t1")].weighted_tau == pytest.approx(R.weighted_tau(logme, ft[1]), abs=1e-6)
    assert by[("logme", "t1")].pearson == pytest.approx(R.pearson(logme, ft[1]), abs=1e-6)
    assert by[("logme", "t1")].top1_regret == pytest.approx(R.top1_regret(logme, ft[1]), abs=1e-6)
    etran = M.compute_pool("etran", feats, labels)  # the pool form
    assert by[("etran", "t1")].weighted_tau == pytest.approx(R.weighted_tau(etran, ft[1]), abs=1e-6)
    # features carry the signal, so the metrics rank far better than chance
    summ = {s.method: s for s in H.summary(res)}
    for name in ("logme", "hscore", "etran", "ped"):
        assert summ[name].weighted_tau > 0.6, name
        assert summ[name].weighted_tau > summ["baseline:random"].weighted_tau + 0.4
    assert abs(summ["baseline:random"].weighted_tau) < 0.2
    assert summ["logme"].n_tasks == 4 and summ["baseline:source_match"].n_tasks == 3
    assert summ["logme"].weighted_tau == pytest.approx(np.mean([by[("logme", t)].weighted_tau for t in TASKS]))


def test_source_match_and_params_baselines(synth):
    bench, ft = synth
    res = H.run(bench, H.make_methods(["baseline:source_match", "baseline:params"]), None)
    by = {(r.method, r.task): r for r in res}
    # t0 is "digits": m1 and m4 match; picking one of them at random costs the mean of their regrets
    assert by[("baseline:source_match", "t0")].top1_regret == pytest.approx(ft[0].max() - ft[0][[1, 4]].mean())
    # t2 declares "Faces": matched case-insensitively to m3 only
    assert by[("baseline:source_match", "t2")].top1_regret == pytest.approx(ft[2].max() - ft[2][3])
    logp = np.log10(1000.0 * np.arange(1, 7))
    assert by[("baseline:params", "t1")].pearson == pytest.approx(R.pearson(logp, ft[1]))
    assert by[("baseline:params", "t1")].weighted_tau == pytest.approx(R.weighted_tau(logp, ft[1]))


def test_popularity_by_hand(tmp_path):
    ft = np.array([[0.9, 0.5, 0.1],
                   [0.6, 0.8, 0.2],
                   [0.3, 0.4, 0.7]])
    bench = H.load_benchmark(write_benchmark(tmp_path, ["a", "b", "c"], ["t1", "t2", "t3"], ft))
    ctx = H.TaskContext("t1", bench, None)
    np.testing.assert_allclose(PopularityBaseline().scores("t1", ctx), [0.45, 0.6, 0.45], atol=1e-9)
    ctx = H.TaskContext("t3", bench, None, truth_kind="linear_probe_acc")
    np.testing.assert_allclose(PopularityBaseline().scores("t3", ctx), [0.9 * 0.75, 0.9 * 0.65, 0.9 * 0.15],
                               atol=1e-6)
    res = H.run(bench, [PopularityBaseline()], None)
    by = {r.task: r for r in res}
    # t1: [0.45, 0.6, 0.45] picks b (0.5 on t1, best 0.9); t2: [0.6, 0.45, 0.4] picks a (0.6, best 0.8);
    # t3: [0.75, 0.65, 0.15] picks a (0.3, best 0.7) and is the exact reverse of t3's ranking
    assert [by[t].top1_regret for t in ("t1", "t2", "t3")] == pytest.approx([0.4, 0.2, 0.4])
    assert by["t3"].weighted_tau == pytest.approx(-1.0) and by["t3"].pearson == pytest.approx(-1.0, abs=0.05)
    assert by["t1"].pearson == pytest.approx(np.corrcoef([0.45, 0.6, 0.45], ft[0])[0, 1])
    assert all(r.forward_passes == 0 for r in res)


def test_popularity_skipped_with_one_task(tmp_path):
    bench = H.load_benchmark(write_benchmark(tmp_path, ["a", "b"], ["t"], np.array([[0.5, 0.6]])))
    res = H.run(bench, [PopularityBaseline()], None)
    assert list(res) == [] and res.skipped[0].reason == "popularity needs at least one other target"


class Peeker:
    """A 'learner' that cheats: it reads the held-out task's ground truth."""

    name = "peeker"

    def scores(self, task, context):
        return context.history.truth(task)


class HonestLearner:
    """Learns from the other tasks only: remembers what it saw."""

    name = "honest"

    def __init__(self):
        self.seen = {}

    def scores(self, task, context):
        self.seen[task] = (context.history.tasks, context.history.matrix())
        assert context.history.task_info(task).task == task  # descriptions are not ground truth
        return context.history.matrix().max(axis=0)


def test_leave_one_target_out_is_enforced(synth):
    bench, ft = synth
    with pytest.raises(H.LeakageError, match="'t0' is held out"):
        H.run(bench, [Peeker()], None)  # never swallowed, even with errors="skip"
    learner = HonestLearner()
    H.run(bench, [learner], None)
    for j, t in enumerate(TASKS):
        tasks, mat = learner.seen[t]
        assert t not in tasks and len(tasks) == 3
        np.testing.assert_allclose(mat, np.delete(ft, j, axis=0), atol=1e-6)
    view = H.HistoryView(bench, "t2")
    np.testing.assert_allclose(view.truth("t0"), ft[0], atol=1e-6)
    with pytest.raises(H.LeakageError):
        view.truth("t2", "linear_probe_acc")


def test_random_baseline_is_deterministic(synth):
    bench, _ = synth
    a = H.run(bench, [RandomBaseline(seed=3)], None)
    b = H.run(bench, [RandomBaseline(seed=3)], None)
    c = H.run(bench, [RandomBaseline(seed=4)], None)
    assert [r.weighted_tau for r in a] == [r.weighted_tau for r in b]
    assert [r.weighted_tau for r in a] != [r.weighted_tau for r in c]
    ctx = H.TaskContext("t0", bench, None)
    s = RandomBaseline(seed=3, draws=7).scores("t0", ctx)
    assert s.shape == (7, len(MODELS))
    assert not np.array_equal(s, RandomBaseline(seed=3, draws=7).scores("t1", H.TaskContext("t1", bench, None)))
    # the record is the mean quality over the draws
    truth = bench.truth("t0")
    res = H.run(bench, [RandomBaseline(seed=3, draws=7)], None, tasks=["t0"])
    assert res[0].weighted_tau == pytest.approx(np.mean([R.weighted_tau(row, truth) for row in s]))
    with pytest.raises(InputError, match="draws"):
        RandomBaseline(draws=0)


def test_skips_and_failures(synth):
    bench, _ = synth
    res = H.run(bench, H.make_methods("leep,ped,logme"), SyntheticProvider(bench, headless={"m2"}, general=False),
                tasks=["t0"])
    assert [r.method for r in res] == ["logme"]
    reasons = {s.method: s.reason for s in res.skipped}
    assert reasons["leep"] == "leep needs source-head logits; headless model(s): m2"
    assert "ped needs general_features" in reasons["ped"]

    class Broken:
        name = "broken"

        def scores(self, task, context):
            return np.ones(3)  # wrong length

    res = H.run(bench, [Broken()], None, tasks=["t1"])
    assert res.skipped[0].reason.startswith("failed: InputError: broken on t1: scores have shape (3,)")
    with pytest.raises(InputError, match="scores have shape"):
        H.run(bench, [Broken()], None, errors="raise")
    with pytest.raises(InputError, match="given twice"):
        H.run(bench, [PopularityBaseline(), PopularityBaseline()], None)
    with pytest.raises(InputError, match="unknown task"):
        H.run(bench, [PopularityBaseline()], None, tasks=["t9"])
    res = H.run(bench, H.make_methods("logme"), None, tasks=["t0"])
    assert res.skipped[0].reason == "no feature provider was given"


def test_seconds_exclude_feature_extraction(synth):
    bench, _ = synth
    provider = SyntheticProvider(bench, delay=0.05)
    res = H.run(bench, H.make_methods("hscore"), provider, tasks=["t0"])
    assert provider.calls == len(MODELS)
    assert res[0].seconds < 0.05 * len(MODELS) / 2  # the 0.3 s of "extraction" is not the metric's


def test_make_methods():
    every = [m.name for m in H.make_methods("all")]
    benchmarked = benchmarked_metrics()
    assert every[: len(benchmarked)] == benchmarked
    assert not set(NOT_YET_BENCHMARKED) & set(every)  # not in "all" until the committed runs hold them
    assert [m.name for m in H.make_methods(list(NOT_YET_BENCHMARKED))] == list(NOT_YET_BENCHMARKED)  # still by name
    assert {"baseline:random", "baseline:params", "baseline:popularity", "baseline:source_match"} <= set(every)
    assert [m.name for m in H.make_methods("sfda, logme,sfda")] == ["sfda", "logme"]
    with pytest.raises(InputError, match="unknown method 'logmee'"):
        H.make_methods("logmee")
    with pytest.raises(InputError, match="no methods"):
        H.make_methods(" , ")
    H.register_method("honest-test", HonestLearner)
    try:
        assert "honest-test" in H.available_methods()
        assert isinstance(H.make_methods("honest-test")[0], HonestLearner)
    finally:
        H.unregister_method("honest-test")


# -------------------------------------------------------------------------------------------- reports


def test_json_round_trip_and_markdown(synth, tmp_path):
    bench, _ = synth
    res = H.run(bench, H.make_methods("hscore,baseline:popularity,baseline:source_match"), SyntheticProvider(bench))
    path = H.write_json(res, tmp_path / "out" / "bench.json")
    raw = json.loads(path.read_text())
    assert isinstance(raw, list) and len(raw) == len(res)
    assert all(list(d) == [*H.RECORD_KEYS, "image_passes"] for d in raw)
    assert H.read_json(path) == list(res)
    old = tmp_path / "old.json"  # records written before image passes were counted still read
    old.write_text(json.dumps([{k: v for k, v in d.items() if k != "image_passes"} for d in raw]))
    assert [r.image_passes for r in H.read_json(old)] == [None] * len(raw)
    (tmp_path / "bad.json").write_text(json.dumps([{"method": "x", "task": "t"}]))
    with pytest.raises(InputError, match="record 0 must have the keys"):
        H.read_json(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        H.read_json(tmp_path / "bad2.json")

    md = H.markdown(res)
    summ = H.summary(res)
    assert "| method | t0 | t1 | t2 | t3 | mean |" in md
    hs = next(r for r in res if r.method == "hscore" and r.task == "t2")
    row = next(line for line in md.splitlines() if line.startswith("| hscore | "))
    assert f"{hs.weighted_tau:.3f}" in row
    pop_row = next(line for line in md.splitlines() if line.startswith("| baseline:source_match | "))
    assert pop_row.split(" | ")[4] == "–"  # t3 declares no domain: skipped
    assert "### Skipped" in md and "the target declares no domain" in md
    assert [line.split(" | ")[0][2:] for line in md.splitlines()
            if line.startswith("| ") and " | 4 | " in line] == [s.method for s in summ if s.n_tasks == 4]
    transposed = H.markdown(res, rows="task")
    assert "| target | " in transposed and "| **mean** |" in transposed
    # records re-read from JSON render the same tables (without the skip list)
    assert H.markdown(H.read_json(path)).strip() == md.split("### Skipped")[0].strip()


# -------------------------------------------------------------------------------------------- discrimination


def test_discrimination_by_hand(tmp_path):
    ft = np.array([[0.9, 0.5, 0.1],
                   [0.6, 0.8, 0.2],
                   [0.1, 0.3, 0.7]])
    bench = H.load_benchmark(write_benchmark(tmp_path, ["a", "b", "c"], ["t1", "t2", "t3"], ft,
                                             params=[100, 200, 300]))
    d = H.discrimination(bench)
    assert d["per_task"]["t1"]["spread_points"] == pytest.approx(80.0)
    assert d["per_task"]["t2"]["spread_points"] == pytest.approx(60.0)
    assert d["per_task"]["t2"]["best_model"] == "b" and d["per_task"]["t3"]["best_model"] == "c"
    # rankings: t1 a>b>c, t2 b>a>c, t3 c>b>a; Kendall tau = (concordant - discordant) / 3
    assert d["pairwise_kendall"] == pytest.approx({"t1|t2": 1 / 3, "t1|t3": -1.0, "t2|t3": -1 / 3})
    assert d["mean_pairwise_kendall"] == pytest.approx(-1 / 3)
    # params ascend a<b<c: Spearman with t1 is -1, with t2 is -0.5, with t3 is +1
    assert [d["per_task"][t]["params_spearman"] for t in ("t1", "t2", "t3")] == pytest.approx([-1.0, -0.5, 1.0])
    assert d["mean_params_spearman"] == pytest.approx(-1 / 6)
    assert d["distinct_best_models"] == 3
    assert json.loads(json.dumps(d)) == d
    assert H.discrimination_problems(d) == []
    md = H.discrimination_markdown(d)
    assert "| t1 | a | 80.0 | 10.0 | 90.0 | -1.00 |" in md and "mean pairwise Kendall tau" in md


def test_discrimination_flags_a_bad_zoo(tmp_path):
    # bigger is better everywhere and the spread is tiny: every check fails
    ft = np.array([[0.50, 0.52, 0.55], [0.60, 0.61, 0.64], [0.70, 0.71, 0.73]])
    bench = H.load_benchmark(write_benchmark(tmp_path, ["a", "b", "c"], ["t1", "t2", "t3"], ft))
    d = H.discrimination(bench)
    assert d["mean_pairwise_kendall"] == pytest.approx(1.0) and d["mean_params_spearman"] == pytest.approx(1.0)
    problems = H.discrimination_problems(d)
    assert len(problems) == 3
    assert problems[0].startswith("only 0 of 3 targets spread by >= 15 points")
    assert "best model hardly depends" in problems[1] and "bigger-is-better" in problems[2]


# -------------------------------------------------------------------------------------------- the toy zoo


class ToyProvider:
    def __init__(self, zoo):
        self.by = {m.spec.name: m for m in zoo.models}
        self.y = zoo.probe_labels

    def labels(self, task):
        return self.y

    def features(self, model, task):
        m = self.by[model]
        return m.features, np.log(np.maximum(m.source_probs, 1e-300))

    def general_features(self, model):
        return self.by[model].general_features


def test_toy_zoo_every_method(tmp_path):
    from zoorank.datasets.toyzoo import build_toy_zoo

    zoo = build_toy_zoo(0)
    names = [m.spec.name for m in zoo.models]
    ft = np.array([[m.finetune_acc for m in zoo.models]])
    bench = H.load_benchmark(write_benchmark(tmp_path, names, ["rotated-digits"], ft,
                                             params=[m.params for m in zoo.models],
                                             domains=[m.spec.source for m in zoo.models],
                                             task_domains={"rotated-digits": "digits"}))
    res = H.run(bench, H.make_methods("all"), ToyProvider(zoo), errors="raise")
    got = {r.method for r in res}
    assert set(benchmarked_metrics()) <= got  # every metric of "all" scored the toy zoo, PED included
    # a single target: every method that learns from other targets skips it, and only those
    assert {s.method for s in res.skipped} == {"baseline:popularity", "fennec", "spider", "spider@k3", "spider@k5",
                                               "metarank", "pipeline@k3", "pipeline@k5"}
    feats = [m.features for m in zoo.models]
    for name in ("logme", "sfda", "ncti"):
        rec = next(r for r in res if r.method == name)
        s = M.compute_pool(name, feats, zoo.probe_labels)
        assert rec.weighted_tau == pytest.approx(R.weighted_tau(s, ft[0]), abs=1e-6)
        assert rec.forward_passes == len(names)
    leep = next(r for r in res if r.method == "leep")
    s = M.compute_pool("leep", [None] * len(names), zoo.probe_labels, source_probs=[m.source_probs for m in zoo.models])
    assert leep.weighted_tau == pytest.approx(R.weighted_tau(s, ft[0]), abs=1e-6)


def test_checkpoint_resume_equals_uninterrupted_run(synth, tmp_path):
    bench, _ = synth
    methods = H.make_methods("logme,hscore,baseline:popularity")
    full = H.run(bench, methods, SyntheticProvider(bench))

    class Interrupt(Exception):
        pass

    ckpt = H.Checkpoint(tmp_path / "run.partial.jsonl", bench)
    seen = []

    def add_then_stop(result):
        ckpt.add(result)
        seen.append(result)
        if len(seen) == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        H.run(bench, methods, SyntheticProvider(bench), on_result=add_then_stop)
    with open(ckpt.path, "a") as fh:
        fh.write('{"method": "torn')  # the line being written when the run was killed
    done = ckpt.load()
    assert len(done) == 5
    provider = SyntheticProvider(bench)
    resumed = H.run(bench, methods, provider, done=done, on_result=ckpt.add)
    key = [(r.method, r.task, round(r.weighted_tau, 12), r.forward_passes) for r in full]
    assert [(r.method, r.task, round(r.weighted_tau, 12), r.forward_passes) for r in resumed] == key
    assert provider.calls < len(MODELS) * len(TASKS)  # the finished folds were not evaluated again
    # a record written without its newline (valid JSON, torn before the end of the line) is cut off too
    with open(ckpt.path, "a") as fh:
        fh.write(json.dumps({"method": "x", "task": "t0", "reason": "torn"}))
    assert len(ckpt.load()) == len(full) + len(full.skipped)
    assert ckpt.path.read_text().endswith("\n")
    empty = H.Checkpoint(tmp_path / "empty.jsonl", bench)
    empty.path.write_text("")
    assert empty.load() == []
    empty.add(full[0])
    assert [r.method for r in empty.load()] == [full[0].method]
    other = write_benchmark(tmp_path / "other", MODELS, TASKS, np.full((len(TASKS), len(MODELS)), 0.5))
    with pytest.raises(InputError, match="checkpoint of another benchmark"):
        H.Checkpoint(ckpt.path, H.load_benchmark(other)).load()


def test_offline_seconds_are_not_online_seconds(synth):
    bench, _ = synth

    class SlowFit:
        name = "slowfit"

        def scores(self, task, context):
            t0 = time.perf_counter()
            time.sleep(0.2)  # "fitting" on the other targets
            context.offline_seconds += time.perf_counter() - t0
            return np.arange(len(context.models), dtype=float)

    res = H.run(bench, [SlowFit()], None, tasks=["t0"])
    assert res[0].seconds < 0.1


def test_metric_scores_are_stored_by_content_with_their_compute_time(synth, tmp_path, monkeypatch):
    from zoorank.store.scores import ScoreStore

    bench, _ = synth
    store = ScoreStore(tmp_path / "scores")
    first = H.run(bench, [H.MetricMethod("logme", store=store)], SyntheticProvider(bench), tasks=["t0", "t1"])
    calls = []
    real = M.score_zoo
    monkeypatch.setattr(M, "score_zoo", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    again = H.run(bench, [H.MetricMethod("logme", store=ScoreStore(tmp_path / "scores"))], SyntheticProvider(bench),
                  tasks=["t0", "t1"])
    assert calls == []  # served from disk by a fresh store
    for a, b in zip(first, again, strict=True):
        assert a.weighted_tau == b.weighted_tau and a.forward_passes == b.forward_passes
        assert b.seconds == pytest.approx(a.seconds, abs=0.05)  # the compute time is replayed, not ~0
    assert first[0].seconds > 0

    class Shifted(SyntheticProvider):
        def features(self, model, task):
            f, lg = super().features(model, task)
            return f + 1.0, lg  # other features: another key (LogME is not shift-invariant in its evidence)

    H.run(bench, [H.MetricMethod("logme", store=store)], Shifted(bench), tasks=["t0"])
    assert calls == ["logme"]
    H.run(bench, [H.MetricMethod("leep", store=store)], SyntheticProvider(bench), tasks=["t0"])
    H.run(bench, [H.MetricMethod("leep", store=store)], Shifted(bench), tasks=["t0"])
    assert calls == ["logme", "leep"]  # LEEP reads only the logits: the shifted features hit the same entry


def test_metric_choice_table_against_average_best_random_and_oracle():
    from zoorank.datasets.zoobench.report import metric_choice_markdown

    taus = {"t0": {"logme": 0.5, "sfda": 0.3}, "t1": {"logme": 0.6, "sfda": 0.2}, "t2": {"logme": 0.1, "sfda": 0.9}}
    recs = [H.Record(m, t, v, 0.0, 0.0, 3, 0.1) for t, d in taus.items() for m, v in d.items()]
    recs += [H.Record("metarank", t, v, 0.0, 0.0, 3, 0.1) for t, v in (("t0", 0.5), ("t1", 0.2), ("t2", 0.9))]
    md = metric_choice_markdown(H.RunResult(recs))
    # average-best, leave-one-target-out: t0 -> mean over t1, t2: logme 0.35, sfda 0.55 -> sfda (0.3); t1 -> sfda
    # (0.2); t2 -> logme (0.1). Means: pick 0.533, average-best 0.2, random 0.433, oracle 0.667
    assert "| t0 | 0.500 | sfda (0.300) | 0.400 | logme (0.500) |" in md
    assert "| t2 | 0.900 | logme (0.100) | 0.500 | sfda (0.900) |" in md
    assert "pick 0.533, average-best 0.200, random 0.433, oracle 0.667; gap closed 71 %" in md
    assert "W/T/L against the average-best 2/1/0" in md
    assert metric_choice_markdown(H.RunResult(recs[:6])) == ""  # no MetaRank records: no table


def test_score_store_scores_a_zoo_once_per_content(tmp_path, monkeypatch):
    from zoorank.store.scores import ScoreStore

    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(30, 4)) for _ in range(3)]
    y = np.repeat(np.arange(3), 10)
    calls = []
    real = M.score_zoo
    monkeypatch.setattr(M, "score_zoo", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = ScoreStore(tmp_path).score_zoo("logme", feats, [None] * 3, y)
    again = ScoreStore(tmp_path).score_zoo("logme", feats, [None] * 3, y)  # a new process: from disk
    assert calls == ["logme"] and np.array_equal(first, again)
    ScoreStore(tmp_path).score_zoo("logme", feats, [None] * 3, y[::-1].copy())  # other labels: computed
    assert calls == ["logme", "logme"]


def test_live_provider_times_each_methods_own_forward_passes(synth, tmp_path, monkeypatch):
    from zoorank.store.scores import ScoreStore

    bench, _ = synth
    store = ScoreStore(tmp_path / "scores")
    stored = H.run(bench, [H.MetricMethod("hscore", store=store)], SyntheticProvider(bench), tasks=["t0"])
    calls = []
    real = M.score_zoo
    monkeypatch.setattr(M, "score_zoo", lambda *a, **k: calls.append(a[0]) or real(*a, **k))

    class TwoModels:
        name = "two"

        def scores(self, task, context):
            context.features("m0"), context.features("m1")
            return np.arange(len(context.models), dtype=float)

    class FitsOnHistory:  # reads every other target offline, one model of the target inside the fit, one after
        name = "fits"

        def scores(self, task, context):
            context.offline(lambda: [context.history.features(m, t) for t in context.history.tasks for m in MODELS]
                            + [context.features("m2")])
            context.features("m3")
            return np.arange(len(context.models), dtype=float)

    history, live = SyntheticProvider(bench, delay=0.05), SyntheticProvider(bench, delay=0.1)
    methods = [H.MetricMethod("hscore", store=store), TwoModels(), FitsOnHistory()]
    res = {r.method: r for r in H.run(bench, methods, history, tasks=["t0"], live_provider=live)}
    assert live.calls == len(MODELS) + 2 + 2  # nothing shared between methods: each pays its own passes
    assert history.calls == 3 * len(MODELS)  # the other targets, read through the history provider
    assert calls == ["hscore"]  # computed on the spot, not replayed from the store
    assert res["hscore"].forward_passes == stored[0].forward_passes == len(MODELS)
    assert res["hscore"].weighted_tau == stored[0].weighted_tau
    assert res["hscore"].seconds >= 0.1 * len(MODELS) and res["two"].seconds >= 0.2
    # online: the two target passes (m2 read inside the fit still waits for its pass); not the 0.9 s of history
    assert 0.2 <= res["fits"].seconds < 0.6
    quick = {r.method: r for r in H.run(bench, methods[1:], SyntheticProvider(bench, delay=0.1), tasks=["t0"])}
    assert quick["two"].seconds < 0.1  # without a live provider, extraction is kept out


def test_an_encoder_that_is_a_zoo_model_shares_its_pass(synth):
    bench, _ = synth

    class Encoding(SyntheticProvider):
        encoder_model = "m3"

        def encoder_features(self, task):
            return self.features(self.encoder_model, task)[0], self.labels(task)

    class UsesBoth:
        name = "both"

        def __init__(self, model):
            self.model = model

        def scores(self, task, context):
            enc, y = context.encoder_features()
            feats, _ = context.features(self.model)
            assert np.array_equal(y, context.labels()) and (self.model != "m3" or np.array_equal(enc, feats))
            return np.arange(len(context.models), dtype=float)

    for model, calls, passes in (("m3", 1, 1), ("m0", 2, 1)):
        provider = Encoding(bench)
        res = H.run(bench, [UsesBoth(model)], provider, tasks=["t0"], errors="raise")
        assert provider.calls == calls and res[0].forward_passes == passes


class RowsProvider(SyntheticProvider):
    """The synthetic provider that can run a model on part of the probe set (``rows``), as ZooBench's can."""

    def __init__(self, bench, **kw):
        super().__init__(bench, **kw)
        self.rows_calls = []

    def features(self, model, task, rows=None):
        feats, logits = super().features(model, task)
        if rows is None:
            return feats, logits
        self.rows_calls.append((model, task, len(rows)))
        return feats[rows], None if logits is None else logits[rows]


def test_rank_coarse_is_popularity_without_descriptors_and_rank_default_runs_a_quarter(synth):
    from zoorank.data import fraction_rows

    bench, _ = synth
    provider = RowsProvider(bench)
    res = H.run(bench, H.make_methods("rank:coarse,rank:default,baseline:popularity"), provider, errors="raise")
    rec = {(r.method, r.task): r for r in res}
    quarter = len(fraction_rows(provider.labels("t0"), 0.25))
    for t in TASKS:  # no proxy encoder: the prior is the population mean, i.e. popularity
        assert rec[("rank:coarse", t)].weighted_tau == pytest.approx(rec[("baseline:popularity", t)].weighted_tau)
        assert rec[("rank:coarse", t)].forward_passes == 0 and rec[("rank:coarse", t)].image_passes == 0
        d = rec[("rank:default", t)]
        assert d.forward_passes == len(MODELS) and d.image_passes == len(MODELS) * quarter
    # the knowledge base of every fold holds the other targets' scores at each probe fraction (the links' data)
    eighth = len(fraction_rows(provider.labels("t0"), 0.125))
    assert {n for _, _, n in provider.rows_calls} == {quarter, eighth}
    assert {t for _, t, _ in provider.rows_calls} == set(TASKS)
