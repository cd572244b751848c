"""``zoorank bench build``: pre-train the zoo, fine-tune every (model, target) pair, write the benchmark.

The build is a list of jobs run by a small pool of worker processes (one thread each by default, torch and BLAS alike):

* ``pretrain`` (one per zoo model but the untouched ImageNet MobileNetV2): train the model on its source
  domain (:data:`SOURCE_IMAGES` images, the recipe of :data:`~zoorank.datasets.zoobench.zoo_design.PRETRAIN_RECIPES`)
  and write its weights in fp16 to ``weights/<model>.safetensors``;
* ``finetune`` (one per (model, target task), once the model's weights exist): the fine-tuning ground truth
  (:func:`~zoorank.datasets.zoobench.training.finetune` with the fixed recipe of
  :data:`~zoorank.datasets.zoobench.zoo_design.FINETUNE_RECIPE`, starting from the *committed fp16 weights*, so the
  truth belongs to exactly the model that is evaluated) and the linear-probe accuracy on frozen features.

**Resuming.** Every finished job appends one JSON line to ``build_log.jsonl`` (written by the parent process
only, flushed and fsynced); a restarted build skips finished jobs, and an interrupted job continues after its
last finished epoch from the checkpoints in the work directory (see :mod:`~zoorank.datasets.zoobench.training`).
The log's first line holds the build's configuration; a log written with another configuration is refused.
When every job is done, ``ground_truth.csv`` (``model,task,finetune_acc,linear_probe_acc``) is written;
``zoo.csv`` and ``tasks.csv`` are written at every start.

**Threads.** A job runs inside :func:`job_threads`: torch *and* the BLAS / OpenMP pools numpy and
scikit-learn use (the linear probe) are capped at the job's ``threads``. Before, only torch was capped, and
OpenBLAS in each worker started one thread per core: two workers' probes spin-waited against each other,
which burnt CPU time without changing a result.

**Determinism.** All seeds are fixed (model initialisation, shuffling and augmentation, validation splits); the
results are bit-identical on a rerun with the same number of threads per worker on the same machine.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from zoorank import paths
from zoorank.datasets.zoobench import zoo_design as Z
from zoorank.errors import InputError

#: The 8 source domains of the zoo, in the dealing order of :func:`zoo_design.zoo` (glyphs, natural-like and
#: synthetic data alternate). All render with the DejaVu fonts every machine here has.
SOURCE_DOMAINS: tuple[str, ...] = (
    "latin", "textures", "arabic", "handwritten_digits", "shapes", "math_symbols", "dot_counts", "greek_cyrillic",
)

#: The benchmark's 19 target tasks (those that need no Noto font; the 3 Noto tasks are optional extras).
TARGET_TASKS: tuple[str, ...] = (
    "printed_digits", "latin_accented", "greek_capitals", "armenian_capitals", "georgian_letters",
    "hebrew_letters", "canadian_syllabics", "braille_cells", "misc_symbols", "arrow_directions",
    "letters_on_texture", "handwritten_digits", "handwritten_parity", "shape_outlines", "shape_colour",
    "object_counts", "grating_orientation", "blob_scale", "mirror_symmetry",
)

#: Images per source domain for pre-training (``SOURCE_IMAGES // n_classes`` per class).
SOURCE_IMAGES = 6000
#: The seed of every training run (initialisation of scratch models and new heads, order, augmentation).
SEED = 0
#: Seed of the validation split carved from a target's train split for the LR choice.
VAL_SEED = 0

LOG_NAME = "build_log.jsonl"
GROUND_TRUTH_COLUMNS = ("model", "task", "finetune_acc", "linear_probe_acc")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """What the build trains: changing any field makes a different benchmark (and a new log)."""

    source_domains: tuple[str, ...] = SOURCE_DOMAINS
    tasks: tuple[str, ...] = TARGET_TASKS
    models: tuple[str, ...] | None = None  # None: the whole zoo
    source_images: int = SOURCE_IMAGES
    pretrain_epochs: dict[str, int] | None = None  # per init ("scratch"/"imagenet"); None: the zoo's recipes
    finetune_epochs: int | None = None  # None: FINETUNE_RECIPE["epochs"]
    lr_grid: tuple[float, ...] | None = None
    seed: int = SEED  # of the fine-tuning runs (head initialisation, order, augmentation); another seed: the noise

    def zoo(self) -> list[Z.ZooModel]:
        models = Z.zoo(self.source_domains)
        if self.models is None:
            return models
        known = {m.name: m for m in models}
        unknown = [n for n in self.models if n not in known]
        if unknown:
            raise InputError(f"unknown zoo model(s): {', '.join(unknown)}; see benchmarks/zoobench/zoo.csv")
        return [m for m in models if m.name in set(self.models)]

    def pretrain_recipe(self, model: Z.ZooModel) -> dict[str, Any]:
        recipe = model.recipe
        if self.pretrain_epochs is not None and model.init in self.pretrain_epochs:
            recipe["epochs"] = int(self.pretrain_epochs[model.init])
        return recipe

    def finetune_recipe(self) -> dict[str, Any]:
        recipe = dict(Z.FINETUNE_RECIPE)
        if self.finetune_epochs is not None:
            recipe["epochs"] = int(self.finetune_epochs)
        if self.lr_grid is not None:
            recipe["lr_grid"] = tuple(self.lr_grid)
        return recipe

    def to_json(self) -> dict[str, Any]:
        return {"source_domains": list(self.source_domains), "tasks": list(self.tasks),
                "models": None if self.models is None else list(self.models), "source_images": self.source_images,
                "pretrain": {init: self.pretrain_recipe(Z.ZooModel("x", Z.MOBILENET_V2, "x", init))
                             for init in ("scratch", "imagenet")},
                "finetune": {k: list(v) if isinstance(v, tuple) else v for k, v in self.finetune_recipe().items()},
                "seed": self.seed, "val_seed": VAL_SEED}

    def check(self) -> None:
        from zoorank.datasets.zoobench import domains as D
        from zoorank.datasets.zoobench import tasks as T

        for name in self.source_domains:
            D.get_domain(name).require()
        for name in self.tasks:
            T.get_task(name).require()
        if len(set(self.tasks)) != len(self.tasks) or not self.tasks:
            raise InputError(f"tasks must be distinct and non-empty, got {list(self.tasks)}")
        if self.source_images < 100:
            raise InputError(f"source_images must be >= 100, got {self.source_images}")


@dataclasses.dataclass(frozen=True)
class Job:
    kind: str  # "pretrain" or "finetune"
    model: str
    task: str | None
    estimate: float  # single-core seconds, from the zoo design's measured costs

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.model}" + (f":{self.task}" if self.task else "")


def weights_path(root: Path, model: str) -> Path:
    return root / "weights" / f"{model}.safetensors"


def plan(config: BuildConfig) -> list[Job]:
    """Every job of the build (pre-training first, then fine-tuning task by task), each with its single-core
    cost estimate."""
    from zoorank.datasets.zoobench import tasks as T

    models = config.zoo()
    sizes = {d: config.source_images for d in config.source_domains}
    ft_epochs = config.finetune_recipe()["epochs"] / Z.FINETUNE_RECIPE["epochs"]
    jobs = []
    for m in models:
        if m.needs_pretraining:
            ratio = config.pretrain_recipe(m)["epochs"] / m.recipe["epochs"]
            jobs.append(Job("pretrain", m.name, None, ratio * Z.estimate_build_seconds([m], sizes, [])["pretrain"]))
    train_sizes = {t: len(T.load(t).train) for t in config.tasks}
    for t in config.tasks:  # task-major: the ground truth fills up one complete task at a time
        for m in models:
            est = Z.estimate_build_seconds([m], sizes, [train_sizes[t]])["finetune"]
            jobs.append(Job("finetune", m.name, t, ft_epochs * est))
    return jobs


# -- the jobs (run in worker processes) ---------------------------------------------------------------


def _model_of(config: BuildConfig, name: str) -> Z.ZooModel:
    return next(m for m in Z.zoo(config.source_domains) if m.name == name)


def source_data(domain: str, images: int) -> tuple[np.ndarray, np.ndarray]:
    """A source domain's pre-training set: ``images // n_classes`` images per class, seed 0."""
    from zoorank.datasets.zoobench import domains as D

    d = D.get_domain(domain)
    imgs, labels, _ = d.make(seed=SEED, per_class=max(1, images // d.n_classes))
    return imgs, labels


def model_state(root: Path, model: Z.ZooModel, sha256: str | None = None) -> dict:
    """The evaluated weights of a zoo model: the ImageNet MobileNetV2 as shipped, else the committed fp16 file."""
    from zoorank.datasets.zoobench import training as TR

    if not model.needs_pretraining:
        return TR.build_model(model.arch, 1000).state_dict()
    return TR.load_fp16(weights_path(root, model.name), sha256)


@contextlib.contextmanager
def job_threads(threads: int) -> Iterator[None]:
    """Cap torch's intra-op threads and every native thread pool (BLAS, OpenMP) at ``threads`` (restored after)."""
    from threadpoolctl import threadpool_limits

    from zoorank.methods._torch import torch_threads

    with threadpool_limits(limits=threads), torch_threads(threads):
        yield


def run_pretrain(config: BuildConfig, name: str, root: str, work: str, threads: int) -> dict[str, Any]:
    with job_threads(threads):
        return _pretrain(config, name, root, work, threads)


def _pretrain(config: BuildConfig, name: str, root: str, work: str, threads: int) -> dict[str, Any]:
    from zoorank.datasets.zoobench import training as TR

    t0, c0 = time.perf_counter(), time.process_time()
    model = _model_of(config, name)
    images, labels = source_data(model.source_domain, config.source_images)
    recipe = config.pretrain_recipe(model)
    last: dict[str, Any] = {}
    state = TR.pretrain(model.arch, images, labels, seed=SEED, checkpoint=Path(work) / "pretrain" / f"{name}.pt",
                        num_threads=threads, progress=last.update, **recipe)
    path = weights_path(Path(root), name)
    sha = TR.save_fp16(state, path)
    params = TR.count_params(TR.load_state(model.arch, state))
    return {"kind": "pretrain", "model": name, "sha256": sha, "params": params, "source_images": len(labels),
            "source_classes": int(labels.max()) + 1, "final_train_acc": last.get("train_acc"),
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}


def run_finetune(config: BuildConfig, name: str, task: str, root: str, work: str, threads: int,
                 sha256: str | None, linear_probe: bool = True) -> dict[str, Any]:
    with job_threads(threads):
        return _finetune(config, name, task, root, work, threads, sha256, linear_probe)


def _finetune(config: BuildConfig, name: str, task: str, root: str, work: str, threads: int,
              sha256: str | None, linear_probe: bool = True) -> dict[str, Any]:
    from zoorank.datasets.zoobench import tasks as T
    from zoorank.datasets.zoobench import training as TR

    t0, c0 = time.perf_counter(), time.process_time()
    model = _model_of(config, name)
    state = model_state(Path(root), model, sha256)
    data = T.load(task)
    x_train, y_train = data.images[data.train], data.labels[data.train]
    fit_idx, val_idx = TR.validation_split(y_train, Z.FINETUNE_RECIPE["val_fraction"], seed=VAL_SEED)
    recipe = config.finetune_recipe()
    out = TR.finetune(model.arch, state, (x_train[fit_idx], y_train[fit_idx]), (x_train[val_idx], y_train[val_idx]),
                      (data.images[data.test], data.labels[data.test]), lr_grid=recipe["lr_grid"],
                      epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                      weight_decay=recipe["weight_decay"], seed=config.seed,
                      checkpoint_dir=Path(work) / "finetune" / name / task, num_threads=threads)
    t_ft = time.perf_counter() - t0
    lp = None
    if linear_probe:
        net = TR.load_state(model.arch, state)
        f_train, _ = TR.features_and_logits(net, x_train, input_size=model.arch.input_size)
        f_test, _ = TR.features_and_logits(net, data.images[data.test], input_size=model.arch.input_size)
        lp = TR.linear_probe(f_train, y_train, f_test, data.labels[data.test], seed=VAL_SEED)
    return {"kind": "finetune", "model": name, "task": task, "finetune_acc": out["finetune_acc"],
            "linear_probe_acc": lp, "best_lr": out["best_lr"],
            "val_acc_per_lr": {f"{k:g}": v for k, v in out["val_acc_per_lr"].items()},
            "test_acc_per_lr": {f"{k:g}": v for k, v in out["test_acc_per_lr"].items()},
            "finetune_seconds": t_ft, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}


def _cleanup(work: Path, job: Job) -> None:
    """Delete a job's checkpoints once its record is in the log (never before: a worker that finishes after
    the parent died leaves them, so the next run resumes instead of starting over)."""
    if job.kind == "pretrain":
        (work / "pretrain" / f"{job.model}.pt").unlink(missing_ok=True)
    else:
        folder = work / "finetune" / job.model / str(job.task)
        for f in folder.glob("lr*"):
            f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the parent, so the pool is shut down the same way as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# -- the log --------------------------------------------------------------------------------------------


class BuildLog:
    """``build_log.jsonl``: a header line with the configuration, then one line per finished job."""

    def __init__(self, path: Path, config: BuildConfig):
        self.path = path
        self.header = {"zoobench_build": 1, "config": config.to_json(),
                       "config_sha256": hashlib.sha256(json.dumps(config.to_json(), sort_keys=True).encode())
                       .hexdigest()[:16]}
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            try:
                rows = [json.loads(ln) for ln in lines]
            except json.JSONDecodeError:  # a torn last line after a crash: drop it
                rows = [json.loads(ln) for ln in lines[:-1]]
            if not rows or rows[0].get("config_sha256") != self.header["config_sha256"]:
                raise InputError(f"{path} was written by a build with another configuration; move it away or "
                                 f"build into another directory")
            for rec in rows[1:]:
                self.records[self._key(rec)] = rec
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append(self.header)

    @staticmethod
    def _key(rec: dict[str, Any]) -> str:
        return f"{rec['kind']}:{rec['model']}" + (f":{rec['task']}" if rec.get("task") else "")

    def _append(self, rec: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, rec: dict[str, Any]) -> None:
        self._append(rec)
        self.records[self._key(rec)] = rec

    def done(self, job: Job, root: Path) -> bool:
        rec = self.records.get(job.key)
        if rec is None:
            return False
        if job.kind == "pretrain":
            path = weights_path(root, job.model)
            return path.exists()
        return True


# -- outputs --------------------------------------------------------------------------------------------


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in columns})
    os.replace(tmp, path)


