"""Ensemble (ME) models, registered by name.

Every model maps one batch to one ranking score per item:

    model(scores (n, K) in [0, 1], cat (n, C) int64, num (n, F) float) -> (n,)

and is built as ``cls(n_objectives, features, **hparams)`` where ``features`` is a
:class:`FeatureSpec` and the hyper-parameters are keyword-only with their defaults in
the constructor's signature (an unknown one is an error naming the allowed ones).

Conditioned training (docs/DESIGN.md, "Conditioned training") wraps a family in
:class:`ConditionedModel`, which feeds it the preference w as K extra numeric features; a
family says what it does with them in its ``preference_input(params)`` classmethod
(:func:`preference_input`; without one, the features go in as they are).
"""
from __future__ import annotations

import torch

from .._registry import check_params, keyword_defaults, lookup
from ._features import FeatureSpec
from ._preference import ConditionedModel

MODELS: dict[str, str] = {
    "fusion": "trainables.models.fusion:Fusion",
    "mlp": "trainables.models.mlp:MLP",
    "harmonrank": "trainables.models.harmonrank:HarmonRank",
    "emer": "trainables.models.emer:EMER",
}

__all__ = ["MODELS", "FeatureSpec", "ConditionedModel", "build_model", "model_params",
           "preference_input"]


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


def preference_input(name: str, params: dict) -> tuple[dict, bool]:
    """How family ``name`` takes a preference w that arrives as K numeric features after
    the user/context ones: (hyper-parameters to build it with, whether the user/context
    features stay). The family's ``preference_input`` classmethod decides; a family
    without one is built as configured, with every feature kept."""
    params = dict(params or {})
    check_params("model", name, params, model_params(name))
    full = {**model_params(name), **params}
    hook = getattr(_cls(name), "preference_input", None)
    if hook is None:
        return full, True
    built, keep = hook(full)
    return dict(built), bool(keep)
