"""Helpers shared by the CLI commands: array loading, tables, JSON output."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

# Rich falls back to 80 columns when output is not a terminal (CI logs, pipes): tables of many
# columns then wrap; give them room there.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


def load_array(path: str | None, what: str) -> np.ndarray | None:
    """Load ``.npy`` / ``.npz`` (single array) / ``.csv`` / ``.txt``; a clear error otherwise."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise click.BadParameter(f"{p} does not exist", param_hint=what)
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise click.BadParameter(
                        f"{p} holds {len(z.files)} arrays ({', '.join(z.files)}); save one", param_hint=what
                    )
                return z[z.files[0]]
        if p.suffix in {".csv", ".txt", ".tsv"}:
            return np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=1)
    except click.BadParameter:
        raise
    except Exception as exc:
        if p.suffix in {".npy", ".npz"}:  # numpy's complaint about pickles says nothing useful here
            raise click.BadParameter(f"cannot read {p}: not a numeric NumPy array file (damaged, or holding "
                                     f"Python objects); save a float or integer array with numpy.save",
                                     param_hint=what) from exc
        raise click.BadParameter(f"cannot read {p}: {exc}", param_hint=what) from exc
    raise click.BadParameter(f"{p}: unsupported file type (use .npy, .npz, .csv or .txt)", param_hint=what)


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def print_table(title: str, columns: list[str], rows: list[list[str]], *, justify_right_from: int = 1) -> None:
    table = Table(title=title, header_style="bold", title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i >= justify_right_from else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))
