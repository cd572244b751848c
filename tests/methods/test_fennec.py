"""Fennec: NMF (equation 4), fold-in, the meta regression (8, 9), the merged ranker (6, 7, 10), persistence, and
the leave-one-target-out harness method."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import evaluation as H
from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.evaluation.adapters.fennec import FennecMethod
from zoorank.methods.fennec import nmf
from zoorank.methods.fennec.meta import MetaRegressor, model_features, one_hot, task_features
from zoorank.methods.fennec.model import Fennec, summarize_proxy


def low_rank(n=40, m=15, k=4, seed=0):
    rng = np.random.default_rng(seed)
    M, D = rng.random((n, k)), rng.random((m, k))
    return M @ D.T, M, D


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_nmf_recovers_an_exact_low_rank_matrix_and_never_increases_the_objective(solver):
    P, _, _ = low_rank()
    r = nmf.factorize(P, 4, alpha_m=0, alpha_d=0, max_iter=20000, tol=1e-12, solver=solver)
    assert np.abs(r.reconstruct() - P).max() < 1e-3
    assert (r.M >= 0).all() and (r.D >= 0).all()
    assert np.all(np.diff(r.losses) <= 1e-12 * max(r.losses[0], 1))


def test_hals_reaches_a_lower_objective_than_multiplicative_updates_in_the_same_iterations():
    P, _, _ = low_rank(200, 20, 4, seed=7)
    P = P + 0.01 * np.random.default_rng(8).random(P.shape)
    mask = np.random.default_rng(9).random(P.shape) > 0.2
    hals = nmf.factorize(P, 4, mask=mask, max_iter=300, tol=0, solver="hals")
    mu = nmf.factorize(P, 4, mask=mask, max_iter=300, tol=0, solver="mu")
    assert hals.loss < 0.9 * mu.loss
    with pytest.raises(InputError, match="solver"):
        nmf.factorize(P, 4, solver="sgd")


def test_nmf_fills_missing_entries_from_the_others():
    P, _, _ = low_rank(seed=1)
    mask = np.random.default_rng(2).random(P.shape) > 0.25
    r = nmf.factorize(P, 4, mask=mask, alpha_m=0, alpha_d=0, max_iter=20000, tol=1e-12)
    assert np.abs(r.reconstruct() - P)[~mask].max() < 0.05
    nan = np.where(mask, P, np.nan)  # NaN means missing by default
    r2 = nmf.factorize(nan, 4, alpha_m=0, alpha_d=0, max_iter=300, tol=0)
    r3 = nmf.factorize(P, 4, mask=mask, alpha_m=0, alpha_d=0, max_iter=300, tol=0)
    np.testing.assert_allclose(r2.M, r3.M)


def test_nmf_regularisation_shrinks_the_factors_and_reports_convergence():
    P, _, _ = low_rank(seed=3)
    loose = nmf.factorize(P, 4, alpha_m=0, alpha_d=0, max_iter=3000)
    tight = nmf.factorize(P, 4, alpha_m=5.0, alpha_d=5.0, max_iter=3000)
    assert np.linalg.norm(tight.M) * np.linalg.norm(tight.D) < np.linalg.norm(loose.M) * np.linalg.norm(loose.D)
    short = nmf.factorize(P, 4, max_iter=3, tol=0)
    assert short.n_iter == 3 and not short.converged and len(short.losses) == 3
    again = nmf.factorize(P, 4, max_iter=3, tol=0)
    np.testing.assert_array_equal(short.M, again.M)


@pytest.mark.parametrize("bad, match", [(-np.ones((3, 3)), "non-negative"), (np.ones(3), "2-D"),
                                        (np.full((2, 2), np.nan), "no observed")])
def test_nmf_bad_input(bad, match):
    with pytest.raises(InputError, match=match):
        nmf.factorize(bad, 2)
    with pytest.raises(InputError, match="k must"):
        nmf.factorize(np.ones((3, 3)), 0)


def test_fold_in_recovers_a_new_column_from_few_entries():
    _, M, _ = low_rank(seed=4)
    rng = np.random.default_rng(5)
    new = M @ rng.random(4)
    rows = np.arange(8)
    d = nmf.fold_in(M, new[rows], rows, alpha_d=1e-9)
    np.testing.assert_allclose(M @ d, new, atol=1e-6)
    assert (nmf.fold_in(M, np.zeros(0), np.zeros(0, int)) == 0).all()
    # a strong prior keeps the vector at its centre; no observation returns the centre
    centre = np.full(4, 0.3)
    np.testing.assert_allclose(nmf.fold_in(M, new[rows], rows, alpha_d=1e9, d0=centre), centre, atol=1e-6)
    np.testing.assert_allclose(nmf.fold_in(M, np.zeros(0), np.zeros(0, int), d0=centre), centre)


def test_meta_regression_recovers_a_linear_relation_and_ignores_missing():
    rng = np.random.default_rng(0)
    fm, ft = rng.random((20, 3)), rng.random((6, 2))
    S = 0.3 + (fm @ [1.0, -2.0, 0.5])[:, None] + (ft @ [0.7, 0.2])[None, :]
    S[0, 0] = np.nan
    reg = MetaRegressor().fit(fm, ft, S)
    pred = reg.predict(fm, ft)
    np.testing.assert_allclose(pred[1:], S[1:], atol=1e-5)
    assert np.isfinite(pred[0, 0])
    feats = model_features([10, 1000], [2, 20], one_hot(["a", "b"])[0])
    np.testing.assert_allclose(feats, [[1, np.log10(2), 1, 0], [3, np.log10(20), 0, 1]])
    np.testing.assert_allclose(task_features([10], [100]), [[1, 2]])
    with pytest.raises(InputError, match=">= 1"):
        model_features([0])


def planted(n_models=30, n_tasks=12, k=3, seed=0):
    """Tasks whose proxy vector determines their task vector; P = M D^T plus a meta term."""
    rng = np.random.default_rng(seed)
    M = rng.random((n_models, k))
    D = rng.random((n_tasks + 1, k))
    proxy = np.hstack([D, rng.normal(0, 0.01, (n_tasks + 1, 2))])
    P = M @ D.T
    fm = rng.random((n_models, 2))
    ft = np.column_stack([rng.integers(2, 50, n_tasks + 1), rng.integers(50, 500, n_tasks + 1)]).astype(float)
    return P, proxy, fm, np.log10(ft)


def test_fennec_ranks_a_new_task_from_its_proxy_vector_alone():
    P, proxy, fm, ft = planted(n_tasks=80)
    fen = Fennec(k=3, n_estimators=200).fit(P[:, :-1], proxy[:-1], fm, ft[:-1])
    s = fen.transfer_scores(proxy[-1])
    popularity = P[:, :-1].mean(1)
    assert R.kendall_tau(s, P[:, -1]) > 0.85 > R.kendall_tau(popularity, P[:, -1]) + 0.2
    # alpha = 0 is the transfer phase, alpha = 1 the meta phase (equation 10)
    fen0 = Fennec(k=3, alpha=0.0, n_estimators=200).fit(P[:, :-1], proxy[:-1], fm, ft[:-1])
    np.testing.assert_allclose(fen0.predict(proxy[-1], ft[-1]), s)
    fen1 = Fennec(k=3, alpha=1.0).fit(P[:, :-1], proxy[:-1], fm, ft[:-1])
    np.testing.assert_allclose(fen1.predict(proxy[-1], ft[-1]), fen1.meta_scores(ft[-1]))
    np.testing.assert_allclose(fen1.meta_scores(ft[-1]), fen1.meta_.predict(fm, ft[-1:])[:, 0])
    mixed = fen.predict(proxy[-1], ft[-1])
    np.testing.assert_allclose(mixed, 0.5 * s + 0.5 * fen.meta_scores(ft[-1]))


def test_fennec_save_load_is_exact_and_explain_names_the_drivers(tmp_path):
    P, proxy, fm, ft = planted(seed=1)
    fen = Fennec(k=3).fit(P[:, :-1], proxy[:-1], fm, ft[:-1], models=[f"m{i}" for i in range(30)],
                          tasks=[f"t{j}" for j in range(12)])
    path = fen.save(tmp_path / "fennec.npz")
    back = Fennec.load(path)
    np.testing.assert_array_equal(back.predict(proxy[-1], ft[-1]), fen.predict(proxy[-1], ft[-1]))
    ex = fen.explain(proxy[-1], ft[-1], top=3)
    assert [t["model"] for t in ex["top_models"]] == [f"m{i}" for i in np.argsort(-fen.predict(proxy[-1], ft[-1]))[:3]]
    assert len(ex["nearest_historical_tasks"]) == 3 and ex["nmf"]["k"] == 3
    with pytest.raises(InputError, match="same proxy encoder"):
        fen.predict(np.ones(3), ft[-1])
    with pytest.raises(InputError, match="at least one"):
        Fennec(use_transfer=False, use_meta=False)
    with pytest.raises(InputError, match="not a saved Fennec"):
        (tmp_path / "junk.npz").write_bytes(b"nope")
        Fennec.load(tmp_path / "junk.npz")


def test_summarize_proxy():
    f = np.array([[1.0, 2.0], [3.0, 2.0]])
    np.testing.assert_allclose(summarize_proxy(f), [2, 2, 1, 0])
    with pytest.raises(InputError):
        summarize_proxy(np.array([[np.nan, 1.0]]))


class PlantedProvider:
    """Features that separate classes by a model-and-task-dependent margin; proxy features reveal the task."""

    def __init__(self, tasks, models, seed=0):
        rng = np.random.default_rng(seed)
        self.quality = {(m, t): rng.random() for m in models for t in tasks}
        self.proxy = {t: rng.normal(size=(20, 8)) + i for i, t in enumerate(tasks)}
        self.requests: list[tuple[str, str]] = []

    def labels(self, task):
        return np.arange(60) % 3

    def features(self, model, task):
        self.requests.append((model, task))
        rng = np.random.default_rng(abs(hash((model, task))) % 2**32)
        y = self.labels(task)
        return rng.normal(size=(60, 5)) + 3 * self.quality[(model, task)] * np.eye(5)[y], None

    def proxy_features(self, task):
        return self.proxy[task]


def test_fennec_method_uses_only_history_and_no_forward_pass():
    models = [f"m{i}" for i in range(8)]
    tasks = [f"t{j}" for j in range(5)]
    provider = PlantedProvider(tasks, models)
    acc = np.array([[0.5 + 0.4 * provider.quality[(m, t)] for m in models] for t in tasks])
    zoo = {m: H.ZooEntry(m, "arch" + str(i % 2), "src", "scratch", 1000 * (i + 1)) for i, m in enumerate(models)}
    info = {t: H.TaskInfo(t, None, "", 3, {"n_train": "60"}) for t in tasks}
    bench = H.Benchmark(models, tasks, {"finetune_acc": acc, "linear_probe_acc": acc}, zoo, info)
    result = H.run(bench, [FennecMethod("fennec", meta="onehot", k=2)], provider, errors="raise")
    assert len(result) == len(tasks)
    assert all(r.forward_passes == 0 for r in result)
    assert all(np.isfinite([r.weighted_tau for r in result]))
    # evaluating only tasks[0]: its zoo features are never requested (the history is the other tasks)
    single = PlantedProvider(tasks, models)
    H.run(bench, [FennecMethod("fennec", meta="onehot", k=2)], single, tasks=[tasks[0]], errors="raise")
    assert all(t != tasks[0] for _, t in single.requests)


def test_fennec_fits_from_the_knowledge_base(tmp_path):
    from zoorank.methods.kb_adapter import fennec_history
    from zoorank.store import KnowledgeBase

    P, proxy, _, _ = planted(n_models=6, n_tasks=5, seed=2)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    for i in range(6):
        kb.add_model(f"m{i}", params=1000 * (i + 1), layers=10 + i)
    for j in range(5):
        kb.add_task(f"t{j}", n_classes=3 + j, n_samples=100, proxy=proxy[j].tolist())
        for i in range(6):
            kb.record(f"m{i}", f"t{j}", "fda", float(P[i, j]))
    kb.add_task("no-proxy", n_classes=3, n_samples=10)
    kb.record("m0", "no-proxy", "fda", 0.5)
    fen = Fennec(k=2).fit(**fennec_history(kb))
    assert fen.tasks_ == [f"t{j}" for j in range(5)] and fen.models_ == [f"m{i}" for i in range(6)]
    np.testing.assert_allclose(fen.train_["P"], P[:, :5])
    assert fen.predict(proxy[5], [0.5, 2.0]).shape == (6,)
    kb.record("m0", "no-proxy", "finetune_acc", 0.5)
    with pytest.raises(InputError, match="at least 2"):
        fennec_history(kb, kind="finetune_acc")


def test_scaling_benchmark_runs_on_a_small_zoo():
    from benchmarks import fennec_scaling as S

    p = S.measure(300, repeat=2)
    assert p.n_models == 300 and p.zoo_forward_passes == 0 and p.metric_forward_passes == 300
    assert 0 < p.rank_ms < 2000 and p.fit_seconds > 0
    assert "| 300 |" in S.markdown([p], "cmd")


def test_methods_package_exports_the_learned_rankers():
    import zoorank.methods as methods

    assert methods.Fennec is Fennec
    with pytest.raises(AttributeError):
        methods.NoSuchRanker  # noqa: B018
