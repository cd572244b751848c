"""ZooBench training at tiny scale: determinism, bit-identical resume, LR choice, linear probe, fp16, zoo design."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from zoorank.datasets.zoobench import training as T
from zoorank.datasets.zoobench import zoo_design as Z
from zoorank.errors import InputError

torch.set_num_threads(1)

# densenet with dropout: tiny, fast, and its dropout draws from the global RNG (so resume must restore it)
DROP_ARCH = Z.ArchSpec("densenet-test", "densenet", "timm", "densenet121",
                       (("block_config", (2, 2)), ("drop_rate", 0.3), ("growth_rate", 8)))
SMALL = Z.ARCHS["resnet10t-w24"]


def _data(n: int = 192, classes: int = 4, seed: int = 0, noise: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images: class c has a bright vertical band at position c on a noisy background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.integers(0, noise, size=(n, 32, 32, 3)).astype(np.uint8)
    width = 32 // classes
    for c in range(classes):
        images[labels == c, :, c * width:(c + 1) * width, :] += 150
    return images, labels


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pretrain_is_deterministic_and_seeded():
    x, y = _data()
    before = torch.get_rng_state()
    a = T.pretrain(DROP_ARCH, x, y, epochs=2, lr=3e-3, seed=5)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is untouched
    b = T.pretrain(DROP_ARCH, x, y, epochs=2, lr=3e-3, seed=5)
    c = T.pretrain(DROP_ARCH, x, y, epochs=2, lr=3e-3, seed=6)
    assert _equal(a, b)
    assert not _equal(a, c)
    init = T.build_model(DROP_ARCH, 4, seed=5).state_dict()
    assert not _equal(a, init)  # it trained


def test_resume_after_interruption_is_bit_identical(tmp_path: Path):
    x, y = _data()
    kw = {"epochs": 3, "lr": 3e-3, "seed": 2, "batch_size": 32}
    reference = T.pretrain(DROP_ARCH, x, y, **kw)
    ckpt = tmp_path / "run" / "ckpt.pt"
    seen: list[int] = []

    def stop_after_two(info):
        seen.append(info["epoch"])
        assert info["phase"] == "pretrain" and info["epochs"] == 3 and np.isfinite(info["loss"])
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        T.pretrain(DROP_ARCH, x, y, checkpoint=ckpt, progress=stop_after_two, **kw)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 2 and {"model", "optimizer", "rng", "signature"} <= saved.keys()
    assert not list(ckpt.parent.glob(".*.tmp"))  # atomic writes leave no temporary file
    resumed_epochs: list[int] = []
    resumed = T.pretrain(DROP_ARCH, x, y, checkpoint=ckpt, progress=lambda i: resumed_epochs.append(i["epoch"]), **kw)
    assert seen == [1, 2] and resumed_epochs == [3]
    assert _equal(resumed, reference)
    # a finished checkpoint returns the same weights without training; another run's checkpoint is refused
    assert _equal(T.pretrain(DROP_ARCH, x, y, checkpoint=ckpt, **kw), reference)
    with pytest.raises(InputError, match="another run"):
        T.pretrain(DROP_ARCH, x, y, checkpoint=ckpt, **{**kw, "seed": 3})


def test_finetune_picks_the_best_validation_lr(tmp_path: Path):
    x, y = _data(n=320, classes=4, seed=1)
    state = T.pretrain(SMALL, x[:128], y[:128], epochs=1, lr=1e-3, seed=0)
    train, val, test = (x[128:224], y[128:224]), (x[224:272], y[224:272]), (x[272:], y[272:])
    grid = (1e-7, 3e-3)  # 1e-7 barely moves the weights; the new head stays at chance
    res = T.finetune(SMALL, state, train, val, test, lr_grid=grid, epochs=3, seed=0, batch_size=32)
    assert set(res["val_acc_per_lr"]) == set(grid)
    best = max(res["val_acc_per_lr"].values())
    assert res["val_acc_per_lr"][res["best_lr"]] == best
    assert res["best_lr"] == 3e-3 and res["val_acc_per_lr"][1e-7] < best
    assert res["finetune_acc"] == res["test_acc_per_lr"][res["best_lr"]]
    assert res["finetune_acc"] > 0.6
    # resumable: finished LRs are recorded, and a second call gives the same answer from the records
    again = T.finetune(SMALL, state, train, val, test, lr_grid=grid, epochs=3, seed=0, batch_size=32,
                       checkpoint_dir=tmp_path)
    assert again == res
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr0-1e-07.json", "lr1-0.003.json"]
    assert T.finetune(SMALL, state, train, val, test, lr_grid=grid, epochs=3, seed=0, batch_size=32,
                      checkpoint_dir=tmp_path) == res


def test_linear_probe_separable_and_random():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    centres = rng.normal(0, 4, size=(3, 16))
    x = centres[y] + rng.normal(0, 1, size=(300, 16))
    assert T.linear_probe(x[:200], y[:200], x[200:], y[200:]) > 0.9
    noise = rng.normal(size=(300, 16))
    assert T.linear_probe(noise[:200], y[:200], noise[200:], y[200:]) < 0.6
    with pytest.raises(InputError):
        T.linear_probe(x[:200], y[:200], x[200:, :5], y[200:])


def test_features_match_the_head():
    x, _ = _data(n=40)
    model = T.build_model(SMALL, 4, seed=0)
    feats, logits = T.features_and_logits(model, x, batch_size=16)
    assert feats.shape == (40, 192) and logits.shape == (40, 4)
    head = model.get_classifier()
    with torch.no_grad():
        expected = head(torch.from_numpy(feats)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_fp16_round_trip_and_checksum(tmp_path: Path):
    state = T.build_model(SMALL, 5, seed=0).state_dict()
    sha = T.save_fp16(state, tmp_path / "m.safetensors")
    assert T.save_fp16(state, tmp_path / "again.safetensors") == sha  # byte-identical for the same weights
    loaded = T.load_fp16(tmp_path / "m.safetensors", sha256=sha)
    assert loaded.keys() == state.keys()
    for k, v in state.items():
        if v.is_floating_point():
            assert loaded[k].dtype == torch.float32
            assert torch.equal(loaded[k], v.half().float())
        else:
            assert torch.equal(loaded[k], v)
    size = (tmp_path / "m.safetensors").stat().st_size
    assert size < 2.2 * T.count_params(T.load_state(SMALL, loaded))  # 2 bytes a parameter + small header
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        T.load_fp16(tmp_path / "m.safetensors", sha256=sha)


def test_helpers_validation_split_augment_schedule_and_bad_input():
    y = np.array([0] * 10 + [1] * 5 + [2])
    tr, va = T.validation_split(y, 0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(16))
    assert np.bincount(y[va], minlength=3).tolist() == [2, 1, 0]
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    a, b = T.augment(x, g1), T.augment(x, g2)
    assert torch.equal(a, b) and a.shape == x.shape
    centre = x[:, :, 2:6, 2:6]  # a shift of at most 2 px keeps the centre inside the crop
    assert all(any(torch.equal(a[i, :, r:r + 4, c:c + 4], centre[i]) for r in range(5) for c in range(5))
               for i in range(2))
    lrs = [T.lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[4] == 1.0 and lrs[0] == 0.2 and lrs[-1] < 0.01 and all(u >= v for u, v in itertools.pairwise(lrs[4:]))
    with pytest.raises(InputError, match="uint8"):
        T.check_arrays(np.zeros((2, 32, 32, 3)), np.zeros(2, dtype=int))
    with pytest.raises(InputError, match="labels"):
        T.check_arrays(np.zeros((2, 32, 32, 3), np.uint8), np.zeros(3, dtype=int))
    with pytest.raises(InputError, match=r"0\.\.C-1"):
        T.pretrain(SMALL, np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 2, 0, 2]), epochs=1, lr=1e-3)


def test_zoo_design_is_heterogeneous_and_balanced():
    models = Z.zoo()
    names = [m.name for m in models]
    assert len(models) >= 36 and len(set(names)) == len(names)
    mnv2 = [m for m in models if m.init == "imagenet"]
    assert len(mnv2) >= 9 and sum(not m.needs_pretraining for m in models) == 1
    assert len({m.source_domain for m in mnv2 if m.needs_pretraining}) >= 8
    scratch = [m for m in models if m.init == "scratch"]
    families = defaultdict(set)
    per_domain = defaultdict(set)
    for m in scratch:
        assert m.arch.library.startswith("timm")
        families[m.arch.family].add(m.source_domain)
        per_domain[m.source_domain].add(m.arch.family)
    assert len(families) >= 6 and all(len(d) >= 2 for d in families.values())
    assert len(per_domain) >= 6 and all(len(f) >= 3 for f in per_domain.values())
    est = Z.estimate_build_seconds(models, dict.fromkeys(Z.SOURCE_DOMAINS, 6000), [800] * 12)
    assert 0 < est["pretrain"] < 3 * 3600 and est["total"] == est["pretrain"] + est["finetune"]
    with pytest.raises(InputError):
        Z.zoo(["a", "b", "c"])
    renamed = Z.zoo([f"d{i}" for i in range(8)])
    assert [m.arch.name for m in renamed] == [m.arch.name for m in models]


def test_every_architecture_builds_and_runs_on_32px_images():
    images = _data(n=2)[0]
    for arch in Z.ARCHS.values():
        x = T.to_tensor(images, arch.input_size)
        assert x.shape == (2, 3, arch.input_size, arch.input_size)
        model = T.build_model(arch, 7, seed=0).eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (2, 7) and torch.isfinite(out).all(), arch.name
        assert T.head_size_of(arch, model.state_dict()) == 7
    imagenet = T.build_model(Z.MOBILENET_V2, 1000)
    from zoorank.zoo import offline_mobilenet_v2_path

    ref = torch.load(offline_mobilenet_v2_path(), weights_only=True)
    assert _equal(imagenet.state_dict(), ref)
    finetuned = T.build_model(Z.MOBILENET_V2, 7)
    assert torch.equal(finetuned.state_dict()["features.0.0.weight"], ref["features.0.0.weight"])


def test_build_report_fits_the_budgets():
    from zoorank.datasets.zoobench.zoo_design import build_report

    r = build_report()
    assert r["models"] >= 36 and r["targets"] >= 12
    assert r["total_hours"] == pytest.approx(r["pretrain_hours"] + r["finetune_hours"])
    assert 0 < r["total_hours"] < 6 and 0 < r["fp16_mb"] < 150  # the CPU and size budgets
