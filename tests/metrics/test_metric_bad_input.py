"""Bad input gets a clear InputError (never a silent NaN); degenerate legal input gets a finite
score or an InputError, by each metric's documented rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zoorank import InputError
from zoorank import metrics as M

from metric_cases import call, case

NAMES = M.available()
FEATURE_METRICS = [n for n in NAMES if M.info(n).needs_features]
LABEL_METRICS = [n for n in NAMES if M.info(n).needs_labels]
PROB_METRICS = [n for n in NAMES if M.info(n).needs_source_probs]


def raises(name, match, X, y, P, G):
    with pytest.raises(InputError, match=match) as err:
        call(name, X, y, P, G)
    assert name in str(err.value) or "unknown" in str(err.value)


@pytest.mark.parametrize("name", FEATURE_METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(name, bad):
    X, y, P, G = case()
    X[3, 5] = bad
    raises(name, "NaN or infinite", X, y, P, G)


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_feature_shapes(name):
    X, y, P, G = case()
    raises(name, "2-D", X[:, 0], y, P, G)
    raises(name, "2-D", X[None], y, P, G)


@pytest.mark.parametrize("name", LABEL_METRICS)
def test_label_problems(name):
    X, y, P, G = case()
    raises(name, "length", X, y[:-1], P, G)
    raises(name, "at least 2 classes", X, np.zeros_like(y), P, G)
    gap = y.copy()
    gap[gap == 1] = 2  # classes 0, 2, 3: class 1 missing
    raises(name, "class", X, gap, P, G)
    neg = y.copy()
    neg[0] = -1
    raises(name, "0..C-1", X, neg, P, G)
    raises(name, "integers", X, y + 0.5, P, G)


@pytest.mark.parametrize("name", LABEL_METRICS)
def test_fewer_samples_than_classes(name):
    X, _, P, G = case(n=40, c=4)
    n = 4
    raises(name, "samples", X[:n], np.arange(n), P[:n], G)


@pytest.mark.parametrize("name", PROB_METRICS)
def test_bad_source_probs(name):
    X, y, P, G = case()
    raises(name, "sum to 1", X, y, P * 1.5, G)
    logits = np.log(P + 1e-12)
    raises(name, "negative|sum to 1", X, y, logits, G)
    Pn = P.copy()
    Pn[0, 0] = np.nan
    raises(name, "NaN", X, y, Pn, G)
    raises(name, "rows", X, y, P[:-2], G)
    with pytest.raises(InputError, match="source_probs"):
        M.compute(name, X, y)


@pytest.mark.parametrize("name", LABEL_METRICS)
def test_missing_labels(name):
    X, _, P, _ = case()
    with pytest.raises(InputError, match="labels"):
        M.compute(name, X, None, source_probs=P)


def test_unknown_metric_names_the_choices():
    with pytest.raises(InputError, match=r"available: .*logme"):
        M.compute("logmee", np.ones((4, 2)), [0, 1, 0, 1])


def _degenerate_cases():
    X, y, P, G = case(n=240, d=72, c=4)
    yield "constant features", np.ones_like(X), y, P, G
    yield "one constant column", np.c_[X, np.full(len(y), 5.0)], y, P, np.c_[G, np.full(len(G), 5.0)]
    yield "duplicated samples", np.repeat(X[:60], 4, axis=0), np.repeat(y[:60], 4), np.repeat(P[:60], 4, axis=0), G
    Xw, yw, Pw, Gw = case(n=40, d=600, c=4, effective_dim=16)
    yield "D much larger than N", Xw, yw, Pw, Gw
    Xc, yc, Pc, Gc = case(n=45, d=72, c=20)
    yield "C close to N", Xc, yc, Pc, Gc
    Xs, ys, Ps, Gs = case(n=12, d=8, c=3, effective_dim=8)
    yield "tiny N and D", Xs, ys, Ps, Gs


DEGENERATE = list(_degenerate_cases())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", range(len(DEGENERATE)), ids=[d[0] for d in DEGENERATE])
def test_degenerate_input_is_finite_or_clear_error(name, which):
    _, X, y, P, G = DEGENERATE[which]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            value = call(name, X, y, P, G)
        except InputError as exc:
            assert name in str(exc)
            return
    assert isinstance(value, float) and np.isfinite(value)


def test_compute_available_names_what_is_missing():
    X, y, P, G = case()
    assert M.missing_inputs("ped", features=X, labels=y) == ["general_features"]
    assert M.missing_inputs("leep", features=X, labels=y, source_probs=P) == []
    with pytest.raises(InputError, match="leep: needs source_probs"):
        M.compute_available("leep", X, y)
    # inputs a metric does not use are ignored
    assert M.compute_available("logme", X, y, source_probs=P, general_features=G) == M.logme(X, y)


@pytest.mark.parametrize("name", ["energy", "etran", "fda", "sfda", "ncti", "ped"])
def test_views_of_the_callers_data_are_never_modified(name):
    torch = pytest.importorskip("torch")
    X, y, P, G = case()
    t = torch.from_numpy(X.copy())  # np.asarray(t) is a zero-copy view
    before = t.clone()
    value = call(name, t, y, P, G)
    assert torch.equal(t, before) and value == pytest.approx(call(name, X, y, P, G), rel=1e-12)
    ro = X.copy()
    ro.setflags(write=False)
    assert call(name, ro, y, P, G) == pytest.approx(value, rel=1e-12)


def test_huge_label_is_refused_before_allocating():
    X, y, _, _ = case()
    y = y.copy()
    y[0] = 10**12
    with pytest.raises(InputError, match="largest label"):
        M.logme(X, y)


def test_pactran_variants_take_source_probs_by_name():
    X, y, P, _ = case()
    assert M.compute_available("pactran", X, y, source_probs=P, variant="dirichlet") == pytest.approx(
        M.pactran(None, y, source_probs=P, variant="dirichlet"))
