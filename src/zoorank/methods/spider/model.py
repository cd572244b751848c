"""Model Spider (Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023):
learned model tokens, task tokens from a frozen general encoder, a one-layer Transformer scorer, and re-ranking
of the top-k models with PTM-specific task tokens.

**Tokens (section 4.2).** Model m has a learnable token θ_m ∈ R^d. A task with C classes has the task token
{μ_1, …, μ_C}, the class centres of a frozen general encoder's features (equation 5,
:func:`~zoorank.methods.spider.sampling.task_token`). The centres are standardised with the mean and standard
deviation of the training tasks' centres and mapped to R^d by a learned linear layer T (the paper feeds the
encoder's 1024-d centres directly and uses d = 1024; a projection keeps the scorer small whatever the encoder);
a learned type prompt p_gen is added to them.

**Similarity, equation 6.** ŝ(θ_m, task) = FC( Transformer([θ_m, T(μ_1) + p_gen, …, T(μ_C) + p_gen])_[0] ):
one post-norm Transformer encoder layer (multi-head self-attention, residual, LayerNorm, GELU MLP, residual,
LayerNorm, as in Vaswani et al.) whose first output — the position of the model token — goes through a fully
connected layer to a scalar. Only that output is used, so the attention is evaluated for the model-token query
alone (its keys and values are all tokens), which is exactly the first output of the full layer; the keys and
values of the task tokens are shared by every model of the zoo.

**Training, equations 3–4.** min_Θ Σ_tasks ℓ(ŝ(θ_1..M, task), t_task) over sampled training tasks whose
supervision t is the Copeland aggregation of NCE, LEEP, LogME and H-Score
(:mod:`~zoorank.methods.spider.sampling`); ℓ is the ranking loss of equation 4 (or MSE / ListMLE for the
ablation of table 4, :mod:`~zoorank.methods.spider.losses`). Adam, mini-batches of tasks, seeded.

**Re-ranking, section 4.4 / appendix A.6.** For model m with features of its own on the task, the specific token
is {P_m(ν_1) + p_spec, …, P_m(ν_C) + p_spec}: the class centres ν of its standardised features
(:func:`~zoorank.methods.spider.sampling.specific_token`) through a learned per-model linear projection P_m and
a second type prompt p_spec; it replaces the general task token when scoring model m. P_m is a fully connected
layer followed by a GELU: with a purely linear P_m the attention's weighted average of centred class centres is
close to 0 whatever their spread, and the spread (how well the model separates the classes) is what the specific
token has to tell. During training, for a share ``specific_rate`` of the tasks of each batch, a random subset of
the models whose specific tokens were stored with the task is scored with them (the paper's "dynamically select
a partial set of PTMs"), and the loss of that mixed list is added to the loss of the all-general list, so both
kinds of tokens are scored on one scale by the same Transformer. :meth:`ModelSpider.rerank` re-scores the given
models (the top-k of the coarse ranking) with their specific tokens.

**Incremental zoo, appendix C.4.** :meth:`ModelSpider.add_models` appends tokens (and specific projections) for
new models and trains only those on tasks supervised over the enlarged zoo, everything else frozen — the old
models' scores do not change. Optionally only the ``exemplars`` training tasks whose supervision of the old
models is closest to the mean supervision are used (the paper's iCaRL-style selection).

Persistence: :meth:`save` writes a directory with ``spider.json`` (configuration, model names, training
report) and ``spider.pt`` (a torch state dict of tensors, read back with ``weights_only=True``); no pickle.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file
from zoorank.methods._torch import torch_threads
from zoorank.methods.base import Ranker, TaskEvidence
from zoorank.methods.spider import losses as L
from zoorank.methods.spider.sampling import TrainingTask, specific_token, task_token
from zoorank.ranking import best_first

__all__ = ["ModelSpider", "SpiderScorer", "specific_token", "task_token"]

FORMAT = "zoorank-model-spider"
VERSION = 1


class SpiderScorer(nn.Module):
    """The learnable part of Model Spider: model tokens, the general-token projection, the per-model specific
    projections, the two type prompts, one Transformer layer and the FC head (module doc).

    Parameter names of the layer (``self_attn.in_proj_weight`` …, ``linear1``, ``linear2``, ``norm1``,
    ``norm2``) follow :class:`torch.nn.TransformerEncoderLayer`, whose first output it reproduces.
    """

    def __init__(self, n_models: int, token_dim: int, feature_dims: Sequence[int | None], *, dim: int = 64,
                 heads: int = 4, ffn: int = 128):
        super().__init__()
        if dim % heads:
            raise InputError(f"spider: dim ({dim}) must be divisible by heads ({heads})")
        self.dim, self.heads = dim, heads
        self.model_tokens = nn.Parameter(torch.randn(n_models, dim) / math.sqrt(dim))
        self.task_proj = nn.Linear(token_dim, dim)
        self.prompts = nn.Parameter(torch.randn(2, dim) * 0.02)  # [general, specific]
        self.specific_proj = nn.ModuleDict(
            {str(m): nn.Linear(int(d), dim) for m, d in enumerate(feature_dims) if d is not None})
        self.self_attn = nn.Module()
        self.self_attn.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.self_attn.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.self_attn.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.self_attn.in_proj_weight)
        nn.init.zeros_(self.self_attn.out_proj.bias)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 1)

    # -- tokens -----------------------------------------------------------------------------------------

    def general_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """[..., C, G] standardised encoder centres -> [..., C, d] general task tokens (with their prompt)."""
        return self.task_proj(tokens) + self.prompts[0]

    def specific_tokens(self, model: int, centres: torch.Tensor) -> torch.Tensor:
        """[C, D_m] specific centres of model ``model`` -> [C, d] specific task tokens (with their prompt)."""
        return nn.functional.gelu(self.specific_proj[str(model)](centres)) + self.prompts[1]

    # -- equation 6 ------------------------------------------------------------------------------------

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], self.heads, self.dim // self.heads)

    def _kv(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = self.self_attn.in_proj_weight, self.self_attn.in_proj_bias
        d = self.dim
        k = nn.functional.linear(tokens, w[d:2 * d], b[d:2 * d])
        v = nn.functional.linear(tokens, w[2 * d:], b[2 * d:])
        return self._split_heads(k), self._split_heads(v)

    def score(self, models: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, shared: bool) -> torch.Tensor:
        """Equation 6 for model-token indices ``models`` [P] against task tokens ``tokens`` ([B, C, d] shared by
        every model when ``shared``, giving [B, P]; else one [P, C, d] per model, giving [P]); ``mask`` marks the
        real (non-padding) tokens ([B, C] or [P, C])."""
        d, h = self.dim, self.heads
        w, b = self.self_attn.in_proj_weight, self.self_attn.in_proj_bias
        x0 = self.model_tokens[models]  # [P, d]
        q = self._split_heads(nn.functional.linear(x0, w[:d], b[:d]))  # [P, h, dh]
        k0, v0 = self._kv(x0)  # [P, h, dh]
        kt, vt = self._kv(tokens)  # [B|P, C, h, dh]
        scale = 1.0 / math.sqrt(d // h)
        self_logit = (q * k0).sum(-1) * scale  # [P, h]
        neg = torch.finfo(tokens.dtype).min
        if shared:
            logits = torch.einsum("phe,bche->bphc", q, kt) * scale  # [B, P, h, C]
            logits = logits.masked_fill(~mask[:, None, None, :], neg)
            all_logits = torch.cat([self_logit.expand(logits.shape[0], -1, -1).unsqueeze(-1), logits], dim=-1)
            att = torch.softmax(all_logits, dim=-1)
            out = att[..., :1] * v0 + torch.einsum("bphc,bche->bphe", att[..., 1:], vt)  # [B, P, h, dh]
        else:
            logits = torch.einsum("phe,pche->phc", q, kt) * scale  # [P, h, C]
            logits = logits.masked_fill(~mask[:, None, :], neg)
            att = torch.softmax(torch.cat([self_logit.unsqueeze(-1), logits], dim=-1), dim=-1)
            out = att[..., :1] * v0 + torch.einsum("phc,pche->phe", att[..., 1:], vt)  # [P, h, dh]
        out = self.self_attn.out_proj(out.reshape(*out.shape[:-2], d))
        x = self.norm1(x0 + out)
        x = self.norm2(x + self.linear2(nn.functional.gelu(self.linear1(x))))
        return self.fc(x).squeeze(-1)


def _pad(arrays: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack [C_i, d] tensors into [n, C_max, d] with a [n, C_max] mask of real rows."""
    n, cmax = len(arrays), max(a.shape[0] for a in arrays)
    out = arrays[0].new_zeros((n, cmax, arrays[0].shape[1]))
    mask = torch.zeros((n, cmax), dtype=torch.bool)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
        mask[i, : a.shape[0]] = True
    return out, mask


