"""The learning loop: fit the pipeline's rankers from the knowledge base, and record what a ranking measured.

:func:`fit_rankers` fits each ranker whose data suffice (the reason is kept in :attr:`Rankers.skipped` otherwise),
from what :mod:`zoorank.methods.kb_adapter` reads of the knowledge base (its module doc says what each ranker
needs): Fennec from :func:`~zoorank.methods.kb_adapter.fennec_history` of the first matrix of
:func:`~zoorank.methods.kb_adapter.fennec_kinds` that covers the whole zoo; Model Spider from
:func:`~zoorank.methods.kb_adapter.spider_tasks` (at least 2) — as the paper samples its training tasks from
mixtures of class subsets of 2–4 historical tasks (appendix B.1), ``mixtures`` more tasks are drawn from the
stored class centres of the truth-supervised tasks, each supervised by the class-weighted mean accuracy of its
sources (:func:`zoorank.methods.spider.token_mixtures`; the knowledge base keeps no images, so metrics cannot be
recomputed on a mixture and metric-supervised tasks are not mixed); MetaRank from
:func:`~zoorank.methods.kb_adapter.metarank_records` (at least 2 datasets and 2 metrics).

:func:`record_ranking` writes into the knowledge base what ``zoorank rank`` measured on a new task (its proxy
vector, task token, description, counts and the metric scores of the models that ran), so that once the user
records a fine-tuned accuracy (``zoorank kb record MODEL TASK --kind finetune_acc --value V``), the next
``zoorank fit`` learns from the task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file
from zoorank.methods.kb_adapter import (
    PROXY_KEY,
    TOKEN_KEY,
    belief_history,
    fennec_history,
    fennec_kinds,
    metarank_records,
    spider_tasks,
)
from zoorank.metric_sets import RECORDED

if TYPE_CHECKING:
    from zoorank.methods.belief import BeliefRanker
    from zoorank.methods.fennec.model import Fennec
    from zoorank.methods.metarank.model import MetaRank
    from zoorank.methods.spider.model import ModelSpider

__all__ = [
    "ENCODER_KEY",
    "PROXY_KEY",
    "TOKEN_KEY",
    "Rankers",
    "fennec_kinds",
    "fit_rankers",
    "measured_scores",
    "metarank_records",
    "rankers_for_zoo",
    "record_evidence",
    "record_ranking",
    "record_task",
    "recorded_encoder",
    "spider_tasks",
]

MANIFEST = "rankers.json"


@dataclass
class Rankers:
    """The fitted rankers of one zoo (``models``, in the rankers' order), any of which may be None."""

    models: list[str]
    fennec: Fennec | None = None
    spider: ModelSpider | None = None
    metarank: MetaRank | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    belief: BeliefRanker | None = None

    def save(self, directory: str | Path) -> Path:
        """Write ``rankers.json`` and one file per fitted ranker into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, target in (("fennec", "fennec.npz"), ("spider", "spider"), ("metarank", "metarank.npz"),
                             ("belief", "belief.npz")):
            obj = getattr(self, name)
            if obj is not None:
                path = obj.save(d / target)
                files[name] = Path(path).name
        manifest = {"zoorank_rankers": 1, "models": self.models, "files": files, "skipped": self.skipped,
                    "info": self.info, "sha256": _checksums(d, files.values())}
        tmp = d / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.replace(d / MANIFEST)  # the manifest last, atomically: a fit interrupted before it leaves the old one
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Rankers:
        from zoorank.methods.belief import BeliefRanker
        from zoorank.methods.fennec.model import Fennec
        from zoorank.methods.metarank import MetaRank
        from zoorank.methods.spider import ModelSpider

        d = Path(directory)
        path = d / MANIFEST
        try:
            manifest = read_json_file(path, missing=f"{d} holds no fitted rankers ({MANIFEST} is missing): run "
                                                    f"`zoorank fit` first")
        except InputError as exc:
            if not path.exists():
                raise
            raise InputError(f"{exc}: run `zoorank fit` again") from None
        if not isinstance(manifest, dict) or manifest.get("zoorank_rankers") != 1:
            raise InputError(f"{path}: not a zoorank rankers manifest")
        loaders = {"fennec": Fennec.load, "spider": ModelSpider.load, "metarank": MetaRank.load,
                   "belief": BeliefRanker.load}
        files = manifest.get("files", {})
        if not isinstance(manifest.get("models"), list) or not isinstance(files, dict) or set(files) - set(loaders):
            raise InputError(f"{path}: the manifest lacks its model list or names unknown rankers")
        recorded = manifest.get("sha256")
        if recorded is not None:  # manifests written before checksums were kept are read as they are
            actual = _checksums(d, files.values())
            for rel, sha in sorted(dict(recorded).items()):
                if actual.get(rel) is None:
                    raise InputError(f"{d / rel} is missing (named by {path}): run `zoorank fit` again")
                if actual[rel] != sha:
                    raise InputError(f"{d / rel} is damaged (its SHA-256 differs from the one in {path}): run "
                                     f"`zoorank fit` again")
        parts = {}
        for name, f in files.items():
            if not (d / f).exists():
                raise InputError(f"{d / f} is missing (named by {path}): run `zoorank fit` again")
            try:
                parts[name] = loaders[name](d / f)
            except InputError as exc:
                raise InputError(f"{exc} (a damaged fitted ranker: run `zoorank fit` again)") from None
            except Exception as exc:  # a file the loader cannot parse: damaged, whatever its parser says
                raise InputError(f"{d / f} is damaged ({type(exc).__name__}): run `zoorank fit` again") from None
        return cls(list(manifest["models"]), parts.get("fennec"), parts.get("spider"), parts.get("metarank"),
                   dict(manifest.get("skipped", {})), dict(manifest.get("info", {})), parts.get("belief"))


def _checksums(directory: Path, entries) -> dict[str, str]:
    """SHA-256 of every file there is of the fitted rankers (a ranker is one file or a folder of files), by path
    relative to ``directory``."""
    from zoorank.zoo.identity import file_digest

    out: dict[str, str] = {}
    for entry in entries:
        root = directory / entry
        for f in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]:
            if f.is_file():
                out[f.relative_to(directory).as_posix()] = file_digest(f)
    return out


#: The task meta key of the encoder that made a task's proxy vector and task token.
ENCODER_KEY = "encoder"

RANKER_NAMES = ("belief", "fennec", "spider", "metarank")
#: Training tasks replayed when Model Spider's zoo grows (``zoorank fit --incremental``).
EXEMPLARS = 32


def fit_rankers(kb: Any, *, fennec: dict | None = None, spider: dict | None = None,
                metarank: dict | None = None, mixtures: int = 256, progress: Any = None,
                only: Sequence[str] | None = None, previous: Rankers | None = None,
                exemplars: int | None = EXEMPLARS) -> Rankers:
    """Fit the belief ranker, Fennec, Model Spider and MetaRank from the knowledge base (module doc); ``fennec`` /
    ``spider`` / ``metarank``: keyword arguments of each ranker; ``mixtures``: Spider's extra training tasks mixed
    from the truth-supervised tasks' class centres; ``only``: fit just these rankers (default all of
    :data:`RANKER_NAMES`). The zoo is every model of the knowledge base.

    ``previous``: rankers fitted before on part of this zoo. Their Spider is then grown instead of refitted
    (Model Spider's incremental zoo, appendix C.4): the tokens of the models it knows stay as they are (their
    scores do not change) and only the new models' tokens are trained, on the knowledge base's tasks supervised
    over the enlarged zoo, replaying the ``exemplars`` of them whose supervision of the known models is nearest
    the mean (:meth:`~zoorank.methods.spider.ModelSpider.add_models`). The closed-form rankers are refitted."""
    wanted = set(RANKER_NAMES if only is None else only)
    if wanted - set(RANKER_NAMES):
        raise InputError(f"unknown ranker(s) {', '.join(sorted(wanted - set(RANKER_NAMES)))}; the rankers are "
                         f"{', '.join(RANKER_NAMES)}")
    say = progress or (lambda _msg: None)
    models = sorted(m.name for m in kb.models())
    if len(models) < 2:
        raise InputError(f"the knowledge base has {len(models)} model(s); record results of at least 2 first")
    out = Rankers(models, info={"fitted_at": time.strftime("%Y-%m-%d %H:%M:%S"), "n_tasks": len(kb.tasks())})
    encoder = recorded_encoder(kb)
    if encoder is not None:
        out.info["encoder"] = encoder
    if "belief" in wanted:
        _fit_belief(kb, models, out, say)
    if "fennec" in wanted:
        _fit_fennec(kb, models, out, say, fennec)
    if "spider" in wanted:
        grown = previous is not None and previous.spider is not None and \
            set(previous.spider.models_) < set(models)
        if grown:
            _grow_spider(kb, models, out, say, previous.spider, exemplars)
        else:
            _fit_spider(kb, models, out, say, spider, mixtures)
    if "metarank" in wanted:
        _fit_metarank(kb, models, out, say, metarank)
    return out


def _fit_belief(kb: Any, models: list[str], out: Rankers, say: Any) -> None:
    say("belief")
    try:
        from zoorank.methods.belief import BeliefRanker

        t0 = time.perf_counter()
        out.belief = BeliefRanker().fit(**belief_history(kb, models))
        out.info["belief"] = {"tasks": len(out.belief.tasks_), "bandwidth": out.belief.bandwidth_,
                              "links": {f"{f:g}": round(link.rho, 4) for f, link in out.belief.links_.items()},
                              "cold_placement": "population" if out.belief.placement_ is None
                              or not out.belief.placement_.informative
                              else f"size and architecture (bandwidth {out.belief.placement_.bandwidth_:g})",
                              "seconds": time.perf_counter() - t0}
    except InputError as exc:
        out.skipped["belief"] = str(exc)


def _fit_fennec(kb: Any, models: list[str], out: Rankers, say: Any, fennec: dict | None) -> None:
    from zoorank.methods.fennec.model import Fennec

    say("Fennec")
    problems = []
    for kind in fennec_kinds(kb):
        try:
            t0 = time.perf_counter()
            f = Fennec(**(fennec or {})).fit(**fennec_history(kb, kind))
            if list(f.models_) != models:
                raise InputError(f"fennec: the {kind!r} matrix covers {len(f.models_)} of the {len(models)} models")
        except InputError as exc:
            problems.append(str(exc))
            continue
        out.fennec = f
        out.info["fennec"] = {"kind": kind, "tasks": len(f.tasks_), "seconds": time.perf_counter() - t0}
        break
    if out.fennec is None:
        out.skipped["fennec"] = "; ".join(problems) or "no metric:fda or finetune_acc results"


def _fit_spider(kb: Any, models: list[str], out: Rankers, say: Any, spider: dict | None, mixtures: int) -> None:
    from zoorank.methods.spider import ModelSpider, token_mixtures

    say("Model Spider")
    tasks, n_truth = spider_tasks(kb, models, with_counts=True)
    if len(tasks) < 2:
        out.skipped["spider"] = (f"{len(tasks)} task(s) with a task token and a supervision; at least 2 are "
                                 f"needed (rank tasks with zoorank rank --kb, then record results)")
    else:
        try:
            t0 = time.perf_counter()
            mixed = token_mixtures(tasks[:n_truth], mixtures) if n_truth >= 2 else []
            out.spider = ModelSpider(**(spider or {})).fit(tasks + mixed, models=models)
            out.info["spider"] = {"tasks": len(tasks), "mixtures": len(mixed), "seconds": time.perf_counter() - t0}
        except InputError as exc:
            out.skipped["spider"] = str(exc)


def _grow_spider(kb: Any, models: list[str], out: Rankers, say: Any, spider: Any, exemplars: int | None) -> None:
    import copy

    old = list(spider.models_)
    new = [m for m in models if m not in set(old)]
    say(f"Model Spider: {len(new)} new model(s), the {len(old)} others frozen")
    tasks = spider_tasks(kb, old + new)
    if not tasks:
        out.skipped["spider"] = (f"no task of the knowledge base supervises the {len(new)} new model(s) "
                                 f"({', '.join(new[:3])}) together with the known ones: record their results, or "
                                 "refit from scratch (zoorank fit without --incremental)")
        return
    try:
        t0 = time.perf_counter()
        grown = copy.deepcopy(spider).add_models(new, tasks, exemplars=None if exemplars is None
                                                 else min(int(exemplars), len(tasks)))
        out.spider = grown.reorder(models)
        out.info["spider"] = {"tasks": grown.report_["incremental"]["n_tasks"], "added": len(new),
                              "incremental": True, "seconds": time.perf_counter() - t0}
    except InputError as exc:
        out.skipped["spider"] = str(exc)


def _fit_metarank(kb: Any, models: list[str], out: Rankers, say: Any, metarank: dict | None) -> None:
    from zoorank.methods.metarank import MetaRank

    say("MetaRank")
    records = metarank_records(kb, models)
    n_data, n_metrics = len({r.dataset for r in records}), len({r.metric for r in records})
    if n_data < 2 or n_metrics < 2:
        out.skipped["metarank"] = (f"{n_data} described task(s) with fine-tuned accuracies and {n_metrics} "
                                   f"metric(s) recorded on them; at least 2 of each are needed")
    else:
        try:
            t0 = time.perf_counter()
            out.metarank = MetaRank(**(metarank or {})).fit(records)
            out.info["metarank"] = {"datasets": n_data, "metrics": n_metrics, "seconds": time.perf_counter() - t0}
        except InputError as exc:
            out.skipped["metarank"] = str(exc)


def record_task(kb: Any, task: str, *, n_classes: int | None, n_samples: int, proxy: np.ndarray | None = None,
                token: np.ndarray | None = None, description: str | None = None,
                encoder: Mapping[str, Any] | None = None) -> None:
    """Add (or update) a task with what the rankers are fitted from: counts, card, proxy vector, task token, and
    the encoder that made the last two (``encoder``: identity, name, spec)."""
    meta: dict[str, Any] = {}
    if encoder is not None:
        meta[ENCODER_KEY] = dict(encoder)
    if proxy is not None:
        meta[PROXY_KEY] = np.asarray(proxy, dtype=float).round(6).tolist()
    if token is not None:
        meta[TOKEN_KEY] = np.asarray(token, dtype=float).round(6).tolist()
    kb.add_task(task, n_classes=n_classes, n_samples=n_samples, description=description or None, meta=meta)


def record_evidence(kb: Any, task: str, *, n_classes: int | None, n_samples: int, proxy: np.ndarray | None = None,
                    token: np.ndarray | None = None, description: str | None = None,
                    models: Mapping[str, Mapping[str, Any]] | None = None,
                    scores: Mapping[str, Mapping[str, float]] | None = None,
                    truth: Mapping[str, float] | None = None, source: str = "zoorank rank",
                    encoder: Mapping[str, Any] | None = None,
                    centres: Mapping[str, np.ndarray] | None = None) -> int:
    """Record a task and what is known of it: the one way a task enters the knowledge base, for ``zoorank rank
    --kb`` and for the history of a benchmark alike. ``models``: what is known of the models ({name: {"params",
    "layers", "architecture"}}: Fennec's meta features); ``scores``: metric scores ({metric: {model: score}},
    non-finite ones are dropped); ``truth``: fine-tuned accuracies ({model: accuracy}); ``centres``: the class
    centres of each model's own features on the task ({model: [C, D]}, Spider's PTM-specific tokens). Returns the
    number of metric scores written."""
    for name, known in (models or {}).items():
        kb.add_model(name, **{k: v for k, v in known.items() if k in ("params", "layers", "architecture")})
    record_task(kb, task, n_classes=n_classes, n_samples=n_samples, proxy=proxy, token=token,
                description=description, encoder=encoder)
    rows = [{"model": m, "task": task, "kind": f"metric:{metric}", "value": float(v)}
            for metric, per in (scores or {}).items() for m, v in per.items() if np.isfinite(v)]
    n_scores = len(rows)
    rows += [{"model": m, "task": task, "kind": "finetune_acc", "value": float(v)}
             for m, v in (truth or {}).items() if np.isfinite(v)]
    if rows:
        kb.record_many(rows, provenance={"source": source})
    for m, c in (centres or {}).items():
        kb.put_centres(m, task, c, provenance={"source": source})
    return n_scores


def measured_scores(task: Any, models: Sequence[str], labels: np.ndarray | None,
                    metrics: Sequence[str] = RECORDED) -> dict[str, dict[str, float]]:
    """The scores of ``metrics`` on the features of ``models`` (``task.features(model)``: a
    :class:`~zoorank.pipeline.TaskSource`, whose passes the fine stage already made), {metric: {model: score}};
    a metric that cannot run on them is left out."""
    from zoorank import metrics as M

    if not models:
        return {}
    pairs = [task.features(m) for m in models]
    out: dict[str, dict[str, float]] = {}
    for metric in dict.fromkeys(metrics):
        try:
            s = M.score_zoo(metric, [f for f, _ in pairs], [lg for _, lg in pairs], labels, names=list(models))
        except M.MetricUnavailable:
            continue
        out[metric] = dict(zip(models, map(float, s), strict=True))
    return out


def record_ranking(kb: Any, task_name: str, result: Any, task: Any, *, n_classes: int | None, n_samples: int,
                   use_labels: bool = True, models: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Record what ``zoorank rank`` measured on a new task (module doc): its proxy vector, its task token (with
    labels), its dataset card and counts, the :data:`~zoorank.metric_sets.RECORDED` metric scores of the
    models that ran and, with labels, the class centres of their features (Spider's specific tokens), all computed
    on the features the fine stage extracted: no extra forward pass. Returns the number of scores written."""
    from zoorank.methods.fennec.model import summarize_proxy
    from zoorank.methods.spider import task_token

    labels = task.labels() if use_labels else None
    proxy = summarize_proxy(task.proxy_features())  # the encoders' passes come from the feature cache
    token = task_token(task.encoder_features(), labels) if labels is not None else None
    ran = [result.models[i] for i in result.top]
    fraction = float(getattr(result, "fraction", 1.0))
    if fraction < 1.0:  # the belief job's probe stage: its stacked scores on part of the probe, no extra pass
        from zoorank.methods.belief import probe_kind

        measured = {probe_kind(metric, fraction)[len("metric:"):]: {result.models[i]: v for i, v in per.items()}
                    for metric, per in result.fine.items()}
    else:
        measured = measured_scores(task, ran, labels)
    if result.metric is not None and "metric" in result.fine:
        measured.setdefault(result.metric, {}).update(
            {result.models[i]: float(v) for i, v in result.fine.get("metric", {}).items()})
    centres = None
    if labels is not None and ran:
        from zoorank.methods.spider import specific_token

        rows = None
        if fraction < 1.0:
            from zoorank.data import fraction_rows

            rows = fraction_rows(np.asarray(labels), fraction)
        y = np.asarray(labels) if rows is None else np.asarray(labels)[rows]
        centres = {m: specific_token(np.asarray((task.features(m) if rows is None else task.features(m, rows))[0]), y)
                   for m in ran}
    encoder = task.encoder_record() if hasattr(task, "encoder_record") else None
    return record_evidence(kb, task_name, n_classes=n_classes, n_samples=n_samples, proxy=proxy, token=token,
                           description=task.card(), models=models, scores=measured, encoder=encoder,
                           centres=centres)


