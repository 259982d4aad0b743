"""Ensemble (ME) models, registered by name.

Every model maps one batch to one ranking score per item:

    model(scores (n, K) in [0, 1], cat (n, C) int64, num (n, F) float) -> (n,)

and is built as ``cls(n_objectives, features, **hparams)`` where ``features`` is a
:class:`FeatureSpec` and the hyper-parameters are keyword-only with their defaults in
the constructor's signature (an unknown one is an error naming the allowed ones).
"""
from __future__ import annotations

import importlib
import inspect

import torch

from ._features import FeatureSpec

MODELS: dict[str, str] = {
    "fusion": "trainables.models.fusion:Fusion",
    "mlp": "trainables.models.mlp:MLP",
    "harmonrank": "trainables.models.harmonrank:HarmonRank",
}

__all__ = ["MODELS", "FeatureSpec", "build_model", "model_params"]


def _cls(name: str):
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; valid families: "
                         f"{', '.join(sorted(MODELS))}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def model_params(name: str) -> dict:
    """The model's hyper-parameters and their defaults."""
    sig = inspect.signature(_cls(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_model(name: str, n_objectives: int, features: FeatureSpec,
                params: dict | None = None) -> torch.nn.Module:
    """Instantiate model family ``name``; unknown hyper-parameters are an error."""
    params = dict(params or {})
    allowed = model_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    return _cls(name)(n_objectives, features, **params)
