"""Validation and JSON helpers of the knowledge base: one clear InputError per bad argument."""

from __future__ import annotations

import json
import math
import numbers
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError

NAME_MAX_LENGTH = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(name: object, what: str) -> str:
    """A model or task name: a non-empty string without control characters, at most 512 characters."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} name must be a non-empty string, got {name!r}")
    if len(name) > NAME_MAX_LENGTH:
        raise InputError(f"{what} name {name[:40]!r}... is longer than {NAME_MAX_LENGTH} characters")
    if _CONTROL.search(name):
        raise InputError(f"{what} name {name!r} contains control characters (newline, tab, ...); remove them")
    return name


def check_value(value: object, where: str) -> float:
    """A result value: a real number (not a bool), finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"value for {where} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"value for {where} is {v}, not a finite number; record only measured values")
    return v


def check_count(value: object, what: str, *, minimum: int) -> int | None:
    """None or an integer >= ``minimum`` (params, layers, n_classes, n_samples)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_text(value: object, what: str) -> str | None:
    """None or a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_json(value: Any, what: str) -> str:
    """JSON text of ``value`` (numpy arrays and scalars converted); InputError if not serialisable or not finite."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be JSON-serialisable with finite numbers: {exc}") from exc


def from_json(text: str | None) -> Any:
    """The value stored as JSON text (None stays None)."""
    return None if text is None else json.loads(text)


def check_time(value: object, where: str, now: str) -> str:
    """An aware datetime or ISO 8601 string as an ISO UTC string; ``now`` when None."""
    if value is None:
        return now
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InputError(f"created_at for {where} is not an ISO 8601 time: {value!r}") from exc
    if not isinstance(value, datetime):
        raise InputError(f"created_at for {where} must be a datetime or an ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        raise InputError(f"created_at for {where} has no time zone; give an aware datetime (e.g. UTC)")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
