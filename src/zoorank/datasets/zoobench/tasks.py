"""ZooBench target tasks: the new datasets the zoo is ranked for, with fixed splits and text descriptions.

Each :class:`TargetTask` generates ``per_class`` images of each class (train + test) deterministically from its own
``seed`` (:meth:`TargetTask.make`); :func:`load` adds the fixed train/test split (:func:`zoorank.data.split`,
stratified, seeded by ``split_seed``, ``test_fraction`` of each class in test) and caches the read-only result.
The probe set the metrics see is drawn from the train part only (:meth:`TaskData.probe`). ``domain`` names the
source domain the task is nearest to (None when it is far from all of them; for the source-match baseline) and
``distance`` says how near (``near``: same kind of data as a source domain; ``mid``: same family, e.g. another
script; ``far``: unlike every source domain). :func:`description` writes the short text MetaRank reads from the
generated data (what the images are, how many classes with examples, sizes, colour, split).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np

from zoorank.data import ImageDataset, from_arrays
from zoorank.data import probe as draw_probe
from zoorank.data import split as split_dataset
from zoorank.datasets.zoobench import domains as dm
from zoorank.datasets.zoobench import glyphs, procedural
from zoorank.datasets.zoobench.fonts import FontRef
from zoorank.errors import InputError

Distance = Literal["near", "mid", "far"]


@dataclass(frozen=True)
class TargetTask(dm.Recipe):
    """A target task: ``per_class`` images per class in all, ``test_fraction`` of them in test."""

    per_class: int = 50
    test_fraction: float = 0.3
    domain: str | None = None
    distance: Distance = "mid"
    fewshot: bool = False
    seed: int = 0
    split_seed: int = 0

    def make(self, seed: int | None = None) -> dm.Generated:
        """The task's images, labels and class names, from its own ``seed`` unless another is given."""
        return self._generate(self.seed if seed is None else seed, self.per_class)


@dataclass(frozen=True)
class TaskData:
    """A generated task with its fixed split (``train`` / ``test``: sorted indices into ``images``)."""

    task: TargetTask
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    train: np.ndarray
    test: np.ndarray
    seed: int
    _dataset: list[ImageDataset] = field(default_factory=list, repr=False, compare=False)

    def dataset(self) -> ImageDataset:
        """The whole task as a :class:`zoorank.data.ImageDataset` (cached)."""
        if not self._dataset:
            self._dataset.append(from_arrays(self.images, self.labels, class_names=self.class_names,
                                             name=f"zoobench:{self.task.name}"))
        return self._dataset[0]

    def probe(self, n_max: int | None = None, *, per_class_max: int | None = None, seed: int = 0) -> np.ndarray:
        """Indices (into ``images``) of a stratified probe drawn from the train split only
        (:func:`zoorank.data.probe` on the train subset)."""
        train_ds = self.dataset().subset(self.train, name=f"zoobench:{self.task.name}[train]")
        p = draw_probe(train_ds, n_max, per_class_max=per_class_max, seed=seed)
        return self.train[p.indices]


# ----------------------------------------------------------------------------------------------- bodies

def _glyph_task(name: str, what: str, chars: str | Sequence[str], fonts: tuple[FontRef, ...], *,
                style: glyphs.Style = glyphs.DEFAULT_STYLE, fit: glyphs.Fit = "bbox", **kw: object) -> TargetTask:
    return TargetTask(name=name, what=what, classes=tuple(dm.char_name(c) for c in chars), fonts=fonts,
                      body=dm.glyph_body(list(chars), fonts, style, fit, name),
                      identity_parts=(repr(style), fit), **kw)  # type: ignore[arg-type]


#: Arrow glyphs by direction (a class is a direction; the glyph variant is drawn per image).
ARROWS: dict[str, str] = {
    "left": "←⇐↞⇠⇦⇚",
    "up": "↑⇑↟⇡⇧",
    "right": "→⇒↠⇢⇨⇛",
    "down": "↓⇓↡⇣⇩",
    "up-left": "↖⇖",
    "up-right": "↗⇗",
    "down-right": "↘⇘",
    "down-left": "↙⇙",
}
ARROW_STYLE = glyphs.Style(rotation=8.0)


