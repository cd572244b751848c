"""A planted synthetic zoo: a seeded benchmark whose ground truth is known by construction (tests and studies of
the learned rankers, Model Spider's above all)."""

from __future__ import annotations

import numpy as np

from zoorank import evaluation as H
from zoorank.errors import InputError

__all__ = ["PlantedProvider", "planted_benchmark"]


class PlantedProvider:
    """A seeded synthetic zoo for Model Spider.

    Model m has a preferred direction α_m on the circle; task t has a direction β_t, C_t classes and
    ``per_class`` probe rows per class. The model's quality q(m, t) = sigmoid(``sharpness``·cos(α_m − β_t) +
    ``hidden``·ε_mt) with ε_mt ~ N(0, 1) (the hidden part is a property of the pair, invisible to the encoder).
    The general encoder's features of task t: class prototypes 3·A·(cos β_t, sin β_t) + ``class_spread``·r_tk
    plus unit noise (A a fixed random lift to ``encoder_dim`` dimensions), so the class centres reveal β_t. The
    features of model m: class means ``separation``·q(m, t)·v_tk (v_tk random unit vectors in D_m dimensions) plus unit
    noise,
    so classes separate with quality; source logits are a fixed random linear head of the features. The ground
    truth accuracy is 0.2 + 0.75·q. ``requests`` records every (model, task) whose features were read.
    """

    def __init__(self, n_models: int = 12, n_tasks: int = 14, *, classes: tuple[int, int] = (4, 8),
                 per_class: int = 16, dims: tuple[int, int] = (12, 24), encoder_dim: int = 12,
                 sharpness: float = 3.0, hidden: float = 0.0, class_spread: float = 1.0, separation: float = 4.0,
                 seed: int = 0):
        if n_models < 2 or n_tasks < 2:
            raise InputError("planted zoo: needs at least 2 models and 2 tasks")
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.models = tuple(f"m{i}" for i in range(n_models))
        self.tasks = tuple(f"t{j}" for j in range(n_tasks))
        self.alpha = (np.arange(n_models) / n_models * 2 * np.pi + rng.normal(0, 0.2, n_models)) % (2 * np.pi)
        self.beta = rng.uniform(0, 2 * np.pi, n_tasks)
        self.n_classes = rng.integers(classes[0], classes[1] + 1, n_tasks)
        self.dims = rng.integers(dims[0], dims[1] + 1, n_models)
        self.per_class, self.encoder_dim, self.class_spread = per_class, encoder_dim, class_spread
        self.separation = float(separation)
        self.lift = rng.normal(size=(encoder_dim, 2))
        eps = rng.normal(size=(n_models, n_tasks))
        logit = sharpness * np.cos(self.alpha[:, None] - self.beta[None, :]) + hidden * eps
        self.quality = 1.0 / (1.0 + np.exp(-logit))  # [models, tasks]
        self.heads = [np.random.default_rng([seed, 7, i]).normal(size=(int(d), 10)) for i, d in enumerate(self.dims)]
        self.requests: list[tuple[str, str]] = []

    def accuracy(self) -> np.ndarray:
        """Ground truth [tasks, models]."""
        return (0.2 + 0.75 * self.quality).T

    def benchmark(self) -> H.Benchmark:
        acc = self.accuracy()
        zoo = {m: H.ZooEntry(m, f"arch{int(self.dims[i])}", "planted", "scratch", 1000 * (i + 1))
               for i, m in enumerate(self.models)}
        info = {t: H.TaskInfo(t, None, f"planted task {t}", int(self.n_classes[j])) for j, t in enumerate(self.tasks)}
        return H.Benchmark(self.models, self.tasks, {"finetune_acc": acc, "linear_probe_acc": 0.9 * acc}, zoo, info)

    def _t(self, task: str) -> int:
        try:
            return self.tasks.index(task)
        except ValueError:
            raise InputError(f"planted zoo: unknown task {task!r}") from None

    def labels(self, task: str) -> np.ndarray:
        j = self._t(task)
        return np.repeat(np.arange(int(self.n_classes[j])), self.per_class)

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        j = self._t(task)
        y = self.labels(task)
        rng = np.random.default_rng([self.seed, 1, j])
        u = np.array([np.cos(self.beta[j]), np.sin(self.beta[j])])
        protos = 3.0 * (self.lift @ u)[None, :] + self.class_spread * rng.normal(size=(int(self.n_classes[j]),
                                                                                      self.encoder_dim))
        return protos[y] + rng.normal(size=(y.size, self.encoder_dim)), y

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray]:
        j = self._t(task)
        i = self.models.index(model)
        self.requests.append((model, task))
        y = self.labels(task)
        rng = np.random.default_rng([self.seed, 2, i, j])
        d = int(self.dims[i])
        v = rng.normal(size=(int(self.n_classes[j]), d))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        X = self.separation * self.quality[i, j] * v[y] + rng.normal(size=(y.size, d))
        return X, X @ self.heads[i]


def planted_benchmark(**kwargs) -> tuple[H.Benchmark, PlantedProvider]:
    """(benchmark, provider) of a :class:`PlantedProvider` built with ``kwargs``."""
    p = PlantedProvider(**kwargs)
    return p.benchmark(), p
