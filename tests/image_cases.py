"""A tiny labelled image folder (one sub-folder per class of random RGB images), for CLI and method tests."""

import numpy as np
from PIL import Image


def write_image_folder(root, classes=("a", "b"), per_class: int = 3, size: int = 8, seed: int = 0):
    """``root/<class>/<i>.png`` for every class: ``per_class`` random ``size`` x ``size`` RGB images. Returns root."""
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root