def _as_token(token, what: str, dim: int | None = None) -> np.ndarray:
    T = np.asarray(token, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] < 1 or T.shape[1] < 1:
        raise InputError(f"{what}: expected class centres [C, D], got shape {T.shape}")
    if not np.isfinite(T).all():
        raise InputError(f"{what}: contains NaN or infinite values")
    if dim is not None and T.shape[1] != dim:
        raise InputError(f"{what}: has dimension {T.shape[1]}, expected {dim} (use the same encoder / model)")
    return T


def _standardise(token: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Encoder class centres standardised with the training tasks' statistics, as the scorer reads them."""
    return torch.from_numpy(((token - mean) / std).astype(np.float32))


def merge_specific(coarse: np.ndarray, specific: Mapping[int, float], mode: str = "block") -> np.ndarray:
    """Coarse scores [M] with the models in ``specific`` (index -> specific-token score) re-scored, as
    :meth:`ModelSpider.rerank` describes (``block``: they stay ahead, ordered by their specific scores;
    ``replace``: their scores are replaced). Returns a new array."""
    scores = np.array(coarse, dtype=np.float64)
    if not specific:
        return scores
    idx = np.array(sorted(specific))
    s = np.array([specific[m] for m in idx])
    if mode == "replace":
        scores[idx] = s
        return scores
    rest = np.setdiff1d(np.arange(scores.size), idx)
    floor = float(scores[rest].max()) + 1.0 if rest.size else 0.0
    scores[idx] = floor + (s - s.min())
    return scores


class ModelSpider(Ranker):
    """Model Spider ranker (module doc).

    ``loss``: ``"rank"`` (equation 4), ``"listmle"`` or ``"mse"``. ``dim``, ``heads``, ``ffn``: the scorer's token
    dimension, attention heads and MLP width. ``epochs`` over the training tasks, mini-batches of ``batch_size``
    tasks, Adam with ``lr`` and ``weight_decay``; ``specific_rate``: share of the tasks of a batch whose stored
    specific tokens are used; ``threads``: torch threads while fitting and scoring (restored after; None leaves
    torch's setting); ``seed`` makes fitting deterministic.

    Learned (by :meth:`fit` or :meth:`load`): ``models_`` (the zoo, in the order of the supervision vectors and of
    :meth:`predict`'s output), ``feature_dims_`` (each model's feature dimension D_m, for its specific projection),
    ``net_`` (the :class:`SpiderScorer`), ``token_mean_`` / ``token_std_`` (the standardisation of the task
    tokens), ``specific_trained_`` (indices of the models whose specific projection saw training data) and
    ``report_`` (what fitting took).
    """

    _name = "spider"
    _learned = ("models_", "feature_dims_", "net_", "token_mean_", "token_std_", "specific_trained_", "report_")

    def __init__(self, *, dim: int = 64, heads: int = 4, ffn: int = 128, loss: str = "rank", epochs: int = 60,
                 batch_size: int = 16, lr: float = 3e-3, weight_decay: float = 1e-4, specific_rate: float = 0.5,
                 seed: int = 0, threads: int | None = 1):
        if loss not in L.LOSSES:
            raise InputError(f"spider: loss must be one of {', '.join(L.LOSSES)}, got {loss!r}")
        for name, v in (("dim", dim), ("heads", heads), ("ffn", ffn), ("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(v, int | np.integer) or v < 1:
                raise InputError(f"spider: {name} must be a positive integer, got {v!r}")
        if not 0.0 <= specific_rate <= 1.0:
            raise InputError(f"spider: specific_rate must be in [0, 1], got {specific_rate}")
        if not (isinstance(lr, int | float) and lr > 0 and isinstance(weight_decay, int | float) and weight_decay >= 0):
            raise InputError(f"spider: lr must be > 0 and weight_decay >= 0, got {lr!r} and {weight_decay!r}")
        self.dim, self.heads, self.ffn, self.loss = int(dim), int(heads), int(ffn), loss
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.lr, self.weight_decay, self.specific_rate = float(lr), float(weight_decay), float(specific_rate)
        self.seed, self.threads = int(seed), threads

    # -- data preparation -----------------------------------------------------------------------------

    def _check_tasks(self, tasks: Sequence[TrainingTask], n_models: int) -> None:
        if not tasks:
            raise InputError("spider: no training tasks")
        G = None
        for t in tasks:
            if not isinstance(t, TrainingTask):
                raise InputError(f"spider: training tasks must be TrainingTask objects, got {type(t).__name__}")
            tok = _as_token(t.token, f"training task {t.name!r} token", G)
            G = tok.shape[1]
            sup = np.asarray(t.supervision, dtype=np.float64)
            if sup.shape != (n_models,) or not np.isfinite(sup).all():
                raise InputError(f"training task {t.name!r}: supervision must be {n_models} finite numbers, "
                                 f"got shape {sup.shape}")
            for m, c in t.specific.items():
                if not 0 <= int(m) < n_models:
                    raise InputError(f"training task {t.name!r}: specific token of unknown model index {m}")
                c = _as_token(c, f"training task {t.name!r} specific token of model {m}")
                if c.shape[0] != tok.shape[0]:
                    raise InputError(f"training task {t.name!r}: specific token of model {m} has {c.shape[0]} "
                                     f"classes, the task token {tok.shape[0]}")

    @staticmethod
    def _infer_dims(tasks: Sequence[TrainingTask], names: Sequence[str], dims: list[int | None], trained: set[int],
                    first: int = 0) -> None:
        """Fill in ``dims``, the feature dimensions of the models ``first``.. from their specific tokens, and add
        those models to ``trained``."""
        for t in tasks:
            for m, c in t.specific.items():
                if int(m) < first:
                    continue
                trained.add(int(m))
                d = int(np.asarray(c).shape[1])
                if dims[m] is None:
                    dims[m] = d
                elif dims[m] != d:
                    raise InputError(f"spider: model {names[m]!r} has specific tokens of dimension "
                                     f"{d} and {dims[m]}")

    @staticmethod
    def _prepare(tasks: Sequence[TrainingTask], mean: np.ndarray, std: np.ndarray) -> list[dict]:
        return [{"token": _standardise(np.asarray(t.token, dtype=np.float64), mean, std),
                 "sup": torch.tensor(np.asarray(t.supervision, dtype=np.float64), dtype=torch.float32),
                 "specific": {int(m): torch.from_numpy(np.asarray(c, dtype=np.float32)) for m, c in t.specific.items()}}
                for t in tasks]

    # -- training --------------------------------------------------------------------------------------

    def _batch_scores(self, net: SpiderScorer, batch: list[dict], models: torch.Tensor,
                      rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
        """(general scores [B, P], mixed scores [B', P] of the B' tasks given specific tokens or None, their rows)."""
        raw, mask = _pad([b["token"] for b in batch])
        scores = net.score(models, net.general_tokens(raw), mask, shared=True)  # [B, P]
        position = {int(m): p for p, m in enumerate(models.tolist())}
        by_model: dict[int, list[int]] = {}
        for i, b in enumerate(batch):
            avail = [m for m in b["specific"] if m in position and str(m) in net.specific_proj]
            if not avail or rng.random() >= self.specific_rate:
                continue
            for m in rng.choice(avail, int(rng.integers(1, len(avail) + 1)), replace=False).tolist():
                by_model.setdefault(int(m), []).append(i)
        if not by_model:
            return scores, None, []
        rows, cols, blocks, masks = [], [], [], []
        for m in sorted(by_model):  # one projection per model for all its tasks in the batch
            c, cm = _pad([batch[i]["specific"][m] for i in by_model[m]])
            blocks.append(net.specific_tokens(m, c))
            masks.append(cm)
            rows += by_model[m]
            cols += [position[m]] * len(by_model[m])
        cmax = max(b.shape[1] for b in blocks)
        tokens = torch.cat([nn.functional.pad(b, (0, 0, 0, cmax - b.shape[1])) for b in blocks])
        smask = torch.cat([nn.functional.pad(m, (0, cmax - m.shape[1])) for m in masks])
        s_spec = net.score(models[cols], tokens, smask, shared=False)
        mixed = scores.index_put((torch.tensor(rows), torch.tensor(cols)), s_spec)
        used = sorted(set(rows))
        return scores, mixed[used], used

    def _loss(self, loss_fn, scores: torch.Tensor, truth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return loss_fn(scores, truth, gen) if self.loss == "listmle" else loss_fn(scores, truth)

    def _train(self, net: SpiderScorer, data: list[dict], models: torch.Tensor, params: list[nn.Parameter],
               epochs: int, seed: int, after_step: Callable[[], None] | None = None) -> list[float]:
        loss_fn = L.LOSSES[self.loss]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        bs = self.batch_size
        history = []
        net.train()
        for _ in range(epochs):
            order = rng.permutation(len(data))
            total = 0.0
            for s in range(0, len(order), bs):
                batch = [data[i] for i in order[s: s + bs]]
                general, mixed, used = self._batch_scores(net, batch, models, rng)
                truth = torch.stack([b["sup"][models] for b in batch])
                loss = self._loss(loss_fn, general, truth, gen)
                if mixed is not None:  # the same lists with some models scored from their specific tokens
                    loss = loss + self._loss(loss_fn, mixed, truth[used], gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if after_step is not None:
                    after_step()
                total += float(loss.detach()) * len(batch)
            history.append(total / len(data))
        net.eval()
        return history

    def fit(self, training_tasks: Sequence[TrainingTask], *, models: Sequence[str],
            feature_dims: Sequence[int | None] | None = None) -> ModelSpider:
        """Learn tokens and scorer from sampled training tasks (equation 3), whose supervision vectors follow
        ``models`` (the zoo's names); ``feature_dims``: each model's feature dimension D_m (for its specific
        projection), by default inferred from the specific tokens of the training tasks (a model never seen with
        one cannot be re-ranked). Returns self."""
        names = [str(m) for m in models]
        if len(names) < 2 or len(set(names)) != len(names):
            raise InputError("spider: needs at least 2 distinct model names")
        if feature_dims is not None and len(feature_dims) != len(names):
            raise InputError(f"spider: feature_dims has {len(feature_dims)} entries for {len(names)} models")
        given = [None] * len(names) if feature_dims is None else feature_dims
        dims: list[int | None] = [None if d is None else int(d) for d in given]
        tasks = list(training_tasks)
        self._check_tasks(tasks, len(names))
        trained: set[int] = set()
        self._infer_dims(tasks, names, dims, trained)
        t0 = time.perf_counter()
        centres = np.concatenate([np.asarray(t.token, dtype=np.float64) for t in tasks])
        mean = centres.mean(axis=0)
        sd = centres.std(axis=0)
        std = np.where(sd > 1e-12 * max(float(sd.max()), 1e-300), sd, 1.0)
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = SpiderScorer(len(names), centres.shape[1], dims, dim=self.dim, heads=self.heads, ffn=self.ffn)
            data = self._prepare(tasks, mean, std)
            losses = self._train(net, data, torch.arange(len(names)), list(net.parameters()), self.epochs, self.seed)
        self.models_, self.feature_dims_, self.specific_trained_ = names, dims, trained
        self.token_mean_, self.token_std_, self.net_ = mean, std, net
        self.report_ = {"n_tasks": len(tasks), "epochs": self.epochs, "final_loss": losses[-1],
                        "loss_curve": losses, "seconds": time.perf_counter() - t0}
        return self

    # -- ranking ---------------------------------------------------------------------------------------

    def predict(self, task_token) -> np.ndarray:
        """Scores [M] of every model of ``models_`` for a task with encoder class centres ``task_token`` [C, G]
        (equation 5; :func:`task_token`); higher = better. No forward pass of any zoo model."""
        self._check_fitted()
        net = self.net_
        T = _as_token(task_token, "task token", self.token_mean_.shape[0])
        with torch.no_grad(), torch_threads(self.threads):
            tokens = net.general_tokens(_standardise(T, self.token_mean_, self.token_std_)).unsqueeze(0)
            mask = torch.ones((1, T.shape[0]), dtype=torch.bool)
            # one model at a time: a model's score does not depend on the rest of the zoo, to the last bit
            # (so adding models leaves the old scores exactly as they were)
            return np.array([float(net.score(torch.tensor([m]), tokens, mask, shared=True)[0, 0])
                             for m in range(len(self.models_))])

    def score(self, task: TaskEvidence) -> np.ndarray:
        """:meth:`predict` from the task's evidence: its task ``token``."""
        self._check_fitted()
        return self.predict(task.require("token", "spider"))

    def specific_scores(self, specific: Mapping[int, np.ndarray]) -> dict[int, float]:
        """Equation 6 with the PTM-specific token of each given model (index -> its specific centres [C, D_m],
        :func:`specific_token` of that model's features on the task)."""
        self._check_fitted()
        net = self.net_
        out: dict[int, float] = {}
        with torch.no_grad(), torch_threads(self.threads):
            for m, c in specific.items():
                m = int(m)
                if not 0 <= m < len(self.models_):
                    raise InputError(f"spider: model index {m} out of range 0..{len(self.models_) - 1}")
                if str(m) not in net.specific_proj or m not in self.specific_trained_:
                    raise InputError(f"spider: no specific projection was learned for model {self.models_[m]!r} "
                                     f"(no training task carried its specific token)")
                C = _as_token(c, f"specific token of {self.models_[m]!r}", self.feature_dims_[m])
                tok = net.specific_tokens(m, torch.from_numpy(C.astype(np.float32))).unsqueeze(0)
                mask = torch.ones((1, C.shape[0]), dtype=torch.bool)
                out[m] = float(net.score(torch.tensor([m]), tok, mask, shared=False)[0])
        return out

    def rerank(self, task_token, specific: Mapping[int, np.ndarray], coarse: np.ndarray | None = None, *,
               mode: str = "block") -> np.ndarray:
        """Re-ranking (section 4.4, appendix A.6) of the models in ``specific`` (index -> specific centres
        [C, D_m], typically the top-k of the coarse ranking) with their specific-token scores; the other models
        keep their coarse scores (:meth:`predict`, or ``coarse``). ``mode="block"``: the re-scored models are ordered
        among themselves by their specific-token scores and stay ahead of the others (the top-k set of the coarse
        stage is kept; only its order is revised); ``mode="replace"``: their scores are replaced by the specific
        ones and everything is ranked together. Returns scores [M]."""
        if mode not in ("block", "replace"):
            raise InputError(f"spider: rerank mode must be 'block' or 'replace', got {mode!r}")
        scores = self.predict(task_token) if coarse is None else np.array(coarse, dtype=np.float64)
        if scores.shape != (len(self.models_),) or not np.isfinite(scores).all():
            raise InputError(f"spider: coarse scores must be {len(self.models_)} finite numbers, got {scores.shape}")
        return merge_specific(scores, self.specific_scores(specific), mode)

    def top_k(self, task_token, k: int) -> list[int]:
        """Indices of the k best models of the coarse ranking (best first)."""
        s = self.predict(task_token)
        return [int(i) for i in best_first(s, k)]

    # -- incremental zoo (appendix C.4) ---------------------------------------------------------------

    def add_models(self, names: Sequence[str], training_tasks: Sequence[TrainingTask], *,
                   feature_dims: Sequence[int | None] | None = None, epochs: int | None = None,
                   exemplars: int | None = None) -> ModelSpider:
        """Append ``names`` to the zoo and learn only their tokens (and specific projections) on
        ``training_tasks`` supervised over the enlarged zoo (old models first, in order, then ``names``);
        all other parameters stay frozen, so the old models' scores are unchanged. ``exemplars``: use only
        that many training tasks, those whose supervision of the old models is closest (Euclidean, after
        min–max normalisation per task) to the mean over all tasks. Returns self."""
        self._check_fitted()
        net = self.net_
        names = [str(n) for n in names]
        if not names or len(set(names)) != len(names) or set(names) & set(self.models_):
            raise InputError("spider: add_models needs new, distinct model names")
        n_old, n_new = len(self.models_), len(self.models_) + len(names)
        tasks = list(training_tasks)
        self._check_tasks(tasks, n_new)
        if feature_dims is not None and len(feature_dims) != len(names):
            raise InputError(f"spider: feature_dims has {len(feature_dims)} entries for {len(names)} new models")
        if epochs is not None and (not isinstance(epochs, int | np.integer) or epochs < 0):
            raise InputError(f"spider: epochs must be a non-negative integer, got {epochs!r}")
        if exemplars is not None:
            if exemplars < 1:
                raise InputError(f"spider: exemplars must be >= 1, got {exemplars}")
            old = L.normalise_targets(torch.tensor(np.stack([np.asarray(t.supervision)[:n_old] for t in tasks])))
            dist = ((old - old.mean(0, keepdim=True)) ** 2).sum(1)
            tasks = [tasks[i] for i in np.argsort(dist.numpy(), kind="stable")[:exemplars]]
        self.models_ += names
        self.feature_dims_ += [None] * len(names) if feature_dims is None else [
            None if d is None else int(d) for d in feature_dims]
        self._infer_dims(tasks, self.models_, self.feature_dims_, self.specific_trained_, first=n_old)
        t0 = time.perf_counter()
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + n_new)
            fresh = SpiderScorer(len(names), net.task_proj.in_features, self.feature_dims_[n_old:], dim=self.dim,
                                 heads=self.heads, ffn=self.ffn)
            for p in net.parameters():
                p.requires_grad_(False)
            old_tokens = net.model_tokens.detach().clone()
            net.model_tokens = nn.Parameter(torch.cat([old_tokens, fresh.model_tokens.detach()]))
            params: list[nn.Parameter] = [net.model_tokens]
            for k, proj in fresh.specific_proj.items():
                net.specific_proj[str(n_old + int(k))] = proj
                params += list(proj.parameters())

            def restore() -> None:  # the old models' tokens stay exactly as they were
                with torch.no_grad():
                    net.model_tokens[:n_old] = old_tokens

            losses = self._train(net, self._prepare(tasks, self.token_mean_, self.token_std_), torch.arange(n_new),
                                 params, self.epochs if epochs is None else int(epochs), self.seed + n_new, restore)
            for p in net.parameters():
                p.requires_grad_(True)
        self.report_["incremental"] = {"added": names, "n_tasks": len(tasks),
                                      "final_loss": losses[-1] if losses else None,
                                      "seconds": time.perf_counter() - t0}
        return self

    def reorder(self, models: Sequence[str]) -> ModelSpider:
        """The same ranker with its zoo in the order ``models`` (a permutation of :attr:`models_`): each model's
        token and specific projection move with it (a model is scored by its own token alone), so every model's
        score is unchanged. Returns self."""
        self._check_fitted()
        models = [str(m) for m in models]
        if len(set(models)) != len(models) or sorted(models) != sorted(self.models_):
            raise InputError("spider: reorder needs a permutation of the fitted models")
        perm = [self.models_.index(m) for m in models]
        net = self.net_
        net.model_tokens = nn.Parameter(net.model_tokens.detach()[perm].clone())
        old = dict(net.specific_proj.items())
        net.specific_proj = nn.ModuleDict({str(new): old[str(o)] for new, o in enumerate(perm) if str(o) in old})
        self.feature_dims_ = [self.feature_dims_[o] for o in perm]
        self.specific_trained_ = {new for new, o in enumerate(perm) if o in self.specific_trained_}
        self.models_ = models
        return self

    # -- persistence -----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``path/spider.json`` and ``path/spider.pt`` (tensors only); returns the directory."""
        self._check_fitted()
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
        state["token_mean"] = torch.from_numpy(self.token_mean_.copy())
        state["token_std"] = torch.from_numpy(self.token_std_.copy())
        torch.save(state, root / "spider.pt")
        config = {k: v for k, v in self.get_params().items() if k != "threads"}
        meta = {"format": FORMAT, "version": VERSION, "models": self.models_, "feature_dims": self.feature_dims_,
                "specific_trained": sorted(self.specific_trained_),
                "token_dim": int(self.token_mean_.shape[0]), "config": config, "threads": self.threads,
                "report": dict(self.report_)}
        (root / "spider.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return root

    @classmethod
    def load(cls, path: str | Path) -> ModelSpider:
        """Read a directory written by :meth:`save` (``torch.load(weights_only=True)``; no pickle)."""
        root = Path(path)
        meta = read_json_file(root / "spider.json", missing=f"{root}: no spider.json (not a saved Model Spider)")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise InputError(f"{root}: not a saved Model Spider")
        if meta.get("version") != VERSION:
            raise InputError(f"{root}: saved with format version {meta.get('version')}, this is {VERSION}")
        try:
            state = torch.load(root / "spider.pt", weights_only=True, map_location="cpu")
        except FileNotFoundError:
            raise InputError(f"{root}: spider.pt is missing") from None
        spider = cls(**meta["config"], threads=meta.get("threads", 1))
        spider.models_ = [str(m) for m in meta["models"]]
        spider.feature_dims_ = [None if d is None else int(d) for d in meta["feature_dims"]]
        spider.specific_trained_ = {int(m) for m in meta.get("specific_trained", [])}
        spider.token_mean_ = state.pop("token_mean").double().numpy()
        spider.token_std_ = state.pop("token_std").double().numpy()
        net = SpiderScorer(len(spider.models_), int(meta["token_dim"]), spider.feature_dims_, dim=spider.dim,
                           heads=spider.heads, ffn=spider.ffn)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(f"{root}/spider.pt does not match spider.json: {exc}") from None
        net.eval()
        spider.net_ = net
        spider.report_ = meta.get("report", {})
        return spider
