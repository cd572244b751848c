"""Load a :class:`~zoorank.zoo.spec.ModelSpec` into a :class:`LoadedModel` (eval mode, one device).

Safety: state dicts are read with ``torch.load(weights_only=True)`` or safetensors; a pickled module
or a TorchScript file (both can run code) is loaded only when the spec says ``trust: true``, and
``trust`` is also what Hugging Face's ``trust_remote_code`` receives.

Hub downloads (timm pretrained weights and ``hf-hub:`` ids, torchvision weights, Hugging Face ids) are
real; when one fails (no network, unknown repository) the error is one :class:`InputError` line that
says the model could not be fetched and how to point at a local copy.

Models without pretrained weights (``pretrained: false``) are initialised under ``torch.manual_seed(spec.seed)``
(the global RNG state is restored afterwards), so the same spec builds the same weights in every process.
"""

from __future__ import annotations

import contextlib
import difflib
import pickle
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from zoorank.errors import InputError
from zoorank.zoo.forward import HookForward, ScriptForward, TimmForward, find_head
from zoorank.zoo.identity import file_digest, model_identity, state_dict_digest
from zoorank.zoo.preprocess import (
    Preprocess,
    hf_preprocess,
    normalize_input_size,
    standard_preprocess,
    timm_preprocess,
    torchvision_preprocess,
)
from zoorank.zoo.spec import DEFAULT_WEIGHT_TAGS, ModelSpec, is_weight_file

T = TypeVar("T")
Forward = Callable[[Any, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]

_STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net")


@dataclass
class LoadedModel:
    """A model ready for feature extraction.

    Attributes:
        spec: the spec it was loaded from.
        module: the model, in eval mode, on ``device``.
        preprocess: callable PIL image -> tensor ``[C, H, W]`` (``preprocess.config`` describes it).
        identity: stable hex hash of source, ref, arch, head size and weights (see ``zoorank.zoo.identity``).
        num_params: number of parameters (all, trainable or not).
        num_layers: number of leaf modules (modules without children) that own at least one parameter:
            a conv, linear or norm layer counts once; activations, pooling and dropout do not.
        feature_dim: ``D`` of the pooled penultimate features.
        num_classes: ``K`` of the source-head logits, ``None`` for a model without a head.
        library: what built it: ``timm``, ``torchvision``, ``hf``, ``module`` (pickled) or ``torchscript``.
        device: where ``module`` lives.
    """

    spec: ModelSpec
    module: Any
    preprocess: Preprocess
    identity: str
    num_params: int
    num_layers: int
    feature_dim: int
    num_classes: int | None
    library: str
    device: torch.device
    _forward: Forward = field(repr=False)

    @property
    def name(self) -> str:
        """The spec's name."""
        return self.spec.name

    @property
    def preprocess_config(self) -> dict[str, Any]:
        """JSON-able description of the preprocessing (input size, resize, mean, std, ...)."""
        return self.preprocess.config

    def features_and_logits(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pooled penultimate features ``[B, D]`` and source-head logits ``[B, K]`` (or ``None``) from
        ONE forward pass of a preprocessed batch ``[B, C, H, W]``; returned as float32 CPU tensors."""
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
            shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise InputError(f"model {self.name!r}: expected a batch [B, C, H, W], got {shape}")
        with torch.no_grad():
            feats, logits = self._forward(self.module, batch.to(self.device, torch.float32))
        feats = feats.float().cpu()
        if logits is None or logits.ndim != 2 or logits.shape[1] == 0:
            return feats, None
        return feats, logits.float().cpu()


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """A torch device; ``"auto"`` picks CUDA, then MPS, then the CPU."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: {exc}") from None


def load_model(spec: ModelSpec | str, device: str | torch.device = "cpu") -> LoadedModel:
    """Build or load the model a spec describes, with its preprocessing, counts and identity hash.

    ``spec`` may be a ``source:ref`` string. Every failure (unknown model name, missing file,
    untrusted pickle, hub unreachable, weights that do not fit) is an :class:`InputError` naming the model.
    """
    if isinstance(spec, str):
        spec = ModelSpec.parse(spec)
    dev = resolve_device(device)
    builder = {"timm": _load_timm, "torchvision": _load_torchvision, "hf": _load_hf, "local": _load_local}
    built = builder[spec.source](spec)
    module = built.module
    module.eval()
    digest = built.weights_digest or state_dict_digest(module.state_dict())
    module = module.to(dev)
    feats, logits = _probe(spec, module, built.forward, built.preprocess, dev)
    num_classes = int(logits.shape[1]) if logits is not None else None
    identity = model_identity(spec.source, spec.ref, built.arch, num_classes, digest)
    params = list(module.parameters())
    return LoadedModel(
        spec=spec,
        module=module,
        preprocess=built.preprocess,
        identity=identity,
        num_params=sum(p.numel() for p in params),
        num_layers=count_layers(module),
        feature_dim=int(feats.shape[1]),
        num_classes=num_classes,
        library=built.library,
        device=dev,
        _forward=built.forward,
    )


def count_layers(module: Any) -> int:
    """Leaf modules (no children) owning at least one parameter."""
    return sum(
        1 for m in module.modules()
        if not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))
    )


