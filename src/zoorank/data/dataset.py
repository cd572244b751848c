"""The common dataset object every loader returns: images by index, optional labels (or regression targets), a
stable identity."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from PIL import Image

from zoorank.data._identity import IdentityMode, hash_array, hash_files, hash_parts, relative_names
from zoorank.data._images import image_size, open_image
from zoorank.errors import InputError


class ImageReadError(InputError):
    """One image could not be read; ``ref`` names it (a file path, or ``name[i]``) and ``reason`` says why."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"cannot read image {ref}: {reason}")
        self.ref = ref
        self.reason = reason


class Problem(NamedTuple):
    """An unreadable image: its index in the dataset, its name (file path or ``name[i]``) and the reason."""

    index: int
    path: str
    reason: str


class _Source(Protocol):
    """Where the pixels come from (files, an array, a Hugging Face dataset, or a subset of another source)."""

    def __len__(self) -> int: ...
    def read(self, i: int) -> Image.Image: ...
    def ref(self, i: int) -> str: ...
    def size(self, i: int) -> tuple[int, int]: ...
    def fingerprint(self) -> str: ...


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FileSource:
    """Images stored as files; ``base`` is the folder relative names (used by the identity) are taken from."""

    def __init__(self, paths: Sequence[Path], base: Path | None, identity: IdentityMode = "auto") -> None:
        self.paths = [Path(p) for p in paths]
        self.base = base
        self.identity_mode = identity
        self.identity_mode_used: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> Image.Image:
        return open_image(self.paths[i])

    def ref(self, i: int) -> str:
        return str(self.paths[i])

    def size(self, i: int) -> tuple[int, int]:
        return image_size(self.paths[i])

    def fingerprint(self) -> str:
        digest, used = hash_files(self.paths, relative_names(self.paths, self.base), self.identity_mode)
        self.identity_mode_used = used
        return digest


