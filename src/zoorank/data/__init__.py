"""Datasets for zoorank: image folders, unlabelled folders, CSV files, Hugging Face datasets saved to disk and
in-memory arrays, all as one :class:`ImageDataset`; probe sampling and seeded splits.

Pure PIL + numpy (``datasets`` only for Hugging Face data, imported lazily), so the torch layer can wrap it.

>>> from zoorank import data
>>> ds = data.open_dataset("path/to/folder")          # doctest: +SKIP
>>> p = data.probe(ds, n_max=500, seed=0)               # doctest: +SKIP
>>> for i, image in ds.iter_images(p.indices): ...      # doctest: +SKIP
>>> ds.problems                                         # doctest: +SKIP  # [(index, path, reason), ...]
"""

from zoorank.data._identity import CONTENT_MAX_BYTES, CONTENT_MAX_FILES
from zoorank.data._images import IMAGE_EXTENSIONS, is_image_name
from zoorank.data.dataset import ImageDataset, ImageReadError, Problem, VerifyReport
from zoorank.data.loaders import (
    encode_labels,
    from_arrays,
    from_csv,
    from_folder,
    from_hf_dataset,
    from_hf_disk,
    from_paths,
    from_unlabelled_folder,
    open_dataset,
)
from zoorank.data.probe import Probe, accepts_rows, allocate, fraction_rows, probe, split

__all__ = [
    "CONTENT_MAX_BYTES",
    "CONTENT_MAX_FILES",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageReadError",
    "Probe",
    "Problem",
    "VerifyReport",
    "accepts_rows",
    "allocate",
    "encode_labels",
    "fraction_rows",
    "from_arrays",
    "from_csv",
    "from_folder",
    "from_hf_dataset",
    "from_hf_disk",
    "from_paths",
    "from_unlabelled_folder",
    "is_image_name",
    "open_dataset",
    "probe",
    "split",
]