def _params(config: BuildConfig, log: BuildLog) -> dict[str, int]:
    from zoorank.datasets.zoobench import training as TR

    out = {}
    for m in config.zoo():
        rec = log.records.get(f"pretrain:{m.name}")
        if rec is not None:
            out[m.name] = int(rec["params"])
        elif not m.needs_pretraining:
            out[m.name] = TR.count_params(TR.build_model(m.arch, 1000))
    return out


def write_zoo_and_tasks(root: Path, config: BuildConfig, log: BuildLog) -> None:
    """``zoo.csv`` (params from the log, empty until a model is trained) and ``tasks.csv`` with descriptions."""
    from zoorank.datasets.zoobench import tasks as T

    params = _params(config, log)
    rows = [{"model": m.name, "architecture": m.arch.name, "family": m.arch.family, "source_domain": m.source_domain,
             "init": m.init, "params": params.get(m.name, ""),
             "sha256": (log.records.get(f"pretrain:{m.name}") or {}).get("sha256", "")} for m in config.zoo()]
    _write_csv(root / "zoo.csv", ("model", "architecture", "family", "source_domain", "init", "params", "sha256"),
               rows)
    task_rows = []
    for name in config.tasks:
        data = T.load(name)
        t = data.task
        task_rows.append({"task": name, "n_classes": len(data.class_names), "n_train": int(data.train.size),
                          "n_test": int(data.test.size), "domain": t.domain or "", "distance": t.distance,
                          "fewshot": int(t.fewshot), "description": T.description(data)})
    _write_csv(root / "tasks.csv", ("task", "n_classes", "n_train", "n_test", "domain", "distance", "fewshot",
                                    "description"), task_rows)


