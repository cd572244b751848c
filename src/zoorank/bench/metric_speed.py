"""Speed of every transferability metric, measured (``zoorank bench metrics``).

Each measurement runs in a fresh subprocess (so peak memory is that metric's alone): seeded
:func:`zoorank.bench.synthetic.make_task` data, the metric called ``repeat`` times, the median wall
time and the process's peak resident memory reported. The reference medians are those of the
published implementations on a machine like ours (``../shared/conformance/REFERENCE_TIMINGS.md``,
N=5000, D=2048, C=100, LEEP/NCE with 1000 source classes); the ratio column is reference / ours.
"""

from __future__ import annotations

import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: Median seconds of the reference implementations at N=5000, D=2048, C=100
#: (REFERENCE_TIMINGS.md; measured on a shared 2-core machine, orders of magnitude).
REFERENCE_SECONDS = {
    "logme": 31.849, "leep": 0.130, "nce": 0.009, "hscore": 8.751, "reg_hscore": 27.432,
    "transrate": 63.927, "sfda": 75.693, "nleep": 147.668, "gbc": 94.972, "parc": 11.191,
    "etran": 38.639, "ncti": 7.209, "ped": 37.223, "pactran": 30.368,
}

SIZES = {"realistic": (5000, 2048, 100), "small": (500, 64, 10)}


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
    from zoorank.bench.synthetic import make_task

    task = make_task(n, d, c, seed=seed, n_source_classes=1000 if n >= 1000 else 50, n_general=min(2000, 4 * n))
    kwargs = {"source_probs": task.source_probs, "general_features": task.general_features}
    if name == "nce":
        # NCE consumes hard source labels; the reference was timed on argmax labels given to it.
        kwargs = {"source_labels": task.source_probs.argmax(axis=1)}
    runs, score = [], math.nan
    for _ in range(repeat):
        t0 = time.perf_counter()
        score = (metrics.nce(None, task.labels, **kwargs) if name == "nce"
                 else metrics.compute_available(name, task.features, task.labels, **kwargs))
        runs.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return Timing(name, n, d, c, statistics.median(runs), runs, peak_mb, float(score))


def measure(name: str, n: int, d: int, c: int, *, seed: int = 0, repeat: int = 3,
            timeout: float = 600.0) -> Timing:
    """Time metric ``name`` in a fresh subprocess; raises RuntimeError with its stderr on failure."""
    cmd = [sys.executable, "-m", "zoorank.bench.metric_speed", name, str(n), str(d), str(c),
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


def machine_line() -> str:
    import numpy
    import scipy
    import sklearn

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version', '')}".strip()
                                 for i in threadpool_info() if i["user_api"] == "blas"}))
    except Exception:  # pragma: no cover - informational only
        blas = "?"
    import os

    return (f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"scikit-learn {sklearn.__version__}, BLAS {blas}, {os.cpu_count()} CPU cores")



def write_markdown_section(path: Path, marker: str, body: str) -> None:
    """Replace the text between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` in ``path``
    (appending the section when absent); the rest of the file is kept."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def command_line(prog: str, argv: list[str] | None) -> str:
    """The command a report was made by (``argv``: the arguments given, or None for ``sys.argv``)."""
    import shlex

    return f"{prog} " + shlex.join(argv if argv is not None else sys.argv[1:])


def publish_section(text: str, write: str | Path | None, marker: str) -> None:
    """Print a report section and, with ``write``, put it between ``marker``'s comments in that Markdown file."""
    print(text)
    if write:
        write_markdown_section(Path(write), marker, text)


if __name__ == "__main__":
    name, n, d, c, seed, repeat = sys.argv[1], *map(int, sys.argv[2:7])
    t = measure_here(name, n, d, c, seed=seed, repeat=repeat)
    print(json.dumps(asdict(t)))
