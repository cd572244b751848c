"""Loaders: image folders, unlabelled folders, CSV files, Hugging Face datasets saved to disk, in-memory arrays.

Every loader returns an :class:`~zoorank.data.dataset.ImageDataset` and raises :class:`zoorank.InputError`
with one line naming the problem (the folder, the file, the class, the column) for bad input.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.data._identity import IdentityMode, check_mode, hash_files, hash_parts, relative_names
from zoorank.data._images import IMAGE_EXTENSIONS, is_image_name
from zoorank.data.dataset import ArraySource, FileSource, HFSource, ImageDataset
from zoorank.errors import InputError

_HF_HINT = "install the Hugging Face extra: pip install 'zoorank[hf]'"


# -- helpers -------------------------------------------------------------------------------------------------------
def encode_labels(values: Sequence[Any] | np.ndarray, what: str = "labels") -> tuple[np.ndarray, list[str]]:
    """Map label values to class ids 0..C-1 in sorted order; returns ``(ids int64 [N], class_names)``.

    Integers (or strings that all spell integers, e.g. "2", "10") are sorted numerically, anything else as
    strings. Empty or missing values are an error.
    """
    vals = list(np.asarray(values, dtype=object).reshape(-1))
    if not vals:
        return np.zeros(0, dtype=np.int64), []
    keys: list[Any] = []
    for v in vals:
        if v is None or (isinstance(v, float) and not np.isfinite(v)) or (isinstance(v, str) and not v.strip()):
            raise InputError(f"{what}: missing label value {v!r}")
        keys.append(v.strip() if isinstance(v, str) else v)
    as_int = _all_integers(keys)
    if as_int is not None:
        uniq = sorted(set(as_int))
        lookup = {u: k for k, u in enumerate(uniq)}
        return np.array([lookup[v] for v in as_int], dtype=np.int64), [str(u) for u in uniq]
    strs = [str(k) for k in keys]
    names = sorted(set(strs))
    lookup_s = {u: k for k, u in enumerate(names)}
    return np.array([lookup_s[v] for v in strs], dtype=np.int64), names


def _all_integers(keys: list[Any]) -> list[int] | None:
    out = []
    for k in keys:
        if isinstance(k, bool | np.bool_):
            return None
        if isinstance(k, int | np.integer):
            out.append(int(k))
        elif isinstance(k, float | np.floating) and float(k).is_integer():
            out.append(int(k))
        elif isinstance(k, str) and k.lstrip("+-").isdigit():
            out.append(int(k))
        else:
            return None
    return out


def _walk_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped), sorted by relative path."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(folder)
        for f in filenames:
            if is_image_name(f):
                found.append(((rel_dir / f).as_posix(), Path(dirpath) / f))
    found.sort(key=lambda t: t[0])
    return [p for _, p in found]


def _existing_dir(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} not found: {p}")
    if not p.is_dir():
        raise InputError(f"{what} is not a directory: {p}")
    return p


def _check_no_empty_class(labels: np.ndarray, class_names: list[str], where: str) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise InputError(f"class {class_names[int(empty[0])]!r} has no images in {where}")


def _exts() -> str:
    return "/".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS if e in {".jpg", ".jpeg", ".png", ".bmp",
                                                                            ".webp", ".tif", ".gif"}))


# -- folders -------------------------------------------------------------------------------------------------------
def from_folder(path: str | os.PathLike[str], *, name: str | None = None,
                identity: IdentityMode = "auto") -> ImageDataset:
    """An image folder with one sub-folder per class (``root/cat/*.jpg``, ``root/dog/*.png``).

    Class names are the sub-folder names, sorted; images are searched recursively inside each class folder;
    image suffixes match case-insensitively; hidden files and folders (``.name``) are ignored, and so are loose
    files in ``root`` itself. A class folder without images is an error. ``identity`` selects how the dataset's
    identity hash is computed (see :mod:`zoorank.data._identity`).
    """
    check_mode(identity)
    root = _existing_dir(path, "dataset folder")
    class_dirs = sorted((e for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir()),
                        key=lambda e: e.name)
    if not class_dirs:
        raise InputError(f"no class sub-folders in {root}: expected one sub-folder of images per class "
                         "(for images without classes use from_unlabelled_folder)")
    paths: list[Path] = []
    labels: list[int] = []
    for c, entry in enumerate(class_dirs):
        files = _walk_images(Path(entry.path))
        if not files:
            raise InputError(f"class {entry.name!r} has no images in {entry.path}")
        paths += files
        labels += [c] * len(files)
    return ImageDataset(name=name or root.resolve().name, source=FileSource(paths, root, identity),
                        labels=np.asarray(labels, dtype=np.int64), class_names=[e.name for e in class_dirs],
                        kind="folder", location=str(root))


def from_unlabelled_folder(path: str | os.PathLike[str], *, name: str | None = None,
                           identity: IdentityMode = "auto") -> ImageDataset:
    """Every image under ``path`` (recursive, sorted by relative path, hidden files skipped), without labels."""
    check_mode(identity)
    root = _existing_dir(path, "dataset folder")
    files = _walk_images(root)
    if not files:
        raise InputError(f"no images in {root} (looked recursively for {_exts()} files)")
    return ImageDataset(name=name or root.resolve().name, source=FileSource(files, root, identity),
                        kind="unlabelled_folder", location=str(root))


def from_paths(paths: Sequence[str | os.PathLike[str]], labels: Sequence[Any] | np.ndarray | None = None, *,
               base: str | os.PathLike[str] | None = None, name: str = "files",
               identity: IdentityMode = "auto") -> ImageDataset:
    """A dataset from a list of image files (relative ones resolved against ``base``) and optional labels
    (any values; mapped to sorted class ids by :func:`encode_labels`). Missing files are an error."""
    check_mode(identity)
    base_p = Path(base).expanduser() if base is not None else None
    files = [(base_p / p if base_p is not None and not Path(p).is_absolute() else Path(p)).expanduser()
             for p in paths]
    if not files:
        raise InputError(f"{name}: no images (empty dataset)")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise InputError(f"{name}: {len(missing)} image file(s) not found, e.g. {missing[0]}")
    ids, names = (None, None) if labels is None else encode_labels(labels, f"{name} labels")
    if ids is not None and ids.shape[0] != len(files):
        raise InputError(f"{name}: {ids.shape[0]} labels for {len(files)} images")
    return ImageDataset(name=name, source=FileSource(files, base_p, identity), labels=ids, class_names=names,
                        kind="files", location=str(base_p or ""))


# -- CSV -------------------------------------------------------------------------------------------------------------
def _target_columns(columns: str | Sequence[str] | None) -> list[str]:
    """Regression target column names from a name, a comma-separated list or a sequence (empty: none)."""
    if columns is None:
        return []
    names = columns.split(",") if isinstance(columns, str) else list(columns)
    names = [str(c).strip() for c in names]
    if not names or any(not c for c in names):
        raise InputError(f"target columns {columns!r}: give one or more column names, e.g. 'age' or 'x,y'")
    return names


def _parse_targets(values: list[list[str]], lines: list[int], columns: list[str], where: Path) -> np.ndarray:
    """Float targets [N] (one column) or [N, K] from the cells of a CSV; a cell that is not a finite number is
    an error naming its line and column."""
    out = np.empty((len(values), len(columns)), dtype=np.float64)
    for r, (cells, line) in enumerate(zip(values, lines, strict=True)):
        for c, cell in enumerate(cells):
            try:
                out[r, c] = float(cell)
            except ValueError:
                out[r, c] = np.nan
            if not np.isfinite(out[r, c]):
                raise InputError(f"{where}, line {line}: column {columns[c]!r} holds {cell!r}, not a finite "
                                 "number (regression targets must be numbers)")
    return out[:, 0] if len(columns) == 1 else out


def from_csv(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, name: str | None = None,
             path_column: str = "path", label_column: str = "label",
             target_columns: str | Sequence[str] | None = None,
             identity: IdentityMode = "auto") -> ImageDataset:
    """A CSV file with a header row and columns ``path,label`` (other columns are ignored).

    Relative paths are resolved against ``root`` if given, else against the CSV file's folder. Label strings are
    mapped to class ids in sorted order (numerically when they are all integers). With ``target_columns`` (a
    column name, a comma-separated list or a sequence) the dataset is a regression one: those columns are read as
    real-valued targets (shape [N] for one column, [N, K] for K) and ``label_column`` is not used. Missing columns,
    empty cells, values that are not numbers and files that do not exist are errors naming the line.
    """
    check_mode(identity)
    targets = _target_columns(target_columns)
    value_columns = targets or [label_column]
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"CSV file not found: {p}")
    if not p.is_file():
        raise InputError(f"not a CSV file: {p}")
    base = Path(root).expanduser() if root is not None else p.parent
    if root is not None and not base.is_dir():
        raise InputError(f"CSV root folder not found: {base}")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing_cols = [c for c in (path_column, *value_columns) if c not in header]
            if missing_cols:
                have = ", ".join(header) if header else "nothing"
                raise InputError(f"{p}: missing column(s) {', '.join(map(repr, missing_cols))} (header has {have}); "
                                 f"expected a header row with columns {','.join([path_column, *value_columns])}")
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not a UTF-8 text CSV file ({exc.reason})") from exc
    if not rows:
        raise InputError(f"{p}: no rows after the header (empty dataset)")
    files: list[Path] = []
    values: list[list[str]] = []
    missing: list[tuple[int, Path]] = []
    for line, row in rows:
        rel = (row.get(path_column) or "").strip()
        if not rel:
            raise InputError(f"{p}, line {line}: empty {path_column!r}")
        cells = [(row.get(c) or "").strip() for c in value_columns]
        for c, cell in zip(value_columns, cells, strict=True):
            if not cell:
                raise InputError(f"{p}, line {line}: empty {c!r} for {rel}")
        full = Path(rel).expanduser()
        full = full if full.is_absolute() else base / full
        if not full.is_file():
            missing.append((line, full))
        files.append(full)
        values.append(cells)
    if missing:
        line, full = missing[0]
        raise InputError(f"{p}: {len(missing)} image file(s) not found, e.g. line {line}: {full}")
    if targets:
        y = _parse_targets(values, [line for line, _ in rows], value_columns, p)
        return ImageDataset(name=name or p.stem, source=FileSource(files, base, identity), targets=y, kind="csv",
                            location=str(p))
    ids, names = encode_labels([v[0] for v in values], f"{p} column {label_column!r}")
    return ImageDataset(name=name or p.stem, source=FileSource(files, base, identity), labels=ids,
                        class_names=names, kind="csv", location=str(p))


# -- Hugging Face ---------------------------------------------------------------------------------------------------
def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise InputError(f"reading a Hugging Face dataset needs the 'datasets' package: {_HF_HINT}") from exc
    return datasets


def is_hf_disk(path: Path) -> bool:
    """True when ``path`` looks like a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file()
                              or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()))


def from_hf_disk(path: str | os.PathLike[str], *, image_column: str | None = None, label_column: str | None = None,
                 split: str | None = None, name: str | None = None, identity: IdentityMode = "auto") -> ImageDataset:
    """A Hugging Face ``datasets`` dataset saved with ``save_to_disk`` (a ``Dataset``, or a ``DatasetDict`` with
    ``split`` naming the split; a dict with a single split needs none).

    The image column defaults to the one column with an ``Image`` feature; the label column to the one
    ``ClassLabel`` column (class names from the feature), else a column named ``label``/``labels``, else none
    (unlabelled). The identity hashes the saved Arrow files. Needs the ``hf`` extra (imported lazily).
    """
    check_mode(identity)
    root = _existing_dir(path, "Hugging Face dataset folder")
    if not is_hf_disk(root):
        raise InputError(f"{root} is not a Hugging Face dataset saved with save_to_disk "
                         "(no dataset_dict.json or state.json + dataset_info.json)")
    hf = _import_datasets()
    try:
        loaded = hf.load_from_disk(str(root))
    except Exception as exc:
        raise InputError(f"cannot load the Hugging Face dataset in {root}: {type(exc).__name__}: {exc}") from exc
    where = str(root)
    if isinstance(loaded, hf.DatasetDict):
        splits = sorted(loaded.keys())
        if split is None and len(splits) == 1:
            split = splits[0]
        if split is None:
            raise InputError(f"{root} holds splits {', '.join(splits)}: pass split= to choose one")
        if split not in loaded:
            raise InputError(f"{root} has no split {split!r} (splits: {', '.join(splits)})")
        loaded = loaded[split]
        where = f"{root} (split {split!r})"
    elif split is not None:
        raise InputError(f"{root} is a single Hugging Face Dataset without splits; do not pass split={split!r}")
    files = sorted({Path(c["filename"]) for c in loaded.cache_files})
    digest, used = hash_files(files, relative_names(files, root), identity)
    if not files:  # an in-memory table (should not happen after load_from_disk): fall back to HF's fingerprint
        digest, used = hash_parts("hf-fingerprint", str(loaded._fingerprint)), "hf-fingerprint"
    return _from_hf(loaded, hf, image_column, label_column, name or root.resolve().name, where,
                    f"{digest}:{split or ''}", used, kind="hf_disk")


def from_hf_dataset(hf_dataset: Any, *, image_column: str | None = None, label_column: str | None = None,
                    name: str = "hf_dataset") -> ImageDataset:
    """An in-memory Hugging Face ``datasets.Dataset`` (columns detected as in :func:`from_hf_disk`). Its identity
    builds on the dataset's own fingerprint, which ``datasets`` derives from its content and history."""
    hf = _import_datasets()
    if not isinstance(hf_dataset, hf.Dataset):
        raise InputError(f"expected a datasets.Dataset, got {type(hf_dataset).__name__} "
                         "(for a DatasetDict pick a split first, e.g. d['train'])")
    fp = getattr(hf_dataset, "_fingerprint", None)
    if not fp:
        raise InputError(f"{name}: the Hugging Face dataset has no fingerprint; save it with save_to_disk and "
                         "use from_hf_disk")
    return _from_hf(hf_dataset, hf, image_column, label_column, name, name, hash_parts("hf-fingerprint", fp),
                    "hf-fingerprint", kind="hf")


def _from_hf(ds: Any, hf: Any, image_column: str | None, label_column: str | None, name: str, where: str,
             fingerprint: str, mode_used: str, kind: str) -> ImageDataset:
    features = ds.features
    columns = list(features)
    image_cols = [k for k, f in features.items() if isinstance(f, hf.Image)]
    if image_column is not None:
        if image_column not in features:
            raise InputError(f"{where}: no column {image_column!r} (columns: {', '.join(columns)})")
        if not isinstance(features[image_column], hf.Image):
            raise InputError(f"{where}: column {image_column!r} is {type(features[image_column]).__name__}, "
                             "not an Image column")
    elif len(image_cols) == 1:
        image_column = image_cols[0]
    elif not image_cols:
        raise InputError(f"{where}: no Image column (columns: {', '.join(columns)}); pass image_column=")
    else:
        raise InputError(f"{where}: several Image columns ({', '.join(image_cols)}); pass image_column=")
    if len(ds) == 0:
        raise InputError(f"{where}: no rows (empty dataset)")

    if label_column is None:
        class_cols = [k for k, f in features.items() if isinstance(f, hf.ClassLabel)]
        if len(class_cols) > 1:
            raise InputError(f"{where}: several ClassLabel columns ({', '.join(class_cols)}); pass label_column=")
        if class_cols:
            label_column = class_cols[0]
        else:
            label_column = next((c for c in ("label", "labels") if c in features), None)
    elif label_column not in features:
        raise InputError(f"{where}: no column {label_column!r} (columns: {', '.join(columns)})")

    labels = class_names = None
    if label_column is not None:
        raw = ds.with_format("arrow")[label_column]
        values = raw.to_pylist()
        feat = features[label_column]
        if isinstance(feat, hf.ClassLabel):
            arr = np.asarray(values, dtype=np.int64)
            if (arr == -1).all():  # the HF convention for "no label" (e.g. a test split)
                arr = None
            elif (arr < 0).any():
                raise InputError(f"{where}: {int((arr < 0).sum())} rows have no label (-1) in column "
                                 f"{label_column!r}")
            if arr is not None:
                labels, class_names = arr, list(feat.names)
                _check_no_empty_class(labels, class_names, f"{where} (column {label_column!r})")
        else:
            labels, class_names = encode_labels(values, f"{where} column {label_column!r}")
    source = HFSource(ds, image_column, name, hash_parts(fingerprint, image_column), mode_used)
    return ImageDataset(name=name, source=source, labels=labels, class_names=class_names, kind=kind,
                        location=where)


# -- arrays ----------------------------------------------------------------------------------------------------------
def from_arrays(images: Any, labels: Sequence[Any] | np.ndarray | None = None, *,
                class_names: Sequence[str] | None = None, name: str = "arrays",
                targets: Any = None) -> ImageDataset:
    """In-memory images: uint8 ``[N, H, W]`` (grey), ``[N, H, W, 1]`` or ``[N, H, W, 3]`` (RGB), or floats in
    [0, 1] (scaled to 0..255 and rounded). Integer arrays must hold values in 0..255.

    ``labels`` (length N) are mapped to sorted class ids by :func:`encode_labels`, unless ``class_names`` is
    given: then labels must already be ids 0..len(class_names)-1 and every class needs at least one image.
    ``targets`` (float [N] or [N, K], instead of labels) make it a regression dataset.
    """
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise InputError(f"{name}: images must be [N, H, W] or [N, H, W, 3], got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputError(f"{name}: no images (empty dataset)")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InputError(f"{name}: images have zero height or width (shape {tuple(arr.shape)})")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name}: images must be uint8 or floats in [0, 1], got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: images contain NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(f"{name}: float images must lie in [0, 1] (got {lo:g}..{hi:g}); "
                             "divide by 255 (or by the maximum) first")
        arr = np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(f"{name}: integer images must lie in 0..255 (got {lo}..{hi}); use uint8 or floats "
                             "in [0, 1]")
        arr = arr.astype(np.uint8)
    arr = np.array(arr, dtype=np.uint8, order="C", copy=True)  # our own frozen copy: the caller's stays writable
    arr.setflags(write=False)

    ids = names = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim != 1 or lab.shape[0] != arr.shape[0]:
            raise InputError(f"{name}: labels must be a vector of {arr.shape[0]} values, got shape {lab.shape}")
        if class_names is not None:
            names = [str(c) for c in class_names]
            if not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= len(names):
                raise InputError(f"{name}: with class_names, labels must be integers 0..{len(names) - 1}")
            ids = lab.astype(np.int64)
            _check_no_empty_class(ids, names, name)
        else:
            ids, names = encode_labels(lab, f"{name} labels")
    elif class_names is not None:
        raise InputError(f"{name}: class_names given without labels")
    if targets is not None and labels is not None:
        raise InputError(f"{name}: give labels (classification) or targets (regression), not both")
    return ImageDataset(name=name, source=ArraySource(arr), labels=ids, class_names=names, kind="arrays",
                        location="<memory>", targets=targets)


# -- auto-detection ----------------------------------------------------------------------------------------------
_KINDS = ("folder", "unlabelled", "csv", "hf", "arrays")


def open_dataset(path_or_obj: Any, *, kind: str | None = None, **kw: Any) -> ImageDataset:
    """Open a dataset from a path or an object, detecting its kind unless ``kind`` is one of
    ``folder``, ``unlabelled``, ``csv``, ``hf``, ``arrays``; ``kw`` go to the loader.

    Detection: an :class:`ImageDataset` is returned as is; an array (or ``(images, labels)``) goes to
    :func:`from_arrays`; a ``datasets.Dataset`` to :func:`from_hf_dataset`; a ``.csv`` file to :func:`from_csv`;
    a folder written by ``save_to_disk`` to :func:`from_hf_disk`; a folder with sub-folders and no loose images to
    :func:`from_folder` (sub-folders are classes); a folder with images and no sub-folders to
    :func:`from_unlabelled_folder`. A folder with both is ambiguous: pass ``kind``.
    """
    if kind is not None and kind not in _KINDS:
        raise InputError(f"unknown dataset kind {kind!r}; choose one of {', '.join(_KINDS)}")
    if isinstance(path_or_obj, ImageDataset):
        if kw:
            raise InputError(f"options {sorted(kw)} do not apply to an already opened ImageDataset")
        return path_or_obj
    if isinstance(path_or_obj, np.ndarray) or kind == "arrays":
        if isinstance(path_or_obj, tuple) and len(path_or_obj) == 2:
            return from_arrays(path_or_obj[0], path_or_obj[1], **kw)
        return from_arrays(path_or_obj, **kw)
    if isinstance(path_or_obj, tuple) and len(path_or_obj) == 2 and isinstance(path_or_obj[0], np.ndarray):
        return from_arrays(path_or_obj[0], path_or_obj[1], **kw)
    if not isinstance(path_or_obj, str | os.PathLike):
        if hasattr(path_or_obj, "features") and hasattr(path_or_obj, "cast_column"):
            return from_hf_dataset(path_or_obj, **kw)
        raise InputError(f"cannot open a dataset from a {type(path_or_obj).__name__}: pass a folder, a .csv "
                         "file, a Hugging Face dataset folder, an array or an ImageDataset")
    p = Path(path_or_obj).expanduser()
    if not p.exists():
        raise InputError(f"dataset path not found: {p}")
    loaders = {"folder": from_folder, "unlabelled": from_unlabelled_folder, "csv": from_csv, "hf": from_hf_disk}
    if kind is not None:
        return loaders[kind](p, **kw)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return from_csv(p, **kw)
        raise InputError(f"cannot open {p} as a dataset: expected a folder, a .csv file or a Hugging Face dataset "
                         "saved with save_to_disk")
    if is_hf_disk(p):
        return from_hf_disk(p, **kw)
    entries = [e for e in os.scandir(p) if not e.name.startswith(".")]
    has_subdirs = any(e.is_dir() for e in entries)
    has_images = any(e.is_file() and is_image_name(e.name) for e in entries)
    if has_subdirs and has_images:
        raise InputError(f"{p} holds both images and sub-folders: pass kind='folder' (sub-folders are classes, "
                         "loose images ignored) or kind='unlabelled' (every image, no labels)")
    if has_subdirs:
        return from_folder(p, **kw)
    return from_unlabelled_folder(p, **kw)
