"""Space files: parse and validate a YAML search space before any Ray work (DESIGN.md 5).

    space = load_space("spaces/quickstart.yaml")   # SpaceError (a ValueError) on any problem
    space.param_space()     # ray.tune domains in sections data, model, loss, weighting, optim, run
    materialize(trial_cfg)  # a sampled trial config -> what trainables.config.resolve_config takes
    space.fixed_config()    # one representative config, already materialized

Distributions have one short form each, converted by :func:`to_tune` only:
``{choice: [..]}``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``
(inclusive) and ``{simplex: [objs]}`` (only as ``weighting.weights``).

The component sections (model, loss, weighting) have a selector (``model.family``,
``loss.kind``, ``weighting.kind``) that is a name or ``{choice: [names]}``; parameters that
only some options have go in a sub-mapping named after the option (``model.mlp.hidden``),
parameters every option has may stay at the section's top level. :func:`materialize`
keeps the sampled option's sub-mapping and drops the others.

A simplex is sampled as independent u_k ~ U(1e-9, 1) (so Optuna can search it) and mapped
to w_k = -log u_k / sum_j -log u_j: normalized Exp(1) variables, i.e. Dirichlet(1,...,1),
exactly uniform on the simplex. Objectives outside the simplex get weight 0.

Every error names the file, the key path, the bad value (cut to 200 characters) and what
is allowed. Checked before Ray: the file within trainables.yaml_safe's limits (1 MiB,
UTF-8, aliases), every optim/run value (and every value a distribution can draw) against
trainables.config's declared bounds, the planned trials (search.limits), each model's size,
and the data in full (search.space_data: the whole dataset, or the synthetic generator's
parameters and expected classes). Ray is imported only inside :meth:`Space.param_space`
and :func:`to_tune`.
"""
from __future__ import annotations

import copy
import inspect
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from trainables.config import (OPTIM_DEFAULTS, RUN_DEFAULTS, option_kind, option_ok,
                               option_rule, resolve_config)
from trainables.losses import LOSSES, bind_objectives, get_loss, loss_params
from trainables.models import MODELS, FeatureSpec, build_model, model_params
from trainables.weighting import WEIGHTINGS, build_weighting, weighting_params

from trainables.yaml_safe import YAMLInputError, cap, load_yaml, short

from .distributions import (ALGORITHMS, DISTRIBUTIONS, SIMPLEX, SpaceError,
                            _check_value, _Dist, _fail, _Invalid, _is_dist_form, _is_number,
                            _kind_of, _mapping, _names, _parse_dist, to_tune)
from .limits import (MAX_MEMBERS, MAX_MODEL_PARAMS, check_name, check_trials,
                     das_dennis_points)
from .space_data import check_data, check_duration, override_data, parse_data

__all__ = ["Space", "SpaceError", "load_space", "materialize", "to_tune", "check_name",
           "override_data"]

SAMPLERS = ("nsga2", "tpe")
SCHEDULERS = ("asha",)
WANDB_MODES = ("offline", "online", "disabled")
TOP_LEVEL = ("name", "data", "model", "loss", "weighting", "optim", "run", "search",
             "scheduler", "resources", "tracking")
TRIAL_SECTIONS = ("data", "model", "loss", "weighting", "optim", "run")
PE_LTR_GRID_DEFAULTS = {"partitions": 3, "bounds_total": 0.8}
NSGA2_DEFAULTS = {"pop_size": 16, "generations": 8}
# search.population: true trains an NSGA-II generation / the PE-LTR bounds grid as one
# population trial (trainables.population); for nsga2 an integer is the generation size
# (pop_size), as DESIGN.md's example writes it.
POPULATION_ALGORITHMS = ("nsga2", "pe_ltr_grid")
SEARCH_DEFAULTS = {"algorithm": "random", "num_samples": 8, "sampler": "nsga2",
                   **PE_LTR_GRID_DEFAULTS, **NSGA2_DEFAULTS, "population": False,
                   "max_concurrent": None, "max_failures": 1, "seed": 0, "metrics": None}
SCHEDULER_DEFAULTS = {"kind": "asha", "metric": "auc_sum", "grace_period": 1,
                      "reduction_factor": 3}
