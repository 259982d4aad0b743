"""The NSGA-II searcher's state as JSON (``search.nsga2``): the param space written as plain
data (each domain a ``{__tune_domain__: kind, ...}`` mapping), the state file's reader
(JSON only: a pickle or any other file is refused, nothing in it is executed) and its
matrix checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ray.tune.search.sample import Categorical, Domain, Float, Integer


def _is_log(domain: Float) -> bool:
    return type(domain.get_sampler()).__name__ == "_LogUniform"


STATE_FORMAT = "paretune-nsga2-searcher"
STATE_VERSION = 1
_DOMAIN = "__tune_domain__"      # marks a domain in the JSON form of the param space


class SearcherStateError(ValueError):
    """A searcher state file that is not paretune's NSGA-II JSON state (never unpickled)."""


def _space_to_json(tree, where="space"):
    """The param space as plain JSON data: each domain a ``{__tune_domain__: kind, ...}``
    mapping holding what :func:`_decode` uses, constants as they are."""
    if isinstance(tree, Domain):
        if isinstance(tree, Categorical):
            return {_DOMAIN: "choice", "categories": _space_to_json(list(tree.categories),
                                                                     where)}
        if isinstance(tree, Integer):
            return {_DOMAIN: "randint", "lower": int(tree.lower), "upper": int(tree.upper)}
        if isinstance(tree, Float):
            return {_DOMAIN: "loguniform" if _is_log(tree) else "uniform",
                    "lower": float(tree.lower), "upper": float(tree.upper)}
        raise ValueError(f"{where}: nsga2 cannot search a {type(tree).__name__} domain")
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string; the searcher state is "
                                 f"JSON")
        return {k: _space_to_json(v, f"{where}.{k}") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_space_to_json(v, f"{where}[{i}]") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if hasattr(tree, "item") and type(tree).__module__ == "numpy":
        return tree.item()
    raise ValueError(f"{where}: a {type(tree).__name__} value cannot be kept in the searcher's "
                     f"JSON state")


def _space_from_json(tree):
    from ray import tune
    if isinstance(tree, dict):
        kind = tree.get(_DOMAIN)
        if kind == "choice":
            return tune.choice(_space_from_json(tree["categories"]))
        if kind == "randint":
            return tune.randint(int(tree["lower"]), int(tree["upper"]))
        if kind == "uniform":
            return tune.uniform(float(tree["lower"]), float(tree["upper"]))
        if kind == "loguniform":
            return tune.loguniform(float(tree["lower"]), float(tree["upper"]))
        if kind is not None:
            raise SearcherStateError(f"unknown domain kind {kind!r} in the searcher state")
        return {k: _space_from_json(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_space_from_json(v) for v in tree]
    return tree


def _matrix(v, rows: int | None, cols: int, what: str, allow_none: bool = False) -> np.ndarray:
    ok = isinstance(v, list) and all(isinstance(r, list) and len(r) == cols and all(
        (x is None and allow_none) or (isinstance(x, (int, float)) and not isinstance(x, bool))
        for x in r) for r in v) and (rows is None or len(v) == rows)
    if not ok:
        raise SearcherStateError(f"{what} must be a list of {rows or 'N'} rows of {cols} "
                                 f"numbers")
    return np.array([[np.nan if x is None else float(x) for x in r] for r in v],
                    dtype=np.float64).reshape(len(v), cols)


def read_state(path) -> dict:
    """Parse and check a searcher state file: JSON only (a pickle or any other file is
    refused with :class:`SearcherStateError`; nothing in it is executed)."""
    raw = Path(path).read_bytes()
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SearcherStateError(
            f"{path}: not a JSON searcher state (paretune's NSGA-II searcher saves its state "
            f"as JSON and never unpickles a file); refused") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise SearcherStateError(f"{path}: not a paretune NSGA-II searcher state (no "
                                 f"'format': {STATE_FORMAT!r})")
    if state.get("version") != STATE_VERSION:
        raise SearcherStateError(f"{path}: searcher state version {state.get('version')!r}; "
                                 f"this paretune reads version {STATE_VERSION}")
    need = {"metrics": list, "population": int, "generations": int, "seed": int,
            "population_trial": bool, "generation": int, "space": dict, "history": list}
    for k, t in need.items():
        if not isinstance(state.get(k), t) or (t is int and isinstance(state.get(k), bool)):
            raise SearcherStateError(f"{path}: '{k}' must be a {t.__name__}")
    if not state["metrics"] or not all(isinstance(m, str) for m in state["metrics"]):
        raise SearcherStateError(f"{path}: 'metrics' must be a list of metric names")
    if state["generation"] != len(state["history"]):
        raise SearcherStateError(f"{path}: 'generation' ({state['generation']}) differs from "
                                 f"the generations recorded ({len(state['history'])})")
    cur = state.get("current")
    if cur is not None:
        if not isinstance(cur, dict) or not isinstance(cur.get("assigned"), dict) or not all(
                isinstance(v, int) and not isinstance(v, bool)
                for v in cur["assigned"].values()) or not all(
                isinstance(cur.get(k), int) for k in ("next", "done")):
            raise SearcherStateError(f"{path}: 'current' must hold X, F, assigned, next, done")
    return state


