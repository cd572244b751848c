"""Bad input to the command line, tried as a new user would: every case ends in one line naming the problem and
the mend, exit code 1 or 2, and nothing written that was not asked for.

One matrix: (case, command, expected message). Each command runs through click's runner in a fresh folder
holding a tiny image dataset, an empty zoo file and nothing else. Cases that are not errors but must still be
said (metrics left out by ``--metric all``, a damaged feature-cache entry recomputed) are in
``tests/cli/test_cli_zoo.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from image_cases import write_image_folder
from zoorank import paths
from zoorank.cli import cli

ZOOBENCH = paths.zoobench_dir().resolve()  # read before any test changes the working directory


@pytest.fixture
def folder(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "data")
    (tmp_path / "zoo.yaml").write_text("models: []\n")
    record = {"method": "m", "task": "t", "weighted_tau": 0.5, "pearson": 0.5, "top1_regret": 0.0,
              "forward_passes": 1, "seconds": 0.1}
    (tmp_path / "a.json").write_text(json.dumps([record]))
    (tmp_path / "b.json").write_text(json.dumps([{**record, "task": "u"}]))
    (tmp_path / "broken.yaml").write_text("models:\n  - timm:resnet18\n   bad: [\n")
    (tmp_path / "known.csv").write_text("name,acc\nresnet18,0.8\n")
    (tmp_path / "broken.json").write_text('{"models": [\n  "timm:resnet18",\n]}\n')
    (tmp_path / "garbage.npy").write_bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8).tobytes())
    custom = tmp_path / "custom-hf"  # a Hugging Face model directory whose config asks for its own code
    custom.mkdir()
    (custom / "config.json").write_text('{"model_type": "xcustom", "auto_map": '
                                        '{"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"}}')
    (tmp_path / "hf.yaml").write_text("models:\n  - name: custom\n    source: hf\n    ref: ./custom-hf\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "notamodel.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "weights-dir").mkdir()
    (tmp_path / "w.yaml").write_text("models:\n"
                                     "  - {name: text, source: timm, ref: resnet18, weights: ./notamodel.txt}\n"
                                     "  - {name: textlocal, source: local, ref: notamodel.txt}\n"
                                     "  - {name: folder, source: timm, ref: resnet18, weights: weights-dir/}\n"
                                     "  - {name: gone, source: timm, ref: resnet18, weights: gone.pth}\n")
    rng = np.random.default_rng(3)
    np.save(tmp_path / "X.npy", rng.normal(size=(20, 4)))
    np.save(tmp_path / "y.npy", np.arange(20) % 2)
    (tmp_path / "targets.csv").write_text("path,age,ink\ndata/a/0.png,3.5,0.1\ndata/a/1.png,old,0.2\n"
                                          "data/b/0.png,7,0.3\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


#: (case, arguments, a piece of the one-line message that names the problem and the mend)
MATRIX = [
    ("accuracy above 1", ["kb", "record", "m", "t", "--kind", "finetune_acc", "--value", "2.0", "--kb", "kb.sqlite"],
     "outside [0, 1]: finetune_acc is a fraction"),
    ("negative accuracy", ["kb", "record", "m", "t", "--kind", "finetune_acc", "--value", "-1", "--kb", "kb.sqlite"],
     "outside [0, 1]"),
    ("accuracy as a percentage", ["kb", "record", "m", "t", "--kind", "linear_probe_acc", "--value", "87", "--kb",
                                  "kb.sqlite"], "if 87 is a percentage, record 0.87"),
    ("budget not a number", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--budget", "abc"],
     "Invalid value for '--budget': budget must be 'auto', a number of models, 'all', image-passes such as "
     "'20000img' or seconds such as '30s', got 'abc'"),
    ("negative budget", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--budget", "-1"],
     "Invalid value for '--budget'"),
    ("known accuracy not a pair", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--known", "resnet18"],
     "Invalid value for '--known': 'resnet18' is not model=accuracy (e.g. resnet18=0.87), nor is 'resnet18' a CSV"),
    ("known accuracy not a number", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--known", "a=0.8,b=high"],
     "Invalid value for '--known': the accuracy of 'b', 'high', is not a number"),
    ("known accuracies in a CSV without the columns", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--known",
                                                       "known.csv"],
     "known.csv: a CSV file needs the columns model and accuracy (it has name, acc)"),
    ("probe of 0 images", ["rank", "--zoo", "zoo.yaml", "--data", "data", "--probe", "0"],
     "Invalid value for '--probe': 0 is not in the range x>=1"),
    ("negative probe", ["score", "--zoo", "zoo.yaml", "--data", "data", "--probe", "-5"],
     "Invalid value for '--probe': -5 is not in the range x>=1"),
    ("fit from a knowledge base that does not exist", ["fit", "--kb", "typo.sqlite", "--out", "rankers"],
     "knowledge base typo.sqlite does not exist: record results into it first"),
    ("matrix of a missing knowledge base", ["kb", "matrix", "--kind", "finetune_acc", "--kb", "typo.sqlite"],
     "knowledge base typo.sqlite does not exist"),
    ("YAML syntax error", ["zoo", "list", "broken.yaml"],
     "zoo file 'broken.yaml' is not valid YAML: mapping values are not allowed here at line 3, column 7"),
    ("JSON syntax error", ["zoo", "list", "broken.json"], "is not valid JSON: Expecting value at line 3, column 1"),
    ("garbage .npy", ["metrics", "score", "--features", "garbage.npy", "--labels", "garbage.npy"],
     "cannot read garbage.npy: not a numeric NumPy array file"),
    ("HF model with custom code", ["zoo", "show", "hf.yaml", "custom"],
     "runs custom code from its repository; if you trust it, set 'trust: true' on it in the zoo file"),
    ("a text file as weights", ["zoo", "show", "w.yaml", "text"],
     "weights file notamodel.txt is not a model file (not written by torch.save, torch.jit.save or safetensors)"),
    ("a text file as a local model", ["zoo", "show", "w.yaml", "textlocal"],
     "file notamodel.txt is not a model file"),
    ("a folder as weights", ["zoo", "show", "w.yaml", "folder"], "is a folder, not a file; give the file in it"),
    ("missing weights", ["zoo", "show", "w.yaml", "gone"],
     "does not exist (relative paths are read from the zoo file's folder)"),
    ("batch of 0 images", ["extract", "--zoo", "zoo.yaml", "--data", "data", "--batch-size", "0"],
     "Invalid value for '--batch-size': 0 is not in the range x>=1"),
    ("a benchmark of one target", ["bench", "run", "--dir", str(ZOOBENCH), "--within", "shape_outlines"],
     "has no history to learn from; give at least 2 tasks"),
    ("an unknown target in --within", ["bench", "run", "--dir", str(ZOOBENCH), "--within", "shape_outlines,nosuch"],
     "unknown task 'nosuch'"),
    ("a subset run over the full benchmark's section",
     ["bench", "run", "--dir", str(ZOOBENCH), "--within", "shape_outlines,blob_scale", "--write", "B.md"],
     "would replace the full benchmark's 'zoobench' section; give it its own --section"),
    ("comparing runs with nothing in common", ["bench", "compare", "a.json", "b.json", "--only-common"],
     "the two files have no (method, task) record in common; nothing was compared"),
    ("comparing a file that is not a run", ["bench", "compare", "zoo.yaml", "zoo.yaml"],
     "zoo.yaml: not JSON (Expecting value at line 1); give two files written by zoorank bench run --json"),
    ("k-NN with k of 0", ["metrics", "score", "--features", "X.npy", "--labels", "y.npy", "--metric", "knn",
                          "--param", "k=0"], "knn: k must be an integer >= 1, got 0"),
    ("k-NN with k above the probe", ["metrics", "score", "--features", "X.npy", "--labels", "y.npy", "--metric",
                                     "knn", "--param", "k=20"], "knn: k = 20 needs at least 21 samples"),
    ("a parameter no metric takes", ["metrics", "score", "--features", "X.npy", "--labels", "y.npy", "--metric",
                                     "knn", "--param", "kk=3"], "no selected metric takes 'kk'"),
    ("a parameter without a value", ["metrics", "score", "--features", "X.npy", "--labels", "y.npy", "--param", "k"],
     "give NAME=VALUE, e.g. k=5; got 'k'"),
    ("regression with a classification metric", ["metrics", "score", "--features", "X.npy", "--labels", "X.npy",
                                                 "--regression", "--metric", "hscore"],
     "hscore has no regression form; metrics that have one: knn, logme"),
    ("regression targets that are not numbers", ["score", "--zoo", "w.yaml", "--data", "targets.csv", "--targets",
                                                 "age"], "line 3: column 'age' holds 'old', not a finite number"),
    ("a regression target column that is not there", ["score", "--zoo", "w.yaml", "--data", "targets.csv",
                                                       "--targets", "height"], "missing column(s) 'height'"),
    ("regression targets outside a CSV", ["rank", "--zoo", "w.yaml", "--data", "data", "--targets", "age"],
     "regression targets are read from a CSV file"),
    ("regression with a classification metric in score", ["score", "--zoo", "w.yaml", "--data", "targets.csv",
                                                          "--targets", "ink", "--metric", "leep"],
     "leep has no regression form"),
]


def _truncate(path, size=5000):
    path.write_bytes(path.read_bytes()[:size])


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(1).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def _flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


#: damaged fitted rankers (written by ``zoorank fit``, then damaged on disk): (case, file, damage)
DAMAGED = [
    ("truncated fennec.npz", "fennec.npz", _truncate),
    ("random bytes over spider.json", "spider/spider.json", _random_bytes),
    ("a bit flipped in metarank.npz", "metarank.npz", _flip_a_bit),
    ("a ranker file deleted", "spider/spider.pt", lambda p: p.unlink()),
    ("random bytes over the manifest", "rankers.json", _random_bytes),
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The committed demo rankers saved again by zoorank's own writer (with its checksums)."""
    from zoorank.pipeline.learn import Rankers

    out = tmp_path_factory.mktemp("fitted") / "rankers"
    Rankers.load("benchmarks/zoobench/demo").save(out)
    return out


