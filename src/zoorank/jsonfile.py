"""Reading the JSON files zoorank writes (manifests, checksums, records), with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoorank.errors import InputError

__all__ = ["read_json_file"]


def read_json_file(path: str | Path, *, missing: str) -> Any:
    """The parsed content of ``path``; :class:`InputError` with ``missing`` when there is no such file, and one
    naming the file, the parser's complaint and its line when the text is not JSON."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(missing) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not JSON (it is not UTF-8 text: the file is damaged or of another kind)") from None
