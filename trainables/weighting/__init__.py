"""Loss weightings: turn the per-objective losses into the one loss a step minimizes.

Registered by name (``WEIGHTINGS``); each is a class built with
``cls(objectives, **params)`` whose keyword defaults are its own. Later weightings
(PE-LTR's KKT weights, EMER's self-evolving weights, GradNorm...) implement the same
:class:`Weighting` interface, which gives them what they need at each step through
:class:`StepContext` (the model, the batch's scores, the step number).
"""
from __future__ import annotations

import importlib
import inspect

from .base import StepContext, Weighting

WEIGHTINGS: dict[str, str] = {
    "static": "trainables.weighting.static:StaticWeighting",
    "pe_ltr": "trainables.weighting.pe_ltr:PELTRWeighting",
}

__all__ = ["WEIGHTINGS", "Weighting", "StepContext", "build_weighting", "weighting_params",
           "pe_ltr_weights"]


def pe_ltr_weights(grads, bounds=None, mode: str = "two_step"):
    """PE-LTR KKT weights (DESIGN.md §7.2, §10); see trainables.weighting.pe_ltr."""
    from .pe_ltr import pe_ltr_weights as solve
    return solve(grads, bounds, mode)


def _cls(name: str):
    try:
        target = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(f"unknown weighting {name!r}; valid weightings: "
                         f"{', '.join(sorted(WEIGHTINGS))}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def weighting_params(name: str) -> dict:
    """The weighting's parameters and their defaults."""
    sig = inspect.signature(_cls(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_weighting(name: str, objectives: list[str], params: dict | None = None) -> Weighting:
    """Instantiate weighting ``name``; unknown parameters are an error naming the allowed ones."""
    params = dict(params or {})
    allowed = weighting_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"weighting {name!r} has no parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed)) or 'none'}")
    return _cls(name)(list(objectives), **params)
