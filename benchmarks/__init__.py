"""The studies behind docs/BENCHMARKS.md, run from the root of a clone as ``python -m benchmarks.<study>``
(not installed with the package; nothing in ``zoorank`` imports them)."""

import zoorank  # noqa: F401  (first: pins the CPU kernels before a study imports numpy)
