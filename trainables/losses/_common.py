"""Shape handling shared by the losses."""
from __future__ import annotations

import torch


def as_matrix(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Check shapes; return labels as a float (n, K) matrix and whether the input was 1-d."""
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-d (one score per item), got shape "
                         f"{tuple(scores.shape)}")
    squeeze = labels.ndim == 1
    y = labels[:, None] if squeeze else labels
    if y.ndim != 2 or y.shape[0] != scores.shape[0]:
        raise ValueError(f"labels must be (n,) or (n, K) with n = {scores.shape[0]}, "
                         f"got shape {tuple(labels.shape)}")
    return y.to(scores.dtype), squeeze


def finish(per_objective: torch.Tensor, squeeze: bool) -> torch.Tensor:
    return per_objective[0] if squeeze else per_objective
