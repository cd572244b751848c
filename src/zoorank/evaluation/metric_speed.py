"""Speed of every transferability metric, measured (``zoorank bench metrics``).

Each measurement runs in a fresh subprocess (so peak memory is that metric's alone): seeded
:func:`zoorank.metrics.synthetic.make_task` data, the metric called ``repeat`` times, the median wall
time and the process's peak resident memory reported. The reference medians are those of the
published implementations on a machine like ours (``../shared/conformance/REFERENCE_TIMINGS.md``,
N=5000, D=2048, C=100, LEEP/NCE with 1000 source classes); the ratio column is reference / ours.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from zoorank.evaluation.tables import machine_line

#: Median seconds of the reference implementations at N=5000, D=2048, C=100
#: (REFERENCE_TIMINGS.md; measured on a shared 2-core machine, orders of magnitude).
REFERENCE_SECONDS = {
    "logme": 31.849, "leep": 0.130, "nce": 0.009, "hscore": 8.751, "reg_hscore": 27.432,
    "transrate": 63.927, "sfda": 75.693, "nleep": 147.668, "gbc": 94.972, "parc": 11.191,
    "etran": 38.639, "ncti": 7.209, "ped": 37.223, "pactran": 30.368,
}

SIZES = {"realistic": (5000, 2048, 100), "small": (500, 64, 10)}

#: Rows timed beside the registry's metrics: a metric's regression form (``<metric>:regression``), on C real-valued
#: targets, each a seeded random linear read-out of the features plus noise.
REGRESSION_ROWS = ("logme:regression",)


def speed_names(metric_names: str) -> list[str]:
    """The rows ``zoorank bench metrics --metric`` times: ``all`` = every registered metric then
    :data:`REGRESSION_ROWS`; otherwise the comma-separated names (InputError for an unknown one)."""
    from zoorank import metrics as M

    if metric_names == "all":
        return [*M.available(), *REGRESSION_ROWS]
    names = [m.strip() for m in metric_names.split(",") if m.strip()]
    for name in names:
        if name not in REGRESSION_ROWS:
            M.info(name)
    return names


def regression_targets(features, c: int, seed: int):
    """[N, c] real targets: a seeded random linear read-out of standardised ``features`` plus unit noise."""
    import numpy as np

    rng = np.random.default_rng([seed, c])
    X = (features - features.mean(0)) / np.maximum(features.std(0), 1e-12)
    W = rng.normal(size=(X.shape[1], c)) / np.sqrt(X.shape[1])
    return X @ W + rng.normal(size=(X.shape[0], c))


@dataclass
class Timing:
    metric: str
    n: int
    d: int
    c: int
    seconds: float  # median over repeats
    runs: list[float]
    peak_mb: float  # peak resident memory of the measuring process
    score: float

    @property
    def reference(self) -> float | None:
        if (self.n, self.d, self.c) != SIZES["realistic"]:
            return None
        return REFERENCE_SECONDS.get(self.metric)

    @property
    def speedup(self) -> float | None:
        ref = self.reference
        return None if ref is None else ref / max(self.seconds, 1e-9)


def measure_here(name: str, n: int, d: int, c: int, *, seed: int = 0, repeat: int = 3) -> Timing:
    """Time metric ``name`` in this process (the subprocess entry point)."""
    from zoorank import metrics
    from zoorank.metrics.synthetic import make_task

    task = make_task(n, d, c, seed=seed, n_source_classes=1000 if n >= 1000 else 50, n_general=min(2000, 4 * n))
    kwargs = {"source_probs": task.source_probs, "general_features": task.general_features}
    if name == "nce":
        # NCE consumes hard source labels; the reference was timed on argmax labels given to it.
        kwargs = {"source_labels": task.source_probs.argmax(axis=1)}
    runs, score = [], math.nan
    if name in REGRESSION_ROWS:
        targets = regression_targets(task.features, c, seed)
    for _ in range(repeat):
        t0 = time.perf_counter()
        if name in REGRESSION_ROWS:
            score = metrics.compute(name.split(":")[0], task.features, targets, regression=True)
        elif name == "nce":
            score = metrics.nce(None, task.labels, **kwargs)
        else:
            score = metrics.compute_available(name, task.features, task.labels, **kwargs)
        runs.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return Timing(name, n, d, c, statistics.median(runs), runs, peak_mb, float(score))


def measure(name: str, n: int, d: int, c: int, *, seed: int = 0, repeat: int = 3,
            timeout: float = 600.0) -> Timing:
    """Time metric ``name`` in a fresh subprocess; raises RuntimeError with its stderr on failure."""
    cmd = [sys.executable, "-m", "zoorank.evaluation.metric_speed", name, str(n), str(d), str(c),
           str(seed), str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} at N={n}, D={d}, C={c} failed:\n{proc.stderr[-2000:]}")
    return Timing(**json.loads(proc.stdout.strip().splitlines()[-1]))


def scaling_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size): time ∝ size^slope."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-6)) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


SCALING_GRID = {
    "N": [(1250, 2048, 100), (2500, 2048, 100), (5000, 2048, 100)],
    "D": [(5000, 512, 100), (5000, 1024, 100), (5000, 2048, 100)],
    "C": [(5000, 2048, 25), (5000, 2048, 50), (5000, 2048, 100)],
}


def _grid_beyond(sizes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The sizes of :data:`SCALING_GRID` not already among ``sizes``."""
    return sorted({g for axis in SCALING_GRID.values() for g in axis} - set(sizes))


