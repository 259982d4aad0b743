"""The searchers a space's ``search.algorithm`` names: ONE registry, :data:`SEARCHERS`.

Each entry is a :class:`~search.searchers.base.SearchAlgorithm` declaring its ``search:``
keys, checks, trial count, ``--smoke-test`` shrinking and Tune search algorithm. Adding a
searcher is one new file in this package and one line below; the space parser
(:func:`parse_search`), the runner, ``search.limits`` and the budget benchmark read only
this dict.
"""
from __future__ import annotations

import copy

from ..distributions import _fail, _int_at_least, _mapping, _names, _plugin
from .base import COMMON, SearchAlgorithm
from .grid import Grid
from .nsga2 import NSGA2
from .optuna import Optuna
from .pe_ltr_grid import PELTRGrid
from .random import Random

SEARCHERS: dict[str, SearchAlgorithm] = {
    "random": Random(),
    "grid": Grid(),
    "optuna": Optuna(),
    "nsga2": NSGA2(),
    "pe_ltr_grid": PELTRGrid(),
}

__all__ = ["COMMON", "SEARCHERS", "SearchAlgorithm", "parse_search", "searcher", "smoke_help"]


def searcher(search: dict) -> SearchAlgorithm:
    """The registered searcher of a parsed ``search`` section."""
    return SEARCHERS[search["algorithm"]]


def parse_search(v) -> dict:
    """Validate a space's ``search:`` mapping (one error naming ``search.<key>``, the
    value and what is allowed) -> the search settings: :data:`COMMON` keys, then every
    registered searcher's own keys (None unless the chosen searcher takes them)."""
    v = _mapping("search", v)
    alg, chosen = _plugin("search", v, "algorithm", COMMON["algorithm"], SEARCHERS, COMMON)
    s = {**COMMON, "num_samples": chosen.num_samples,
         **{k: None for o in SEARCHERS.values() for k in o.params},
         **copy.deepcopy(chosen.params), **v}
    chosen.parse(s, v)
    serve = _names(sorted(n for n, o in SEARCHERS.items() if o.population))
    if not isinstance(s["population"], bool):
        _fail("search.population", s["population"], f"must be true or false (true: train a "
              f"generation or a grid as one population trial; search.algorithm {serve})")
    if s["population"] and not chosen.population:
        _fail("search.population", True, f"population trials serve {serve}; "
              f"search.algorithm {alg} trains one model per trial")
    _int_at_least("search.num_samples", s["num_samples"], 1)
    if s["max_concurrent"] is not None:
        _int_at_least("search.max_concurrent", s["max_concurrent"], 1, "or null")
    _int_at_least("search.max_failures", s["max_failures"], 0)
    if s["seed"] is not None:
        _int_at_least("search.seed", s["seed"], 0, "or null")
    return s


def smoke_help() -> str:
    """What ``--smoke-test`` runs, per searcher (its ``smoke_text``)."""
    texts: dict[str, list[str]] = {}
    for name, o in SEARCHERS.items():
        texts.setdefault(o.smoke_text, []).append(name)
    per = "; ".join(f"{'/'.join(names)}: {text}" for text, names in texts.items())
    return (f"a seconds-long check of the whole path: 1 epoch per trial on small data, no "
            f"scheduler, W&B offline; {per}")
