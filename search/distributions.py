"""Search-space distributions: the five short forms, their validation, and the one
conversion to Ray Tune domains (:func:`to_tune`).

``{choice: [..]}``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``
(inclusive), ``{simplex: [objs]}`` (loss weights on the simplex; only as a weighting's
per-objective parameter that declares it, ``weighting.weights``). Also the error types and
small checks the space parser and the searchers (``search.searchers``) raise and use. What
a searcher allows of a distribution is its own check (``check_dist``); Ray is imported
only inside :func:`to_tune` / :func:`tune_domain`.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

from trainables.yaml_safe import short

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int", "simplex")
SIMPLEX = "__simplex__"
SIMPLEX_LOW = 1e-9


class SpaceError(ValueError):
    """A space file that cannot run; the message starts with the file's path."""


class _Invalid(Exception):
    """Raised inside the parser without the file path; load_space adds it."""


# A choice longer than this is refused: every option is built and checked before Ray.
MAX_CHOICE_OPTIONS = 100


def _fail(where: str, value, problem: str):
    where = where if len(where) <= 200 else where[:200] + "..."
    raise _Invalid(f"{where} = {short(value)}: {problem}")


def _names(xs, limit: int = 400) -> str:
    text = ", ".join(str(x) for x in xs)
    return text if len(text) <= limit else text[:limit] + " ..."


def _mapping(where: str, v, allowed=None, optional: bool = True) -> dict:
    if v is None and optional:
        return {}
    if not isinstance(v, dict):
        _fail(where, v, "must be a mapping" + (f" with keys {_names(allowed)}" if allowed else ""))
    if allowed is not None:
        for k in v:
            if k not in allowed:
                _fail(f"{where}.{k}", v[k],
                      f"unknown key; allowed in {where}: {_names(allowed)}")
    return v


def _plugin(section: str, v: dict, key: str, default: str, registry: dict, common=()):
    """The registered plug-in a section names by ``key`` (``search.algorithm``,
    ``scheduler.kind``): every other key must be one of ``common`` or the chosen plug-in's
    ``params``; otherwise one error saying which plug-ins take it, or the allowed keys."""
    name = v.get(key, default)
    if not isinstance(name, str) or name not in registry:
        _fail(f"{section}.{key}", name, f"allowed: {_names(sorted(registry))}")
    chosen = registry[name]
    allowed = [*common, *chosen.params]
    for k, x in v.items():
        if k in allowed:
            continue
        owners = sorted(n for n, o in registry.items() if k in o.params)
        _fail(f"{section}.{k}", x, f"only for {section}.{key} {_names(owners)}" if owners else
              f"unknown key; allowed in {section}: {_names(allowed)}")
    return name, chosen


# --- values and distributions --------------------------------------------------------------

_KIND_TEXT = {"bool": "true or false", "int": "an integer", "number": "a finite number",
              "weight": "a finite number >= 0 (a weight)", "str": "a string",
              "list": "a list", "mapping": "a mapping", "any": "any value"}


def _kind_of(default) -> str:
    """The value kind a parameter takes, read from its default (None: anything)."""
    for t, k in ((bool, "bool"), (int, "int"), (float, "number"), (str, "str"),
                 ((list, tuple), "list"), (dict, "mapping")):
        if isinstance(default, t):
            return k
    return "any"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_at_least(where, v, lo, extra=""):
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
        _fail(where, v, f"must be an integer >= {lo}{' ' + extra if extra else ''}")


def _simplex_only(where: str, v):
    from trainables.weighting import simplex_params
    _fail(where, v, "simplex is allowed only as " +
          " or ".join(f"weighting.{p}" for p in simplex_params()))


def _check_value(where: str, v, kind: str) -> None:
    if kind == "bool":
        ok = isinstance(v, bool)
    elif kind == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif kind in ("number", "weight"):
        ok = _is_number(v) and math.isfinite(v) and (kind == "number" or v >= 0)
    else:
        ok = {"str": str, "list": list, "mapping": dict}.get(kind, object)
        ok = isinstance(v, ok)
    if not ok:
        _fail(where, v, f"must be {_KIND_TEXT[kind]}")


@dataclass
class _Dist:
    """A validated distribution: its short form, and for a simplex the objectives at 0."""

    spec: dict
    zeros: tuple = ()

    @property
    def name(self) -> str:
        return next(iter(self.spec))

    @property
    def args(self) -> list:
        return self.spec[self.name]

    def first(self):
        """The representative value: first option, lower bound, geometric mean, equal weights."""
        a = self.args
        if self.name == "choice":
            return copy.deepcopy(a[0])
        if self.name == "uniform":
            return float(a[0])
        if self.name == "int":
            return a[0]
        if self.name == "loguniform":
            return math.sqrt(a[0] * a[1])
        return {SIMPLEX: {o: 0.5 for o in a}, **{o: 0.0 for o in self.zeros}}

    def probes(self) -> list:
        """Values to validate the trainables with: every option, both bounds."""
        if self.name == "choice":
            return copy.deepcopy(self.args)
        if self.name == "simplex":
            return [self.first()]
        return list(dict.fromkeys([self.first(), *self.args]))


def _parse_dist(where: str, v: dict, kind: str = "any", searcher=None,
                objectives=None) -> _Dist:
    """Validate a one-key distribution mapping. ``objectives`` (the data's) allows simplex;
    ``searcher`` (a ``search.searchers`` entry) then checks it may search it."""
    d = _dist(where, v, kind, objectives)
    if searcher is not None:
        searcher.check_dist(where, d)
    return d


