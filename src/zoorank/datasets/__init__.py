"""Datasets that zoorank builds itself, in the manner of ``sklearn.datasets``.

- :mod:`.zoobench` — ZooBench: the zoo, the procedurally generated targets and source domains, their loader
  (:class:`~zoorank.datasets.zoobench.provider.ZooBenchProvider`) and the CPU rebuild (``zoorank bench build``);
- :mod:`.toyzoo` — a tiny zoo of random-feature models for the toy demo and tests;
- :mod:`.planted` — a planted synthetic benchmark whose ground truth is known by construction.

Seeded feature/label arrays for the metrics are :mod:`zoorank.metrics.synthetic`.
"""
