"""The multi-task prediction (MP) stage: raw logs -> an ME dataset (docs/DESIGN.md, "Data contract").

    python -m trainables.mp kuairand --train-days 2022-04-25:2022-04-30 \\
        --score-days 2022-05-01:2022-05-05 --out DIR [--logs DIR] [--config FILE]

A multi-task model (``MP_MODELS``: shared_bottom, mmoe) is trained on the earlier days
and scores the later ones out of sample; the scored days become the ME dataset's splits,
with the MP model's per-objective AUCs recorded in meta.yaml (``source.mp_auc``). Its task
weights come from the project's weighting registry (``trainables.weighting``: ``static``,
or ``pe_ltr`` on the gradients of the model's ``shared_parameters()``).

Modules, none of them specific to one dataset: ``codes`` (integer codes and statistics
fitted on the training rows; the embedding itself is the ME models'
``trainables.models._features.FeatureEncoder``), ``models``, ``train`` (the training
loop and its settings), ``config`` (the model/weighting/train sections of a stage config,
strict keys), ``write`` (the ME dataset). Each source of logs has its own package
(``trainables.kuairand``: loader, requests, pipeline, default config, command line).
"""
from __future__ import annotations

from .._registry import check_params, keyword_defaults, lookup

# MP (multi-task prediction) models; the ME (ensemble) models are trainables.models.MODELS.
MP_MODELS: dict[str, str] = {
    "shared_bottom": "trainables.mp.models:SharedBottom",
    "mmoe": "trainables.mp.models:MMoE",
}

__all__ = ["MP_MODELS", "build_mp_model", "mp_model_params"]


def _cls(name: str):
    return lookup(MP_MODELS, name, "MP model", "MP models")


def mp_model_params(name: str) -> dict:
    """The MP model's hyper-parameters and their defaults (its constructor's keywords)."""
    return keyword_defaults(_cls(name))


def build_mp_model(name: str, n_tasks: int, features, params: dict | None = None):
    """Instantiate MP model ``name`` for ``n_tasks`` objectives on ``features`` (a
    ``FeatureSpec``); unknown parameters are an error naming the allowed ones."""
    params = dict(params or {})
    check_params("MP model", name, params, mp_model_params(name))
    return _cls(name)(n_tasks, features, **params)