def recorded_encoder(kb: Any) -> dict[str, Any] | None:
    """The encoder the knowledge base's proxy vectors and task tokens were made with (None: not recorded, the
    default one); InputError when its tasks were recorded with different encoders."""
    seen: dict[str, tuple[dict, list[str]]] = {}
    for t in kb.tasks():
        enc = t.meta.get(ENCODER_KEY)
        if isinstance(enc, dict) and enc.get("identity"):
            seen.setdefault(enc["identity"], (enc, []))[1].append(t.name)
    if len(seen) > 1:
        parts = "; ".join(f"{enc.get('name', ident[:8])} on {', '.join(names[:3])}"
                          for ident, (enc, names) in seen.items())
        raise InputError(f"the knowledge base's tasks were recorded with {len(seen)} different encoders ({parts}): "
                         "their proxy vectors and task tokens are not comparable; rank those tasks again with one "
                         "--encoder (zoorank rank --kb) before zoorank fit")
    return next(iter(seen.values()))[0] if seen else None


def out_of_the_box_metarank() -> tuple[MetaRank | None, str]:
    """The MetaRank shipped in the package (:mod:`zoorank.methods.metarank.shipped`) for a user with no fitted
    rankers, and a note saying how the metric is chosen (the shipped order when that MetaRank cannot load)."""
    from zoorank.methods.metarank.shipped import shipped_metarank

    try:
        return shipped_metarank(), ("the metric is chosen by the MetaRank shipped with zoorank (fitted on ZooBench "
                                    "and the published tables)")
    except InputError as exc:
        return None, f"{exc}; the metric follows the shipped default order"


