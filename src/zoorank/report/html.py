"""One self-contained HTML page of a pipeline ranking (:class:`~zoorank.pipeline.PipelineResult`).

The page (:func:`write_html`) holds, top to bottom:

1. **header** — the title; whether labels were used; the metric chosen for the fine stage, MetaRank's reason for it
   and the candidate metrics in MetaRank's order; the size of the zoo and the budget K; when true accuracies are
   given, the weighted Kendall tau and top-1 regret of the ranking against them; the pipeline's notes;
2. **ranking table** (``id="ranking"``) — rank, model, a mark (●, and a shaded row) for the K models that had
   forward passes, the final score, every coarse scorer's score (Fennec, Spider), every fine scorer's score (the
   chosen metric, Spider with model-specific tokens; "–" for models outside the top K) and, when ``truth`` is
   given, the true accuracy;
3. **bar chart** (``id="bar-chart"``) — the final scores of the ``top`` best models, horizontal bars, the K
   forward-passed models in a darker colour (matplotlib, Agg backend, inlined as SVG text);
4. **spider chart** (``id="spider-chart"``, only with ``spider_values``) — the radar chart of Model Spider's
   affinities of the top pick to the task clusters, drawn by :func:`zoorank.methods.spider.chart.spider_chart`
   and inlined as SVG;
5. **cost table** (``id="cost"``) — one row per stage (name, zoo forward passes, encoder passes, seconds,
   detail) and a total row.

The file needs nothing else: the CSS is inline, the charts are inline SVG (matplotlib's XML prolog, DOCTYPE,
metadata and namespace declarations are dropped, which HTML5 does not need, and their element ids are prefixed so
that the two charts cannot clash), there is no script and no reference to any URL. Every user-given string (the
title, model names, notes, MetaRank's reason, stage details, cluster names) is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import io
import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoorank import __version__
from zoorank.errors import InputError

if TYPE_CHECKING:
    from zoorank.pipeline import PipelineResult

__all__ = ["write_html"]

DASH = "–"
MARK = "●"
_RAN, _COARSE_ONLY = "#2a6fb0", "#a9c3de"  # bar colours: forward-passed models / coarse score only
_SCORER_NAMES = {"fennec": "Fennec", "spider": "Spider"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d2330; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d5dbe5; padding-bottom: .2rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .8rem 0; }
dl.facts dt { font-weight: 600; color: #4a5468; }
dl.facts dd { margin: 0; }
ul.notes li { color: #6b4e00; }
table { border-collapse: collapse; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid #d5dbe5; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f1f4f9; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mark { text-align: center; color: #2a6fb0; }
tr.ran td { background: #e8f1fb; }
tr.total td { font-weight: 600; background: #f1f4f9; }
p.legend, p.caption, footer { color: #5a6478; font-size: .85rem; }
svg.chart { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
"""

# Parts of matplotlib's SVG output that an inline <svg> in HTML5 does not need (and that name URLs).
_SVG_DROP = re.compile(r"<\?xml.*?\?>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", re.S)
_SVG_XMLNS = re.compile(r'\s+xmlns(?::[\w-]+)?="[^"]*"')
_SVG_ID = re.compile(r'\bid="([^"]*)"')
_SVG_REF = re.compile(r'(url\(#|href="#)([^)"]*)')


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    """A score for the tables: 4 decimals, scientific notation for very large or small magnitudes, "–" for None."""
    if v is None:
        return DASH
    x = float(v)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3e}"
    return f"{x:.4f}"


def _mpl_text(s: str) -> str:
    """A string matplotlib draws literally (no mathtext between dollar signs)."""
    return str(s).replace("$", r"\$")


