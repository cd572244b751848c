"""The Gaussian belief over a target's accuracies (zoorank.methods.posterior): closed forms, invariances, and
the guarantees the module doc states (no evidence = the prior; evidence only lowers variances)."""

import numpy as np
import pytest
from scipy.special import ndtri

from zoorank.errors import InputError
from zoorank.methods import posterior as P


def _history(T=12, M=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.9, M)
    factor = rng.normal(0, 1, M)
    return np.clip(base + 0.05 * rng.normal(size=(T, 1)) * factor + 0.02 * rng.normal(size=(T, M)), 0, 1)


MODELS = [f"m{i}" for i in range(6)]


def test_uniform_prior_is_the_population_mean_and_unshrunk_covariance_is_the_sample_covariance():
    A = _history()
    prior = P.fit_prior(A, MODELS, shrinkage=0.0, var_floor=0.0)
    np.testing.assert_allclose(prior.mean, A.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(prior.cov, np.cov(A, rowvar=False), rtol=1e-10, atol=1e-14)
    diag = P.fit_prior(A, MODELS, shrinkage=1.0, var_floor=0.0)
    np.testing.assert_allclose(diag.cov, np.diag(np.var(A, axis=0, ddof=1)), rtol=1e-10, atol=1e-14)


def test_weighted_prior_mean_and_reliability_weighted_covariance():
    A = _history()
    w = np.linspace(1, 3, A.shape[0])
    prior = P.fit_prior(A, MODELS, weights=w, shrinkage=0.0, var_floor=0.0)
    np.testing.assert_allclose(prior.mean, np.average(A, axis=0, weights=w), atol=1e-12)
    np.testing.assert_allclose(prior.cov, np.cov(A, rowvar=False, aweights=w), rtol=1e-10, atol=1e-14)


def test_schafer_strimmer_intensity_matches_the_elementwise_formula():
    A = _history(T=9, seed=3)
    X = A - A.mean(axis=0)
    Z = X / np.sqrt(np.var(A, axis=0, ddof=1))
    T, M = Z.shape
    # Schäfer & Strimmer (2005), appendix: r_ij = n/(n-1) mean(w_kij), Var(r_ij) = n/(n-1)^3 sum (w_kij - wbar)^2
    num = den = 0.0
    for i in range(M):
        for j in range(M):
            if i == j:
                continue
            wk = Z[:, i] * Z[:, j]
            r = T / (T - 1) * wk.mean()
            num += T / (T - 1) ** 3 * np.sum((wk - wk.mean()) ** 2)
            den += r ** 2
    expected = min(1.0, num / den)
    assert P._shrinkage(Z, np.full(T, 1.0 / T)) == pytest.approx(expected, rel=1e-10)


def test_no_evidence_is_the_prior_and_evidence_only_lowers_variances():
    prior = P.fit_prior(_history(), MODELS)
    same = P.posterior(prior, [])
    assert same is prior
    post = P.posterior(prior, [P.accuracy_observation([1, 4], [0.7, 0.6]), None])
    assert np.all(np.diag(post.cov) <= np.diag(prior.cov) + 1e-15)
    assert np.all(np.linalg.eigvalsh(post.cov) > -1e-12)


def test_one_observation_is_the_bivariate_normal_conditional():
    mean = np.array([0.6, 0.8])
    cov = np.array([[0.04, 0.012], [0.012, 0.01]])
    prior = P.GaussianBelief(("a", "b"), mean, cov)
    post = P.posterior(prior, [P.accuracy_observation([0], [0.7], noise=0.1)])
    g = cov[0, 0] + 0.01
    np.testing.assert_allclose(post.mean, mean + cov[:, 0] / g * (0.7 - 0.6), atol=1e-14)
    np.testing.assert_allclose(post.cov, cov - np.outer(cov[:, 0], cov[0]) / g, atol=1e-14)


def test_an_offset_free_block_ignores_a_common_shift_and_its_mean():
    prior = P.fit_prior(_history(), MODELS, shrinkage=0.3)
    vals = np.array([0.1, 0.5, 0.2])
    a = P.posterior(prior, [P.Observation((0, 2, 5), vals, 0.05, True)])
    b = P.posterior(prior, [P.Observation((0, 2, 5), vals + 7.0, 0.05, True)])
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-12)
    np.testing.assert_allclose(a.cov, b.cov, atol=1e-14)
    # a constant block says nothing: the posterior is the prior
    flat = P.posterior(prior, [P.Observation((0, 2, 5), np.full(3, 0.4), 0.05, True)])
    np.testing.assert_allclose(flat.mean, prior.mean + (flat.mean - prior.mean), atol=0)
    q = P._contrasts(4)
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(q @ np.ones(4), 0, atol=1e-14)


