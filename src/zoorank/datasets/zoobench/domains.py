"""ZooBench source domains: the data the zoo's models are pre-trained (or fine-tuned from ImageNet) on.

Each :class:`SourceDomain` is a deterministic generator ``make(seed, per_class) -> (images, labels, class_names)``
with images uint8 ``[N, 32, 32, 3]``, labels int64 ``[N]`` (``per_class`` of each class, seeded order) and one
name per class. Only a seeded ``numpy.random.Generator`` is used (no global RNG). A domain's :meth:`identity`
hashes its name, generator version, class list, augmentation style and the SHA-256 of every font file and data
array it draws from, so a different font file or data release changes it.

Domains (see :data:`SOURCE_DOMAINS`): Latin letters, Greek + Cyrillic letters, Arabic letters, mathematical
symbols (DejaVu fonts: ``fonts-dejavu-core`` + ``fonts-dejavu-extra``), Han characters (``fonts-noto-cjk``),
Devanagari letters (``fonts-noto-core``), handwritten digits (the first half of scikit-learn's digits; the other
half is reserved for target tasks), procedural shapes, dot counts and textures.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image

from zoorank.datasets.zoobench import fonts as fontmod
from zoorank.datasets.zoobench import glyphs, procedural
from zoorank.datasets.zoobench.fonts import FontRef
from zoorank.errors import InputError

#: (images uint8 [N, 32, 32, 3], labels int64 [N], class names)
Generated = tuple[np.ndarray, np.ndarray, list[str]]
#: A generator body: (rng, per_class) -> (images, labels); class names come from the domain/task definition.
Body = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]

IMAGE_SIZE = 32

# ----------------------------------------------------------------------------------------------- fonts

_CORE, _EXTRA = "fonts-dejavu-core", "fonts-dejavu-extra"
_NOTO, _CJK = "fonts-noto-core", "fonts-noto-cjk"


def _dejavu(*names: str) -> tuple[FontRef, ...]:
    core = {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
            "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"}
    return tuple(FontRef(f"DejaVu{n}.ttf", _CORE if f"DejaVu{n}.ttf" in core else _EXTRA) for n in names)


#: Every DejaVu text face (all scripts below Latin/Greek/Cyrillic/Armenian/Georgian are covered by all of them).
DEJAVU_ALL = _dejavu(
    "Sans", "Sans-Bold", "Sans-Oblique", "Sans-BoldOblique", "Sans-ExtraLight",
    "SansCondensed", "SansCondensed-Bold", "SansCondensed-Oblique", "SansCondensed-BoldOblique",
    "SansMono", "SansMono-Bold", "SansMono-Oblique", "SansMono-BoldOblique",
    "Serif", "Serif-Bold", "Serif-Italic", "Serif-BoldItalic",
    "SerifCondensed", "SerifCondensed-Bold", "SerifCondensed-Italic", "SerifCondensed-BoldItalic",
)
#: The DejaVu Sans faces (upright and oblique, normal and condensed): symbols, Hebrew, braille, syllabics.
DEJAVU_SANS = _dejavu("Sans", "Sans-Bold", "Sans-Oblique", "Sans-BoldOblique",
                      "SansCondensed", "SansCondensed-Bold", "SansCondensed-Oblique", "SansCondensed-BoldOblique")
#: The upright DejaVu Sans faces (the only ones with Arabic, Tifinagh, N'Ko), plus Sans Mono for Arabic.
DEJAVU_SANS_UPRIGHT = _dejavu("Sans", "Sans-Bold", "SansCondensed", "SansCondensed-Bold")
DEJAVU_ARABIC = (*DEJAVU_SANS_UPRIGHT, *_dejavu("SansMono", "SansMono-Bold"))
DEJAVU_BRAILLE = (*DEJAVU_SANS, *_dejavu("Serif", "Serif-Bold", "Serif-Italic", "SerifCondensed"))
NOTO_HAN = tuple(FontRef(f, _CJK, 2) for f in ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc",
                                                "NotoSerifCJK-Regular.ttc", "NotoSerifCJK-Bold.ttc"))


def _noto(script: str) -> tuple[FontRef, ...]:
    return tuple(FontRef(f"Noto{fam}{script}-{w}.ttf", _NOTO) for fam in ("Sans", "Serif") for w in ("Regular", "Bold"))


NOTO_DEVANAGARI = _noto("Devanagari")
NOTO_BENGALI = _noto("Bengali")
NOTO_ETHIOPIC = _noto("Ethiopic")

# ----------------------------------------------------------------------------------------------- characters

LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abdefghijkmnpqrtuy"  # lower case kept only where it differs from upper
GREEK_CYRILLIC = "αβγδεζηθικλμνξπρστυφχψω" + "БГДЖЗИЙЛПУФЦЧШЩЪЫЬЭЮЯ"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
MATH = "∀∁∂∃∄∅∆∇∈∉∊∋∌∍∎∏∑−∓∕∖∗∘√∛∝∞∟∠∡∢∤∥∧∨∩∪∬∭∴∵∸∿≃≄≅≇≍"
#: 300 frequent simplified Han characters: the first 200 are the source domain, the last 100 a target task.
HAN = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小"
       "么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知"
       "民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间"
       "新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼"
       "体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或"
       "司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望型规则网络图像据观察验证快乐春夏")
DEVANAGARI = "अआइईउऊऋएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह"

#: The sklearn digits images 0..898 belong to the source domain, 899..1796 to target tasks (disjoint writers'
#: samples as far as the file's order allows).
DIGITS_SOURCE = slice(0, 899)
DIGITS_TARGET = slice(899, 1797)


def _check_distinct(**named: str) -> None:
    for what, chars in named.items():
        if len(set(chars)) != len(chars):
            raise AssertionError(f"{what}: repeated characters")


_check_distinct(LATIN=LATIN, GREEK_CYRILLIC=GREEK_CYRILLIC, ARABIC=ARABIC, MATH=MATH, HAN=HAN, DEVANAGARI=DEVANAGARI)
if len(HAN) != 300:
    raise AssertionError("HAN must hold 300 characters")


def char_name(ch: str) -> str:
    """A readable class name for a character: its Unicode name in lower case and the character itself."""
    try:
        return f"{unicodedata.name(ch).lower()} ({ch})"
    except ValueError:
        return f"u+{ord(ch):04x} ({ch})"


# ----------------------------------------------------------------------------------------------- the base

@dataclass(frozen=True)
class Recipe:
    """Shared by source domains and target tasks: a name, a text saying what the images are, the class names, the
    fonts it renders with and the generator body. ``identity_parts`` are extra strings hashed into the identity;
    bump ``version`` when a generator is changed on purpose (and re-record the checksums)."""

    name: str
    what: str
    classes: tuple[str, ...]
    fonts: tuple[FontRef, ...]
    body: Body = field(repr=False, compare=False)
    identity_parts: tuple[str, ...] = ()
    version: int = 1

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def packages(self) -> list[str]:
        """Debian packages that ship the fonts this generator needs."""
        return sorted({f.package for f in self.fonts})

    def missing_fonts(self) -> list[FontRef]:
        return fontmod.missing(self.fonts)

    def available(self) -> bool:
        """Whether every font it needs is installed."""
        return not self.missing_fonts()

    def require(self) -> None:
        """InputError naming the Debian packages to install when a font is missing."""
        fontmod.require(self.fonts, f"{type(self).__name__.lower()} {self.name!r}")

    def identity(self) -> str:
        """SHA-256 over the name, version, classes, extra parts and the SHA-256 of each font file."""
        self.require()
        h = hashlib.sha256()
        parts = [type(self).__name__, self.name, str(self.version), *self.classes, *self.identity_parts]
        parts += [f"{f.label}:{fontmod.font_sha256(f)}" for f in self.fonts]
        for p in parts:
            b = p.encode()
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()

    def _generate(self, seed: int, per_class: int) -> Generated:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"{self.name}: seed must be a non-negative integer, got {seed!r}")
        if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
            raise InputError(f"{self.name}: per_class must be a positive integer, got {per_class!r}")
        self.require()
        rng = np.random.default_rng([int(seed), _name_key(self.name)])
        images, labels = self.body(rng, int(per_class))
        _check_output(self.name, images, labels, self.n_classes)
        return images, labels, list(self.classes)


def _name_key(name: str) -> int:
    """A stable 63-bit integer from the name (mixed into every generator's seed, so two domains with the same
    seed draw independent streams)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