@pytest.mark.parametrize(("case", "rel", "damage"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damaged_rankers_are_named_with_the_mend(fitted, tmp_path, case, rel, damage):
    import shutil

    rankers = tmp_path / "rankers"
    shutil.copytree(fitted, rankers)
    damage(rankers / rel)
    res = CliRunner().invoke(cli, ["explain", "some-model", "--rankers", str(rankers)])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    text = " ".join(res.output.split())
    assert rel in text and "run `zoorank fit` again" in text, text


@pytest.mark.parametrize(("case", "argv", "message"), MATRIX, ids=[m[0] for m in MATRIX])
def test_bad_input_ends_in_one_clear_line(folder, case, argv, message):
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code in (1, 2), (case, res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), (case, repr(res.exception))
    assert message in " ".join(res.output.split()), (case, res.output)
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip() and not ln.startswith(("Usage:", "Try "))]
    assert len(lines) == 1, (case, res.output)
    after = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert [p for p in after if p not in before] == []  # nothing written


@pytest.mark.parametrize(("name", "text"), [
    ("z.yaml", "# my zoo\nmodels:\n  # the baseline\n  - timm:resnet18   # small\n"),
    ("e.yaml", "models: []  # none yet\n"),
    ("t.toml", "# my zoo\n[[models]]\nname = \"a\"  # the baseline\nsource = \"timm\"\nref = \"resnet18\"\n"),
])
def test_zoo_add_keeps_the_users_text(tmp_path, name, text):
    from zoorank.zoo import load_zoo

    path = tmp_path / name
    path.write_text(text)
    before = [s.name for s in load_zoo(path)]
    res = CliRunner().invoke(cli, ["zoo", "add", str(path), "timm:convnext_atto", "--no-pretrained"])
    assert res.exit_code == 0, res.output
    after = path.read_text()
    comments = [ln.partition("#")[2] for ln in text.splitlines() if "#" in ln]
    assert all(c in after for c in comments), after
    if not text.startswith("models: []"):
        assert after.startswith(text)  # the user's text is kept as it was, the new entry after it
    specs = load_zoo(path)
    assert [s.name for s in specs] == [*before, "convnext_atto"] and specs[-1].pretrained is False


def test_a_relative_hf_directory_is_read_from_the_zoo_files_folder(folder, tmp_path, monkeypatch):
    """``ref: ./custom-hf`` in a zoo file means the folder beside that file, wherever the command runs."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = CliRunner().invoke(cli, ["zoo", "show", str(folder / "hf.yaml"), "custom"])
    assert res.exit_code == 1 and "runs custom code" in res.output, res.output  # found, then refused
    from zoorank.zoo import load_zoo

    (spec,) = load_zoo(folder / "hf.yaml")
    assert spec.ref == str(folder / "custom-hf")
