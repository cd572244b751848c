"""Reports of a pipeline ranking: :func:`write_html` writes one self-contained HTML page (inline CSS and SVG
charts, no script and no external resource) of a :class:`~zoorank.pipeline.PipelineResult`; see
:mod:`zoorank.report.html`."""

from zoorank.report.html import write_html

__all__ = ["write_html"]
