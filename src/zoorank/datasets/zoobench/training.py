"""ZooBench training: source pre-training, the fine-tuning ground truth, the linear probe, fp16 weights.

Everything takes numpy arrays: ``images`` uint8 ``[N, H, W, 3]`` (or ``[N, H, W]`` grey) and integer
``labels`` 0..C-1, and runs on the CPU.

**Input normalisation.** ``x = (image / 255 - mean) / std`` per channel with the ImageNet mean
``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)`` (what the ImageNet MobileNetV2 was trained with;
used for every model so that all see the same inputs), bilinearly resized to the architecture's input size
when that differs from the images' size (not for the 32 px zoo). Grey images are repeated to 3 channels.

**Augmentation** (training only, seeded): a random translation of up to 2 pixels in each direction
(pad 2 px by edge replication, take a random crop of the original size). No flips: mirrored glyphs and
digits are other classes.

**Optimisation.** AdamW; weight decay only on weights with 2+ dimensions (not biases, norm parameters or
ViT tokens); the learning rate rises linearly over the first 5% of steps, then follows a cosine to 0;
batch size 64 by default, the last smaller batch kept; cross-entropy loss.

**Determinism and resuming.** The model's initialisation and any dropout use the global torch RNG,
seeded by ``seed`` inside a ``torch.random.fork_rng`` block (the caller's RNG is untouched); epoch ``e``
shuffles and augments with a ``torch.Generator`` seeded from ``(seed, e)``. With a ``checkpoint`` path,
the model, the optimizer, the finished epoch count and the global RNG state are written atomically
(temporary file + ``os.replace``) after every epoch; a call with the same arguments continues after the
last finished epoch and ends with weights bit-identical to an uninterrupted run (same machine, same
number of threads). A checkpoint whose run signature (architecture, data digest, recipe, seed) differs
is refused with an :class:`~zoorank.errors.InputError`.

**Fine-tuning ground truth** (:func:`finetune`, the protocol of LogME and the transferability papers,
scaled down): the whole network is trained with a new randomly initialised linear head (the same head
initialisation for every LR) on the target's train split less a validation part, once per learning rate of
a small grid; the LR with the best validation accuracy is chosen (ties: the earlier in the grid) and the
test accuracy *of that run* is the ground truth.

**Linear probe** (:func:`linear_probe`): features standardised with the train statistics; multinomial
logistic regression (L-BFGS, at most 300 iterations, tolerance 1e-3) with ``C`` chosen from a fixed grid on a
stratified validation part of the train split, refitted on the whole train split; test accuracy.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoorank.datasets.zoobench.zoo_design import ArchSpec
from zoorank.errors import InputError
from zoorank.methods._torch import torch_threads

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
AUG_SHIFT = 2
WARMUP_FRACTION = 0.05
DEFAULT_LR_GRID = (3e-4, 1e-3, 3e-3)
DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0)

#: ``progress(info)`` receives a dict: ``phase`` ("pretrain" or "finetune"), ``epoch`` (1-based), ``epochs``,
#: ``loss`` (mean training loss of the epoch), ``train_acc``, ``seconds`` (of the epoch) and, when fine-tuning, ``lr``.
Progress = Callable[[dict[str, Any]], None]
Split = tuple[np.ndarray, np.ndarray]


# -- inputs ---------------------------------------------------------------------------------------


def check_arrays(images: Any, labels: Any, *, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Validate ``images`` (uint8 ``[N, H, W, 3]`` or ``[N, H, W]``) and ``labels`` (ints ``[N]``, >= 0)."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8:
        raise InputError(f"{what}: images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    if images.ndim != 4 or images.shape[3] != 3:
        raise InputError(f"{what}: images must have shape [N, H, W, 3] or [N, H, W], got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise InputError(f"{what}: labels must have shape [{len(images)}], got {labels.shape}")
    if len(images) == 0:
        raise InputError(f"{what}: no images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{what}: labels must be integers, got {labels.dtype}")
    if labels.min() < 0:
        raise InputError(f"{what}: labels must be >= 0, got {int(labels.min())}")
    return images, labels.astype(np.int64)


def to_tensor(images: np.ndarray, input_size: int | None = None) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> normalised float32 ``[N, 3, S, S]`` (see the module doc)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    if input_size is not None and tuple(x.shape[2:]) != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    return x.contiguous()


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = AUG_SHIFT) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels per axis (edge-replicated padding), one per image."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * shift)
    cropped = torch.gather(padded, 2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, x.shape[1], h, w)
    return torch.gather(cropped, 3, cols)


def validation_split(labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices into (train, val): per class ``round(fraction * n)`` to val (at least
    one when the class has 2+ samples, none when it has 1); seeded, sorted indices."""
    labels = np.asarray(labels)
    if not 0 < fraction < 1:
        raise InputError(f"validation_split: fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = min(max(1, round(fraction * len(idx))), len(idx) - 1)
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


# -- models ---------------------------------------------------------------------------------------


def _construct(arch: ArchSpec, num_classes: int) -> nn.Module:
    """The bare architecture with a ``num_classes`` head, initialised from the global RNG."""
    if arch.library == "torchvision":
        import torchvision

        return getattr(torchvision.models, arch.ref)(num_classes=num_classes, **arch.options)
    if arch.library == "timm":
        import timm

        return timm.create_model(arch.ref, pretrained=False, num_classes=num_classes, **arch.options)
    module_name, _, cls_name = arch.ref.rpartition(".")
    cls = getattr(importlib.import_module(f"timm.models.{module_name}"), cls_name)
    return cls(num_classes=num_classes, **arch.options)


def build_model(arch: ArchSpec, num_classes: int, *, seed: int = 0) -> nn.Module:
    """Build ``arch`` with a ``num_classes`` head; randomly initialised from ``seed`` (caller's RNG untouched).

    For ``init="imagenet"`` (MobileNetV2) the offline ImageNet weights are loaded and, unless
    ``num_classes == 1000``, the classifier is replaced by a new seeded ``Linear(1280, num_classes)``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InputError(f"arch {arch.name!r}: num_classes must be a positive integer, got {num_classes!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch.init == "imagenet":
            from zoorank.zoo import offline_mobilenet_v2_path

            model = _construct(arch, 1000)
            state = torch.load(offline_mobilenet_v2_path(), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            if num_classes != 1000:
                replace_head(model, num_classes)
        else:
            model = _construct(arch, num_classes)
    return model


def _classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The name and module of the final linear layer."""
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
    else:  # torchvision MobileNetV2: classifier = Sequential(Dropout, Linear)
        head = model.classifier[-1]
    for name, module in model.named_modules():
        if module is head:
            return name, head
    raise InputError(f"{type(model).__name__}: cannot find the classifier layer")


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Replace the classifier by a new ``Linear`` with ``num_classes`` outputs (uses the global RNG)."""
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
    else:
        old = model.classifier[-1]
        model.classifier[-1] = nn.Linear(old.in_features, num_classes)


def _skeleton(arch: ArchSpec, num_classes: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _construct(arch, num_classes)


_CLASSIFIER_NAMES: dict[str, str] = {}


def _classifier_name(arch: ArchSpec) -> str:
    """The name of ``arch``'s final linear layer, read off a skeleton once per architecture configuration and
    process (building the skeleton costs as much as building the model)."""
    key = repr(sorted(arch_key(arch).items()))
    if key not in _CLASSIFIER_NAMES:
        _CLASSIFIER_NAMES[key] = _classifier(_skeleton(arch, 2))[0]
    return _CLASSIFIER_NAMES[key]


def head_size_of(arch: ArchSpec, state: Mapping[str, torch.Tensor]) -> int:
    """The number of classes of the head stored in a state dict of ``arch``."""
    name = _classifier_name(arch)
    key = f"{name}.weight"
    if key not in state:
        raise InputError(f"arch {arch.name!r}: the state dict has no classifier weight {key!r}")
    return int(state[key].shape[0])


def load_state(arch: ArchSpec, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """``arch`` with its head sized as in ``state`` and ``state`` loaded strictly (as float32)."""
    model = _skeleton(arch, head_size_of(arch, state))
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise InputError(f"arch {arch.name!r}: weights do not fit: {str(exc).splitlines()[0]}") from None
    return model


def arch_key(arch: ArchSpec) -> dict[str, Any]:
    """What identifies an architecture in checkpoint signatures (not its measured cost)."""
    return {"name": arch.name, "library": arch.library, "ref": arch.ref, "kwargs": repr(arch.kwargs),
            "init": arch.init, "input_size": arch.input_size}


def count_params(model: nn.Module) -> int:
    """All parameters (trainable or not), buffers excluded."""
    return sum(p.numel() for p in model.parameters())


def features_and_logits(model: nn.Module, images: np.ndarray, *, input_size: int | None = None,
                        batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Pooled penultimate features ``[N, D]`` and head logits ``[N, K]`` (float32) in eval mode, with the
    module doc's normalisation (the inputs the models were trained on)."""
    images, _ = check_arrays(images, np.zeros(len(images), dtype=np.int64), what="features")
    _, head = _classifier(model)
    model.eval()
    feats: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                captured.clear()
                out = model(to_tensor(images[i: i + batch_size], input_size))
                feats.append(captured[-1].flatten(1))
                logits.append(out)
    finally:
        hook.remove()
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i: i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, input_size: int | None = None) -> float:
    """Top-1 accuracy in eval mode."""
    images, labels = check_arrays(images, labels, what="accuracy")
    pred = _predict(model, to_tensor(images, input_size))
    return float((pred.numpy() == labels).mean())