def _dist(where: str, v: dict, kind: str, objectives) -> _Dist:
    named = [k for k in v if k in DISTRIBUTIONS]
    if len(v) != 1:
        what = f"has {len(named)} distribution keys ({_names(named)})" if len(named) > 1 else \
            f"has keys {_names(v)}"
        _fail(where, v, f"a distribution is a mapping with exactly one key, one of "
                        f"{_names(DISTRIBUTIONS)}; this one {what}")
    (name, args), = v.items()
    if name not in DISTRIBUTIONS:
        _fail(where, v, f"unknown distribution {short(name, 60)}; allowed: {_names(DISTRIBUTIONS)} "
                        f"(a fixed mapping value is written {{choice: [value]}})")
    if name == "simplex":
        if objectives is None:
            _simplex_only(where, v)
        if not isinstance(args, list) or not args or len(set(map(str, args))) != len(args):
            _fail(where, v, f"simplex needs a non-empty list of distinct objectives from "
                            f"{_names(objectives)}")
        bad = [o for o in args if o not in objectives]
        if bad:
            _fail(where, v, f"simplex over objective(s) {_names(bad)} that the data does not "
                            f"have; objectives: {_names(objectives)}")
        return _Dist(v, tuple(o for o in objectives if o not in args))
    if name == "choice":
        if not isinstance(args, list) or not args:
            _fail(where, v, "choice needs a non-empty list of options")
        if len(args) > MAX_CHOICE_OPTIONS:
            _fail(where, v, f"choice has {len(args):,} options; at most {MAX_CHOICE_OPTIONS} "
                            f"(each is checked before the search starts)")
        for i, opt in enumerate(args):
            _check_value(f"{where}.choice[{i}]", opt, kind)
        seen = {}
        for i, opt in enumerate(args):     # a repeated option would train a config twice
            j = seen.setdefault(json.dumps(opt, sort_keys=True, default=repr), i)
            if j != i:
                _fail(f"{where}.choice[{i}]", opt, f"repeats choice[{j}]; choice options must "
                      f"be distinct (a repeated option would train the same config twice)")
        return _Dist(v)
    if not (isinstance(args, list) and len(args) == 2
            and all(_is_number(a) and math.isfinite(a) for a in args)):
        _fail(where, v, f"{name} needs [lo, hi], two finite numbers")
    lo, hi = args
    if name == "int":
        if not all(isinstance(a, int) for a in args):
            _fail(where, v, "int needs integer bounds [lo, hi] (inclusive)")
        if kind not in ("int", "number", "weight", "any"):
            _fail(where, v, f"int needs a numeric parameter; this one takes {_KIND_TEXT[kind]}")
    elif kind not in ("number", "weight", "any"):
        hint = "; use {int: [lo, hi]} or {choice: [...]}" if kind == "int" else ""
        _fail(where, v, f"{name} draws real numbers; this parameter takes {_KIND_TEXT[kind]}{hint}")
    if name == "loguniform" and not 0 < lo < hi:
        _fail(where, v, "loguniform needs 0 < lo < hi")
    if lo > hi:
        _fail(where, v, f"{name} needs lo <= hi")
    if kind == "weight" and lo < 0:
        _fail(where, v, "a weight must be >= 0, so lo must be >= 0")
    return _Dist(v)


def _is_dist_form(v) -> bool:
    return isinstance(v, dict) and any(k in DISTRIBUTIONS for k in v)


def to_tune(dist, algorithm: str = "random"):
    """One short-form distribution -> a Ray Tune domain, as search ``algorithm`` (a name in
    ``search.searchers.SEARCHERS``) searches it (grid: ``tune.grid_search``).

    ``{simplex: [objs]}`` -> ``{"__simplex__": {obj: tune.uniform(1e-9, 1.0), ...}}``.
    """
    from .searchers import SEARCHERS
    if isinstance(dist, _Dist):
        dist = dist.spec
    if not isinstance(dist, dict):
        raise SpaceError(f"distribution = {short(dist)}: must be a one-key mapping, one of "
                         f"{_names(DISTRIBUTIONS)}")
    if not isinstance(algorithm, str) or algorithm not in SEARCHERS:
        raise SpaceError(f"algorithm = {short(algorithm)}: allowed: {_names(sorted(SEARCHERS))}")
    searcher = SEARCHERS[algorithm]
    try:
        d = _parse_dist("distribution", dist, "any", searcher,
                        objectives=dist.get("simplex") if isinstance(dist.get("simplex"), list)
                        else None)
    except _Invalid as e:
        raise SpaceError(str(e)) from None
    return searcher.domain(d)


def tune_domain(d: _Dist):
    """A validated distribution -> its Ray Tune domain, sampled (choice: ``tune.choice``)."""
    from ray import tune
    name, a = d.name, d.args
    if name == "choice":
        return tune.choice(list(a))
    if name == "uniform":
        return tune.uniform(a[0], a[1])
    if name == "loguniform":
        return tune.loguniform(a[0], a[1])
    if name == "int":
        return tune.randint(a[0], a[1] + 1)
    return {SIMPLEX: {o: tune.uniform(SIMPLEX_LOW, 1.0) for o in a}}
