"""Tests of zoorank.data: loaders, errors, unreadable images, identity, probe sampling and splits.

Every image is a real file written with PIL into tmp_path (8x8 pixels), or sklearn's digits through from_arrays;
Hugging Face datasets are built in tmp_path and saved with save_to_disk (no download).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from zoorank import InputError, data
from zoorank.data import ImageDataset, ImageReadError

COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "grey": (128, 128, 128)}


def write_image(path: Path, color=(255, 0, 0), size=(8, 8), fmt: str | None = None) -> Path:
    """A real image file of one flat color."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def truncated(path: Path, fmt: str) -> Path:
    """A real image file cut in half (decoding it fails with 'truncated')."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, format=fmt)
    raw = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw[: len(raw) // 2])
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """root/cat: 3 PNGs (one nested), root/dog: 2 upper-case .JPG, plus files and folders to ignore."""
    root = tmp_path / "pets"
    write_image(root / "cat" / "a.png", COLORS["red"])
    write_image(root / "cat" / "b.png", COLORS["green"])
    write_image(root / "cat" / "sub" / "c.png", COLORS["blue"])
    write_image(root / "dog" / "X.JPG", COLORS["grey"], fmt="JPEG")
    write_image(root / "dog" / "y.Jpeg", COLORS["grey"], fmt="JPEG")
    (root / "cat" / "notes.txt").write_text("not an image")
    write_image(root / "cat" / ".hidden.png")  # hidden file
    write_image(root / "dog" / ".thumbs" / "t.png")  # hidden folder
    write_image(root / ".cache" / "z.png")  # hidden class folder
    write_image(root / "loose.png")  # loose file in the root: not a class
    return root


# -- from_folder -------------------------------------------------------------------------------------------------
def test_from_folder_classes_labels_and_pixels(folder: Path) -> None:
    ds = data.from_folder(folder)
    assert ds.class_names == ["cat", "dog"]
    assert len(ds) == 5
    assert ds.labels.dtype == np.int64
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    names = [p.relative_to(folder).as_posix() for p in ds.paths]
    assert names == ["cat/a.png", "cat/b.png", "cat/sub/c.png", "dog/X.JPG", "dog/y.Jpeg"]
    img = ds.load(0)
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (8, 8)
    assert img.getpixel((3, 3)) == COLORS["red"]
    assert ds.load(2).getpixel((0, 0)) == COLORS["blue"]
    assert ds.load(-1).mode == "RGB"
    with pytest.raises(IndexError):
        ds.load(5)
    assert ds.name == "pets" and ds.kind == "folder"


def test_from_folder_describe(folder: Path) -> None:
    write_image(folder / "dog" / "big.png", size=(20, 10))
    d = data.from_folder(folder).describe()
    assert d["n_images"] == 6 and d["n_classes"] == 2 and d["labelled"]
    assert d["class_counts"] == {"cat": 3, "dog": 3}
    assert d["image_size"] == [8, 8]
    assert d["image_size_max"] == [20, 10]
    assert d["source"] == "folder" and d["location"] == str(folder)
    assert d["identity_mode"] == "content"
    assert len(d["identity"]) == 32


def test_from_folder_errors(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(InputError, match=r"dataset folder not found: .*nowhere"):
        data.from_folder(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"not a directory: .*a\.png"):
        data.from_folder(folder / "cat" / "a.png")
    flat = tmp_path / "flat"
    write_image(flat / "a.png")
    with pytest.raises(InputError, match=r"no class sub-folders in .*from_unlabelled_folder"):
        data.from_folder(flat)
    (folder / "bird").mkdir()
    (folder / "bird" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError) as exc:
        data.from_folder(folder)
    assert str(exc.value) == f"class 'bird' has no images in {folder / 'bird'}"
    assert "\n" not in str(exc.value)


def test_from_unlabelled_folder(folder: Path, tmp_path: Path) -> None:
    ds = data.from_unlabelled_folder(folder)
    assert ds.labels is None and ds.class_names is None and ds.n_classes == 0
    names = [p.relative_to(folder).as_posix() for p in ds.paths]
    assert names == ["cat/a.png", "cat/b.png", "cat/sub/c.png", "dog/X.JPG", "dog/y.Jpeg", "loose.png"]
    assert ds.describe()["class_counts"] == {}
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    write_image(empty / ".git" / "x.png")
    (empty / "readme.md").write_text("x")
    with pytest.raises(InputError, match=r"no images in .*empty"):
        data.from_unlabelled_folder(empty)
    with pytest.raises(InputError, match="not found"):
        data.from_unlabelled_folder(tmp_path / "missing")


# -- from_csv ----------------------------------------------------------------------------------------------------
def test_from_csv_relative_paths_and_label_mapping(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "1.png", COLORS["red"])
    write_image(tmp_path / "img" / "2.png", COLORS["green"])
    write_image(tmp_path / "img" / "3.png", COLORS["blue"])
    absolute = write_image(tmp_path / "elsewhere" / "4.png", COLORS["grey"])
    csv = tmp_path / "labels.csv"
    csv.write_text(f"path,label,extra\nimg/1.png,zebra,x\nimg/2.png,ant,y\nimg/3.png,zebra,z\n{absolute},moth,w\n")
    ds = data.from_csv(csv)
    assert ds.class_names == ["ant", "moth", "zebra"]
    assert ds.labels.tolist() == [2, 0, 2, 1]
    assert ds.load(1).getpixel((0, 0)) == COLORS["green"]
    assert ds.load(3).getpixel((0, 0)) == COLORS["grey"]
    assert ds.kind == "csv" and ds.name == "labels"


def test_from_csv_numeric_labels_sorted_numerically_and_root(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for i in range(3):
        write_image(images / f"{i}.png")
    csv = tmp_path / "meta" / "train.csv"
    csv.parent.mkdir()
    csv.write_text("\ufeffpath,label\n0.png,10\n1.png,2\n2.png,10\n", encoding="utf-8")  # with a BOM
    ds = data.from_csv(csv, root=images)
    assert ds.class_names == ["2", "10"]
    assert ds.labels.tolist() == [1, 0, 1]
    with pytest.raises(InputError, match=r"3 image file\(s\) not found, e.g. line 2: .*meta/0\.png"):
        data.from_csv(csv)  # relative to the CSV's folder, where the images are not


def test_from_csv_errors(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    bad_cols = tmp_path / "cols.csv"
    bad_cols.write_text("file,label\na.png,x\n")
    with pytest.raises(InputError, match=r"missing column\(s\) 'path' \(header has file, label\)"):
        data.from_csv(bad_cols)
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("path\na.png\n")
    with pytest.raises(InputError, match=r"missing column.*'label'"):
        data.from_csv(no_label)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\na.png,x\nghost.png,y\nghost2.png,y\n")
    with pytest.raises(InputError) as exc:
        data.from_csv(missing)
    assert "2 image file(s) not found" in str(exc.value) and "ghost.png" in str(exc.value)
    assert "line 3" in str(exc.value)
    header_only = tmp_path / "header.csv"
    header_only.write_text("path,label\n")
    with pytest.raises(InputError, match="no rows after the header"):
        data.from_csv(header_only)
    empty_label = tmp_path / "empty_label.csv"
    empty_label.write_text("path,label\na.png,\n")
    with pytest.raises(InputError, match=r"line 2: empty 'label' for a\.png"):
        data.from_csv(empty_label)
    with pytest.raises(InputError, match="CSV file not found"):
        data.from_csv(tmp_path / "none.csv")
    with pytest.raises(InputError, match="not a CSV file"):
        data.from_csv(tmp_path)


# -- from_arrays ---------------------------------------------------------------------------------------------------
def test_from_arrays_digits() -> None:
    digits = load_digits()
    ds = data.from_arrays(digits.images / 16.0, digits.target, name="digits")
    assert len(ds) == 1797 and ds.n_classes == 10
    assert ds.class_names == [str(i) for i in range(10)]
    np.testing.assert_array_equal(ds.labels, digits.target)
    img = ds.load(0)
    assert img.mode == "RGB" and img.size == (8, 8)
    expected = np.rint(digits.images[0] / 16.0 * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(img)[..., 0], expected)
    np.testing.assert_array_equal(np.asarray(img)[..., 2], expected)
    d = ds.describe()
    assert d["class_counts"]["0"] == int((digits.target == 0).sum())
    assert d["image_size"] == [8, 8] and d["source"] == "arrays"


def test_from_arrays_rgb_channel_one_string_labels_and_class_names() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    ds = data.from_arrays(rgb, ["b", "a", "b", "c"])
    assert ds.class_names == ["a", "b", "c"] and ds.labels.tolist() == [1, 0, 1, 2]
    np.testing.assert_array_equal(np.asarray(ds.load(2)), rgb[2])
    assert ds.load(0).size == (6, 5)
    one = data.from_arrays(rgb[..., :1])
    assert one.labels is None and np.asarray(one.load(1))[..., 1].tolist() == rgb[1, ..., 0].tolist()
    named = data.from_arrays(rgb, [0, 1, 0, 1], class_names=["cat", "dog"])
    assert named.class_names == ["cat", "dog"]
    assert data.from_arrays(rgb.astype(np.int64)).identity == data.from_arrays(rgb).identity


@pytest.mark.parametrize(
    ("images", "labels", "kw", "message"),
    [
        (np.zeros((2, 8)), None, {}, r"images must be \[N, H, W\] or \[N, H, W, 3\], got shape \(2, 8\)"),
        (np.zeros((2, 8, 8, 4)), None, {}, "got shape"),
        (np.zeros((0, 8, 8)), None, {}, "no images"),
        (np.full((2, 8, 8), 2.0), None, {}, r"float images must lie in \[0, 1\] \(got 2\.\.2\)"),
        (np.full((2, 8, 8), np.nan), None, {}, "NaN or inf"),
        (np.full((2, 8, 8), 300), None, {}, r"integer images must lie in 0\.\.255"),
        (np.zeros((2, 8, 8), dtype=bool), None, {}, "dtype bool"),
        (np.zeros((2, 8, 8)), [0, 1, 1], {}, "labels must be a vector of 2 values"),
        (np.zeros((2, 8, 8)), [0, 2], {"class_names": ["a", "b"]}, r"integers 0\.\.1"),
        (np.zeros((2, 8, 8)), [0, 0], {"class_names": ["a", "b"]}, "class 'b' has no images"),
        (np.zeros((2, 8, 8)), None, {"class_names": ["a"]}, "class_names given without labels"),
        (np.zeros((2, 8, 8)), [0, None], {}, "missing label"),
    ],
)
def test_from_arrays_validation(images, labels, kw, message) -> None:
    with pytest.raises(InputError, match=message):
        data.from_arrays(images, labels, **kw)


# -- Hugging Face datasets saved to disk ---------------------------------------------------------------------------
try:
    import datasets as hf
except ImportError:  # the hf extra is not installed
    hf = None
needs_hf = pytest.mark.skipif(hf is None, reason="needs the 'datasets' package (zoorank[hf])")


def _hf_dataset(colors: list[tuple[int, int, int]], labels: list[int], names=("cat", "dog")):
    images = [Image.new("RGB", (8, 8), c) for c in colors]
    features = hf.Features({"img": hf.Image(), "y": hf.ClassLabel(names=list(names)), "note": hf.Value("string")})
    return hf.Dataset.from_dict({"img": images, "y": labels, "note": ["n"] * len(labels)}, features=features)


@needs_hf
def test_from_hf_disk_autodetects_columns(tmp_path: Path) -> None:
    colors = [COLORS["red"], COLORS["green"], COLORS["blue"]]
    _hf_dataset(colors, [1, 0, 1]).save_to_disk(str(tmp_path / "hfds"))
    ds = data.from_hf_disk(tmp_path / "hfds")
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [1, 0, 1]
    assert [ds.load(i).getpixel((1, 1)) for i in range(3)] == colors
    assert ds.kind == "hf_disk" and ds.name == "hfds"
    # Explicit columns, and a string label column mapped to sorted ids.
    plain = hf.Dataset.from_dict({"a": [Image.new("RGB", (8, 8))] * 2, "b": [Image.new("RGB", (4, 4))] * 2,
                                  "kind": ["y", "x"]},
                                 features=hf.Features({"a": hf.Image(), "b": hf.Image(), "kind": hf.Value("string")}))
    plain.save_to_disk(str(tmp_path / "plain"))
    with pytest.raises(InputError, match=r"several Image columns \(a, b\); pass image_column="):
        data.from_hf_disk(tmp_path / "plain")
    two = data.from_hf_disk(tmp_path / "plain", image_column="b", label_column="kind")
    assert two.class_names == ["x", "y"] and two.labels.tolist() == [1, 0] and two.load(0).size == (4, 4)
    unl = data.from_hf_disk(tmp_path / "plain", image_column="a")
    assert unl.labels is None
    with pytest.raises(InputError, match="no column 'nope'"):
        data.from_hf_disk(tmp_path / "plain", image_column="a", label_column="nope")
    with pytest.raises(InputError, match="column 'kind' is Value, not an Image column"):
        data.from_hf_disk(tmp_path / "plain", image_column="kind")


@needs_hf
def test_from_hf_disk_splits_identity_and_errors(tmp_path: Path) -> None:
    train = _hf_dataset([COLORS["red"], COLORS["green"]], [0, 1])
    test = _hf_dataset([COLORS["blue"], COLORS["grey"]], [1, 0])
    hf.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match="holds splits test, train: pass split="):
        data.from_hf_disk(tmp_path / "dd")
    with pytest.raises(InputError, match="has no split 'valid'"):
        data.from_hf_disk(tmp_path / "dd", split="valid")
    ds_test = data.from_hf_disk(tmp_path / "dd", split="test")
    assert ds_test.load(0).getpixel((0, 0)) == COLORS["blue"]
    assert ds_test.identity != data.from_hf_disk(tmp_path / "dd", split="train").identity
    # The same saved content gives the same identity, wherever the folder is.
    shutil.copytree(tmp_path / "dd", tmp_path / "copy")
    assert data.from_hf_disk(tmp_path / "copy", split="test").identity == ds_test.identity
    # A class named by the ClassLabel feature with no rows is an error.
    _hf_dataset([COLORS["red"]], [0]).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(InputError, match=r"class 'dog' has no images in .*one"):
        data.from_hf_disk(tmp_path / "one")
    (tmp_path / "notsaved").mkdir()
    with pytest.raises(InputError, match="not a Hugging Face dataset saved with save_to_disk"):
        data.from_hf_disk(tmp_path / "notsaved")
    nolab = hf.Dataset.from_dict({"txt": ["a"]})
    nolab.save_to_disk(str(tmp_path / "noimg"))
    with pytest.raises(InputError, match=r"no Image column \(columns: txt\); pass image_column="):
        data.from_hf_disk(tmp_path / "noimg")


@needs_hf
def test_from_hf_disk_unreadable_image_is_reported(tmp_path: Path) -> None:
    good = io.BytesIO()
    Image.new("RGB", (8, 8), COLORS["red"]).save(good, format="PNG")
    rows = {"image": [{"bytes": good.getvalue(), "path": None}, {"bytes": b"not an image", "path": "bad.png"}],
            "label": [0, 1]}
    ds = hf.Dataset.from_dict(rows, features=hf.Features({"image": hf.Image(), "label": hf.ClassLabel(names=["a",
                                                                                                             "b"])}))
    ds.save_to_disk(str(tmp_path / "h"))
    loaded = data.from_hf_disk(tmp_path / "h")
    assert [i for i, _ in loaded.iter_images()] == [0]
    (problem,) = loaded.problems
    assert problem.index == 1 and "bad.png" in problem.path and "UnidentifiedImageError" in problem.reason


@needs_hf
def test_from_hf_disk_without_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _hf_dataset([COLORS["red"]], [0], names=("a",)).save_to_disk(str(tmp_path / "h"))
    monkeypatch.setitem(sys.modules, "datasets", None)  # what an environment without the package looks like
    with pytest.raises(InputError, match=r"needs the 'datasets' package: install .*zoorank\[hf\]"):
        data.from_hf_disk(tmp_path / "h")


@needs_hf
def test_from_hf_dataset_in_memory() -> None:
    ds = data.from_hf_dataset(_hf_dataset([COLORS["red"], COLORS["green"]], [0, 1]))
    assert ds.labels.tolist() == [0, 1] and ds.load(1).getpixel((0, 0)) == COLORS["green"]
    same = data.from_hf_dataset(_hf_dataset([COLORS["red"], COLORS["green"]], [0, 1]))
    assert same.identity == ds.identity


# -- open_dataset --------------------------------------------------------------------------------------------------
@needs_hf
def test_open_dataset_detects_every_kind(tmp_path: Path, folder: Path) -> None:
    shutil.rmtree(folder / ".cache")
    (folder / "loose.png").unlink()
    assert data.open_dataset(folder).kind == "folder"
    assert data.open_dataset(str(folder)).class_names == ["cat", "dog"]
    flat = tmp_path / "flat"
    write_image(flat / "a.png")
    write_image(flat / "b.png")
    assert data.open_dataset(flat).kind == "unlabelled_folder"
    csv = tmp_path / "flat.csv"
    csv.write_text("path,label\nflat/a.png,u\nflat/b.png,v\n")
    assert data.open_dataset(csv).kind == "csv"
    _hf_dataset([COLORS["red"], COLORS["blue"]], [0, 1]).save_to_disk(str(tmp_path / "hfds"))
    assert data.open_dataset(tmp_path / "hfds").kind == "hf_disk"
    arr = np.zeros((3, 8, 8), dtype=np.uint8)
    assert data.open_dataset(arr).labels is None
    assert data.open_dataset((arr, [0, 1, 1])).class_names == ["0", "1"]
    ds = data.open_dataset(folder)
    assert data.open_dataset(ds) is ds
    assert data.open_dataset(folder, kind="unlabelled").labels is None
    assert data.open_dataset(_hf_dataset([COLORS["red"], COLORS["blue"]], [0, 1])).kind == "hf"


def test_open_dataset_errors(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(InputError, match=r"dataset path not found: .*ghost"):
        data.open_dataset(tmp_path / "ghost")
    with pytest.raises(InputError, match="holds both images and sub-folders: pass kind="):
        data.open_dataset(folder)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"cannot open .*notes\.txt as a dataset"):
        data.open_dataset(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="unknown dataset kind 'zip'"):
        data.open_dataset(folder, kind="zip")
    with pytest.raises(InputError, match="cannot open a dataset from a int"):
        data.open_dataset(3)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images in"):
        data.open_dataset(empty)


# -- unreadable images -------------------------------------------------------------------------------------------
@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """cat: 2 good + a truncated JPEG + a text file named .png; dog: 2 good + a truncated PNG."""
    root = tmp_path / "damaged"
    write_image(root / "cat" / "1.png", COLORS["red"])
    write_image(root / "cat" / "2.png", COLORS["red"])
    truncated(root / "cat" / "3_trunc.jpg", "JPEG")
    (root / "cat" / "4_text.png").write_text("this is not a PNG file\n")
    write_image(root / "dog" / "1.png", COLORS["blue"])
    truncated(root / "dog" / "2_trunc.png", "PNG")
    write_image(root / "dog" / "3.png", COLORS["blue"])
    return root


def test_iter_images_skips_and_reports_unreadable_files(damaged: Path) -> None:
    ds = data.from_folder(damaged)
    assert len(ds) == 7
    got = [(i, img.getpixel((0, 0))) for i, img in ds.iter_images()]
    assert got == [(0, COLORS["red"]), (1, COLORS["red"]), (4, COLORS["blue"]), (6, COLORS["blue"])]
    problems = ds.problems
    assert [p.index for p in problems] == [2, 3, 5]
    assert [Path(p.path).name for p in problems] == ["3_trunc.jpg", "4_text.png", "2_trunc.png"]
    assert "OSError" in problems[0].reason and "runcated" in problems[0].reason
    assert "cannot identify image file" in problems[1].reason
    assert "truncated" in problems[2].reason
    assert all("\n" not in p.reason for p in problems)
    # A second pass does not duplicate the report; a subset iteration only meets its own images.
    list(ds.iter_images([3, 4]))
    assert len(ds.problems) == 3


def test_load_raises_one_line_error_naming_the_file(damaged: Path) -> None:
    ds = data.from_folder(damaged)
    with pytest.raises(ImageReadError) as exc:
        ds.load(3)
    msg = str(exc.value)
    assert msg.startswith("cannot read image ") and msg.endswith("UnidentifiedImageError: cannot identify image "
                                                                 f"file '{damaged / 'cat' / '4_text.png'}'")
    assert exc.value.ref == str(damaged / "cat" / "4_text.png")
    assert isinstance(exc.value, InputError)
    assert ds.try_load(3) is None and ds.try_load(0) is not None


def test_verify_returns_report_and_clean_dataset(damaged: Path) -> None:
    ds = data.from_folder(damaged)
    seen = []
    report = ds.verify(progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (7, 7)
    assert report.n_checked == 7 and not report.ok
    assert [Path(p.path).name for p in report.problems] == ["3_trunc.jpg", "4_text.png", "2_trunc.png"]
    assert report.lines()[1].startswith(str(damaged / "cat" / "4_text.png") + ": UnidentifiedImageError")
    clean = report.clean
    assert len(clean) == 4 and clean.labels.tolist() == [0, 0, 1, 1] and clean.class_names == ["cat", "dog"]
    assert clean.parent_indices.tolist() == [0, 1, 4, 6]
    assert [Path(p).name for p in clean.paths] == ["1.png", "2.png", "1.png", "3.png"]
    assert clean.verify().ok and clean.problems == []
    assert clean.identity != ds.identity
    # A good dataset verifies clean and is returned as is.
    good = data.from_arrays(np.zeros((2, 8, 8), dtype=np.uint8), [0, 1])
    assert good.verify().clean is good


def test_verify_class_with_no_readable_image_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write_image(root / "cat" / "ok.png")
    (root / "dog" / "bad.png").parent.mkdir(parents=True)
    (root / "dog" / "bad.png").write_text("text")
    ds = data.from_folder(root)
    with pytest.raises(InputError, match=r"class 'dog' has no readable images \(e\.g\. .*bad\.png: "):
        ds.verify()
    assert len(ds.verify([0]).problems) == 0  # only index 0 checked
    only_bad = data.from_unlabelled_folder(root / "dog")
    with pytest.raises(InputError, match="no readable images"):
        only_bad.verify()


def test_image_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    root = tmp_path / "modes"
    root.mkdir()
    Image.new("L", (8, 8), 200).save(root / "a_grey.png")
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(root / "b_16bit.png")
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(root / "c_palette.png", transparency=0)
    Image.new("RGBA", (8, 8), (1, 2, 3, 128)).save(root / "d_rgba.png")
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(root / "e_cmyk.jpg")
    ds = data.from_unlabelled_folder(root)
    pixels = [ds.load(i).getpixel((0, 0)) for i in range(len(ds))]
    assert all(ds.load(i).mode == "RGB" for i in range(len(ds)))
    assert pixels[0] == (200, 200, 200)
    assert pixels[1] == (255, 255, 255)  # 16-bit white stays white, not clipped garbage
    assert pixels[2] == (10, 20, 30)
    assert pixels[3] == (1, 2, 3)
    assert pixels[4][0] > 240


# -- identity --------------------------------------------------------------------------------------------------------
def test_identity_same_content_same_hash_any_location(folder: Path, tmp_path: Path) -> None:
    a = data.from_folder(folder)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, copy)  # new mtimes, same bytes
    os.utime(copy / "cat" / "a.png", ns=(1, 1))
    assert data.from_folder(copy).identity == a.identity
    assert data.from_folder(folder).identity == a.identity


def test_identity_changes_with_content_labels_and_files(folder: Path) -> None:
    before = data.from_folder(folder).identity
    write_image(folder / "cat" / "a.png", (254, 0, 0))  # same size file, different pixels
    changed = data.from_folder(folder).identity
    assert changed != before
    write_image(folder / "cat" / "a.png", COLORS["red"])
    assert data.from_folder(folder).identity == before  # content mode: back to the same bytes, same hash
    shutil.move(folder / "cat" / "b.png", folder / "dog" / "b.png")  # same images, other labels
    assert data.from_folder(folder).identity != before
    assert data.from_unlabelled_folder(folder).identity != data.from_folder(folder).identity


def test_identity_stat_mode(folder: Path) -> None:
    ds = data.from_folder(folder, identity="stat")
    first = ds.identity
    assert ds.describe()["identity_mode"] == "stat"
    assert data.from_folder(folder, identity="stat").identity == first
    path = folder / "cat" / "a.png"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touch
    assert data.from_folder(folder, identity="stat").identity != first
    with pytest.raises(InputError, match="identity must be 'auto', 'content' or 'stat'"):
        data.from_folder(folder, identity="fast")


def test_identity_auto_switches_to_stat_for_large_sets(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoorank.data import _identity

    monkeypatch.setattr(_identity, "CONTENT_MAX_FILES", 3)
    ds = data.from_folder(folder)
    assert ds.identity == data.from_folder(folder, identity="stat").identity
    assert ds.describe()["identity_mode"] == "stat"


def test_identity_arrays() -> None:
    digits = load_digits()
    a = data.from_arrays(digits.images / 16.0, digits.target)
    assert a.identity == data.from_arrays(digits.images / 16.0, digits.target).identity
    images = digits.images.copy()
    images[5, 3, 3] = 16 - images[5, 3, 3] if images[5, 3, 3] != 8 else 0
    assert data.from_arrays(images / 16.0, digits.target).identity != a.identity
    assert data.from_arrays(digits.images / 16.0).identity != a.identity
    shifted = data.from_arrays(digits.images / 16.0, (digits.target + 1) % 10)
    assert shifted.identity != a.identity


def test_pickle_roundtrip_for_worker_processes(folder: Path) -> None:
    ds = data.from_folder(folder)
    back = pickle.loads(pickle.dumps(ds))
    assert back.identity == ds.identity and back.load(1).getpixel((0, 0)) == COLORS["green"]


# -- probe --------------------------------------------------------------------------------------------------------
def _imbalanced(counts: list[int]) -> ImageDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(1)
    labels = labels[rng.permutation(labels.size)]
    return data.from_arrays(np.zeros((labels.size, 2, 2), dtype=np.uint8) + (labels[:, None, None] % 256), labels)


def test_probe_stratified_proportional_with_minimum_per_class() -> None:
    ds = _imbalanced([400, 200, 40, 3, 1])
    p = data.probe(ds, 100, seed=0)
    assert len(p) == 100
    per_class = np.bincount(p.labels, minlength=5)
    assert per_class.tolist() == [61, 30, 6, 2, 1]  # the 1-image class keeps its only image
    assert np.all(np.diff(p.indices) > 0)
    np.testing.assert_array_equal(p.labels, ds.labels[p.indices])
    total = 644
    expected = np.array([400, 200, 40, 3, 1]) * 100 / total
    assert np.all(np.abs(per_class[:3] - expected[:3]) <= 2)


def test_probe_allocation_properties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(1, 50, size=rng.integers(1, 12))
        total = int(rng.integers(len(counts), counts.sum() + 1))
        minimum = 2 if total >= 2 * len(counts) else 1
        alloc = data.allocate(counts, total, minimum)
        assert alloc.sum() == total
        assert np.all(alloc <= counts) and np.all(alloc >= np.minimum(counts, minimum))
        assert np.all(np.abs(alloc - counts * total / counts.sum()) <= max(minimum, 1) + 1)


def test_probe_deterministic_capped_and_seeded() -> None:
    digits = load_digits()
    ds = data.from_arrays(digits.images / 16.0, digits.target)
    a, b = data.probe(ds, 200, seed=7), data.probe(ds, 200, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.identity == b.identity and a.dataset_identity == ds.identity
    c = data.probe(ds, 200, seed=8)
    assert not np.array_equal(a.indices, c.indices) and c.identity != a.identity
    share = np.bincount(digits.target) * 200 / len(ds)  # digits classes hold 174..183 images
    assert len(a) == 200 and np.all(np.abs(np.bincount(a.labels) - share) < 1)
    capped = data.probe(ds, per_class_max=5, seed=0)
    assert np.bincount(capped.labels).tolist() == [5] * 10
    both = data.probe(ds, 30, per_class_max=2, seed=0)
    assert len(both) == 20
    assert len(data.probe(ds)) == len(ds)
    # A bigger probe with the same seed contains the smaller one.
    assert set(data.probe(ds, 100, seed=3).indices) <= set(data.probe(ds, 300, seed=3).indices)
    sub = a.apply(ds)
    assert len(sub) == 200 and sub.labels.tolist() == a.labels.tolist()
    other = data.from_arrays(digits.images[:50] / 16.0, digits.target[:50])
    with pytest.raises(InputError, match="drawn from another dataset"):
        a.apply(other)


def test_probe_errors_and_unlabelled(folder: Path) -> None:
    digits = load_digits()
    ds = data.from_arrays(digits.images / 16.0, digits.target)
    with pytest.raises(InputError, match=r"n_max=5 is smaller than the number of classes \(10\)"):
        data.probe(ds, 5)
    with pytest.raises(InputError, match="n_max must be an integer >= 1"):
        data.probe(ds, 0)
    with pytest.raises(InputError, match="per_class_max must be an integer >= 1"):
        data.probe(ds, per_class_max=1.5)
    ten = data.probe(ds, 10)
    assert np.bincount(ten.labels).tolist() == [1] * 10
    unl = data.from_arrays(digits.images / 16.0)
    p = data.probe(unl, 50, per_class_max=1, seed=2)
    assert len(p) == 50 and p.labels is None
    np.testing.assert_array_equal(p.indices, data.probe(unl, 50, seed=2).indices)
    assert len(data.probe(data.from_unlabelled_folder(folder), 1000)) == 6


# -- split ---------------------------------------------------------------------------------------------------------
def test_split_stratified_disjoint_deterministic() -> None:
    ds = _imbalanced([50, 20, 5, 1])
    train, test = data.split(ds, 0.2, seed=0)
    tr, te = set(train.parent_indices.tolist()), set(test.parent_indices.tolist())
    assert not tr & te and tr | te == set(range(len(ds)))
    assert np.bincount(test.labels, minlength=4).tolist() == [10, 4, 1, 0]
    assert np.bincount(train.labels, minlength=4).tolist() == [40, 16, 4, 1]
    assert train.class_names == ds.class_names
    again = data.split(ds, 0.2, seed=0)[1]
    assert again.identity == test.identity and again.parent_indices.tolist() == test.parent_indices.tolist()
    assert data.split(ds, 0.2, seed=1)[1].identity != test.identity
    assert test.load(0).size == (2, 2)
    unl_train, unl_test = data.split(data.from_arrays(np.zeros((10, 2, 2), np.uint8)), 0.3, seed=0)
    assert len(unl_train) == 7 and len(unl_test) == 3


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, True, "0.2"])
def test_split_rejects_bad_fraction(fraction) -> None:
    with pytest.raises(InputError, match="test_fraction must be a number strictly between 0 and 1"):
        data.split(_imbalanced([4, 4]), fraction)


def test_from_arrays_leaves_the_callers_array_writable():
    from zoorank.data import from_arrays as _from_arrays

    a = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    ds = _from_arrays(a, [0, 1, 0, 1])
    a[0, 0, 0, 0] = 255  # still writable, and the dataset keeps its own copy
    assert np.asarray(ds.load(0))[0, 0, 0] == 0