# -- the training loop ----------------------------------------------------------------------------


def _epoch_seed(seed: int, epoch: int) -> int:
    digest = hashlib.sha256(f"zoobench-epoch:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _data_digest(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, total: int, base_lr: float) -> float:
    """Linear warm-up over the first 5% of ``total`` steps (at least one), then cosine decay to 0."""
    warm = max(1, round(WARMUP_FRACTION * total))
    if step < warm:
        return float(base_lr * (step + 1) / warm)
    progress = (step - warm) / max(1, total - warm)
    return float(0.5 * base_lr * (1.0 + np.cos(np.pi * progress)))


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)





def _check_recipe(epochs: int, lr: float, batch_size: int, weight_decay: float) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(lr, int | float) and np.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number, got {lr!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise InputError(f"weight_decay must be >= 0, got {weight_decay!r}")


def train_model(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, epochs: int, lr: float,
                batch_size: int, weight_decay: float, seed: int, input_size: int | None = None,
                checkpoint: str | Path | None = None, signature: Mapping[str, Any] | None = None,
                progress: Progress | None = None, phase: str = "train") -> nn.Module:
    """Train ``model`` in place with the module doc's recipe; resumable through ``checkpoint``.

    Must be called inside a block that seeded the global torch RNG (as :func:`pretrain` and
    :func:`finetune` do); ``signature`` identifies the run so a foreign checkpoint is refused.
    """
    _check_recipe(epochs, lr, batch_size, weight_decay)
    x = to_tensor(images, input_size)
    y = torch.from_numpy(labels)
    n = len(y)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr)
    sig = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay, "seed": seed,
           "data": _data_digest(images, labels), **(signature or {})}
    sig = json.loads(json.dumps(sig, default=str))
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        try:
            saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"checkpoint {str(ckpt)!r} cannot be read ({type(exc).__name__}); delete it") from exc
        if saved.get("signature") != sig:
            raise InputError(f"checkpoint {str(ckpt)!r} belongs to another run (architecture, data, recipe or "
                             f"seed differ); delete it or use another path")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        start = int(saved["epoch"])
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        order = torch.randperm(n, generator=gen)
        model.train()
        loss_sum, correct = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * batch_size: (b + 1) * batch_size]
            step_lr = lr_at(epoch * steps_per_epoch + b, total, lr)
            for group in opt.param_groups:
                group["lr"] = step_lr
            xb = augment(x[idx], gen)
            out = model(xb)
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out.detach().argmax(1) == y[idx]).sum())
        if not np.isfinite(loss_sum):
            raise InputError(f"{phase}: the loss diverged (non-finite) in epoch {epoch + 1}; lower the lr ({lr})")
        if ckpt is not None:
            _atomic_save({"signature": sig, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "rng": torch.get_rng_state(), "epoch": epoch + 1}, ckpt)
        if progress is not None:
            progress({"phase": phase, "epoch": epoch + 1, "epochs": epochs, "loss": loss_sum / n,
                      "train_acc": correct / n, "seconds": time.perf_counter() - t0})
    model.eval()
    return model


