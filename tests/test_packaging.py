"""What the installed package holds and what its command line costs to start."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (whl,) = out.glob("zoorank-*.whl")
    return whl


def test_wheel_holds_the_library_and_no_study(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = {n for n in names if n.endswith(".py")}
    assert all(n.startswith("zoorank/") for n in modules), sorted(n for n in modules if not n.startswith("zoorank/"))
    for package in ("metrics", "ranking.py", "zoo", "data", "store", "methods", "pipeline", "report", "cli",
                    "evaluation", "datasets/zoobench", "paths.py", "metric_sets.py"):
        assert any(n.startswith(f"zoorank/{package}") for n in modules), package
    studies = ("end_to_end", "spider_curve", "fine_ceiling", "fennec_published", "fennec_scaling", "metarank_eval",
               "learning_curve", "pareto", "archi2vec_survey", "published", "noise_ceiling", "ship_defaults",
               "encoder_study", "few_shot", "live_cost")
    assert not [n for n in modules if Path(n).stem in studies]
    assert not [n for n in names if n.startswith(("benchmarks/", "tests/"))]
    assert "zoorank/methods/metarank/data/metric_cards.yaml" in names
    assert {"zoorank/methods/metarank/data/shipped/metarank.npz",
            "zoorank/methods/metarank/data/shipped/default_order.json"} <= set(names)  # the out-of-the-box defaults


def test_package_never_reaches_for_the_checkout():
    """No module of the package imports the studies or finds the repository from its own location."""
    offenders = []
    for path in (ROOT / "src" / "zoorank").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for bad in ("import benchmarks", "from benchmarks", "__file__).resolve().parents", "__file__).parent"):
            if bad in text:
                offenders.append(f"{path.relative_to(ROOT)}: {bad}")
    assert offenders == []


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["bench", "--help"]])
def test_help_and_version_import_nothing_heavy(argv):
    """``zoorank --help`` / ``--version`` answer without numpy, scikit-learn, scipy or torch (lazy commands)."""
    code = (f"import sys\nfrom zoorank.cli import cli\ntry:\n    cli.main(args={argv!r}, prog_name='zoorank')\n"
            "except SystemExit:\n    pass\nheavy = sorted(m for m in ('numpy', 'scipy', 'sklearn', 'torch') "
            "if m in sys.modules)\nprint('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    heavy = out.strip().splitlines()[-1]
    if argv == ["bench", "--help"]:
        assert "torch" not in heavy and "sklearn" not in heavy, heavy
    else:
        assert heavy == "HEAVY []", heavy


#: The layers of docs/ARCHITECTURE.md, lowest first: a unit may import its own layer and those below it.
LAYERS = [
    {"__init__", "_kernels", "errors", "jsonfile", "paths", "ranking", "metrics", "metric_sets"},
    {"data", "store"},
    {"zoo"},
    {"methods"},
    {"pipeline"},
    {"report"},
    {"evaluation"},
    {"datasets"},
    {"demo"},
    {"cli", "__main__"},
]


def _imports(path: Path) -> set[str]:
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "zoorank":
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:
                out |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("zoorank.")}
    return out


def test_layers_of_the_architecture_page_hold():
    layer = {unit: i for i, units in enumerate(LAYERS) for unit in units}
    root = ROOT / "src" / "zoorank"
    units = {p.relative_to(root).parts[0].removesuffix(".py") for p in root.glob("*") if p.suffix == ".py" or
             (p.is_dir() and (p / "__init__.py").exists())}
    assert units <= set(layer), sorted(units - set(layer))
    upward = []
    for path in root.rglob("*.py"):
        unit = path.relative_to(root).parts[0].removesuffix(".py")
        for dep in _imports(path) - {unit, "__version__", "InputError"}:
            if layer.get(dep, -1) > layer[unit]:
                upward.append(f"{path.relative_to(root)} imports zoorank.{dep}")
    assert upward == []
