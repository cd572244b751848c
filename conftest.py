"""pytest set-up shared by ``tests/`` (the package) and ``benchmarks/tests/`` (the studies)."""

import os
import sys
from pathlib import Path

import zoorank  # noqa: F401  (first: pins the CPU kernels before the tests import numpy or torch)

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))  # the shared cases of tests/

import pytest
from hypothesis import settings

# fixtures shared by the tests of the package and those of the studies
pytest_plugins = ["metarank_cases"]

# Property tests draw their examples deterministically, so a CI run is reproducible; set
# HYPOTHESIS_PROFILE=explore locally to search with fresh random examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _user_data_in_a_temporary_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's knowledge base or fitted rankers: ``ZOORANK_HOME`` points at an empty
    folder (caches stay shared: they only cost time)."""
    monkeypatch.setenv("ZOORANK_HOME", str(tmp_path_factory.mktemp("zoorank-home")))
    for var in ("ZOORANK_KB", "ZOORANK_RANKERS"):
        monkeypatch.delenv(var, raising=False)
