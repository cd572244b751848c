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
    assert structured[3] > 0.1 and structured["sets"] == 10
    noise = evaluate(_zoo(False), models, ks=(3,), draws=4, tune_tasks=6)
    assert noise[3] > -0.02
    body = render({"a": {**structured, "models": 12}}, "cmd", 1.0)
    assert structured["prior"] == pytest.approx(structured["popularity"])  # no missing entries: popularity
    assert "| a | 12 x 10 |" in body and "Smallest gain" in body