class ArraySource:
    """Images held in memory as a uint8 array [N, H, W] (grey) or [N, H, W, 3] (RGB)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self.identity_mode_used = "content"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def read(self, i: int) -> Image.Image:
        arr = self.images[i]
        return Image.fromarray(arr, mode="L").convert("RGB") if arr.ndim == 2 else Image.fromarray(arr, mode="RGB")

    def ref(self, i: int) -> str:
        return f"<array>[{i}]"

    def size(self, i: int) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[1])

    def fingerprint(self) -> str:
        return hash_array(self.images)


class HFSource:
    """Images in one column of a Hugging Face ``datasets.Dataset`` (decoded by PIL here, not by ``datasets``)."""

    def __init__(self, hf_dataset: Any, column: str, name: str, fingerprint: str, mode_used: str) -> None:
        from datasets import Image as HFImage  # the caller already checked that the extra is installed

        self.table = hf_dataset.select_columns([column]).cast_column(column, HFImage(decode=False))
        self.column = column
        self.name = name
        self._fingerprint = fingerprint
        self.identity_mode_used = mode_used

    def __len__(self) -> int:
        return len(self.table)

    def _encoded(self, i: int) -> bytes | str:
        value = self.table[i][self.column]
        if value is None:
            raise ValueError("no image in this row")
        if isinstance(value, dict):
            if value.get("bytes"):
                return value["bytes"]
            if value.get("path"):
                return value["path"]
            raise ValueError("image entry has neither bytes nor path")
        return value

    def read(self, i: int) -> Image.Image:
        return open_image(self._encoded(i))

    def ref(self, i: int) -> str:
        try:
            value = self.table[i][self.column]
        except Exception:
            value = None
        path = value.get("path") if isinstance(value, dict) else None
        return f"{self.name}[{i}]" + (f" ({path})" if path else "")

    def size(self, i: int) -> tuple[int, int]:
        return image_size(self._encoded(i))

    def fingerprint(self) -> str:
        return self._fingerprint


class SubsetSource:
    """A selection (by index) of another source."""

    def __init__(self, parent: _Source, indices: np.ndarray, parent_identity: str) -> None:
        self.parent = parent
        self.indices = indices
        self.parent_identity = parent_identity
        self.identity_mode_used = getattr(parent, "identity_mode_used", None)

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> Image.Image:
        return self.parent.read(int(self.indices[i]))

    def ref(self, i: int) -> str:
        return self.parent.ref(int(self.indices[i]))

    def size(self, i: int) -> tuple[int, int]:
        return self.parent.size(int(self.indices[i]))

    def fingerprint(self) -> str:
        return hash_parts("subset", self.parent_identity, hash_array(self.indices))


@dataclass
class VerifyReport:
    """What :meth:`ImageDataset.verify` found: how many images were decoded, the unreadable ones, and the
    dataset without them (``clean``)."""

    n_checked: int
    problems: list[Problem]
    clean: ImageDataset

    @property
    def ok(self) -> bool:
        """True when every checked image could be read."""
        return not self.problems

    def lines(self) -> list[str]:
        """One human-readable line per unreadable image."""
        return [f"{p.path}: {p.reason}" for p in self.problems]


@dataclass(eq=False)
class ImageDataset:
    """Images addressed by index, with optional integer labels 0..C-1 and class names, or real-valued regression
    ``targets`` (float, shape [N] or [N, K]; a dataset has labels or targets, not both).

    Build one with a loader (:func:`zoorank.data.from_folder`, ``from_csv``, ``from_arrays``, ...).
    ``load(i)`` returns an RGB PIL image or raises :class:`ImageReadError`; :meth:`iter_images` and
    :meth:`try_load` skip unreadable images and record them in :attr:`problems`; :meth:`verify` decodes
    everything and returns a report with a cleaned dataset. ``identity`` is a stable content hash (see
    :mod:`zoorank.data._identity`) of the images, their order, the labels and the class names (or the targets).
    """

    name: str
    source: _Source
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    kind: str = "arrays"
    location: str = ""
    parent_indices: np.ndarray | None = None
    targets: np.ndarray | None = None
    _problems: dict[int, Problem] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.targets is not None:
            self._check_targets()
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.source),):
                raise InputError(f"{self.name}: {self.labels.shape[0]} labels for {len(self.source)} images")
            if self.class_names is None:
                self.class_names = [str(c) for c in range(int(self.labels.max(initial=-1)) + 1)]
            if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
                raise InputError(f"{self.name}: labels must lie in 0..{len(self.class_names) - 1}")
        elif self.class_names is not None:
            raise InputError(f"{self.name}: class_names given without labels")

    def _check_targets(self) -> None:
        if self.labels is not None:
            raise InputError(f"{self.name}: give labels (classification) or targets (regression), not both")
        try:
            t = np.asarray(self.targets, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.name}: regression targets must be numbers ({exc})") from None
        if t.ndim not in (1, 2) or t.shape[0] != len(self.source) or (t.ndim == 2 and t.shape[1] == 0):
            raise InputError(f"{self.name}: targets of shape {t.shape} for {len(self.source)} images; expected "
                             f"[{len(self.source)}] or [{len(self.source)}, K]")
        if not np.isfinite(t).all():
            raise InputError(f"{self.name}: regression targets hold NaN or infinite values; drop or fill those rows")
        self.targets = t

    # -- basics -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        classes = (f", {self.n_classes} classes" if self.labels is not None
                   else f", {self.n_targets} regression target(s)" if self.targets is not None else ", unlabelled")
        return f"ImageDataset({self.name!r}, {len(self)} images{classes}, {self.kind})"

    @property
    def n_classes(self) -> int:
        """Number of classes (0 when unlabelled)."""
        return 0 if self.class_names is None else len(self.class_names)

    @property
    def is_labelled(self) -> bool:
        """True when the dataset has (class) labels."""
        return self.labels is not None

    @property
    def is_regression(self) -> bool:
        """True when the dataset has real-valued regression targets instead of class labels."""
        return self.targets is not None

    @property
    def n_targets(self) -> int:
        """Number of regression targets per image (0 without targets)."""
        if self.targets is None:
            return 0
        return 1 if self.targets.ndim == 1 else int(self.targets.shape[1])

    @cached_property
    def identity(self) -> str:
        """Stable content hash (32 hex characters): images (in order), labels and class names, or targets."""
        parts = [f"images:{self.source.fingerprint()}"]
        if self.labels is not None:
            parts += ["labels", hash_array(self.labels), "classes", "\x1f".join(self.class_names or [])]
        if self.targets is not None:
            parts += ["targets", hash_array(self.targets)]
        return hash_parts(*parts)

    @property
    def paths(self) -> list[Path] | None:
        """The image files in index order, or None when the images are not files."""
        src: _Source = self.source
        index = np.arange(len(src))
        while isinstance(src, SubsetSource):
            index, src = src.indices[index], src.parent
        return [src.paths[int(i)] for i in index] if isinstance(src, FileSource) else None

    def ref(self, i: int) -> str:
        """Human-readable name of image ``i`` (its file path where it has one)."""
        return self.source.ref(self._index(i))

    def _index(self, i: int) -> int:
        i = operator.index(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: index {i} out of range for {n} images")
        return i % n

    # -- reading ----------------------------------------------------------------------------------------------
    def load(self, i: int) -> Image.Image:
        """Image ``i`` as an RGB PIL image; raises :class:`ImageReadError` (file name and reason) if unreadable."""
        i = self._index(i)
        try:
            return self.source.read(i)
        except Exception as exc:
            raise ImageReadError(self.source.ref(i), _reason(exc)) from exc

    def try_load(self, i: int) -> Image.Image | None:
        """Image ``i``, or None when it is unreadable (the problem is recorded in :attr:`problems`)."""
        i = self._index(i)
        try:
            return self.source.read(i)
        except Exception as exc:
            self._problems[i] = Problem(i, self.source.ref(i), _reason(exc))
            return None

    def iter_images(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, Image.Image]]:
        """Yield ``(index, image)`` for the given indices (all by default), skipping unreadable images, which are
        recorded in :attr:`problems` instead of stopping the iteration."""
        for i in range(len(self)) if indices is None else indices:
            img = self.try_load(int(i))
            if img is not None:
                yield int(i), img

    @property
    def problems(self) -> list[Problem]:
        """Unreadable images met so far by :meth:`try_load`, :meth:`iter_images` or :meth:`verify`, by index."""
        return [self._problems[k] for k in sorted(self._problems)]

    def verify(self, indices: Iterable[int] | None = None,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Decode every image (or those in ``indices``) and report the unreadable ones; never raises for a bad
        image. ``report.clean`` is the dataset without them. ``progress(done, total)`` is called after each image.

        Raises :class:`InputError` when every image of a class is unreadable (the clean dataset would have a class
        with no images).
        """
        todo = list(range(len(self))) if indices is None else [self._index(int(i)) for i in indices]
        bad: list[Problem] = []
        for k, i in enumerate(todo):
            if self.try_load(i) is None:
                bad.append(self._problems[i])
            if progress is not None:
                progress(k + 1, len(todo))
        bad_set = {p.index for p in bad}
        keep = np.array([i for i in range(len(self)) if i not in bad_set], dtype=np.int64)
        if keep.size == 0:
            raise InputError(f"{self.name}: no readable images ({len(bad)} unreadable, e.g. {bad[0].path}: "
                             f"{bad[0].reason})")
        clean = self if not bad else self.subset(keep)
        if bad and self.labels is not None and clean.labels is not None:
            before = np.bincount(self.labels, minlength=self.n_classes)
            after = np.bincount(clean.labels, minlength=self.n_classes)
            lost = np.flatnonzero((before > 0) & (after == 0))
            if lost.size:
                c = int(lost[0])
                example = next(p for p in bad if self.labels[p.index] == c)
                raise InputError(f"{self.name}: class {self.class_names[c]!r} has no readable images "  # type: ignore[index]
                                 f"(e.g. {example.path}: {example.reason})")
        return VerifyReport(n_checked=len(todo), problems=bad, clean=clean)

    # -- selections -------------------------------------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> ImageDataset:
        """The images at ``indices`` (in that order) as a new dataset with the same class names; its identity
        is derived from this dataset's identity and the indices. ``parent_indices`` keeps the indices."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise InputError(f"{self.name}: subset indices out of range for {len(self)} images")
        idx = idx % max(len(self), 1)
        sub = ImageDataset(
            name=name or self.name,
            source=SubsetSource(self.source, idx, self.identity),
            labels=None if self.labels is None else self.labels[idx],
            class_names=None if self.class_names is None else list(self.class_names),
            kind=self.kind,
            location=self.location,
            parent_indices=idx,
            targets=None if self.targets is None else self.targets[idx],
        )
        sub._problems = {k: Problem(k, p.path, p.reason) for k, j in enumerate(idx.tolist())
                         if (p := self._problems.get(j)) is not None}
        return sub

    # -- description ------------------------------------------------------------------------------------------
    def class_counts(self) -> dict[str, int]:
        """Number of images per class name (empty when unlabelled)."""
        if self.labels is None or self.class_names is None:
            return {}
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}

    def describe(self, size_sample: int = 32) -> dict[str, Any]:
        """A JSON-ready summary for reports, task descriptions and meta-features: size, classes, balance,
        typical image size (median over up to ``size_sample`` images, read from headers only), source."""
        n = len(self)
        counts = self.class_counts()
        values = list(counts.values())
        pick = np.unique(np.linspace(0, n - 1, num=min(size_sample, n)).round().astype(np.int64)) if n else []
        sizes = []
        for i in pick:
            try:
                sizes.append(self.source.size(int(i)))
            except Exception:  # unreadable headers are reported by verify(), not here
                continue
        out: dict[str, Any] = {
            "name": self.name,
            "n_images": n,
            "labelled": self.labels is not None,
            "n_targets": self.n_targets,
            "n_classes": self.n_classes,
            "class_counts": counts,
            "min_class_count": min(values) if values else None,
            "max_class_count": max(values) if values else None,
            "imbalance_ratio": (max(values) / min(values)) if values and min(values) > 0 else None,
            "image_size": None,
            "image_size_min": None,
            "image_size_max": None,
            "source": self.kind,
            "location": self.location,
            "identity": self.identity,
            "identity_mode": getattr(self.source, "identity_mode_used", None),
        }
        if sizes:
            arr = np.asarray(sizes)
            out["image_size"] = [int(v) for v in np.median(arr, axis=0).round()]
            out["image_size_min"] = [int(v) for v in arr.min(axis=0)]
            out["image_size_max"] = [int(v) for v in arr.max(axis=0)]
        return out