def _arrows_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    variants = [c for group in ARROWS.values() for c in group]
    group_of = np.repeat(np.arange(len(ARROWS)), [len(g) for g in ARROWS.values()])
    labels = glyphs.balanced_labels(len(ARROWS), per_class, rng)
    starts = np.concatenate([[0], np.cumsum([len(g) for g in ARROWS.values()])[:-1]])
    sizes = np.array([len(g) for g in ARROWS.values()])
    variant = starts[labels] + rng.integers(0, sizes[labels])
    assert (group_of[variant] == labels).all()
    masks = glyphs.render(variants, variant, dm.DEJAVU_SANS, rng, ARROW_STYLE, "bbox", "arrow_directions")
    return procedural.grey_rgb(masks), labels


TEXTURED_LETTERS = "ABDEGHKMRW"


def _textured_letters_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(len(TEXTURED_LETTERS), per_class, rng)
    masks = glyphs.render(TEXTURED_LETTERS, labels, dm.DEJAVU_ALL, rng, what="letters_on_texture")
    bg = procedural.texture_backgrounds(labels.size, rng)
    fg = procedural.random_colours(labels.size, rng, 0.6, 1.0)
    return procedural.composite(masks, fg, bg), labels


def _digits_target(rng: np.random.Generator, per_class: int, parity: bool) -> tuple[np.ndarray, np.ndarray]:
    _, all_labels = dm.digits_data()
    pool = np.arange(dm.DIGITS_TARGET.start, dm.DIGITS_TARGET.stop)
    classes = all_labels % 2 if parity else all_labels
    idx = dm.sample_per_class(pool, classes, 2 if parity else 10, per_class, rng)
    return procedural.grey_rgb(dm.place_digits(idx, rng)), classes[idx].astype(np.int64)


OUTLINE_SHAPES = ("triangle", "square", "pentagon", "hexagon", "circle", "star", "plus", "arrow")


def _outlines_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(len(OUTLINE_SHAPES), per_class, rng)
    masks = procedural.draw_shapes([OUTLINE_SHAPES[i] for i in labels], rng, outline_prob=1.0,
                                   outline_width=(2, 4), size=(0.5, 0.9))
    fg, bg = procedural.contrasting_pairs(labels.size, rng)
    return procedural.composite(masks, fg, bg), labels


def _colour_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    names = list(procedural.COLOURS)
    labels = glyphs.balanced_labels(len(names), per_class, rng)
    shapes = list(procedural.SHAPES)
    kinds = [shapes[int(k)] for k in rng.integers(0, len(shapes), labels.size)]
    masks = procedural.draw_shapes(kinds, rng, outline_prob=0.2, size=(0.35, 0.8))
    base = np.array([procedural.COLOURS[names[i]] for i in labels])
    fg = np.clip(base * rng.uniform(0.7, 1.0, (labels.size, 1)) + rng.normal(0, 0.04, base.shape), 0, 1)
    bg = np.repeat(rng.uniform(0.15, 0.6, (labels.size, 1)), 3, axis=1)
    return procedural.composite(masks, fg[:, None, None, :], bg[:, None, None, :]), labels


OBJECT_COUNTS = tuple(range(1, 7))


def _object_counts_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(len(OBJECT_COUNTS), per_class, rng)
    masks = procedural.draw_counts([OBJECT_COUNTS[i] for i in labels], rng, kinds=("square", "triangle", "star"),
                                   radius=(4.0, 8.0))
    fg, bg = procedural.contrasting_pairs(labels.size, rng)
    return procedural.composite(masks, fg, bg), labels


ORIENTATIONS = tuple(22.5 * k for k in range(8))


def _grating_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(len(ORIENTATIONS), per_class, rng)
    angles = np.asarray(ORIENTATIONS)[labels] + rng.uniform(-5.0, 5.0, labels.size)
    masks = procedural.draw_gratings(angles, rng)
    c1 = procedural.random_colours(labels.size, rng)
    c2 = procedural.random_colours(labels.size, rng)
    return procedural.composite(masks, c1, c2), labels


def _blob_scale_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(2, per_class, rng)
    scales = np.where(labels == 0, rng.uniform(0.022, 0.034, labels.size), rng.uniform(0.034, 0.05, labels.size))
    fields = procedural.draw_blob_fields(scales, rng).astype(np.float64)
    noise = rng.standard_normal(fields.shape) * rng.uniform(0.0, 40.0, (labels.size, 1, 1))
    masks = np.clip(np.rint(fields + noise), 0, 255).astype(np.uint8)
    return procedural.grey_rgb(masks), labels


