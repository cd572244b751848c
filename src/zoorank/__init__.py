"""zoorank: rank a zoo of pre-trained models for a new dataset without fine-tuning them all."""

from zoorank import _kernels  # noqa: F401  (first: pins the CPU kernels before numpy and torch load)
from zoorank.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
