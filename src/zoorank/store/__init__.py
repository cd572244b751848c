"""The knowledge base of models, tasks and results (:class:`KnowledgeBase`), stored in SQLite.

>>> from zoorank.store import KnowledgeBase
>>> with KnowledgeBase("sqlite:///:memory:") as kb:
...     kb.record("resnet50", "cifar10", "finetune_acc", 0.87, provenance="paper table 2")
...     kb.matrix("finetune_acc").values.tolist()
[[0.87]]

See :mod:`zoorank.store.kb` for the policies (upsert, history, concurrency), :mod:`zoorank.store.kinds`
for the kinds of result and :mod:`zoorank.store.schema` for the versioned schema.
"""

from zoorank.store.kb import KnowledgeBase, KnowledgeBaseBusy, Matrix, ModelRecord, Result, TaskRecord
from zoorank.store.kinds import KIND_PATTERN, KNOWN_KINDS, metric_kind, validate_kind
from zoorank.store.schema import SCHEMA_VERSION

__all__ = [
    "KIND_PATTERN",
    "KNOWN_KINDS",
    "SCHEMA_VERSION",
    "KnowledgeBase",
    "KnowledgeBaseBusy",
    "Matrix",
    "ModelRecord",
    "Result",
    "TaskRecord",
    "metric_kind",
    "validate_kind",
]
