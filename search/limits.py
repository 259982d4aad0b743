"""Sizes a search may have, checked before Ray starts (each error names the key and the
count), and the experiment-name rule.

- :data:`MAX_TRIALS`: trials one search may plan, as its searcher counts them
  (``search.searchers``: ``num_samples``; grid points x ``num_samples``; ``pop_size`` x
  ``generations``...): :func:`check_size`, :func:`planned_trials`;
- :data:`MAX_MEMBERS`: members of one population trial (``search.population``);
- :data:`MAX_MODEL_PARAMS`: parameters of one model (counted without allocating);
- experiment names (``--name``, a space's ``name``): :func:`check_name`.
"""
from __future__ import annotations

import math
import re

from trainables.yaml_safe import short

from .distributions import SpaceError, _fail

MAX_TRIALS = 10_000
MAX_MEMBERS = 1_000
MAX_MODEL_PARAMS = 100_000_000
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name, what: str = "--name") -> str:
    """An experiment name: 1 to 100 letters, digits, ``.``, ``_``, ``-``, starting with a
    letter or digit (so never ``.``, ``..``, a path or an option). Returns it; SpaceError
    (a ValueError) otherwise."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise SpaceError(f"{what} {short(name)}: an experiment name is 1 to 100 letters, "
                         f"digits, '.', '_' or '-', starting with a letter or digit (it "
                         f"names a folder inside the storage folder; no '/')")
    return name


def das_dennis_points(partitions: int, objectives: int) -> int:
    """How many lower-bound vectors pe_ltr_grid makes: C(partitions + k - 1, k - 1)."""
    return math.comb(partitions + objectives - 1, objectives - 1)


def check_trials(where: str, value, count: int, what: str = "trials",
                 limit: int = MAX_TRIALS) -> None:
    """_Invalid naming ``where`` when ``count`` (planned from ``value``) is over ``limit``."""
    if count > limit:
        shown = f"{count:,}" if count < 10 ** 30 else f"about 10^{len(str(count)) - 1}"
        _fail(where, value, f"plans {shown} {what}; at most {limit:,}")


def planned_trials(search: dict, tree: dict, k: int) -> int:
    """The trials a parsed search plans over a space's trees (``k`` objectives), as its
    searcher counts them."""
    from .searchers import searcher
    return searcher(search).trials(search, tree, k)


def check_size(search: dict, tree: dict, k: int) -> None:
    """The searcher's planned trials (and population members) against the limits; the
    error names the key that sets the count."""
    from .searchers import searcher
    searcher(search).check_limits(search, tree, k)
