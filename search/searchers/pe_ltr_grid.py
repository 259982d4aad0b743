"""``search.algorithm: pe_ltr_grid``: PE-LTR's lower-bound sweep (docs/DESIGN.md, "PE-LTR weights"). One
trial per bound vector: Das-Dennis points with ``search.partitions`` divisions over the
objectives, scaled to sum to ``search.bounds_total``; needs ``weighting.kind: pe_ltr``
(and sets its ``bounds``). ``num_samples`` repeats the grid (default 1) when other
distributions are sampled per trial (a repeat that would train the same configs is
refused, or skipped when a small discrete space draws one). ``search.population: true``
trains the whole grid as one population trial. The summary ends with the fair pick of the
grid's frontier.
"""
from __future__ import annotations

import math

from ..distributions import _fail, _int_at_least, _is_number
from ..limits import MAX_MEMBERS, check_trials, das_dennis_points
from .base import SearchAlgorithm

# the budget comparison (benchmarks/frontier.py): PE-LTR's weighting, its lr when the
# others search lr, and the bounds' sum. PE-LTR's min-norm weights give a conflicting
# objective (buy) no more than its bound, so with 0.8 the grid's points bunch on the
# click/long_view side; with 0.95 each bound vector pins its weights close to itself and
# the grid spreads over the whole frontier (3 seeds, 55 vectors: HV / random's at 55
# models 0.990 with 0.8, 1.017 with 0.95).
PE_LTR_WEIGHTING = {"kind": "pe_ltr", "every": 4, "gradients": "scores", "mode": "two_step"}
PE_LTR_LR = 1.0e-2
BOUNDS_TOTAL = 0.95


def bound_vectors(search: dict, objectives: list[str]) -> list[dict]:
    """The lower-bound vectors, one trial (or population member) each."""
    from pymoo.util.ref_dirs import get_reference_directions
    pts = get_reference_directions("das-dennis", len(objectives),
                                   n_partitions=search["partitions"])
    total = search["bounds_total"]
    return [{o: round(float(v) * total, 12) for o, v in zip(objectives, p)} for p in pts]


def pe_ltr_partitions(budget: int, k: int) -> tuple[int, int]:
    """The largest Das-Dennis ``partitions`` whose vector count C(p + k - 1, k - 1) is at
    most ``budget``, and that count; (0, 0) when even one partition (k vectors) is too many."""
    p = 0
    while math.comb(p + 1 + k - 1, k - 1) <= budget:
        p += 1
    return p, (math.comb(p + k - 1, k - 1) if p else 0)


class PELTRGrid(SearchAlgorithm):
    params = {"partitions": 3, "bounds_total": 0.8}
    num_samples = 1                 # num_samples repeats the whole grid
    population = True
    smoke_text = "one bound vector per objective (partitions 1; with search.population: " \
                 "true 1 trial)"
    bench_methods = ("pe_ltr_grid",)
    example = {"weighting": {"kind": "pe_ltr"}}

    def parse(self, s, given):
        _int_at_least("search.partitions", s["partitions"], 1)
        t = s["bounds_total"]
        if not (_is_number(t) and 0 < t < 1):
            _fail("search.bounds_total", t, "the lower bounds' sum: a number in (0, 1)")
        if s["population"] is True and "num_samples" in given:
            _fail("search.num_samples", given["num_samples"], "a population pe_ltr_grid is "
                  "one trial")

    def check_space(self, search, tree, raw):
        w = tree["weighting"]
        if w.get("kind") != "pe_ltr":
            kind = (raw.get("weighting") or {}).get("kind", "static")
            _fail("weighting.kind", kind, "search.algorithm pe_ltr_grid sweeps PE-LTR lower "
                                          "bounds: set weighting.kind to pe_ltr")
        if w.get("bounds") is not None:
            _fail("weighting.bounds", raw["weighting"]["bounds"],
                  "set by search.algorithm pe_ltr_grid (one trial per bound vector); remove it")
        from ..space_tree import TRIAL_SECTIONS, _leaves
        n = search["num_samples"]
        sampled = any(True for s in TRIAL_SECTIONS for _ in _leaves(tree[s]))
        if n > 1 and not search["population"] and not sampled:
            _fail("search.num_samples", n, "repeats the bound-vector grid, but the space "
                  "samples nothing else, so every repeat would train the same configs again "
                  "(no budget is spent twice): leave num_samples at 1, or search another "
                  "parameter")

    def trials(self, search, tree, k):
        n = search["num_samples"]
        return n if search["population"] else das_dennis_points(search["partitions"], k) * n

    def check_limits(self, search, tree, k):
        points, n = das_dennis_points(search["partitions"], k), search["num_samples"]
        if search["population"]:
            check_trials("search.partitions", search["partitions"], points,
                         f"bound vectors for {k} objectives, all members of one population "
                         f"trial", MAX_MEMBERS)
        check_trials("search.partitions", search["partitions"], points * n,
                     f"trials ({points:,} bound vectors for {k} objectives x num_samples {n})")

    def bound_vectors(self, space) -> list[dict]:
        return bound_vectors(space.search, space.objectives)

    def param_space(self, space, out):
        vectors = bound_vectors(space.search, space.objectives)
        if space.search["population"]:
            out["population"] = [{"weighting": {"bounds": c}} for c in vectors]
        else:
            from ray import tune
            out["weighting"]["bounds"] = tune.grid_search(vectors)

    def shrink(self, raw):
        search = raw.setdefault("search", {})
        search["partitions"] = 1                 # one bound vector per objective
        if search.get("population") is True:
            search.pop("num_samples", None)      # a population grid is one trial anyway
        else:
            search["num_samples"] = 1

    def smoke_trials(self, k):
        return k

    def report(self, df, space):
        """PE-LTR's last step: the fair point of the bounds-grid frontier."""
        import numpy as np
        from analysis.pick import select
        from analysis.results import auc_matrix
        F = auc_matrix(df, space.objectives)
        if not np.isfinite(F).all(axis=1).any():
            return
        sel = select(F, space.objectives, "fair", labels=df["trial_id"].astype(str).tolist())
        bounds = ", ".join(f"{str(k).split('.', 2)[-1]} {float(v):.3g}"
                           for k, v in df.iloc[sel.index].items()
                           if str(k).startswith("config/weighting.bounds."))
        print(f"  fair pick (PE-LTR): {sel.reason}; its lower bounds: {bounds}", flush=True)

    def bench(self, method, a, space):
        k = len(a.objectives)
        parts, n = pe_ltr_partitions(a.budget, k)
        if not parts:
            raise ValueError(f"--budget {a.budget}: pe_ltr_grid needs at least one bound "
                             f"vector per objective ({k}); give --budget >= {k} or leave "
                             f"pe_ltr_grid out of --methods")
        space["weighting"] = dict(PE_LTR_WEIGHTING)
        space["optim"]["lr"] = PE_LTR_LR if a.lr == "search" else a.lr
        space["search"] = {"algorithm": "pe_ltr_grid", "partitions": parts,
                           "bounds_total": BOUNDS_TOTAL}
        return n, f"partitions {parts}: {n} bound vectors"
