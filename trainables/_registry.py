"""What the registries (models, losses, weightings) share: lazy lookup by name, the
keyword defaults a component owns, and the unknown-parameter error."""
from __future__ import annotations

import importlib
import inspect


def lookup(registry: dict[str, str], name: str, what: str, plural: str):
    """Import and return ``registry[name]`` ("module:attr"); ValueError listing the names."""
    try:
        target = registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; valid {plural}: "
                         f"{', '.join(sorted(registry))}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def keyword_defaults(fn) -> dict:
    """The keyword-only parameters of ``fn`` (a function, or a class's __init__)."""
    sig = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_params(label: str, name: str, given: dict, allowed: dict) -> None:
    """ValueError naming the unknown keys of ``given`` and the allowed ones."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{label} {name!r} has no parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed)) or 'none'}")