def _inline_svg(svg: str, *, element_id: str, label: str) -> str:
    """matplotlib's SVG document as an inline <svg> element with ``id=element_id`` (ids inside prefixed)."""
    svg = _SVG_DROP.sub("", svg)
    svg = _SVG_XMLNS.sub("", svg)
    svg = _SVG_ID.sub(lambda m: f'id="{element_id}-{m.group(1)}"', svg)
    svg = _SVG_REF.sub(lambda m: f"{m.group(1)}{element_id}-{m.group(2)}", svg)
    start = svg.find("<svg")
    if start < 0:
        raise InputError("html report: matplotlib wrote no <svg> element")
    svg = svg[start:].strip()
    return svg.replace("<svg", f'<svg id="{element_id}" class="chart" role="img" aria-label="{_e(label)}"', 1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return matplotlib, plt


def _svg_rc(salt: str) -> dict[str, Any]:
    # text stays text (searchable, selectable, escaped by matplotlib); a fixed salt makes the ids reproducible
    return {"svg.fonttype": "none", "svg.hashsalt": salt}


# -- sections -------------------------------------------------------------------------------------------------


def _header(result: PipelineResult, title: str, truth: Mapping[str, float] | None) -> str:
    k = len(result.top)
    facts = [
        ("Labels used", "yes" if result.labels_used else "no (label-free parts only)"),
        ("Chosen metric", result.metric if result.metric is not None else "none"),
        ("MetaRank's reason", result.metric_reason or DASH),
        ("Metric candidates", ", ".join(result.metric_ranking) if result.metric_ranking else DASH),
        ("Zoo", f"{len(result.models)} models; budget K = {k} (forward passes: {result.forward_passes})"),
        ("Time", f"{result.seconds:.3f} s"),
    ]
    if truth is not None:
        facts.append(("Against true accuracy", _truth_summary(result, truth)))
    out = [f"<header>\n<h1>{_e(title)}</h1>", '<dl class="facts">']
    out += [f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in facts]
    out.append("</dl>")
    if result.notes:
        out.append('<h2>Notes</h2>\n<ul class="notes">')
        out += [f"<li>{_e(n)}</li>" for n in result.notes]
        out.append("</ul>")
    out.append("</header>")
    return "\n".join(out)


def _truth_summary(result: PipelineResult, truth: Mapping[str, float]) -> str:
    from zoorank import ranking as R

    known = [i for i, m in enumerate(result.models) if m in truth and math.isfinite(float(truth[m]))]
    if len(known) < 2:
        return f"true accuracy known for {len(known)} model(s): no correlation"
    pred = np.asarray(result.scores, dtype=np.float64)[known]
    true = np.array([float(truth[result.models[i]]) for i in known])
    return (f"weighted Kendall tau {R.weighted_tau(pred, true):.3f}, top-1 regret {R.top1_regret(pred, true):.4f} "
            f"(over the {len(known)} models with a true accuracy)")


def _ranking_table(result: PipelineResult, truth: Mapping[str, float] | None) -> str:
    ran = set(result.top)
    fine_label = {"metric": result.metric or "metric"}
    belief = hasattr(result, "low")  # the belief job: posterior means with intervals, images each model saw
    head = ['<th class="num">Rank</th>', "<th>Model</th>", '<th title="forward pass">Fwd</th>',
            '<th class="num">Final score</th>']
    if belief:
        head += [f'<th class="num">{100 * result.level:g}% interval</th>', '<th class="num">Probe images</th>']
    head += [f'<th class="num">{_e(_SCORER_NAMES.get(k, k))} (coarse)</th>' for k in result.coarse]
    head += [f'<th class="num">{_e(fine_label.get(k, _SCORER_NAMES.get(k, k)))} (fine)</th>' for k in result.fine]
    if truth is not None:
        head.append('<th class="num">True accuracy</th>')
    rows = []
    for r, i in enumerate(result.order, 1):
        name = result.models[i]
        cold = ' <span class="cold" title="no history: placed by its own measurements">(cold)</span>' \
            if i in getattr(result, "cold", ()) else ""
        if i in getattr(result, "known", {}):
            cold += ' <span class="cold" title="fine-tuned accuracy given by the user: not run">(known)</span>'
        cells = [f'<td class="num">{r}</td>', f'<td class="model">{_e(name)}{cold}</td>',
                 f'<td class="mark" title="forward pass">{MARK}</td>' if i in ran else '<td class="mark"></td>',
                 f'<td class="num">{_fmt(result.scores[i])}</td>']
        if belief:
            cells += [f'<td class="num">{_fmt(result.low[i])} {DASH} {_fmt(result.high[i])}</td>',
                      f'<td class="num">{result.probe_images.get(i, 0)}</td>']
        cells += [f'<td class="num">{_fmt(v[i])}</td>' for v in result.coarse.values()]
        cells += [f'<td class="num">{_fmt(v.get(i))}</td>' for v in result.fine.values()]
        if truth is not None:
            cells.append(f'<td class="num">{_fmt(truth.get(name))}</td>')
        cls = ' class="ran"' if i in ran else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    k = len(result.top)
    if belief and k:
        legend = (f"{MARK} and shaded rows: the {k} models run on {100 * result.fraction:g}% of the probe set. "
                  f"Final score: the posterior mean of the model's accuracy (the prior from the knowledge base, "
                  f"sharpened by the stacked metrics of the models that ran), with its central "
                  f"{100 * result.level:g}% interval.")
    elif belief:
        legend = "No forward pass: the final score is the prior mean of each model's accuracy."
    elif k:
        legend = (f"{MARK} and shaded rows: the K = {k} models of the coarse ranking that had forward passes; the "
                  f"fine stage re-scored them and they come first. Final score: 1 + their mean normalised fine "
                  f"rank; the others keep their coarse score (mean normalised coarse rank, in (0, 1]).")
    else:
        legend = "Budget 0: no forward pass, the final score is the coarse score (mean normalised coarse rank)."
    return "\n".join([
        "<section>\n<h2>Ranking</h2>",
        '<table id="ranking">',
        f"<thead><tr>{''.join(head)}</tr></thead>",
        "<tbody>", *rows, "</tbody>", "</table>",
        f'<p class="legend">{_e(legend)}</p>',
        "</section>",
    ])


def _bar_chart(result: PipelineResult, n: int) -> str:
    matplotlib, plt = _pyplot()
    from matplotlib.patches import Patch

    order = result.order[:n]
    names = [result.models[i] for i in order]
    vals = np.array([float(result.scores[i]) for i in order])
    finite = np.where(np.isfinite(vals), vals, 0.0)
    ran = set(result.top)
    lo, hi = min(0.0, float(finite.min())), max(0.0, float(finite.max()))
    span = hi - lo or 1.0
    with matplotlib.rc_context(_svg_rc("bar-chart")):
        fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.34 * len(order)))
        try:
            y = np.arange(len(order))
            ax.barh(y, finite, color=[_RAN if i in ran else _COARSE_ONLY for i in order])
            ax.set_yticks(y, names, fontsize=9, parse_math=False)
            ax.invert_yaxis()
            ax.set_xlim(lo, hi + 0.18 * span)
            for yi, v, f in zip(y, vals, finite, strict=True):
                ax.text(f + 0.01 * span, yi, _fmt(v), va="center", fontsize=8, parse_math=False)
            ax.set_xlabel("final score (higher = better)")
            ax.set_title(f"Top {len(order)} of {len(result.models)} models", fontsize=11)
            if ran:
                ax.legend(handles=[Patch(color=_RAN, label=f"forward pass (top K = {len(ran)})"),
                                   Patch(color=_COARSE_ONLY, label="coarse score only")],
                          loc="lower right", fontsize=8, framealpha=0.9)
            ax.spines[["top", "right"]].set_visible(False)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        finally:
            plt.close(fig)
    svg = _inline_svg(buf.getvalue(), element_id="bar-chart",
                      label=f"bar chart of the final scores of the top {len(order)} models")
    return "\n".join(["<section>", f"<h2>Top {len(order)} models</h2>", svg, "</section>"])


