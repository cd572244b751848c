"""Torch settings that make a computation repeatable: a fixed intra-op thread count and deterministic kernels.

:func:`torch_threads` is the one way the learned methods (Spider's scorer, MetaRank's meta-predictor and text
encoder) and ZooBench's training run torch: inside the block torch uses exactly ``n`` intra-op threads (a reduction
split over a different number of threads can round differently) and ``torch.use_deterministic_algorithms(True,
warn_only=True)`` unless the caller already asked for it (kernels with a deterministic variant use it; torch also
fills new uninitialised memory); both are restored on exit, so the caller's settings are untouched. Imported lazily:
torch is loaded on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from zoorank.errors import InputError

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads and deterministic kernels (``n=None``: keep the thread count)."""
    import torch

    if n is not None and int(n) < 1:
        raise InputError(f"the torch thread count must be >= 1, got {n}")
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if n is not None:
        torch.set_num_threads(int(n))
    if not deterministic:  # a caller's strict mode (warn_only=False) is kept as it is
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
