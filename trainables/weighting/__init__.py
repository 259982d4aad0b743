"""Loss weightings: turn the per-objective losses into the one loss a step minimizes.

Registered by name (``WEIGHTINGS``); each is a class built with
``cls(objectives, **params)`` whose keyword defaults are its own. Later weightings
(PE-LTR's KKT weights, EMER's self-evolving weights, GradNorm...) implement the same
:class:`Weighting` interface, which gives them what they need at each step through
:class:`StepContext` (the model, the batch's scores, the step number).
"""
from __future__ import annotations

from .._registry import check_params, keyword_defaults, lookup
from .base import PerObjective, StepContext, Weighting

WEIGHTINGS: dict[str, str] = {
    "static": "trainables.weighting.static:StaticWeighting",
    "pe_ltr": "trainables.weighting.pe_ltr:PELTRWeighting",
    "self_evolving": "trainables.weighting.self_evolving:SelfEvolvingWeighting",
}

__all__ = ["WEIGHTINGS", "Weighting", "StepContext", "PerObjective", "build_weighting",
           "weighting_params", "weighting_per_objective", "simplex_params", "pe_ltr_weights"]


def pe_ltr_weights(grads, bounds=None, mode: str = "two_step"):
    """PE-LTR KKT weights (docs/DESIGN.md, "PE-LTR weights"); see trainables.weighting.pe_ltr."""
    from .pe_ltr import pe_ltr_weights as solve
    return solve(grads, bounds, mode)


def _cls(name: str):
    return lookup(WEIGHTINGS, name, "weighting", "weightings")


def weighting_params(name: str) -> dict:
    """The weighting's parameters and their defaults."""
    return keyword_defaults(_cls(name))


def weighting_per_objective(name: str) -> dict[str, PerObjective]:
    """The weighting's per-objective parameters (objective -> number mappings), as its
    class declares them (``Weighting.per_objective``)."""
    return dict(_cls(name).per_objective)


def simplex_params() -> list[str]:
    """Every weighting parameter that may be written ``{simplex: [objectives]}``."""
    return sorted({p for n in WEIGHTINGS for p, spec in weighting_per_objective(n).items()
                   if spec.simplex})


def build_weighting(name: str, objectives: list[str], params: dict | None = None) -> Weighting:
    """Instantiate weighting ``name``; unknown parameters are an error naming the allowed ones."""
    params = dict(params or {})
    check_params("weighting", name, params, weighting_params(name))
    return _cls(name)(list(objectives), **params)
