"""``zoorank zoo``: list, add to and inspect a zoo file."""

from __future__ import annotations

import click

from zoorank.cli._common import console, print_json, print_table
from zoorank.errors import InputError


def read_zoo(path):
    from zoorank.zoo import load_zoo

    try:
        return load_zoo(path)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def zoo() -> None:
    """Model zoos: YAML/TOML files listing model specs (see docs/ZOO.md)."""


@zoo.command("list")
@click.argument("zoo_file", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def list_cmd(zoo_file, as_json) -> None:
    """List the models of ZOO_FILE (nothing is loaded)."""
    specs = read_zoo(zoo_file)
    if as_json:
        print_json([s.to_mapping() for s in specs])
        return
    print_table(f"{zoo_file}: {len(specs)} models", ["name", "model", "weights", "input size", "trust"],
                [[s.name, str(s), str(s.weights or ("pretrained" if s.pretrained else "random init")),
                  str(s.input_size or "-"), "yes" if s.trust else ""] for s in specs], justify_right_from=99)


@zoo.command("add")
@click.argument("zoo_file", type=click.Path())
@click.argument("model")
@click.option("--name", default=None, help="Name in rankings (default: derived from MODEL).")
@click.option("--weights", default=None, help="A local weights file or a pretrained tag.")
@click.option("--arch", default=None, help="Architecture of a local state dict.")
@click.option("--input-size", type=int, default=None, help="Square input size override.")
@click.option("--no-pretrained", is_flag=True, help="Random initialisation (architecture only).")
@click.option("--trust", is_flag=True, help="Allow a pickled module / TorchScript file (runs code).")
def add(zoo_file, model, name, weights, arch, input_size, no_pretrained, trust) -> None:
    """Add MODEL (e.g. timm:resnet50.a1_in1k, torchvision:mobilenet_v2, local:/x.pt) to ZOO_FILE."""
    from zoorank.zoo import ModelSpec
    from zoorank.zoo.spec import add_to_zoo

    overrides = {k: v for k, v in {"name": name, "weights": weights, "arch": arch, "input_size": input_size,
                                    "trust": trust or None, "pretrained": False if no_pretrained else None}.items()
                 if v is not None}
    try:
        spec = ModelSpec.parse(model, **overrides)
        specs = add_to_zoo(zoo_file, spec)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"added {spec.name} ({spec}) to {zoo_file}: {len(specs)} models")


@zoo.command("show")
@click.argument("zoo_file", type=click.Path())
@click.argument("name")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def show(zoo_file, name, device, as_json) -> None:
    """Load model NAME of ZOO_FILE and show what zoorank sees of it."""
    from zoorank.zoo import load_model

    specs = {s.name: s for s in read_zoo(zoo_file)}
    if name not in specs:
        raise click.ClickException(f"{zoo_file} has no model {name!r}; it has: {', '.join(specs)}")
    try:
        m = load_model(specs[name], device=device)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    info = {"name": m.name, "spec": str(m.spec), "library": m.library, "identity": m.identity,
            "params": m.num_params, "layers": m.num_layers, "feature_dim": m.feature_dim,
            "source_classes": m.num_classes, "preprocess": m.preprocess_config}
    if as_json:
        print_json(info)
        return
    print_table(f"model {name}", ["property", "value"], [[k, str(v)] for k, v in info.items()], justify_right_from=99)
