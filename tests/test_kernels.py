"""The CPU kernels are pinned (zoorank._kernels): every x86-64 machine with AVX2 computes with the same ones, so
the committed benchmark records reproduce to the last digit on machines with and without AVX-512."""

import os
import subprocess
import sys

import pytest

from zoorank import _kernels as K

needs_pin = pytest.mark.skipif(not K._has_avx2_fma() or os.environ.get("ZOORANK_NATIVE_KERNELS", "") not in ("", "0"),
                               reason="no AVX2 + FMA x86-64 CPU, or native kernels asked for")


@needs_pin
def test_the_test_process_computes_with_the_pinned_kernels():
    import threadpoolctl
    import torch

    assert K.pinned() and K.PINNED_AT_IMPORT
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
    assert {lib["architecture"] for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"} \
        == {"Haswell"}


@needs_pin
def test_importing_zoorank_first_pins_and_a_user_setting_or_the_opt_out_wins():
    def run(code, **env):
        full = {k: v for k, v in os.environ.items() if k not in K.KERNELS and k != "ZOORANK_NATIVE_KERNELS"}
        return subprocess.run([sys.executable, "-c", code], env={**full, **env}, check=True, capture_output=True,
                              text=True).stdout.split()

    probe = ("import zoorank, os, torch; from zoorank import _kernels as K; "
             "print(K.PINNED_AT_IMPORT, torch.backends.cpu.get_cpu_capability(), os.environ.get('OPENBLAS_CORETYPE'))")
    assert run(probe) == ["True", "AVX2", "Haswell"]
    assert run(probe, ZOORANK_NATIVE_KERNELS="1")[0] == "False"
    assert run(probe, OPENBLAS_CORETYPE="Zen")[2] == "Zen"  # what the user set is kept
    npy = "import zoorank, numpy; from numpy._core._multiarray_umath import __cpu_dispatch__ as d; print('ok')"
    assert run(npy) == ["ok"]  # numpy imports without a word about the features it does not dispatch
    late = "import numpy; import zoorank; from zoorank import _kernels as K; print(K.PINNED_AT_IMPORT)"
    assert run(late) == ["False"]  # numpy came first: its BLAS was not pinned, and zoorank says so


def test_the_kernel_family_names_the_committed_records_this_machine_reproduces(monkeypatch):
    monkeypatch.setattr(K, "_cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    assert K.kernel_family() == "avx2"  # an AVX-512 CPU without AMX gives the AVX2 machines' digits once pinned
    monkeypatch.setattr(K, "_cpu_flags", lambda: {"avx2", "fma", "avx512f", "amx_tile"})
    assert K.kernel_family() == "amx"
    monkeypatch.setattr(K, "pinned", lambda: False)
    assert K.kernel_family() == "native"
