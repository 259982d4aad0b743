"""Space files: parse and validate a YAML search space before any Ray work (docs/DESIGN.md, "Space files").

    space = load_space("spaces/quickstart.yaml")   # SpaceError (a ValueError) on any problem
    space.param_space()     # ray.tune domains in sections data, model, loss, weighting, optim, run
    materialize(trial_cfg)  # a sampled trial config -> what trainables.config.resolve_config takes
    space.fixed_config()    # one representative config, already materialized

Distributions have one short form each, converted to Tune domains by the searcher
(``domain``; :func:`to_tune` for one distribution):
``{choice: [..]}``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``
(inclusive) and ``{simplex: [objs]}`` (only as a weighting parameter that declares it,
``weighting.weights``). A weighting's per-objective parameters (objective -> number:
static ``weights``, PE-LTR ``bounds``) are the ones its class declares
(``Weighting.per_objective``).

The ``search`` section is the chosen searcher's (``search.searchers``: its keys, the
distributions and spaces it accepts, its trial count); this module asks the registry.

The component sections (model, loss, weighting) have a selector (``model.family``,
``loss.kind``, ``weighting.kind``) that is a name or ``{choice: [names]}``; parameters that
only some options have go in a sub-mapping named after the option (``model.mlp.hidden``),
parameters every option has may stay at the section's top level. :func:`materialize`
keeps the sampled option's sub-mapping and drops the others.

A simplex is sampled as uniforms mapped onto the simplex (``search.space_tree``).

Every error names the file, the key path, the bad value (cut to 200 characters) and what
is allowed. Checked before Ray: the file within trainables.yaml_safe's limits (1 MiB,
UTF-8, aliases), every optim/run value (and every value a distribution can draw) against
trainables.config's declared bounds, the planned trials (search.limits), each model's size,
and the data in full (search.space_data: the whole dataset, or the synthetic generator's
parameters and expected classes). Ray is imported only inside :meth:`Space.param_space`
and :func:`to_tune` (and a searcher's ``build``).
"""
from __future__ import annotations

import copy
import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from trainables.config import (OPTIM_DEFAULTS, RUN_DEFAULTS, option_kind, option_ok,
                               option_rule, resolve_config)
from trainables.losses import bind_objectives, get_loss
from trainables.models import FeatureSpec, build_model
from trainables.weighting import build_weighting, weighting_per_objective

from trainables.yaml_safe import YAMLInputError, cap, load_yaml, short

from .distributions import (DISTRIBUTIONS, SpaceError, _check_value, _Dist, _fail,
                            _int_at_least, _Invalid, _is_dist_form, _is_number, _kind_of,
                            _mapping, _names, _parse_dist, _simplex_only, to_tune)
from .limits import MAX_MODEL_PARAMS, check_name, check_size, planned_trials
from .searchers import SEARCHERS, parse_search
from .space_data import check_data, check_duration, override_data, parse_data
from .space_tree import (_COMPONENTS, TRIAL_SECTIONS, _first, _leaves, _options, _render,
                         _set, materialize)

__all__ = ["Space", "SpaceError", "load_space", "materialize", "to_tune", "check_name",
           "override_data"]

SCHEDULERS = ("asha",)
WANDB_MODES = ("offline", "online", "disabled")
TOP_LEVEL = ("name", "data", "model", "loss", "weighting", "optim", "run", "search",
             "scheduler", "resources", "tracking")
SCHEDULER_DEFAULTS = {"kind": "asha", "metric": "auc_sum", "grace_period": 1,
                      "reduction_factor": 3}
RESOURCES_DEFAULTS = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}
WANDB_DEFAULTS = {"project": "paretune", "mode": "offline", "entity": None, "group": None}
# a component section's per-objective parameters, per option (only weightings have them)
_PER_OBJECTIVE = {"weighting": weighting_per_objective}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


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

    @property
    def searcher(self):
        """The registered searcher (``search.searchers.SEARCHERS``) of search.algorithm."""
        return SEARCHERS[self.search["algorithm"]]

    def param_space(self) -> dict:
        """The Tune param space: sections data, model, loss, weighting, optim, run, as the
        searcher searches them (grid axes, PE-LTR bound vectors...)."""
        searcher = self.searcher

        def leaf(d: _Dist):
            dom = searcher.domain(d)
            return {**dom, **{o: 0.0 for o in d.zeros}} if d.name == "simplex" else dom

        out = {s: _render(self._tree[s], leaf) for s in TRIAL_SECTIONS}
        searcher.param_space(self, out)
        return out

    def planned_trials(self) -> int:
        """The trials the search plans (``search.limits``; the progress counter)."""
        return planned_trials(self.search, self._tree, len(self.objectives))

    def bound_vectors(self) -> list[dict]:
        """pe_ltr_grid: its PE-LTR lower-bound vectors, one trial each."""
        return self.searcher.bound_vectors(self)

    def fixed_config(self) -> dict:
        """First option of every choice, lower bound of uniform/int, geometric mean of
        loguniform, equal weights on a simplex; materialized."""
        return materialize({s: _first(self._tree[s]) for s in TRIAL_SECTIONS})


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
    search = parse_search(raw.get("search"))
    searcher = SEARCHERS[search["algorithm"]]
    data, objectives = parse_data(raw.get("data"), data_label)
    tree = {"data": data}
    for s in _COMPONENTS:
        tree[s] = _parse_component(s, raw.get(s), searcher, objectives)
    tree["optim"] = _parse_flat("optim", raw.get("optim"), OPTIM_DEFAULTS, searcher, False)
    tree["run"] = _parse_flat("run", raw.get("run"), RUN_DEFAULTS, searcher, True)
    searcher.check_space(search, tree, raw)
    if search["population"]:
        _check_population_space(tree, raw)
    check_size(search, tree, len(objectives))

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
