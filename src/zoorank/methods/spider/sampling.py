"""Training tasks of Model Spider sampled from historical data, and their supervision without fine-tuning
(Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023: section 4.3,
appendices A.4 and B.1).

**Sampling (section 4.3, appendix B.1).** A training task mixes 2–4 historical ("source") tasks: for each source
a random subset of its classes (each with at least 2 probe rows), for each class a random subset of at most
``per_class`` of its rows. The classes are relabelled 0..C−1 in (source, class) order. Sizes are kept small on
purpose (the paper samples 100 classes x 50 images from large data sets; the historical tasks here are small
and the supervision is computed for every model of the zoo on every sampled task).

**Task token, equation 5.** The class centres of a frozen general encoder φ over the task's images,
``token_k = (1/|{i: y_i = k}|) Σ_{i: y_i = k} φ(x_i)``, one vector per class: :func:`task_token`.

**PTM-specific task token (section 4.4, appendix A.6).** The same class centres computed on the features of
model m itself, after standardising each feature dimension over the task's rows (zero mean, unit variance
within the task, so the centres measure how far apart the classes are in the model's own space):
:func:`specific_token`. For ``n_specific`` random models of every sampled task they are stored with the task,
for the scorer to learn its per-model projections on.

**Supervision, appendix A.4 (equations 7–8).** Every model is scored on the sampled task by NCE, LEEP, LogME and
H-Score, computed on the model's cached probe features of the sampled rows (source logits → softmax for NCE and
LEEP), and the four score vectors are aggregated by Copeland's method (:func:`zoorank.ranking.copeland`):

    C(i) = Σ_{j≠i} 1[M_ij > 0] + ½·1[M_ij = 0],   M_ij = Σ_metrics sgn(s_i − s_j).

Rules: NCE/LEEP are left out of a sampled task when one of the zoo's models is headless (no source logits);
raw H-Score is exactly C − 1 (uninformative) when a model's feature dimension reaches N − 1, so with
``hscore_form="auto"`` a sampled task whose size N does not exceed the largest feature dimension of the zoo + 1 is
scored with the shrinkage H-Score (Ibrahim et al. 2022, :func:`zoorank.metrics.reg_hscore`) for every model; a
metric that fails on a model (degenerate features) ranks that model last for that metric. Single-metric
supervision (the comparison of table 3) uses one of the columns instead of the aggregate
(:meth:`SupervisionBank.training_tasks` with ``supervision="logme"`` etc.).

**Mixtures of stored tokens** (:func:`token_mixtures`). When only the task tokens of the historical tasks are kept
(a knowledge base holds class centres, not images), the same sampling is done on the class centres: a mixture
concatenates random subsets of 2–4 tasks' class centres, and its supervision is the class-weighted mean of its
sources' supervision vectors (with fine-tuned accuracies as supervision: the accuracy expected of a model on a
task made of those classes, as the ``finetune_acc`` supervision of the benchmark's ablation does by rows).

**Caching (leave-one-target-out).** :class:`SupervisionBank` fixes the plans of ``n_tasks`` samples (their sources,
drawn from the whole task universe with a per-sample seed) once; a sample is materialised — rows drawn, token,
metric scores and specific tokens computed — the first time a fold can see all of its sources, and reused by
every later fold that can. A fold holding out task h uses exactly the samples whose sources exclude h; nothing
of h is ever read for it. The cache is checked against a fingerprint of each source's labels and encoder
features and recomputed when they change. Metric scores are computed model by model (one model's features in
memory at a time) with BLAS limited to one thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from zoorank import ranking as R
from zoorank.errors import InputError
from zoorank.metric_sets import SPIDER_SUPERVISION

__all__ = [
    "ArrayHistory",
    "History",
    "Member",
    "SupervisionBank",
    "TrainingTask",
    "copeland_supervision",
    "model_metric_scores",
    "specific_token",
    "task_token",
    "token_mixtures",
]

#: The four metrics whose Copeland aggregate supervises Model Spider (appendix A.4).
_KNOWN_METRICS = SPIDER_SUPERVISION
_HSCORE_FORMS = ("auto", "raw", "shrinkage")


# --------------------------------------------------------------------------------------------------
# tokens (equation 5)


def _labels(labels, n: int, what: str) -> tuple[np.ndarray, int]:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{what}: labels must be 1-D with one label per row ({n}), got shape {y.shape}")
    if y.size == 0 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise InputError(f"{what}: labels must be non-empty integers 0..C-1")
    y = y.astype(np.int64)
    C = int(y.max()) + 1
    if y.min() < 0 or np.bincount(y, minlength=C).min() == 0:
        raise InputError(f"{what}: labels must be 0..C-1 with every class present")
    return y, C


def _features(features, what: str) -> np.ndarray:
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{what}: features must be a non-empty 2-D array [N, D], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise InputError(f"{what}: features contain NaN or infinite values")
    return X


def _centres(X: np.ndarray, y: np.ndarray, C: int) -> np.ndarray:
    counts = np.bincount(y, minlength=C).astype(np.float64)
    sums = np.zeros((C, X.shape[1]))
    np.add.at(sums, y, X)
    return sums / counts[:, None]


def task_token(features, labels) -> np.ndarray:
    """Equation 5: the class centres [C, G] of a frozen general encoder's features [N, G] (labels 0..C−1)."""
    X = _features(features, "task token")
    y, C = _labels(labels, X.shape[0], "task token")
    return _centres(X, y, C)


