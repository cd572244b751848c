"""zoorank: rank a zoo of pre-trained models for a new dataset without fine-tuning them all."""

from zoorank.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