def test_with_a_diagonal_prior_evidence_on_some_models_leaves_the_others_alone():
    prior = P.fit_prior(_history(), MODELS, shrinkage=1.0)
    post = P.posterior(prior, [P.accuracy_observation([0, 1, 2], [0.9, 0.1, 0.5])])
    np.testing.assert_array_equal(post.mean[3:], prior.mean[3:])
    np.testing.assert_array_equal(np.diag(post.cov)[3:], np.diag(prior.cov)[3:])


def test_the_80_percent_interval_of_a_correct_gaussian_covers_80_percent():
    prior = P.fit_prior(_history(), MODELS)
    rng = np.random.default_rng(5)
    draws = rng.multivariate_normal(prior.mean, prior.cov, size=20000)
    low, high = prior.interval(0.8)
    cover = np.mean((draws >= low) & (draws <= high))
    assert cover == pytest.approx(0.8, abs=0.01)
    with pytest.raises(InputError, match="interval level"):
        prior.interval(1.0)


def test_normal_scores_are_van_der_waerden_with_ties_sharing_a_rank():
    np.testing.assert_allclose(P.normal_scores([3.0, 1.0, 2.0, 4.0]),
                               ndtri((np.array([3, 1, 2, 4]) - 0.5) / 4), atol=1e-15)
    z = P.normal_scores([1.0, 1.0 + 1e-13, 0.0])
    assert z[0] == z[1] and z[2] < z[0]


def test_calibrate_link_recovers_the_correlation_and_drops_tasks_that_cannot_inform():
    rng = np.random.default_rng(1)
    truths = rng.normal(size=(40, 30))
    assert P.calibrate_link(truths * 3 + 1, truths)[0] > 0.97  # monotone: normal scores of y against y
    rho, n = P.calibrate_link(rng.normal(size=(40, 30)), truths)
    assert n == 40 and abs(rho) < 0.08
    noisy = truths + rng.normal(size=truths.shape)  # corr(y, y + e) = 1/sqrt(2)
    assert P.calibrate_link(noisy, truths)[0] == pytest.approx(2 ** -0.5, abs=0.05)
    assert P.calibrate_link(np.full((2, 3), np.nan), np.ones((2, 3))) == (pytest.approx(np.nan, nan_ok=True), 0)


def test_score_observation_scales_to_accuracy_units_and_refuses_what_cannot_inform():
    prior = P.fit_prior(_history(), MODELS)
    assert P.score_observation(prior, [0, 1], [1.0, 2.0], 0.9) is None
    assert P.score_observation(prior, [0, 1, 2], [1.0, 2.0, 3.0], 0.0) is None
    assert P.score_observation(prior, [0, 1, 2], [1.0, 1.0, 1.0], 0.9) is None
    ob = P.score_observation(prior, [0, 1, 2, 3], [4.0, 1.0, 3.0, 2.0], 0.6)
    s_y = P.expected_spread(prior, [0, 1, 2, 3])
    assert np.std(ob.values) == pytest.approx(s_y / 0.6)
    assert ob.noise == pytest.approx(s_y * 0.8 / 0.6)
    # exchangeable prior: the posterior follows the scores' order, shrunk by rho^2 / (1 + ...) towards the mean
    flat = P.GaussianBelief(tuple("abcd"), np.full(4, 0.7), 0.01 * np.eye(4))
    ob = P.score_observation(flat, [0, 1, 2, 3], [4.0, 1.0, 3.0, 2.0], 0.6)
    post = P.posterior(flat, [ob])
    assert list(np.argsort(-post.mean)) == [0, 2, 3, 1]
    assert post.mean.mean() == pytest.approx(0.7)  # the offset is not observed


