r"""The MetaRank and the default metric order that ship inside the package, fitted on all the committed evidence.

A new user has no knowledge base, hence no fitted rankers; without these, ``zoorank rank`` and ``zoorank metrics
recommend`` would fall back to a fixed list. Both files live in ``zoorank/methods/metarank/data/shipped/`` and are
rebuilt by ``python -m benchmarks.ship_defaults`` from the same records as MetaRank's evaluation
(``benchmarks.metarank_eval``): ZooBench's 19 targets with their sub-tasks, and the published tables of
``../shared/data/groundtruth`` (TLlib, TransferGraph), each a list of (dataset card, metric, quality) with quality =
the weighted Kendall tau of the metric's ranking of the zoo against the fine-tuned accuracies.

- ``metarank.npz`` — :class:`~zoorank.methods.metarank.MetaRank` fitted on every record (its own defaults, seed 0);
- ``default_order.json`` — the metrics by how they compare with each other over the evidence's datasets. A
  dataset group :math:`g` (a dataset with its re-spellings in other sources) has one value per metric, the
  weighted mean of its full-target records (sub-tasks and bootstrap resamples are left out),
  :math:`q_{m,g} = \sum_{r \in g} w_r q_r / \sum_{r \in g} w_r`. Metrics are not measured on the same datasets
  (the published tables hold five of them), so a plain mean would compare them on different tasks; instead each
  pair is compared on the groups :math:`G_{ab}` where both were measured:

  .. math:: a \succ b \iff \frac{1}{|G_{ab}|} \sum_{g \in G_{ab}} (q_{a,g} - q_{b,g}) > 0

  and the order is Copeland's (wins minus losses over the other metrics), then the mean :math:`\bar q_m` over
  the metric's own groups, then the name (differences within :data:`zoorank.ranking.TIE_RTOL` are ties). The
  file also holds the SHA-256 of ``metarank.npz``, checked on load.

A user's own fit (``zoorank fit``) always takes precedence over these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from zoorank.errors import InputError

__all__ = [
    "MODEL_FILE",
    "ORDER_FILE",
    "SHIPPED_DIR",
    "default_metric_order",
    "metric_order_from_records",
    "read_default_order",
    "shipped_metarank",
    "write_shipped",
]

SHIPPED_DIR = Path(str(resources.files("zoorank.methods.metarank") / "data" / "shipped"))
MODEL_FILE = "metarank.npz"
ORDER_FILE = "default_order.json"
#: sources whose records are not whole targets (MetaRank's sub-tasks, bootstrap sub-zoos): not in the order
_NOT_TARGETS = (":subtask", ":resample")


def metric_order_from_records(records: Iterable) -> list[dict]:
    """``[{"metric", "copeland", "mean_quality", "datasets"}, ...]`` best first: the order of the module doc from
    :class:`~zoorank.methods.metarank.MetaRecord` rows."""
    from zoorank.ranking import TIE_RTOL

    per: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in records:
        if str(r.source).endswith(_NOT_TARGETS):
            continue
        per.setdefault(r.metric, {}).setdefault(r.key, []).append((float(r.quality), float(r.weight)))
    if not per:
        raise InputError("no full-target records: the default metric order needs at least one")
    q = {m: {g: sum(v * w for v, w in rs) / sum(w for _, w in rs) for g, rs in groups.items()}
         for m, groups in per.items()}
    names = sorted(q)
    copeland = dict.fromkeys(names, 0)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sorted(set(q[a]) & set(q[b]))
            if not shared:
                continue
            d = float(np.mean([q[a][g] - q[b][g] for g in shared]))
            if abs(d) > TIE_RTOL:
                copeland[a if d > 0 else b] += 1
                copeland[b if d > 0 else a] -= 1
    mean = {m: float(np.mean(list(q[m].values()))) for m in names}
    order = sorted(names, key=lambda m: (-copeland[m], -round(mean[m], 9), m))
    return [{"metric": m, "copeland": copeland[m], "mean_quality": mean[m], "datasets": len(q[m])} for m in order]


def read_default_order(directory: str | Path | None = None) -> dict:
    """The parsed ``default_order.json`` (of the package unless ``directory`` is given)."""
    path = Path(directory or SHIPPED_DIR) / ORDER_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} is missing: rebuild it with python -m benchmarks.ship_defaults") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is damaged ({exc}): rebuild it with python -m benchmarks.ship_defaults, or "
                         "reinstall zoorank") from None
    if not isinstance(data, dict) or not isinstance(data.get("order"), list):
        raise InputError(f"{path} has no metric order: rebuild it with python -m benchmarks.ship_defaults")
    return data


def default_metric_order(candidates: Sequence[str] | None = None, directory: str | Path | None = None) -> list[str]:
    """The candidate metrics (default: every registered one) in the shipped order; metrics the evidence never
    measured follow in the candidates' own order."""
    from zoorank import metrics as M

    names = list(candidates) if candidates is not None else M.available()
    ranked = [e["metric"] for e in read_default_order(directory)["order"]]
    first = [m for m in ranked if m in names]
    return first + [m for m in names if m not in first]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_metarank(directory: str | Path | None = None, *, encoder=None):
    """The shipped :class:`~zoorank.methods.metarank.MetaRank` (of the package unless ``directory`` is given),
    its checksum checked against ``default_order.json``; InputError naming the file and the mend otherwise."""
    from zoorank.methods.metarank.model import MetaRank

    d = Path(directory or SHIPPED_DIR)
    path = d / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{path} is missing: rebuild it with python -m benchmarks.ship_defaults")
    expected = read_default_order(d).get("metarank_sha256")
    if expected != _sha256(path):
        raise InputError(f"{path} does not match its checksum in {ORDER_FILE} (damaged or replaced): rebuild both "
                         "with python -m benchmarks.ship_defaults, or reinstall zoorank")
    return MetaRank.load(path, encoder=encoder)


def write_shipped(model, records: Sequence, directory: str | Path | None = None, *, provenance: dict) -> Path:
    """Save ``model`` and the default order of ``records`` (with ``provenance``: sources, command) into
    ``directory`` (the package's by default); the order file, which holds the model's checksum, is written last."""
    d = Path(directory or SHIPPED_DIR)
    d.mkdir(parents=True, exist_ok=True)
    path = Path(model.save(d / MODEL_FILE))
    order = metric_order_from_records(records)
    doc = {"zoorank_shipped_defaults": 1, **provenance, "metarank_sha256": _sha256(path),
           "metarank_datasets": len(model.datasets), "metarank_metrics": list(model.metrics), "order": order}
    tmp = d / (ORDER_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(d / ORDER_FILE)
    return d