def write_ground_truth(root: Path, config: BuildConfig, log: BuildLog, *, partial: bool = False) -> Path:
    """``ground_truth.csv`` from the log; refuses a missing pair unless ``partial`` (then only the tasks that
    are complete for every model are written)."""
    models = [m.name for m in config.zoo()]
    missing = [(m, t) for t in config.tasks for m in models if f"finetune:{m}:{t}" not in log.records]
    tasks = list(config.tasks)
    if missing:
        if not partial:
            raise InputError(f"the build is not finished: {len(missing)} (model, task) pairs to go")
        tasks = [t for t in tasks if all(f"finetune:{m}:{t}" in log.records for m in models)]
    rows = []
    for t in tasks:
        for m in models:
            rec = log.records[f"finetune:{m}:{t}"]
            rows.append({"model": m, "task": t, "finetune_acc": f"{rec['finetune_acc']:.6f}",
                         "linear_probe_acc": f"{rec['linear_probe_acc']:.6f}"})
    path = root / "ground_truth.csv"
    _write_csv(path, GROUND_TRUTH_COLUMNS, rows)
    return path


# -- the scheduler ----------------------------------------------------------------------------------------


Reporter = Callable[[str, Any], None]


def build(root: str | Path | None = None, *, config: BuildConfig | None = None, work_dir: str | Path | None = None,
          workers: int | None = None, threads: int | None = None, report: Reporter | None = None,
          max_jobs: int | None = None) -> dict[str, Any]:
    """Run (or resume) the build into ``root``; returns a summary.

    ``report(event, payload)`` receives ``("plan", {"total", "done", "jobs"})``, ``("start", job)`` and
    ``("finish", (job, record))``. ``max_jobs`` stops after that many new jobs (for tests and time boxes).
    """
    config = config or BuildConfig()
    config.check()
    # training checkpoints: safe to delete, only unfinished jobs lose their progress
    work = Path(work_dir) if work_dir is not None else (paths.zoobench_work_dir() if root is None
                                                         else Path(root) / ".work")
    root = Path(root) if root is not None else paths.zoobench_dir()
    cpus = os.cpu_count() or 1
    workers = workers or max(1, min(2, cpus))
    threads = threads or max(1, cpus // workers)
    log = BuildLog(root / LOG_NAME, config)
    write_zoo_and_tasks(root, config, log)
    jobs = plan(config)
    todo = [j for j in jobs if not log.done(j, root)]
    if report:
        report("plan", {"total": sum(j.estimate for j in jobs), "done": sum(j.estimate for j in jobs if j not in todo),
                        "jobs": len(jobs), "todo": len(todo), "workers": workers, "threads": threads})
    pretrained = {j.model for j in jobs if j.kind == "pretrain" and j not in todo}
    pretrained |= {m.name for m in config.zoo() if not m.needs_pretraining}
    pending = list(todo)
    running: dict[Future, Job] = {}
    started = 0
    t0 = time.perf_counter()

    def ready() -> Job | None:
        for j in pending:
            if j.kind == "pretrain" or j.model in pretrained:
                return j
        return None

    ctx = get_context("spawn")
    with _sigterm_as_interrupt(), ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        try:
            while pending or running:
                while len(running) < workers and (max_jobs is None or started < max_jobs):
                    job = ready()
                    if job is None:
                        break
                    pending.remove(job)
                    if job.kind == "pretrain":
                        fut = pool.submit(run_pretrain, config, job.model, str(root), str(work), threads)
                    else:
                        sha = (log.records.get(f"pretrain:{job.model}") or {}).get("sha256")
                        fut = pool.submit(run_finetune, config, job.model, job.task, str(root), str(work), threads,
                                          sha)
                    running[fut] = job
                    started += 1
                    if report:
                        report("start", job)
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    rec = fut.result()
                    rec["threads"] = threads
                    log.add(rec)
                    _cleanup(work, job)
                    if job.kind == "pretrain":
                        pretrained.add(job.model)
                        write_zoo_and_tasks(root, config, log)
                    if report:
                        report("finish", (job, rec))
        except BaseException:
            for fut in running:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    remaining = [j for j in jobs if not log.done(j, root)]
    complete = not remaining
    if complete:
        write_ground_truth(root, config, log)
    return {"complete": complete, "remaining": len(remaining), "ran": started,
            "seconds": time.perf_counter() - t0, "root": str(root)}


def measured_cost(root: str | Path | None = None) -> dict[str, float]:
    """CPU-seconds the build took, from its log: per phase and in all. A job counts its process CPU time
    (``time.process_time``: all threads, not the time it waited for a core), or wall time x threads for
    records written before CPU time was logged."""
    path = Path(root if root is not None else paths.zoobench_dir()) / LOG_NAME
    if not path.exists():
        raise InputError(f"no build log at {path}")
    rows = [json.loads(ln) for ln in path.read_text().splitlines()[1:] if ln.strip()]
    out = {"pretrain": 0.0, "finetune": 0.0}
    for r in rows:
        out[r["kind"]] += r.get("cpu_seconds", r["seconds"] * r.get("threads", 1))
    out["total"] = out["pretrain"] + out["finetune"]
    return out