def test_missing_entries_are_imputed_and_bad_matrices_refused():
    A = _history()
    A[0, 2] = A[3, 4] = np.nan
    prior = P.fit_prior(A, MODELS)
    assert np.all(np.isfinite(prior.mean)) and np.all(np.isfinite(prior.cov))
    with pytest.raises(InputError, match="accuracy matrix"):
        P.fit_prior(A[:, :3], MODELS)
    with pytest.raises(InputError, match="kb record"):
        P.fit_prior(np.full((2, 6), np.nan), MODELS)
    with pytest.raises(InputError, match="shrinkage"):
        P.fit_prior(A, MODELS, shrinkage=1.5)


def test_a_model_with_no_result_in_history_starts_at_the_population_not_at_zero():
    rng = np.random.default_rng(0)
    A = 0.6 + 0.1 * rng.random((6, 5))
    A[:, 2] = np.nan  # in the zoo, never fine-tuned
    mean = P.fit_prior(A, list("abcde"), shrinkage=1.0).mean
    others = np.nanmean(A)
    assert abs(mean[2] - others) < 0.01  # before the fix it was imputed at 0: ranked last whatever its merit
    assert mean[2] > 0.5


def test_tune_shrinkage_keeps_the_diagonal_on_short_histories_and_is_deterministic():
    A = _history(T=10, M=8, seed=2)
    models = [f"m{i}" for i in range(8)]
    assert P.tune_shrinkage(A[:2], models) == (1.0, {})
    lam, gains = P.tune_shrinkage(A, models, draws=3)
    assert lam in P.SHRINKAGE_GRID and gains[1.0] == 0.0
    assert P.tune_shrinkage(A, models, draws=3) == (lam, gains)
    assert gains[lam] == max(gains.values())


def test_an_open_zoo_is_the_exact_marginal_plus_cold_draws_from_the_population():
    prior = P.fit_prior(_history(), MODELS)
    sub, cold = P.for_zoo(prior, ["m4", "m1", "m2"])  # a subset, reordered: the Gaussian's marginal
    assert cold == [] and sub.models == ("m4", "m1", "m2")
    np.testing.assert_array_equal(sub.mean, prior.mean[[4, 1, 2]])
    np.testing.assert_array_equal(sub.cov, prior.cov[np.ix_([4, 1, 2], [4, 1, 2])])
    zoo = ["new_a", "m0", "m3", "new_b"]  # two fitted models dropped, two never seen
    belief, cold = P.for_zoo(prior, zoo)
    assert cold == [0, 3] and belief.models == tuple(zoo)
    mu, S, a = prior.mean, prior.cov, np.full(6, 1 / 6)
    v_r = np.var(mu) + np.mean(np.diag(S)) - a @ S @ a
    for j in cold:  # the population's mean and variance; covariance = the mean column of Sigma
        assert belief.mean[j] == pytest.approx(mu.mean(), abs=1e-15)
        assert belief.cov[j, j] == pytest.approx(a @ S @ a + v_r, rel=1e-12)
        for i, m in ((1, 0), (2, 3)):
            assert belief.cov[j, i] == pytest.approx((S @ a)[m], rel=1e-12)
    assert belief.cov[0, 3] == pytest.approx(a @ S @ a, rel=1e-12)  # two cold models share only the task's level
    np.testing.assert_array_equal(belief.cov[np.ix_([1, 2], [1, 2])], prior.cov[np.ix_([0, 3], [0, 3])])
    assert np.linalg.eigvalsh(belief.cov).min() > -1e-15 and np.allclose(belief.cov, belief.cov.T)
    # its own measurement places a cold model, and only lowers its variance
    post = P.posterior(belief, [P.accuracy_observation([3], [0.99], noise=0.005)])
    assert post.order()[0] == 3 and post.cov[3, 3] < belief.cov[3, 3]
    with pytest.raises(InputError, match="names a model twice"):
        P.for_zoo(prior, ["m0", "m0"])


