"""Kinds of result the knowledge base records, and how a kind is spelled.

A kind is free text matching :data:`KIND_PATTERN`: a lower-case word, optionally followed by ``:`` and a
qualifier (``metric:logme``). Well-known kinds (see :data:`KNOWN_KINDS`):

- ``finetune_acc`` — top-1 accuracy in [0, 1] of the model fine-tuned on the task: the ground truth the
  learned rankers (Fennec, Model Spider, MetaRank) learn from and the benchmark compares against.
- ``linear_probe_acc`` — top-1 accuracy in [0, 1] of a linear classifier on the frozen penultimate features.
- ``metric:<name>`` — the score of transferability metric ``<name>`` from :mod:`zoorank.metrics`
  (``metric:logme``, ``metric:leep``, ``metric:fda`` which Fennec factorises, ...); higher = better.

Other kinds (``knn_acc``, ``finetune_loss``, ``metric:logme@probe500`` ...) are allowed as long as they match
the pattern; their meaning is up to the code that writes them.
"""

from __future__ import annotations

import re

from zoorank.errors import InputError

#: A lower-case word, optionally ``:qualifier`` (letters, digits, ``_ . - @ = +``); at most 64 characters.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*(?::[a-z0-9][a-z0-9_.@=+\-]*)?")
KIND_MAX_LENGTH = 64

#: Documented kinds and what their value means.
KNOWN_KINDS: dict[str, str] = {
    "finetune_acc": "top-1 accuracy in [0, 1] after fine-tuning the model on the task",
    "linear_probe_acc": "top-1 accuracy in [0, 1] of a linear probe on frozen penultimate features",
    "metric:<name>": "score of transferability metric <name> (zoorank.metrics), higher = better",
}


#: Kinds whose values have a fixed range, enforced when they are recorded: (low, high, what the value is).
RANGES: dict[str, tuple[float, float, str]] = {
    "finetune_acc": (0.0, 1.0, "a fraction of correct test predictions"),
    "linear_probe_acc": (0.0, 1.0, "a fraction of correct test predictions"),
}


def check_range(kind: str, value: float, where: str) -> float:
    """``value`` if it lies in the range of ``kind`` (:data:`RANGES`; kinds without one take any finite value),
    else an InputError naming the range and the usual mistake (a percentage)."""
    bounds = RANGES.get(kind)
    if bounds is None:
        return value
    low, high, what = bounds
    if not low <= value <= high:
        hint = f" (if {value:g} is a percentage, record {value / 100:g})" if 1 < value <= 100 else ""
        raise InputError(f"value for {where} is {value:g}, outside [{low:g}, {high:g}]: {kind} is {what}{hint}")
    return value


def metric_kind(metric: str) -> str:
    """The kind under which the score of ``metric`` is recorded: ``metric_kind("logme") == "metric:logme"``."""
    return validate_kind(f"metric:{metric}")


def validate_kind(kind: object) -> str:
    """Return ``kind`` if it is a well-formed kind, else raise InputError naming the problem."""
    if not isinstance(kind, str) or not kind:
        raise InputError(f"result kind must be a non-empty string such as 'finetune_acc' or 'metric:logme': {kind!r}")
    if len(kind) > KIND_MAX_LENGTH or not KIND_PATTERN.fullmatch(kind):
        raise InputError(
            f"result kind {kind!r} is not valid: use a lower-case word with an optional ':qualifier' "
            f"(at most {KIND_MAX_LENGTH} characters), e.g. 'finetune_acc', 'linear_probe_acc', 'metric:logme'"
        )
    return kind
