"""benchmarks.fold_in: revealed accuracies through the Gaussian belief never cost, and pay when models covary."""

import numpy as np
import pytest

from benchmarks.fold_in import evaluate, render


def _zoo(structured: bool, T=10, M=12, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.8, M)
    if not structured:
        return base + 0.05 * rng.normal(size=(T, M))
    groups = np.arange(M) % 2  # two families whose fortunes swap from task to task
    swing = rng.normal(size=(T, 1)) * 0.1
    return base + np.where(groups == 0, swing, -swing) + 0.005 * rng.normal(size=(T, M))


def test_fold_in_pays_on_a_structured_zoo_and_costs_nothing_on_noise():
    models = [f"m{i}" for i in range(12)]
    structured = evaluate(_zoo(True), models, ks=(3,), draws=4, tune_tasks=6)
    for rule in ("tuned", "averaged"):
        assert structured[(rule, 3)] > 0.1, rule
    assert structured["sets"] == 10 and len(structured["weights"]) == 5
    noise = evaluate(_zoo(False), models, ks=(3,), draws=4, tune_tasks=6)
    for rule in ("tuned", "averaged"):
        assert noise[(rule, 3)] > -0.02, rule
    # on noise the diagonal (last) explains the revealed contrasts better than the unshrunk sample covariance
    assert noise["weights"][-1] > structured["weights"][-1]
    body = render({"a": {**structured, "models": 12}}, "cmd", 1.0, draws=4)
    assert structured["prior"] == pytest.approx(structured["popularity"])  # no missing entries: popularity
    assert "| a | 12 x 10 |" in body and "`averaged`: smallest gain" in body and "over 4 draws" in body
    only = evaluate(_zoo(True), models, ks=(3,), draws=2, rules=("averaged",))
    assert only[("averaged", 3)] == pytest.approx(evaluate(_zoo(True), models, ks=(3,), draws=2)[("averaged", 3)])
    assert only["lambdas"] == [] and ("tuned", 3) not in only
