"""Glyph rendering with seeded augmentation: 32x32 grey masks of characters in several fonts.

Protocol, per image ``i`` (all random draws from one ``numpy.random.Generator``, drawn as whole vectors in a fixed
order, so the output is a deterministic function of the seed, the font files and Pillow's FreeType):

1. pick a font ``f_i`` uniformly among the declared fonts and a stroke width ``s_i`` from ``style.strokes``;
2. the *master* is the character rendered white on black at :data:`RENDER_SIZE` pixels in font ``f_i`` with
   stroke ``s_i``, cropped to its ink bounding box (``fit="bbox"``: every glyph is scaled to the same size) or to
   the font's em square around the glyph's anchor point (``fit="em"``: position and size inside the em box are
   kept, as braille cells need);
3. the master is resized so that its longer side is ``style.extent * scale_i`` of a 64x64 canvas, with
   ``scale_i ~ U(style.scale)``, rotated by ``angle_i ~ U(-style.rotation, style.rotation)`` degrees, and pasted
   at the centre shifted by ``(dx_i, dy_i) ~ U(-style.shift, style.shift)`` (fractions of the canvas);
4. the 64x64 canvas is reduced to 32x32 by 2x2 box averaging (anti-aliasing).

Masks are uint8 ``[N, 32, 32]`` (255 = ink); colouring and backgrounds are applied by the callers.
The same placement (steps 3-4) augments any grey master image (:func:`place_masters`), e.g. handwritten digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from zoorank.datasets.zoobench.fonts import FontRef, find_font, load_font, require
from zoorank.errors import InputError

#: Font size (pixels) glyph masters are rendered at, before placement on the 64x64 canvas.
RENDER_SIZE = 56
CANVAS = 64
OUT = 32

Fit = Literal["bbox", "em"]


@dataclass(frozen=True)
class Style:
    """Augmentation ranges (see the module docstring)."""

    rotation: float = 10.0
    scale: tuple[float, float] = (0.75, 1.0)
    shift: float = 0.08
    strokes: tuple[int, ...] = (0, 0, 1, 2)
    extent: float = 0.78


DEFAULT_STYLE = Style()


def _bbox_master(ref: FontRef, char: str, stroke: int) -> Image.Image:
    font = load_font(ref, RENDER_SIZE)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    if right <= left or bottom <= top:
        raise InputError(f"character {char!r} (U+{ord(char):04X}) has no ink in font {ref.label}")
    image = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(image).text((1 - left, 1 - top), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return image


def _em_master(ref: FontRef, char: str, stroke: int) -> Image.Image:
    font = load_font(ref, RENDER_SIZE)
    side = int(RENDER_SIZE * 1.25)
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).text((side / 2, side / 2), char, font=font, fill=255, anchor="mm",
                               stroke_width=stroke, stroke_fill=255)
    return image


@cache
def _master(path: Path, ref: FontRef, char: str, stroke: int, fit: Fit) -> Image.Image:
    return _bbox_master(ref, char, stroke) if fit == "bbox" else _em_master(ref, char, stroke)


def master(ref: FontRef, char: str, stroke: int, fit: Fit = "bbox") -> Image.Image:
    """The glyph master (step 2), cached per font path. Do not modify the returned image."""
    return _master(find_font(ref), ref, char, stroke, fit)


@cache
def _notdef(path: Path, ref: FontRef) -> bytes:
    return _em_master(ref, "\U0010fffd", 0).tobytes()


@cache
def _covers(path: Path, ref: FontRef, char: str) -> bool:
    return _em_master(ref, char, 0).tobytes() != _notdef(path, ref)


def covers(ref: FontRef, char: str) -> bool:
    """Whether the font has a glyph for ``char`` (its rendering differs from the font's missing-glyph box)."""
    return _covers(find_font(ref), ref, char)


def check_coverage(chars: Sequence[str], fonts: Sequence[FontRef], what: str) -> None:
    """InputError unless every font renders every character (a missing glyph would silently draw a box)."""
    require(list(fonts), what)
    for ref in fonts:
        gaps = [c for c in chars if not covers(ref, c)]
        if gaps:
            shown = " ".join(f"U+{ord(c):04X}" for c in gaps[:8])
            raise InputError(f"{what}: font {ref.label} has no glyph for {len(gaps)} character(s) ({shown}"
                             f"{' ...' if len(gaps) > 8 else ''}); the installed font differs from the one expected")


def place_masters(masters: Sequence[Image.Image], which: np.ndarray, rng: np.random.Generator,
                  style: Style = DEFAULT_STYLE) -> np.ndarray:
    """Steps 3-4 for ``len(which)`` images: image ``i`` is ``masters[which[i]]`` placed with random scale, rotation
    and shift. Returns uint8 ``[N, 32, 32]``."""
    n = len(which)
    scales = rng.uniform(style.scale[0], style.scale[1], n)
    angles = rng.uniform(-style.rotation, style.rotation, n)
    shifts = rng.uniform(-style.shift, style.shift, (n, 2)) * CANVAS
    out = np.empty((n, OUT, OUT), dtype=np.uint8)
    for i in range(n):
        m = masters[int(which[i])]
        w, h = m.size
        long_side = CANVAS * style.extent * scales[i]
        factor = long_side / max(w, h)
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        im = m.resize(size, Image.Resampling.BILINEAR)
        if angles[i] != 0.0:
            im = im.rotate(float(angles[i]), resample=Image.Resampling.BILINEAR, expand=True)
        canvas = Image.new("L", (CANVAS, CANVAS), 0)
        x = round((CANVAS - im.size[0]) / 2 + shifts[i, 0])
        y = round((CANVAS - im.size[1]) / 2 + shifts[i, 1])
        canvas.paste(im, (x, y))
        out[i] = np.asarray(canvas.resize((OUT, OUT), Image.Resampling.BOX))
    return out


def render(chars: Sequence[str], labels: np.ndarray, fonts: Sequence[FontRef], rng: np.random.Generator,
           style: Style = DEFAULT_STYLE, fit: Fit = "bbox", what: str = "glyphs") -> np.ndarray:
    """Masks uint8 ``[N, 32, 32]`` of ``chars[labels[i]]`` (steps 1-4). Every font must cover every character."""
    if len(fonts) == 0:
        raise InputError(f"{what}: no fonts given")
    check_coverage(sorted(set(chars)), fonts, what)
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    font_ids = rng.integers(0, len(fonts), n)
    strokes = np.asarray(style.strokes)[rng.integers(0, len(style.strokes), n)]
    keys = sorted({(int(f), int(s), int(c)) for f, s, c in zip(font_ids, strokes, labels, strict=True)})
    slot = {k: j for j, k in enumerate(keys)}
    masters = [master(fonts[f], chars[c], s, fit) for f, s, c in keys]
    which = np.fromiter((slot[(int(f), int(s), int(c))] for f, s, c in zip(font_ids, strokes, labels, strict=True)),
                        dtype=np.int64, count=n)
    return place_masters(masters, which, rng, style)


def balanced_labels(n_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` labels of each class in a seeded random order (int64)."""
    return rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), per_class))