def test_top_chance_is_the_normal_chance_of_beating_the_kth_model():
    mean = np.array([0.90, 0.80, 0.70, 0.20])
    cov = np.array([[0.010, 0.002, 0.000, 0.0],
                    [0.002, 0.010, 0.004, 0.0],
                    [0.000, 0.004, 0.010, 0.0],
                    [0.0, 0.0, 0.0, 0.0001]])
    belief = P.GaussianBelief(tuple("abcd"), mean, cov)
    p = P.top_chance(belief, 2)  # b is the 2nd best (index 1)
    from scipy.special import ndtr
    assert p[1] == 1.0
    assert p[0] == pytest.approx(ndtr(0.10 / np.sqrt(0.010 + 0.010 - 2 * 0.002)), abs=1e-12)
    assert p[2] == pytest.approx(ndtr(-0.10 / np.sqrt(0.010 + 0.010 - 2 * 0.004)), abs=1e-12)
    assert p[3] < 1e-8
    # a sibling that moves with b is judged more sharply than an independent model at the same mean gap
    assert p[2] < ndtr(-0.10 / np.sqrt(0.02))
    assert np.all(P.top_chance(belief, 4) == 1.0) and np.all(P.top_chance(belief, 9) == 1.0)
    sure = P.GaussianBelief(tuple("ab"), np.array([0.5, 0.4]), np.zeros((2, 2)))
    assert list(P.top_chance(sure, 1)) == [1.0, 0.0]
    with pytest.raises(InputError, match="positive integer"):
        P.top_chance(belief, 0)


def test_log_evidence_is_the_gaussian_marginal_of_the_contrasts():
    from scipy.stats import multivariate_normal

    prior = P.fit_prior(_history(), MODELS, shrinkage=0.2)
    vals = np.array([0.71, 0.52, 0.66])
    idx = (0, 2, 5)
    ob = P.Observation(idx, vals, 0.05, True)
    Q = P._contrasts(3)
    cov = Q @ (prior.cov[np.ix_(idx, idx)] + 0.05 ** 2 * np.eye(3)) @ Q.T
    want = multivariate_normal(Q @ prior.mean[list(idx)], cov).logpdf(Q @ vals)
    assert P.log_evidence(prior, [ob]) == pytest.approx(want, rel=1e-10)
    # a common shift of an offset-free block changes nothing; no observation is 0 for every belief
    assert P.log_evidence(prior, [P.Observation(idx, vals + 3.0, 0.05, True)]) == pytest.approx(want, rel=1e-10)
    assert P.log_evidence(prior, []) == 0.0


def test_averaged_posterior_weights_by_evidence_and_matches_the_mixture_moments():
    prior = P.fit_prior(_history(), MODELS, shrinkage=0.2)
    diag = P.GaussianBelief(prior.models, prior.mean, np.diag(np.diag(prior.cov)))
    ob = P.accuracy_observation([1, 3], [0.8, 0.4])
    belief, w = P.averaged_posterior([prior, diag], [ob])
    le = np.array([P.log_evidence(b, [ob]) for b in (prior, diag)])
    np.testing.assert_allclose(w, np.exp(le - np.logaddexp.reduce(le)), rtol=1e-12)
    a, b = P.posterior(prior, [ob]), P.posterior(diag, [ob])
    np.testing.assert_allclose(belief.mean, w[0] * a.mean + w[1] * b.mean, rtol=1e-12)
    m = belief.mean
    want = w[0] * (a.cov + np.outer(a.mean - m, a.mean - m)) + w[1] * (b.cov + np.outer(b.mean - m, b.mean - m))
    np.testing.assert_allclose(belief.cov, want, rtol=1e-10, atol=1e-14)
    # one candidate is plain Bayes' rule; nothing observed leaves the (common) prior mean with uniform weights
    one, w1 = P.averaged_posterior([prior], [ob])
    np.testing.assert_allclose(one.mean, a.mean)
    np.testing.assert_allclose(w1, [1.0])
    none, w0 = P.averaged_posterior([prior, diag], [])
    np.testing.assert_allclose(w0, [0.5, 0.5])
    np.testing.assert_allclose(none.mean, prior.mean)
    with pytest.raises(InputError):
        P.averaged_posterior([], [ob])


