"""A toy model zoo built in seconds on scikit-learn's digits, with real fine-tuning ground truth.

The README's demo ranks this zoo with every metric until the full pipeline exists. Everything is
real and seeded: small torch networks (MLPs and CNNs) are pre-trained on different *source* tasks
made from one half of the 8x8 digits (the 10 digits, a subset of them, parity, "has a loop",
transposed images, random labels, or no training at all); the *target* task is the 10 digits on the
other half of the images, rotated by 90 degrees. Each model's penultimate features and source-head
probabilities on the target's probe (train) split feed the metrics; the ground truth is the test
accuracy after fine-tuning the whole network on the target's train split (fixed recipe below).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: Fine-tuning recipe for the ground truth (all models alike).
FINETUNE = {"epochs": 20, "lr": 3e-3, "batch_size": 64, "weight_decay": 1e-4}
PRETRAIN = {"epochs": 20, "lr": 3e-3, "batch_size": 64}


@dataclass(frozen=True)
class ToySpec:
    name: str
    arch: str  # "mlp<width>" or "cnn<channels>"
    source: str  # which source task it was pre-trained on


ZOO = [
    ToySpec("mlp128-digits", "mlp128", "digits"),
    ToySpec("cnn16-digits", "cnn16", "digits"),
    ToySpec("mlp64-digits0to4", "mlp64", "digits0to4"),
    ToySpec("cnn16-transposed", "cnn16", "transposed"),
    ToySpec("mlp128-parity", "mlp128", "parity"),
    ToySpec("cnn8-loops", "cnn8", "loops"),
    ToySpec("mlp128-random-labels", "mlp128", "random"),
    ToySpec("cnn16-untrained", "cnn16", "untrained"),
]


@dataclass
class ToyModelResult:
    spec: ToySpec
    params: int
    features: np.ndarray  # [N_probe, D] penultimate features on the target probe set
    source_probs: np.ndarray  # [N_probe, Cs] source-head softmax on the probe set
    general_features: np.ndarray  # [G, D] features on the model's own source images (PED)
    finetune_acc: float  # target test accuracy after fine-tuning


@dataclass
class ToyZoo:
    models: list[ToyModelResult]
    probe_labels: np.ndarray
    seconds: float


def _split(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    half = len(y) // 2
    src, tgt = idx[:half], idx[half:]
    tgt_train, tgt_test = tgt[: len(tgt) // 2], tgt[len(tgt) // 2:]
    target_images = np.rot90(X, k=1, axes=(1, 2)).copy()
    return X, y, src, target_images, tgt_train, tgt_test


def _source_task(kind: str, X, y, src, rng):
    """Images and labels of a source task (labels 0..Cs-1)."""
    Xs, ys = X[src], y[src]
    if kind in ("digits", "untrained"):
        return Xs, ys
    if kind == "digits0to4":
        keep = ys < 5
        return Xs[keep], ys[keep]
    if kind == "parity":
        return Xs, ys % 2
    if kind == "loops":
        return Xs, np.isin(ys, [0, 6, 8, 9]).astype(np.int64)
    if kind == "transposed":
        return np.transpose(Xs, (0, 2, 1)).copy(), ys
    if kind == "random":
        return Xs, rng.integers(0, 10, size=len(ys))
    raise ValueError(f"unknown source task {kind!r}")


def _build(arch: str, n_out: int):
    import torch.nn as nn

    if arch.startswith("mlp"):
        w = int(arch[3:])
        body = nn.Sequential(nn.Flatten(), nn.Linear(64, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU())
        dim = w
    elif arch.startswith("cnn"):
        c = int(arch[3:])
        body = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        dim = 4 * c
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    return body, nn.Linear(dim, n_out)


def _train(body, head, X, y, *, epochs, lr, batch_size, weight_decay=0.0, seed=0):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(X.reshape(len(X), -1)), torch.from_numpy(y)
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    body.train()
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=g)
        for i in range(0, len(order), batch_size):
            b = order[i: i + batch_size]
            loss = F.cross_entropy(head(body(Xt[b])), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _forward(body, head, X):
    import torch

    body.eval()
    head.eval()
    with torch.no_grad():
        f = body(torch.from_numpy(X.reshape(len(X), -1)))
        p = torch.softmax(head(f).double(), dim=1)
    return f.double().numpy(), p.numpy()


def build_toy_zoo(seed: int = 0, progress=None) -> ToyZoo:
    """Pre-train the toy zoo, extract probe features and fine-tune every model (a few seconds)."""
    import copy

    import torch

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    X, y, src, target_images, tgt_train, tgt_test = _split(seed)
    n_target_classes = 10
    results = []
    for k, spec in enumerate(ZOO):
        rng = np.random.default_rng(seed + 1000 + k)
        Xs, ys = _source_task(spec.source, X, y, src, rng)
        torch.manual_seed(seed + k)
        body, head = _build(spec.arch, int(ys.max()) + 1)
        if spec.source != "untrained":
            _train(body, head, Xs, ys, seed=seed + k, **PRETRAIN)
        feats, probs = _forward(body, head, target_images[tgt_train])
        general, _ = _forward(body, head, Xs)
        # ground truth: fine-tune a copy of the whole network with a new head on the target
        ft_body = copy.deepcopy(body)
        torch.manual_seed(seed + 100 + k)
        ft_head = torch.nn.Linear(feats.shape[1], n_target_classes)
        _train(ft_body, ft_head, target_images[tgt_train], y[tgt_train], seed=seed + 100 + k, **FINETUNE)
        _, test_probs = _forward(ft_body, ft_head, target_images[tgt_test])
        acc = float((test_probs.argmax(1) == y[tgt_test]).mean())
        params = sum(p.numel() for p in body.parameters()) + sum(p.numel() for p in head.parameters())
        results.append(ToyModelResult(spec, params, feats, probs, general, acc))
        if progress is not None:
            progress(spec.name)
    return ToyZoo(results, y[tgt_train].copy(), time.perf_counter() - t0)
