"""SHA-256 checksums of every generated ZooBench task (and a small sample of every source domain), and their
comparison with the committed file ``task_checksums.json`` shipped beside this module, so a silent change of data is
caught.

A task's checksum hashes, length-prefixed: a format tag, the task name, the images' dtype and shape and bytes
(C order), the labels as little-endian int64, the class names, and the train and test indices. A domain's hashes
the same for ``make(seed=0, per_class=DOMAIN_SAMPLE)``. The JSON also records what the pixels depend on besides
the code: Pillow's FreeType version, NumPy's version and every font file's SHA-256, so a mismatch can be explained
(:func:`verify` says when a font file or FreeType differs from the recorded one).

Tasks whose fonts are not installed cannot be checked here; :func:`write` keeps their recorded entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from zoorank.datasets.zoobench import domains as dm
from zoorank.datasets.zoobench import tasks as tk
from zoorank.datasets.zoobench.fonts import font_sha256, freetype_version
from zoorank.errors import InputError
from zoorank.jsonfile import read_json_file

FORMAT = 1
#: Images per class of the source-domain samples that are checksummed.
DOMAIN_SAMPLE = 5
FILENAME = "task_checksums.json"


def default_path() -> Path:
    """The committed checksums, shipped with the package (``zoorank/datasets/zoobench/task_checksums.json``)."""
    from importlib.resources import files

    return Path(str(files("zoorank.datasets.zoobench") / FILENAME))


def array_checksum(name: str, images: np.ndarray, labels: np.ndarray, class_names: Iterable[str],
                   *index_arrays: np.ndarray) -> str:
    """SHA-256 (hex) of the arrays as described in the module docstring."""
    h = hashlib.sha256()

    def put(b: bytes) -> None:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    imgs = np.ascontiguousarray(images)
    put(f"zoobench-v{FORMAT}".encode())
    put(name.encode())
    put(f"{imgs.dtype.str}|{imgs.shape}".encode())
    put(memoryview(imgs).cast("B").tobytes())
    put(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    put("\n".join(class_names).encode())
    for idx in index_arrays:
        put(np.ascontiguousarray(idx, dtype="<i8").tobytes())
    return h.hexdigest()


def task_checksum(task: str | tk.TargetTask | tk.TaskData) -> str:
    """Checksum of a task's generated data (its own seed) and fixed split."""
    data = task if isinstance(task, tk.TaskData) else tk.load(task)
    return array_checksum(data.task.name, data.images, data.labels, data.class_names, data.train, data.test)


def domain_checksum(domain: str | dm.SourceDomain, per_class: int = DOMAIN_SAMPLE) -> str:
    """Checksum of ``make(seed=0, per_class=per_class)`` of a source domain."""
    d = dm.get_domain(domain) if isinstance(domain, str) else domain
    images, labels, names = d.make(0, per_class)
    return array_checksum(f"domain:{d.name}", images, labels, names)


def checksums(names: Iterable[str] | None = None) -> dict[str, str]:
    """``{task name: checksum}`` for the given tasks (default: every task whose fonts are installed)."""
    chosen = tk.available_tasks() if names is None else list(names)
    return {n: task_checksum(n) for n in chosen}


def domain_checksums(names: Iterable[str] | None = None) -> dict[str, str]:
    """``{domain name: checksum}`` (default: every source domain whose fonts are installed)."""
    doms = dm.source_domains()
    chosen = [n for n, d in doms.items() if d.available()] if names is None else list(names)
    return {n: domain_checksum(n) for n in chosen}


def environment() -> dict[str, str]:
    """What the pixels depend on besides the code and the fonts."""
    return {"pillow": PIL.__version__, "freetype": freetype_version(), "numpy": np.__version__}


