"""``search.algorithm: optuna``: Ray Tune's OptunaSearch, multi-objective over
``search.metrics`` (maximized), with ``search.sampler``:

- ``nsga2`` (default): Optuna's NSGAIISampler; ``search.pop_size`` is its generation size
  (Optuna's own default, 50, when unset: below that many trials it samples at random);
- ``tpe``: Optuna's TPESampler;
- ``gp``: Optuna's GPSampler (Gaussian-process Bayesian optimization, multi-objective
  since Optuna 4.4: log expected hypervolume improvement), random for its first 10 trials.

All are seeded by ``search.seed``. Choice options must be scalars (Optuna's categorical).
The searcher's state is saved as JSON, never pickled (``optuna_search.py``).
A suggestion already trained is told the earlier result and asked again
(``search.searchers.norepeat``).
"""
from __future__ import annotations

from ..distributions import _fail, _int_at_least, _names
from .base import SearchAlgorithm, limited, no_repeat

SAMPLERS = ("nsga2", "tpe", "gp")


class Optuna(SearchAlgorithm):
    params = {"sampler": "nsga2", "pop_size": None}
    bench_methods = ("optuna_nsga2",)
    variants = {"sampler": SAMPLERS[1:]}

    def parse(self, s, given):
        if s["sampler"] not in SAMPLERS:
            _fail("search.sampler", s["sampler"], f"allowed: {_names(SAMPLERS)}")
        if s["pop_size"] is not None:
            if s["sampler"] != "nsga2":
                _fail("search.pop_size", s["pop_size"], "only with search.sampler nsga2 (the "
                      "generation size of optuna's nsga2 sampler)")
            _int_at_least("search.pop_size", s["pop_size"], 2)

    def check_dist(self, where, d):
        if d.name != "choice":
            return
        for i, opt in enumerate(d.args):
            if isinstance(opt, (list, dict)):
                _fail(f"{where}.choice[{i}]", opt, "search.algorithm optuna needs scalar "
                      "choice options (Optuna's categorical); use random or grid for "
                      "list/mapping options")

    def build(self, space):
        from .optuna_search import JsonOptunaSearch
        s = space.search
        metrics = s["metrics"]
        return limited(no_repeat(JsonOptunaSearch(
            metric=metrics if len(metrics) > 1 else metrics[0],
            mode=["max"] * len(metrics) if len(metrics) > 1 else "max",
            sampler_spec={k: s[k] for k in ("sampler", "seed", "pop_size")}), space), s)

    def bench(self, method, a, space):
        space["search"] = {"algorithm": "optuna", "sampler": "nsga2", "num_samples": a.budget,
                           "pop_size": a.pop_size}
        return a.budget, f"num_samples {a.budget}, NSGA-II generations of {a.pop_size}"
