"""Procedural images: shapes, object counts, textures and gratings, plus colouring of grey masks.

Everything is drawn from one ``numpy.random.Generator`` in a fixed order, so outputs are deterministic functions of
the seed. Shapes are polygons drawn with Pillow on a 64x64 canvas and reduced to 32x32 by 2x2 box averaging;
textures are computed in numpy on a 64x64 grid and reduced the same way. Masks are uint8 ``[N, 32, 32]``;
:func:`grey_rgb`, :func:`colourise` and :func:`texture_backgrounds` turn them into uint8 ``[N, 32, 32, 3]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from zoorank.errors import InputError

CANVAS = 64
OUT = 32


def _reduce(canvas64: np.ndarray) -> np.ndarray:
    """2x2 box average of float images in [0, 1] ``[..., 64, 64]`` -> uint8 ``[..., 32, 32]``."""
    s = canvas64.reshape(*canvas64.shape[:-2], OUT, 2, OUT, 2).mean(axis=(-1, -3))
    return np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- shapes

def _regular(k: int, inner: float | None = None) -> np.ndarray:
    n = k if inner is None else 2 * k
    t = np.pi / 2 + 2 * np.pi * np.arange(n) / n
    r = np.ones(n) if inner is None else np.where(np.arange(n) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), -r * np.sin(t)], axis=1)


def _ellipse(aspect: float) -> np.ndarray:
    t = 2 * np.pi * np.arange(48) / 48
    return np.stack([np.cos(t), aspect * np.sin(t)], axis=1)


def _heart() -> np.ndarray:
    t = 2 * np.pi * np.arange(48) / 48
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    return pts / np.abs(pts).max()


#: Unit polygons (vertices in [-1, 1]^2, y down) of the shape classes.
SHAPES: dict[str, np.ndarray] = {
    "triangle": _regular(3),
    "square": _regular(4),
    "pentagon": _regular(5),
    "hexagon": _regular(6),
    "circle": _ellipse(1.0),
    "ellipse": _ellipse(0.5),
    "star": _regular(5, inner=0.4),
    "plus": np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3], [0.3, 1], [-0.3, 1],
                      [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]]),
    "rhombus": np.array([[0, -1], [0.55, 0], [0, 1], [-0.55, 0]]),
    "arrow": np.array([[-1, -0.25], [0.2, -0.25], [0.2, -0.7], [1, 0], [0.2, 0.7], [0.2, 0.25], [-1, 0.25]]),
    "heart": _heart(),
    "l_shape": np.array([[-0.7, -1], [-0.2, -1], [-0.2, 0.5], [0.7, 0.5], [0.7, 1], [-0.7, 1]]),
}


def draw_shapes(kinds: Sequence[str], rng: np.random.Generator, *, size: tuple[float, float] = (0.45, 0.9),
                outline_prob: float = 0.5, outline_width: tuple[int, int] = (3, 6),
                jitter: float = 0.12) -> np.ndarray:
    """One shape per image: ``kinds[i]`` scaled to a radius of ``size`` (fraction of the half canvas), rotated
    uniformly, shifted by up to ``jitter`` of the canvas, filled or (with ``outline_prob``) outlined. Masks
    uint8 ``[N, 32, 32]``."""
    unknown = sorted(set(kinds) - set(SHAPES))
    if unknown:
        raise InputError(f"unknown shape(s) {unknown}; known: {sorted(SHAPES)}")
    n = len(kinds)
    radius = rng.uniform(size[0], size[1], n) * CANVAS / 2
    theta = rng.uniform(0, 2 * np.pi, n)
    centre = CANVAS / 2 + rng.uniform(-jitter, jitter, (n, 2)) * CANVAS
    outline = rng.random(n) < outline_prob
    width = rng.integers(outline_width[0], outline_width[1] + 1, n)
    out = np.empty((n, CANVAS, CANVAS), dtype=np.float64)
    for i, kind in enumerate(kinds):
        c, s = np.cos(theta[i]), np.sin(theta[i])
        pts = SHAPES[kind] @ np.array([[c, s], [-s, c]]) * radius[i] + centre[i]
        im = Image.new("L", (CANVAS, CANVAS), 0)
        poly = [(float(x), float(y)) for x, y in pts]
        draw = ImageDraw.Draw(im)
        if outline[i]:
            draw.line([*poly, poly[0]], fill=255, width=int(width[i]), joint="curve")
        else:
            draw.polygon(poly, fill=255)
        out[i] = np.asarray(im, dtype=np.float64) / 255.0
    return _reduce(out)


def draw_counts(counts: Sequence[int], rng: np.random.Generator, *, kinds: Sequence[str] = ("circle",),
                radius: tuple[float, float] = (3.0, 6.0), max_tries: int = 200) -> np.ndarray:
    """``counts[i]`` non-overlapping objects per image (kind drawn uniformly from ``kinds`` per object), each of
    radius ``radius`` pixels on the 64-pixel canvas, placed by seeded rejection sampling (a gap of 2 pixels between
    objects; after ``max_tries`` failed draws the radius shrinks by 10%). Masks uint8 ``[N, 32, 32]``."""
    out = np.empty((len(counts), CANVAS, CANVAS), dtype=np.float64)
    for i, k in enumerate(counts):
        k = int(k)
        r_lo, r_hi = radius
        placed: list[tuple[float, float, float]] = []
        tries = 0
        while len(placed) < k:
            r = float(rng.uniform(r_lo, r_hi))
            x, y = rng.uniform(r + 1, CANVAS - r - 1, 2)
            if all((x - px) ** 2 + (y - py) ** 2 >= (r + pr + 2) ** 2 for px, py, pr in placed):
                placed.append((float(x), float(y), r))
                tries = 0
                continue
            tries += 1
            if tries >= max_tries:
                r_lo, r_hi, tries = r_lo * 0.9, r_hi * 0.9, 0
        im = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(im)
        for x, y, r in placed:
            kind = kinds[int(rng.integers(0, len(kinds)))]
            theta = float(rng.uniform(0, 2 * np.pi))
            c, s = np.cos(theta), np.sin(theta)
            pts = SHAPES[kind] @ np.array([[c, s], [-s, c]]) * r + np.array([x, y])
            draw.polygon([(float(a), float(b)) for a, b in pts], fill=255)
        out[i] = np.asarray(im, dtype=np.float64) / 255.0
    return _reduce(out)


# ----------------------------------------------------------------------------------------------- textures

_YY, _XX = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64) / CANVAS


def _smooth_noise(rng: np.random.Generator, scale: float) -> np.ndarray:
    """White noise low-passed by a Gaussian of width ``scale`` (fraction of the canvas) in Fourier space,
    normalised to [0, 1]."""
    noise = rng.standard_normal((CANVAS, CANVAS))
    f = np.fft.fftfreq(CANVAS)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * scale * CANVAS) ** 2 * k2)))
    lo, hi = field.min(), field.max()
    return (field - lo) / (hi - lo + 1e-12)


def _grating(theta: float, freq: float, phase: float) -> np.ndarray:
    return 0.5 + 0.5 * np.sin(2 * np.pi * freq * (_XX * np.cos(theta) + _YY * np.sin(theta)) + phase)


def _tex_stripes(rng: np.random.Generator) -> np.ndarray:
    return _grating(rng.uniform(0, np.pi), rng.uniform(3, 8), rng.uniform(0, 2 * np.pi))


def _tex_checker(rng: np.random.Generator) -> np.ndarray:
    t, f = rng.uniform(0, np.pi / 2), rng.uniform(2, 5)
    u = _XX * np.cos(t) + _YY * np.sin(t)
    v = -_XX * np.sin(t) + _YY * np.cos(t)
    return ((np.floor(u * f * 2) + np.floor(v * f * 2)) % 2).astype(np.float64)


def _tex_dots(rng: np.random.Generator) -> np.ndarray:
    f, r = rng.uniform(3, 6), rng.uniform(0.18, 0.32)
    ox, oy = rng.uniform(0, 1, 2)
    u, v = (_XX * f + ox) % 1 - 0.5, (_YY * f + oy) % 1 - 0.5
    return (u ** 2 + v ** 2 < r ** 2).astype(np.float64)


def _tex_rings(rng: np.random.Generator) -> np.ndarray:
    cx, cy = rng.uniform(0.2, 0.8, 2)
    d = np.sqrt((_XX - cx) ** 2 + (_YY - cy) ** 2)
    return 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(4, 9) * d + rng.uniform(0, 2 * np.pi))


def _tex_spokes(rng: np.random.Generator) -> np.ndarray:
    cx, cy = rng.uniform(0.3, 0.7, 2)
    a = np.arctan2(_YY - cy, _XX - cx)
    return 0.5 + 0.5 * np.sin(int(rng.integers(5, 12)) * a + rng.uniform(0, 2 * np.pi))


def _tex_blobs(rng: np.random.Generator) -> np.ndarray:
    return _smooth_noise(rng, rng.uniform(0.04, 0.08))


def _tex_grain(rng: np.random.Generator) -> np.ndarray:
    return np.clip(0.5 + rng.uniform(0.15, 0.3) * rng.standard_normal((CANVAS, CANVAS)), 0, 1)


def _tex_zigzag(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, np.pi)
    u = _XX * np.cos(t) + _YY * np.sin(t)
    v = -_XX * np.sin(t) + _YY * np.cos(t)
    fv = rng.uniform(3, 6)
    tri = 2 * np.abs((v * fv) % 1 - 0.5)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(3, 6) * u + 0.6 * tri))


def _tex_crosshatch(rng: np.random.Generator) -> np.ndarray:
    t, f = rng.uniform(0, np.pi), rng.uniform(3, 7)
    a, b = _grating(t, f, 0.0), _grating(t + np.pi / 2, f, rng.uniform(0, 2 * np.pi))
    return ((a > 0.8) | (b > 0.8)).astype(np.float64)


def _tex_gradient(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, 2 * np.pi)
    ramp = _XX * np.cos(t) + _YY * np.sin(t)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    return np.clip(ramp + 0.04 * rng.standard_normal((CANVAS, CANVAS)), 0, 1)


#: Texture classes: a seeded generator of one 64x64 float image in [0, 1] each.
TEXTURES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "stripes": _tex_stripes,
    "checkerboard": _tex_checker,
    "dot grid": _tex_dots,
    "concentric rings": _tex_rings,
    "radial spokes": _tex_spokes,
    "smooth blobs": _tex_blobs,
    "fine grain": _tex_grain,
    "zigzag": _tex_zigzag,
    "crosshatch": _tex_crosshatch,
    "gradient": _tex_gradient,
}


def draw_textures(kinds: Sequence[str], rng: np.random.Generator, contrast: tuple[float, float] = (0.5, 1.0)
                  ) -> np.ndarray:
    """One texture per image, with a random contrast and mean level. Masks uint8 ``[N, 32, 32]``."""
    out = np.empty((len(kinds), CANVAS, CANVAS), dtype=np.float64)
    for i, kind in enumerate(kinds):
        tex = TEXTURES[kind](rng)
        c = rng.uniform(*contrast)
        out[i] = np.clip(0.5 + c * (tex - 0.5) + rng.uniform(-0.15, 0.15), 0, 1)
    return _reduce(out)


def draw_gratings(angles_deg: np.ndarray, rng: np.random.Generator, freq: tuple[float, float] = (2.5, 7.0)
                  ) -> np.ndarray:
    """Sinusoidal gratings at the given orientations (degrees), random frequency and phase. Masks [N, 32, 32]."""
    out = np.empty((len(angles_deg), CANVAS, CANVAS), dtype=np.float64)
    for i, a in enumerate(angles_deg):
        out[i] = _grating(np.deg2rad(float(a)), rng.uniform(*freq), rng.uniform(0, 2 * np.pi))
    return _reduce(out)


def draw_blob_fields(scales: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth-noise fields of the given correlation widths (fractions of the canvas). Masks [N, 32, 32]."""
    out = np.empty((len(scales), CANVAS, CANVAS), dtype=np.float64)
    for i, s in enumerate(scales):
        out[i] = _smooth_noise(rng, float(s))
    return _reduce(out)


