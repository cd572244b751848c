"""The one torch context of the learned methods: fixed threads and deterministic kernels inside, the caller's
settings back outside."""

import pytest
import torch

from zoorank.errors import InputError
from zoorank.methods._torch import torch_threads


def test_fixed_threads_and_deterministic_kernels_inside_restored_outside():
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch_threads(1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    with pytest.raises(RuntimeError), torch_threads(None):
        assert torch.get_num_threads() == before[0]
        raise RuntimeError("restored even on error")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_a_callers_strict_deterministic_mode_is_kept():
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(True, warn_only=False)
        with torch_threads(1):
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_a_thread_count_below_one_is_refused():
    with pytest.raises(InputError, match=">= 1"), torch_threads(0):
        pass
