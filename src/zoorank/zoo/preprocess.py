"""Preprocessing: a picklable callable PIL image -> float tensor ``[C, H, W]``, with a JSON-able config.

Where a model's library knows its preprocessing, that is used: timm's ``resolve_data_config`` +
``create_transform`` (eval mode), a torchvision weights enum's ``transforms()`` numbers, a Hugging
Face image processor's size/mean/std. Otherwise the ImageNet default applies: resize the shorter side
to ``size / 0.875`` (bilinear), centre-crop ``size`` (224), scale to [0, 1] and normalise with the
ImageNet mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``.

An ``input_size`` override (for small images such as 32 px digits) keeps the library's resize/crop
ratio, interpolation, mean and std, and changes only the crop size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
DEFAULT_CROP_PCT = 0.875


class Preprocess:
    """Callable PIL image -> tensor ``[C, H, W]``; ``config`` (JSON-able) describes it for cache keys.

    Images are first converted to RGB (or to grey ``L`` when the model takes one channel), so
    greyscale, palette and RGBA images all work.
    """

    def __init__(self, transform: Callable[[Image.Image], torch.Tensor], config: dict[str, Any]) -> None:
        self.transform = transform
        self.config = config
        self.mode = "L" if int(config["input_size"][0]) == 1 else "RGB"

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the tensors this produces."""
        c, h, w = self.config["input_size"]
        return int(c), int(h), int(w)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Preprocess one image."""
        if image.mode != self.mode:
            image = image.convert(self.mode)
        return self.transform(image)

    def __repr__(self) -> str:
        return f"Preprocess({self.config})"


def normalize_input_size(size: int | Sequence[int] | None, channels: int = 3) -> tuple[int, int, int] | None:
    """An ``input_size`` override as ``(C, H, W)`` (an int is a square; ``[H, W]`` takes ``channels``)."""
    if size is None:
        return None
    if isinstance(size, int):
        return channels, size, size
    size = tuple(int(v) for v in size)
    return (channels, *size) if len(size) == 2 else size  # type: ignore[return-value]


def standard_preprocess(
    input_size: tuple[int, int, int] = (3, DEFAULT_SIZE, DEFAULT_SIZE),
    *,
    crop_pct: float = DEFAULT_CROP_PCT,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bilinear",
    origin: str = "imagenet-default",
) -> Preprocess:
    """Resize the shorter side to ``H / crop_pct``, centre-crop ``(H, W)``, to tensor, normalise."""
    from torchvision import transforms as T

    c, h, w = input_size
    mean, std = _fit_channels(mean, c), _fit_channels(std, c)
    resize = round(min(h, w) / crop_pct)
    mode = T.InterpolationMode(interpolation)
    transform = T.Compose([
        T.Resize(resize, interpolation=mode, antialias=True),
        T.CenterCrop((h, w)),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    config = {"origin": origin, "input_size": [c, h, w], "resize": resize, "crop_pct": round(crop_pct, 6),
              "interpolation": interpolation, "mean": list(mean), "std": list(std)}
    return Preprocess(transform, config)


def timm_preprocess(model: torch.nn.Module, input_size: tuple[int, int, int] | None = None) -> Preprocess:
    """timm's eval transform from ``resolve_data_config`` (with an optional ``input_size`` override)."""
    from timm.data import create_transform, resolve_data_config

    args = {"input_size": input_size} if input_size is not None else {}
    cfg = resolve_data_config(args, model=model)
    transform = create_transform(**cfg, is_training=False)
    config = {"origin": "timm"}
    config.update({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()})
    return Preprocess(transform, config)


def torchvision_preprocess(weights: Any | None, input_size: tuple[int, int, int] | None = None) -> Preprocess:
    """The numbers of a torchvision weights enum's ``transforms()``, or the ImageNet default without one."""
    if weights is None:
        return standard_preprocess(input_size or (3, DEFAULT_SIZE, DEFAULT_SIZE))
    preset = weights.transforms()
    crop = int(preset.crop_size[0])
    resize = int(preset.resize_size[0])
    size = input_size or (3, crop, crop)
    return standard_preprocess(size, crop_pct=crop / resize, mean=preset.mean, std=preset.std,
                               interpolation=preset.interpolation.value, origin=f"torchvision:{weights}")


def hf_preprocess(processor: Any | None, config: Any, input_size: tuple[int, int, int] | None = None) -> Preprocess:
    """Size, mean and std from a Hugging Face image processor (or the model config), as a standard transform."""
    mean, std, size = IMAGENET_MEAN, IMAGENET_STD, None
    crop_pct = DEFAULT_CROP_PCT
    if processor is not None:
        mean = tuple(getattr(processor, "image_mean", None) or mean)
        std = tuple(getattr(processor, "image_std", None) or std)
        for attr in ("crop_size", "size"):
            value = getattr(processor, attr, None)
            if isinstance(value, dict):
                value = value.get("height") or value.get("shortest_edge")
            if isinstance(value, int):
                size = value
                break
        if getattr(processor, "crop_pct", None):
            crop_pct = float(processor.crop_pct)
        elif not getattr(processor, "do_center_crop", False):
            crop_pct = 1.0
    if size is None:
        image_size = getattr(config, "image_size", None)
        size = int(image_size[0] if isinstance(image_size, list | tuple) else image_size or DEFAULT_SIZE)
    channels = int(getattr(config, "num_channels", 3) or 3)
    return standard_preprocess(input_size or (channels, size, size), crop_pct=crop_pct, mean=mean, std=std,
                               origin="hf")


def _fit_channels(values: Sequence[float], channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return (values[0],) * channels if len(values) == 1 else values[:channels]
