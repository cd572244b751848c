"""Calling the CLI in tests: click's runner with exceptions raised, and the JSON document of an output."""

import json

from click.testing import CliRunner

from zoorank.cli import cli


def run(*args):
    """``zoorank <args>`` through click's runner (arguments turned to strings; exceptions propagate)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def payload(output: str):
    """The JSON document of a ``--json`` output (whatever was printed before its first ``{``)."""
    return json.loads(output[output.index("{"):])