def _symmetry_body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(2, per_class, rng)
    fields = procedural.draw_blob_fields(rng.uniform(0.03, 0.06, labels.size), rng).astype(np.float64)
    mirrored = np.concatenate([fields[:, :, :16], fields[:, :, :16][:, :, ::-1]], axis=2)
    sym = labels == 1
    fields[sym] = mirrored[sym]
    masks = np.where(fields > rng.uniform(100, 160, (labels.size, 1, 1)), 255, 0).astype(np.uint8)
    fg, bg = procedural.contrasting_pairs(labels.size, rng)
    return procedural.composite(masks, fg, bg), labels


# ----------------------------------------------------------------------------------------------- registry

ARMENIAN = "".join(chr(c) for c in range(0x531, 0x557))
GEORGIAN = "".join(chr(c) for c in range(0x10D0, 0x10F1))
HEBREW = "".join(c for c in map(chr, range(0x5D0, 0x5EB)) if "FINAL" not in unicodedata.name(c))
CANADIAN = "ᐁᐃᐅᐊᐯᐱᐳᐸᑌᑎᑐᑕᑫᑭᑯᑲᒉᒋᒍᒐᒣᒥᒧᒪᓀᓂᓄᓇᓓᓕᓗᓚᓭᓯᓱᓴᔦᔨᔪᔭ"
BRAILLE = "".join(chr(c) for c in range(0x2801, 0x2840))
MISC_SYMBOLS = ("☀☁☂☃☄★☇☈☉☊☋☌☍☎☏☐☓☔☕☖☗☘☚☛☜☟☠☡☢☣☤☥☦☧☩☪☫☬☭☮☯☰☸☹☻☽☿♀♁♂♃♄♅♆♇♈♉♊♋♌♍♎♏♐♑♒♓♔♕♖♗♘♙♚♛♜♞♟"
                "♠♡♤♥♨♩♪♫♬♭♮♰♲♳♻♽♾♿⚀⚅⚉⚋")
BENGALI = "অআইঈউঊঋএঐওঔকখগঘঙচছজঝঞটঠডঢণতথদধনপফবভমযরলশষসহ"
ETHIOPIC = "".join(chr(c) for c in (0x1200, 0x1208, 0x1210, 0x1218, 0x1220, 0x1228, 0x1230, 0x1238, 0x1240, 0x1260,
                                    0x1270, 0x1278, 0x1280, 0x1290, 0x1298, 0x12A0, 0x12A8, 0x12B8, 0x12C8, 0x12D0,
                                    0x12D8, 0x12E0, 0x12E8, 0x12F0, 0x1300, 0x1308, 0x1320, 0x1328, 0x1330, 0x1338,
                                    0x1340, 0x1348, 0x1350))
BRAILLE_STYLE = glyphs.Style(rotation=5.0, scale=(0.9, 1.05), shift=0.05, strokes=(0, 1), extent=1.0)
SMALL_ROTATION = glyphs.Style(rotation=6.0)


def _recipe(name: str, what: str, classes: Sequence[str], body: dm.Body, **kw: object) -> TargetTask:
    return TargetTask(name=name, what=what, classes=tuple(classes), fonts=kw.pop("fonts", ()),  # type: ignore[arg-type]
                      body=body, **kw)  # type: ignore[arg-type]