def _fonts_of(recipes: Iterable[dm.Recipe]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in recipes:
        for f in r.fonts:
            out[f.file] = font_sha256(f)
    return dict(sorted(out.items()))


def compute(tasks: Iterable[str] | None = None, domains: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON document for the given (default: all available) tasks and domains."""
    task_names = tk.available_tasks() if tasks is None else list(tasks)
    dom_names = [n for n, d in dm.source_domains().items() if d.available()] if domains is None else list(domains)
    tasks_doc = {}
    for n in task_names:
        data = tk.load(n)
        tasks_doc[n] = {"sha256": task_checksum(data), "n_images": int(data.images.shape[0]),
                        "n_classes": len(data.class_names), "fonts": sorted({f.file for f in data.task.fonts})}
    doms_doc = {}
    for n in dom_names:
        d = dm.get_domain(n)
        doms_doc[n] = {"sha256": domain_checksum(d), "per_class": DOMAIN_SAMPLE, "seed": 0,
                       "fonts": sorted({f.file for f in d.fonts})}
    recipes = [tk.get_task(n) for n in task_names] + [dm.get_domain(n) for n in dom_names]
    return {"format": FORMAT, **environment(), "fonts": _fonts_of(recipes), "tasks": tasks_doc,
            "domains": doms_doc}


def read(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path is not None else default_path()
    doc = read_json_file(p, missing=f"checksum file {p} not found")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tasks"), dict):
        raise InputError(f"checksum file {p} is not a ZooBench checksum file of format {FORMAT}")
    return doc


def write(path: str | Path | None = None) -> dict[str, Any]:
    """Compute the checksums of every available task and domain and write them to ``path``, keeping the recorded
    entries (and font hashes) of tasks and domains whose fonts are not installed here. Returns the document."""
    p = Path(path) if path is not None else default_path()
    doc = compute()
    if p.is_file():
        old = read(p)
        for key in ("tasks", "domains"):
            for name, entry in old.get(key, {}).items():
                doc[key].setdefault(name, entry)
        for file, sha in old.get("fonts", {}).items():
            doc["fonts"].setdefault(file, sha)
        doc["fonts"] = dict(sorted(doc["fonts"].items()))
    for key in ("tasks", "domains"):
        doc[key] = dict(sorted(doc[key].items()))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return doc


@dataclass
class Verification:
    """Result of :func:`verify`: names that match, that differ (with a hint), that are not recorded, and that
    could not be generated here (fonts missing)."""

    ok: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)
    unrecorded: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatched and not self.unrecorded

    def lines(self) -> list[str]:
        out = [f"{len(self.ok)} checksum(s) match"]
        out += [f"MISMATCH {n}: {hint}" for n, hint in self.mismatched.items()]
        out += [f"NOT RECORDED {n}: run zoorank.datasets.zoobench.checksums.write()" for n in self.unrecorded]
        out += [f"skipped {n}: fonts not installed" for n in self.unavailable]
        return out


def _hint(recipe: dm.Recipe, doc: dict[str, Any]) -> str:
    reasons = []
    for f in recipe.fonts:
        recorded = doc.get("fonts", {}).get(f.file)
        if recorded is not None and recorded != font_sha256(f):
            reasons.append(f"font file {f.file} differs from the recorded one")
    env = environment()
    if doc.get("freetype") not in (None, env["freetype"]):
        reasons.append(f"FreeType {env['freetype']} here, {doc['freetype']} when recorded")
    if doc.get("numpy") not in (None, env["numpy"]) and not reasons:
        reasons.append(f"NumPy {env['numpy']} here, {doc['numpy']} when recorded")
    return "; ".join(reasons) if reasons else "the generated data changed (code or data source)"


def verify(path: str | Path | None = None, tasks: Iterable[str] | None = None,
           domains: Iterable[str] | None = None) -> Verification:
    """Regenerate the given tasks and domains (default: all) and compare with the recorded checksums."""
    doc = read(path)
    result = Verification()
    task_names = list(tk.target_tasks()) if tasks is None else list(tasks)
    dom_names = list(dm.source_domains()) if domains is None else list(domains)
    checks: list[tuple[str, str, dm.Recipe]] = [("tasks", n, tk.get_task(n)) for n in task_names]
    checks += [("domains", n, dm.get_domain(n)) for n in dom_names]
    for key, name, recipe in checks:
        label = name if key == "tasks" else f"domain:{name}"
        if not recipe.available():
            result.unavailable.append(label)
            continue
        entry = doc.get(key, {}).get(name)
        if entry is None:
            result.unrecorded.append(label)
            continue
        actual = task_checksum(name) if key == "tasks" else domain_checksum(name, int(entry.get("per_class",
                                                                                                DOMAIN_SAMPLE)))
        if actual == entry.get("sha256"):
            result.ok.append(label)
        else:
            result.mismatched[label] = _hint(recipe, doc)
    return result
