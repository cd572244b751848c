"""Published zoos (loaders) and the leave-one-dataset-out Fennec evaluation (benchmarks.fennec_published)."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmarks import fennec_published as fp
from benchmarks import published
from benchmarks.published import PublishedZoo, available_zoos, default_root, load_zoo
from zoorank.errors import InputError

ROOT = default_root()


@pytest.fixture(scope="module")
def root() -> Path:
    if not (ROOT / "README.md").is_file():
        pytest.skip(f"ground-truth tables not found at {ROOT} (they live in ../shared/data/groundtruth)")
    return ROOT


def _raw(root: Path, name: str) -> list[dict[str, str]]:
    with (root / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------------------------- loaders

SHAPES = {
    "tllib": (10, 8), "sfda_group1": (11, 11), "sfda_group2": (12, 11), "sfda": (23, 11), "parc": (71, 7),
    "model_spider_66": (66, 7), "emms_vit": (13, 11), "transfergraph_image": (180, 13),
    "transfergraph_text": (164, 10), "model_recycling": (1284, 35),
}


def test_default_root_is_shared_groundtruth(monkeypatch):
    monkeypatch.delenv(published.ENV_VAR, raising=False)
    repo = Path(published.__file__).resolve().parents[1]
    assert (repo / "pyproject.toml").is_file()
    assert default_root() == (repo.parent / "shared" / "data" / "groundtruth").resolve()


def test_available_zoos_cover_the_issue():
    assert set(SHAPES) == set(available_zoos())


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shapes_and_units(root, name):
    z = load_zoo(name, root)
    assert z.acc.shape == SHAPES[name]
    assert (len(z.models), len(z.datasets)) == SHAPES[name]
    finite = z.acc[np.isfinite(z.acc)]
    # percent everywhere (0-100), never fractions
    assert finite.min() >= 0 and finite.max() <= 100 and np.median(finite) > 20
    for key, v in z.model_meta.items():
        assert len(v) == z.n_models, key
    assert "family" in z.model_meta


def test_tllib_values_and_scores(root):
    z = load_zoo("tllib", root)
    i, j = z.models.index("resnet50"), z.datasets.index("Aircraft")
    assert z.acc[i, j] == pytest.approx(86.6)
    assert z.acc[z.models.index("inception_v3"), j] == pytest.approx(88.8)  # README caveat 1
    assert not np.isnan(z.acc).any()
    assert set(z.scores) == {"HScore", "LEEP", "LogME", "NCE"}
    assert z.scores["LogME"][z.models.index("googlenet"), j] == pytest.approx(0.934)
    dtd = z.datasets.index("DTD")
    assert np.isnan(z.scores["NCE"][:, dtd]).all()  # flagged suspect in the source
    assert np.isfinite(np.delete(z.scores["NCE"], dtd, axis=1)).all()
    assert np.isfinite(z.scores["LogME"]).all()


def test_sfda_groups(root):
    g1, g2, both = load_zoo("sfda_group1", root), load_zoo("sfda_group2", root), load_zoo("sfda", root)
    assert g1.acc[g1.models.index("inception_v3"), g1.datasets.index("aircraft")] == pytest.approx(80.15)
    assert set(g1.models) | set(g2.models) == set(both.models) and not set(g1.models) & set(g2.models)
    assert (g2.model_meta["family"] == "resnet").all()
    c100 = g1.datasets.index("cifar100")
    for key in ("ETran_lda", "ETran_energy"):
        assert np.isfinite(g1.scores[key][:, c100]).all()
        assert np.isnan(np.delete(g1.scores[key], c100, axis=1)).all()


def test_transfergraph_image_scores_deduplicated_keep_last(root):
    z = load_zoo("transfergraph_image", root)
    raw = _raw(root, "transfergraph_image_scores.csv")
    rows = [r for r in raw if r["dataset"] == "dtd" and r["metric"] == "LOG_ME"]
    per_model = defaultdict(list)
    for r in rows:
        per_model[r["model"]].append(float(r["score"]))
    assert len(rows) > len(per_model)  # the source has duplicates (209 records, ~149 models)
    j = z.datasets.index("dtd")
    known = [m for m in per_model if m in z.models]
    assert np.isfinite(z.scores["LogME"][:, j]).sum() == len(known)
    dup_differs = [m for m in known if len(per_model[m]) > 1 and len(set(per_model[m])) > 1]
    assert dup_differs
    for m in known:
        assert z.scores["LogME"][z.models.index(m), j] == per_model[m][-1]
    assert set(z.scores) == {"LogME", "RegHScore"}


def test_transfergraph_text_full_finetune_max(root):
    z = load_zoo("transfergraph_text", root)
    full, lora = defaultdict(list), set()
    for r in _raw(root, "transfergraph_text.csv"):
        if r["peft_method"] == "full":
            full[(r["model"], r["dataset"])].append(float(r["accuracy"]))
        else:
            lora.add((r["model"], r["dataset"]))
    multi = [k for k, v in full.items() if len(set(v)) > 1]
    assert multi
    for m, d in multi:
        assert z.acc[z.models.index(m), z.datasets.index(d)] == max(full[(m, d)])
    lora_only = [k for k in lora if k not in full and k[0] in z.models and k[1] in z.datasets]
    assert lora_only
    for m, d in lora_only:
        assert np.isnan(z.acc[z.models.index(m), z.datasets.index(d)])
    assert np.isfinite(z.acc).sum() == len(full)


def test_model_recycling_and_parc(root):
    z = load_zoo("model_recycling", root)
    assert "stsb" not in z.datasets and np.nanmin(z.acc) >= 0
    i = z.models.index("johannes5117/kadoa-page-extraction")  # duplicated rows, one with a 0.0 probe score
    assert z.scores["mnli_linear_probe"][i, 0] == pytest.approx(0.848657, abs=1e-6)
    p = load_zoo("parc", root)
    assert np.nanmin(p.acc) > 0  # -1 = not reported -> NaN
    assert np.isnan(p.acc[p.models.index("resnet101@simclr_imagenet"), p.datasets.index("cifar10")])
    assert np.isnan(p.acc[p.models.index("alexnet@cifar10"), p.datasets.index("cifar10")])
    assert np.isnan(p.acc).sum() == 38


def test_missing_folder_file_and_env_override(root, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="folder not found"):
        load_zoo("tllib", tmp_path / "nope")
    shutil.copy(root / "tllib.csv", tmp_path / "tllib.csv")
    with pytest.raises(InputError, match=r"tllib_scores\.csv"):
        load_zoo("tllib", tmp_path)
    with pytest.raises(InputError, match="unknown zoo"):
        load_zoo("imagenet_everything", root)
    shutil.copy(root / "tllib_scores.csv", tmp_path / "tllib_scores.csv")
    monkeypatch.setenv(published.ENV_VAR, str(tmp_path))
    assert default_root() == tmp_path.resolve()
    assert load_zoo("tllib").acc.shape == (10, 8)
    with pytest.raises(InputError):
        load_zoo("parc")  # parc.csv is not in the override folder


def test_meta_features(root):
    f, names = fp.meta_model_features(load_zoo("tllib", root))
    assert f.shape == (10, 6) and all(n.startswith("family=") for n in names)
    f, names = fp.meta_model_features(load_zoo("transfergraph_image", root))
    assert names[0] == "log10_params" and np.isfinite(f).all()
    f, names = fp.meta_model_features(load_zoo("sfda_group2", root))
    assert f.shape == (12, 0)


# ----------------------------------------------------------------------------------------------- protocol


def _synthetic(n: int, m: int, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    M = rng.uniform(0, 1, (n, rank))
    D = 0.05 + rng.dirichlet([0.3] * rank, size=m)
    return M, D


def _zoo(acc: np.ndarray, scores: dict | None = None, meta: dict | None = None) -> PublishedZoo:
    n, m = acc.shape
    return PublishedZoo("synthetic", [f"m{i}" for i in range(n)], [f"d{j}" for j in range(m)], acc,
                        meta or {}, scores or {})


def test_held_out_column_is_never_read():
    M, D = _synthetic(30, 6, 2, 0)
    acc = 100 * (M @ D.T) / (M @ D.T).max()
    feats = np.random.default_rng(1).normal(size=(30, 3))
    cfg = fp.EvalConfig(draws=2, max_iter=300)
    other = acc.copy()
    other[:, 2] = np.random.default_rng(2).uniform(0, 100, 30)
    other[5, 2] = np.nan
    a, b = fp.fit_without_column(acc, 2, feats, cfg), fp.fit_without_column(other, 2, feats, cfg)
    for x, y in [(a.nmf.M, b.nmf.M), (a.nmf.D, b.nmf.D), (a.meta, b.meta), (a.popularity, b.popularity),
                 (a.popularity_z, b.popularity_z), (a.transfer_cold, b.transfer_cold)]:
        np.testing.assert_array_equal(x, y)
    obs = np.array([1, 7, 11])
    pa, pb = fp.predict_column(a, obs, acc[obs, 2], cfg), fp.predict_column(b, obs, acc[obs, 2], cfg)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_unrelated_held_out_column_gets_chance_level_at_cold_start():
    M, D = _synthetic(60, 4, 2, 3)  # few training columns: a leak of the held-out one would show
    base = 100 * (M @ D.T) / (M @ D.T).max()
    cfg = fp.EvalConfig(ks=(0,), k_latent=2, max_iter=400)
    taus, related = [], []
    for s in range(20):
        acc = base.copy()
        acc[:, 0] = np.random.default_rng(100 + s).permutation(base[:, 0])  # unrelated to the other columns
        rec = {r["method"]: r for r in fp.evaluate_column(_zoo(acc), 0, cfg)}
        taus.append(rec["transfer"]["ktau"])
        rec = {r["method"]: r for r in fp.evaluate_column(_zoo(base), 1 + s % 3, cfg)}
        related.append(rec["transfer"]["ktau"])
    assert abs(np.mean(taus)) < 0.1
    assert np.mean(related) > 0.4  # the same code does find signal when the column is related


def test_exact_low_rank_zoo_is_recovered_from_five_observations():
    wt, pop = [], []
    for seed in range(3):
        M, D = _synthetic(40, 10, 3, seed)
        D[0] = 0.8 * D[1] + 0.2 * D[2]  # a held-out task unlike the average task
        acc = 95 * (M @ D.T) / (M @ D.T).max()
        recs = fp.evaluate_column(_zoo(acc), 0, fp.EvalConfig(ks=(5,), draws=5, k_latent=3))
        rec = {r["method"]: r for r in recs}
        wt.append(rec["transfer"]["wtau"])
        pop.append(rec["popularity"]["wtau"])
        assert rec["transfer"]["n_eval"] == 35
    assert min(wt) > 0.95
    assert np.mean(wt) > np.mean(pop) + 0.1


def test_observed_models_are_excluded_from_the_evaluation():
    M, D = _synthetic(20, 5, 2, 4)
    acc = 100 * (M @ D.T) / (M @ D.T).max()
    truth = acc[:, 0]
    obs = np.array([2, 9, 14])
    planted = -truth.copy()  # anti-correlated everywhere ...
    planted[obs] = 1000 + truth[obs]  # ... except on the observed models
    scores = {"planted": np.column_stack([planted, np.full((20, 4), np.nan)])}
    recs = fp.evaluate_column(_zoo(acc, scores), 0, fp.EvalConfig(ks=(0, 3), max_iter=200),
                              observed_sets={3: [obs]})
    by = {(r["k"], r["method"]): r for r in recs}
    assert by[(3, "planted")]["ktau"] == pytest.approx(-1.0)
    assert by[(3, "planted")]["n_eval"] == 17 and by[(0, "planted")]["n_eval"] == 20
    assert by[(0, "planted")]["ktau"] > -1.0
    assert {r["n_eval"] for r in recs if r["k"] == 3} == {17}  # every method on the same models


def test_random_draws_are_disjoint_from_evaluation_and_reproducible():
    M, D = _synthetic(25, 5, 2, 5)
    acc = 100 * (M @ D.T) / (M @ D.T).max()
    acc[[0, 1], 1] = np.nan
    cfg = fp.EvalConfig(ks=(0, 3, 5, 10), draws=4, max_iter=200)
    recs = fp.evaluate_column(_zoo(acc), 1, cfg)
    for r in recs:
        assert r["n_eval"] == 23 - r["k"]
    assert recs == fp.evaluate_column(_zoo(acc), 1, cfg)
    cand = np.flatnonzero(np.isfinite(acc[:, 1]))
    sets = fp.draw_observed(cand, 5, 10, np.random.default_rng(0))
    assert all(len(set(s)) == 5 and np.isin(s, cand).all() for s in sets)
    with pytest.raises(InputError):
        fp.draw_observed(cand, 30, 1, np.random.default_rng(0))


def test_merge_is_equation_10_on_z_scores():
    M, D = _synthetic(15, 4, 2, 6)
    acc = 100 * (M @ D.T) / (M @ D.T).max()
    feats = np.random.default_rng(0).normal(size=(15, 2))
    cfg = fp.EvalConfig(alpha=0.3, max_iter=200)
    fit = fp.fit_without_column(acc, 0, feats, cfg)
    p = fp.predict_column(fit, np.array([], dtype=int), np.array([]), cfg)
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    np.testing.assert_allclose(p["merge"], 0.7 * z(p["transfer"]) + 0.3 * z(p["meta"]))


# ----------------------------------------------------------------------------------------------- real zoo


def test_tllib_reference_point_popularity_beats_logme(root):
    """Independent recomputation (scipy) of the cold-start reference: popularity vs LogME on TLlib."""
    z = load_zoo("tllib", root)
    ev = fp.evaluate_zoo(z, fp.EvalConfig(ks=(0, 3), draws=2, max_iter=300))
    ref = fp.reference_point(ev)
    pop = [stats.kendalltau(np.delete(z.acc, j, 1).mean(1), z.acc[:, j]).statistic for j in range(8)]
    lme = [stats.kendalltau(z.scores["LogME"][:, j], z.acc[:, j]).statistic for j in range(8)]
    assert ref["popularity"] == pytest.approx(np.mean(pop))
    assert ref["LogME"] == pytest.approx(np.mean(lme))
    assert ref["popularity"] > ref["LogME"] + 0.1
    assert {r["k"] for r in ev.records} == {0, 3}
    assert len(ev.nmf) == 8 and all(r["n_iter"] <= 300 for r in ev.nmf)


def test_command_writes_markdown_section(root, tmp_path, capsys):
    out = tmp_path / "BENCH.md"
    out.write_text("# Benchmarks\n\nkept\n")
    rc = fp.main(["--zoos", "tllib", "--draws", "2", "--ks", "0", "3", "--sweep-zoos", "--root", str(root),
                  "--write", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "kept" in text and "<!-- fennec-published:start -->" in text and "<!-- fennec-published:end -->" in text
    assert "python -m benchmarks.fennec_published --zoos tllib" in text
    assert "| tllib | 10 x 8 |" in text and "Reference point" in text
    assert fp.main(["--zoos", "tllib", "--sweep-zoos", "--root", str(tmp_path / "missing")]) == 2
    capsys.readouterr()
