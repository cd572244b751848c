"""Forward-feature transferability metrics: pure numpy functions, one family a file.

Every metric scores one pre-trained model on a labelled probe set of the target task from its
penultimate ``features`` [N, D] (and/or its source-head ``source_probs`` [N, Cs]); higher = better
transferability, always.

>>> from zoorank import metrics
>>> metrics.available()[:3]
['energy', 'etran', 'fda']

``compute(name, features, labels=None, *, source_probs=None, **params)`` calls any of them by name;
``compute_pool(name, [features_of_each_model], labels)`` scores a pool of candidates at once (the
paper's cross-model score for ETran and NCTI); ``score_zoo(name, features, logits, labels)`` scores a zoo
from its features and source logits, whatever inputs the metric needs. Bad input raises :class:`zoorank.InputError`.
"""

from zoorank.metrics._probs import softmax
from zoorank.metrics._registry import (
    MetricInfo,
    available,
    compute,
    compute_available,
    compute_pool,
    info,
    missing_inputs,
)
from zoorank.metrics._zoo import MetricUnavailable, score_zoo
from zoorank.metrics.etran import energy, etran
from zoorank.metrics.fda import fda
from zoorank.metrics.gbc import gbc
from zoorank.metrics.hscore import hscore, reg_hscore
from zoorank.metrics.knn import knn
from zoorank.metrics.leep import leep
from zoorank.metrics.lfc import lfc
from zoorank.metrics.logme import logme
from zoorank.metrics.nce import nce
from zoorank.metrics.ncti import ncti
from zoorank.metrics.nleep import nleep
from zoorank.metrics.pactran import pactran
from zoorank.metrics.parc import parc
from zoorank.metrics.ped import ped
from zoorank.metrics.sfda import sfda
from zoorank.metrics.transrate import transrate

__all__ = [
    "MetricInfo",
    "MetricUnavailable",
    "available",
    "compute",
    "compute_available",
    "compute_pool",
    "energy",
    "etran",
    "fda",
    "gbc",
    "hscore",
    "info",
    "knn",
    "leep",
    "lfc",
    "logme",
    "missing_inputs",
    "nce",
    "ncti",
    "nleep",
    "pactran",
    "parc",
    "ped",
    "reg_hscore",
    "score_zoo",
    "sfda",
    "softmax",
    "transrate",
]
