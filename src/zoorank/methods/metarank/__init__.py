"""MetaRank (arXiv 2511.21007): pick the transferability metric to trust for a new dataset, from text.

Dataset cards and metric cards (:mod:`.cards`) are embedded by a sentence encoder; a meta-predictor trained with
a listwise ranking loss on historical (dataset, metric quality) records ranks the metrics for a new dataset
(:class:`MetaRank`: ``fit``, ``rank_metrics``, ``score``, ``save``, ``load``).
"""

from zoorank.methods.metarank.cards import (
    DatasetCard,
    MetricCard,
    card_from_dataset,
    card_from_metadata,
    card_from_task_info,
    load_dataset_cards,
    load_metric_cards,
    meta_features,
)
from zoorank.methods.metarank.model import (
    CachedEncoder,
    HashingEncoder,
    MetaRank,
    MetaRecord,
    MetricRanking,
    SentenceEncoder,
    make_encoder,
)

__all__ = [
    "CachedEncoder",
    "DatasetCard",
    "HashingEncoder",
    "MetaRank",
    "MetaRecord",
    "MetricCard",
    "MetricRanking",
    "SentenceEncoder",
    "card_from_dataset",
    "card_from_metadata",
    "card_from_task_info",
    "load_dataset_cards",
    "load_metric_cards",
    "make_encoder",
    "meta_features",
]
