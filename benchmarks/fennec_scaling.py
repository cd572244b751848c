"""How Fennec's online ranking cost grows with the zoo: simulated zoos of 100 to 100,000 models.

Fennec ranks a new task with one proxy-encoder pass over a small sample of its images (independent of the zoo)
plus ``RF(g_t)`` (independent of the zoo), ``M d_t`` and the meta regression (both linear in the zoo size): no
forward pass of any zoo model. This measures the online part after the proxy pass, on a simulated history
(``n_models`` x 20 tasks, a random non-negative low-rank matrix, 1280-d proxy vectors, basic meta features), and
the offline fit, per zoo size; the baseline in the same run is scoring the zoo with a forward-feature metric,
whose cost is one forward pass per model (reported as the number of passes it would need).

``python -m benchmarks.fennec_scaling [--sizes 100,1000,10000,100000] [--write docs/BENCHMARKS.md]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoorank.methods.fennec.model import Fennec

SIZES = (100, 1_000, 10_000, 100_000)
N_TASKS = 20
PROXY_DIM = 2 * 1280


@dataclass(frozen=True)
class ScalingPoint:
    n_models: int
    fit_seconds: float
    rank_ms: float  # median online ranking time after the proxy pass
    zoo_forward_passes: int  # Fennec's: always 0
    metric_forward_passes: int  # what a forward-feature metric needs: one per model


def simulate(n_models: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A simulated history: P [n_models, N_TASKS] >= 0 of rank 6, proxy [N_TASKS + 1, PROXY_DIM], model features
    [n_models, 2], task features [N_TASKS + 1, 2] (the last task is the new one)."""
    rng = np.random.default_rng(seed)
    M = rng.random((n_models, 6))
    D = rng.random((N_TASKS + 1, 6))
    proxy = rng.normal(size=(N_TASKS + 1, PROXY_DIM)) + D @ rng.normal(size=(6, PROXY_DIM))
    fm = np.column_stack([rng.uniform(5, 9, n_models), rng.uniform(1, 3, n_models)])
    ft = np.column_stack([rng.uniform(0.3, 2, N_TASKS + 1), rng.uniform(2, 4, N_TASKS + 1)])
    return M @ D[:-1].T, proxy, fm, ft


def measure(n_models: int, repeat: int = 7, seed: int = 0) -> ScalingPoint:
    P, proxy, fm, ft = simulate(n_models, seed)
    t0 = time.perf_counter()
    fen = Fennec(k=4, max_iter=500).fit(P, proxy[:-1], fm, ft[:-1])
    fit = time.perf_counter() - t0
    fen.predict(proxy[-1], ft[-1])  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fen.predict(proxy[-1], ft[-1])
        times.append(time.perf_counter() - t0)
    return ScalingPoint(n_models, fit, 1000 * float(np.median(times)), 0, n_models)


def markdown(points: list[ScalingPoint], command: str) -> str:
    lines = ["## Fennec: online ranking cost against zoo size", "", f"Command: `{command}`  ",
             f"Simulated histories of {N_TASKS} tasks (rank-6 non-negative matrix, {PROXY_DIM}-d proxy vectors); "
             "online = RF(g_t), M d_t, meta regression and the merge, after the proxy pass (one pass of the proxy "
             "encoder over the task's sample, independent of the zoo: ~0.3 s for 100 images at 64 px on this CPU, "
             "per `../shared/OFFLINE.md`). "
             "Median of 7 runs. A forward-feature metric needs one forward pass per model instead.", "",
             "| zoo models | Fennec online (ms) | Fennec fit (s) | zoo forward passes: Fennec | zoo forward passes: "
             "metric |", "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {p.n_models:,} | {p.rank_ms:.1f} | {p.fit_seconds:.2f} | {p.zoo_forward_passes} | "
              f"{p.metric_forward_passes:,} |" for p in points]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from zoorank.evaluation.tables import write_markdown_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--write", default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    points = []
    for n in sizes:
        p = measure(n)
        points.append(p)
        print(f"{n:>8,} models: online {p.rank_ms:7.1f} ms, fit {p.fit_seconds:6.2f} s, zoo forward passes 0 "
              f"(a metric: {n:,})")
    if args.write:
        cmd = "python -m benchmarks.fennec_scaling" + ("" if tuple(sizes) == SIZES else f" --sizes {args.sizes}") \
              + f" --write {args.write}"
        write_markdown_section(Path(args.write), "fennec-scaling", markdown(points, cmd))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
