"""Ranking methods as the harness runs them: each module registers its methods (and their ablation variants)
with :func:`zoorank.evaluation.register_method` when imported."""
