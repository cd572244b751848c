"""ZooBench: source domains (for pre-training the zoo) and target tasks (with fixed splits, text descriptions and
checksums), all generated deterministically from offline data: rendered glyphs, scikit-learn's handwritten digits
and procedural shapes, counts and textures. See :mod:`zoorank.datasets.zoobench.domains` and
:mod:`zoorank.datasets.zoobench.tasks`."""

#: The reproducibility subset: five of the smallest targets (80 to 350 training images; near one source domain, far
#: from all, few-shot), chosen by size before any result was seen. ``zoorank bench run --methods all --within
#: <these>`` (leave-one-out inside them) is cheap enough to rerun from an empty cache in CI, every method included;
#: its records are committed as ``benchmarks/zoobench/results_subset.json``.
REPRODUCE_SUBSET = ("shape_outlines", "arrow_directions", "mirror_symmetry", "letters_on_texture", "blob_scale")
