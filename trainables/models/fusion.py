"""The industry baseline: a learned ranking formula over the MP scores.

``form="product"``: s = sum_k w_k log(alpha_k + p_k), i.e. the ranking formula
prod_k (alpha_k + p_k)^{w_k} in log space (alpha_k > 0 learned, keeps log finite).
``form="sum"``: s = sum_k w_k p_k.
``personalized=True`` adds a linear map of the user/context features to the weights,
w = w_0 + W f, the simplest personalized formula.

Conditioned training (:meth:`Fusion.preference_input`; docs/DESIGN.md, "Conditioned
training"): the preference vector p joins the personalized map, w = w_0 + W [f, p] (with
``personalized=False``: w = w_0 + W p), a learned preference-to-exponent map that starts
at zero, so every preference begins at the shared formula.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._features import FeatureEncoder, FeatureSpec

FORMS = ("product", "sum")


class Fusion(nn.Module):
    def __init__(self, n_objectives: int, features: FeatureSpec, *, form: str = "product",
                 personalized: bool = False, emb_dim: int = 4):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"model.form must be one of {FORMS}, got {form!r}")
        self.form = form
        self.w0 = nn.Parameter(torch.ones(n_objectives))
        # softplus(-4.6) ~ 0.01: a small floor under each probability
        self.alpha_raw = nn.Parameter(torch.full((n_objectives,), -4.6))
        self.encoder = None
        if personalized and not features.empty:
            self.encoder = FeatureEncoder(features, emb_dim)
            self.personal = nn.Linear(self.encoder.out_dim, n_objectives)
            nn.init.zeros_(self.personal.weight)
            nn.init.zeros_(self.personal.bias)

    @classmethod
    def preference_input(cls, params: dict) -> tuple[dict, bool]:
        """The preference enters through the personalized weights (a preference-to-exponent
        map); the user features stay only when ``personalized`` asks for them."""
        return {**params, "personalized": True}, bool(params["personalized"])

    def forward(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        terms = torch.log(F.softplus(self.alpha_raw) + scores) if self.form == "product" \
            else scores
        w = self.w0
        if self.encoder is not None:
            w = w + self.personal(self.encoder(cat, num))
        return (terms * w).sum(-1)
