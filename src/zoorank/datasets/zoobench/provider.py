"""Features of ZooBench's zoo on its target tasks, for the evaluation harness (a
:class:`~zoorank.evaluation.FeatureProvider`).

* **Probe set** of a task: its whole train split (at most ``probe_max`` images, stratified, from the train split
  only: :meth:`~zoorank.datasets.zoobench.tasks.TaskData.probe`); labels are the task's 0..C-1.
* **Features and logits**: the pooled penultimate features and the source-head logits of the committed weights
  (``weights/<model>.safetensors``, checked against the SHA-256 in ``zoo.csv``; the ImageNet MobileNetV2 from the
  offline weights package), with the inputs the models were trained on
  (:func:`~zoorank.datasets.zoobench.training.features_and_logits`).
* **Proxy features** (Fennec's proxy encoder, Model Spider's task encoder): the untouched ImageNet MobileNetV2's
  features on an unlabelled sample of :data:`PROXY_SAMPLE` train images of the task.
* **General features** (PED's reference distribution): the model's features on a fixed mixture of the 8 source
  domains, :data:`GENERAL_PER_DOMAIN` images each drawn with seed 1 (not the pre-training images).
* **Source tasks** (Model Spider's auxiliary data, its appendix B.1: training tasks sampled from data disjoint from
  the targets): each of the 8 source domains as a labelled task of :data:`SOURCE_PER_CLASS` fresh images per class
  (seed :data:`SOURCE_SEED`, not the images the zoo was trained on): :meth:`source_tasks`,
  :meth:`source_features`, :meth:`source_labels`, :meth:`source_encoder_features`.

Features are computed on first use and kept in the feature cache (:class:`zoorank.store.FeatureCache`, safe to
delete), keyed by the weights' SHA-256, the task data's checksum, the probe and the preprocessing. Before a task
is first used its generated data are checked against ``task_checksums.json``: a silent change of data is refused.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.datasets.zoobench import build as B
from zoorank.errors import InputError

GENERAL_PER_DOMAIN = 50
GENERAL_SEED = 1
#: The proxy encoder of Fennec / the task encoder of Model Spider: the zoo's untouched ImageNet MobileNetV2.
PROXY_MODEL = "mobilenet_v2-imagenet"
PROXY_SAMPLE = 100
PROXY_SEED = 2
SOURCE_PER_CLASS = 20
SOURCE_SEED = 3


class ZooBenchProvider:
    """Lazily computed, cached features of the ZooBench zoo (see the module doc)."""

    #: The general encoder of :meth:`encoder_features`: a model of the zoo.
    encoder_model = PROXY_MODEL

    def __init__(self, root: str | Path | None = None, *, cache: Any = None, probe_max: int | None = None,
                 threads: int | None = None, verify: bool = True):
        from zoorank.paths import zoobench_dir
        from zoorank.store.feature_cache import FeatureCache

        self.root = Path(root) if root is not None else zoobench_dir()
        self.cache = cache if cache is not None else FeatureCache()
        self.probe_max = probe_max
        self.threads = threads
        self.verify = verify
        self.computed = 0  # forward passes actually run (cache misses)
        self._zoo = self._read_zoo()
        self._checked: dict[str, str] = {}

    def _read_zoo(self) -> dict[str, dict[str, str]]:
        path = self.root / "zoo.csv"
        if not path.is_file():
            raise InputError(f"{path} not found: build ZooBench first (zoorank bench build)")
        with open(path, newline="") as fh:
            return {row["model"]: row for row in csv.DictReader(fh)}

    # -- data ------------------------------------------------------------------------------------------

    def _task_checksum(self, task: str) -> str:
        if task not in self._checked:
            from zoorank.datasets.zoobench import checksums as C

            actual = C.task_checksum(task)
            if self.verify:
                expected = C.read().get("tasks", {}).get(task, {}).get("sha256")
                if expected is None:
                    raise InputError(f"task {task!r} has no committed checksum in task_checksums.json")
                if actual != expected:
                    raise InputError(f"task {task!r}: the generated data differ from the committed checksum "
                                     f"(fonts, Pillow/FreeType or the generator changed); see "
                                     f"`python -c 'from zoorank.datasets.zoobench import checksums as C; "
                                     f"print(C.verify().lines())'`")
            self._checked[task] = actual
        return self._checked[task]

    def probe_indices(self, task: str) -> np.ndarray:
        """Indices into the task's images of the probe set (from the train split only)."""
        from zoorank.datasets.zoobench import tasks as T

        data = T.load(task)
        if self.probe_max is None or self.probe_max >= data.train.size:
            return np.asarray(data.train)
        return data.probe(self.probe_max)

    def labels(self, task: str) -> np.ndarray:
        from zoorank.datasets.zoobench import tasks as T

        return np.asarray(T.load(task).labels[self.probe_indices(task)])

    # -- models ----------------------------------------------------------------------------------------

    def _model(self, model: str) -> tuple[Any, Any, str]:
        from zoorank.datasets.zoobench import training as TR
        from zoorank.datasets.zoobench import zoo_design as Z

        row = self._zoo.get(model)
        if row is None:
            raise InputError(f"unknown ZooBench model {model!r}")
        arch = Z.ARCHS.get(row["architecture"])
        if arch is None:
            raise InputError(f"zoo.csv: model {model!r} has an unknown architecture {row['architecture']!r}")
        if row["init"] == "imagenet" and row["source_domain"] == "imagenet":
            return arch, TR.build_model(arch, 1000), "torchvision-imagenet1k-v1"
        sha = row.get("sha256") or None
        if sha is None:
            raise InputError(f"zoo.csv: model {model!r} has no weights yet (the build has not trained it)")
        state = TR.load_fp16(B.weights_path(self.root, model), sha)
        return arch, TR.load_state(arch, state), sha

    def _features(self, model: str, images_of: Any, dataset_id: str, probe_id: str) -> tuple[np.ndarray, np.ndarray]:
        from zoorank.datasets.zoobench import training as TR
        from zoorank.methods._torch import torch_threads
        from zoorank.store.feature_cache import cache_key

        row = self._zoo.get(model)
        if row is None:
            raise InputError(f"unknown ZooBench model {model!r}")
        weights_id = row.get("sha256") or "torchvision-imagenet1k-v1"
        key = cache_key(model=f"zoobench:{model}:{weights_id}", dataset=dataset_id, probe=probe_id,
                        preprocess=f"zoobench-train-inputs:{row['architecture']}")
        hit = self.cache.get(key)
        if hit is not None:
            return hit.features, hit.logits
        arch, net, _ = self._model(model)
        with torch_threads(self.threads):
            feats, logits = TR.features_and_logits(net, images_of(), input_size=arch.input_size)
        self.computed += 1
        self.cache.put(key, feats, logits, meta={"model": model, "dataset": dataset_id})
        return feats, logits

    def features(self, model: str, task: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features [N, D], source logits [N, K]) of ``model`` on ``task``'s probe set; with ``rows`` (indices
        into the probe set, e.g. :func:`zoorank.data.fraction_rows`), on those probe images only: a forward pass
        of just those images, cached under its own key."""
        from zoorank.datasets.zoobench import tasks as T
        from zoorank.store.scores import digest

        checksum = self._task_checksum(task)
        idx = self.probe_indices(task)
        probe_id = "train" if self.probe_max is None else f"probe{self.probe_max}:" + ",".join(map(str, idx[:5]))
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.ndim != 1 or rows.size == 0 or rows.min() < 0 or rows.max() >= idx.size:
                raise InputError(f"rows must index the {idx.size} probe images of {task!r}")
            idx = idx[rows]
            probe_id += ":rows" + digest(rows)[:16]
        return self._features(model, lambda: T.load(task).images[idx], f"zoobench:{task}:{checksum}", probe_id)

    def proxy_features(self, task: str, encoder: str = PROXY_MODEL) -> np.ndarray:
        """Features of the proxy encoder (default the ImageNet MobileNetV2, as it is; any zoo model by name for
        the ablation) on an unlabelled sample of :data:`PROXY_SAMPLE` images of the task's train split (seeded;
        Fennec's equation 5)."""
        from zoorank.datasets.zoobench import tasks as T

        checksum = self._task_checksum(task)
        train = np.asarray(T.load(task).train)
        idx = np.sort(np.random.default_rng(PROXY_SEED).permutation(train)[:PROXY_SAMPLE])
        return self._features(encoder, lambda: T.load(task).images[idx], f"zoobench:{task}:{checksum}",
                              f"proxy{PROXY_SAMPLE}x{PROXY_SEED}")[0]

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of the general encoder (:attr:`encoder_model`) on the task's probe set."""
        return self.features(self.encoder_model, task)[0], self.labels(task)

    def prepare(self, task: str) -> None:
        """Generate (or load) the task's data and check them against the committed checksum: what the first
        request of a task does before any forward pass."""
        self._task_checksum(task)
        self.labels(task)

    def network(self, model: str) -> tuple[Any, tuple[int, int, int, int]]:
        """The model's network (its architecture with the committed weights or, before the build, a seeded
        initialisation) and its input shape: what archi2vec reads."""
        from zoorank.datasets.zoobench import training as TR
        from zoorank.datasets.zoobench import zoo_design as Z

        row = self._zoo.get(model)
        if row is None:
            raise InputError(f"unknown ZooBench model {model!r}")
        arch = Z.ARCHS[row["architecture"]]
        net = self._model(model)[1] if row.get("sha256") or row["init"] == "imagenet" else TR.build_model(arch, 10)
        return net, (1, 3, arch.input_size, arch.input_size)

    # -- source tasks (Model Spider's auxiliary data) ------------------------------------------------------

    def source_tasks(self) -> tuple[str, ...]:
        """The source domains, each a labelled task disjoint from the targets (module doc)."""
        return tuple(B.SOURCE_DOMAINS)

    def _source(self, domain: str) -> tuple[np.ndarray, np.ndarray]:
        from zoorank.datasets.zoobench import domains as D

        if domain not in B.SOURCE_DOMAINS:
            raise InputError(f"unknown source domain {domain!r} (have: {', '.join(B.SOURCE_DOMAINS)})")
        cache = self.__dict__.setdefault("_sources", {})
        if domain not in cache:
            images, labels, _ = D.get_domain(domain).make(seed=SOURCE_SEED, per_class=SOURCE_PER_CLASS)
            order = np.argsort(labels, kind="stable")
            cache[domain] = (images[order], np.asarray(labels, dtype=np.int64)[order])
        return cache[domain]

    def source_labels(self, domain: str) -> np.ndarray:
        return self._source(domain)[1]

    def source_features(self, model: str, domain: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, source logits) of ``model`` on the source task ``domain``."""
        return self._features(model, lambda: self._source(domain)[0], f"zoobench:source:{domain}",
                              f"{SOURCE_PER_CLASS}x{SOURCE_SEED}")

    def source_encoder_features(self, domain: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of the general encoder on the source task ``domain``."""
        return self.source_features(self.encoder_model, domain)[0], self.source_labels(domain)

    def general_features(self, model: str) -> np.ndarray:
        """The model's features on the general mixture of the source domains (PED)."""
        images = general_images()
        return self._features(model, lambda: images, "zoobench:general", f"{GENERAL_PER_DOMAIN}x{GENERAL_SEED}")[0]


def live_provider(root: str | Path | None, tasks: Any, models: Any, *, threads: int | None = None
                  ) -> ZooBenchProvider:
    """A provider with no feature cache (every request a real forward pass: end-to-end timing), warmed up
    untimed: every task's data generated and checked, every model run once on the first task, so that start-up
    costs (the generators, torch's first calls) fall on no method."""
    from zoorank.store.feature_cache import NoFeatureCache

    tasks = list(tasks)
    live = ZooBenchProvider(root, cache=NoFeatureCache(), threads=threads)
    for t in tasks:
        live.prepare(t)
    for m in models:
        live.features(m, tasks[0])
    return live


def general_images(per_domain: int = GENERAL_PER_DOMAIN, seed: int = GENERAL_SEED) -> np.ndarray:
    """``per_domain`` images of each source domain (seed ``seed``), concatenated in :data:`build.SOURCE_DOMAINS`
    order."""
    from zoorank.datasets.zoobench import domains as D

    out = []
    for name in B.SOURCE_DOMAINS:
        d = D.get_domain(name)
        images, _, _ = d.make(seed=seed, per_class=-(-per_domain // d.n_classes))
        out.append(images[np.random.default_rng(seed).permutation(len(images))[:per_domain]])
    return np.concatenate(out)
