"""The ``zoorank`` command line."""

from __future__ import annotations

import click

from zoorank import __version__
from zoorank.cli.bench import bench
from zoorank.cli.demo import demo
from zoorank.cli.kb import kb
from zoorank.cli.metrics import metrics
from zoorank.cli.rank import explain, fit, rank
from zoorank.cli.score import extract, score
from zoorank.cli.zoo import zoo
from zoorank.errors import InputError


class _Group(click.Group):
    """A click group whose commands report :class:`InputError` as one clear line (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoorank")
def cli() -> None:
    """Rank a zoo of pre-trained models for a new dataset without fine-tuning them all."""


cli.add_command(metrics)
cli.add_command(bench)
cli.add_command(demo)
cli.add_command(zoo)
cli.add_command(extract)
cli.add_command(score)
cli.add_command(kb)
cli.add_command(rank)
cli.add_command(fit)
cli.add_command(explain)


def main() -> None:
    cli()
