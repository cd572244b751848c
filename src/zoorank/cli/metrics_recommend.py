"""``zoorank metrics recommend``: which transferability metric to trust for a new dataset (MetaRank,
arXiv 2511.21007).

A dataset card is generated from the data's metadata (class names and counts, image count and size, colour,
balance; :func:`zoorank.methods.metarank.card_from_dataset`), with the user's ``--description`` of what the images
show; a trained MetaRank (``--model``; by default ``<zoorank data>/metarank/model.npz`` when there is one, else the
MetaRank ``zoorank fit`` learned from the knowledge base) ranks the metrics from it and explains the ranking by the
nearest historical datasets.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from zoorank.cli._common import console, print_json, print_table
from zoorank.errors import InputError


@click.command("recommend")
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="The new dataset: a folder of class sub-folders, an unlabelled folder, a CSV (path,label) or a "
                   "Hugging Face dataset saved to disk.")
@click.option("--description", default=None,
              help="What the images show (the domain, the kind of images); with --data it completes the generated "
                   "card, alone it is the whole description.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A MetaRank model saved by MetaRank.save (default: <zoorank data>/metarank/model.npz, else the one "
                   "zoorank fit wrote, else the one shipped with zoorank).")
@click.option("--metrics", "metric_names", default=None,
              help="Comma-separated candidate metrics (default: every metric the model was trained on).")
@click.option("--top", default=5, show_default=True, help="How many metrics to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def recommend(data_path, description, model_path, metric_names, top, as_json) -> None:
    """Rank the transferability metrics for a new dataset, with the reason (nearest historical datasets)."""
    from zoorank import paths
    from zoorank.methods.metarank import MetaRank, card_from_dataset

    if data_path is None and not description:
        raise click.UsageError("give --data PATH and/or --description TEXT")
    if top < 1:
        raise click.BadParameter("must be >= 1", param_hint="--top")
    from zoorank.methods.metarank.shipped import MODEL_FILE, SHIPPED_DIR, shipped_metarank

    defaults = [paths.metarank_model_path(), paths.rankers_dir() / "metarank.npz"]
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise click.ClickException(f"no trained MetaRank model at {path}: fit one from the knowledge base with "
                                       f"`zoorank fit` (after recording results), or leave out --model")
    else:  # the user's own fit first, else the one shipped in the package
        path = next((p for p in defaults if p.is_file()), SHIPPED_DIR / MODEL_FILE)
    t0 = time.perf_counter()
    try:
        model = shipped_metarank() if path == SHIPPED_DIR / MODEL_FILE else MetaRank.load(path)
        if data_path is not None:
            card = card_from_dataset(data_path, what=description or "")
            text = card.to_text()
        else:
            text = f"Images: {description.strip()}"
        candidates = None
        if metric_names:
            candidates = [m.strip() for m in metric_names.split(",") if m.strip()]
        t_prep = time.perf_counter() - t0
        ranking = model.rank_metrics(text, candidates)
        # a cached card never loads the encoder; otherwise its one-off load is reported apart from the ranking
        t_load = float(getattr(model._encoder(), "load_seconds", 0.0) or 0.0)
        t_rank = max(ranking.seconds - t_load, 0.0)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = ranking.metrics[:top]
    if as_json:
        out = ranking.to_dict()
        out["metrics"] = [r.__dict__ for r in shown]
        out.update(card=text, model=str(path), seconds={"prepare": t_prep, "encoder_load": t_load,
                                                          "rank": t_rank})
        print_json(out)
        return
    console.print(f"[bold]Dataset card[/]\n{text}\n")
    print_table("metrics to trust, best first (MetaRank)", ["rank", "metric", "score"],
                [[str(r.rank), r.metric, f"{r.score:.3f}"] for r in shown])
    if ranking.neighbours:
        print_table("nearest historical datasets", ["dataset", "similarity", "best metric there",
                                                    f"{ranking.top} there"],
                    [[n.dataset, f"{n.similarity:.2f}", f"{n.best_metric} ({n.best_quality:.2f})",
                      "-" if n.pick_quality is None else f"{n.pick_quality:.2f}"] for n in ranking.neighbours])
    console.print(f"ranked in {t_rank * 1000:.0f} ms (encoder load {t_load:.1f} s, data card "
                  f"{t_prep:.1f} s)")
