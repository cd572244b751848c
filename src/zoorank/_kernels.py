"""The CPU kernels zoorank's numbers come from, pinned so that every x86-64 machine gives the same digits.

PyTorch, oneDNN, OpenBLAS and numpy's own loops pick their kernels by the instructions the CPU has; an AVX-512
kernel sums (and rounds ``exp`` / ``log``) otherwise than an AVX2 one, so the same features, metric scores and
rankings differ in their last digits from one machine to the next (enough to move a committed benchmark record). On
an x86-64 CPU with AVX2 and FMA, importing zoorank sets, unless they are already set::

    ATEN_CPU_CAPABILITY=avx2    PyTorch's own vectorised kernels
    ONEDNN_MAX_CPU_ISA=AVX2     oneDNN (convolutions, the bulk of a forward pass)
    OPENBLAS_CORETYPE=Haswell   numpy's and scipy's OpenBLAS
    NPY_DISABLE_CPU_FEATURES    numpy's AVX-512 loops (X86_V4 AVX512_ICL AVX512_SPR, or the older numpy's names)

the widest instruction set common to the machines zoorank runs on. The libraries read them when they load, so
zoorank must be imported before numpy and torch (the ``zoorank`` command, ``python -m zoorank...`` and the test suite
do so); :func:`pinned` says whether the pin holds in this process. ``ZOORANK_NATIVE_KERNELS=1`` leaves the
libraries to their own choice (faster on AVX-512 machines; the digits are then the machine's).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

__all__ = ["KERNELS", "kernel_family", "pin", "pinned"]

KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
           "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
#: numpy before 2.4 names its AVX-512 dispatch targets one by one.
_OLD_NUMPY_AVX512 = "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"


def _numpy_avx512_names() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(x) for x in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return KERNELS["NPY_DISABLE_CPU_FEATURES"]
    return KERNELS["NPY_DISABLE_CPU_FEATURES"] if (major, minor) >= (2, 4) else _OLD_NUMPY_AVX512


_LIBRARIES = ("numpy", "torch", "scipy")


def _cpu_flags() -> set[str]:
    """The instruction-set flags of an x86-64 CPU (Linux's /proc/cpuinfo; empty elsewhere)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return set()
    return set()


def _has_avx2_fma() -> bool:
    return {"avx2", "fma"} <= _cpu_flags()


def kernel_family() -> str:
    """Which machines give this process's digits: ``"avx2"`` (pinned, on any x86-64 CPU without AMX: AVX2-only and
    AVX-512 machines alike), ``"amx"`` (pinned, on a CPU with AMX tiles, Sapphire Rapids and later: there the pinned
    kernels still round otherwise, whatever MKL_CBWR says: 76 of the 139 records of ZooBench's reproducibility
    subset differ, ``zoorank bench compare benchmarks/zoobench/results_subset.amx.json
    benchmarks/zoobench/results_subset.json``), or ``"native"`` (not pinned: the machine's own digits). The
    committed reproducibility records are kept per family (``benchmarks/zoobench/README.md``)."""
    if not pinned():
        return "native"
    return "amx" if "amx_tile" in _cpu_flags() else "avx2"


def pin() -> bool:
    """Set the variables of :data:`KERNELS` that are not set (module doc); False when not pinned (another CPU,
    ``ZOORANK_NATIVE_KERNELS=1``)."""
    if os.environ.get("ZOORANK_NATIVE_KERNELS", "") not in ("", "0") or not _has_avx2_fma():
        return False
    loaded = [m for m in _LIBRARIES if m in sys.modules]
    already = pinned()
    for key, value in {**KERNELS, "NPY_DISABLE_CPU_FEATURES": _numpy_avx512_names()}.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", message=r"(?s).*You cannot disable CPU feature")
    return already or not loaded  # a library loaded before the pin keeps the kernels it chose


def pinned() -> bool:
    """Whether this process computes with the pinned kernels: every variable of :data:`KERNELS` at its value."""
    want = {**KERNELS, "NPY_DISABLE_CPU_FEATURES": _numpy_avx512_names()}
    return all(os.environ.get(k) == v for k, v in want.items())


PINNED_AT_IMPORT = pin()
