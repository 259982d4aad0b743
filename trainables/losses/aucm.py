"""AUCM: instance-wise min-max AUC margin loss (Yuan et al. 2021, HarmonRank [24]).

With h = sigmoid(score) and p the batch's positive rate, AUCM is
    min_{w,a,b} max_{alpha>=0}  p(1-p) [ E+[(h-a)^2] + E-[(h-b)^2]
                                         + 2 alpha (m - E+[h] + E-[h]) - alpha^2 ].
The inner problems have closed forms on the batch (a = E+[h], b = E-[h],
alpha = max(0, m - E+[h] + E-[h])), which gives
    p(1-p) [ var+(h) + var-(h) + max(0, m - E+[h] + E-[h])^2 ]
in O(n) with no auxiliary state; by the envelope theorem its gradient in w is the one
the primal-dual method follows at the inner optimum. We divide by p(1-p) so that, under
equal loss weights, a rare objective weighs as much as a common one (AUCM's own scaling
is recovered with loss weights proportional to p(1-p)).
"""
from __future__ import annotations

import torch

from ._common import as_matrix, class_moments, finish


def aucm(scores: torch.Tensor, labels: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """AUCM margin loss per objective, inner min/max solved in closed form on the batch."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    y, squeeze = as_matrix(scores, labels)
    pos, neg, mu_p, mu_n, var_p, var_n = class_moments(torch.sigmoid(scores), y)
    defined = (pos > 0) & (neg > 0)
    per = var_p + var_n + torch.clamp(margin - mu_p + mu_n, min=0) ** 2
    return finish(torch.where(defined, per, torch.zeros_like(per)), squeeze)