def _spider_section(result: PipelineResult, spider_values: Mapping[str, Mapping[str, float]]) -> str:
    from zoorank.methods.spider.chart import spider_chart

    matplotlib, _ = _pyplot()
    ranking = result.ranking
    pick = next((m for m in ranking if m in spider_values), None)
    out = ["<section>", "<h2>Model Spider: affinity of the top pick to task clusters</h2>"]
    if pick is None:
        out += ['<p class="caption">No spider values for any model of the ranking.</p>', "</section>"]
        return "\n".join(out)
    values = {_mpl_text(pick): {_mpl_text(c): float(v) for c, v in spider_values[pick].items()}}
    with tempfile.TemporaryDirectory(prefix="zoorank-report-") as tmp, matplotlib.rc_context(_svg_rc("spider")):
        paths = spider_chart(values, Path(tmp) / "spider", title=f"Model Spider: {_mpl_text(pick)}")
        svg_text = next(p for p in paths if p.suffix == ".svg").read_text(encoding="utf-8")
    caption = (f"{pick}: the top pick." if pick == ranking[0] else
               f"The top pick {ranking[0]} has no spider values; showing {pick}, the best-ranked model that has.")
    caption += " Values in [0, 1]: mean Spider similarity to the tasks of each cluster, on a scale shared by the zoo."
    out += [_inline_svg(svg_text, element_id="spider-chart", label=f"spider chart of {pick}"),
            f'<p class="caption">{_e(caption)}</p>', "</section>"]
    return "\n".join(out)