def _check_output(name: str, images: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise AssertionError(f"{name}: generator returned {images.dtype} {images.shape}")
    if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
        raise AssertionError(f"{name}: labels {labels.dtype} {labels.shape}")
    if np.bincount(labels, minlength=n_classes).min() == 0 or labels.max() >= n_classes:
        raise AssertionError(f"{name}: labels do not cover exactly {n_classes} classes")


@dataclass(frozen=True)
class SourceDomain(Recipe):
    """A pre-training domain. ``per_class`` is the default number of images per class."""

    per_class: int = 200

    def make(self, seed: int = 0, per_class: int | None = None) -> Generated:
        """``per_class`` images of each class (default :attr:`per_class`), deterministic in ``seed``."""
        return self._generate(seed, self.per_class if per_class is None else per_class)


# ----------------------------------------------------------------------------------------------- bodies

def glyph_body(chars: Sequence[str], fonts: Sequence[FontRef], style: glyphs.Style = glyphs.DEFAULT_STYLE,
               fit: glyphs.Fit = "bbox", what: str = "glyphs") -> Body:
    """White glyphs on black, grey RGB, ``per_class`` of each character."""
    def body(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = glyphs.balanced_labels(len(chars), per_class, rng)
        masks = glyphs.render(chars, labels, fonts, rng, style, fit, what)
        return procedural.grey_rgb(masks), labels
    return body


@cache
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits as uint8 [N, 8, 8] (0..255) and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    images.flags.writeable = False
    labels = d.target.astype(np.int64)
    labels.flags.writeable = False
    return images, labels


def digits_sha256() -> str:
    images, labels = digits_data()
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


DIGIT_STYLE = glyphs.Style(rotation=12.0, scale=(0.8, 1.0), shift=0.06, strokes=(0,), extent=0.8)


def place_digits(indices: np.ndarray, rng: np.random.Generator, style: glyphs.Style = DIGIT_STYLE) -> np.ndarray:
    """Grey masks [N, 32, 32] of the given sklearn digits, each placed with random scale/rotation/shift."""
    images, _ = digits_data()
    masters = [Image.fromarray(images[int(i)]) for i in indices]
    return glyphs.place_masters(masters, np.arange(len(indices)), rng, style)


def sample_per_class(pool: np.ndarray, labels: np.ndarray, n_classes: int, per_class: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``per_class`` members of each class from ``pool`` (without replacement while the class has enough,
    then with replacement), class by class, in a seeded random order overall."""
    chosen = []
    for c in range(n_classes):
        members = pool[labels[pool] == c]
        if members.size == 0:
            raise InputError(f"class {c} has no member in the pool")
        chosen.append(rng.choice(members, per_class, replace=per_class > members.size))
    out = np.concatenate(chosen)
    return out[rng.permutation(out.size)]


def _digits_source(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    _, all_labels = digits_data()
    pool = np.arange(DIGITS_SOURCE.start, DIGITS_SOURCE.stop)
    idx = sample_per_class(pool, all_labels, 10, per_class, rng)
    return procedural.grey_rgb(place_digits(idx, rng)), all_labels[idx].copy()


def _shapes_source(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    names = list(procedural.SHAPES)
    labels = glyphs.balanced_labels(len(names), per_class, rng)
    masks = procedural.draw_shapes([names[i] for i in labels], rng)
    level = rng.uniform(0.55, 1.0, (labels.size, 1, 1, 1))
    bg = rng.uniform(0.0, 0.25, (labels.size, 1, 1, 1))
    return procedural.composite(masks, level, bg), labels


DOT_COUNTS = tuple(range(1, 10))


def _counts_source(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    labels = glyphs.balanced_labels(len(DOT_COUNTS), per_class, rng)
    masks = procedural.draw_counts([DOT_COUNTS[i] for i in labels], rng, kinds=("circle",), radius=(3.0, 6.5))
    return procedural.grey_rgb(masks), labels


def _textures_source(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    names = list(procedural.TEXTURES)
    labels = glyphs.balanced_labels(len(names), per_class, rng)
    return procedural.grey_rgb(procedural.draw_textures([names[i] for i in labels], rng)), labels


# ----------------------------------------------------------------------------------------------- registry

def _glyph_domain(name: str, what: str, chars: str, fonts: tuple[FontRef, ...], per_class: int = 200,
                  style: glyphs.Style = glyphs.DEFAULT_STYLE) -> SourceDomain:
    return SourceDomain(name=name, what=what, classes=tuple(char_name(c) for c in chars), fonts=fonts,
                        body=glyph_body(chars, fonts, style, "bbox", name), identity_parts=(repr(style),),
                        per_class=per_class)


def _build_sources() -> dict[str, SourceDomain]:
    items = [
        _glyph_domain("latin", "printed Latin letters (upper case, and the lower-case letters whose shape differs "
                      "from the capital) in 21 DejaVu typefaces", LATIN, DEJAVU_ALL),
        _glyph_domain("greek_cyrillic", "printed Greek lower-case and Cyrillic capital letters (Cyrillic letters "
                      "shaped like Latin ones left out) in 21 DejaVu typefaces", GREEK_CYRILLIC, DEJAVU_ALL),
        _glyph_domain("arabic", "printed Arabic letters in their isolated forms in 6 DejaVu Sans typefaces",
                      ARABIC, DEJAVU_ARABIC),
        _glyph_domain("math_symbols", "printed mathematical operators and relation symbols in 8 DejaVu Sans "
                      "typefaces", MATH, DEJAVU_SANS),
        _glyph_domain("han", "printed frequent simplified Chinese (Han) characters in 4 Noto CJK typefaces",
                      HAN[:200], NOTO_HAN, per_class=50),
        _glyph_domain("devanagari", "printed Devanagari vowels and consonants in 4 Noto typefaces",
                      DEVANAGARI, NOTO_DEVANAGARI),
        SourceDomain(name="handwritten_digits", what="handwritten digits (scikit-learn's 8x8 digits, first half, "
                     "upscaled) with random rotation, scale and shift", classes=tuple(str(d) for d in range(10)),
                     fonts=(), body=_digits_source, identity_parts=(f"digits:{digits_sha256()}", repr(DIGIT_STYLE),
                                                                    str(DIGITS_SOURCE)), per_class=500),
        SourceDomain(name="shapes", what="one grey geometric shape (filled or outlined) per image, random size, "
                     "rotation and position", classes=tuple(s.replace("_", " ") for s in procedural.SHAPES),
                     fonts=(), body=_shapes_source, per_class=400),
        SourceDomain(name="dot_counts", what="1 to 9 white discs scattered without overlap; the class is the "
                     "number of discs", classes=tuple(f"{k} dot{'s' if k > 1 else ''}" for k in DOT_COUNTS),
                     fonts=(), body=_counts_source, per_class=500),
        SourceDomain(name="textures", what="grey procedural textures (gratings, checkerboards, dots, rings, spokes, "
                     "noise, ...) with random frequency, phase, contrast and brightness",
                     classes=tuple(procedural.TEXTURES), fonts=(), body=_textures_source, per_class=500),
    ]
    return {d.name: d for d in items}


@cache
def source_domains() -> dict[str, SourceDomain]:
    """Every source domain by name (including those whose fonts are not installed: see ``available()``)."""
    return _build_sources()


def get_domain(name: str) -> SourceDomain:
    domains = source_domains()
    if name not in domains:
        raise InputError(f"unknown source domain {name!r}; known: {', '.join(domains)}")
    return domains[name]
