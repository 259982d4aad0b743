"""The section parsers of a space file (``search.space``): the component sections (model,
loss, weighting: a selector and its options' parameters), the flat ones (optim, run), the
population rule, and the space-only sections resources, tracking and ``search.metrics``.

:data:`SECTION_PARSERS` is the one list of how each trial section after ``data`` is
parsed (``space_tree.TRIAL_SECTIONS`` names them, in order): a new top-level section that
is passed through to the training config is its name in ``TRIAL_SECTIONS`` and one entry
here. Every error names the key path, the value and what is allowed; no Ray.
"""
from __future__ import annotations

import math

from trainables.config import (OPTIM_DEFAULTS, RUN_DEFAULTS, option_kind, option_ok,
                               option_rule)
from trainables.weighting import weighting_per_objective
from trainables.yaml_safe import short

from .distributions import (DISTRIBUTIONS, _check_value, _Dist, _fail, _int_at_least,
                            _is_dist_form, _is_number, _kind_of, _mapping, _names,
                            _parse_dist, _simplex_only)
from .space_tree import _COMPONENTS, TRIAL_SECTIONS, _leaves

WANDB_MODES = ("offline", "online", "disabled")
RESOURCES_DEFAULTS = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}
WANDB_DEFAULTS = {"project": "paretune", "mode": "offline", "entity": None, "group": None}
# a component section's per-objective parameters, per option (only weightings have them)
_PER_OBJECTIVE = {"weighting": weighting_per_objective}


def _param(where: str, v, kind: str, searcher, objectives, per_objective=None):
    """A parameter value: fixed (type-checked) or a distribution (a mapping);
    ``per_objective`` (a weighting's declaration) makes it objective -> number."""
    if per_objective is not None and objectives is not None:
        return _per_objective(where, v, searcher, objectives, per_objective)
    if isinstance(v, dict):
        return _parse_dist(where, v, kind, searcher)
    if kind != "any":
        _check_value(where, v, kind)
    return v


def _per_objective(where: str, v, searcher, objectives, spec):
    """A mapping objective -> number >= 0, each a value or a distribution; or one
    distribution of the whole mapping (``{simplex: [..]}`` where ``spec.simplex``).
    ``spec.required``: every objective needs a value."""
    if v is None:
        return None
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in DISTRIBUTIONS:
        if not spec.simplex and "simplex" in v:
            _simplex_only(where, v)
        return _parse_dist(where, v, "mapping", searcher, objectives if spec.simplex else None)
    if not isinstance(v, dict):
        form = " or {simplex: [objectives]}" if spec.simplex else ""
        _fail(where, v, f"a mapping objective -> number >= 0 (value or distribution){form}; "
                        f"objectives: {_names(objectives)}")
    if any(k in DISTRIBUTIONS for k in v):
        _fail(where, v, f"a distribution is a mapping with exactly one key; per-objective "
                        f"weights use the objective names {_names(objectives)}")
    out = {}
    for o, x in v.items():
        if o not in objectives:
            _fail(f"{where}.{o}", x, f"not an objective of the data; objectives: "
                                     f"{_names(objectives)}")
        out[o] = _parse_dist(f"{where}.{o}", x, "weight", searcher) if isinstance(x, dict) \
            else x
        if not isinstance(x, dict):
            _check_value(f"{where}.{o}", x, "weight")
    missing = [o for o in objectives if o not in v]
    if missing and spec.required:
        _fail(where, v, f"lacks objective(s) {_names(missing)}; give a weight for each of "
                        f"{_names(objectives)} (0 to leave one out)")
    return out


