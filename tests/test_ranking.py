import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoorank import InputError
from zoorank import ranking as R


def brute_weighted_tau_no_ties(x, y):
    """Vigna's hyperbolic weighted tau for tie-free input, averaged over the rank by x and by y."""
    n = len(x)
    iu = np.triu_indices(n, 1)
    s = (np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :]))[iu]
    out = []
    for key in (x, y):
        r = np.empty(n)
        r[np.argsort(-key)] = np.arange(n)
        w = 1.0 / (r + 1)
        wij = (w[:, None] + w[None, :])[iu]
        out.append((wij * s).sum() / wij.sum())
    return float(np.mean(out))


def test_weighted_tau_extremes():
    x = np.arange(10.0)
    assert R.weighted_tau(x, x) == pytest.approx(1.0)
    assert R.weighted_tau(x, -x) == pytest.approx(-1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 30), st.integers(0, 10_000))
def test_weighted_tau_matches_brute_force(n, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.permutation(n).astype(float), rng.permutation(n).astype(float)
    assert R.weighted_tau(x, y) == pytest.approx(brute_weighted_tau_no_ties(x, y), abs=1e-12)


def test_weighted_tau_weights_the_top():
    truth = np.arange(10.0)[::-1]  # item 0 is best
    swap_top = truth.copy()
    swap_top[[0, 1]] = swap_top[[1, 0]]
    swap_bottom = truth.copy()
    swap_bottom[[8, 9]] = swap_bottom[[9, 8]]
    assert R.weighted_tau(swap_top, truth) < R.weighted_tau(swap_bottom, truth) < 1.0
    # plain Kendall tau cannot tell the two apart
    assert R.kendall_tau(swap_top, truth) == pytest.approx(R.kendall_tau(swap_bottom, truth))


def test_monotone_invariance_and_constant_rule():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=20), rng.normal(size=20)
    for f in (R.weighted_tau, R.kendall_tau, R.spearman):
        assert f(np.exp(p), t) == pytest.approx(f(p, t))
        assert f(np.ones(20), t) == 0.0
    assert R.pearson(2 * p + 3, t) == pytest.approx(R.pearson(p, t))
    assert R.pearson(p, p) == pytest.approx(1.0)


def test_pearson_spearman_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(1)
    p, t = rng.normal(size=50), rng.normal(size=50)
    t[:5] = t[5]  # ties
    assert R.pearson(p, t) == pytest.approx(stats.pearsonr(p, t).statistic)
    assert R.spearman(p, t) == pytest.approx(stats.spearmanr(p, t).statistic)
    assert R.kendall_tau(p, t) == pytest.approx(stats.kendalltau(p, t).statistic)


def test_top1_regret():
    truth = np.array([0.9, 0.7, 0.8])
    assert R.top1_regret([0.1, 0.5, 0.2], truth) == pytest.approx(0.2)
    assert R.top1_regret([3, 1, 2], truth) == 0.0
    assert R.top1_regret([1, 1, 0], truth) == pytest.approx(0.1)  # tie: mean of 0.9 and 0.7


def test_ndcg_hand_computed():
    truth = np.array([3.0, 2.0, 0.0, 1.0])
    pred = np.array([0.1, 0.9, 0.5, 0.0])  # order: 1, 2, 0, 3
    dcg = 2 / np.log2(2) + 0 / np.log2(3) + 3 / np.log2(4)
    idcg = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert R.ndcg_at_k(pred, truth, 3) == pytest.approx(dcg / idcg)
    assert R.ndcg_at_k(truth, truth, 2) == pytest.approx(1.0)
    exp = R.ndcg_at_k(pred, truth, 1, gains="exponential")
    assert exp == pytest.approx((2**2 - 1) / (2**3 - 1))
    assert R.ndcg_at_k(pred, np.zeros(4), 2) == 0.0
    assert R.ndcg_at_k(pred, truth, 100) == pytest.approx(R.ndcg_at_k(pred, truth, 4))


def test_copeland_hand_example():
    # three rankings of items a, b, c (higher = better)
    scores = [[3, 2, 1], [3, 1, 2], [1, 3, 2]]
    # a vs b: 2-1 a; a vs c: 2-1 a; b vs c: 2-1 b  -> a wins 2, b wins 1, c wins 0
    np.testing.assert_allclose(R.copeland(scores), [2, 1, 0])
    # a 1-1 tie: two rankings that disagree on every pair
    np.testing.assert_allclose(R.copeland([[1, 2], [2, 1]]), [0.5, 0.5])
    # ties inside a ranking count for neither side
    np.testing.assert_allclose(R.copeland([[1, 1, 0]]), [1.5, 1.5, 0])


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(1, 6), st.integers(0, 10_000))
def test_aggregations_are_consistent(n, m, seed):
    rng = np.random.default_rng(seed)
    S = rng.integers(0, 4, size=(m, n)).astype(float)
    c = R.copeland(S)
    assert c.shape == (n,)
    assert c.sum() == pytest.approx(n * (n - 1) / 2)  # every pair hands out exactly one point
    perm = rng.permutation(n)
    np.testing.assert_allclose(R.copeland(S[:, perm]), c[perm])
    np.testing.assert_allclose(R.borda(S) + R.mean_rank(S) * m, m * (n + 1))
    if m == 1:  # one ranking: every aggregate preserves its order
        assert R.spearman(R.copeland(S), S[0]) == pytest.approx(1.0) or np.all(S[0] == S[0][0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: R.weighted_tau([1, 2], [1, 2, 3]),
        lambda: R.weighted_tau([1.0], [1.0]),
        lambda: R.pearson([1, np.nan], [1, 2]),
        lambda: R.ndcg_at_k([1, 2], [-1, 2], 1),
        lambda: R.ndcg_at_k([1, 2], [1, 2], 0),
        lambda: R.copeland([[1, 2], [1, 2, 3]]),
        lambda: R.copeland([]),
    ],
)
def test_bad_input(call):
    with pytest.raises(InputError):
        call()