def _probe(spec: ModelSpec, module: Any, forward: Forward, pre: Preprocess, dev: torch.device):
    """One forward pass on a zero image: finds D and K, and fails early if the model cannot run."""
    x = torch.zeros((1, *pre.input_size), device=dev)
    try:
        with torch.no_grad():
            feats, logits = forward(module, x)
    except Exception as exc:
        raise InputError(f"model {spec.name!r} failed a test forward pass at input size "
                         f"{list(pre.input_size)}: {_first_line(exc)}") from exc
    if feats.ndim != 2:
        raise InputError(f"model {spec.name!r}: features have shape {tuple(feats.shape)}, expected [B, D]")
    if logits is not None and (logits.ndim != 2 or logits.shape[1] == 0):
        logits = None  # not a classifier output, or a head of zero classes (num_classes: 0)
    return feats, logits


# -- what every builder returns -------------------------------------------------------------------


@dataclass
class _Built:
    module: Any
    preprocess: Preprocess
    forward: Forward
    library: str
    arch: str | None = None
    weights_digest: str | None = None  # file digest when the weights came from a file


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.75)
    return f" (close: {', '.join(close)})" if close else ""


# -- hub failures ---------------------------------------------------------------------------------


def _is_fetch_error(exc: BaseException) -> bool:
    """True when an exception (or one in its chain) is a network / hub / missing-download error."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        mod = type(cur).__module__.split(".")[0]
        if isinstance(cur, OSError) or mod in ("httpx", "httpx2", "requests", "urllib3", "huggingface_hub"):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _fetch(spec: ModelSpec, hub: str, hint: str, fn: Callable[[], T]) -> T:
    """Run a call that may download; turn a download failure into one clear InputError line."""
    try:
        return fn()
    except InputError:
        raise
    except Exception as exc:
        if _is_fetch_error(exc):
            raise InputError(f"model {spec.name!r} could not be fetched from {hub} ({_first_line(exc, 160)}); "
                             f"to use a local copy, {hint}") from exc
        if "trust_remote_code" in str(exc) or "custom code" in str(exc):
            raise InputError(f"model {spec.name!r}: {spec} runs custom code from its repository; if you trust it, "
                             f"set 'trust: true' on it in the zoo file (zoorank zoo add ... --trust)") from exc
        raise InputError(f"model {spec.name!r}: could not build {spec}: {_first_line(exc)}") from exc


_WEIGHTS_HINT = "set 'weights: /path/to/file' (a state dict) or use 'local:/path/to/file' with 'arch:'"
_HF_HINT = ("download it where there is network (huggingface-cli download ID --local-dir DIR) "
            "and set the ref to that directory ('hf:/path/to/DIR')")


# -- state dicts ----------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    """``safetensors``, ``torchscript`` or ``pickle`` (a torch.save file, zip or legacy)."""
    if path.suffix.lower() == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in names):
            return "torchscript"
    return "pickle"


def _untrusted(spec: ModelSpec, path: Path, what: str) -> InputError:
    return InputError(
        f"model {spec.name!r}: {path.name} is {what}, which can run arbitrary code when loaded; "
        f"set 'trust: true' for this model only if you trust the file "
        f"(or save a state dict with torch.save(model.state_dict(), ...) and give 'arch:')"
    )


def _unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """A flat tensor state dict from a checkpoint (unwrapping ``state_dict``/``model`` keys and a
    ``module.`` DataParallel prefix), or None when the object is not one."""
    if not isinstance(obj, Mapping):
        return None
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = dict(obj)
        if all(k.startswith("module.") for k in state):
            state = {k.removeprefix("module."): v for k, v in state.items()}
        return state
    for key in _STATE_DICT_WRAPPERS:
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            found = _unwrap_state_dict(inner)
            if found is not None:
                return found
    return None


def _check_model_file(spec: ModelSpec, path: Path, what: str) -> None:
    """One clear line when ``path`` cannot be a model file: missing, a folder, or not a torch.save / TorchScript /
    safetensors file at all (a text file, say), before any parser sees it."""
    if path.is_dir():
        raise InputError(f"model {spec.name!r}: {what} {str(path)!r} is a folder, not a file; give the file in it "
                         f"(a state dict saved by torch.save or safetensors)")
    if not path.is_file():
        raise InputError(f"model {spec.name!r}: {what} {str(path)!r} does not exist (relative paths are read from "
                         f"the zoo file's folder)")
    if path.suffix.lower() == ".safetensors":
        return
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if not (magic.startswith(b"\x80") or magic == b"PK"):  # a pickle (torch.save, legacy) or a zip archive
        raise InputError(f"model {spec.name!r}: {what} {path.name} is not a model file (not written by torch.save, "
                         f"torch.jit.save or safetensors); give a state dict saved with torch.save or safetensors")


def _read_weights(spec: ModelSpec, path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely (safetensors or ``torch.load(weights_only=True)``)."""
    _check_model_file(spec, path, "weights file")
    kind = _file_kind(path)
    if kind == "torchscript":
        raise InputError(f"model {spec.name!r}: {path.name} is a TorchScript file, not a state dict; "
                         f"use 'local:{path}' with 'trust: true'")
    if kind == "safetensors":
        state = _read_safetensors(spec, path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise InputError(f"model {spec.name!r}: {path.name} is not a plain state dict (it holds pickled "
                             f"objects); for a pickled module use 'local:{path}' with 'trust: true'") from None
        except Exception as exc:
            raise InputError(f"model {spec.name!r}: cannot read weights file {path.name}: {_first_line(exc)}") from exc
        state = _unwrap_state_dict(obj)
    if not state:
        raise InputError(f"model {spec.name!r}: {path.name} holds no tensors (expected a state dict)")
    return state


def _read_safetensors(spec: ModelSpec, path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise InputError(f"model {spec.name!r}: reading {path.name} needs safetensors: "
                         f"pip install 'zoorank[hf]'") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise InputError(f"model {spec.name!r}: cannot read {path.name}: {_first_line(exc)}") from exc


def _load_state(spec: ModelSpec, module: nn.Module, state: Mapping[str, torch.Tensor], path: Path, arch: str) -> None:
    """Load a state dict strictly; a mismatch is one line saying what does not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} "
                         f"vs {tuple(own[k].shape)})")
        raise InputError(f"model {spec.name!r}: weights {path.name} do not fit architecture {arch!r}: "
                         + ", ".join(parts))
    module.load_state_dict(state, strict=True)


def _head_size_in(state: Mapping[str, torch.Tensor], head_name: str | None) -> int | None:
    weight = state.get(f"{head_name}.weight") if head_name else None
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.ndim >= 2 else None


# -- timm -----------------------------------------------------------------------------------------


def _timm_name(spec: ModelSpec, name: str) -> str:
    import timm

    if name.startswith("hf-hub:") or timm.is_model(name):
        return name
    arch = name.split(".")[0]
    raise InputError(f"model {spec.name!r}: timm has no model {name!r}"
                     f"{_suggest(arch, timm.list_models())}")


def _create_timm(spec: ModelSpec, name: str, pretrained: bool, num_classes: int | None,
                 input_size: tuple[int, int, int] | None) -> nn.Module:
    import timm

    kwargs: dict[str, Any] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if input_size is not None and input_size[0] != 3:
        kwargs["in_chans"] = input_size[0]

    def create() -> nn.Module:
        with _seeded(spec.seed):
            if input_size is not None:  # fixed-size models (ViT, Swin, ...) take the size as img_size
                try:
                    return timm.create_model(name, pretrained=pretrained, img_size=input_size[1:], **kwargs)
                except TypeError as exc:
                    if "img_size" not in str(exc):
                        raise
            return timm.create_model(name, pretrained=pretrained, **kwargs)

    return _fetch(spec, "the Hugging Face hub (timm pretrained weights)", _WEIGHTS_HINT, create)


def _timm_built(spec: ModelSpec, name: str, state: Mapping[str, torch.Tensor] | None, path: Path | None,
                pretrained: bool) -> _Built:
    input_size = normalize_input_size(spec.input_size)
    name = _timm_name(spec, name)
    num_classes = spec.num_classes
    module = _create_timm(spec, name, pretrained, num_classes, input_size)
    if state is not None and path is not None:
        if num_classes is None:
            head = module.pretrained_cfg.get("classifier") if hasattr(module, "pretrained_cfg") else None
            found = _head_size_in(state, head if isinstance(head, str) else None)
            if found is not None and found != getattr(module, "num_classes", found):
                module = _create_timm(spec, name, False, found, input_size)
        _load_state(spec, module, state, path, f"timm:{name}")
    return _Built(module, timm_preprocess(module, input_size), TimmForward(), "timm",
                  weights_digest=file_digest(path) if path is not None else None)


def _load_timm(spec: ModelSpec) -> _Built:
    name = spec.ref
    w = spec.weights
    if w is not None and is_weight_file(w):
        path = Path(w).expanduser()
        return _timm_built(spec, name, _read_weights(spec, path), path, pretrained=False)
    pretrained = spec.pretrained
    if w is not None:
        pretrained = True
        if w.lower() not in DEFAULT_WEIGHT_TAGS:  # a timm pretrained tag
            name = f"{name.split('.')[0]}.{w}"
    return _timm_built(spec, name, None, None, pretrained)


# -- torchvision ----------------------------------------------------------------------------------


def _tv_check(spec: ModelSpec, name: str) -> None:
    from torchvision import models

    available = models.list_models()
    if name not in available:
        raise InputError(f"model {spec.name!r}: torchvision has no model {name!r}{_suggest(name, available)}")


def _tv_weights(spec: ModelSpec, name: str, tag: str) -> Any:
    from torchvision import models

    enum = models.get_model_weights(name)
    key = "DEFAULT" if tag.lower() in DEFAULT_WEIGHT_TAGS else tag
    try:
        return enum[key] if key != "DEFAULT" else enum.DEFAULT
    except KeyError:
        names = ", ".join(w.name for w in enum)
        raise InputError(f"model {spec.name!r}: torchvision {name} has no weights {tag!r} (has: {names})") from None


def _tv_create(spec: ModelSpec, name: str, weights: Any, num_classes: int | None) -> nn.Module:
    from torchvision import models

    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}

    def create() -> nn.Module:
        with _seeded(spec.seed):
            return models.get_model(name, weights=weights, **kwargs)

    return _fetch(spec, "download.pytorch.org (torchvision weights)", _WEIGHTS_HINT, create)


def _tv_built(spec: ModelSpec, name: str, state: Mapping[str, torch.Tensor] | None, path: Path | None,
              weights: Any) -> _Built:
    _tv_check(spec, name)
    input_size = normalize_input_size(spec.input_size)
    module = _tv_create(spec, name, weights, spec.num_classes)
    if state is not None and path is not None:
        head = find_head(module)
        if spec.num_classes is None:
            found = _head_size_in(state, head[0] if head else None)
            if head is not None and found is not None and found != head[1].out_features:
                module = _tv_create(spec, name, None, found)
        _load_state(spec, module, state, path, f"torchvision:{name}")
    head = find_head(module)
    return _Built(module, torchvision_preprocess(weights, input_size), HookForward(head[0] if head else None),
                  "torchvision", weights_digest=file_digest(path) if path is not None else None)


def _load_torchvision(spec: ModelSpec) -> _Built:
    name, w = spec.ref, spec.weights
    _tv_check(spec, name)
    if w is not None and is_weight_file(w):
        path = Path(w).expanduser()
        return _tv_built(spec, name, _read_weights(spec, path), path, None)
    tag = w if w is not None else ("DEFAULT" if spec.pretrained else None)
    weights = _tv_weights(spec, name, tag) if tag is not None else None
    return _tv_built(spec, name, None, None, weights)


# -- Hugging Face ---------------------------------------------------------------------------------


def _load_hf(spec: ModelSpec) -> _Built:
    try:
        import transformers
    except ImportError:
        raise InputError(f"model {spec.name!r}: Hugging Face models need the 'hf' extra: "
                         f"pip install 'zoorank[hf]'") from None
    if spec.weights is not None:
        raise InputError(f"model {spec.name!r}: for hf models, point 'ref' at a hub id or a local directory "
                         f"written by save_pretrained instead of giving 'weights'")
    ref = spec.ref
    local = Path(ref).expanduser()
    if local.is_dir():
        ref = str(local)
    elif ref.startswith(("/", ".", "~")):
        raise InputError(f"model {spec.name!r}: Hugging Face model directory {ref!r} does not exist")
    hub = "the Hugging Face hub"
    config = _fetch(spec, hub, _HF_HINT,
                    lambda: transformers.AutoConfig.from_pretrained(ref, trust_remote_code=spec.trust))
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust}
    if spec.num_classes is not None:
        kwargs.update(num_labels=spec.num_classes, ignore_mismatched_sizes=True)
        config.num_labels = spec.num_classes
    auto = transformers.AutoModelForImageClassification
    if type(config) not in transformers.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING:  # no image-classification head
        auto = transformers.AutoModel
    if spec.pretrained:
        module = _fetch(spec, hub, _HF_HINT, lambda: auto.from_pretrained(ref, **kwargs))
    else:
        with _seeded(spec.seed):
            module = auto.from_config(config, trust_remote_code=spec.trust)
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(ref, trust_remote_code=spec.trust)
    except Exception:  # no preprocessor_config.json: fall back to the config's image size
        processor = None
    head = find_head(module)
    pre = hf_preprocess(processor, config, normalize_input_size(spec.input_size))
    return _Built(module, pre, HookForward(head[0] if head else None), "hf")


# -- local files ----------------------------------------------------------------------------------


def _split_arch(spec: ModelSpec, arch: str) -> tuple[str | None, str]:
    prefix, sep, rest = arch.partition(":")
    if sep and prefix in ("timm", "torchvision"):
        return prefix, rest
    if sep and prefix == "hf-hub":
        return "timm", arch
    if sep:
        raise InputError(f"model {spec.name!r}: arch {arch!r}: prefix must be 'timm:' or 'torchvision:'")
    return None, arch


def _load_local(spec: ModelSpec) -> _Built:
    path = Path(spec.ref).expanduser()
    _check_model_file(spec, path, "file")
    kind = _file_kind(path)
    if kind == "torchscript":
        if not spec.trust:
            raise _untrusted(spec, path, "a TorchScript file")
        try:
            with warnings.catch_warnings():  # torch.jit is deprecated upstream but TorchScript files still exist
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise InputError(f"model {spec.name!r}: cannot load TorchScript {path.name}: {_first_line(exc)}") from exc
        return _Built(module, _local_preprocess(spec), ScriptForward(), "torchscript", weights_digest=file_digest(path))
    if kind == "pickle":
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            if not spec.trust:
                raise _untrusted(spec, path, "a pickled object (not a plain state dict)") from None
            try:
                obj = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise InputError(f"model {spec.name!r}: cannot unpickle {path.name}: {_first_line(exc)} "
                                 "(the module's classes must be importable here)") from exc
            if not isinstance(obj, nn.Module):
                raise InputError(f"model {spec.name!r}: {path.name} holds a {type(obj).__name__}, "
                                 f"not a torch module or a state dict") from None
            head = find_head(obj)
            return _Built(obj, _local_preprocess(spec), HookForward(head[0] if head else None), "module",
                          weights_digest=file_digest(path))
        except Exception as exc:
            raise InputError(f"model {spec.name!r}: cannot read {path.name}: {_first_line(exc)}") from exc
        state = _unwrap_state_dict(obj)
        if not state:
            raise InputError(f"model {spec.name!r}: {path.name} holds no state dict of tensors")
    else:
        state = _read_safetensors(spec, path)
    if spec.arch is None:
        raise InputError(f"model {spec.name!r}: {path.name} is a state dict; say which architecture it is for "
                         f"with 'arch:' (a timm or torchvision name, e.g. 'timm:resnet18')")
    library, arch = _split_arch(spec, spec.arch)
    if library is None:
        library = _pick_library(spec, arch, state)
    if library == "timm":
        built = _timm_built(spec, arch, state, path, pretrained=False)
    else:
        built = _tv_built(spec, arch, state, path, None)
    built.arch = f"{library}:{arch}"
    return built


def _pick_library(spec: ModelSpec, arch: str, state: Mapping[str, torch.Tensor]) -> str:
    """For a bare arch name: the library that knows it; if both do, the one whose parameter names match."""
    import timm
    from torchvision import models

    in_timm, in_tv = timm.is_model(arch), arch in models.list_models()
    if in_timm and in_tv:
        with _seeded(spec.seed):
            keys = set(timm.create_model(arch, pretrained=False).state_dict())
        return "timm" if keys == set(state) else "torchvision"
    if in_timm:
        return "timm"
    if in_tv:
        return "torchvision"
    raise InputError(f"model {spec.name!r}: neither timm nor torchvision has an architecture {arch!r}"
                     f"{_suggest(arch, [*timm.list_models(), *models.list_models()])}")


def _local_preprocess(spec: ModelSpec) -> Preprocess:
    size = normalize_input_size(spec.input_size)
    return standard_preprocess(size) if size is not None else standard_preprocess()
