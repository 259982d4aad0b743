"""The interface every weighting implements."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StepContext:
    """What a weighting may look at in one training step."""

    step: int                   # global optimizer step, from 0
    epoch: int
    model: torch.nn.Module
    scores: torch.Tensor        # (n,) the batch's ensemble scores (part of the graph)
    labels: torch.Tensor        # (n, K)
    extra: dict = field(default_factory=dict)


class Weighting:
    """Combine per-objective losses (K,) into one scalar; expose the current weights."""

    def __init__(self, objectives: list[str]):
        self.objectives = list(objectives)

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        raise NotImplementedError

    def weights(self) -> torch.Tensor:
        """Current weights (K,), for logging as ``weight/<obj>``."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State to checkpoint (stateless weightings return {})."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