def specific_token(features, labels) -> np.ndarray:
    """PTM-specific task token (section 4.4): class centres [C, D] of a model's own features [N, D], each
    dimension standardised over the task's rows first (constant dimensions are only centred)."""
    X = _features(features, "specific token")
    y, C = _labels(labels, X.shape[0], "specific token")
    Xc = X - X.mean(axis=0)
    sd = Xc.std(axis=0)
    sd[sd <= 1e-12 * max(float(sd.max()), 1e-300)] = 1.0
    return _centres(Xc / sd, y, C)


# --------------------------------------------------------------------------------------------------
# training tasks


@dataclass(frozen=True)
class Member:
    """The part of a sampled training task drawn from one historical task."""

    task: str
    classes: np.ndarray  # original class ids in the source task, in new-label order
    rows: np.ndarray  # row indices into the source task's probe set (grouped by class, in class order)
    labels: np.ndarray  # the new labels of those rows


@dataclass(frozen=True)
class TrainingTask:
    """What :meth:`ModelSpider.fit` learns from: a task token, a supervision vector and optional specific tokens.

    ``token`` [C, G]: encoder class centres (equation 5). ``supervision`` [M]: higher = better model (Copeland
    scores by default). ``specific``: model index -> that model's specific token [C, D_m]. ``scores`` [M, K] and
    ``metrics`` (K names): the metric scores the supervision came from (NaN = the metric failed on that model).
    """

    name: str
    token: np.ndarray
    supervision: np.ndarray
    specific: Mapping[int, np.ndarray] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    members: tuple[Member, ...] = ()
    scores: np.ndarray | None = None
    metrics: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return int(self.token.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """The relabelled labels 0..C−1 of the task's rows (members in order)."""
        if not self.members:
            raise InputError(f"training task {self.name!r} has no members (it was not sampled)")
        return np.concatenate([m.labels for m in self.members])


def _column(scores: np.ndarray) -> np.ndarray | None:
    """A metric's score vector with failures (NaN) ranked last; None when it failed everywhere."""
    ok = np.isfinite(scores)
    if not ok.any():
        return None
    out = scores.copy()
    out[~ok] = scores[ok].min() - 1.0
    return out


def copeland_supervision(scores: np.ndarray) -> np.ndarray:
    """Copeland aggregation (equations 7–8) of the metric columns of ``scores`` [M, K] (NaN = failed: ranked
    last for that metric; a column that failed for every model is left out)."""
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] < 2 or S.shape[1] < 1:
        raise InputError(f"copeland supervision: scores must be [M >= 2 models, K >= 1 metrics], got {S.shape}")
    cols = [c for c in (_column(S[:, k]) for k in range(S.shape[1])) if c is not None]
    if not cols:
        raise InputError("copeland supervision: every metric failed on every model")
    return R.copeland(cols)


