"""The Pareto study: points, front, label placement, the plot and its section."""

import pytest

from zoorank import evaluation as H
from zoorank.errors import InputError


def test_pareto_points_front_and_plot(tmp_path, capsys):
    from benchmarks import pareto as P

    recs = [H.Record(m, t, tau + 0.01 * j, 0.0, 0.0, fp, 0.1)
            for j, t in enumerate(("t0", "t1"))
            for m, tau, fp in (("logme", 0.5, 36), ("pipeline@k5", 0.6, 5), ("fennec", 0.3, 0), ("sfda", 0.4, 36),
                               ("baseline:popularity", 0.2, 0))]
    recs.append(H.Record("spider", "t0", 0.9, 0.0, 0.0, 0, 0.1))  # scored t0 only: not comparable on t1
    pts = {p.method: p for p in P.points(recs)}
    assert pts["logme"].weighted_tau == pytest.approx(0.5) and pts["logme"].forward_passes == 36
    assert pts["spider"].n_tasks == 1 and pts["logme"].n_tasks == 1  # only the targets every method scored
    pts = P.points(recs, ["logme", "pipeline@k5", "fennec", "sfda", "baseline:popularity"])
    assert pts[0].weighted_tau == pytest.approx(0.505) and pts[0].n_tasks == 2
    assert [p.method for p in P.pareto_front(pts)] == ["fennec", "pipeline@k5"]
    with pytest.raises(InputError, match="no records of nope"):
        P.points(recs, ["logme", "nope"])
    close = [P.Point("a", 37, 0.70, 1), P.Point("b", 37, 0.69, 1), P.Point("c", 36.5, 0.40, 1),
             P.Point("d", 0, 0.695, 1)]
    assert P.label_heights(close, 0.05) == pytest.approx([0.70, 0.65, 0.40, 0.695])  # b pushed down; d elsewhere
    assert P.complete_methods(recs) == (["logme", "pipeline@k5", "fennec", "sfda", "baseline:popularity"], ["spider"])
    path = H.write_json(recs, tmp_path / "r.json")
    assert P.main(["--json", str(path), "--out", str(tmp_path / "p"), "--write", str(tmp_path / "B.md")]) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "B.md").read_text()
    assert "<!-- pareto:start -->" in md and "![pareto](p.png)" in md and "| pipeline@k5 | 5.0 | 0.605 | yes |" in md
    assert "left out (skipped some targets): spider" in out
    assert (tmp_path / "p.png").stat().st_size > 5000 and (tmp_path / "p.svg").is_file()
    assert "| pipeline@k5 | 5.0 | 0.605 | yes |" in out