def _cost_table(result: PipelineResult) -> str:
    rows = [f'<tr><td>{_e(s.name)}</td><td class="num">{int(s.forward_passes)}</td>'
            f'<td class="num">{int(s.encoder_passes)}</td><td class="num">{float(s.seconds):.3f}</td>'
            f"<td>{_e(s.detail)}</td></tr>" for s in result.stages]
    enc = sum(int(s.encoder_passes) for s in result.stages)
    rows.append(f'<tr class="total"><td>total</td><td class="num">{result.forward_passes}</td>'
                f'<td class="num">{enc}</td><td class="num">{result.seconds:.3f}</td><td></td></tr>')
    return "\n".join([
        "<section>\n<h2>Cost</h2>",
        '<table id="cost">',
        '<thead><tr><th>Stage</th><th class="num">Forward passes</th><th class="num">Encoder passes</th>'
        '<th class="num">Seconds</th><th>Detail</th></tr></thead>',
        "<tbody>", *rows, "</tbody>", "</table>",
        '<p class="legend">Forward passes: zoo models run on the probe set. Encoder passes: the proxy encoder '
        "(Fennec) and the general encoder (Spider's task token) on the task's images.</p>",
        "</section>",
    ])


# -- the page ---------------------------------------------------------------------------------------------------


def write_html(result: PipelineResult, path: str | Path, *, title: str = "zoorank ranking",
               truth: Mapping[str, float] | None = None,
               spider_values: Mapping[str, Mapping[str, float]] | None = None, top: int = 10) -> Path:
    """Write the report of ``result`` (module doc) to ``path`` as one self-contained HTML file; returns the path.

    ``truth``: {model: true accuracy} (adds a column and the correlation of the ranking with it; models without
    one show "–"); ``spider_values``: {model: {cluster: value in [0, 1]}} (adds the spider chart of the top pick,
    or of the best-ranked model that has values; at least 3 clusters); ``top``: the number of models in the bar
    chart (>= 1; capped at the zoo size)."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InputError(f"html report: top must be a positive number of models, got {top!r}")
    parts = [_header(result, title, truth), _ranking_table(result, truth),
             _bar_chart(result, min(int(top), len(result.models)))]
    if spider_values is not None:
        parts.append(_spider_section(result, spider_values))
    parts.append(_cost_table(result))
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        *parts,
        f"<footer>Written by zoorank {_e(__version__)}.</footer>",
        "</body>",
        "</html>",
        "",
    ])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
