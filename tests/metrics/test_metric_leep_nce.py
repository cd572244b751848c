"""LEEP and NCE: conformance (thuml/LogME, tllib, dbolya/parc), loop oracles, closed forms
(one-hot source probabilities make LEEP equal NCE; a constant source label gives −H(Y)) and
degenerate input."""

from __future__ import annotations

import numpy as np
import pytest

from zoorank import InputError
from zoorank.metrics.leep import leep
from zoorank.metrics.nce import nce

from conformance import load

CASES = ("case0", "case1")


@pytest.fixture(scope="module")
def ref_leep():
    return load("leep")


@pytest.fixture(scope="module")
def ref_nce():
    return load("nce")


@pytest.mark.parametrize("case", CASES)
def test_conformance_leep(ref_leep, case):
    y, P = ref_leep[f"{case}_y"], ref_leep[f"{case}_probs"]
    for key in ("score", "score_tllib"):
        assert leep(None, y, source_probs=P) == pytest.approx(float(ref_leep[f"{case}_{key}"]),
                                                              rel=1e-10)
    # features are ignored
    assert leep(ref_leep[f"{case}_X"], y, source_probs=P) == leep(None, y, source_probs=P)


@pytest.mark.parametrize("case", CASES)
def test_conformance_nce(ref_nce, case):
    y, P, z = ref_nce[f"{case}_y"], ref_nce[f"{case}_probs"], ref_nce[f"{case}_source_labels"]
    for key in ("score", "score_tllib"):
        expected = float(ref_nce[f"{case}_{key}"])
        assert nce(None, y, source_probs=P) == pytest.approx(expected, rel=1e-10)
        assert nce(None, y, source_labels=z) == pytest.approx(expected, rel=1e-10)
    expected = float(ref_nce[f"{case}_score_dbolya"])
    assert nce(None, y, source_probs=P, variant="dbolya") == pytest.approx(expected, rel=1e-10)
    assert nce(None, y, source_labels=z, variant="dbolya", n_source_classes=50) == pytest.approx(
        expected, rel=1e-10)
    # both given: the labels are used, the probabilities supply Cs = 50
    assert nce(None, y, source_probs=P, source_labels=z, variant="dbolya") == pytest.approx(
        expected, rel=1e-10)


# --------------------------------------------------------------------------------------------
# Loop oracles and closed forms
# --------------------------------------------------------------------------------------------


def _probs(n, cs, c, seed, dead=()):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    logits = rng.normal(size=(n, cs)) * 2 + np.eye(cs)[y % cs] * 2
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P[:, list(dead)] = 0.0
    return P / P.sum(axis=1, keepdims=True), y


def oracle_leep(P, y):
    N, cs = P.shape
    C = int(y.max()) + 1
    joint = np.zeros((C, cs))
    for i in range(N):
        joint[y[i]] += P[i] / N
    cond = joint / joint.sum(axis=0)
    return float(np.mean([np.log(P[i] @ cond[y[i]]) for i in range(N)]))


def oracle_nce(z, y):
    N = len(y)
    H = 0.0
    for s in np.unique(z):
        ys = y[z == s]
        p = np.bincount(ys) / len(ys)
        p = p[p > 0]
        H += len(ys) / N * -np.sum(p * np.log(p))
    return -H


def test_leep_matches_loop_oracle():
    P, y = _probs(200, 15, 4, 0)
    assert leep(None, y, source_probs=P) == pytest.approx(oracle_leep(P, y), rel=1e-12)


def test_leep_with_one_hot_probs_is_nce():
    rng = np.random.default_rng(1)
    y = np.arange(300) % 5
    z = (y + rng.integers(0, 3, 300)) % 7
    P = np.eye(7)[z]  # hard source predictions; columns 0..6, some possibly unused
    assert leep(None, y, source_probs=P) == pytest.approx(nce(None, y, source_labels=z), rel=1e-12)
    assert nce(None, y, source_labels=z) == pytest.approx(oracle_nce(z, y), rel=1e-12)