def _build_tasks() -> dict[str, TargetTask]:
    digits_id = (f"digits:{dm.digits_sha256()}", repr(dm.DIGIT_STYLE), str(dm.DIGITS_TARGET))
    items = [
        _glyph_task("printed_digits", "printed digits 0-9 in 21 DejaVu typefaces", "0123456789", dm.DEJAVU_ALL,
                    per_class=60, domain="latin", distance="near", seed=101),
        _glyph_task("latin_accented", "printed accented Latin capital letters (the accent is what tells many "
                    "classes apart) in 21 DejaVu typefaces", "ÀÁÂÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÖÙÚÛÜÝ", dm.DEJAVU_ALL,
                    per_class=40, domain="latin", distance="near", seed=102),
        _glyph_task("greek_capitals", "printed Greek capital letters not shaped like Latin ones in 21 DejaVu "
                    "typefaces", "ΓΔΘΛΞΠΣΦΨΩ", dm.DEJAVU_ALL, per_class=50, domain="greek_cyrillic",
                    distance="near", seed=103),
        _glyph_task("armenian_capitals", "printed Armenian capital letters in 21 DejaVu typefaces", ARMENIAN,
                    dm.DEJAVU_ALL, per_class=30, domain="latin", distance="mid", seed=104),
        _glyph_task("georgian_letters", "printed Georgian (Mkhedruli) letters in 21 DejaVu typefaces, few-shot",
                    GEORGIAN, dm.DEJAVU_ALL, per_class=20, test_fraction=0.5, fewshot=True, domain="latin",
                    distance="mid", seed=105),
        _glyph_task("hebrew_letters", "printed Hebrew letters (final forms left out) in 8 DejaVu Sans typefaces",
                    HEBREW, dm.DEJAVU_SANS, per_class=30, domain="arabic", distance="mid", seed=106),
        _glyph_task("canadian_syllabics", "printed Canadian Aboriginal syllabics, where the same shape rotated "
                    "or mirrored is another syllable, in 8 DejaVu Sans typefaces", CANADIAN, dm.DEJAVU_SANS,
                    style=SMALL_ROTATION, per_class=30, domain=None, distance="far", seed=107),
        _glyph_task("braille_cells", "printed six-dot braille cells (the class is which dots are raised; the "
                    "position inside the cell matters), few-shot", BRAILLE, dm.DEJAVU_BRAILLE, style=BRAILLE_STYLE,
                    fit="em", per_class=20, test_fraction=0.5, fewshot=True, domain="dot_counts", distance="mid",
                    seed=108),
        _glyph_task("misc_symbols", "printed pictographic symbols (weather, chess, zodiac, cards, music, dice, "
                    "...) in 8 DejaVu Sans typefaces, few-shot", MISC_SYMBOLS, dm.DEJAVU_SANS, per_class=20,
                    test_fraction=0.5, fewshot=True, domain="math_symbols", distance="mid", seed=109),
        _recipe("arrow_directions", "printed arrow glyphs of several styles in 8 DejaVu Sans typefaces; the class "
                "is the direction the arrow points to", list(ARROWS), _arrows_body, fonts=dm.DEJAVU_SANS,
                identity_parts=(repr(ARROW_STYLE), repr(ARROWS)), per_class=50, domain="math_symbols",
                distance="mid", seed=110),
        _recipe("letters_on_texture", "printed Latin capital letters in a light random colour over dark coloured "
                "procedural textures, 21 DejaVu typefaces", [dm.char_name(c) for c in TEXTURED_LETTERS],
                _textured_letters_body, fonts=dm.DEJAVU_ALL, per_class=40, domain="latin", distance="near",
                seed=111),
        _recipe("handwritten_digits", "handwritten digits (scikit-learn's 8x8 digits, second half, upscaled) with "
                "random rotation, scale and shift", [str(d) for d in range(10)],
                lambda rng, k: _digits_target(rng, k, parity=False), identity_parts=digits_id, per_class=80,
                domain="handwritten_digits", distance="near", seed=112),
        _recipe("handwritten_parity", "handwritten digits (scikit-learn's 8x8 digits, second half, upscaled); the "
                "class is whether the digit is even or odd", ["even", "odd"],
                lambda rng, k: _digits_target(rng, k, parity=True), identity_parts=digits_id, per_class=400,
                domain="handwritten_digits", distance="near", seed=113),
        _recipe("shape_outlines", "thin outlines of geometric shapes in a random colour on a contrasting "
                "background, few-shot", list(OUTLINE_SHAPES), _outlines_body, per_class=20, test_fraction=0.5,
                fewshot=True, domain="shapes", distance="near", seed=114),
        _recipe("shape_colour", "one random geometric shape on a grey background; the class is the shape's colour",
                list(procedural.COLOURS), _colour_body, per_class=80, domain=None, distance="far", seed=115),
        _recipe("object_counts", "1 to 6 small squares, triangles and stars in a random colour on a contrasting "
                "background; the class is the number of objects",
                [f"{k} object{'s' if k > 1 else ''}" for k in OBJECT_COUNTS], _object_counts_body, per_class=80,
                domain="dot_counts", distance="near", seed=116),
        _recipe("grating_orientation", "two-colour sinusoidal gratings of random frequency and phase; the class is "
                "the orientation in steps of 22.5 degrees (+-5 degrees jitter)",
                [f"{a:g} degrees" for a in ORIENTATIONS], _grating_body, per_class=60, domain="textures",
                distance="near", seed=117),
        _recipe("blob_scale", "grey smooth random-noise fields with some white noise; the class is whether the "
                "blobs are fine or coarse", ["fine blobs", "coarse blobs"], _blob_scale_body, per_class=250,
                domain="textures", distance="near", seed=118),
        _recipe("mirror_symmetry", "random two-colour blob patterns; the class is whether the pattern is "
                "left-right mirror-symmetric", ["asymmetric", "symmetric"], _symmetry_body, per_class=200,
                domain=None, distance="far", seed=119),
        _glyph_task("han_characters", "printed frequent simplified Chinese (Han) characters not in the han source "
                    "domain, in 4 Noto CJK typefaces, few-shot", dm.HAN[200:], dm.NOTO_HAN, per_class=20,
                    test_fraction=0.5, fewshot=True, domain="han", distance="near", seed=120),
        _glyph_task("bengali_letters", "printed Bengali vowels and consonants in 4 Noto typefaces", BENGALI,
                    dm.NOTO_BENGALI, per_class=30, domain="devanagari", distance="near", seed=121),
        _glyph_task("ethiopic_syllables", "printed Ethiopic (Ge'ez) syllables, first order, in 4 Noto typefaces",
                    ETHIOPIC, dm.NOTO_ETHIOPIC, per_class=30, domain=None, distance="far", seed=122),
    ]
    out = {t.name: t for t in items}
    for t in items:
        if len(set(t.classes)) != len(t.classes):
            raise AssertionError(f"task {t.name}: repeated class names")
        if t.domain is not None and t.domain not in dm.source_domains():
            raise AssertionError(f"task {t.name}: unknown domain {t.domain}")
    return out