# ----------------------------------------------------------------------------------------------- colour

#: Named hues for colour tasks (RGB in [0, 1]).
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.15),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.85, 0.15, 0.8),
    "cyan": (0.1, 0.8, 0.85),
}


def grey_rgb(masks: np.ndarray) -> np.ndarray:
    """Grey masks ``[N, H, W]`` -> RGB ``[N, H, W, 3]`` with three equal channels."""
    return np.repeat(masks[..., None], 3, axis=-1)


def composite(masks: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Alpha-blend: ``out = a * fg + (1 - a) * bg`` with ``a = mask / 255``; ``fg`` and ``bg`` are floats in
    [0, 1] broadcastable to ``[N, H, W, 3]`` (a last axis of 1 is grey). Returns uint8 ``[N, H, W, 3]``."""
    a = masks.astype(np.float64)[..., None] / 255.0
    out = np.broadcast_to(a * fg + (1.0 - a) * bg, (*masks.shape, 3))
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def random_colours(n: int, rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """``n`` uniform random RGB colours with channels in [lo, hi], shape ``[n, 1, 1, 3]``."""
    return rng.uniform(lo, hi, (n, 1, 1, 3))


def _at_level(colours: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Shift each colour ``[n, 3]`` so its mean channel value is ``level`` ``[n]``; clip to [0, 1]."""
    return np.clip(colours - colours.mean(axis=1, keepdims=True) + level[:, None], 0.0, 1.0)


def contrasting_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground/background colour pairs, each ``[n, 1, 1, 3]``: random hues, one of the two bright (mean
    channel in [0.65, 1]) and the other dark ([0, 0.3]), which one at random, so the object stays visible."""
    bright, dark = rng.uniform(0.65, 1.0, n), rng.uniform(0.0, 0.3, n)
    fg_bright = rng.random(n) < 0.5
    fg = _at_level(rng.uniform(0, 1, (n, 3)), np.where(fg_bright, bright, dark))
    bg = _at_level(rng.uniform(0, 1, (n, 3)), np.where(fg_bright, dark, bright))
    return fg[:, None, None, :], bg[:, None, None, :]


def texture_backgrounds(n: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured textured backgrounds: a random texture class mixing two random dark-ish colours,
    floats ``[n, 32, 32, 3]`` in [0, 1]."""
    names = list(TEXTURES)
    kinds = [names[int(k)] for k in rng.integers(0, len(names), n)]
    tex = draw_textures(kinds, rng).astype(np.float64)[..., None] / 255.0
    c1, c2 = random_colours(n, rng, 0.0, 0.55), random_colours(n, rng, 0.0, 0.55)
    return tex * c1 + (1 - tex) * c2