# -- pre-training ---------------------------------------------------------------------------------


def pretrain(arch: ArchSpec, images: np.ndarray, labels: np.ndarray, *, epochs: int, lr: float,
             batch_size: int = 64, weight_decay: float = 0.05, seed: int = 0,
             checkpoint: str | Path | None = None, progress: Progress | None = None,
             num_threads: int | None = None) -> dict[str, torch.Tensor]:
    """Train ``arch`` on a source domain; returns the float32 state dict (with the source head).

    Scratch architectures start from a random initialisation seeded by ``seed``; ``init="imagenet"``
    (MobileNetV2) starts from the offline ImageNet weights with a new head. Labels must be 0..C-1 with
    every class present. Resumable with ``checkpoint`` (module doc).
    """
    images, labels = check_arrays(images, labels, what=f"pretrain {arch.name}")
    num_classes = int(labels.max()) + 1
    if len(np.unique(labels)) != num_classes or num_classes < 2:
        raise InputError(f"pretrain {arch.name}: labels must cover 0..C-1 with C >= 2 (got {num_classes} "
                         f"values, {len(np.unique(labels))} present)")
    with torch_threads(num_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, num_classes, seed=seed)
        train_model(model, images, labels, epochs=epochs, lr=lr, batch_size=batch_size,
                    weight_decay=weight_decay, seed=seed, input_size=arch.input_size, checkpoint=checkpoint,
                    signature={"phase": "pretrain", "arch": arch_key(arch)}, progress=progress, phase="pretrain")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- fine-tuning ground truth ---------------------------------------------------------------------