@cache
def target_tasks() -> dict[str, TargetTask]:
    """Every target task by name (including those whose fonts are not installed: see ``available()``)."""
    return _build_tasks()


def get_task(name: str) -> TargetTask:
    tasks = target_tasks()
    if name not in tasks:
        raise InputError(f"unknown ZooBench task {name!r}; known: {', '.join(tasks)}")
    return tasks[name]


def available_tasks() -> list[str]:
    """Names of the tasks whose fonts are installed here."""
    return [n for n, t in target_tasks().items() if t.available()]


@cache
def _load(name: str, seed: int) -> TaskData:
    task = get_task(name)
    images, labels, class_names = task.make(seed)
    for a in (images, labels):
        a.flags.writeable = False
    ds = from_arrays(images, labels, class_names=class_names, name=f"zoobench:{name}")
    train_ds, test_ds = split_dataset(ds, task.test_fraction, seed=task.split_seed)
    train, test = np.sort(train_ds.parent_indices), np.sort(test_ds.parent_indices)  # type: ignore[arg-type]
    for a in (train, test):
        a.flags.writeable = False
    return TaskData(task, images, labels, class_names, train, test, seed, [ds])


def load(task: str | TargetTask, seed: int | None = None) -> TaskData:
    """The task's data and fixed split (cached per process; arrays are read-only)."""
    t = get_task(task if isinstance(task, str) else task.name)
    return _load(t.name, t.seed if seed is None else int(seed))


def _examples(names: Sequence[str], k: int = 3) -> list[str]:
    pick = np.unique(np.linspace(0, len(names) - 1, num=min(k, len(names))).round().astype(int))
    return [names[i] for i in pick]


def description(task: str | TargetTask | TaskData) -> str:
    """A short text description from the generated data: what the images are, classes (count and examples),
    image size and colour, images per class, the split."""
    data = task if isinstance(task, TaskData) else load(task)
    t = data.task
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    per = f"{counts[0]}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    train_counts = np.bincount(data.labels[data.train], minlength=len(data.class_names))
    grey = bool((data.images[..., 0] == data.images[..., 1]).all() and (data.images[..., 1] == data.images[..., 2])
                .all())
    h, w = data.images.shape[1:3]
    shot = (f" Few-shot: {train_counts.min()}-{train_counts.max()} training images per class."
            if t.fewshot and train_counts.min() != train_counts.max()
            else f" Few-shot: {train_counts.min()} training images per class." if t.fewshot else "")
    return (f"{t.what[0].upper()}{t.what[1:]}. {len(data.class_names)} classes, e.g. "
            f"{', '.join(_examples(data.class_names))}. {data.images.shape[0]} {'greyscale' if grey else 'colour'} "
            f"images of {w}x{h} pixels, {per} per class; fixed split {data.train.size} train / {data.test.size} "
            f"test.{shot}")