def rankers_for_zoo(directory: str | Path | None, zoo: Sequence[str]) -> tuple[Rankers, list[str], str | None]:
    """The fitted rankers of ``directory`` (None: :func:`zoorank.paths.rankers_dir`) for a zoo of model names, the
    zoo in the rankers' order, and a note. With no directory given and nothing fitted at the default place, the
    rankers are empty and every model runs (the note says so). With a belief ranker the zoo is open (any subset or
    superset of the fitted models; the ones it does not know follow, cold, in the zoo's order); rankers fitted
    before it (Fennec and Spider alone) raise InputError when they do not know a model of the zoo, or were fitted
    on a model the zoo lacks."""
    from zoorank import paths

    where = Path(directory) if directory is not None else paths.rankers_dir()
    try:
        rankers = Rankers.load(where)
    except InputError as exc:
        if directory is not None:
            raise
        meta, how = out_of_the_box_metarank()
        return Rankers(sorted(zoo), metarank=meta), list(zoo), f"{exc}: without rankers every model runs; {how}"
    if not (rankers.fennec or rankers.spider or rankers.belief):
        return rankers, list(zoo), None
    if rankers.belief is not None:  # open zoos: the fitted models of the zoo in the rankers' order, then cold ones
        fitted = set(rankers.models)
        return rankers, [m for m in rankers.models if m in set(zoo)] + [m for m in zoo if m not in fitted], None
    unknown = sorted(set(zoo) - set(rankers.models))
    if unknown:
        raise InputError(f"the rankers in {where} do not know {len(unknown)} model(s) of the zoo "
                         f"({', '.join(unknown[:3])}) and have no belief ranker, which takes open zoos: run "
                         "zoorank fit")
    missing = sorted(set(rankers.models) - set(zoo))
    if missing:
        raise InputError(f"the zoo lacks {len(missing)} model(s) the rankers were fitted on "
                         f"({', '.join(missing[:3])}); rank with the zoo they were fitted on")
    return rankers, list(rankers.models), None
