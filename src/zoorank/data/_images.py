"""Decoding image files and bytes into RGB PIL images, and recognising image file names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: File name suffixes (lower case) treated as images by the folder and CSV loaders; matched case-insensitively.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
     ".pnm"}
)


def is_image_name(name: str) -> bool:
    """True when ``name`` has an image suffix (case-insensitive) and is not hidden (does not start with a dot)."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: palettes with transparency go through RGBA, 16/32-bit and float
    grey levels are rescaled to 0..255 instead of being clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 65535.0
        elif image.mode == "F":
            scale = 1.0 if arr.size == 0 or float(arr.max(initial=0.0)) <= 1.0 else float(arr.max())
        else:
            scale = 65535.0 if float(arr.max(initial=0.0)) > 255 else 255.0
        grey = np.clip(np.rint(arr / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return image.convert("RGB")


def open_image(source: str | Path | bytes) -> Image.Image:
    """Fully decode an image file (a path) or encoded bytes into an RGB image.

    Raises whatever PIL raises for unreadable data (``UnidentifiedImageError``, ``OSError`` for truncated
    files, ...); callers turn it into a report line. Truncated images are never silently accepted.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    with Image.open(stream) as img:
        img.load()
        return to_rgb(img).copy() if img.mode == "RGB" else to_rgb(img)


def image_size(source: str | Path | bytes) -> tuple[int, int]:
    """(width, height) from the image header only, without decoding the pixels."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    with Image.open(stream) as img:
        return int(img.size[0]), int(img.size[1])
