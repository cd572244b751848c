"""A user's dataset and zoo as the pipeline's :class:`~zoorank.pipeline.TaskSource`.

Zoo models run only when the pipeline asks for their features (the top K), through the feature cache (a second
ranking of the same data costs no forward pass). The proxy / general encoder is the real ImageNet MobileNetV2 by
default (:func:`zoorank.zoo.offline_mobilenet_v2_spec`, offline), any zoo spec otherwise (``timm:...`` for
DINOv2, ``hf:...`` for CLIP when the user has them); Fennec reads it on a seeded unlabelled sample of
``proxy_sample`` images, Model Spider on the probe set (class centres, equation 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoorank.errors import InputError

__all__ = ["DatasetTask"]


class DatasetTask:
    """``specs``: the zoo (:class:`zoorank.zoo.ModelSpec`); ``dataset``: an opened
    :class:`zoorank.data.ImageDataset`; ``probe``: a :class:`zoorank.data.Probe` (None = every image);
    ``encoder``: the proxy / general encoder spec (None = the offline ImageNet MobileNetV2); ``description``: what
    the images show (MetaRank's dataset card)."""

    def __init__(self, specs: Sequence[Any], dataset: Any, *, probe: Any = None, cache: Any = None,
                 device: str = "cpu", batch_size: int = 64, encoder: Any = None, proxy_sample: int = 100,
                 seed: int = 0, description: str = "", on_pass: Any = None):
        self.specs = {s.name: s for s in specs}
        if len(self.specs) != len(specs):
            raise InputError("the zoo names a model twice")
        self.models = [s.name for s in specs]
        self.dataset = dataset
        self.probe = probe
        self.cache = cache
        self.device, self.batch_size = device, batch_size
        self.encoder_spec = encoder
        self.proxy_sample, self.seed = int(proxy_sample), int(seed)
        self.description = description
        self.on_pass = on_pass  # called with (what, extracted) after each extraction (progress, costs)
        self._encoder = None
        self._memo: dict = {}
        self._loaded_models: dict = {}
        self.loaded: dict[str, dict] = {}  # params, layers, architecture of every model that ran

    @property
    def indices(self) -> np.ndarray:
        return np.arange(len(self.dataset)) if self.probe is None else np.asarray(self.probe.indices)

    def labels(self) -> np.ndarray | None:
        if not self.dataset.is_labelled:
            return None
        if self.probe is not None:
            return np.asarray(self.probe.labels)
        return np.asarray(self.dataset.labels)

    def _extract(self, loaded: Any, indices: np.ndarray, identity: str | None, what: str):
        from zoorank.zoo.extract import cached_extract

        out = cached_extract(loaded, self.dataset, indices, probe_identity=identity, cache=self.cache,
                             batch_size=self.batch_size)
        if self.on_pass is not None:
            self.on_pass(what, out)
        return out

    def _load(self, model: str) -> Any:
        from zoorank.zoo.loading import load_model

        if model not in self._loaded_models:
            self._loaded_models[model] = load_model(self.specs[model], self.device)
        loaded = self._loaded_models[model]
        self.loaded[model] = {"params": loaded.num_params, "layers": loaded.num_layers,
                              "architecture": self.specs[model].ref}
        return loaded

    def model_meta(self, model: str) -> dict[str, Any]:
        """What is known of ``model`` without running it on the task (parameter count, layer count, architecture:
        Fennec's meta features, the placement of a cold model); loads it once (kept for its forward pass)."""
        if model not in self.specs:
            raise InputError(f"unknown model {model!r} (not in the zoo)")
        self._load(model)
        return dict(self.loaded[model])

    def features(self, model: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(features, source logits) of ``model`` on the probe set, or with ``rows`` (indices into the probe set)
        on those probe images only (a forward pass of just those images)."""
        if model not in self.specs:
            raise InputError(f"unknown model {model!r} (not in the zoo)")
        key = model if rows is None else (model, tuple(int(r) for r in rows))
        if key not in self._memo:
            loaded = self._load(model)
            idx = self.indices if rows is None else self.indices[np.asarray(rows, dtype=np.int64)]
            identity = self.probe.identity if (self.probe is not None and rows is None) else None
            out = self._extract(loaded, idx, identity, model)
            self._memo[key] = (out.features, out.logits)
        return self._memo[key]

    def _encoder_model(self):
        if self._encoder is None:
            from zoorank.zoo import offline_mobilenet_v2_spec
            from zoorank.zoo.loading import load_model

            self._encoder = load_model(self.encoder_spec or offline_mobilenet_v2_spec(), self.device)
        return self._encoder

    def encoder_record(self) -> dict[str, Any]:
        """What the knowledge base keeps of the proxy / general encoder (so that ``zoorank fit`` and a later
        ``zoorank rank`` use the same one): its identity hash, name and spec."""
        from dataclasses import asdict

        from zoorank.zoo import offline_mobilenet_v2_spec

        spec = self.encoder_spec or offline_mobilenet_v2_spec()
        mapping = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()}
        return {"identity": self._encoder_model().identity, "name": spec.name, "spec": mapping}

    def proxy_features(self) -> np.ndarray:
        idx = self.indices
        take = np.sort(np.random.default_rng(self.seed).permutation(idx)[: self.proxy_sample])
        return self._extract(self._encoder_model(), take, None, "proxy encoder").features

    def encoder_features(self) -> np.ndarray:
        return self._extract(self._encoder_model(), self.indices,
                             None if self.probe is None else self.probe.identity, "general encoder").features

    def task_meta(self) -> tuple[int, int]:
        return int(self.dataset.n_classes or 1), len(self.dataset)

    def card(self) -> str:
        from zoorank.methods.metarank import card_from_dataset

        return card_from_dataset(self.dataset, what=self.description).to_text()
