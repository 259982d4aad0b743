"""Static weights from the config: what Tune, Optuna and NSGA-II search over."""
from __future__ import annotations

import math

import torch

from .base import PerObjective, StepContext, Weighting


class StaticWeighting(Weighting):
    """loss = sum_k w_k L_k with fixed w (per member in a population).

    ``weights``: a mapping objective -> weight, a list in objective order, or None for
    1.0 each (the paper's equal weights). Weights must be finite and >= 0 and not all 0.
    ``normalize``: divide by their sum, so only the ratios matter.
    """

    member_state = ("_w",)
    per_objective = {"weights": PerObjective(required=True, simplex=True)}

    def __init__(self, objectives: list[str], *, weights=None, normalize: bool = False):
        super().__init__(objectives)
        k = len(self.objectives)
        if weights is None:
            values = [1.0] * k
        elif isinstance(weights, dict):
            unknown = sorted(set(weights) - set(self.objectives))
            if unknown:
                raise ValueError(f"weighting.weights names unknown objective(s) "
                                 f"{', '.join(unknown)}; objectives: {', '.join(self.objectives)}")
            missing = [o for o in self.objectives if o not in weights]
            if missing:
                raise ValueError(f"weighting.weights lacks objective(s) {', '.join(missing)}; "
                                 f"give a weight for each of {', '.join(self.objectives)}")
            values = [weights[o] for o in self.objectives]
        else:
            values = list(weights)
            if len(values) != k:
                raise ValueError(f"weighting.weights has {len(values)} values for {k} "
                                 f"objectives ({', '.join(self.objectives)})")
        for name, v in zip(self.objectives, values):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"weighting.weights.{name} = {v!r}: a weight must be a "
                                 f"finite number >= 0")
        total = float(sum(values))
        if total <= 0:
            raise ValueError("weighting.weights are all 0: at least one must be > 0")
        if normalize:
            values = [v / total for v in values]
        self._w = torch.tensor(values, dtype=torch.float32)
        self._cache_on: torch.Tensor | None = None

    def preference(self) -> list[float]:
        """The weights themselves, divided by their sum."""
        w = self._w.to(torch.float64)
        return (w / w.sum()).tolist()

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        on = self._cache_on
        if on is None or on.device != losses.device or on.dtype != losses.dtype:
            on = self._cache_on = self._w.to(device=losses.device, dtype=losses.dtype)
        return (losses * on).sum()

    def weights(self) -> torch.Tensor:
        return self._w.clone()

    def multi_task_issue(self) -> str | None:
        return None                      # it never looks at the scores
