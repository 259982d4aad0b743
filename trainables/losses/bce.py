"""Binary cross-entropy of the ensemble score against each objective's label.

Summed over objectives with equal weights this is the paper's MBCE baseline
(HarmonRank sec. 5.3, [3]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import as_matrix, finish


def bce(scores: torch.Tensor, labels: torch.Tensor, *, pos_weight: float = 1.0) -> torch.Tensor:
    """Mean BCE-with-logits per objective; ``pos_weight`` scales the positive term."""
    y, squeeze = as_matrix(scores, labels)
    n = scores.shape[-1]
    # One log-sigmoid pair serves all K objectives: loss_k = -(y_k.log s(x) + (1-y_k).log s(-x))/n
    log_p = F.logsigmoid(scores)
    log_not_p = log_p - scores  # log sigmoid(-x) = log sigmoid(x) - x
    per = -(pos_weight * (log_p @ y) + log_not_p @ (1.0 - y)) / n
    return finish(per, squeeze)