def model_metric_scores(features, logits, labels, metrics: Sequence[str]) -> np.ndarray:
    """One model's scores [K] on one task for ``metrics`` (names of :mod:`zoorank.metrics`; NCE/LEEP use
    softmax(logits)); a metric that raises :class:`InputError` gives NaN."""
    from zoorank import metrics as M

    probs = None if logits is None else M.softmax(logits)
    out = np.full(len(metrics), np.nan)
    for k, name in enumerate(metrics):
        info = M.info(name)
        if info.needs_source_probs and probs is None:
            continue
        try:
            out[k] = M.compute(name, features if info.needs_features else None, labels,
                               source_probs=probs if info.needs_source_probs else None)
        except InputError:
            out[k] = np.nan
    return out


# --------------------------------------------------------------------------------------------------
# history access


def token_mixtures(tasks: Sequence[TrainingTask], n: int, *, sources: tuple[int, int] = (2, 4),
                   classes_per_source: tuple[int, int] = (2, 6), seed: int = 0) -> list[TrainingTask]:
    """``n`` training tasks mixed from the class centres of ``tasks`` (module doc): each draws 2–4 sources (at most
    ``len(tasks)``), from each a random subset of ``classes_per_source`` of its classes; token = the chosen
    centres in (source, class) order, supervision = the class-weighted mean of the sources' supervision. The
    draws depend only on ``seed`` and the order of ``tasks``."""
    tasks = list(tasks)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"token mixtures: n must be a non-negative integer, got {n!r}")
    if n and len(tasks) < 2:
        raise InputError("token mixtures: need at least 2 tasks to mix")
    shapes = {np.asarray(t.token).shape[1:] for t in tasks if np.asarray(t.token).ndim == 2}
    if any(np.asarray(t.token).ndim != 2 for t in tasks) or len(shapes) > 1:
        raise InputError("token mixtures: every task token must be [classes, dim] with the same dim, got shapes "
                         + ", ".join(str(np.asarray(t.token).shape) for t in tasks))
    sizes = {np.asarray(t.supervision).shape for t in tasks}
    if len(sizes) > 1 or any(len(z) != 1 for z in sizes):
        raise InputError(f"token mixtures: every supervision must be a vector over the same zoo, got shapes {sizes}")
    lo, hi = (int(v) for v in sources)
    c_lo, c_hi = (int(v) for v in classes_per_source)
    if not (1 <= lo <= hi and 1 <= c_lo <= c_hi):
        raise InputError(f"token mixtures: bad ranges sources={sources}, classes_per_source={classes_per_source}")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(min(lo, len(tasks)), min(hi, len(tasks)) + 1))
        picked = sorted(int(v) for v in rng.choice(len(tasks), size=k, replace=False))
        parts, weights = [], []
        for j in picked:
            token = np.asarray(tasks[j].token)
            c = int(rng.integers(min(c_lo, token.shape[0]), min(c_hi, token.shape[0]) + 1))
            rows = np.sort(rng.choice(token.shape[0], size=c, replace=False))
            parts.append(token[rows])
            weights.append(c)
        sup = sum(w * np.asarray(tasks[j].supervision, dtype=np.float64)
                  for w, j in zip(weights, picked, strict=True)) / sum(weights)
        names = tuple(tasks[j].name for j in picked)
        out.append(TrainingTask(f"mix{i}:" + "+".join(names), np.concatenate(parts, axis=0), sup, sources=names))
    return out


class History(Protocol):
    """What the bank reads: the harness's :class:`~zoorank.evaluation.HistoryView` or an :class:`ArrayHistory`.

    ``tasks``: the historical tasks it may read; ``features(model, task)`` -> (features [N, D], source logits
    [N, K] or None); ``labels(task)`` -> [N]; ``encoder_features(task)`` -> (features [N, G], labels [N]).
    """

    tasks: Sequence[str]

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray | None]: ...

    def labels(self, task: str) -> np.ndarray: ...

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]: ...


