"""archi2vec on many timm architectures: graph extraction time, the op vocabulary, graph2vec fit, neighbours.

Run ``python -m benchmarks.archi2vec_survey [--limit N] [--write docs/BENCHMARKS.md]``.

Selection: every ``timm.list_models()`` name is built once on the ``meta`` device (no memory, no init cost) to
count its parameters (cached in ``sizes.json``); names above ``--max-params`` or that cannot be built are left
out, as are timm's ``test_*`` configurations and names that differ from an already chosen one only by a
resolution suffix (``_224``, ``_384``, ...). The rest are taken round-robin over timm's model modules
(families), smallest first within each family, after a few named architectures that the report looks at
(``resnet18``, ``resnet10t``, ``vit_tiny_patch16_224``, ``mobilenetv3_small_100``, ...), until ``--limit``
names are chosen.

Each chosen name is built with ``pretrained=False`` (timed) and its runtime graph extracted with
:func:`zoorank.zoo.archi2vec.timm_model_graph` (timed, wall and CPU seconds) at ``--image-size`` px, or at the
model's configured input size when it needs one. Each result (graph or failure) is written to
``<cache>/graphs/<name>.json``, so a rerun only does what is missing (``--retry-failed`` retries failures).
Torchvision's AlexNet and ResNet-18 are added to the fit (not counted among the timm architectures) to check the
paper's claim at scale. Then :class:`zoorank.zoo.archi2vec.Archi2Vec` is fitted on all graphs (timed), the
embeddings clustered with KMeans, and nearest neighbours printed (and written with ``--write``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.zoo.archi2vec import (
    ArchGraph,
    Archi2Vec,
    autograd_graph,
    layer_count,
    timm_model_graph,
    wl_kernel,
    wl_words,
)

FOCUS = ["resnet18", "vit_tiny_patch16_224", "mobilenetv3_small_100"]
FIRST = [*FOCUS, "resnet10t", "resnet34", "resnet50", "efficientnet_b0", "convnext_atto", "deit_tiny_patch16_224",
         "swin_tiny_patch4_window7_224", "vgg11", "densenet121", "mobilenetv2_100", "regnetx_002"]
# The 37 node types of Fennec's table 6, version suffixes removed ("Variable" is a leaf tensor).
TABLE6 = ["AdaptiveAvgPool2DBackward", "AdaptiveMaxPool2DBackward", "AddBackward", "AddmmBackward",
          "AvgPool2DBackward", "AvgPool3DBackward", "CatBackward", "CloneBackward", "ConstantPadNdBackward",
          "ConvolutionBackward", "DivBackward", "ExpandBackward", "HardtanhBackward", "IndexSelectBackward",
          "MaxBackward", "MaxPool2DWithIndicesBackward", "MeanBackward", "MulBackward", "NativeBatchNormBackward",
          "Variable", "PowBackward", "PreluBackward", "ReluBackward", "RepeatBackward", "ReshapeAliasBackward",
          "SigmoidBackward", "SliceBackward", "SoftmaxBackward", "SplitWithSizesBackward", "SqueezeBackward",
          "SumBackward", "TBackward", "TransposeBackward", "UnsqueezeBackward", "UpsampleBilinear2DBackward",
          "UpsampleNearest2DBackward", "ViewBackward"]
_RES_SUFFIX = re.compile(r"_(\d{3,4})$")


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/zoorank/archi2vec`` or ``~/.cache/zoorank/archi2vec``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoorank" / "archi2vec"


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:240]


def timm_sizes(cache: Path, log: Any = print) -> dict[str, int | None]:
    """Parameter count of every timm model name, built on the meta device (cached in ``sizes.json``)."""
    import timm
    import torch

    path = cache / "sizes.json"
    sizes: dict[str, int | None] = json.loads(path.read_text()) if path.exists() else {}
    names = timm.list_models()
    todo = [n for n in names if n not in sizes]
    if todo:
        log(f"counting parameters of {len(todo)} timm names on the meta device ...")
    for i, name in enumerate(todo):
        try:
            with torch.device("meta"):
                m = timm.create_model(name, pretrained=False)
            sizes[name] = int(sum(p.numel() for p in m.parameters()))
            del m
        except Exception:
            sizes[name] = None
        if i % 200 == 199:
            path.write_text(json.dumps(sizes))
    path.write_text(json.dumps(sizes))
    return sizes


def choose(sizes: dict[str, int | None], limit: int, max_params: float) -> list[str]:
    """``limit`` names: FIRST, then round-robin over timm modules, smallest first (see the module docstring)."""
    import timm

    module_of: dict[str, str] = {}
    for mod in timm.list_modules():
        for name in timm.list_models(module=mod):
            module_of.setdefault(name, mod)
    ok = {n for n, s in sizes.items() if s is not None and s <= max_params and not n.startswith("test_")}
    chosen: list[str] = []
    keys: set[str] = set()

    def take(name: str) -> None:
        key = _RES_SUFFIX.sub("", name)
        if name in ok and key not in keys and len(chosen) < limit:
            chosen.append(name)
            keys.add(key)

    for name in FIRST:
        take(name)
    families: dict[str, list[str]] = {}
    for name in sorted(ok, key=lambda n: (sizes[n], n)):
        families.setdefault(module_of.get(name, "?"), []).append(name)
    queues = [families[m] for m in sorted(families)]
    depth = 0
    while len(chosen) < limit and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q):
                take(q[depth])
        depth += 1
    return chosen


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def extract_one(name: str, image_size: int) -> dict[str, Any]:
    """Build ``name`` (pretrained=False) and extract its graph; a record with timings, or the failure."""
    import timm

    rec: dict[str, Any] = {"name": name, "ok": False}
    t0 = time.perf_counter()
    try:
        model = timm.create_model(name, pretrained=False)
    except Exception as exc:
        rec.update(stage="build", error=_short(exc))
        return rec
    rec["build_seconds"] = time.perf_counter() - t0
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        graph = timm_model_graph(model, name, image_size)
        rec.update(ok=True, seconds=time.perf_counter() - w0, cpu_seconds=time.process_time() - c0,
                   graph=graph.to_dict())
    except Exception as exc:
        rec.update(stage="graph", error=_short(exc))
    finally:
        del model
        gc.collect()
    return rec


def extract_all(names: list[str], cache: Path, image_size: int, retry_failed: bool, log: Any = print) -> list[dict]:
    """Records for ``names``, read from ``<cache>/graphs`` when present, else extracted and written there."""
    folder = cache / "graphs"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, name in enumerate(names):
        path = folder / f"{_safe(name)}.json"
        rec = json.loads(path.read_text()) if path.exists() else None
        if rec is None or (retry_failed and not rec.get("ok")):
            rec = extract_one(name, image_size)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rec, separators=(",", ":")))
            tmp.replace(path)
            status = (f"{rec['graph']['input_shape']} {len(rec['graph']['labels'])} nodes {rec['seconds']:.2f}s"
                      if rec["ok"] else f"FAILED ({rec['stage']}): {rec['error']}")
            log(f"[{i + 1}/{len(names)}] {name}: {status}")
        records.append(rec)
    return records


def torchvision_graphs() -> list[ArchGraph]:
    """Torchvision AlexNet and ResNet-18 (weights=None) at 64 px, for the paper's claim."""
    import torchvision

    return [autograd_graph(torchvision.models.alexnet(weights=None), input_shape=(1, 3, 64, 64),
                           name="torchvision:alexnet"),
            autograd_graph(torchvision.models.resnet18(weights=None), input_shape=(1, 3, 64, 64),
                           name="torchvision:resnet18")]


