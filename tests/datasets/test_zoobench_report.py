"""The noise ceiling beside ZooBench's summary tables (zoorank.datasets.zoobench.report)."""

import json

import numpy as np

from zoorank import evaluation as H
from zoorank import ranking as R
from zoorank.datasets.planted import PlantedProvider
from zoorank.datasets.zoobench import report as RP


def test_the_noise_ceiling_is_the_second_seeds_tau_beside_each_method_on_the_same_targets(tmp_path):
    bench = PlantedProvider(n_models=5, n_tasks=4, seed=1).benchmark()
    rng = np.random.default_rng(0)
    second = {t: bench.truth(t) + rng.normal(0, 0.05, len(bench.models)) for t in bench.tasks[:2]}
    lines = [{"model": m, "task": t, "seed": 1, "finetune_acc": float(v[i])}
             for t, v in second.items() for i, m in enumerate(bench.models)]
    lines.append({"model": bench.models[0], "task": bench.tasks[2], "seed": 1, "finetune_acc": 0.5})  # partial
    lines.append({"model": bench.models[0], "task": bench.tasks[3], "seed": 0, "finetune_acc": 0.5})  # the build's
    (tmp_path / RP.NOISE_CEILING_FILE).write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    recs = [H.Record("a", t, 0.1 * (k + 1), 0.0, 0.0, 0, 0.0) for k, t in enumerate(bench.tasks)]
    recs.append(H.Record("b", bench.tasks[0], 0.9, 0.0, 0.0, 0, 0.0))  # not on every ceiling target: left out
    text = RP.noise_ceiling_markdown(bench, H.RunResult(recs), tmp_path)
    want = np.mean([R.weighted_tau(second[t], bench.truth(t)) for t in bench.tasks[:2]])
    assert f"on 2 targets: {', '.join(sorted(bench.tasks[:2]))}): {want:.3f} mean weighted tau" in text
    assert "`a` 0.150" in text and "`b`" not in text
    assert RP.noise_ceiling_markdown(bench, H.RunResult(recs), tmp_path / "none") == ""
