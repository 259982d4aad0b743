"""Ensemble (ME) models, registered by name.

Every model maps one batch to one ranking score per item:

    model(scores (n, K) in [0, 1], cat (n, C) int64, num (n, F) float) -> (n,)

and is built as ``cls(n_objectives, features, **hparams)`` where ``features`` is a
:class:`FeatureSpec` and the hyper-parameters are keyword-only with their defaults in
the constructor's signature (an unknown one is an error naming the allowed ones).
"""
from __future__ import annotations

import torch

from .._registry import check_params, keyword_defaults, lookup
from ._features import FeatureSpec

MODELS: dict[str, str] = {
    "fusion": "trainables.models.fusion:Fusion",
    "mlp": "trainables.models.mlp:MLP",
    "harmonrank": "trainables.models.harmonrank:HarmonRank",
    "emer": "trainables.models.emer:EMER",
}

__all__ = ["MODELS", "FeatureSpec", "build_model", "model_params"]


def _cls(name: str):
    return lookup(MODELS, name, "model family", "families")


def model_params(name: str) -> dict:
    """The model's hyper-parameters and their defaults."""
    return keyword_defaults(_cls(name))


def build_model(name: str, n_objectives: int, features: FeatureSpec,
                params: dict | None = None) -> torch.nn.Module:
    """Instantiate model family ``name``; unknown hyper-parameters are an error."""
    params = dict(params or {})
    check_params("model", name, params, model_params(name))
    return _cls(name)(n_objectives, features, **params)