def _stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} / {statistics.mean(xs):.3f} / {max(xs):.3f}"


def report(records: list[dict], extra: list[ArchGraph], args: argparse.Namespace) -> str:
    """Fit, cluster and describe; returns Markdown."""
    import timm
    import torch

    ok = [r for r in records if r["ok"]]
    failed = [r for r in records if not r["ok"]]
    graphs = [ArchGraph.from_dict(r["graph"]) for r in ok]
    if len(graphs) < 2:
        raise InputError("archi2vec survey: fewer than 2 graphs were extracted")
    distinct = len({hash(tuple(sorted(Counter(wl_words(g, 3)).items()))) for g in graphs})
    secs = [r["seconds"] for r in ok]
    cpu = [r["cpu_seconds"] for r in ok]
    build = [r["build_seconds"] for r in ok]
    nodes = [g.n_nodes for g in graphs]
    fitted = graphs + extra
    model = Archi2Vec(dim=args.dim, wl_iterations=args.wl_iterations, epochs=args.epochs, seed=args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(fitted)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    labels = model.cluster(args.clusters, seed=args.seed)
    sim = model.similarity()
    kern = wl_kernel(fitted, args.wl_iterations)
    idx = {g.name: i for i, g in enumerate(fitted)}

    per_arch = Counter(lab for g in graphs for lab in set(g.labels))
    total = Counter(lab for g in graphs for lab in g.labels)
    ops = sorted(total)
    seen6 = [t for t in TABLE6 if t in total]
    lines = [
        "## archi2vec on timm architectures",
        "",
        f"Command: `{args.command}`  ",
        f"Measured {time.strftime('%Y-%m-%d')} on: Python {platform.python_version()}, torch {torch.__version__}, "
        f"timm {timm.__version__}, numpy {np.__version__}, {os.cpu_count()} CPU cores, torch with "
        f"{torch.get_num_threads()} thread(s), process niceness {os.nice(0)}, load average {args.load:.1f} at the "
        "start (other jobs on the machine inflate wall seconds; CPU seconds are the process's own).  ",
        f"Each architecture is built with `pretrained=False` and its runtime graph extracted from one forward pass "
        f"at {args.image_size} px (or the model's fixed input size) in eval mode; Archi2Vec(dim={args.dim}, "
        f"wl_iterations={args.wl_iterations}, epochs={args.epochs}, seed={args.seed}) is fitted on the "
        f"{len(graphs)} timm graphs plus {len(extra)} torchvision ones ({', '.join(g.name for g in extra)}). "
        f"Per-model timings are those of the run that extracted each graph (kept in the cache with it).",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| timm architectures tried | {len(records)} |",
        f"| graphs extracted | {len(graphs)} ({distinct} distinct up to 3 WL iterations) |",
        f"| failures | {len(failed)} |",
        f"| graph extraction, wall s per model (median / mean / max) | {_stats(secs)} |",
        f"| graph extraction, CPU s per model (median / mean / max) | {_stats(cpu)} |",
        f"| model build (random init), wall s per model (median / mean / max) | {_stats(build)} |",
        f"| vertices per graph (median / mean / max) | {statistics.median(nodes):.0f} / "
        f"{statistics.mean(nodes):.0f} / {max(nodes)} |",
        f"| input 64 px / fixed size | {sum(1 for r in ok if r['graph']['input_shape'][-1] == args.image_size)} / "
        f"{sum(1 for r in ok if r['graph']['input_shape'][-1] != args.image_size)} |",
        f"| Archi2Vec fit ({len(fitted)} graphs, {len(model.vocabulary_)} WL words, {model.n_iter_} L-BFGS "
        f"iterations, {'converged' if model.converged_ else 'budget reached'}): wall s / CPU s | "
        f"{fit_s:.1f} / {fit_cpu:.1f} |",
        f"| op-type vocabulary (distinct vertex labels) | {len(ops)} |",
        f"| of table 6's 37 types, seen here | {len(seen6)} (not seen: "
        f"{', '.join(t for t in TABLE6 if t not in total) or 'none'}; `Variable`, a leaf tensor, is not a vertex "
        "by default) |",
        "",
        "Op types beyond table 6: " + ", ".join(f"{op} ({per_arch[op]})" for op in ops if op not in TABLE6) + ".",
        "",
        "Most common op types (in how many architectures; total vertices): "
        + ", ".join(f"{op} ({per_arch[op]}; {total[op]})" for op, _ in per_arch.most_common(args.top_ops)) + ".",
        "",
        "Nearest neighbours by archi2vec cosine similarity (WL-kernel similarity in brackets):",
        "",
        "| architecture | 3 closest |",
        "| --- | --- |",
    ]
    for name in [*FOCUS, "torchvision:resnet18"]:
        if name in idx:
            near = model.nearest(name, 3)
            lines.append(f"| {name} | " + ", ".join(f"{n} {s:.3f} [{kern[idx[name], idx[n]]:.3f}]"
                                                 for n, s in near) + " |")
    pairs = [("resnet18", "resnet10t"), ("torchvision:resnet18", "resnet10t"), ("resnet18", "torchvision:alexnet"),
             ("torchvision:resnet18", "torchvision:alexnet"), ("resnet18", "vit_tiny_patch16_224")]
    lines += ["", "The paper's claim (ResNet-18 close to ResNet-10, far from AlexNet; paper: 0.9703 vs 0.4673):", "",
              "| pair | archi2vec cosine | WL kernel |", "| --- | ---: | ---: |"]
    for a, b in pairs:
        if a in idx and b in idx:
            lines.append(f"| {a} / {b} | {sim[idx[a], idx[b]]:.3f} | {kern[idx[a], idx[b]]:.3f} |")
    sizes = Counter(labels.tolist())
    lines += ["", f"KMeans with {args.clusters} clusters on the unit-normalised embeddings (size: a few members):", ""]
    for c, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        members = [fitted[i].name for i in range(len(fitted)) if labels[i] == c]
        lines.append(f"- {size}: {', '.join(members[:8])}{' ...' if size > 8 else ''}")
    if failed:
        reasons = Counter(f"{r['stage']}: {r['error'][:90]}" for r in failed)
        lines += ["", "Failures: " + "; ".join(f"{r['name']} ({r['stage']}: {r['error'][:90]})"
                                               for r in failed[:10]) + (" ..." if len(failed) > 10 else "")]
        lines.append(f"({len(reasons)} distinct reasons)")
    layers = [layer_count(g) for g in graphs]
    lines += ["", f"Layer count (convolutions and matrix products applying parameters, `layer_count`) per graph: "
              f"median {statistics.median(layers):.0f}, max {max(layers)}."]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.archi2vec_survey", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=230, help="number of timm architectures to try (default 230)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default ~/.cache/zoorank/archi2vec)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--max-params", type=float, default=30e6, help="skip architectures with more parameters")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--wl-iterations", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=300, help="L-BFGS iteration budget of the fit")
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-ops", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--retry-failed", action="store_true", help="extract again the names that failed before")
    parser.add_argument("--write", type=Path, default=None, help="write the Markdown section into this file")
    args = parser.parse_args(argv)
    if args.limit < 2:
        parser.error("--limit must be at least 2")
    import torch

    torch.set_num_threads(args.threads)
    args.load = os.getloadavg()[0]
    cache = args.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    cmd = ["python -m benchmarks.archi2vec_survey", f"--limit {args.limit}"]
    if args.write:
        cmd.append(f"--write {args.write}")
    args.command = " ".join(cmd)

    def log(msg: str) -> None:
        print(msg, flush=True)

    sizes = timm_sizes(cache, log)
    names = choose(sizes, args.limit, args.max_params)
    log(f"{len(names)} architectures chosen (of {len(sizes)} timm names; "
        f"{sum(1 for s in sizes.values() if s is None)} cannot be built on the meta device)")
    records = extract_all(names, cache, args.image_size, args.retry_failed, log)
    body = report(records, torchvision_graphs(), args)
    print(body)
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        write_markdown_section(args.write, "archi2vec", body)
        log(f"wrote the archi2vec section of {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
