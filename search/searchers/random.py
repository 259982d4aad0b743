"""``search.algorithm: random``: ``num_samples`` independent draws from the space, seeded by
``search.seed`` (``search.random_search.RandomSearcher``: the draws of Tune's
BasicVariantGenerator, as a Searcher with a JSON state); a draw already trained is drawn
again, and a finite space ends the search once every config in it is trained."""
from __future__ import annotations

from .base import SearchAlgorithm, limited, no_repeat


class Random(SearchAlgorithm):
    """num_samples trials, any distribution."""

    bench_methods = ("random",)

    def build(self, space):
        from ..random_search import RandomSearcher
        return limited(no_repeat(RandomSearcher(space.search["seed"],
                                                space.param_space()), space), space.search)

    def bench(self, method, a, space):
        space["search"] = {"algorithm": "random", "num_samples": a.budget}
        return a.budget, f"num_samples {a.budget}"
