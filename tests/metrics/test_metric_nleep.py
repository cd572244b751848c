"""N-LEEP: conformance (google-research, SFDA), the fast EM against sklearn's, degenerate input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from zoorank import InputError
from zoorank.metrics import _blas, _gmm
from zoorank.metrics._registry import info
from zoorank.metrics.nleep import _leep_from_posterior, _pca_scores, nleep

from conformance import load

CASES = ("case0", "case1")


@pytest.fixture(scope="module")
def ref():
    return load("nleep")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # sklearn's reference EM is a loop of small Cholesky factorisations, which two-threaded
    # OpenBLAS slows down 5-10x on a busy machine; results do not depend on the thread count.
    with _blas.single_thread():
        yield


# ---------------------------------------------------------------- conformance


@pytest.mark.parametrize("gmm", ["sklearn", "fast"])
@pytest.mark.parametrize("case", CASES)
def test_conformance_score(ref, case, gmm):
    # sklearn: the upstream calls themselves; fast: our PCA + EM (measured 1e-8 relative)
    got = nleep(ref[f"{case}_X"], ref[f"{case}_y"], gmm=gmm)
    assert got == pytest.approx(float(ref[f"{case}_score"]), rel=1e-6)


@pytest.mark.parametrize("gmm", ["sklearn", "fast"])
@pytest.mark.parametrize("case", CASES)
def test_conformance_sfda_variant(ref, case, gmm):
    # SFDA repo: np.random.seed(0) + GaussianMixture(random_state=None) == random_state=0,
    # no float32 casts, no log. Both paths reproduce it to rounding (measured ≤ 2e-16).
    got = nleep(ref[f"{case}_X"], ref[f"{case}_y"], gmm=gmm, log=False, float32=False,
                random_state=0)
    assert got == pytest.approx(float(ref[f"{case}_score_sfda_nolog_seed0"]), rel=1e-6)


def test_seed_changes_the_score_like_the_reference(ref):
    # README: case1 with random_state 0 gives -1.671 (vs -1.649 at 123)
    X, y = ref["case1_X"], ref["case1_y"]
    assert nleep(X, y, random_state=0) == pytest.approx(-1.671, abs=1e-3)
    assert nleep(X, y, random_state=0) == nleep(X, y, random_state=0)  # deterministic


def test_rotation_translation_invariant_but_not_scale(ref):
    X, y = ref["case1_X"].astype(np.float64), ref["case1_y"]
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    base = nleep(X, y)
    assert nleep(X @ Q + rng.normal(size=X.shape[1]) * 3.0, y) == pytest.approx(base, rel=1e-6)
    assert abs(nleep(X * 1e-3, y) - base) > 0.1  # the 1e-6 covariance ridge is absolute


def test_registry_entry():
    entry = info("nleep")
    assert entry.stochastic and entry.needs_features and entry.needs_labels
    assert not entry.needs_source_probs
    assert entry.invariances == frozenset({"rotation", "translation"})


# ---------------------------------------------------------------- PCA


@pytest.mark.parametrize("shape", [(200, 30), (40, 300)])  # feature side and sample side
def test_pca_scores_match_sklearn_full_svd(shape):
    rng = np.random.default_rng(7)
    n, d = shape
    X = rng.normal(size=(n, d)) @ np.diag(np.linspace(3.0, 0.1, d)) + 5.0
    want = PCA(n_components=0.8, svd_solver="full").fit_transform(X)
    got = _pca_scores(X, 0.8)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-9 * np.abs(want).max())


# ---------------------------------------------------------------- the fast EM


def _blobs(n, d, k, seed, spread=3.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * spread
    A = rng.normal(size=(d, d)) / np.sqrt(d)
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) @ A


# (n, d, K): full-rank soft components (m ≫ d), low-rank (m < d), and in between
REGIMES = [(600, 4, 12), (400, 40, 40), (500, 12, 40)]


@pytest.mark.parametrize(("n", "d", "K"), REGIMES)
def test_fast_em_matches_sklearn_posterior(n, d, K):
    X = _blobs(n, d, 6, seed=n + d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = GaussianMixture(n_components=K, random_state=3).fit(X)
    fast = _gmm.fit_full_gmm(X, K, random_state=3)
    assert fast.n_iter == sk.n_iter_
    assert fast.lower_bound == pytest.approx(sk.lower_bound_, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(fast.posterior, sk.predict_proba(X), atol=1e-7)


def test_max_iter_stops_like_sklearn():
    X = _blobs(600, 4, 12, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = GaussianMixture(n_components=12, random_state=0, max_iter=3).fit(X)
    fast = _gmm.fit_full_gmm(X, 12, random_state=0, max_iter=3)
    assert (fast.n_iter, fast.converged) == (3, False) == (sk.n_iter_, sk.converged_)
    np.testing.assert_allclose(fast.posterior, sk.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_fast_em_matches_sklearn_on_conformance_pca(ref, case):
    # the upstream pipeline: PCA(0.8) scores cast to float32; sklearn then runs EM in float32
    y = ref[f"{case}_y"]
    K = 5 * (y.max() + 1)
    Z = _pca_scores(ref[f"{case}_X"].astype(np.float64), 0.8).astype(np.float32)
    sk = GaussianMixture(n_components=K, random_state=123).fit(Z)
    fast = _gmm.fit_full_gmm(Z, K, random_state=123)
    assert fast.n_iter == sk.n_iter_
    np.testing.assert_allclose(fast.posterior, sk.predict_proba(Z), atol=1e-5)
    sk64 = GaussianMixture(n_components=K, random_state=123).fit(Z.astype(np.float64))
    np.testing.assert_allclose(fast.posterior, sk64.predict_proba(Z.astype(np.float64)),
                               atol=1e-11)


def test_dropping_tiny_responsibilities_is_negligible():
    X = _blobs(600, 4, 12, seed=1)  # soft regime: many small but non-zero responsibilities
    exact = _gmm.fit_full_gmm(X, 12, random_state=0, resp_tol=0.0)
    sparse = _gmm.fit_full_gmm(X, 12, random_state=0)
    assert sparse.n_iter == exact.n_iter > 3
    np.testing.assert_allclose(sparse.posterior, exact.posterior, atol=1e-10)


@pytest.mark.parametrize(("m", "d"), [(5, 12), (30, 6)])  # low-rank and full-rank component
def test_eigen_form_log_density_is_the_dense_gaussian(m, d):
    rng = np.random.default_rng(m * d)
    X = rng.normal(size=(m + 20, d)) * 2.0
    rows = np.arange(m)
    cols = np.zeros(m, dtype=np.int64)
    vals = rng.uniform(0.2, 1.0, size=m)
    reg = 1e-3
    mix = _gmm._fit_components(X, rows, cols, vals, 1, reg, initial=False)
    nk = vals.sum() + 10 * np.finfo(float).eps
    mu = vals @ X[:m] / nk
    diff = X[:m] - mu
    cov = (diff * vals[:, None]).T @ diff / nk + reg * np.eye(d)
    np.testing.assert_allclose(mix.means[0], mu, rtol=1e-12)
    want = multivariate_normal(mu, cov).logpdf(X)  # log weight is log(1) = 0
    np.testing.assert_allclose(_gmm.weighted_log_prob(X, mix)[:, 0], want, rtol=1e-9)


def test_fast_path_is_deterministic_and_seeded(ref):
    X, y = ref["case0_X"], ref["case0_y"]
    assert nleep(X, y, random_state=5) == nleep(X, y, random_state=5)
    scores = {nleep(X, y, random_state=s) for s in range(4)}
    assert len(scores) > 1  # the seed reaches the k-means initialisation


# ---------------------------------------------------------------- LEEP step


def test_leep_closed_forms():
    y = np.array([0, 0, 1, 1, 1, 2])
    # pure hard clusters: P(y|k) = 1 for every sample → log 1 = 0
    hard = np.eye(3)[y]
    assert _leep_from_posterior(hard, y, 3) == 0.0
    assert _leep_from_posterior(hard, y, 3, log=False) == 1.0
    # identical rows: eep_i = n_{y_i}/N → −H(Y) and Σ p_c²
    flat = np.tile([0.2, 0.5, 0.3, 0.0], (6, 1))
    p = np.array([2, 3, 1]) / 6
    assert _leep_from_posterior(flat, y, 3) == pytest.approx(p @ np.log(p), rel=1e-12)
    assert _leep_from_posterior(flat, y, 3, log=False) == pytest.approx(p @ p, rel=1e-12)
    # hand-computed: two states
    P = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    yy = np.array([0, 1, 1])
    # P(y|z0) = (1, .5)/1.5, P(y|z1) = (0, 1.5)/1.5
    eep = np.array([1 / 1.5, 0.5 * 0.5 / 1.5 + 0.5, 1.0])
    assert _leep_from_posterior(P, yy, 2) == pytest.approx(np.log(eep).mean(), rel=1e-12)


# ---------------------------------------------------------------- degenerate input


def _task(n=120, d=20, c=4, seed=0, sep=2.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    X = rng.normal(size=(c, d))[y] * sep + rng.normal(size=(n, d))
    return X, y


def test_fewer_samples_than_components():
    X, y = _task(n=30, c=10)  # K = 5·10 = 50 > 30
    with pytest.raises(InputError, match=r"nleep: needs at least 50 samples .*component_ratio"):
        nleep(X, y)
    assert np.isfinite(nleep(X, y, component_ratio=1))


def test_constant_features_give_minus_label_entropy():
    _, y = _task(n=50, c=3)
    p = np.bincount(y) / y.size
    X = np.full((50, 7), 3.25)
    for gmm in ("fast", "sklearn"):
        assert nleep(X, y, gmm=gmm) == pytest.approx(p @ np.log(p), rel=1e-12)
    assert nleep(X, y, log=False) == pytest.approx(p @ p, rel=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: (np.repeat(_task(n=24)[0], 5, axis=0), np.repeat(_task(n=24)[1], 5)),
                     id="duplicated samples"),
        pytest.param(lambda: _task(n=40, d=500), id="D much larger than N"),
        pytest.param(lambda: _task(n=20, d=6, c=4), id="N equals K"),
        pytest.param(lambda: (np.c_[_task()[0], np.full(120, 5.0)], _task()[1]),
                     id="one constant column"),
    ],
)
def test_degenerate_input_finite_without_warnings(make):
    X, y = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = nleep(X, y)
    assert np.isfinite(fast) and fast <= 1e-6  # ≤ 0 up to the float32 posterior's rounding


def test_duplicates_fewer_distinct_points_than_components():
    X, y = _task(n=12, c=4)
    X, y = np.repeat(X, 5, axis=0), np.repeat(y, 5)  # 12 distinct points, K = 20 components
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = nleep(X, y)
    # every sample sits on its own distinct point's component: a pure posterior, score 0
    assert fast == pytest.approx(0.0, abs=1e-12)


def test_d_much_larger_than_n_agrees_with_sklearn_path():
    # (sklearn's float32 EM fails its Cholesky here, so compare the float64 variants)
    X, y = _task(n=60, d=400, c=3, seed=2, sep=0.3)
    fast = nleep(X, y, float32=False)
    assert fast == pytest.approx(nleep(X, y, gmm="sklearn", float32=False), abs=1e-9)
    assert -np.log(3) < fast < 0


def test_sklearn_failure_becomes_input_error(monkeypatch):
    def broken(self, X, y=None):
        raise ValueError("Fitting the mixture model failed")

    monkeypatch.setattr(GaussianMixture, "fit", broken)
    X, y = _task()
    with pytest.raises(InputError, match=r"nleep: sklearn's GaussianMixture failed.*gmm='fast'"):
        nleep(X, y, gmm="sklearn")
    assert np.isfinite(nleep(X, y))  # the fast path does not use it


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gmm": "torch"}, "gmm must be"),
        ({"component_ratio": 0}, "component_ratio"),
        ({"component_ratio": 2.5}, "component_ratio"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_bad_parameters(kwargs, match):
    X, y = _task()
    with pytest.raises(InputError, match=match):
        nleep(X, y, **kwargs)
