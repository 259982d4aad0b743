"""A plain MLP ensemble: [scores, logit(scores), user features] -> hidden layers -> score.

The "multi-layer non-linear" one-step ensemble of HarmonRank Fig. 1(b); with the ``bce``
loss it is the usual MBCE production baseline.

Conditioned training (:meth:`MLP.preference_input`; docs/DESIGN.md, "Conditioned
training"): the preference vector joins the user features in the MLP's input.
"""
from __future__ import annotations

import torch
from torch import nn

from ._features import FeatureEncoder, FeatureSpec


class MLP(nn.Module):
    def __init__(self, n_objectives: int, features: FeatureSpec, *,
                 hidden: tuple[int, ...] | list[int] = (64, 32), emb_dim: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        hidden = list(hidden)
        if not hidden or any((not isinstance(h, int)) or h < 1 for h in hidden):
            raise ValueError(f"model.hidden must be a non-empty list of positive ints, "
                             f"got {hidden!r}")
        self.encoder = FeatureEncoder(features, emb_dim)
        layers: list[nn.Module] = []
        width = 2 * n_objectives + self.encoder.out_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def preference_input(cls, params: dict) -> tuple[dict, bool]:
        """The preference is K more input features, next to the user features."""
        return dict(params), True

    def forward(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        p = scores.clamp(1e-6, 1 - 1e-6)
        x = torch.cat([scores, torch.log(p) - torch.log1p(-p), self.encoder(cat, num)], dim=1)
        return self.net(x).squeeze(-1)
