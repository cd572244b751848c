"""MetaRank's descriptions: dataset cards and metric cards (MetaRank, arXiv 2511.21007, section 3).

MetaRank ranks transferability metrics for a dataset from *text*: a short structured description of the dataset
(a **dataset card**) and one of every metric (a **metric card**), both embedded by a sentence encoder.

- :class:`DatasetCard` — what the images show, domain, class count and example class names, image count and
  size, colour, balance, notes. :meth:`DatasetCard.to_text` renders the text that is embedded (one line a field,
  always in the same order, so that cards written by users and cards generated from metadata look alike).
  Build one by hand, from an opened :class:`zoorank.data.ImageDataset` (:func:`card_from_dataset`: class names,
  counts, image sizes, colour and balance are read from the data), from plain metadata
  (:func:`card_from_metadata`), from a benchmark task's meta-data (:func:`card_from_task_info`), or load the
  packaged cards of published datasets (:func:`load_dataset_cards`, ``data/dataset_cards/*.yaml``).
- :class:`MetricCard` — what a metric measures, its mechanism and assumptions, what it needs (features, labels,
  source-head probabilities, general features) and where it is known to fail. The cards of every metric of
  :mod:`zoorank.metrics` live in ``data/metric_cards.yaml`` (:func:`load_metric_cards`) and are reviewed like
  code; the ``needs`` of a card must agree with the metric registry.
- :func:`meta_features` — conventional meta-features (log class count, log image count, log images per class,
  log image side, greyscale, few-shot, imbalance) parsed from a card's text: the ablation of MetaRank that
  replaces text embeddings by hand-made features.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import yaml

from zoorank.errors import InputError

__all__ = [
    "META_FEATURES",
    "DatasetCard",
    "MetricCard",
    "balance_text",
    "card_from_dataset",
    "card_from_metadata",
    "card_from_task_info",
    "dataset_card_aliases",
    "load_dataset_cards",
    "load_metric_cards",
    "meta_features",
    "metric_texts",
]

NEEDS_VOCABULARY = ("features", "labels", "source_probs", "general_features")
_NEEDS_WORDS = {
    "features": "penultimate features of the model",
    "labels": "target labels",
    "source_probs": "source-head logits (softmax probabilities of the model's own classifier)",
    "general_features": "the model's features on a general data set",
}

# ------------------------------------------------------------------------------------------------ dataset cards


@dataclass
class DatasetCard:
    """A short structured description of a dataset (module doc). Every field is optional but ``name``."""

    name: str
    what: str = ""
    domain: str = ""
    n_classes: int | None = None
    class_examples: list[str] = field(default_factory=list)
    n_images: int | None = None
    image_size: str = ""
    colour: str = ""
    balance: str = ""
    notes: str = ""
    aliases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("dataset card: name must be a non-empty string")
        for key in ("n_classes", "n_images"):
            v = getattr(self, key)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                    raise InputError(f"dataset card {self.name!r}: {key} must be a positive integer, got {v!r}")
                setattr(self, key, int(v))
        self.class_examples = [str(c) for c in self.class_examples]
        self.aliases = [str(a) for a in self.aliases]

    def to_text(self) -> str:
        """The text MetaRank embeds: one ``Field: value`` line per known field, in a fixed order."""
        lines = [f"Dataset: {self.name}."]
        if self.what:
            lines.append(f"Images: {self.what.strip()}")
        if self.domain:
            lines.append(f"Domain: {self.domain.strip()}.")
        if self.n_classes is not None:
            ex = f", e.g. {', '.join(self.class_examples[:5])}" if self.class_examples else ""
            lines.append(f"Classes: {self.n_classes} classes{ex}.")
        size = []
        if self.n_images is not None:
            size.append(f"{self.n_images} images")
        if self.image_size:
            size.append(f"of {self.image_size.strip()}")
        if self.colour:
            size.append(f"({self.colour.strip()})")
        if size:
            lines.append("Size: " + " ".join(size) + ".")
        if self.balance:
            lines.append(f"Balance: {self.balance.strip()}.")
        if self.notes:
            lines.append(f"Notes: {self.notes.strip()}")
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "dataset card") -> DatasetCard:
        if not isinstance(d, Mapping):
            raise InputError(f"{where}: expected a mapping of fields")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "name" not in d:
            raise InputError(f"{where}: missing the name field")
        kw = {k: v for k, v in d.items() if v is not None}
        for key in ("what", "domain", "image_size", "colour", "balance", "notes"):
            if key in kw:
                kw[key] = str(kw[key]).strip()
        for key in ("class_examples", "aliases"):
            if key in kw and not isinstance(kw[key], list):
                raise InputError(f"{where}: {key} must be a list")
        return cls(**kw)


def balance_text(counts: Sequence[int] | np.ndarray) -> str:
    """Describe class balance from per-class image counts: ``balanced, 60 per class`` or
    ``imbalanced, 5 to 300 images per class (ratio 60)`` (max/min ratio above 1.5 counts as imbalanced)."""
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 1 or c.size == 0 or (c < 0).any():
        raise InputError("balance: counts must be a non-empty 1-D array of non-negative integers")
    lo, hi = int(c.min()), int(c.max())
    if lo == hi:
        return f"balanced, {lo} per class"
    ratio = hi / max(lo, 1)
    if ratio <= 1.5:
        return f"roughly balanced, {lo} to {hi} per class"
    return f"imbalanced, {lo} to {hi} images per class (ratio {ratio:.0f})"


def _size_text(sizes: Sequence[tuple[int, int]]) -> str:
    if not sizes:
        return ""
    ws = np.array([s[0] for s in sizes])
    hs = np.array([s[1] for s in sizes])
    if (ws == ws[0]).all() and (hs == hs[0]).all():
        return f"{int(ws[0])}x{int(hs[0])} pixels"
    return f"about {int(np.median(ws))}x{int(np.median(hs))} pixels (from {int(ws.min())}x{int(hs.min())} to " \
           f"{int(ws.max())}x{int(hs.max())})"


def card_from_metadata(name: str, *, labels: Sequence[int] | np.ndarray | None = None,
                       class_names: Sequence[str] | None = None, n_images: int | None = None,
                       image_sizes: Sequence[tuple[int, int]] | None = None, greyscale: bool | None = None,
                       what: str = "", domain: str = "", notes: str = "", n_examples: int = 4,
                       seed: int = 0) -> DatasetCard:
    """A dataset card generated from metadata: class count and example class names (``n_examples`` drawn with
    ``seed`` from ``class_names``), image count (``n_images`` or the number of labels), image size (from
    ``image_sizes`` (width, height) pairs), colour, and balance (from the labels' per-class counts)."""
    n_classes = None
    counts = None
    if labels is not None:
        y = np.asarray(labels)
        if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise InputError(f"dataset card {name!r}: labels must be a non-empty 1-D array of integers >= 0")
        n_classes = int(y.max()) + 1 if class_names is None else len(class_names)
        if class_names is not None and int(y.max()) >= len(class_names):
            raise InputError(f"dataset card {name!r}: label {int(y.max())} but only {len(class_names)} class names")
        counts = np.bincount(y, minlength=n_classes)
        if n_images is None:
            n_images = int(y.size)
    elif class_names is not None:
        n_classes = len(class_names)
    examples: list[str] = []
    if class_names:
        rng = np.random.default_rng(seed)
        pick = sorted(rng.choice(len(class_names), size=min(n_examples, len(class_names)), replace=False))
        examples = [str(class_names[i]) for i in pick]
    colour = "" if greyscale is None else ("greyscale" if greyscale else "colour")
    return DatasetCard(name=name, what=what, domain=domain, n_classes=n_classes, class_examples=examples,
                       n_images=n_images, image_size=_size_text(list(image_sizes or [])), colour=colour,
                       balance="" if counts is None else balance_text(counts), notes=notes)


def card_from_dataset(dataset: Any, *, what: str = "", domain: str = "", notes: str = "", sample: int = 64,
                      seed: int = 0) -> DatasetCard:
    """A dataset card from an opened :class:`zoorank.data.ImageDataset` (or anything
    :func:`zoorank.data.open_dataset` accepts): class names and balance from the labels, image sizes from the
    headers of up to ``sample`` images, greyscale when every sampled image has equal R, G and B channels.
    ``what`` is the user's description of what the images show (a generated card has none otherwise)."""
    from zoorank.data import open_dataset

    ds = open_dataset(dataset)
    n = len(ds)
    if n == 0:
        raise InputError(f"dataset {ds.name!r} has no images")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    sizes = []
    grey = True
    seen = 0
    for i, image in ds.iter_images(idx):
        sizes.append(tuple(image.size))
        if grey:
            a = np.asarray(image.convert("RGB"), dtype=np.int16)
            grey = bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
        seen += 1
        del i
    return card_from_metadata(ds.name, labels=ds.labels, class_names=ds.class_names, n_images=n,
                              image_sizes=sizes, greyscale=grey if seen else None, what=what, domain=domain,
                              notes=notes, seed=seed)


_EG = re.compile(r"\be\.g\.\s*(.+?)(?:\.\s|\.$)", re.S)


def _first_sentence(text: str) -> str:
    m = re.search(r"^(.+?\.)(?:\s|$)", text.strip(), re.S)
    return (m.group(1) if m else text).strip()


def card_from_task_info(info: Any, *, n_images: int | None = None, n_classes: int | None = None,
                        per_class: int | None = None, subset_of: str | None = None, fewshot: int | None = None,
                        keep_examples: bool = True) -> DatasetCard:
    """A dataset card from a benchmark task's :class:`~zoorank.evaluation.TaskInfo` (its description, class
    count and ``extra`` columns such as ``n_train``), optionally describing a *sub-task* of it: ``n_classes``
    classes (a class subset when ``subset_of`` names the parent), ``n_images`` probe images, ``per_class`` images
    per class, ``fewshot`` (k images per class). The description's first sentence says what the images show; the
    image size and colour are parsed from it."""
    desc = (getattr(info, "description", "") or "").strip()
    extra = dict(getattr(info, "extra", {}) or {})
    name = str(getattr(info, "task", "") or "task")
    c = n_classes if n_classes is not None else getattr(info, "n_classes", None)
    if n_images is None:
        for key in ("n_train", "n_samples", "n_images"):
            if extra.get(key):
                try:
                    n_images = int(float(extra[key]))
                except ValueError:
                    raise InputError(f"task {name!r}: {key} {extra[key]!r} is not a number") from None
                break
    parsed = meta_features(desc, as_dict=True) if desc else {}
    size = ""
    m = _SIZE.search(desc)
    if m:
        size = f"{m.group(1)}x{m.group(2)} pixels"
    colour = "greyscale" if parsed.get("greyscale") else ("colour" if re.search(r"\bcolou?r\b", desc, re.I) else "")
    examples: list[str] = []
    if keep_examples and subset_of is None:
        eg = _EG.search(desc)
        if eg:
            examples = [e.strip() for e in eg.group(1).split(",") if e.strip()][:5]
    if per_class is None and n_images is not None and c:
        per_class = n_images // c if n_images % c == 0 else None
    balance = f"balanced, {per_class} per class" if per_class else ""
    notes = []
    if subset_of is not None:
        notes.append(f"A subset of the classes of {subset_of}.")
    few = fewshot if fewshot is not None else (int(extra["fewshot_k"]) if extra.get("fewshot_k") else None)
    if few is None and str(extra.get("fewshot", "")).strip() in ("1", "true", "True", "yes"):
        mm = re.search(r"Few-shot:\s*(\d+)", desc)
        few = int(mm.group(1)) if mm else None
        if few is None:
            notes.append("Few-shot.")
    if few is not None:
        notes.append(f"Few-shot: {few} images per class.")
    return DatasetCard(name=name, what=_first_sentence(desc) if desc else "", n_classes=c, class_examples=examples,
                       n_images=n_images, image_size=size, colour=colour, balance=balance, notes=" ".join(notes))


def _package_data() -> Any:
    return resources.files("zoorank.methods.metarank") / "data"


def load_dataset_cards() -> dict[str, DatasetCard]:
    """The packaged dataset cards (``data/dataset_cards/*.yaml``) by canonical name."""
    out: dict[str, DatasetCard] = {}
    folder = _package_data() / "dataset_cards"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        try:
            d = yaml.safe_load(entry.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"dataset card {entry.name}: not valid YAML ({exc})") from None
        card = DatasetCard.from_dict(d, where=f"dataset card {entry.name}")
        if card.name in out:
            raise InputError(f"dataset card {entry.name}: name {card.name!r} used twice")
        out[card.name] = card
    return out


def dataset_card_aliases(cards: Mapping[str, DatasetCard] | None = None) -> dict[str, str]:
    """Map every name and alias (lower-cased) of the packaged dataset cards to the canonical card name."""
    cards = load_dataset_cards() if cards is None else cards
    out: dict[str, str] = {}
    for name, card in cards.items():
        for a in [name, *card.aliases]:
            key = a.lower()
            if key in out and out[key] != name:
                raise InputError(f"dataset cards: alias {a!r} names both {out[key]!r} and {name!r}")
            out[key] = name
    return out


# ------------------------------------------------------------------------------------------------- metric cards


@dataclass(frozen=True)
class MetricCard:
    """A metric's description (module doc)."""

    name: str
    measures: str
    mechanism: str
    assumptions: str
    needs: tuple[str, ...]
    fails: str
    paper: str = ""

    def to_text(self) -> str:
        """The text MetaRank embeds."""
        needs = "; ".join(_NEEDS_WORDS[n] for n in self.needs)
        return "\n".join([
            f"Metric: {self.name}.",
            f"Measures: {self.measures}",
            f"Mechanism: {self.mechanism}",
            f"Assumptions: {self.assumptions}",
            f"Needs: {needs}.",
            f"Known to fail: {self.fails}",
        ])


def load_metric_cards(path: Any = None) -> dict[str, MetricCard]:
    """Metric cards by metric name, from the packaged ``data/metric_cards.yaml`` (or ``path``). Each card must
    have every field, and ``needs`` from {features, labels, source_probs, general_features}."""
    if path is None:
        return dict(_packaged_metric_cards())
    return _read_metric_cards(path)


@functools.lru_cache(maxsize=1)
def _packaged_metric_cards() -> dict[str, MetricCard]:
    return _read_metric_cards(_package_data() / "metric_cards.yaml")


def _read_metric_cards(source: Any) -> dict[str, MetricCard]:
    try:
        text = source.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"metric cards: cannot read {source} ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"metric cards: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise InputError("metric cards: expected a mapping of metric name -> card")
    required = ("measures", "mechanism", "assumptions", "needs", "fails")
    out: dict[str, MetricCard] = {}
    for name, d in raw.items():
        if not isinstance(d, dict):
            raise InputError(f"metric card {name!r}: expected a mapping of fields")
        missing = [k for k in required if not d.get(k)]
        if missing:
            raise InputError(f"metric card {name!r}: missing field(s) {', '.join(missing)}")
        needs = d["needs"]
        if not isinstance(needs, list) or any(n not in NEEDS_VOCABULARY for n in needs):
            raise InputError(f"metric card {name!r}: needs must be a list from {', '.join(NEEDS_VOCABULARY)}")
        out[str(name)] = MetricCard(str(name), str(d["measures"]).strip(), str(d["mechanism"]).strip(),
                                    str(d["assumptions"]).strip(), tuple(needs), str(d["fails"]).strip(),
                                    str(d.get("paper", "")).strip())
    return out


def metric_texts(metrics: Iterable[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The text of each metric: ``extra[name]`` when given, else its packaged card; InputError for a metric that
    has neither (pass its description in ``extra``)."""
    cards = load_metric_cards()
    extra = dict(extra or {})
    out = {}
    for m in metrics:
        if m in extra:
            out[m] = str(extra[m])
        elif m in cards:
            out[m] = cards[m].to_text()
        else:
            raise InputError(f"no metric card for {m!r}: known cards are {', '.join(sorted(cards))}; give its "
                             "description as metric_texts={name: text}")
    return out


# -------------------------------------------------------------------------------------------------- meta features

#: Names of the conventional meta-features of :func:`meta_features` (the text-free ablation).
META_FEATURES = ("log_classes", "log_images", "log_per_class", "log_side", "greyscale", "fewshot", "imbalance")

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)"
_CLASSES = re.compile(_NUM + r"\s+(?:[\w-]+\s+){0,2}(?:classes|categories)\b", re.I)
_IMAGES = re.compile(_NUM + r"\s+(?:[\w-]+\s+){0,2}images\b", re.I)
_PER_CLASS = re.compile(_NUM + r"\s+(?:\w+\s+){0,3}per class\b", re.I)
_SIZE = re.compile(r"(\d+)\s*[x×]\s*(\d+)\s*(?:pixels|px)\b", re.I)
_IMB = re.compile(r"\bimbalanced\b|\blong[- ]tailed\b", re.I)
_RATIO = re.compile(r"ratio\s+(\d+(?:\.\d+)?)", re.I)


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def meta_features(text: str, *, as_dict: bool = False) -> np.ndarray | dict[str, float]:
    """Conventional meta-features parsed from a dataset card or free description (:data:`META_FEATURES`):
    log10 class count, log10 image count, log10 images per class, log2 image side, greyscale (0/1), few-shot
    (0/1), imbalance (log10 of the stated max/min ratio, 0.5 when only "imbalanced" is said). A value the text
    does not state is NaN (impute it before use)."""
    if not isinstance(text, str):
        raise InputError("meta_features: text must be a string")
    nan = float("nan")
    m = _CLASSES.search(text)
    classes = _int(m.group(1)) if m else nan
    m = _IMAGES.search(text)
    images = _int(m.group(1)) if m else nan
    m = _PER_CLASS.search(text)
    if m:
        per_class = float(_int(m.group(1)))
    elif math.isfinite(classes) and math.isfinite(images) and classes > 0:
        per_class = images / classes
    else:
        per_class = nan
    m = _SIZE.search(text)
    side = math.sqrt(int(m.group(1)) * int(m.group(2))) if m else nan
    grey = 1.0 if re.search(r"\bgr[ae]yscale\b", text, re.I) else 0.0
    few = 1.0 if re.search(r"\bfew[- ]shot\b", text, re.I) else 0.0
    imb = 0.0
    if _IMB.search(text):
        r = _RATIO.search(text)
        imb = math.log10(max(float(r.group(1)), 1.0)) if r else 0.5

    def lg(x: float, base: float = 10.0) -> float:
        return math.log(x, base) if x == x and x > 0 else nan

    values = {"log_classes": lg(classes), "log_images": lg(images), "log_per_class": lg(per_class),
              "log_side": lg(side, 2.0), "greyscale": grey, "fewshot": few, "imbalance": imb}
    if as_dict:
        return values
    return np.array([values[k] for k in META_FEATURES], dtype=np.float64)
