"""The ``zoorank`` command line.

Each command lives in its own module and is imported only when it runs (or when its own ``--help`` is asked for),
so that ``zoorank --help`` and ``zoorank --version`` answer without importing numpy, scikit-learn or torch.
"""

from __future__ import annotations

import importlib

import click

from zoorank import __version__
from zoorank.errors import InputError

#: command -> (module, attribute, one-line help shown by ``zoorank --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bench": ("zoorank.cli.bench", "bench", "Benchmarks: metric speed, extraction, ZooBench build and run."),
    "demo": ("zoorank.cli.demo", "demo", "Offline demo: rank a ZooBench target the rankers never saw."),
    "explain": ("zoorank.cli.rank", "explain", "The spider chart of a model (Model Spider's view of it)."),
    "extract": ("zoorank.cli.score", "extract", "Extract (and cache) the features of every model of a zoo."),
    "fit": ("zoorank.cli.rank", "fit", "Refit Fennec, Model Spider and MetaRank from the knowledge base."),
    "kb": ("zoorank.cli.kb", "kb", "The knowledge base: record results, export the matrix."),
    "metrics": ("zoorank.cli.metrics", "metrics", "Transferability metrics: list them, score features, recommend."),
    "rank": ("zoorank.cli.rank", "rank", "Rank a zoo for a dataset, running only the most promising models."),
    "score": ("zoorank.cli.score", "score", "Extract, score and rank every model of a zoo on a dataset."),
    "zoo": ("zoorank.cli.zoo", "zoo", "Model zoos: YAML/TOML files listing model specs."),
}


class _Group(click.Group):
    """The top-level group: commands imported on first use (module doc); :class:`InputError` is reported as one
    clear line (no traceback)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoorank")
def cli() -> None:
    """Rank a zoo of pre-trained models for a new dataset without fine-tuning them all."""


def main() -> None:
    cli()
