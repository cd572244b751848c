"""One forward pass -> (pooled penultimate features, source-head logits or None), per kind of model.

* timm models: ``forward_features`` -> ``forward_head(pre_logits=True)`` are the features; the
  classifier (``get_classifier()``) applied to them gives the logits. Heads that are not a plain
  ``Linear`` (distillation pairs, conv heads) run ``forward_head`` on the same feature map instead,
  so the body still runs once. A model built with ``num_classes=0`` has no logits.
* Other ``nn.Module`` models (torchvision, Hugging Face, pickled modules): a forward hook on the
  final classifier ``Linear`` records its input (the features) and output. The head is looked up
  under the usual attribute names ``fc``, ``classifier``, ``heads``, ``head`` (the last ``Linear``
  inside it), else the model's last ``Linear``. The hook's output must *be* the model's output
  (its ``logits`` for Hugging Face models); if it is not (no head, or the last ``Linear`` is inside
  a block), the model's output is the features and there are no logits.
* TorchScript modules cannot take hooks: a module exporting ``features_and_logits`` is called as is;
  one exporting ``forward_features`` with an ``fc``/``classifier``/``head`` submodule gets features
  from the former and logits from the latter; otherwise its output is the features (no logits).

Features with spatial or token axes are pooled: ``[B, C, H, W]`` by the spatial mean, ``[B, T, D]``
by the token mean; anything else is flattened to ``[B, D]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

HEAD_ATTRS = ("fc", "classifier", "heads", "head")


def pool(t: torch.Tensor) -> torch.Tensor:
    """Pool a feature tensor to ``[B, D]`` (spatial mean of 4-D, token mean of 3-D, flatten otherwise)."""
    if t.ndim == 2:
        return t
    if t.ndim == 4:
        return t.mean(dim=(2, 3))
    if t.ndim == 3:
        return t.mean(dim=1)
    return t.flatten(1)


def find_head(module: nn.Module) -> tuple[str, nn.Linear] | None:
    """The final classifier ``Linear`` of a module and its qualified name (rules in the module doc)."""
    names = {id(m): n for n, m in module.named_modules()}
    for attr in HEAD_ATTRS:
        sub = getattr(module, attr, None)
        if isinstance(sub, nn.Linear):
            return names[id(sub)], sub
        if isinstance(sub, nn.Module):
            linears = [m for m in sub.modules() if isinstance(m, nn.Linear)]
            if linears:
                return names[id(linears[-1])], linears[-1]
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return (names[id(linears[-1])], linears[-1]) if linears else None


def main_output(out: Any) -> torch.Tensor:
    """The tensor a model returns: itself, a Hugging Face output's ``logits`` (or pooled/last hidden
    state for models without a head), or the first element of a tuple."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "pooler_output", "last_hidden_state"):
        value = out.get(key) if isinstance(out, dict) else getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, list | tuple) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find the output tensor in a {type(out).__name__}")


class TimmForward:
    """Features and logits of a timm model (see the module doc)."""

    def __call__(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the body once; return pooled pre-logits features and the head's logits."""
        fmap = model.forward_features(x)
        pre = model.forward_head(fmap, pre_logits=True)
        if getattr(model, "num_classes", 1) == 0:
            return pool(pre), None
        clf = model.get_classifier()
        if isinstance(clf, nn.Linear):
            logits = clf(pre)
        elif isinstance(clf, nn.Identity):
            return pool(pre), None
        else:
            logits = main_output(model.forward_head(fmap))
        return pool(pre), logits


class HookForward:
    """Features and logits of a generic module through a hook on its final ``Linear``."""

    def __init__(self, head_name: str | None) -> None:
        self.head_name = head_name

    def __call__(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the model once; the head's input is the features when its output is the model's output."""
        head = model.get_submodule(self.head_name) if self.head_name else None
        if not isinstance(head, nn.Linear):  # replaced after loading (e.g. by nn.Identity)
            head = None
        seen: dict[str, torch.Tensor] = {}

        def hook(_m: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            seen["in"], seen["out"] = inputs[0], output

        handle = head.register_forward_hook(hook) if head is not None else None
        try:
            out = main_output(model(x))
        finally:
            if handle is not None:
                handle.remove()
        if "out" in seen and seen["out"] is out:
            return pool(seen["in"]), out
        return pool(out), None


class ScriptForward:
    """Features and logits of a TorchScript module (see the module doc)."""

    def __call__(self, model: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Use the module's exported methods when it has them; otherwise its output is the features."""
        if hasattr(model, "features_and_logits"):
            feats, logits = model.features_and_logits(x)
            return pool(feats), logits
        if hasattr(model, "forward_features"):
            feats = pool(model.forward_features(x))
            for attr in HEAD_ATTRS:
                head = getattr(model, attr, None)
                if head is not None and callable(head):
                    return feats, head(feats)
            return feats, None
        return pool(main_output(model(x))), None