def n_jobs(names: list[str], sizes: list[tuple[int, int, int]], scaling: bool) -> int:
    """How many measurements :func:`measure_all` makes."""
    return len(names) * (len(sizes) + (len(_grid_beyond(sizes)) if scaling else 0))


def measure_all(names: list[str], sizes: list[tuple[int, int, int]], *, repeat: int = 3, scaling: bool = False,
                seed: int = 0, on_job=None) -> tuple[list[Timing], dict]:
    """Time every metric of ``names`` at every size (``repeat`` calls each) and, with ``scaling``, over
    :data:`SCALING_GRID` (one call each) with the fitted growth exponents. ``on_job(name, n, d, c, error)`` is
    called after each measurement (``error``: None or the exception of a metric that failed)."""
    jobs = [(name, sz) for sz in sizes for name in names]
    grid_jobs = [(name, g) for g in _grid_beyond(sizes) for name in names] if scaling else []
    measured: dict[tuple, Timing] = {}
    timings: list[Timing] = []
    for name, (n, d, c) in jobs + grid_jobs:
        reps = repeat if (name, (n, d, c)) in jobs else 1
        error = None
        try:
            t = measure(name, n, d, c, seed=seed, repeat=reps)
        except Exception as exc:  # one metric failing must not hide the others' timings
            error = exc
        else:
            measured[(name, (n, d, c))] = t
            if (name, (n, d, c)) in jobs:
                timings.append(t)
        if on_job is not None:
            on_job(name, n, d, c, error)
    growth: dict = {}
    if scaling:
        for name in names:
            per_axis = {}
            for axis, grid in SCALING_GRID.items():
                ts = [measured.get((name, g)) for g in grid]
                if any(t is None for t in ts):
                    break
                axis_sizes = [dict(zip("NDC", g, strict=True))[axis] for g in grid]
                secs = [t.seconds for t in ts]
                per_axis[axis] = {"sizes": axis_sizes, "seconds": secs, "exponent": scaling_exponent(axis_sizes, secs)}
            else:
                growth[name] = per_axis
    return timings, growth


def _secs(x: float) -> str:
    return f"{x:.3f}" if x >= 0.01 else f"{x * 1000:.2f} ms"


def markdown(timings: list[Timing], scaling: dict, command: str) -> str:
    """The ``metric-speed`` section of ``docs/BENCHMARKS.md``."""
    lines = [
        "## Metric speed",
        "",
        f"Command: `{command}`  ",
        f"Measured {_dt.date.today().isoformat()} on: {machine_line()}.  ",
        "Each metric runs in a fresh process on seeded `make_task()` data (post-ReLU-like features, "
        "~256 effective dimensions, balanced classes, 1000 source classes for LEEP, argmax source "
        "labels for NCE as in the reference timing; `logme:regression` is LogME's regression form on C "
        "real-valued targets, seeded linear read-outs of the features plus noise); median of the repeats; peak = "
        "the process's "
        "peak resident memory (data included). Reference = the "
        "median of the published implementation (`../shared/conformance/REFERENCE_TIMINGS.md`, a "
        "shared 2-core machine: orders of magnitude); speed-up = reference / ours.",
        "",
    ]
    for size, (n, d, c) in SIZES.items():
        rows = [t for t in timings if (t.n, t.d, t.c) == (n, d, c)]
        if not rows:
            continue
        lines += [f"### {size}: N={n}, D={d}, C={c}", "",
                  "| metric | ours (s) | reference (s) | speed-up | peak MB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for t in rows:
            ref = t.reference
            lines.append(f"| {t.metric} | {_secs(t.seconds)} | {'-' if ref is None else f'{ref:.3f}'} | "
                         f"{'-' if ref is None else f'{t.speedup:.0f}x'} | {t.peak_mb:.0f} |")
        lines.append("")
    if scaling:
        lines += ["### Growth with N, D and C", "",
                  "Exponent a of time ∝ size^a, fitted over the grid "
                  + "; ".join(f"{k} ∈ {{{', '.join(str(dict(zip('NDC', g, strict=True))[k]) for g in grid)}}}"
                              for k, grid in SCALING_GRID.items())
                  + " (the other two at N=5000, D=2048, C=100). Below ~0.05 s the fit is dominated by noise.",
                  "",
                  "| metric | " + " | ".join(f"s at {k}={v}" for k in SCALING_GRID for v in
                                              [dict(zip("NDC", g, strict=True))[k] for g in SCALING_GRID[k]])
                  + " | a(N) | a(D) | a(C) |",
                  "| --- |" + " ---: |" * (3 * len(SCALING_GRID) + 3)]
        for name, per_axis in scaling.items():
            cells = [f"{t:.3f}" for axis in SCALING_GRID for t in per_axis[axis]["seconds"]]
            exps = [f"{per_axis[axis]['exponent']:.2f}" for axis in SCALING_GRID]
            lines.append(f"| {name} | " + " | ".join(cells + exps) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    name, n, d, c, seed, repeat = sys.argv[1], *map(int, sys.argv[2:7])
    t = measure_here(name, n, d, c, seed=seed, repeat=repeat)
    print(json.dumps(asdict(t)))
