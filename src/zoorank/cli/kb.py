"""``zoorank kb``: the knowledge base of past results (models x tasks x kinds)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from zoorank.cli._common import console, fmt, print_table
from zoorank.errors import InputError

KB_OPTION = click.option("--kb", "kb_path", default=None, metavar="PATH|URL",
                         help="Knowledge-base file or sqlite:/// URL (default: $ZOORANK_KB or the user data dir).")


def open_kb(kb_path, *, must_exist: bool = False):
    """The knowledge base at ``kb_path`` (None: the default). ``must_exist``: for commands that only read it, a
    missing file is an error (a typo must not create an empty knowledge base)."""
    from zoorank.store import KnowledgeBase
    from zoorank.store.location import resolve

    try:
        if must_exist:
            where = resolve(kb_path)
            if not where.is_memory and not Path(where.database).is_file():
                raise InputError(f"knowledge base {where.database} does not exist: record results into it first "
                                 f"(zoorank kb record, zoorank rank --kb), or check the --kb path")
        return KnowledgeBase(kb_path)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def kb() -> None:
    """The knowledge base: record results, export the models x tasks matrix."""


@kb.command("record")
@click.argument("model")
@click.argument("task")
@click.option("--kind", required=True, help="finetune_acc, linear_probe_acc, metric:<name>, ...")
@click.option("--value", required=True, type=float)
@click.option("--provenance", default=None, help="Where the value comes from (free text).")
@KB_OPTION
def record(model, task, kind, value, provenance, kb_path) -> None:
    """Record one result: MODEL on TASK has VALUE of KIND."""
    from zoorank.store.kinds import check_range, validate_kind

    try:  # a bad kind or value is refused before the knowledge base is opened (or created)
        check_range(validate_kind(kind), value, f"({model!r}, {task!r}, {kind!r})")
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    with open_kb(kb_path) as base:
        try:
            base.record(model, task, kind, value, provenance={"source": provenance or "cli"})
        except InputError as exc:
            raise click.ClickException(str(exc)) from exc
        console.print(f"recorded {kind} = {value:g} for {model} on {task} in {base.location}")


@kb.command("matrix")
@click.option("--kind", required=True, help="Which kind of result fills the matrix.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write the matrix as CSV here ('-' for standard output).")
@KB_OPTION
def matrix(kind, csv_path, kb_path) -> None:
    """Show or export the models x tasks matrix of one KIND (missing entries empty)."""
    with open_kb(kb_path, must_exist=True) as base:
        try:
            m = base.matrix(kind)
        except InputError as exc:
            raise click.ClickException(str(exc)) from exc
    if csv_path == "-":
        m.to_csv(sys.stdout)
        return
    if csv_path:
        m.to_csv(csv_path)
        console.print(f"wrote {len(m.models)} x {len(m.tasks)} matrix to {csv_path}")
        return
    print_table(f"{kind}: {len(m.models)} models x {len(m.tasks)} tasks", ["model", *m.tasks],
                [[name, *[fmt(float(v), 4) for v in row]] for name, row in zip(m.models, m.values, strict=True)])
