"""``search.algorithm: nsga2``: pymoo's NSGA-II ask/tell loop as a Tune searcher
(``search.nsga2.NSGA2Searcher``: its JSON state, save/restore and resume live there).

``pop_size`` individuals a generation (``search.population`` may give it as an integer),
``generations`` of them: pop_size x generations trials, the searcher ends the run itself
(Tune's num_samples -1). ``search.population: true`` trains each generation as one
population trial (generations trials of pop_size members).
"""
from __future__ import annotations

from ..distributions import _fail, _int_at_least
from ..limits import MAX_MEMBERS, check_trials
from .base import SearchAlgorithm, limited, no_repeat


class NSGA2(SearchAlgorithm):
    params = {"pop_size": 16, "generations": 8}
    population = True
    ends_itself = True
    smoke_text = "2 generations of 2 (4 trials; with search.population: true 2 trials of 2)"
    bench_methods = ("nsga2",)
    bench_population = True

    def parse(self, s, given):
        pop = s["population"]
        if not isinstance(pop, bool):
            if not isinstance(pop, int):
                _fail("search.population", pop, "true, false or an integer: true trains each "
                      "generation as one population trial; an integer is the generation size "
                      "(pop_size)")
            if "pop_size" in given:
                _fail("search.population", pop, "give the generation size once: pop_size, or "
                      "an integer population")
            s["pop_size"], s["population"] = pop, False
        _int_at_least("search.pop_size", s["pop_size"], 2)
        _int_at_least("search.generations", s["generations"], 1)
        if "num_samples" in given:
            _fail("search.num_samples", given["num_samples"], "nsga2 runs pop_size x "
                  "generations trials; set those instead")
        s["num_samples"] = s["generations"] if s["population"] else \
            s["pop_size"] * s["generations"]

    def check_limits(self, search, tree, k):
        p, g = search["pop_size"], search["generations"]
        if search["population"]:
            check_trials("search.pop_size", p, p, "members of one population trial",
                         MAX_MEMBERS)
        check_trials("search.pop_size", p, p * g, f"trials (pop_size x generations {g})")

    def build(self, space):
        from ..nsga2 import NSGA2Searcher
        s = space.search
        return limited(no_repeat(NSGA2Searcher(s["metrics"], s["pop_size"], s["generations"],
                                               s["seed"] or 0, population_trial=s["population"]),
                                 space), s)

    def shrink(self, raw):
        search = raw.setdefault("search", {})
        if not isinstance(search.get("population", False), bool):
            search.pop("population")            # the integer form of pop_size
        search.update(pop_size=2, generations=2)

    def smoke_trials(self, k):
        return 4

    def bench(self, method, a, space):
        p = a.pop_size
        g = a.budget // p
        space["search"] = {"algorithm": "nsga2", "pop_size": p, "generations": g}
        return p * g, f"pop_size {p} x {g} generations"
