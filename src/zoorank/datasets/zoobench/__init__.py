"""ZooBench: source domains (for pre-training the zoo) and target tasks (with fixed splits, text descriptions and
checksums), all generated deterministically from offline data: rendered glyphs, scikit-learn's handwritten digits
and procedural shapes, counts and textures. See :mod:`zoorank.datasets.zoobench.domains` and
:mod:`zoorank.datasets.zoobench.tasks`."""
