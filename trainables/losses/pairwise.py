"""Pairwise AUC surrogates (HarmonRank sec. 2.3 and Table 2).

Both average a surrogate of 1[s_i > s_j] over (positive i, negative j) pairs of the batch.

- ``pairwise_logistic``: log(1 + exp(-(s_i - s_j))) [Gao & Zhou 2012]. All pairs when
  there are at most ``max_pairs`` of them; above that, ``max_pairs`` pairs drawn
  uniformly with replacement (an unbiased estimate of the all-pairs mean), so memory
  stays O(max_pairs) whatever the batch.
- ``pairwise_square``: (margin - (s_i - s_j))^2 [Gao et al. 2013]. Its all-pairs mean
  has a closed form in the classes' means and variances,
      (margin - mu_+ + mu_-)^2 + var_+ + var_-,
  so it is computed exactly in O(n) time and memory for any number of pairs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import as_matrix, class_moments, finish


def pairwise_logistic(scores: torch.Tensor, labels: torch.Tensor, *,
                      max_pairs: int = 1 << 18) -> torch.Tensor:
    """Mean logistic loss over positive-negative pairs, per objective."""
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    y, squeeze = as_matrix(scores, labels)
    out = []
    for k in range(y.shape[1]):
        is_pos = y[:, k] > 0.5
        s_pos, s_neg = scores[..., is_pos], scores[..., ~is_pos]
        n_pos, n_neg = s_pos.shape[-1], s_neg.shape[-1]
        if n_pos == 0 or n_neg == 0:
            out.append(scores.sum(-1) * 0.0)
        elif n_pos * n_neg <= max_pairs:
            out.append(F.softplus(s_neg[..., None, :] - s_pos[..., :, None]).mean((-2, -1)))
        else:
            i = torch.randint(n_pos, (max_pairs,), device=scores.device)
            j = torch.randint(n_neg, (max_pairs,), device=scores.device)
            out.append(F.softplus(s_neg[..., j] - s_pos[..., i]).mean(-1))
    return finish(torch.stack(out, -1), squeeze)


def pairwise_square(scores: torch.Tensor, labels: torch.Tensor, *,
                    margin: float = 1.0) -> torch.Tensor:
    """Exact mean of (margin - (s_i - s_j))^2 over all positive-negative pairs, per objective."""
    y, squeeze = as_matrix(scores, labels)
    pos, neg, mu_p, mu_n, var_p, var_n = class_moments(scores, y)
    defined = (pos > 0) & (neg > 0)
    per = (margin - mu_p + mu_n) ** 2 + var_p + var_n
    return finish(torch.where(defined, per, torch.zeros_like(per)), squeeze)
