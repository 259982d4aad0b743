"""The synthetic generator's parameters: defaults, bounds and checks, and the cache key.

    defaults()              # every parameter and its default (a data config overrides them)
    population(p)           # (users, items) of checked parameters: given, or from rows (capped)
    fingerprint(params)     # the checked parameters' hash: the generated dataset's cache key
    check_classes(params)   # every split expects both classes of every objective
    min_rows(params)        # the fewest rows for which it does

Everything here is cheap and generates nothing: the space parser calls it before Ray.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ..yaml_safe import short as _short

# Bounds of the generator's parameters. MIN_ROWS keeps every split a few requests long;
# MAX_ROWS is what a trial's loader is meant to hold (the generator itself writes any
# size in flat memory); MAX_IDS bounds an explicit population (its tables are in memory).
MIN_ROWS = 1_000
MAX_ROWS = 100_000_000
MAX_IDS = 10_000_000
MIN_EXPECTED_CLASS = 3
MAX_OBJECTIVES = 32
# Automatic population (users, items: null): (floor, rows per id, cap). The sizes grow
# with rows up to their size at 10^7 rows, then stay: larger datasets reuse a population
# of that size, so the generator's memory does not grow with rows.
AUTO_USERS = (200, 40, 250_000)
AUTO_ITEMS = (500, 10, 1_000_000)


def defaults() -> dict:
    """The generator's parameters and their defaults (a data config overrides them)."""
    return {"rows": 200_000, "objectives": ["buy", "follow", "long_view"], "seed": 0,
            "positive_rates": None, "candidates": 10, "users": None, "items": None,
            "split_fractions": [0.8, 0.1, 0.1], "chunk_rows": 500_000}


def _check(params: dict) -> dict:
    p = {**defaults(), **params}
    unknown = sorted(set(params) - set(defaults()))
    if unknown:
        raise ValueError(f"synthetic data has no parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(defaults()))}")
    objs = p["objectives"]
    if not isinstance(objs, list) or not 0 < len(objs) <= MAX_OBJECTIVES or \
            not all(isinstance(o, str) and o.isidentifier() and len(o) <= 64 for o in objs) \
            or len(set(objs)) != len(objs):
        raise ValueError(f"data.objectives must be a list of 1 to {MAX_OBJECTIVES} distinct "
                         f"names (letters, digits, _; at most 64 characters), got "
                         f"{_short(objs)}")
    rates = p["positive_rates"]
    if rates is None:
        rates = {}
    if not isinstance(rates, dict):
        raise ValueError(f"data.positive_rates must map objective -> rate, got {_short(rates)}")
    bad = sorted(set(rates) - set(objs))
    if bad:
        raise ValueError(f"data.positive_rates names unknown objective(s) {', '.join(bad)}; "
                         f"objectives: {', '.join(objs)}")
    for o, r in rates.items():
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not (1e-6 <= r <= 0.9):
            raise ValueError(f"data.positive_rates.{o} = {_short(r)}: must be in [1e-6, 0.9]")
    from .synthetic import KNOWN
    p["positive_rates"] = {o: float(rates.get(o, KNOWN.get(o, (None, 0.05))[1])) for o in objs}
    for key, lo, hi in (("rows", MIN_ROWS, MAX_ROWS), ("candidates", 1, 10_000),
                        ("chunk_rows", 1000, MAX_ROWS), ("seed", 0, 2 ** 63 - 1)):
        v = p[key]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"data.{key} must be an integer in [{lo:,}, {hi:,}], got "
                             f"{_short(v)}")
    for key in ("users", "items"):  # None: sized from rows; too few cannot be whitened
        v = p[key]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not 10 <= v <= MAX_IDS):
            raise ValueError(f"data.{key} must be an integer in [10, {MAX_IDS:,}] or null "
                             f"(automatic), got {_short(v)}")
    fr = p["split_fractions"]
    if not (isinstance(fr, list) and len(fr) == 3 and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < math.inf
            for f in fr)):
        raise ValueError(f"data.split_fractions must be 3 positive numbers (train, valid, test), "
                         f"got {_short(fr)}")
    smallest = int(p["rows"] * min(fr) / sum(fr))
    if p["candidates"] > smallest:
        raise ValueError(f"data.candidates = {p['candidates']} is more than the smallest split's "
                         f"{smallest} rows (rows {p['rows']} x split_fractions {fr}); use fewer "
                         f"candidates or more rows")
    return p


def _auto(rows: int, rule: tuple[int, int, int]) -> int:
    floor, per, cap = rule
    return min(cap, max(floor, rows // per))


def population(p: dict) -> tuple[int, int]:
    """(users, items) of checked parameters: as given, or sized from rows (capped)."""
    return (p["users"] or _auto(p["rows"], AUTO_USERS),
            p["items"] or _auto(p["rows"], AUTO_ITEMS))


def _capped(p: dict) -> bool:
    return any(p[key] is None and p["rows"] // rule[1] > rule[2]
               for key, rule in (("users", AUTO_USERS), ("items", AUTO_ITEMS)))


def _split_rows(p: dict) -> dict[str, int]:
    """The rows each split gets (whole requests of ``candidates`` rows), as generate writes."""
    fr = np.asarray(p["split_fractions"], dtype=np.float64)
    sizes = np.floor(p["rows"] * fr / fr.sum()).astype(int)
    cand = p["candidates"]
    return {n: max(1, int(k) // cand) * cand for n, k in zip(("train", "valid", "test"), sizes)}


def min_rows(params: dict) -> int:
    """The fewest rows (a multiple of 1,000) for which :func:`check_classes` passes with
    these other parameters (at most MAX_ROWS)."""
    p = _check({**params, "rows": MAX_ROWS})
    q = min(min(r, 1 - r) for r in p["positive_rates"].values())
    fr = p["split_fractions"]
    need = max(MIN_ROWS, math.ceil(MIN_EXPECTED_CLASS * sum(fr) / (min(fr) * q)))
    while need < MAX_ROWS and min(_split_rows({**p, "rows": need}).values()) * q \
            < MIN_EXPECTED_CLASS:
        need = math.ceil(need * 1.01) + p["candidates"]
    return min(MAX_ROWS, -(-need // 1000) * 1000)


def check_classes(params: dict) -> None:
    """Refuse parameters whose smallest split would likely miss a class of an objective:
    every split must expect at least :data:`MIN_EXPECTED_CLASS` positives and negatives of
    every objective (rows x split fraction x positive rate). Cheap: generates nothing."""
    p = _check(params)
    rates = p["positive_rates"]
    q = {o: min(r, 1 - r) for o, r in rates.items()}
    sizes = _split_rows(p)
    split = min(sizes, key=sizes.get)
    o = min(q, key=q.get)
    n = sizes[split]
    if n * q[o] >= MIN_EXPECTED_CLASS:
        return
    need = min_rows(params)
    kind = "positives" if rates[o] <= 0.5 else "negatives"
    raise ValueError(
        f"data.rows = {p['rows']}: the {split} split gets {n:,} rows, where {o!r} (positive "
        f"rate {rates[o]:g}) expects {n * q[o]:.2g} {kind}; every split needs both classes "
        f"of every objective (at least {MIN_EXPECTED_CLASS} expected): use data.rows >= "
        f"{need:,}, or change data.positive_rates.{o}")


def fingerprint(params: dict) -> str:
    """A short hash of the resolved parameters: the cache key of a generated dataset."""
    p = _check(params)
    p.pop("chunk_rows")          # row groups only: the data do not depend on it
    if _capped(p):               # a capped population: not what this key once generated
        p["population"] = list(population(p))
    return hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]
