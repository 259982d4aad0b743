"""Parsed space trees: nested dicts whose leaves are values or validated distributions
(``_Dist``), one per trial section, and what is read off them: each component option's
tree, grid variants, the representative config, and :func:`materialize` (a sampled trial
config -> a training config), :func:`config_key` (what a trial trains, as a string: no
config is trained twice). Used by the space parser (``search.space``) and the
searchers (``search.searchers``); imports no Ray.

A simplex is sampled as independent u_k ~ U(1e-9, 1) (so Optuna can search it) and mapped
to w_k = -log u_k / sum_j -log u_j: normalized Exp(1) variables, i.e. Dirichlet(1,...,1),
exactly uniform on the simplex. Objectives outside the simplex get weight 0.
"""
from __future__ import annotations

import copy
import itertools
import json
import math

from trainables.losses import LOSSES, loss_params
from trainables.models import MODELS, model_params
from trainables.weighting import WEIGHTINGS, weighting_params

from .distributions import SIMPLEX, _Dist

# conditioning is optional: its tree is None when the space has none (trainables.conditioned)
TRIAL_SECTIONS = ("data", "model", "loss", "weighting", "optim", "run", "conditioning")
# section -> (selector key, registry, default option, parameters of an option)
_COMPONENTS = {
    "model": ("family", MODELS, "harmonrank", model_params),
    "loss": ("kind", LOSSES, "rank_auc", loss_params),
    "weighting": ("kind", WEIGHTINGS, "static", weighting_params),
}


def _render(tree, leaf):
    if isinstance(tree, _Dist):
        return leaf(tree)
    if isinstance(tree, dict):
        return {k: _render(v, leaf) for k, v in tree.items()}
    return copy.deepcopy(tree)


def _leaves(tree, prefix=()):
    for k, v in (tree or {}).items():       # an absent optional section is None
        if isinstance(v, _Dist):
            yield prefix + (k,), v
        elif isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))


def _set(tree: dict, path: tuple, value) -> None:
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


def _first(tree):
    return _render(tree, _Dist.first)


def _options(section: str, tree: dict) -> list[tuple[str, dict]]:
    """(option, the section's tree for that option alone) for each selector option."""
    if section not in _COMPONENTS:
        return [("", tree)]
    sel, registry, _, _ = _COMPONENTS[section]
    chosen = tree[sel]
    out = []
    for o in (chosen.args if isinstance(chosen, _Dist) else [chosen]):
        t = {k: v for k, v in tree.items() if k not in registry}
        t[sel] = o
        t.update(tree.get(o) or {})
        out.append((o, t))
    return out


def _grid_variants(section: str, tree: dict) -> list[dict]:
    """Every combination of the section's choices, option by option (no duplicate trials
    from the sub-mappings of options that are not sampled)."""
    out = []
    for _, t in _options(section, tree):
        leaves = list(_leaves(t))
        for combo in itertools.product(*[d.args for _, d in leaves]):
            v = _render(t, lambda d: None)
            for (p, _), val in zip(leaves, combo):
                _set(v, p, copy.deepcopy(val))
            out.append(v)
    return out


def _plain(x):
    """numpy scalars (from some searchers) -> Python scalars; containers copied."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and type(x).__module__ == "numpy":
        return x.item()
    return x


def _simplex_weights(weights: dict) -> dict:
    u = weights[SIMPLEX]
    e = {o: -math.log(min(max(float(x), 1e-300), 1.0)) for o, x in u.items()}
    total = sum(e.values())
    w = {o: (v / total if total > 0 else 1.0 / len(e)) for o, v in e.items()}
    return {**w, **{o: float(v) for o, v in weights.items() if o != SIMPLEX}}


def materialize(config: dict) -> dict:
    """A sampled trial config -> a training config: keep the sampled family's / kind's
    sub-mapping (drop the others'), turn ``__simplex__`` into weights summing to 1.
    Sections that are absent stay absent; an already materialized config is unchanged."""
    cfg = _plain(config)
    for section, (sel, registry, default, _) in _COMPONENTS.items():
        sec = cfg.get(section)
        if not isinstance(sec, dict):
            continue
        chosen = sec.get(sel, default)
        merged = {k: v for k, v in sec.items() if k not in registry}
        if isinstance(sec.get(chosen), dict):
            merged.update(sec[chosen])
        cfg[section] = merged
    w = cfg.get("weighting")
    for k, x in (list(w.items()) if isinstance(w, dict) else ()):
        if isinstance(x, dict) and SIMPLEX in x:      # a simplex-sampled mapping: weights
            w[k] = _simplex_weights(x)
    if isinstance(cfg.get("population"), list):     # a population trial's members
        cfg["population"] = [materialize(m) for m in cfg["population"]]
    return cfg


KEY_DIGITS = 6       # significant digits a float keeps in a config key


def _rounded(x):
    if isinstance(x, float):
        return float(f"{x:.{KEY_DIGITS}g}") if math.isfinite(x) else repr(x)
    if isinstance(x, dict):
        return {str(k): _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


def config_key(config: dict) -> str:
    """What a trial trains, as one string: the materialized config as canonical JSON,
    floats rounded to KEY_DIGITS significant digits (two draws that close train the same
    model). Two trials with the same key would spend the budget twice."""
    return json.dumps(_rounded(materialize(config)), sort_keys=True, default=repr)
