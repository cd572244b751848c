"""The HTML report of a pipeline ranking (zoorank.report): content, escaping, self-containedness, and the page as
rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pytest

from zoorank.errors import InputError
from zoorank.pipeline import Pipeline
from zoorank.report import write_html

from pipeline_cases import SyntheticTask

MODELS = ["resnet50", "vit-b16", "a<b&c", "mobilenet_v3", "convnext-t", "deit-s"]
QUALITY = np.array([0.3, 0.9, 0.8, 0.2, 0.6, 0.5])  # how separable each model's features are
COARSE = np.array([0.2, 0.5, 0.9, 0.1, 0.7, 0.4])  # the Fennec-like scores: top 3 = a<b&c, convnext-t, vit-b16
TRUTH = {m: float(0.5 + 0.4 * q) for m, q in zip(MODELS, QUALITY, strict=True)}
CLUSTERS = ["animals", "plants", "vehicles", "textures & <misc>"]
TITLE = "zoo <ranking> & co"
REASON = "nearest card: <synthetic> points & blobs"
BROWSER_HINT = "install Debian's chromium (apt-get install -y chromium)"


def Task(labelled: bool = True):
    return SyntheticTask(MODELS, QUALITY, per_class=25, labelled=labelled)


class Fennec:
    models_ = MODELS

    def score(self, task):
        return COARSE.copy()


class Spider:
    models_ = MODELS
    specific_trained_ = frozenset(range(len(MODELS)))

    def score(self, task):
        return QUALITY[::-1].copy()

    def specific_scores(self, specific):
        return {int(i): float(QUALITY[i] + 0.01 * np.abs(tok).mean()) for i, tok in specific.items()}


class _Ranking:
    reason = REASON

    def names(self):
        return ["logme", "sfda"]


class MetaRank:
    metrics = ("logme", "sfda")

    def rank_metrics(self, card, candidates):
        return _Ranking()


class Dom(HTMLParser):
    """What the tests look at in a page: element ids (in order), tables (id -> rows of cell texts), the text of
    each <svg> with an id, the tags, and every URL-valued attribute."""

    URL_ATTRS = frozenset({"src", "href", "xlink:href", "srcset", "data", "action", "poster", "background"})

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.tags: Counter[str] = Counter()
        self.urls: list[str] = []
        self.tables: dict[str | None, list[list[str]]] = {}
        self.svg_text: dict[str, str] = {}
        self.title = ""
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._svg: str | None = None
        self._in_title = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] += 1
        if a.get("id") is not None:
            self.ids.append(a["id"])
        self.urls += [v for k, v in a.items() if k in self.URL_ATTRS and v is not None]
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table in self.tables:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "svg" and a.get("id"):
            self._svg = a["id"]
            self.svg_text[self._svg] = ""
        elif tag == "title" and self._svg is None:
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "svg":
            self._svg = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._svg is not None:
            self.svg_text[self._svg] += data + "\n"
        if self._in_title:
            self.title += data


def _spider_values(models):
    return {m: {c: float((0.2 + 0.15 * j + 0.5 * QUALITY[MODELS.index(m)]) % 1.0) for j, c in enumerate(CLUSTERS)}
            for m in models}


@pytest.fixture(scope="module")
def result():
    return Pipeline(MODELS, fennec=Fennec(), spider=Spider(), metarank=MetaRank(), budget=3,
                    metrics=["logme", "sfda"]).run(Task())


@pytest.fixture(scope="module")
def page(result, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    out = write_html(result, path, title=TITLE, truth=TRUTH, spider_values=_spider_values(MODELS), top=4)
    assert out == path and path.is_file()
    return path


def test_the_pipeline_result_is_the_planned_one(result):
    assert sorted(result.top) == [1, 2, 4] and result.metric == "logme" and result.forward_passes == 3
    assert set(result.fine) == {"metric", "spider"} and set(result.coarse) == {"fennec", "spider"}


def test_page_holds_the_ranking_the_metric_and_the_costs(page, result):
    text = page.read_text(encoding="utf-8")
    dom = Dom(text)
    assert text.startswith("<!DOCTYPE html>") and dom.title == TITLE
    for m in MODELS:
        assert html.escape(m) in text
    assert "<dd>logme</dd>" in text and html.escape(REASON) in text

    head, *rows = dom.tables["ranking"]
    assert head[:4] == ["Rank", "Model", "Fwd", "Final score"]
    assert head[4:] == ["Fennec (coarse)", "Spider (coarse)", "logme (fine)", "Spider (fine)", "True accuracy"]
    assert [r[1] for r in rows] == result.ranking
    assert [r[0] for r in rows] == [str(k) for k in range(1, len(MODELS) + 1)]
    top = {MODELS[i] for i in result.top}
    assert {r[1] for r in rows if r[2] == "●"} == top  # the K forward-passed models are marked...
    assert text.count('<tr class="ran">') == len(top)  # ...and shaded
    for r in rows:
        fine = r[6:8]
        assert (fine == ["–", "–"]) == (r[1] not in top)
        assert float(r[8]) == pytest.approx(TRUTH[r[1]], abs=1e-4)
        assert float(r[4]) == pytest.approx(COARSE[MODELS.index(r[1])], abs=1e-4)

    head, *rows = dom.tables["cost"]
    assert head == ["Stage", "Forward passes", "Encoder passes", "Seconds", "Detail"]
    assert [r[0] for r in rows] == [s.name for s in result.stages] + ["total"]
    assert [int(r[1]) for r in rows] == [s.forward_passes for s in result.stages] + [3]
    assert [int(r[2]) for r in rows] == [s.encoder_passes for s in result.stages] + [2]
    assert float(rows[-1][3]) == pytest.approx(result.seconds, abs=2e-3)
    assert rows[2][4] == "metric logme + spider"

    assert "weighted Kendall tau" in text  # the ranking against the true accuracies


def test_page_is_self_contained_and_escaped(page):
    text = page.read_text(encoding="utf-8")
    dom = Dom(text)
    assert not re.search(r"https?://", text)  # no URL at all: no src="http, href="http, url(http, @import
    assert all(u.startswith("#") for u in dom.urls), dom.urls
    assert not re.search(r"url\((?!#)", text) and "@import" not in text
    assert dom.tags["script"] == 0 and dom.tags["link"] == 0 and dom.tags["iframe"] == 0
    assert "a<b&c" not in text and "a&lt;b&amp;c" in text
    assert TITLE not in text and html.escape(TITLE) in text
    assert REASON not in text and "textures & <misc>" not in text
    assert {"ranking", "cost", "bar-chart", "spider-chart"} <= set(dom.ids)
    duplicated = [i for i, n in Counter(dom.ids).items() if n > 1]
    assert not duplicated, duplicated  # the two charts' inner ids do not clash


def test_charts_show_the_top_models_and_the_top_pick(page, result):
    dom = Dom(page.read_text(encoding="utf-8"))
    bars = dom.svg_text["bar-chart"]
    for m in result.ranking[:4]:
        assert m in bars
    for m in result.ranking[4:]:
        assert m not in bars
    spider = dom.svg_text["spider-chart"]
    assert result.ranking[0] in spider and all(c in spider for c in CLUSTERS)


def test_optional_parts_are_left_out_and_top_is_checked(tmp_path):
    res = Pipeline(MODELS, fennec=Fennec(), spider=Spider(), budget=2, metrics=["logme"]).run(Task(labelled=False))
    path = write_html(res, tmp_path / "plain.html", top=100)
    text = path.read_text(encoding="utf-8")
    dom = Dom(text)
    assert "True accuracy" not in text and "spider-chart" not in dom.ids
    assert "<dd>energy</dd>" in text and "no (label-free parts only)" in text
    assert any("needs labels" in n for n in res.notes) and all(html.escape(n) in text for n in res.notes)
    assert all(m in dom.svg_text["bar-chart"] for m in MODELS)  # top=100: the whole zoo

    # spider values only for a model outside the top: the best-ranked model that has some is drawn
    last = res.ranking[-1]
    text = write_html(res, tmp_path / "spider.html", spider_values=_spider_values([last])).read_text("utf-8")
    assert "has no spider values" in text and last in Dom(text).svg_text["spider-chart"]

    for bad in (0, -1, True, 2.5):
        with pytest.raises(InputError, match="top must be"):
            write_html(res, tmp_path / "bad.html", top=bad)


# -- a real browser ------------------------------------------------------------------------------------------


def _chromium() -> str:
    if os.environ.get("ZOORANK_SKIP_BROWSER") == "1":
        pytest.skip("ZOORANK_SKIP_BROWSER=1: the headless browser test is skipped")
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail(f"chromium is not on PATH: {BROWSER_HINT}, or set ZOORANK_SKIP_BROWSER=1 to skip this test",
                    pytrace=False)
    return exe


def _run_chromium(profile, *args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def test_browser_renders_the_ranking_and_the_bar_chart(page, result, tmp_path):
    proc = _run_chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = Dom(proc.stdout)
    assert dom.title == TITLE, proc.stdout[:500]
    rows = dom.tables["ranking"][1:]
    assert rows and rows[0][1] == result.ranking[0]  # the top model heads the rendered ranking table
    assert [r[1] for r in rows] == result.ranking
    assert "bar-chart" in dom.ids and "spider-chart" in dom.ids
    assert re.search(r'<svg[^>]*\bid="bar-chart"', proc.stdout)
    assert all(m in dom.svg_text["bar-chart"] for m in result.ranking[:4])
    assert [r[0] for r in dom.tables["cost"][1:]] == [s.name for s in result.stages] + ["total"]


def test_browser_screenshot_is_not_blank(page, tmp_path):
    from PIL import Image

    png = tmp_path / "shot.png"
    _run_chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,1600", page.as_uri())
    assert png.is_file(), "chromium wrote no screenshot"
    assert png.stat().st_size > 5_000
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        assert rgb.width >= 600 and rgb.height >= 600
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    assert len(colours) > 20  # text, table shading, bars: far from a blank page
    white = max(colours)[0] / (rgb.width * rgb.height)
    assert white < 0.995
