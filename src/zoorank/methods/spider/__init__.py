"""Model Spider (Zhang et al., "Model Spider: Learning to Rank Pre-Trained Models Efficiently", NeurIPS 2023):
rank a zoo from a task token (class centres of a frozen general encoder, equation 5) against learned model tokens
with a one-layer Transformer (equation 6) trained with a ranking loss (equation 4) on sampled historical tasks
supervised by the Copeland aggregation of NCE, LEEP, LogME and H-Score (appendix A.4); optionally re-rank the
top-k models with PTM-specific task tokens (section 4.4).

- :class:`ModelSpider` (``fit``, ``predict``, ``score``, ``rerank``, ``add_models``, ``save``, ``load``) —
  :mod:`.model`;
- the losses of equation 4, ListMLE and MSE — :mod:`.losses`;
- sampled training tasks and their supervision — :mod:`.sampling`;
- the spider chart of section 5.4 — :mod:`.chart`.
"""

from zoorank.methods.spider.model import ModelSpider, SpiderScorer
from zoorank.methods.spider.sampling import (
    ArrayHistory,
    SupervisionBank,
    TrainingTask,
    copeland_supervision,
    specific_token,
    task_token,
    token_mixtures,
)

__all__ = [
    "ArrayHistory",
    "ModelSpider",
    "SpiderScorer",
    "SupervisionBank",
    "TrainingTask",
    "copeland_supervision",
    "specific_token",
    "task_token",
    "token_mixtures",
]
