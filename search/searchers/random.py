"""``search.algorithm: random``: ``num_samples`` independent draws from the space (Tune's
BasicVariantGenerator, seeded by ``search.seed``)."""
from __future__ import annotations

from .base import SearchAlgorithm


class Random(SearchAlgorithm):
    """Everything is the base class's: num_samples trials, any distribution."""

    bench_methods = ("random",)

    def bench(self, method, a, space):
        space["search"] = {"algorithm": "random", "num_samples": a.budget}
        return a.budget, f"num_samples {a.budget}"
