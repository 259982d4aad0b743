"""Shape handling shared by the losses."""
from __future__ import annotations

import torch


def as_matrix(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Check shapes; return labels as a float (n, K) matrix and whether they were 1-d.

    ``scores`` is (n,), or (P, n) for a population of P models scored on the same batch
    (every loss then returns (P, K): one row per member)."""
    if scores.ndim not in (1, 2):
        raise ValueError(f"scores must be (n,) (one score per item) or (P, n) (a "
                         f"population), got shape {tuple(scores.shape)}")
    n = scores.shape[-1]
    squeeze = labels.ndim == 1
    y = labels[:, None] if squeeze else labels
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"labels must be (n,) or (n, K) with n = {n}, "
                         f"got shape {tuple(labels.shape)}")
    return y.to(scores.dtype), squeeze


def finish(per_objective: torch.Tensor, squeeze: bool) -> torch.Tensor:
    return per_objective[..., 0] if squeeze else per_objective


def class_moments(x: torch.Tensor, y: torch.Tensor):
    """Per label column: positives' and negatives' counts, means and (population) variances
    of ``x`` in O(n). ``x`` is centred first, so the one-pass variances do not cancel in
    float32 when values sit far from 0 (moments of differences are unchanged)."""
    x = x - x.detach().mean(-1, keepdim=True)
    n = x.shape[-1]
    pos = y.sum(0)
    neg = n - pos
    s1, s2 = x @ y, (x * x) @ y                       # positives' sum, sum of squares
    t1 = x.sum(-1, keepdim=True) - s1                 # negatives'
    t2 = (x * x).sum(-1, keepdim=True) - s2
    mu_p, mu_n = s1 / pos.clamp_min(1), t1 / neg.clamp_min(1)
    var_p = (s2 / pos.clamp_min(1) - mu_p * mu_p).clamp_min(0)
    var_n = (t2 / neg.clamp_min(1) - mu_n * mu_n).clamp_min(0)
    return pos, neg, mu_p, mu_n, var_p, var_n