def test_pearson_of_tiny_and_huge_scores():
    p, t = np.array([0.3, -1.2, 0.5, 2.0]), np.array([0.1, 0.4, 0.2, 0.3])
    expected = R.pearson(p, t)
    assert abs(expected) < 0.5
    assert R.pearson(p * 1e-170, t) == pytest.approx(expected)
    assert R.pearson(p * 1e160, t) == pytest.approx(expected)


# -- ties up to rounding -------------------------------------------------------------------------------------------


def test_snap_ties_merges_rounding_level_differences_only():
    s = np.array([9.0, 8.999999999999998, 9.000000000000004, 3.0, 3.0 + 1e-6, -1.0])
    s0 = s.copy()
    out = R.snap_ties(s)
    assert np.array_equal(s, s0)  # the caller's array is not touched
    assert out[0] == out[1] == out[2] == 9.000000000000004  # the group's largest
    assert out[3] == 3.0 and out[4] == 3.0 + 1e-6 and out[5] == -1.0  # real differences stay
    assert R.snap_ties(s, rtol=0) is not s and np.array_equal(R.snap_ties(s, rtol=0), s)


def test_snap_ties_is_relative_to_the_vector_scale_and_chains():
    s = np.array([1e12, 1e12 + 1.0, 5.0])  # 1.0 is 1e-12 of the scale: a tie
    assert R.snap_ties(s)[0] == R.snap_ties(s)[1]
    chain = np.array([1.0, 1.0 + 6e-10, 1.0 + 1.2e-9, 1.0 + 1.8e-9])  # each step below 1e-9·max
    assert len(set(R.snap_ties(chain))) == 1
    assert np.array_equal(R.snap_ties(np.array([[1.0, 1.0 + 1e-12], [2.0, 3.0]])), [[1.0 + 1e-12] * 2, [2.0, 3.0]])


def test_snap_ties_leaves_non_finite_alone():
    out = R.snap_ties(np.array([np.nan, 1.0, 1.0 + 1e-13, np.inf]))
    assert np.isnan(out[0]) and out[1] == out[2] and out[3] == np.inf


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_rank_statistics_ignore_rounding_noise(values, seed):
    """Noise of a few ulps on the scores never changes any rank statistic or order (the cross-machine case)."""
    s = np.asarray(values, dtype=np.float64)
    truth = np.random.default_rng(seed).random(s.size)
    noisy = s * (1.0 + np.random.default_rng(seed + 1).integers(-4, 5, s.size) * np.finfo(float).eps)
    for f in (R.weighted_tau, R.kendall_tau, R.spearman, R.top1_regret):
        assert f(noisy, truth) == pytest.approx(f(s, truth), abs=1e-12), f.__name__
    assert np.array_equal(R.best_first(noisy), R.best_first(s))
    assert np.array_equal(R.copeland([noisy, truth]), R.copeland([s, truth]))


def test_saturated_scores_are_ties_in_judging():
    """H-Score's C − 1 saturation as it comes out of three BLAS kernels: a tie, not an order."""
    truth = np.array([0.9, 0.8, 0.7, 0.1])
    a = np.array([9.0, 8.999999999999998, 9.000000000000004, 2.0])
    b = np.array([9.000000000000004, 9.0, 8.999999999999998, 2.0])
    assert R.weighted_tau(a, truth) == R.weighted_tau(b, truth) == R.weighted_tau([9, 9, 9, 2.0], truth)
    assert R.top1_regret(a, truth) == pytest.approx(0.1)  # the mean of the three tied models' truth


def test_best_first_keeps_input_order_within_ties_and_puts_nan_last():
    s = np.array([1.0, 2.0, 2.0 + 1e-15, np.nan, 2.0 - 1e-15, 0.5])
    assert R.best_first(s).tolist() == [1, 2, 4, 0, 5, 3]
    assert R.best_first([np.nan, -np.inf, 1.0]).tolist() == [2, 1, 0]  # -inf is a score, NaN is none
    assert R.best_first(s, 2).tolist() == [1, 2]
    assert R.best_first(s, 0).tolist() == []
    with pytest.raises(InputError, match="1-D"):
        R.best_first(np.zeros((2, 2)))