RESOURCES_DEFAULTS = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}
WANDB_DEFAULTS = {"project": "paretune", "mode": "offline", "entity": None, "group": None}
# section -> (selector key, registry, default option, parameters of an option)
_COMPONENTS = {
    "model": ("family", MODELS, "harmonrank", model_params),
    "loss": ("kind", LOSSES, "rank_auc", loss_params),
    "weighting": ("kind", WEIGHTINGS, "static", weighting_params),
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


# --- trees: nested dicts whose leaves are values or _Dist ----------------------------------

def _render(tree, leaf):
    if isinstance(tree, _Dist):
        return leaf(tree)
    if isinstance(tree, dict):
        return {k: _render(v, leaf) for k, v in tree.items()}
    return copy.deepcopy(tree)


def _leaves(tree, prefix=()):
    for k, v in tree.items():
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
    if isinstance(w, dict) and isinstance(w.get("weights"), dict) and SIMPLEX in w["weights"]:
        w["weights"] = _simplex_weights(w["weights"])
    if isinstance(cfg.get("population"), list):     # a population trial's members
        cfg["population"] = [materialize(m) for m in cfg["population"]]
    return cfg


# --- the space -------------------------------------------------------------------------------

@dataclass
class Space:
    """A validated space file. ``raw`` is the parsed YAML as written."""

    path: Path
    name: str
    raw: dict
    objectives: list[str]
    search: dict
    scheduler: dict | None
    resources: dict
    tracking: dict
    _tree: dict = field(default_factory=dict, repr=False, compare=False)

    def param_space(self) -> dict:
        """The Tune param space: sections data, model, loss, weighting, optim, run."""
        from ray import tune
        alg = self.search["algorithm"]

        def leaf(d: _Dist):
            dom = to_tune(d.spec, alg)
            return {**dom, **{o: 0.0 for o in d.zeros}} if d.name == "simplex" else dom

        out = {}
        for s in TRIAL_SECTIONS:
            tree = self._tree[s]
            if alg == "grid" and s in _COMPONENTS and len(_options(s, tree)) > 1:
                out[s] = tune.grid_search(_grid_variants(s, tree))
            else:
                out[s] = _render(tree, leaf)
        if alg == "pe_ltr_grid" and self.search["population"]:
            out["population"] = [{"weighting": {"bounds": c}} for c in self.bound_vectors()]
        elif alg == "pe_ltr_grid":
            out["weighting"]["bounds"] = tune.grid_search(self.bound_vectors())
        return out

    def bound_vectors(self) -> list[dict]:
        """pe_ltr_grid: PE-LTR lower-bound vectors spread evenly over the simplex
        (Das-Dennis points with ``search.partitions`` divisions) scaled to sum to
        ``search.bounds_total``; one trial each."""
        from pymoo.util.ref_dirs import get_reference_directions
        pts = get_reference_directions("das-dennis", len(self.objectives),
                                       n_partitions=self.search["partitions"])
        total = self.search["bounds_total"]
        return [{o: round(float(v) * total, 12) for o, v in zip(self.objectives, p)}
                for p in pts]

    def fixed_config(self) -> dict:
        """First option of every choice, lower bound of uniform/int, geometric mean of
        loguniform, equal weights on a simplex; materialized."""
        return materialize({s: _first(self._tree[s]) for s in TRIAL_SECTIONS})


def _param(where: str, v, kind: str, alg: str, objectives, name: str):
    """A parameter value: fixed (type-checked) or a distribution (a mapping)."""
    if name in PER_OBJECTIVE and objectives is not None:
        return _per_objective(where, v, alg, objectives, **PER_OBJECTIVE[name])
    if isinstance(v, dict):
        return _parse_dist(where, v, kind, alg)
    if kind != "any":
        _check_value(where, v, kind)
    return v


# weighting parameters that map objective -> number (each a value or a distribution):
# weights need every objective and may be a simplex; bounds (PE-LTR) default to 0.
PER_OBJECTIVE = {"weights": {"require_all": True, "simplex": True},
                 "bounds": {"require_all": False, "simplex": False}}


def _per_objective(where: str, v, alg: str, objectives, require_all: bool, simplex: bool):
    if v is None:
        return None
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in DISTRIBUTIONS:
        if not simplex and "simplex" in v:
            _fail(where, v, "simplex is allowed only as weighting.weights")
        return _parse_dist(where, v, "mapping", alg, objectives if simplex else None)
    if not isinstance(v, dict):
        form = " or {simplex: [objectives]}" if simplex else ""
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
        out[o] = _parse_dist(f"{where}.{o}", x, "weight", alg) if isinstance(x, dict) else x
        if not isinstance(x, dict):
            _check_value(f"{where}.{o}", x, "weight")
    missing = [o for o in objectives if o not in v]
    if missing and require_all:
        _fail(where, v, f"lacks objective(s) {_names(missing)}; give a weight for each of "
                        f"{_names(objectives)} (0 to leave one out)")
    return out


def _parse_component(section: str, v, alg: str, objectives) -> dict:
    sel, registry, default, params_of = _COMPONENTS[section]
    v = _mapping(section, v)
    objectives = objectives if section == "weighting" else None
    chosen = v.get(sel, default)
    where = f"{section}.{sel}"
    if isinstance(chosen, dict):
        if list(chosen) != ["choice"]:
            _fail(where, chosen, f"only a name or {{choice: [names]}}; allowed names: "
                                 f"{_names(sorted(registry))}")
        d = _parse_dist(where, chosen, "str", alg)
        opts = d.args
        if len(set(opts)) != len(opts):
            _fail(where, chosen, "choice options must be distinct")
    else:
        opts, d = [chosen], chosen
    for o in opts:
        if not isinstance(o, str) or o not in registry:
            _fail(where, o, f"unknown {sel}; allowed: {_names(sorted(registry))}")
    params = {o: params_of(o) for o in opts}
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
                tree[k][p] = _param(f"{section}.{k}.{p}", y, _kind_of(params[k][p]), alg,
                                    objectives, p)
        elif k in common:
            kinds = {_kind_of(params[o][k]) for o in opts}
            tree[k] = _param(f"{section}.{k}", x, kinds.pop() if len(kinds) == 1 else "any",
                             alg, objectives, k)
        else:
            some = [o for o in opts if k in params[o]]
            if some:
                _fail(f"{section}.{k}", x, f"only {_names(some)} of {where}'s options "
                      f"{_names(opts)} take {k}; put it under {section}.{some[0]}")
            allowed = [sel, *common, *[o for o in opts if len(opts) > 1]]
            _fail(f"{section}.{k}", x, f"unknown key; allowed in {section}: "
                                       f"{_names(allowed)}")
    return tree


def _parse_flat(section: str, v, defaults: dict, alg: str, fixed: bool) -> dict:
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
        tree[k] = None if x is None else _param(where, x, option_kind(section, k), alg, None, k)
        for value in (tree[k].probes() if isinstance(tree[k], _Dist) else []):
            if not option_ok(section, k, value):
                _fail(where, x, f"draws {short(value)}; must be {rule}")
    return tree


def _parse_search(v) -> dict:
    v = _mapping("search", v, sorted(SEARCH_DEFAULTS))
    s = {**SEARCH_DEFAULTS, **v}
    if s["algorithm"] not in ALGORITHMS:
        _fail("search.algorithm", s["algorithm"], f"allowed: {_names(ALGORITHMS)}")
    if s["algorithm"] == "optuna":
        if s["sampler"] not in SAMPLERS:
            _fail("search.sampler", s["sampler"], f"allowed: {_names(SAMPLERS)}")
    elif "sampler" in v:
        _fail("search.sampler", v["sampler"], "only for search.algorithm optuna")
    else:
        s["sampler"] = None
    if s["algorithm"] == "pe_ltr_grid":
        _int_at_least("search.partitions", s["partitions"], 1)
        t = s["bounds_total"]
        if not (_is_number(t) and 0 < t < 1):
            _fail("search.bounds_total", t, "the lower bounds' sum: a number in (0, 1)")
    else:
        for key in PE_LTR_GRID_DEFAULTS:
            if key in v:
                _fail(f"search.{key}", v[key], "only for search.algorithm pe_ltr_grid")
            s[key] = None
    pop = s["population"]
    if not isinstance(pop, bool):
        if s["algorithm"] != "nsga2" or not isinstance(pop, int):
            _fail("search.population", pop, "true or false (train a generation or a bounds "
                  "grid as one population trial); for nsga2 an integer is the generation "
                  "size (pop_size)")
        if "pop_size" in v:
            _fail("search.population", pop, "give the generation size once: pop_size, or "
                  "an integer population")
        s["pop_size"], s["population"] = pop, False
    if s["population"] and s["algorithm"] not in POPULATION_ALGORITHMS:
        _fail("search.population", True, f"population trials serve "
              f"{_names(POPULATION_ALGORITHMS)}; search.algorithm {s['algorithm']} trains "
              f"one model per trial")
    if s["algorithm"] == "nsga2":
        _int_at_least("search.pop_size", s["pop_size"], 2)
        _int_at_least("search.generations", s["generations"], 1)
        if "num_samples" in v:
            _fail("search.num_samples", v["num_samples"], "nsga2 runs pop_size x "
                  "generations trials; set those instead")
        s["num_samples"] = s["generations"] if s["population"] else \
            s["pop_size"] * s["generations"]
    else:
        for key in NSGA2_DEFAULTS:
            optuna_size = key == "pop_size" and s["algorithm"] == "optuna" and \
                s["sampler"] == "nsga2"
            if key in v and not optuna_size:
                _fail(f"search.{key}", v[key], "only for search.algorithm nsga2" +
                      (" (and pop_size for optuna's nsga2 sampler)" if key == "pop_size"
                       else ""))
            s[key] = v.get(key) if optuna_size else None
            if s[key] is not None:
                _int_at_least(f"search.{key}", s[key], 2)
    if s["algorithm"] in ("grid", "pe_ltr_grid") and "num_samples" not in v:
        s["num_samples"] = 1          # for grids num_samples repeats the whole grid
    if s["algorithm"] == "pe_ltr_grid" and s["population"] and "num_samples" in v:
        _fail("search.num_samples", v["num_samples"], "a population pe_ltr_grid is one trial")
    _int_at_least("search.num_samples", s["num_samples"], 1)
    if s["max_concurrent"] is not None:
        _int_at_least("search.max_concurrent", s["max_concurrent"], 1, "or null")
    _int_at_least("search.max_failures", s["max_failures"], 0)
    if s["seed"] is not None:
        _int_at_least("search.seed", s["seed"], 0, "or null")
    return s


def _check_population_space(tree: dict, raw: dict) -> None:
    """Members of a population share everything but the weighting's parameters, optim.lr
    and run.seed: a distribution anywhere else is an error naming it."""
    for section in TRIAL_SECTIONS:
        for path, d in _leaves(tree[section]):
            key = ".".join((section,) + path)
            allowed = (section == "weighting" and path[0] != "kind") or key == "optim.lr"
            if not allowed:
                _fail(key, d.spec, "search.population: true trains members that share the "
                      "architecture; only weighting parameters and optim.lr may be searched")
    if raw.get("scheduler") is not None:
        _fail("scheduler", raw["scheduler"], "a scheduler would stop a whole population "
              "trial; remove it when search.population is true")


def _int_at_least(where, v, lo, extra=""):
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
        _fail(where, v, f"must be an integer >= {lo}{' ' + extra if extra else ''}")


def _number(where, v, lo, strict):
    if not (_is_number(v) and math.isfinite(v) and (v > lo if strict else v >= lo)):
        _fail(where, v, f"must be a finite number {'>' if strict else '>='} {lo}")


def _metric(where, m, objectives):
    allowed = ["auc_sum", *[f"auc/{o}" for o in objectives]]
    if m not in allowed:
        _fail(where, m, f"allowed: {_names(allowed)}")


def _parse_space(raw, path: Path, data_label: str = "data.path") -> Space:
    if raw is None:
        raise _Invalid("the file is empty; a space needs at least 'name' and 'data'")
    if not isinstance(raw, dict):
        raise _Invalid(f"the top level must be a mapping of sections ({_names(TOP_LEVEL)}), "
                       f"got {type(raw).__name__}: {short(raw, 80)}")
    for k in raw:
        if k not in TOP_LEVEL:
            _fail(str(k), raw[k], f"unknown top-level key; allowed: {_names(TOP_LEVEL)}")
    if "name" not in raw:
        raise _Invalid("name: missing; a space needs a name (letters, digits, _ . -)")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail("name", name, "must be a string of letters, digits, _ . - (1 to 100, not "
                            "starting with . or -); quote it if YAML reads it as a number")
    search = _parse_search(raw.get("search"))
    alg = search["algorithm"]
    data, objectives = parse_data(raw.get("data"), data_label)
    tree = {"data": data}
    for s in _COMPONENTS:
        tree[s] = _parse_component(s, raw.get(s), alg, objectives)
    tree["optim"] = _parse_flat("optim", raw.get("optim"), OPTIM_DEFAULTS, alg, False)
    tree["run"] = _parse_flat("run", raw.get("run"), RUN_DEFAULTS, alg, True)
    if alg == "pe_ltr_grid":
        w = tree["weighting"]
        if w.get("kind") != "pe_ltr":
            kind = (raw.get("weighting") or {}).get("kind", "static")
            _fail("weighting.kind", kind, "search.algorithm pe_ltr_grid sweeps PE-LTR lower "
                                          "bounds: set weighting.kind to pe_ltr")
        if w.get("bounds") is not None:
            _fail("weighting.bounds", raw["weighting"]["bounds"],
                  "set by search.algorithm pe_ltr_grid (one trial per bound vector); remove it")
    if search["population"]:
        _check_population_space(tree, raw)
    _check_size(search, tree, len(objectives))

    if search["metrics"] is None:
        search["metrics"] = [f"auc/{o}" for o in objectives]
    else:
        ms = search["metrics"]
        if not isinstance(ms, list) or not ms or len(set(map(str, ms))) != len(ms):
            _fail("search.metrics", ms, "must be null or a non-empty list of distinct metrics")
        for i, m in enumerate(ms):
            _metric(f"search.metrics[{i}]", m, objectives)

    scheduler = None
    if raw.get("scheduler") is not None:
        v = _mapping("scheduler", raw["scheduler"], sorted(SCHEDULER_DEFAULTS))
        scheduler = {**SCHEDULER_DEFAULTS, **v}
        if scheduler["kind"] not in SCHEDULERS:
            _fail("scheduler.kind", scheduler["kind"], f"allowed: {_names(SCHEDULERS)}")
        _metric("scheduler.metric", scheduler["metric"], objectives)
        _int_at_least("scheduler.grace_period", scheduler["grace_period"], 1)
        _number("scheduler.reduction_factor", scheduler["reduction_factor"], 1, strict=True)

    res = {**RESOURCES_DEFAULTS,
           **_mapping("resources", raw.get("resources"), sorted(RESOURCES_DEFAULTS))}
    _int_at_least("resources.workers_per_trial", res["workers_per_trial"], 1)
    _number("resources.cpus_per_worker", res["cpus_per_worker"], 0, strict=True)
    _number("resources.gpus_per_worker", res["gpus_per_worker"], 0, strict=False)

    trk = _mapping("tracking", raw.get("tracking"), ["wandb"])
    wb = {**WANDB_DEFAULTS,
          **_mapping("tracking.wandb", trk.get("wandb"), sorted(WANDB_DEFAULTS))}
    if wb["mode"] not in WANDB_MODES:
        _fail("tracking.wandb.mode", wb["mode"], f"allowed: {_names(WANDB_MODES)}")
    if not isinstance(wb["project"], str) or not wb["project"]:
        _fail("tracking.wandb.project", wb["project"], "must be a non-empty string")
    for k in ("entity", "group"):
        if wb[k] is not None and not isinstance(wb[k], str):
            _fail(f"tracking.wandb.{k}", wb[k], "must be a string or null")

    space = Space(path=path, name=name, raw=copy.deepcopy(raw), objectives=objectives,
                  search=search, scheduler=scheduler, resources=res, tracking={"wandb": wb},
                  _tree=tree)
    _check_trainables(space)
    check_data(data, objectives, tree["run"], data_label)
    return space


def _check_size(search: dict, tree: dict, k: int) -> None:
    """Trials (and population members) the search plans, against search.limits."""
    alg, n = search["algorithm"], search["num_samples"]
    if alg == "pe_ltr_grid":
        points = das_dennis_points(search["partitions"], k)
        if search["population"]:
            check_trials("search.partitions", search["partitions"], points,
                         f"bound vectors for {k} objectives, all members of one population "
                         f"trial", MAX_MEMBERS)
        check_trials("search.partitions", search["partitions"], points * n,
                     f"trials ({points:,} bound vectors for {k} objectives x num_samples {n})")
    elif alg == "nsga2":
        if search["population"]:
            check_trials("search.pop_size", search["pop_size"], search["pop_size"],
                         "members of one population trial", MAX_MEMBERS)
        check_trials("search.pop_size", search["pop_size"], search["pop_size"] *
                     search["generations"], f"trials (pop_size x generations "
                     f"{search['generations']})")
    elif alg == "grid":
        points = 1
        for s in TRIAL_SECTIONS:
            points *= sum(math.prod(len(d.args) for _, d in _leaves(t))
                          for _, t in _options(s, tree[s]))
        check_trials("search.algorithm", "grid", points * n, f"trials (every choice is a "
                     f"grid axis: {points:,} grid points x num_samples {n})")
    else:
        check_trials("search.num_samples", n, n)


def _check_trainables(space: Space) -> None:
    """Build what the trials would build, for each family/kind option and with each value
    of each distribution in turn (the others at their representative value): resolve the
    config, build the model and the weighting, evaluate the loss on a tiny batch."""
    import torch
    tree, k = space._tree, len(space.objectives)
    base = {s: _first(_options(s, tree[s])[0][1]) for s in TRIAL_SECTIONS}
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(8, generator=g)
    duration = torch.rand(8, generator=g) + 0.5
    labels = torch.zeros(8, k)
    labels[::2] = 1.0
    done = set()

    def check(desc: str | None, cfg: dict) -> None:
        key = repr(cfg)
        if key in done:
            return
        done.add(key)
        stage = ""
        try:
            r = resolve_config(cfg)
            stage = f"model.family = {r['model']['family']!r}"
            hp = {a: b for a, b in r["model"].items() if a != "family"}
            _count_parameters(desc or stage, r["model"]["family"], k, hp)
            build_model(r["model"]["family"], k, FeatureSpec(), hp)
            stage = f"weighting.kind = {r['weighting']['kind']!r}"
            build_weighting(r["weighting"]["kind"], space.objectives,
                            {a: b for a, b in r["weighting"].items() if a != "kind"})
            stage = f"loss.kind = {r['loss']['kind']!r}"
            loss = get_loss(r["loss"]["kind"])
            hp = bind_objectives({a: b for a, b in r["loss"].items() if a != "kind"},
                                 space.objectives)
            extra = {"duration": duration} if "duration" in inspect.signature(loss).parameters \
                else {}
            loss(scores, labels, **extra, **hp)
            if hp.get("use_iput"):
                check_duration(desc or stage, r["data"])
        except _Invalid:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to build a trial is the config's
            where = desc or stage
            why = str(e) if isinstance(e, (ValueError, TypeError)) else \
                f"{type(e).__name__}: {e}"
            why = why if len(why) <= 600 else why[:600] + " ..."
            raise _Invalid(f"{where + ': ' if where else ''}the trainables reject this "
                           f"configuration: {why}") from None

    check(None, materialize(base))         # the representative config (fixed_config)
    for s in ("model", "loss", "weighting", "optim"):
        for opt, t in _options(s, tree[s]):
            first = _first(t)
            sel = f"{s}.{_COMPONENTS[s][0]} = {short(opt)}" if opt else ""
            check(sel or s, materialize({**base, s: first}))
            for p, d in _leaves(t):
                for value in d.probes():
                    v = copy.deepcopy(first)
                    _set(v, p, value)
                    desc = ", ".join(x for x in (sel, f"{s}.{'.'.join(p)} = {short(value)}")
                                     if x)
                    check(desc, materialize({**base, s: v}))


def _count_parameters(where: str, family: str, k: int, hp: dict) -> None:
    """Refuse a model above MAX_MODEL_PARAMS, counted on the meta device (no memory).
    Only when a size is large: the meta device costs seconds the first time."""
    import torch

    def big(v) -> bool:
        if isinstance(v, (list, tuple)):
            return any(big(x) for x in v)
        return isinstance(v, int) and not isinstance(v, bool) and v > 4096

    if not any(big(v) for v in hp.values()):
        return
    try:
        with torch.device("meta"):
            net = build_model(family, k, FeatureSpec(), hp)
        n = sum(p.numel() for p in net.parameters())
    except Exception:  # noqa: BLE001 - the real build below reports what is wrong
        return
    if n > MAX_MODEL_PARAMS:
        raise _Invalid(f"{where}: the model would have {n:,} parameters; at most "
                       f"{MAX_MODEL_PARAMS:,} (lower its sizes)")


def load_space(path, data: str | Path | None = None) -> Space:
    """Read and validate a space file; SpaceError names the file, key, value and what is
    allowed. Generates no data and starts no Ray. ``data``: a dataset folder replacing
    the space's data (:func:`override_data`; ``search run --data``). The file is read
    within trainables.yaml_safe's limits (1 MiB, UTF-8, aliases expanding to at most
    100,000 values); a dataset is validated in full (every split, batch by batch)."""
    path = Path(path)
    try:
        raw = load_yaml(path, "space file")
    except YAMLInputError as e:
        raise SpaceError(str(e)) from None
    try:
        if data is not None:
            raw = override_data(raw, data, path)
        return _parse_space(raw, path, "data.path" if data is None else "--data")
    except _Invalid as e:
        raise SpaceError(cap(f"{path}: {e}")) from None
    except SpaceError as e:
        raise SpaceError(cap(str(e))) from None
