"""Feature embedding shared by every model: the ensemble (ME) models' personalization and
the MP stage's multi-task models (``trainables.mp.models``, whose integer codes
``trainables.mp.codes`` fits on raw logs and describes with a :class:`FeatureSpec`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FeatureSpec:
    """Categorical features with their cardinalities, and numeric feature names."""

    categorical: tuple[tuple[str, int], ...] = ()
    numeric: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.categorical and not self.numeric


class FeatureEncoder(nn.Module):
    """Concatenate one embedding per categorical feature with the numeric features.

    All categorical features share one table (offsets per feature), so a batch needs a
    single lookup. Numeric features arrive standardized by the data layer. The table
    starts as N(0, ``init_std``^2).
    """

    def __init__(self, spec: FeatureSpec, emb_dim: int, init_std: float = 0.1):
        super().__init__()
        cards = [c for _, c in spec.categorical]
        self.n_cat = len(cards)
        self.n_num = len(spec.numeric)
        self.emb_dim = emb_dim
        offsets = torch.tensor([0] + cards[:-1], dtype=torch.long).cumsum(0) if cards \
            else torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(max(sum(cards), 1), emb_dim)
        nn.init.normal_(self.table.weight, std=init_std)
        self.out_dim = self.n_cat * emb_dim + self.n_num

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.n_cat:
            # index_select: its backward is several times faster on CPU than nn.Embedding's
            idx = (cat + self.offsets).reshape(-1)
            parts.append(self.table.weight.index_select(0, idx).view(cat.shape[0], -1))
        if self.n_num:
            parts.append(num)
        if not parts:
            return cat.new_zeros((cat.shape[0], 0), dtype=torch.float32)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
