"""Label aggregation (HarmonRank sec. 5.3, [4, 11]): regress the score on a weighted
sum of the objectives' labels with squared error.

Returned per objective as mean (s - y_k)^2. For weights w with sum W, the weighting's
combination sum_k w_k (s - y_k)^2 equals W (s - sum_k w_k y_k / W)^2 plus a term that
does not depend on s, so its gradient is exactly that of the MSE to the aggregated
label: the method of the papers, while each objective's error stays visible in the
logs and any weighting (static, PE-LTR, ...) can drive it.
"""
from __future__ import annotations

import torch

from ._common import as_matrix, finish


def label_aggregation(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the raw score to each objective's label."""
    y, squeeze = as_matrix(scores, labels)
    n = scores.shape[-1]
    s2 = (scores * scores).sum(-1, keepdim=True)
    # mean (s - y)^2 = (sum s^2 - 2 s.y + sum y^2) / n, with y^2 = y for 0/1 labels
    per = (s2 - 2.0 * (scores @ y) + y.sum(0)) / n
    return finish(per, squeeze)
