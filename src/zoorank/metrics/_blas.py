"""Scoped BLAS thread limits for the calls that do not benefit from BLAS threading.

OpenBLAS threads level-1/2 work (dot products, axpy, the tridiagonal reduction inside a
symmetric eigensolver) in small chunks whose threads synchronise by spinning. On 2 cores
that gains little, and when the cores are oversubscribed (other processes running) it can be
10-30x slower than one thread. The few such calls are wrapped in ``single_thread()``; GEMMs keep
the caller's thread count. Limits are scoped to the ``with`` block and restored on exit;
nothing is set globally.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

_CONTROLLER: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    global _CONTROLLER
    if _CONTROLLER is None:  # created lazily, after numpy/scipy have loaded their BLAS
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.select(user_api="blas")


def threads() -> int:
    """The largest thread count of the loaded BLAS libraries (1 if none is known)."""
    return max([lib["num_threads"] for lib in _blas().info()], default=1)


def single_thread():
    """Context manager: every BLAS library limited to one thread inside the block."""
    return _blas().limit(limits=1)


def limit(n: int):
    """Context manager: every BLAS library limited to ``n`` threads inside the block."""
    return _blas().limit(limits=n)
