"""The multi-task prediction (MP) stage: raw logs -> an ME dataset (docs/DESIGN.md, "Data contract").

    python -m trainables.mp kuairand --logs DIR --train-days 2022-04-25:2022-04-30 \\
        --score-days 2022-05-01:2022-05-05 --out DIR [--model mmoe] [--weighting pe_ltr]

A multi-task model (``MODELS``: shared_bottom, mmoe) is trained on the earlier days and
scores the later ones out of sample; the scored days become the ME dataset's splits, with
the MP model's per-objective AUCs recorded in meta.yaml (``source.mp_auc``).

Modules: ``features`` (integer codes fitted on the training rows), ``models``,
``train`` (training loop with static or PE-LTR task weights), ``write`` (the ME
dataset), ``kuairand`` (the KuaiRand pipeline and its command line).
"""
from __future__ import annotations

from .._registry import check_params, keyword_defaults, lookup

MODELS: dict[str, str] = {
    "shared_bottom": "trainables.mp.models:SharedBottom",
    "mmoe": "trainables.mp.models:MMoE",
}

__all__ = ["MODELS", "build_model", "model_params"]


def _cls(name: str):
    return lookup(MODELS, name, "MP model", "MP models")


def model_params(name: str) -> dict:
    """The MP model's hyper-parameters and their defaults."""
    return keyword_defaults(_cls(name))


def build_model(name: str, cardinalities: list[int], n_numeric: int, n_tasks: int,
                params: dict | None = None):
    """Instantiate MP model ``name``; unknown parameters are an error naming the allowed."""
    params = dict(params or {})
    check_params("MP model", name, params, model_params(name))
    return _cls(name)(list(cardinalities), n_numeric, n_tasks, **params)
