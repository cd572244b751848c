"""Rebuild the MetaRank and the default metric order that ship in the package (:mod:`zoorank.methods.metarank.shipped`).

The records are MetaRank's meta-dataset as :mod:`benchmarks.metarank_eval` builds it: the published tables of
``../shared/data/groundtruth`` (TLlib and TransferGraph, with their packaged dataset cards) and ZooBench's targets
with their sub-tasks. MetaRank is fitted on all of them (its defaults, seed 0, the sentence encoder of the package);
the order is the mean quality per metric over the datasets (module doc of ``shipped``).

Command: ``python -m benchmarks.ship_defaults --benchmark benchmarks/zoobench`` (writes
``src/zoorank/methods/metarank/data/shipped/``; ``--out DIR`` elsewhere; ``--write docs/BENCHMARKS.md`` the order's
section).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.metarank_eval import gather_records
from zoorank.methods.metarank.model import MetaRank
from zoorank.methods.metarank.shipped import SHIPPED_DIR, read_default_order, write_shipped

SECTION = "shipped-defaults"


def markdown(doc: dict, command: str) -> str:
    """The section: the shipped order with each metric's mean quality and dataset count."""
    import datetime as _dt

    lines = ["## Shipped defaults: the metric order and the MetaRank in the package", "",
             f"Command: `{command}`  ", f"Measured {_dt.date.today().isoformat()}.", "",
             f"Evidence: {', '.join(doc['sources'])}; MetaRank fitted on {doc['metarank_datasets']} datasets "
             f"(targets and sub-tasks) x {len(doc['metarank_metrics'])} metrics. Quality = the weighted Kendall tau "
             "between the metric's ranking of the zoo and the fine-tuned accuracies, one value per dataset group "
             "(whole targets). Order = Copeland over the pairs of metrics, each pair compared by its mean "
             "difference on the datasets where both were measured (the published tables hold five metrics, "
             "ZooBench all); then the mean over the metric's own datasets. A first `zoorank rank` with no fitted "
             "rankers picks its metric with this MetaRank, and falls back along this order.", "",
             "| rank | metric | Copeland (wins - losses) | mean quality | datasets |",
             "| ---: | --- | ---: | ---: | ---: |"]
    for i, e in enumerate(doc["order"]):
        lines.append(f"| {i + 1} | {e['metric']} | {e['copeland']} | {e['mean_quality']:.3f} | {e['datasets']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ship_defaults", description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmark", default="benchmarks/zoobench", help="the harness benchmark (ZooBench)")
    ap.add_argument("--sources", default="tllib,transfergraph_image", help="published zoos (comma-separated)")
    ap.add_argument("--groundtruth", default=None, help="folder of the published tables (default: shared/)")
    ap.add_argument("--encoder", default="all-MiniLM-L6-v2", help="sentence encoder of the shipped MetaRank")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(SHIPPED_DIR), help="where to write (default: the package's folder)")
    ap.add_argument("--write", default=None, help="write the 'shipped-defaults' section of this Markdown file")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    _, records, texts = gather_records(sources=sources, groundtruth=args.groundtruth, benchmark=args.benchmark,
                                       seed=args.seed, log=log)
    log(f"{len(records)} records of {len({r.dataset for r in records})} datasets; fitting MetaRank")
    model = MetaRank(encoder=args.encoder, metric_texts=texts, seed=args.seed).fit(records)
    out = write_shipped(model, records, args.out, provenance={
        "sources": [*(f"published:{s}" for s in sources), *([f"benchmark:{Path(args.benchmark).name}"]
                                                            if args.benchmark else [])],
        "encoder": args.encoder, "seed": args.seed})
    log(f"wrote {out}")
    if args.write:
        from zoorank.evaluation.tables import write_markdown_section

        command = "python -m benchmarks.ship_defaults" + (f" --benchmark {args.benchmark}" if args.benchmark else "") \
            + f" --write {args.write}"
        write_markdown_section(Path(args.write), SECTION, markdown(read_default_order(out), command))
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