def test_perfect_and_uninformative_sources():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    # z determines y: H(Y|Z) = 0
    z = np.array([3, 3, 0, 0, 5, 5, 5])
    assert nce(None, y, source_labels=z) == pytest.approx(0.0, abs=1e-15)
    assert leep(None, y, source_probs=np.eye(6)[z]) == pytest.approx(0.0, abs=1e-15)
    # a single source label: NCE = −H(Y) = Σ p log p with p = (2, 2, 3)/7
    p = np.array([2, 2, 3]) / 7
    assert nce(None, y, source_labels=np.zeros(7, int)) == pytest.approx(np.sum(p * np.log(p)),
                                                                         rel=1e-14)


def test_nce_dbolya_formula():
    rng = np.random.default_rng(2)
    y = np.arange(100) % 4
    z = rng.integers(0, 6, 100)
    joint = np.zeros((4, 9))
    for a, b in zip(y, z, strict=True):
        joint[a, b] += 1
    joint = joint / 100 + 1e-5
    marg = np.bincount(z, minlength=9) / 100 + 1e-5
    expected = np.sum(joint * np.log(joint / marg))
    assert nce(None, y, source_labels=z, variant="dbolya", n_source_classes=9) == pytest.approx(
        expected, rel=1e-12)
    # unobserved source classes add ε·log(ε/ε) = 0 cells, so Cs does not change the value
    assert nce(None, y, source_labels=z, variant="dbolya") == pytest.approx(expected, rel=1e-12)
    assert nce(None, y, source_labels=z, n_source_classes=9) == nce(None, y, source_labels=z)
    # ... but the ε on observed cells does: the variants differ in the 3rd decimal
    assert nce(None, y, source_labels=z) != pytest.approx(expected, rel=1e-4)


def test_leep_zero_mass_source_class_contributes_nothing():
    P, y = _probs(120, 10, 3, 3, dead=(2, 7))
    value = leep(None, y, source_probs=P)
    assert np.isfinite(value)
    keep = [k for k in range(10) if k not in (2, 7)]
    assert value == pytest.approx(leep(None, y, source_probs=P[:, keep]), rel=1e-13)


def test_bad_inputs():
    P, y = _probs(40, 6, 3, 4)
    z = P.argmax(axis=1)
    with pytest.raises(InputError, match=r"nce: .*source_labels"):
        nce(None, y, source_labels=-z - 1)
    with pytest.raises(InputError, match=r"nce: .*length"):
        nce(None, y, source_labels=z[:-1])
    with pytest.raises(InputError, match=r"nce: .*source classes"):
        nce(None, y, source_labels=z + 6, source_probs=P)
    with pytest.raises(InputError, match=r"nce: .*source classes"):
        nce(None, y, source_labels=np.full(40, 5), n_source_classes=3)
    with pytest.raises(InputError, match=r"nce: .*source_probs"):
        nce(None, y)
    with pytest.raises(InputError, match="variant"):
        nce(None, y, source_probs=P, variant="tf")
    with pytest.raises(InputError, match=r"leep: .*source_probs"):
        leep(None, y)
    with pytest.raises(InputError, match=r"leep: .*sum to 1"):
        leep(None, y, source_probs=P * 1.5)
    with pytest.raises(InputError, match="samples"):
        leep(None, np.arange(4), source_probs=P[:4])


def test_degenerate_inputs_are_finite():
    rng = np.random.default_rng(5)
    y = np.arange(30) % 3
    uniform = np.full((30, 8), 1 / 8)
    assert np.isfinite(leep(None, y, source_probs=uniform))
    assert leep(None, y, source_probs=uniform) == pytest.approx(np.log(1 / 3))
    assert np.isfinite(nce(None, y, source_probs=uniform))  # argmax ties → all z = 0
    # C close to N
    yy = np.r_[np.arange(20), 0]
    P = rng.dirichlet(np.ones(5), size=21)
    assert np.isfinite(leep(None, yy, source_probs=P))
    assert np.isfinite(nce(None, yy, source_probs=P))
