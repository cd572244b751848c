"""Feature-extraction throughput and the feature cache's speed-up (``zoorank bench extract``).

A folder of PNG images (scikit-learn digits, resized) is written to a temporary directory, so the
measurement includes decoding and preprocessing, as a real run does. For each model of the
benchmark zoo (the real ImageNet MobileNetV2 and timm architectures with random weights), the cold
extraction (no cache) and the warm one (a cache hit) are timed; images/s = images / cold seconds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIMM_ARCHS = ["resnet18", "mobilenetv3_small_050", "efficientnet_b0", "convnext_atto", "vit_tiny_patch16_224"]


@dataclass
class ExtractTiming:
    model: str
    params: int
    feature_dim: int
    images: int
    cold_seconds: float
    warm_seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.cold_seconds

    @property
    def cache_speedup(self) -> float:
        return self.cold_seconds / max(self.warm_seconds, 1e-9)


def bench_zoo(input_size: int):
    from zoorank.zoo import ModelSpec, offline_mobilenet_v2_spec

    return [offline_mobilenet_v2_spec(input_size=input_size)] + [
        ModelSpec(name=a, source="timm", ref=a, pretrained=False, input_size=input_size, seed=i)
        for i, a in enumerate(TIMM_ARCHS)
    ]


def write_images(root: Path, n: int, size: int) -> Path:
    """``n`` digits (10 classes) as ``size``-pixel RGB PNGs in class folders under ``root``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.arange(n) % len(d.target)
    for k in range(10):
        (root / f"digit{k}").mkdir(parents=True, exist_ok=True)
    for i, j in enumerate(idx):
        img = Image.fromarray((d.images[j] * 255 / 16).astype(np.uint8)).resize((size, size)).convert("RGB")
        img.save(root / f"digit{d.target[j]}" / f"{i:05d}.png")
    return root


def measure(n_images: int = 1000, input_size: int = 64, batch_size: int = 64, progress=None) -> list[ExtractTiming]:
    import torch

    from zoorank.data import from_folder
    from zoorank.store.feature_cache import FeatureCache
    from zoorank.zoo import load_model
    from zoorank.zoo.extract import cached_extract

    torch.set_num_threads(2)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        ds = from_folder(write_images(Path(tmp) / "images", n_images, input_size))
        cache = FeatureCache(Path(tmp) / "cache")
        for spec in bench_zoo(input_size):
            model = load_model(spec)
            t0 = time.perf_counter()
            cold = cached_extract(model, ds, cache=cache, batch_size=batch_size)
            cold_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm = cached_extract(model, ds, cache=cache, batch_size=batch_size)
            warm_s = time.perf_counter() - t0
            assert warm.from_cache and not cold.from_cache
            out.append(ExtractTiming(spec.name, model.num_params, model.feature_dim, len(cold.indices), cold_s, warm_s))
            if progress is not None:
                progress(spec.name)
    return out


def markdown(timings: list[ExtractTiming], n_images: int, input_size: int, command: str, machine: str) -> str:
    lines = [
        "## Feature extraction and the feature cache",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}; torch with 2 threads.  ",
        f"{n_images} PNG images (scikit-learn digits resized to {input_size} px, decoded and preprocessed as in a "
        "real run), batch 64. Cold = extraction with an empty cache (the forward passes plus decoding); warm = "
        "the same call again, served from the feature cache with no forward pass.",
        "",
        "| model | params | feature dim | images/s (cold) | cold (s) | warm (s) | cache speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in timings:
        lines.append(f"| {t.model} | {t.params:,} | {t.feature_dim} | {t.images_per_second:.0f} | "
                     f"{t.cold_seconds:.2f} | {t.warm_seconds:.4f} | {t.cache_speedup:.0f}x |")
    return "\n".join(lines) + "\n"
