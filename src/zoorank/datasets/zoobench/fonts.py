"""Font files found by name on this machine, with the Debian package that ships each one.

A :class:`FontRef` names a font *file* (``DejaVuSans.ttf``), the face index inside a collection (``.ttc``) and the
Debian package that installs it. :func:`find_font` looks the file name up under the usual font folders
(:data:`FONT_DIRS`, plus the folders in the ``ZOORANK_FONT_DIRS`` environment variable, ``os.pathsep``-separated,
searched first) and raises :class:`~zoorank.errors.InputError` naming the package when it is missing. A font's
SHA-256 is part of the identity of every domain and task rendered with it: Pillow's FreeType rendering is
deterministic for a given font file and FreeType version, and both are recorded with the checksums.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont, features

from zoorank.errors import InputError

#: Folders searched (recursively) for font files, after those named in ``ZOORANK_FONT_DIRS``.
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
)


@dataclass(frozen=True)
class FontRef:
    """A font file by name, the face in it (collections hold several) and the Debian package that ships it."""

    file: str
    package: str
    index: int = 0

    @property
    def label(self) -> str:
        return self.file if self.index == 0 else f"{self.file}#{self.index}"


def _search_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("ZOORANK_FONT_DIRS", "").split(os.pathsep) if d]
    return [Path(d).expanduser() for d in [*extra, *FONT_DIRS]]


@cache
def _index(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """File name -> first path found (folders in order, then sorted walk order, so the choice is stable)."""
    found: dict[str, Path] = {}
    for base in dirs:
        if not base.is_dir():
            continue
        for root, subdirs, files in os.walk(base):
            subdirs.sort()
            for name in sorted(files):
                found.setdefault(name, Path(root) / name)
    return found


def find_font(ref: FontRef) -> Path:
    """The path of ``ref``'s file, or InputError naming the Debian package to install."""
    dirs = tuple(_search_dirs())
    path = _index(dirs).get(ref.file)
    if path is None:
        raise InputError(f"font file {ref.file} not found under {', '.join(map(str, dirs))}: "
                         f"install the Debian package {ref.package} (apt-get install -y {ref.package})")
    return path


def missing(refs: tuple[FontRef, ...] | list[FontRef]) -> list[FontRef]:
    """The fonts of ``refs`` that are not installed."""
    dirs = tuple(_search_dirs())
    index = _index(dirs)
    return [r for r in refs if r.file not in index]


def require(refs: tuple[FontRef, ...] | list[FontRef], what: str) -> None:
    """InputError naming every missing file and the Debian packages to install when any of ``refs`` is missing."""
    gone = missing(refs)
    if gone:
        packages = sorted({r.package for r in gone})
        raise InputError(f"{what} needs font file(s) {', '.join(r.file for r in gone)}: install the Debian "
                         f"package(s) {' '.join(packages)} (apt-get install -y {' '.join(packages)})")


@cache
def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def font_sha256(ref: FontRef) -> str:
    """SHA-256 of the font file's bytes (cached per path)."""
    return _sha256(str(find_font(ref)))


@cache
def _load(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


def load_font(ref: FontRef, size: int) -> ImageFont.FreeTypeFont:
    """The face at ``size`` pixels with Pillow's BASIC layout (no shaping: one code point, one glyph, so the
    result does not depend on whether libraqm is present). Cached per (path, face, size)."""
    return _load(str(find_font(ref)), ref.index, size)


def freetype_version() -> str:
    """The FreeType version Pillow renders with (part of what the checksums depend on)."""
    return str(features.version("freetype2"))