def _as_split(split: Any, what: str) -> Split:
    if not isinstance(split, tuple | list) or len(split) != 2:
        raise InputError(f"finetune: {what} must be a pair (images, labels)")
    return check_arrays(split[0], split[1], what=f"finetune {what}")


def finetune(arch: ArchSpec, state: Mapping[str, torch.Tensor], train: Split, val: Split, test: Split, *,
             lr_grid: Sequence[float] = DEFAULT_LR_GRID, epochs: int = 6, batch_size: int = 64,
             weight_decay: float = 1e-4, seed: int = 0, checkpoint_dir: str | Path | None = None,
             progress: Progress | None = None, num_threads: int | None = None) -> dict[str, Any]:
    """Fine-tune the whole model with a new head once per LR; pick the LR on ``val``; report its test accuracy.

    ``train``, ``val`` and ``test`` are ``(images, labels)`` pairs with labels in 0..C-1 (C from all three).
    Returns ``{"finetune_acc", "best_lr", "val_acc_per_lr", "test_acc_per_lr"}`` (dicts keyed by LR).
    With ``checkpoint_dir``, each LR's run is resumable and a finished LR is not redone.
    """
    tr, va, te = _as_split(train, "train"), _as_split(val, "val"), _as_split(test, "test")
    grid = [float(v) for v in lr_grid]
    if not grid or len(set(grid)) != len(grid):
        raise InputError(f"finetune: lr_grid must be non-empty and without repeats, got {list(lr_grid)}")
    num_classes = int(max(tr[1].max(), va[1].max(), te[1].max())) + 1
    if len(np.unique(tr[1])) < 2:
        raise InputError("finetune: the train split needs at least 2 classes")
    cdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    val_acc: dict[float, float] = {}
    test_acc: dict[float, float] = {}
    with torch_threads(num_threads):
        for i, lr in enumerate(grid):
            done = cdir / f"lr{i}-{lr:g}.json" if cdir is not None else None
            if done is not None and done.exists():
                rec = json.loads(done.read_text())
                val_acc[lr], test_acc[lr] = float(rec["val_acc"]), float(rec["test_acc"])
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = load_state(arch, state)
                replace_head(model, num_classes)

                def report(info: dict[str, Any], lr: float = lr) -> None:
                    if progress is not None:
                        progress({**info, "lr": lr})

                train_model(model, tr[0], tr[1], epochs=epochs, lr=lr, batch_size=batch_size,
                            weight_decay=weight_decay, seed=seed, input_size=arch.input_size,
                            checkpoint=cdir / f"lr{i}-{lr:g}.pt" if cdir is not None else None,
                            signature={"phase": "finetune", "arch": arch_key(arch), "init": _state_digest(state)},
                            progress=report, phase="finetune")
            val_acc[lr] = accuracy(model, *va, input_size=arch.input_size)
            test_acc[lr] = accuracy(model, *te, input_size=arch.input_size)
            if done is not None:
                done.write_text(json.dumps({"lr": lr, "val_acc": val_acc[lr], "test_acc": test_acc[lr]}))
                (cdir / f"lr{i}-{lr:g}.pt").unlink(missing_ok=True)
    best = max(grid, key=lambda v: (val_acc[v], -grid.index(v)))
    return {"finetune_acc": test_acc[best], "best_lr": best, "val_acc_per_lr": val_acc, "test_acc_per_lr": test_acc}


