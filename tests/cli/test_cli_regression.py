"""Regression targets end to end: a CSV of images with real-valued targets read by ``from_csv(target_columns=)``,
scored by ``zoorank score --targets`` and ranked by ``zoorank rank --targets`` with the metrics that have a
regression form, the scores equal to the metric computed directly on the same features."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from cli_cases import payload, run
from zoorank import metrics as M
from zoorank.data import from_csv, probe
from zoorank.errors import InputError
from zoorank.zoo import ModelSpec, save_zoo
from zoorank.zoo.extract import extract_features
from zoorank.zoo.loading import load_model

SPECS = [ModelSpec(name="resnet18", source="timm", ref="resnet18", pretrained=False, input_size=32, seed=1),
         ModelSpec(name="mobilenetv3", source="timm", ref="mobilenetv3_small_050", pretrained=False,
                   input_size=32, seed=2)]




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """40 digit images; targets: the digit plus its mean ink (``value``) and the ink alone (``ink``)."""
    root = tmp_path_factory.mktemp("regression")
    d = load_digits()
    lines = ["path,value,ink,label"]
    for i in range(40):
        img = (d.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(img).resize((32, 32)).save(root / f"{i}.png")
        ink = float(img.mean() / 255)
        lines.append(f"{i}.png,{d.target[i] + ink:.6f},{ink:.6f},{d.target[i]}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root, save_zoo(SPECS, root / "zoo.yaml")


def test_csv_targets_make_a_regression_dataset(setup):
    root, _ = setup
    one = from_csv(root / "data.csv", target_columns="value")
    two = from_csv(root / "data.csv", target_columns=["value", "ink"])
    cls = from_csv(root / "data.csv")
    assert one.is_regression and not one.is_labelled and one.n_targets == 1 and one.targets.shape == (40,)
    assert two.targets.shape == (40, 2) and two.n_targets == 2 and "2 regression target(s)" in repr(two)
    assert not cls.is_regression and cls.n_classes == 10
    assert len({one.identity, two.identity, cls.identity}) == 3  # the targets are part of the identity
    sub = one.subset([3, 1])
    np.testing.assert_array_equal(sub.targets, one.targets[[3, 1]])
    p = probe(one, n_max=10, seed=0)  # no classes to stratify by: a plain seeded subsample
    assert len(p) == 10 and p.labels is None


def test_bad_targets_say_where(setup, tmp_path):
    root, _ = setup
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,value\n{root / '0.png'},1.5\n{root / '1.png'},tall\n")
    with pytest.raises(InputError, match=r"line 3: column 'value' holds 'tall', not a finite number"):
        from_csv(bad, target_columns="value")
    with pytest.raises(InputError, match=r"missing column\(s\) 'height'"):
        from_csv(bad, target_columns="value,height")
    with pytest.raises(InputError, match="one or more column names"):
        from_csv(bad, target_columns="value,")


def test_score_and_rank_regression_match_the_metric_on_the_features(setup, tmp_path):
    root, zoo = setup
    cache = tmp_path / "cache"
    r = run("score", "--zoo", zoo, "--data", root / "data.csv", "--targets", "value", "--cache", cache,
            "--metric", "all", "--json")
    assert r.exit_code == 0, r.output
    out = payload(r.output)
    assert "1 regression target(s)" in r.output
    assert out["ranked_by"] == "copeland" and len(out["ranking"]) == 2
    ds = from_csv(root / "data.csv", target_columns="value")
    for row in out["ranking"]:
        assert set(row["scores"]) == set(M.available(regression=True))  # only the metrics with a regression form
        spec = next(s for s in SPECS if s.name == row["model"])
        feats = extract_features(load_model(spec), ds, batch_size=64).features
        for name, value in row["scores"].items():
            assert value == pytest.approx(M.compute(name, feats, ds.targets, regression=True), rel=1e-5, abs=1e-6)
    ranked = run("rank", "--zoo", zoo, "--data", root / "data.csv", "--targets", "value", "--cache", cache,
                 "--json")
    assert ranked.exit_code == 0, ranked.output
    got = payload(ranked.output)
    assert got["ranked_by"] == "logme"
    by_logme = sorted(out["ranking"], key=lambda row: -row["scores"]["logme"])
    assert [row["model"] for row in got["ranking"]] == [row["model"] for row in by_logme]


@pytest.mark.parametrize(("command", "extra", "message"), [
    ("score", ["--metric", "hscore"], "hscore has no regression form; metrics that have one: knn, logme"),
    ("score", ["--targets", "value", "--data", "FOLDER"], "regression targets are read from a CSV file"),
    ("rank", ["--budget", "3"], "with regression targets every model runs"),
    ("rank", ["--no-labels"], "not available with regression targets"),
])
def test_regression_options_that_do_not_apply_are_refused(setup, command, extra, message):
    root, zoo = setup
    data = ["--data", root / "data.csv"] if "--data" not in extra else []
    extra = [root if a == "FOLDER" else a for a in extra]
    targets = ["--targets", "value"] if "--targets" not in extra else []
    r = run(command, "--zoo", zoo, *data, *targets, *extra)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
