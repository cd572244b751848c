"""A hand-made task for the pipeline's tests: four classes of points whose separation by each model's features
grows with that model's quality; forward passes are counted."""

from __future__ import annotations

import numpy as np


class SyntheticTask:
    def __init__(self, models, quality, *, per_class: int = 30, labelled: bool = True,
                 card: str = "four classes of synthetic points"):
        self.models = list(models)
        self.quality = np.asarray(quality, dtype=float)
        self.y = np.repeat(np.arange(4), per_class)
        self.labelled = labelled
        self._card = card
        self.passes: list[str] = []

    def labels(self):
        return self.y if self.labelled else None

    def features(self, model):
        self.passes.append(model)
        i = self.models.index(model)
        rng = np.random.default_rng(i)
        centres = rng.normal(size=(4, 6))
        return 3.0 * self.quality[i] * centres[self.y] + rng.normal(size=(self.y.size, 6)), None

    def proxy_features(self):
        return np.random.default_rng(9).normal(size=(20, 5))

    def encoder_features(self):
        return np.random.default_rng(8).normal(size=(self.y.size, 5))

    def task_meta(self):
        return 4, int(self.y.size)

    def card(self):
        return self._card
