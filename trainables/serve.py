"""Score with an exported frontier point (``python -m analysis export``; docs/DESIGN.md,
"Conditioned training").

    from trainables.serve import load
    m = load("experiments/x/export-abc12_00000-p7")
    s = m.score(scores, cat, num)                   # (n,): the exported preference
    s = m.score(scores, cat, num, {"buy": 0.7, "click": 0.3})   # another trade-off
    s = m.score(scores, cat, num, W)                # W (P, K): (P, n), one row per preference

``scores`` (n, K) are the MP stage's probabilities in ``m.objectives`` order, ``cat`` (n, C)
the integer codes and ``num`` (n, F) the numeric features in ``m.features`` order, as the
data layer gives them to training (numeric ones standardized with the training split's
mean and std); ``groups`` (n,) the request ids, for a model that needs them (EMER).
Numpy arrays or tensors. The model is loaded from weights and plain data only
(``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_model


class Served:
    """An exported model with its objectives, feature layout and chosen preference."""

    def __init__(self, model, payload: dict, preference: dict | None):
        self.model = model
        self.objectives = list(payload["objectives"])
        self.features = payload["features"]
        self.config = payload["config"]
        self.preference = preference
        self.conditioned = self.config.get("conditioning") is not None

    @torch.no_grad()
    def score(self, scores, cat=None, num=None, w=None, groups=None) -> torch.Tensor:
        """The fused score of each row: (n,), or (P, n) for P preferences ``w`` (P, K)."""
        device = next(self.model.parameters()).device
        scores = _tensor(scores, torch.float32, device)
        n = scores.shape[0]
        if scores.dim() != 2 or scores.shape[1] != len(self.objectives):
            raise ValueError(f"scores must be (n, {len(self.objectives)}): one MP score per "
                             f"objective ({', '.join(self.objectives)}), got "
                             f"{tuple(scores.shape)}")
        cat = torch.zeros(n, 0, dtype=torch.int64, device=device) if cat is None else \
            _tensor(cat, torch.int64, device)
        num = torch.zeros(n, 0, device=device) if num is None else \
            _tensor(num, torch.float32, device)
        for what, x, names in (("cat", cat, list(self.features["categorical"])),
                               ("num", num, list(self.features["numeric"]))):
            if x.shape != (n, len(names)):
                raise ValueError(f"{what} must be (n, {len(names)}) with columns "
                                 f"{', '.join(names) or '(none)'}, got {tuple(x.shape)}")
        if groups is not None:
            groups = _tensor(groups, torch.int64, device)
        if not self.conditioned:
            if w is not None:
                raise ValueError("this model was not trained conditioned: it has one fixed "
                                 "trade-off and takes no preference w")
            args = (scores, cat, num) + ((groups,) if self.model_needs_requests else ())
            return self.model(*args)
        if w is None:
            w = self.preference
            if w is None:
                raise ValueError("give a preference w: this export names none")
        return self.model.score(scores, cat, num, self.preference_vector(w), groups)

    @property
    def model_needs_requests(self) -> bool:
        return bool(getattr(self.model, "needs_requests", False))

    def preference_vector(self, w) -> torch.Tensor:
        """A mapping objective -> weight or K (or (P, K)) numbers, normalized to sum 1."""
        from .conditioned import preference_vector
        if not isinstance(w, dict) and np.asarray(w).ndim == 2:
            return torch.tensor(np.stack([preference_vector(r, self.objectives, "w")
                                          for r in np.asarray(w)]), dtype=torch.float32)
        return torch.tensor(preference_vector(w, self.objectives, "w"), dtype=torch.float32)


def _tensor(x, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x,
                           dtype=dtype, device=device)


def load(folder, device="cpu") -> Served:
    """An exported point (``python -m analysis export``), or any paretune checkpoint
    folder, ready to score."""
    model, payload = load_model(folder, device)
    f = Path(folder) / "preference.json"
    preference = json.loads(f.read_text()).get("preference") if f.is_file() else None
    if preference is None and payload["config"].get("conditioning") is not None:
        preference = payload["config"]["conditioning"].get("at")
    return Served(model, payload, preference)


def score(folder_or_served, scores, cat=None, num=None, w=None, groups=None) -> torch.Tensor:
    """``load(folder).score(scores, cat, num, w, groups)`` in one call."""
    served = folder_or_served if isinstance(folder_or_served, Served) else \
        load(folder_or_served)
    return served.score(scores, cat, num, w, groups)
