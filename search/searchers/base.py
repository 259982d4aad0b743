"""What every searcher declares, in one place: :class:`SearchAlgorithm`.

A searcher is one file in this package holding a subclass, and one line in
``SEARCHERS`` (``search/searchers/__init__.py``); nothing else names it. The space parser,
the runner, the limits and the budget benchmark ask the registered object:

- ``params``: the ``search:`` keys it takes beyond :data:`COMMON`, with their defaults
  (every registered searcher's keys appear in a parsed ``space.search``, None unless the
  chosen searcher takes them); ``num_samples``: its default ``search.num_samples``;
- :meth:`parse`: validate its keys (one error naming ``search.<key>``, the value and what
  is allowed) and settle ``num_samples``;
- what spaces it accepts: :meth:`check_dist` (each distribution), :meth:`check_space`
  (the parsed trees), ``population`` (``search.population: true``);
- :meth:`trials` / :meth:`check_limits`: the trials it plans (the progress counter) and
  the sizes ``search.limits`` caps;
- ``ends_itself``: Tune's ``num_samples`` is -1 and the searcher says when it is done;
- :meth:`domain` / :meth:`param_space`: how the Tune param space is written for it;
- :meth:`shrink`, :meth:`smoke_trials`, ``smoke_text``: what ``--smoke-test`` makes of it;
- :meth:`build`: its Tune search algorithm, which never hands out a config already trained
  (a ``Searcher`` goes behind :func:`no_repeat`; Tune's variant generator is
  :func:`basic_variant`); :meth:`report`: what it adds to the summary;
- ``variants``: other values of its own keys the contract test also runs it with;
- ``bench_methods`` / :meth:`bench` / ``bench_population``: how it enters the budget
  comparison (``benchmarks/frontier.py``);
- ``example``: what a minimal space needs for it (the contract test, tests/test_searchers.py,
  runs every registered searcher on such a space).

Nothing here imports Ray at module level: a space is parsed without it.
"""
from __future__ import annotations

from ..distributions import _Dist, tune_domain
from ..limits import check_trials

# search: keys every searcher takes (the searcher's own come on top)
COMMON = {"algorithm": "random", "num_samples": 8, "population": False,
          "max_concurrent": None, "max_failures": 1, "seed": 0, "metrics": None}


class SearchAlgorithm:
    """A searcher's declaration; the defaults describe a sampler of ``num_samples``
    independent trials (what ``random`` is)."""

    params: dict = {}               # its own search: keys -> default
    num_samples: int = 8            # default search.num_samples
    population: bool = False        # may train a whole generation / grid as one trial
    ends_itself: bool = False       # Tune num_samples -1: suggest() returns FINISHED
    smoke_text: str = "2 trials (num_samples, if that is fewer)"
    bench_methods: tuple[str, ...] = ()    # method names in the budget comparison
    bench_population: bool = False  # also as population_<name> (search.population: true)
    variants: dict = {}             # its key -> other values the contract test runs
    # sections a minimal space of choice distributions needs for it (merged per section)
    example: dict = {}

    # -- the space ---------------------------------------------------------------------------
    def parse(self, s: dict, given: dict) -> None:
        """Check this searcher's keys in ``s`` (defaults merged with ``given``, the
        ``search:`` mapping as written) and settle ``s["num_samples"]``, in place."""

    def check_dist(self, where: str, d: _Dist) -> None:
        """_Invalid (via ``_fail``) for a distribution this searcher cannot search."""

    def check_space(self, search: dict, tree: dict, raw: dict) -> None:
        """_Invalid for a parsed space (trees by section; ``raw`` as written) it cannot run."""

    def trials(self, search: dict, tree: dict, k: int) -> int:
        """The trials Tune will run (``k`` objectives)."""
        return search["num_samples"]

    def check_limits(self, search: dict, tree: dict, k: int) -> None:
        """Refuse a plan over ``search.limits``' caps, naming the key that sets it."""
        n = search["num_samples"]
        check_trials("search.num_samples", n, n)

    # -- Tune ---------------------------------------------------------------------------------
    def domain(self, d: _Dist):
        """One distribution's Tune domain."""
        return tune_domain(d)

    def param_space(self, space, out: dict) -> None:
        """Adjust the rendered param space ``out`` (sections data ... run) in place."""

    def build(self, space):
        """The Tune search algorithm (a ``Searcher`` or a ``SearchAlgorithm``) for a space."""
        return basic_variant(space.search)

    def report(self, df, space) -> None:
        """Print what this searcher adds after the experiment's summary."""

    # -- --smoke-test ---------------------------------------------------------------------------
    def shrink(self, raw: dict) -> None:
        """Shrink a space as written (``raw``, a copy) for ``--smoke-test``: the search
        only; the runner sets 1 epoch, small data, no scheduler."""
        search = raw.setdefault("search", {})
        search["num_samples"] = min(2, search.get("num_samples", 2))

    def smoke_trials(self, k: int) -> int:
        """At most this many trials after :meth:`shrink` (``k`` objectives)."""
        return 2

    # -- the budget comparison --------------------------------------------------------------------
    def bench(self, method: str, a, space: dict) -> tuple[int, str]:
        """Set ``space["search"]`` (and any section it needs) for bench ``method`` given the
        benchmark's arguments ``a`` (budget, pop_size, objectives, lr); returns (models
        trained, how the budget was set). ValueError when ``a.budget`` cannot serve it."""
        raise NotImplementedError(method)


def basic_variant(search: dict):
    """Tune's own generator (random draws; grid_search axes), seeded, skipping a variant
    already handed out (``search.searchers.norepeat``)."""
    from .norepeat import NoRepeatVariants
    return NoRepeatVariants(random_state=search["seed"],
                            max_concurrent=search["max_concurrent"] or 0,
                            name=search["algorithm"])


def no_repeat(searcher, space):
    """A Tune ``Searcher`` that never hands out a config already trained: asked again
    instead, and the search ends, saying so, when the space is exhausted."""
    from .norepeat import NoRepeat
    s = space.search
    return NoRepeat(searcher, s["metrics"], s["algorithm"], count_domain=not s["population"])


def limited(searcher, search: dict):
    """``searcher`` behind a ConcurrencyLimiter when ``search.max_concurrent`` is set."""
    if not search["max_concurrent"]:
        return searcher
    from ray.tune.search import ConcurrencyLimiter
    return ConcurrencyLimiter(searcher, max_concurrent=search["max_concurrent"])

