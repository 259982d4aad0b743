"""``search.algorithm: grid``: every combination of the space's choices (Tune's
``grid_search``), once. Only ``{choice: [...]}`` distributions (their options distinct); a
component selector with several options (``model.family: {choice: [...]}``) is one axis
whose points are each option's own combinations. ``num_samples`` must stay 1: a repeat of
the grid would train the same configs again (``search rerun --seeds`` measures seed
variance). ``search.population: true`` trains the grid's points as population trials of
``search.members_per_trial`` members each (null: the whole grid in one trial), in grid
order; then only weighting parameters and ``optim.lr`` may be grid axes."""
from __future__ import annotations

import math

from ..distributions import _fail, _int_at_least
from ..limits import MAX_MEMBERS, check_trials
from .base import SearchAlgorithm


def grid_points(tree: dict) -> int:
    """Grid points of a parsed space (trees by section)."""
    from ..space_tree import TRIAL_SECTIONS, _leaves, _options
    points = 1
    for s in TRIAL_SECTIONS:
        points *= sum(math.prod(len(d.args) for _, d in _leaves(t))
                      for _, t in _options(s, tree[s]))
    return points


def _first_options(node):
    """Every ``{choice: [a, ...]}`` in a section as written cut to ``{choice: [a]}``."""
    if isinstance(node, dict):
        if list(node) == ["choice"] and isinstance(node["choice"], list) and node["choice"]:
            return {"choice": node["choice"][:1]}
        return {k: _first_options(v) for k, v in node.items()}
    return node


def member_points(tree: dict) -> list[dict]:
    """A population grid's points as member overrides (``{"weighting": {...}, "optim":
    {"lr": ...}}``, only the axes), in grid order: the last axis varies fastest."""
    import itertools
    from ..space_tree import _leaves, _options
    axes = [((s,) + p, d) for s in ("weighting", "optim")     # one option: kind is fixed
            for p, d in _leaves(_options(s, tree[s])[0][1])]
    points = []
    for combo in itertools.product(*[d.args for _, d in axes]):
        m: dict = {}
        for (path, _), value in zip(axes, combo):
            node = m
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = value
        points.append(m)
    return points


def _members(search: dict, points: int) -> int:
    return min(points, search["members_per_trial"] or points)


class Grid(SearchAlgorithm):
    params = {"members_per_trial": None}
    num_samples = 1                 # a grid trains each point once
    population = True
    smoke_text = "1 trial: the grid with one point per axis (each choice's first option)"

    def parse(self, s, given):
        n = s["num_samples"]
        if isinstance(n, int) and not isinstance(n, bool) and n > 1:
            _fail("search.num_samples", n, "a grid trains each of its points once; a repeat "
                  "would train the same configs again (no budget is spent twice): leave "
                  "num_samples at 1 (for seed variance: search rerun --seeds N)")
        m = s["members_per_trial"]
        if m is not None:
            if s["population"] is not True:
                _fail("search.members_per_trial", m, "only with search.population: true (the "
                      "grid's points trained as population trials of this many members)")
            _int_at_least("search.members_per_trial", m, 1, "or null (the whole grid in "
                          "one population trial)")

    def check_dist(self, where, d):
        if d.name != "choice":
            _fail(where, d.spec, f"search.algorithm grid allows only {{choice: [...]}} "
                                 f"distributions, not {d.name}")

    def trials(self, search, tree, k):
        if search["population"]:
            points = grid_points(tree)
            return math.ceil(points / _members(search, points))
        return grid_points(tree) * search["num_samples"]

    def check_limits(self, search, tree, k):
        points, n = grid_points(tree), search["num_samples"]
        if search["population"]:
            key = "members_per_trial" if search["members_per_trial"] else "algorithm"
            check_trials(f"search.{key}", search[key], _members(search, points),
                         f"members of one population trial ({points:,} grid points)",
                         MAX_MEMBERS)
        check_trials("search.algorithm", "grid", points * n, f"trials (every choice is a "
                     f"grid axis: {points:,} grid points x num_samples {n})")

    def domain(self, d):
        from ray import tune
        return tune.grid_search(list(d.args))        # check_dist: a choice

    def param_space(self, space, out):
        from ray import tune
        from ..space_tree import _COMPONENTS, TRIAL_SECTIONS, _first, _grid_variants, _options
        if space.search["population"]:         # axes only in weighting params and optim.lr
            points = member_points(space._tree)
            m = _members(space.search, len(points))
            for s in ("weighting", "optim"):
                out[s] = _first(space._tree[s])
            out["population"] = tune.grid_search([points[i:i + m]
                                                  for i in range(0, len(points), m)])
            return
        for s in TRIAL_SECTIONS:
            if s in _COMPONENTS and len(_options(s, space._tree[s])) > 1:
                out[s] = tune.grid_search(_grid_variants(s, space._tree[s]))

    def shrink(self, raw):
        from ..space_tree import _COMPONENTS
        for section in ("model", "loss", "weighting", "optim"):    # data, run: fixed
            sec = raw.get(section)
            if not isinstance(sec, dict):
                continue
            sec = _first_options(sec)
            if section in _COMPONENTS:       # drop the sub-mappings of the options cut
                sel, registry, default, _ = _COMPONENTS[section]
                kept = sec.get(sel, default)
                kept = kept["choice"][0] if isinstance(kept, dict) else kept
                sec = {k: v for k, v in sec.items() if k not in registry or k == kept}
            raw[section] = sec
        raw.setdefault("search", {})["num_samples"] = 1
        raw["search"].pop("members_per_trial", None)

    def smoke_trials(self, k):
        return 1