def _parse_component(section: str, v, searcher, objectives) -> dict:
    sel, registry, default, params_of = _COMPONENTS[section]
    v = _mapping(section, v)
    objectives = objectives if section in _PER_OBJECTIVE else None
    chosen = v.get(sel, default)
    where = f"{section}.{sel}"
    if isinstance(chosen, dict):
        if list(chosen) != ["choice"]:
            _fail(where, chosen, f"only a name or {{choice: [names]}}; allowed names: "
                                 f"{_names(sorted(registry))}")
        d = _parse_dist(where, chosen, "str", searcher)
        opts = d.args
        if len(set(opts)) != len(opts):
            _fail(where, chosen, "choice options must be distinct")
    else:
        opts, d = [chosen], chosen
    for o in opts:
        if not isinstance(o, str) or o not in registry:
            _fail(where, o, f"unknown {sel}; allowed: {_names(sorted(registry))}")
    params = {o: params_of(o) for o in opts}
    per_obj = {o: _PER_OBJECTIVE[section](o) if objectives else {} for o in opts}
    common = [p for p in params[opts[0]] if all(p in params[o] for o in opts)]
    tree = {sel: d}
    for k, x in v.items():
        if k == sel:
            continue
        if k in registry:
            if k not in opts:
                _fail(f"{section}.{k}", x, f"{k} is not an option of {where} ({_names(opts)})")
            sub = _mapping(f"{section}.{k}", x, sorted(params[k]))
            tree[k] = {}
            for p, y in sub.items():
                if p in v:
                    _fail(f"{section}.{k}.{p}", y, f"also given as {section}.{p}; give it once")
                tree[k][p] = _param(f"{section}.{k}.{p}", y, _kind_of(params[k][p]),
                                    searcher, objectives, per_obj[k].get(p))
        elif k in common:
            kinds = {_kind_of(params[o][k]) for o in opts}
            spec = next((per_obj[o][k] for o in opts if k in per_obj[o]), None)
            tree[k] = _param(f"{section}.{k}", x, kinds.pop() if len(kinds) == 1 else "any",
                             searcher, objectives, spec)
        else:
            some = [o for o in opts if k in params[o]]
            if some:
                _fail(f"{section}.{k}", x, f"only {_names(some)} of {where}'s options "
                      f"{_names(opts)} take {k}; put it under {section}.{some[0]}")
            allowed = [sel, *common, *[o for o in opts if len(opts) > 1]]
            _fail(f"{section}.{k}", x, f"unknown key; allowed in {section}: "
                                       f"{_names(allowed)}")
    return tree


def _parse_flat(section: str, v, defaults: dict, searcher, fixed: bool) -> dict:
    v = _mapping(section, v, sorted(defaults))
    tree = {}
    for k, x in v.items():
        if fixed and _is_dist_form(x):
            _fail(f"{section}.{k}", x, f"{section} values are fixed; distributions are not "
                                       f"allowed here")
        # the trainables' own rule (trainables.config) for the value, or for every value
        # the distribution can draw (each choice option; the bounds of a range)
        where, rule = f"{section}.{k}", option_rule(section, k)
        if not isinstance(x, dict) and not option_ok(section, k, x):
            _fail(where, x, f"must be {rule}")
        if isinstance(x, dict) and isinstance(x.get("choice"), list):
            for i, o in enumerate(x["choice"]):
                if not option_ok(section, k, o):
                    _fail(f"{where}.choice[{i}]", o, f"must be {rule}")
        tree[k] = None if x is None else _param(where, x, option_kind(section, k), searcher,
                                                None)
        for value in (tree[k].probes() if isinstance(tree[k], _Dist) else []):
            if not option_ok(section, k, value):
                _fail(where, x, f"draws {short(value)}; must be {rule}")
    return tree


def _component(section: str):
    return lambda v, searcher, objectives: _parse_component(section, v, searcher, objectives)


# How each trial section after data is parsed: (raw section, searcher, objectives) -> tree.
# A new section passed through to the training config: its name in
# space_tree.TRIAL_SECTIONS and one line here (search.space checks the two agree).
SECTION_PARSERS = {
    "model": _component("model"),
    "loss": _component("loss"),
    "weighting": _component("weighting"),
    "optim": lambda v, searcher, objectives: _parse_flat("optim", v, OPTIM_DEFAULTS, searcher,
                                                         False),
    "run": lambda v, searcher, objectives: _parse_flat("run", v, RUN_DEFAULTS, searcher, True),
    "conditioning": lambda v, searcher, objectives: _parse_conditioning(v),
}


