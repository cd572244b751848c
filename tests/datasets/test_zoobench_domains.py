"""ZooBench source domains and target tasks: registry shape, determinism, splits and probes, descriptions,
font handling, and the committed checksums (a silent change of generated data fails here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from zoorank.datasets.zoobench import checksums as ck
from zoorank.datasets.zoobench import domains as dm
from zoorank.datasets.zoobench import fonts, glyphs
from zoorank.datasets.zoobench import tasks as tk
from zoorank.datasets.zoobench.fonts import FontRef
from zoorank.errors import InputError

DEJAVU_DIR = Path(fonts.find_font(FontRef("DejaVuSans.ttf", "fonts-dejavu-core"))).parent


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _spectrum(images: np.ndarray) -> np.ndarray:
    """Phase-free features: the magnitude of the 2-D Fourier transform of the grey image."""
    grey = images.astype(np.float64).mean(axis=-1)
    return np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))).reshape(len(images), -1)


def _nearest_centroid_accuracy(data: tk.TaskData, features=_pixels) -> float:
    x = features(data.images)
    tr, te = data.train, data.test
    centroids = np.stack([x[tr][data.labels[tr] == c].mean(axis=0) for c in range(len(data.class_names))])
    d = ((x[te][:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float((d.argmin(axis=1) == data.labels[te]).mean())


# ----------------------------------------------------------------------------------------------- registry

def test_registry_meets_the_issue_requirements_with_the_fonts_installed_here():
    sources = {n: d for n, d in dm.source_domains().items() if d.available()}
    targets = tk.available_tasks()
    assert len(sources) >= 6
    assert len(targets) >= 12
    all_tasks = tk.target_tasks()
    for t in all_tasks.values():
        assert 2 <= t.n_classes <= 100, t.name
        assert 20 <= t.per_class <= 500, t.name
        assert 0 < t.test_fraction < 1
        assert t.domain is None or t.domain in dm.source_domains(), t.name
        assert (t.domain is None) == (t.distance == "far"), t.name
    kinds = {t.distance for t in all_tasks.values() if t.name in targets}
    assert kinds == {"near", "mid", "far"}
    assert sum(all_tasks[n].fewshot for n in targets) >= 3
    assert len({all_tasks[n].domain for n in targets} - {None}) >= 6  # near many different sources
    assert len({t.seed for t in all_tasks.values()}) == len(all_tasks)


def test_every_task_generates_balanced_rgb_32px_images_with_the_declared_classes():
    for name in tk.available_tasks():
        data = tk.load(name)
        t = data.task
        assert data.images.dtype == np.uint8 and data.images.shape[1:] == (32, 32, 3), name
        assert data.labels.dtype == np.int64
        assert data.class_names == list(t.classes)
        counts = np.bincount(data.labels, minlength=t.n_classes)
        assert (counts == t.per_class).all(), name
        assert not data.images.flags.writeable
        # not blank, and not one template per class (augmentation)
        assert data.images.std() > 10, name
        first = data.images[data.labels == 0]
        assert len({im.tobytes() for im in first}) == len(first), name


@pytest.mark.parametrize("name,features,chance_times", [
    ("printed_digits", _pixels, 4), ("greek_capitals", _pixels, 4), ("shape_colour", _pixels, 4),
    ("handwritten_digits", _pixels, 4), ("grating_orientation", _spectrum, 4), ("blob_scale", _spectrum, 1.5)])
def test_labels_match_the_image_content(name, features, chance_times):
    # A nearest-centroid classifier beats chance by far only if images and labels agree.
    data = tk.load(name)
    assert _nearest_centroid_accuracy(data, features) > chance_times / len(data.class_names)


def test_source_domains_generate_per_class_images_for_each_class():
    for name, d in dm.source_domains().items():
        if not d.available():
            continue
        images, labels, names = d.make(seed=3, per_class=4)
        assert images.shape == (4 * d.n_classes, 32, 32, 3) and images.dtype == np.uint8, name
        assert (np.bincount(labels, minlength=d.n_classes) == 4).all(), name
        assert names == list(d.classes) and len(set(names)) == len(names)


def test_sources_and_targets_keep_sklearn_digits_halves_apart():
    assert dm.DIGITS_SOURCE.stop <= dm.DIGITS_TARGET.start
    rng = np.random.default_rng(0)
    _, all_labels = dm.digits_data()
    pool = np.arange(dm.DIGITS_TARGET.start, dm.DIGITS_TARGET.stop)
    idx = dm.sample_per_class(pool, all_labels, 10, 30, rng)
    assert idx.min() >= dm.DIGITS_TARGET.start
    assert len(np.unique(idx)) == idx.size  # without replacement while the class is large enough


# ----------------------------------------------------------------------------------------------- determinism

def test_generation_is_deterministic_and_ignores_the_global_rng():
    t = tk.get_task("latin_accented")
    np.random.seed(1)  # noqa: NPY002
    a = t.make()
    np.random.seed(2)  # noqa: NPY002
    _ = np.random.random(100)  # noqa: NPY002
    b = t.make()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = t.make(seed=t.seed + 1)
    assert not np.array_equal(a[0], c[0])
    d1 = dm.get_domain("shapes").make(5, 3)
    d2 = dm.get_domain("shapes").make(5, 3)
    assert np.array_equal(d1[0], d2[0])


def test_two_generators_with_the_same_seed_draw_different_streams():
    a = dm.get_domain("latin").make(0, 2)[1]
    b = dm.get_domain("greek_cyrillic").make(0, 2)[1]
    assert not np.array_equal(a[: min(a.size, b.size)], b[: min(a.size, b.size)])


def test_bad_seed_or_size_is_an_input_error():
    d = dm.get_domain("textures")
    with pytest.raises(InputError, match="seed"):
        d.make(-1)
    with pytest.raises(InputError, match="per_class"):
        d.make(0, 0)
    with pytest.raises(InputError, match="unknown ZooBench task"):
        tk.get_task("nope")
    with pytest.raises(InputError, match="unknown source domain"):
        dm.get_domain("nope")


# ----------------------------------------------------------------------------------------------- split / probe

def test_fixed_stratified_split_and_probe_from_train_only():
    data = tk.load("hebrew_letters")
    n = data.images.shape[0]
    assert np.intersect1d(data.train, data.test).size == 0
    assert np.array_equal(np.union1d(data.train, data.test), np.arange(n))
    per_test = np.bincount(data.labels[data.test], minlength=len(data.class_names))
    assert (per_test == round(data.task.per_class * data.task.test_fraction)).all()
    again = tk._load.__wrapped__("hebrew_letters", data.seed)  # uncached regeneration
    assert np.array_equal(again.train, data.train) and np.array_equal(again.test, data.test)

    p = data.probe(n_max=100, seed=7)
    assert p.size == 100 and np.isin(p, data.train).all()
    assert np.bincount(data.labels[p], minlength=len(data.class_names)).min() >= 2
    assert np.array_equal(p, data.probe(n_max=100, seed=7))
    assert not np.array_equal(p, data.probe(n_max=100, seed=8))
    assert np.isin(data.probe(), data.train).all() and data.probe().size == data.train.size


def test_fewshot_tasks_have_few_training_images_per_class():
    for name in tk.available_tasks():
        t = tk.get_task(name)
        if t.fewshot:
            data = tk.load(name)
            assert np.bincount(data.labels[data.train]).max() <= 20, name


# ----------------------------------------------------------------------------------------------- descriptions

def test_descriptions_are_generated_from_the_data():
    text = tk.description("greek_capitals")
    assert "10 classes" in text and "greek capital letter gamma (Γ)" in text
    assert "500 greyscale images of 32x32 pixels, 50 per class" in text
    assert "350 train / 150 test" in text
    colour = tk.description("shape_colour")
    assert "colour images" in colour and "6 classes" in colour and "red" in colour
    few = tk.description("misc_symbols")
    assert "Few-shot: 10 training images per class" in few and "100 classes" in few


# ----------------------------------------------------------------------------------------------- fonts

def test_missing_font_names_the_debian_package():
    ref = FontRef("NoSuchFont-Regular.ttf", "fonts-nosuch")
    task = tk.TargetTask(name="ghost", what="x", classes=("a", "b"), fonts=(ref,),
                         body=dm.glyph_body("ab", (ref,)), per_class=20)
    assert not task.available() and task.packages == ["fonts-nosuch"]
    with pytest.raises(InputError, match=r"apt-get install -y fonts-nosuch"):
        task.make()
    with pytest.raises(InputError, match="fonts-nosuch"):
        task.identity()
    for t in tk.target_tasks().values():
        if not t.available():
            with pytest.raises(InputError, match="|".join(t.packages)):
                t.make()


def test_font_without_the_glyph_is_refused():
    serif = FontRef("DejaVuSerif.ttf", "fonts-dejavu-core")
    assert glyphs.covers(serif, "A") and not glyphs.covers(serif, "ب")
    with pytest.raises(InputError, match="no glyph"):
        glyphs.render(["ب"], np.zeros(3, dtype=np.int64), [serif], np.random.default_rng(0))


def test_identity_and_pixels_follow_the_font_file(tmp_path, monkeypatch):
    t = tk.get_task("printed_digits")
    base_identity, base_images = t.identity(), t.make()[0]
    # Same file name, other bytes: a different font installed under DejaVuSans-Bold.ttf's name.
    shutil.copy(DEJAVU_DIR / "DejaVuSerif-Bold.ttf", tmp_path / "DejaVuSans-Bold.ttf")
    monkeypatch.setenv("ZOORANK_FONT_DIRS", str(tmp_path))
    assert fonts.find_font(FontRef("DejaVuSans-Bold.ttf", "x")) == tmp_path / "DejaVuSans-Bold.ttf"
    assert t.identity() != base_identity
    assert not np.array_equal(t.make()[0], base_images)
    monkeypatch.delenv("ZOORANK_FONT_DIRS")
    assert t.identity() == base_identity
    assert np.array_equal(t.make()[0], base_images)


# ----------------------------------------------------------------------------------------------- checksums

def test_committed_checksums_match_the_regenerated_data():
    result = ck.verify(ck.default_path())
    assert result.passed, "\n".join(result.lines())
    recorded = ck.read(ck.default_path())
    assert set(recorded["tasks"]) == set(tk.target_tasks())
    assert set(recorded["domains"]) == set(dm.source_domains())
    assert len(result.ok) >= 18


def test_checksum_catches_a_one_pixel_change_and_a_split_change():
    data = tk.load("arrow_directions")
    base = ck.task_checksum(data)
    images = data.images.copy()
    images[0, 0, 0, 0] ^= 1
    assert ck.array_checksum("arrow_directions", images, data.labels, data.class_names, data.train,
                             data.test) != base
    train, test = data.train.copy(), data.test.copy()
    train[0], test[0] = test[0], train[0]
    assert ck.array_checksum("arrow_directions", data.images, data.labels, data.class_names, train, test) != base


def test_verify_reports_a_tampered_entry_and_unrecorded_task(tmp_path):
    doc = ck.read(ck.default_path())
    doc["tasks"]["blob_scale"]["sha256"] = "0" * 64
    del doc["tasks"]["object_counts"]
    path = tmp_path / "sums.json"
    path.write_text(json.dumps(doc))
    result = ck.verify(path, tasks=["blob_scale", "object_counts", "mirror_symmetry"], domains=[])
    assert not result.passed
    assert list(result.mismatched) == ["blob_scale"] and "changed" in result.mismatched["blob_scale"]
    assert result.unrecorded == ["object_counts"] and result.ok == ["mirror_symmetry"]
    with pytest.raises(InputError, match="not found"):
        ck.read(tmp_path / "none.json")


def test_write_keeps_entries_of_tasks_that_cannot_be_generated_here(tmp_path):
    path = tmp_path / "sums.json"
    doc = ck.read(ck.default_path())
    doc["tasks"]["kept_from_elsewhere"] = {"sha256": "f" * 64}
    path.write_text(json.dumps(doc))
    new = ck.write(path)
    assert new["tasks"]["kept_from_elsewhere"]["sha256"] == "f" * 64
    assert new["tasks"]["printed_digits"] == doc["tasks"]["printed_digits"]
