"""``zoorank demo``: rank a toy zoo with every metric and compare with real fine-tuning."""

from __future__ import annotations

import click

from zoorank.cli._common import console, err_console, fmt, print_table
from zoorank.ranking import best_first


def _show_pipeline(result, truth, figures, description) -> None:
    from zoorank.cli.rank import show_result

    console.print(f"[bold]zoorank demo[/]: which of the {figures['zoo']} ZooBench models should be fine-tuned on "
                  f"[bold]{figures['target']}[/]? ({description})")
    console.print("The rankers were fitted (zoorank fit) from a knowledge base of the OTHER targets only.")
    show_result(result, truth)
    true_rank = sorted(truth.values(), reverse=True).index(truth[figures["picked"]]) + 1
    console.print(f"Top pick {figures['picked']}: fine-tuned accuracy {truth[figures['picked']]:.3f} (true rank "
                  f"{true_rank}; best {figures['best_model']} {truth[figures['best_model']]:.3f}). Ranking vs "
                  f"truth: weighted tau {figures['weighted_tau']:.3f}, top-1 regret {figures['top1_regret']:.3f}; "
                  f"{result.forward_passes} of {figures['zoo']} models ran"
                  + (f", on {100 * result.fraction:g}% of the probe ({result.image_passes} image passes)."
                     if hasattr(result, "fraction") else "."))


@click.command()
@click.option("--toy", is_flag=True, help="The toy-zoo demo (every metric on 8 small models) instead.")
@click.option("--seed", default=0, show_default=True, help="Seed of the toy zoo.")
@click.option("--budget", default="auto", show_default=True,
              help="What runs, as zoorank rank's --budget (auto: on a quarter of the probe, the models with a 5% "
                   "prior chance of the top 5).")
@click.option("--report", "report_path", default="zoorank-demo.html", show_default=True,
              help="HTML report of the pipeline demo.")
def demo(toy: bool, seed: int, budget: str, report_path: str) -> None:
    """Offline demo: the pipeline on a ZooBench target its rankers never learned from, beside the true
    fine-tuned accuracies, with an HTML report (--toy: every metric on a small zoo built on the spot)."""
    from zoorank import demo as D

    if not toy:
        if D.available():
            D.run(budget=None if budget == "auto" else budget, report=report_path, show=_show_pipeline)
            console.print(f"wrote {report_path}")
            return
        err_console.print("[yellow]ZooBench's ground truth or the demo rankers are not there yet "
                          "(zoorank bench build; python -m zoorank.demo fit): the toy demo instead[/]")
    _toy_demo(seed)


def _toy_demo(seed: int) -> None:
    from rich.progress import Progress

    from zoorank import demo as D
    from zoorank.datasets.toyzoo import FINETUNE, ZOO

    console.print("[bold]zoorank demo[/]: which of 8 small pre-trained models should be fine-tuned on "
                  "rotated handwritten digits?")
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("pre-training and fine-tuning the toy zoo", total=len(ZOO))
        out = D.toy(seed, progress=lambda _name: progress.advance(task))
    zoo, truth, scores, seconds, failed = out["zoo"], out["truth"], out["scores"], out["seconds"], out["failed"]
    quality, order, agg = out["quality"], out["order"], out["copeland"]
    console.print(f"Built {len(zoo.models)} models and their fine-tuned ground truth in {zoo.seconds:.1f} s "
                  f"(fine-tuning recipe: {FINETUNE}); probe set: {len(zoo.probe_labels)} target images.")
    print_table(
        "How well each metric ranks the zoo (against real fine-tuned accuracy)",
        ["metric", "weighted tau", "pearson", "top-1 regret", "picks", "seconds (8 models)"],
        [[n, fmt(quality[n][0], 3), fmt(quality[n][1], 3), fmt(quality[n][2], 3),
          zoo.models[int(best_first(scores[n], 1)[0])].spec.name, f"{seconds[n]:.3f}"] for n in order],
    )
    ranked = best_first(agg)
    best = order[0]
    print_table(
        "The zoo ranked by the Copeland aggregate of every metric",
        ["rank", "model", "source task", "params", "copeland", f"{best} score", "fine-tuned acc",
         "true rank"],
        [[str(i + 1), zoo.models[j].spec.name, zoo.models[j].spec.source, str(zoo.models[j].params),
          fmt(agg[j], 1), fmt(scores[best][j], 4), f"{truth[j]:.3f}",
          str(int((truth > truth[j]).sum()) + 1)] for i, j in enumerate(ranked)],
        justify_right_from=3,
    )
    console.print(f"Copeland aggregate: weighted tau {out['copeland_quality'][0]:.3f}, "
                  f"top-1 regret {out['copeland_quality'][2]:.3f}.")
    for name, reason in failed.items():
        err_console.print(f"[yellow]{name} could not score this zoo:[/] {reason}")