def _parse_conditioning(v) -> dict | None:
    """The optional ``conditioning`` section (trainables.conditioned): None when absent
    (the trials are not conditioned), else fixed values under the component's keys, whose
    values the trainables check (space_check)."""
    if v is None:
        return None
    from trainables.conditioned import conditioning_params
    v = _mapping("conditioning", v, sorted(conditioning_params()), optional=False)
    for k, x in v.items():
        if _is_dist_form(x):
            _fail(f"conditioning.{k}", x, "conditioning values are fixed in a space (one "
                  "conditioned model per trial); search the model and optim instead")
    return dict(v)


def _check_population_space(tree: dict) -> None:
    """Members of a population share everything but the weighting's parameters, optim.lr
    and run.seed: a distribution anywhere else is an error naming it. A conditioned
    trial is one model, never a population."""
    if tree.get("conditioning") is not None:
        _fail("conditioning", tree["conditioning"], "search.population: true trains a "
              "population per trial, and a conditioned trial is one model for every "
              "preference; remove one of them")
    for section in TRIAL_SECTIONS:
        for path, d in _leaves(tree[section]):
            key = ".".join((section,) + path)
            allowed = (section == "weighting" and path[0] != "kind") or key == "optim.lr"
            if not allowed:
                _fail(key, d.spec, "search.population: true trains members that share the "
                      "architecture; only weighting parameters and optim.lr may be searched")


def _number(where, v, lo, strict):
    if not (_is_number(v) and math.isfinite(v) and (v > lo if strict else v >= lo)):
        _fail(where, v, f"must be a finite number {'>' if strict else '>='} {lo}")


def _metric(where, m, objectives):
    allowed = ["auc_sum", *[f"auc/{o}" for o in objectives]]
    if m not in allowed:
        _fail(where, m, f"allowed: {_names(allowed)}")


def parse_metrics(search: dict, objectives) -> None:
    """``search.metrics``: null (every ``auc/<obj>``) or distinct metrics; in place."""
    if search["metrics"] is None:
        search["metrics"] = [f"auc/{o}" for o in objectives]
        return
    ms = search["metrics"]
    if not isinstance(ms, list) or not ms or len(set(map(str, ms))) != len(ms):
        _fail("search.metrics", ms, "must be null or a non-empty list of distinct metrics")
    for i, m in enumerate(ms):
        _metric(f"search.metrics[{i}]", m, objectives)


def parse_resources(v) -> dict:
    res = {**RESOURCES_DEFAULTS, **_mapping("resources", v, sorted(RESOURCES_DEFAULTS))}
    _int_at_least("resources.workers_per_trial", res["workers_per_trial"], 1)
    _number("resources.cpus_per_worker", res["cpus_per_worker"], 0, strict=True)
    _number("resources.gpus_per_worker", res["gpus_per_worker"], 0, strict=False)
    g = res["gpus_per_worker"]
    if g > 1 and g != int(g):      # Ray: "Resource quantities >1 must be whole numbers"
        _fail("resources.gpus_per_worker", g, "must be 0, a share of one GPU in (0, 1] (0.125: "
              "8 workers share a GPU) or a whole number of GPUs (1, 2, ...); Ray cannot "
              "split a worker over part of a second GPU")
    return res


def parse_tracking(v) -> dict:
    trk = _mapping("tracking", v, ["wandb"])
    wb = {**WANDB_DEFAULTS,
          **_mapping("tracking.wandb", trk.get("wandb"), sorted(WANDB_DEFAULTS))}
    if wb["mode"] not in WANDB_MODES:
        _fail("tracking.wandb.mode", wb["mode"], f"allowed: {_names(WANDB_MODES)}")
    if not isinstance(wb["project"], str) or not wb["project"]:
        _fail("tracking.wandb.project", wb["project"], "must be a non-empty string")
    for k in ("entity", "group"):
        if wb[k] is not None and not isinstance(wb[k], str):
            _fail(f"tracking.wandb.{k}", wb[k], "must be a string or null")
    return {"wandb": wb}