class ArrayHistory:
    """A :class:`History` over in-memory arrays: ``features[(model, task)] = (X, logits or None)``,
    ``labels[task]``, ``encoder[task] = E`` (rows aligned with the labels)."""

    def __init__(self, features: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray | None]],
                 labels: Mapping[str, np.ndarray], encoder: Mapping[str, np.ndarray]):
        self._features, self._labels, self._encoder = dict(features), dict(labels), dict(encoder)
        missing = sorted(set(self._labels) ^ set(self._encoder))
        if missing:
            raise InputError(f"history: tasks {missing[:5]} need both labels and encoder features")
        self.tasks = tuple(self._labels)
        self.requests: list[tuple[str, str]] = []

    def features(self, model: str, task: str) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            out = self._features[(model, task)]
        except KeyError:
            raise InputError(f"history: no features of model {model!r} on task {task!r}") from None
        self.requests.append((model, task))
        return out

    def labels(self, task: str) -> np.ndarray:
        if task not in self._labels:
            raise InputError(f"history: unknown task {task!r}")
        return np.asarray(self._labels[task])

    def encoder_features(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._encoder[task]), self.labels(task)


# --------------------------------------------------------------------------------------------------
# the bank


@dataclass
class _Sample:
    task: TrainingTask  # supervision = Copeland over all models
    fingerprints: dict[str, str]


def _fingerprint(labels: np.ndarray, encoder: np.ndarray) -> str:
    h = hashlib.sha1(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(encoder, dtype=np.float64).tobytes())
    return h.hexdigest()


