import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from zoorank.paths import features_dir as default_cache_dir
from zoorank.store.feature_cache import FeatureCache, cache_key


def key(i=0):
    return cache_key(model=f"m{i}", dataset="d", probe="p", preprocess="x")


def test_round_trip_and_miss(tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.get(key()) is None
    f = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    lg = np.random.default_rng(1).normal(size=(10, 3))
    cache.put(key(), f, lg, meta={"model": "m0"})
    got = cache.get(key())
    np.testing.assert_array_equal(got.features, f)
    np.testing.assert_array_equal(got.logits, lg)
    assert got.features.dtype == np.float32 and got.meta == {"model": "m0"}
    cache.put(key(1), f, indices=np.arange(10) * 2)
    assert cache.get(key(1)).logits is None
    np.testing.assert_array_equal(cache.get(key(1)).indices, np.arange(10) * 2)
    assert len(cache.entries()) == 2 and cache.size_bytes() > 0
    assert cache.clear() == 2 and cache.get(key()) is None


def test_keys_depend_on_every_part():
    base = dict(model="m", dataset="d", probe="p", preprocess="x")
    keys = {cache_key(**base)} | {cache_key(**{**base, k: "other"}) for k in base}
    assert len(keys) == 5
    assert cache_key(**base) == cache_key(**base)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "swap"])
def test_corrupt_entry_is_detected_deleted_and_missed(tmp_path, damage):
    cache = FeatureCache(tmp_path)
    f = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    p = cache.put(key(), f)
    data = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # one byte inside the stored array (uncompressed npz)
        i = data.index(np.float32(1234).tobytes())
        p.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    elif damage == "garbage":
        p.write_bytes(b"not an npz at all")
    else:  # a valid entry stored under another key
        other = cache.put(key(1), f)
        os.replace(other, p)
    assert cache.get(key()) is None
    assert not p.exists() and cache.problems and str(p) in cache.problems[-1][0]


def _writer(root, n):
    cache = FeatureCache(root)
    big = np.zeros((4000, 1024), dtype=np.float32)
    for i in range(n):
        cache.put(key(i), big + i)


def test_killed_writer_leaves_no_half_entry(tmp_path):
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), 10_000))
    proc.start()
    deadline = time.time() + 60
    while time.time() < deadline and len(FeatureCache(tmp_path).entries()) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    cache = FeatureCache(tmp_path)
    entries = cache.entries()
    assert entries, "the writer never finished an entry"
    for p in entries:  # every visible entry is complete and verifies
        assert cache.get(p.stem) is not None
    assert not cache.problems


def test_default_dir_respects_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOORANK_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ZOORANK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "zoorank" / "features"


def test_bad_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a cache key"):
        FeatureCache(tmp_path).get("../../etc/passwd")
