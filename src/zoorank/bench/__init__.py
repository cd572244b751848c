"""Benchmarks: metric speed (``zoorank bench metrics``) and, later, ZooBench."""