class SupervisionBank:
    """Sampled training tasks with their metric scores, shared across the folds of a leave-one-target-out run
    (module doc).

    ``models``: the zoo (supervision vectors follow this order); ``universe``: every task a sample may draw from
    (the plans are fixed from it and the seed, whatever fold asks first). ``n_tasks`` plans; ``sources`` =
    (min, max) historical tasks per sample; ``classes_per_source`` = (min, max) classes drawn from each;
    ``per_class`` = max rows per class; ``n_specific`` models per sample get a stored specific token;
    ``metrics`` aggregate into the supervision; ``hscore_form`` in ``auto`` / ``raw`` / ``shrinkage``. A universe
    smaller than the minimum number of sources gives samples of all its tasks.
    """

    def __init__(self, models: Sequence[str], universe: Iterable[str], *, n_tasks: int = 256,
                 sources: tuple[int, int] = (2, 4), classes_per_source: tuple[int, int] = (2, 6),
                 per_class: int = 8, n_specific: int = 6, metrics: Sequence[str] = SPIDER_SUPERVISION,
                 hscore_form: str = "auto", seed: int = 0):
        self.models = tuple(models)
        self.universe = tuple(sorted(set(universe)))
        if len(self.models) < 2 or len(set(self.models)) != len(self.models):
            raise InputError("supervision bank: needs at least 2 distinct models")
        if not self.universe:
            raise InputError("supervision bank: the task universe is empty")
        lo, hi = (int(v) for v in sources)
        if not 1 <= lo <= hi:
            raise InputError(f"supervision bank: sources must be (min, max) with 1 <= min <= max, got {sources}")
        clo, chi = (int(v) for v in classes_per_source)
        if not 1 <= clo <= chi:
            raise InputError(f"supervision bank: classes_per_source must be (min, max) with 1 <= min <= max, "
                             f"got {classes_per_source}")
        if int(per_class) < 2:
            raise InputError(f"supervision bank: per_class must be >= 2, got {per_class}")
        if int(n_tasks) < 1:
            raise InputError(f"supervision bank: n_tasks must be >= 1, got {n_tasks}")
        unknown = [m for m in metrics if m not in _KNOWN_METRICS]
        if unknown or not metrics:
            raise InputError(f"supervision bank: metrics must be among {', '.join(_KNOWN_METRICS)}, got {metrics}")
        if hscore_form not in _HSCORE_FORMS:
            raise InputError(f"supervision bank: hscore_form must be one of {', '.join(_HSCORE_FORMS)}, "
                             f"got {hscore_form!r}")
        self.n_tasks, self.sources, self.classes_per_source = int(n_tasks), (lo, hi), (clo, chi)
        self.per_class, self.n_specific, self.seed = int(per_class), int(n_specific), int(seed)
        self.metrics, self.hscore_form = tuple(metrics), hscore_form
        self._plans = [self._plan(i) for i in range(self.n_tasks)]
        self._cache: dict[int, _Sample] = {}
        self.feature_dims: dict[str, int] = {}
        self.computed = 0  # samples materialised so far (metrics computed)

    def config(self) -> dict:
        """The parameters that define the bank's samples (a cache key)."""
        return {"models": list(self.models), "universe": list(self.universe), "n_tasks": self.n_tasks,
                "sources": list(self.sources), "classes_per_source": list(self.classes_per_source),
                "per_class": self.per_class, "n_specific": self.n_specific, "metrics": list(self.metrics),
                "hscore_form": self.hscore_form, "seed": self.seed}

    def _plan(self, i: int) -> tuple[str, ...]:
        rng = np.random.default_rng([self.seed, i, 0])
        n = int(rng.integers(self.sources[0], self.sources[1] + 1))
        n = min(n, len(self.universe))
        return tuple(self.universe[j] for j in np.sort(rng.choice(len(self.universe), n, replace=False)))

    def plans(self) -> list[tuple[str, ...]]:
        """The sources of every planned sample (fixed by the universe and the seed)."""
        return list(self._plans)

    # -- materialising -------------------------------------------------------------------------------

    def _members(self, i: int, labels: Mapping[str, np.ndarray]) -> tuple[Member, ...] | None:
        rng = np.random.default_rng([self.seed, i, 1])
        members, next_label = [], 0
        for src in self._plans[i]:
            y = labels[src]
            counts = np.bincount(y)
            eligible = np.flatnonzero(counts >= 2)
            if eligible.size == 0:
                continue
            c = int(rng.integers(self.classes_per_source[0], self.classes_per_source[1] + 1))
            chosen = np.sort(rng.choice(eligible, min(c, eligible.size), replace=False))
            rows, new = [], []
            for k, cls in enumerate(chosen):
                pool = np.flatnonzero(y == cls)
                take = np.sort(rng.choice(pool, min(self.per_class, pool.size), replace=False))
                rows.append(take)
                new.append(np.full(take.size, next_label + k, dtype=np.int64))
            members.append(Member(src, chosen, np.concatenate(rows), np.concatenate(new)))
            next_label += chosen.size
        if next_label < 2:
            return None
        return tuple(members)

    def _hscore_name(self, n_rows: int) -> str:
        if self.hscore_form == "raw":
            return "hscore"
        if self.hscore_form == "shrinkage":
            return "reg_hscore"
        return "hscore" if n_rows > max(self.feature_dims.values()) + 1 else "reg_hscore"

    def _materialise(self, history: History, todo: list[int], data: dict[str, tuple[np.ndarray, np.ndarray, str]],
                     progress: Callable[[str], None] | None) -> None:
        from zoorank.metrics import _blas

        labels = {t: v[0] for t, v in data.items()}
        plans: dict[int, tuple[Member, ...]] = {}
        for i in todo:
            members = self._members(i, labels)
            if members is not None:
                plans[i] = members
        if not plans:
            return
        involved = sorted({m.task for ms in plans.values() for m in ms})
        missing_dims = [m for m in self.models if m not in self.feature_dims]
        for model in missing_dims:
            self.feature_dims[model] = int(np.asarray(history.features(model, involved[0])[0]).shape[1])
        n_rows = {i: sum(m.rows.size for m in ms) for i, ms in plans.items()}
        names = {i: tuple(self._hscore_name(n_rows[i]) if m == "hscore" else m for m in self.metrics) for i in plans}
        scores = {i: np.full((len(self.models), len(self.metrics)), np.nan) for i in plans}
        headless = {i: False for i in plans}
        specific_models = {i: set(np.random.default_rng([self.seed, i, 2]).choice(
            len(self.models), min(self.n_specific, len(self.models)), replace=False).tolist()) for i in plans}
        specific: dict[int, dict[int, np.ndarray]] = {i: {} for i in plans}
        with _blas.single_thread():
            for j, model in enumerate(self.models):
                feats: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
                for t in involved:
                    X, logits = history.features(model, t)
                    X = np.asarray(X)
                    if X.shape[0] != labels[t].shape[0]:
                        raise InputError(f"history: features of {model!r} on {t!r} have {X.shape[0]} rows, "
                                         f"labels have {labels[t].shape[0]}")
                    feats[t] = (X, None if logits is None else np.asarray(logits))
                for i, members in plans.items():
                    X = np.concatenate([feats[m.task][0][m.rows] for m in members]).astype(np.float64)
                    lg = [feats[m.task][1] for m in members]
                    logits = None if any(g is None for g in lg) else np.concatenate(
                        [g[m.rows] for g, m in zip(lg, members, strict=True)])
                    headless[i] |= logits is None
                    y = np.concatenate([m.labels for m in members])
                    scores[i][j] = model_metric_scores(X, logits, y, names[i])
                    if j in specific_models[i]:
                        specific[i][j] = specific_token(X, y).astype(np.float32)
                if progress is not None:
                    progress(model)
        for i, members in plans.items():
            S = scores[i]
            if headless[i]:  # NCE / LEEP need every model's source head
                for k, name in enumerate(names[i]):
                    if name in ("nce", "leep"):
                        S[:, k] = np.nan
            y = np.concatenate([m.labels for m in members])
            E = np.concatenate([data[m.task][1][m.rows] for m in members])
            token = task_token(E, y).astype(np.float32)
            task = TrainingTask(f"sample{i}", token, copeland_supervision(S), specific[i],
                                tuple(m.task for m in members), members, S, names[i])
            self._cache[i] = _Sample(task, {m.task: data[m.task][2] for m in members})
            self.computed += 1

    def training_tasks(self, history: History, *, supervision: str = "copeland", models: Sequence[str] | None = None,
                       progress: Callable[[str], None] | None = None) -> list[TrainingTask]:
        """The sampled tasks whose sources ``history`` can all read (materialising those not cached yet).

        ``supervision``: ``"copeland"`` (appendix A.4) or one metric name of the bank (``"logme"``, ``"hscore"``,
        ...: that metric's scores, for the single-metric comparison of table 3). ``models``: a subset of the
        bank's models (in the given order): supervision is then aggregated over those models only and specific
        tokens are re-indexed to it (incremental-zoo experiments).
        """
        if supervision != "copeland" and supervision not in self.metrics:
            raise InputError(f"supervision must be 'copeland' or one of the bank's metrics "
                             f"({', '.join(self.metrics)}), got {supervision!r}")
        subset = list(range(len(self.models))) if models is None else self._indices(models)
        readable = [t for t in history.tasks if t in self.universe]
        wanted = [i for i, p in enumerate(self._plans) if set(p) <= set(readable)]
        involved = sorted({t for i in wanted for t in self._plans[i]})
        data: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
        for t in involved:
            y = np.asarray(history.labels(t))
            E, ey = history.encoder_features(t)
            E, ey = np.asarray(E), np.asarray(ey)
            if E.ndim != 2 or E.shape[0] != y.shape[0] or not np.array_equal(ey, y):
                raise InputError(f"history: the encoder features of task {t!r} are not aligned with its labels")
            data[t] = (y.astype(np.int64), E, _fingerprint(y, E))
        for i in wanted:
            s = self._cache.get(i)
            if s is not None and any(data[t][2] != fp for t, fp in s.fingerprints.items()):
                del self._cache[i]  # its sources changed since it was computed
        todo = [i for i in wanted if i not in self._cache]
        if todo:
            self._materialise(history, todo, data, progress)
        return [self._view(self._cache[i].task, supervision, subset) for i in wanted if i in self._cache]

    def _indices(self, models: Sequence[str]) -> list[int]:
        index = {m: j for j, m in enumerate(self.models)}
        unknown = [m for m in models if m not in index]
        if unknown:
            raise InputError(f"models not in the bank: {', '.join(map(str, unknown[:5]))}")
        if len(set(models)) != len(models) or len(models) < 2:
            raise InputError("models must be at least 2 distinct names of the bank")
        return [index[m] for m in models]

    def _view(self, task: TrainingTask, supervision: str, subset: list[int]) -> TrainingTask:
        S = task.scores[subset]  # type: ignore[index]
        if supervision == "copeland":
            sup = copeland_supervision(S)
        else:
            col = _column(S[:, self.metrics.index(supervision)])
            sup = np.zeros(len(subset)) if col is None else col
        where = {j: k for k, j in enumerate(subset)}
        spec = {where[j]: v for j, v in task.specific.items() if j in where}
        return replace(task, supervision=sup, specific=spec, scores=S)
