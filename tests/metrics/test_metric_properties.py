"""What the mathematics promises, checked for every registered metric.

- invariance to permuting the samples and to renaming the classes;
- the invariances each metric declares in the registry (scale, rotation, translation);
- scores rise when classes are pulled apart (a controlled synthetic family);
- float32 and float64 inputs give the same ranking of models; repeated calls give the same score.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from zoorank import InputError
from zoorank import metrics as M

from metric_cases import call, case, relabel

NAMES = M.available()

# Relative tolerance of the exact invariances. N-LEEP fits a Gaussian mixture from a k-means
# initialisation that depends on the order of the samples and PACTran-Gauss pairs its random
# initial weights with class indices, so for those two an invariance holds only up to optimiser
# noise (README of the conformance vectors: ~0.03 absolute for N-LEEP seeds; PACTran stops at
# maxiter=100, and renaming classes moved its score by up to 1.6e-3 relative on these cases).
TOL = {"nleep": {"abs": 0.1}, "pactran": {"rel": 1e-2}}


def close(a, b, name):
    tol = TOL.get(name, {"rel": 1e-6, "abs": 1e-12})
    assert a == pytest.approx(b, **tol), f"{name}: {a} vs {b}"


def test_every_contract_name_is_registered():
    expected = {"logme", "leep", "nleep", "nce", "hscore", "reg_hscore", "transrate", "gbc", "sfda",
                "parc", "etran", "energy", "ncti", "ped", "pactran", "fda", "lfc"}
    assert expected <= set(NAMES)
    for name in expected:
        assert callable(getattr(M, name))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_permuting_samples(name, seed):
    X, y, P, G = case(seed=seed % 7)
    perm = np.random.default_rng(seed).permutation(len(y))
    close(call(name, X[perm], y[perm], P[perm], G), call(name, X, y, P, G), name)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_renaming_classes(name, seed):
    X, y, P, G = case(seed=seed % 7)
    perm = np.random.default_rng(seed).permutation(y.max() + 1)
    close(call(name, X, relabel(y, perm), P, G), call(name, X, y, P, G), name)


def _transform(kind, X, G, rng):
    d = X.shape[1]
    if kind == "scale":
        s = 10.0 ** rng.uniform(-1.5, 1.5)
        return X * s, G * s
    if kind == "rotation":
        Q = ortho_group.rvs(d, random_state=rng.integers(2**31))
        return X @ Q, G @ Q
    b = rng.normal(size=d) * 3.0
    return X + b, G + b


DECLARED = [(n, kind) for n in NAMES for kind in sorted(M.info(n).invariances)]


@pytest.mark.parametrize(("name", "kind"), DECLARED)
def test_declared_invariances(name, kind):
    rng = np.random.default_rng(1)
    X, y, P, G = case(seed=3)
    X2, G2 = _transform(kind, X, G, rng)
    assert call(name, X2, y, P, G2) == pytest.approx(call(name, X, y, P, G), rel=1e-5, abs=1e-8)


# Energy is label-free (it scores how "confident" the features are, not class separation), so a
# family that only moves class centres apart says nothing about it.
SEPARATION_EXEMPT = {"energy"}


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SEPARATION_EXEMPT])
def test_scores_rise_when_classes_separate(name):
    seps = [0.05, 3.0]
    scores = []
    for s in seps:
        X, y, P, G = case(separation=s, seed=5)
        scores.append(call(name, X, y, P, G))
    assert scores[1] > scores[0], f"{name}: {scores}"


@pytest.mark.parametrize("name", NAMES)
def test_float32_float64_same_ranking_and_deterministic(name):
    models = [case(separation=s, seed=11) for s in (0.1, 0.6, 1.5, 3.0)]
    s64 = [call(name, X, y, P, G) for X, y, P, G in models]
    s32 = [call(name, X.astype(np.float32), y, P, G.astype(np.float32)) for X, y, P, G in models]
    assert np.array_equal(np.argsort(s64), np.argsort(s32)), f"{name}: {s64} vs {s32}"
    X, y, P, G = models[1]
    assert call(name, X, y, P, G) == call(name, X, y, P, G)


@pytest.mark.parametrize("name", [n for n in NAMES if M.info(n).pool_func is not None])
def test_pool_forms(name):
    feats, y = [], None
    for s in (0.2, 1.0, 3.0):
        X, y, _, _ = case(separation=s, seed=2)
        feats.append(X)
    pool = M.compute_pool(name, feats, y)
    assert pool.shape == (3,) and np.isfinite(pool).all()
    assert pool[2] > pool[0]
    # pool scores are relative: permuting the pool permutes them
    np.testing.assert_allclose(M.compute_pool(name, feats[::-1], y), pool[::-1], rtol=1e-10)


def test_compute_pool_without_pool_form_is_per_model():
    feats = [case(separation=s, seed=2)[0] for s in (0.2, 1.0)]
    y = case(seed=2)[1]
    np.testing.assert_allclose(M.compute_pool("logme", feats, y), [M.logme(f, y) for f in feats])


def test_compute_pool_with_source_probs():
    cases = [case(separation=s, seed=4) for s in (0.2, 2.0)]
    y = cases[0][1]
    probs = [P for _, _, P, _ in cases]
    expected = [M.leep(None, y, source_probs=P) for P in probs]
    np.testing.assert_allclose(M.compute_pool("leep", [None, None], y, source_probs=probs), expected)
    with pytest.raises(InputError, match="2 models"):
        M.compute_pool("leep", [None, None], y, source_probs=probs[:1])


def test_softmax_of_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    p = M.softmax(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(M.softmax(logits + 7.5), p)  # shift-invariant per row
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_score_zoo_is_the_metric_on_each_model_and_names_what_is_missing():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 25)
    feats = [rng.normal(size=(100, d)) + y[:, None] * s for d, s in ((8, 0.5), (16, 1.0), (4, 2.0))]
    logits = [rng.normal(size=(100, 6)), rng.normal(size=(100, 6)), None]
    assert np.allclose(M.score_zoo("logme", feats, logits, y), [M.compute("logme", f, y) for f in feats])
    assert np.allclose(M.score_zoo("ncti", feats, None, y), M.compute_pool("ncti", feats, y))
    assert np.allclose(M.score_zoo("leep", feats[:2], logits[:2], y),
                       [M.compute("leep", None, y, source_probs=M.softmax(lg)) for lg in logits[:2]])
    with pytest.raises(M.MetricUnavailable, match=r"headless model.s.: c") as err:
        M.score_zoo("nce", feats, logits, y, names=["a", "b", "c"])
    assert err.value.missing_input and isinstance(err.value, InputError)
    with pytest.raises(M.MetricUnavailable, match="needs the task's labels"):
        M.score_zoo("logme", feats, None, None)
    assert M.score_zoo("energy", feats, None, None).shape == (3,)  # label-free
    with pytest.raises(M.MetricUnavailable, match="general_features") as err:
        M.score_zoo("ped", feats, None, y)
    with pytest.raises(M.MetricUnavailable, match=r"^hscore: ") as err:
        M.score_zoo("hscore", [f[:3] for f in feats], None, y[:3])  # fewer samples than the metric accepts
    assert not err.value.missing_input