def _state_digest(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# -- linear probe ---------------------------------------------------------------------------------


def linear_probe(features_train: np.ndarray, y_train: np.ndarray, features_test: np.ndarray, y_test: np.ndarray,
                 *, c_grid: Sequence[float] = DEFAULT_C_GRID, val_fraction: float = 0.2, seed: int = 0,
                 max_iter: int = 300, tol: float = 1e-3) -> float:
    """Test accuracy of a multinomial logistic regression on frozen features (protocol in the module doc).

    ``C`` is chosen from ``c_grid`` on a stratified ``val_fraction`` of the train split (ties: the smaller
    ``C``); without any validation sample (every class seen once) the middle of the grid is used.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    xtr = np.asarray(features_train, dtype=np.float64)
    xte = np.asarray(features_test, dtype=np.float64)
    ytr, yte = np.asarray(y_train), np.asarray(y_test)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise InputError(f"linear_probe: features must be [N, D] with the same D, got {xtr.shape} and {xte.shape}")
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise InputError("linear_probe: labels and features differ in length")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise InputError("linear_probe: features contain NaN or inf")
    if len(np.unique(ytr)) < 2:
        raise InputError("linear_probe: the train split needs at least 2 classes")
    grid = sorted(float(c) for c in c_grid)
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-12] = 1.0
    xtr, xte = (xtr - mean) / std, (xte - mean) / std

    def fit(x: np.ndarray, y: np.ndarray, c: float) -> Any:
        clf = LogisticRegression(C=c, max_iter=max_iter, tol=tol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(x, y)

    fit_idx, val_idx = validation_split(ytr, val_fraction, seed)
    if len(val_idx) == 0 or len(np.unique(ytr[fit_idx])) < 2:
        best = grid[len(grid) // 2]
    else:
        scores = [float((fit(xtr[fit_idx], ytr[fit_idx], c).predict(xtr[val_idx]) == ytr[val_idx]).mean())
                  for c in grid]
        best = grid[int(np.argmax(scores))]
    return float((fit(xtr, ytr, best).predict(xte) == yte).mean())


# -- fp16 weights ---------------------------------------------------------------------------------


def round_fp16(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors rounded to float16 (other tensors, e.g. BatchNorm counters, unchanged)."""
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if v.is_floating_point():
            h = v.to(torch.float16)
            if not torch.isfinite(h).all() and torch.isfinite(v).all():
                raise InputError(f"save_fp16: tensor {k!r} overflows float16 (max |x| = {float(v.abs().max()):.3g})")
            v = h
        out[k] = v.contiguous()
    return out


def save_fp16(state: Mapping[str, torch.Tensor], path: str | Path) -> str:
    """Write ``state`` as float16 safetensors (atomically); returns the file's sha256 (hex).

    The file is byte-identical for identical weights, so the checksum identifies the weights.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(round_fp16(state), str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_fp16(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read weights written by :func:`save_fp16` as float32; with ``sha256``, refuse a file that differs."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {str(path)!r} does not exist")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256:
            raise InputError(f"weights file {path.name}: sha256 {actual[:12]}... differs from the expected "
                             f"{sha256[:12]}... (the file changed)")
    state = load_file(str(path), device="cpu")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# -- cost -----------------------------------------------------------------------------------------


def measure_epoch_seconds(arch: ArchSpec, *, n: int = 1000, num_classes: int = 10, batch_size: int = 64,
                          seed: int = 0, num_threads: int | None = None) -> float:
    """Seconds of one training epoch of ``n`` random 32 px images (after one warm-up epoch)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % num_classes
    times: list[float] = []
    with torch_threads(num_threads), torch.random.fork_rng(devices=[]):
        model = build_model(arch, num_classes, seed=seed)
        for _ in range(2):
            train_model(model, images, labels, epochs=1, lr=1e-3, batch_size=batch_size, weight_decay=0.0,
                        seed=seed, input_size=arch.input_size, progress=lambda info: times.append(info["seconds"]))
    return times[-1]