def test_fold_in_trusts_the_history_s_correlations_only_where_the_revealed_contrasts_bear_them_out():
    rng = np.random.default_rng(3)
    T, M = 12, 10
    fam = np.arange(M) % 2
    swing = rng.normal(size=(T, 1)) * 0.1
    A = 0.6 + np.where(fam == 0, swing, -swing) + 0.005 * rng.normal(size=(T, M))
    models = [f"m{i}" for i in range(M)]
    # the target swings like history: family 0 up, family 1 down
    y = 0.6 + np.where(fam == 0, 0.15, -0.15)
    seen = [0, 1, 2]
    ob = P.Observation(tuple(seen), y[seen], 0.01, True, "revealed")
    belief, w = P.fold_in(A, models, [ob])
    assert set(w) == set(P.SHRINKAGE_GRID) and sum(w.values()) == pytest.approx(1.0)
    assert w[1.0] < 0.25 < w[None]  # the diagonal explains less well a gap between families that move together
    rest = np.arange(3, M)
    assert np.all(belief.mean[rest][fam[rest] == 0] > belief.mean[rest][fam[rest] == 1].max())
    # history with no structure: the revealed gap says nothing of the others, most weight stays near the diagonal
    flat = 0.6 + 0.05 * rng.normal(size=(T, M))
    _, w2 = P.fold_in(flat, models, [P.Observation(tuple(seen), flat[0, seen], 0.01, True)])
    assert w2[1.0] + w2[0.95] > w[1.0] + w[0.95]


def test_choose_rank_picks_the_imputation_that_ranks_held_out_tasks_best():
    rng = np.random.default_rng(5)
    T, M = 14, 12
    # one strong factor: models of family 1 gain on the tasks where family 0 loses
    fam = np.arange(M) % 2
    load = np.where(fam == 0, 1.0, -1.0) * rng.uniform(0.5, 1.5, M)
    A = 0.6 + 0.1 * rng.normal(size=(T, 1)) * load + 0.003 * rng.normal(size=(T, M))
    complete = A.copy()
    assert P.choose_rank(complete) == (P.IMPUTE_RANK, {})  # nothing missing: nothing to choose
    holes = A.copy()
    holes[rng.random((T, M)) < 0.25] = np.nan
    rank, scores = P.choose_rank(holes, max_tasks=None)
    assert set(scores) == set(P.IMPUTE_RANKS) and scores[rank] == max(scores.values())
    assert P.choose_rank(holes, max_tasks=None) == (rank, scores)  # deterministic
    # the chosen rank's held-out score is what a direct leave-one-out of the same completion gives
    from zoorank.ranking import weighted_tau

    want = []
    for t in range(T):
        ok = np.flatnonzero(np.isfinite(holes[t]))
        want.append(weighted_tau(P._impute(np.delete(holes, t, axis=0), rank).mean(axis=0)[ok], holes[t, ok]))
    assert scores[rank] == pytest.approx(np.mean(want))
    assert P.choose_rank(holes[:2]) == (P.IMPUTE_RANK, {})  # too short a history


def test_the_belief_ranker_keeps_its_imputation_rank_through_save_and_load(tmp_path):
    from zoorank.methods.belief import BeliefRanker

    rng = np.random.default_rng(6)
    A = rng.uniform(0.4, 0.9, (8, 6))
    A[rng.random(A.shape) < 0.2] = np.nan
    r = BeliefRanker().fit(MODELS, A)
    assert r.rank_ == P.choose_rank(A)[0]
    np.testing.assert_allclose(r.prior().mean, P.fit_prior(A, MODELS, rank=r.rank_).mean)
    back = BeliefRanker.load(r.save(tmp_path / "b.npz"))
    assert back.rank_ == r.rank_ and back.rank_scores_ == pytest.approx(r.rank_scores_)
