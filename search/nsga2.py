"""A Ray Tune ``Searcher`` around pymoo's NSGA-II ask/tell loop (DESIGN.md §5).

Every sampled dimension of the Tune param space (``tune.uniform``, ``loguniform``,
``randint``, ``choice``; simplex weights are uniforms already) becomes one variable in
[0, 1] (log scale for loguniform; a choice takes bin floor(x * n)). NSGA-II asks for a
generation of ``population`` individuals; each becomes one trial; when the whole
generation has reported, its objectives (``auc/<obj>``, maximized, so negated for pymoo)
are told back and the next generation is asked. ``suggest`` returns None while a
generation is still running and ``Searcher.FINISHED`` after ``generations`` of them; use
it with ``num_samples=-1``. A failed trial counts as the worst value (AUC 0) so the
generation can complete. ``save``/``restore`` pickle the whole state, so ``search resume``
continues mid-generation without repeating finished trials.

``population_trial=True`` (``search.population: true``): the whole generation is one trial,
a population (``trainables.population``) whose members are the individuals; its config is
the first individual's with a ``population`` list of every individual's weighting, optim
and run sections, and its report's ``m<i>/auc/<obj>`` are told back together.
"""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain, Float, Integer


def _dimensions(space, prefix=()):
    """(path, domain) for every sampled leaf of a nested param space."""
    if isinstance(space, Domain):
        yield prefix, space
    elif isinstance(space, dict):
        if "grid_search" in space:
            raise ValueError(f"{'.'.join(prefix)}: nsga2 cannot search a grid; use choice")
        for k, v in space.items():
            yield from _dimensions(v, prefix + (k,))


def _decode(domain: Domain, x: float):
    x = min(max(float(x), 0.0), 1.0)
    if isinstance(domain, Categorical):
        n = len(domain.categories)
        return copy.deepcopy(domain.categories[min(int(x * n), n - 1)])
    if isinstance(domain, Integer):     # randint: [lower, upper)
        return int(min(domain.lower + math.floor(x * (domain.upper - domain.lower)),
                       domain.upper - 1))
    if isinstance(domain, Float):
        lo, hi = domain.lower, domain.upper
        if type(domain.get_sampler()).__name__ == "_LogUniform":
            return float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))))
        return float(lo + x * (hi - lo))
    raise ValueError(f"nsga2 cannot search a {type(domain).__name__} domain")


def _set(tree: dict, path, value) -> None:
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


class NSGA2Searcher(Searcher):
    def __init__(self, metrics: list[str], population: int, generations: int, seed: int = 0,
                 param_space: dict | None = None, population_trial: bool = False):
        super().__init__(metric=metrics[0], mode="max")
        if population < 2 or generations < 1:
            raise ValueError("nsga2 needs population >= 2 and generations >= 1")
        self.metrics = list(metrics)
        self.population, self.generations, self.seed = population, generations, seed
        self.population_trial = population_trial
        self._space = None
        self._algo = None
        self._pop = None              # the generation being evaluated
        self._assigned = {}           # trial_id -> index in the generation
        self._next = 0                # next individual to hand out
        self._F = None
        self._done = 0                # individuals of this generation reported
        self.generation = 0           # generations fully told
        if param_space is not None:
            self._setup(param_space)

    # -- Tune's protocol -------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self._space is None and config:
            self._setup(config)
        return True

    def _setup(self, space: dict) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        self._space = space
        self._dims = list(_dimensions(space))
        if not self._dims:
            raise ValueError("nsga2 needs at least one searched parameter in the space")
        n = len(self._dims)
        problem = Problem(n_var=n, n_obj=len(self.metrics), xl=np.zeros(n), xu=np.ones(n))
        self._algo = NSGA2(pop_size=self.population)
        self._algo.setup(problem, termination=("n_gen", self.generations), seed=self.seed)

    def _config(self, x: np.ndarray) -> dict:
        cfg = copy.deepcopy({k: v for k, v in self._space.items()})
        for (path, domain), xi in zip(self._dims, x):
            _set(cfg, path, _decode(domain, xi))
        return cfg

    def suggest(self, trial_id: str):
        if self._algo is None:
            return None
        if self._pop is None:
            if self.generation >= self.generations or not self._algo.has_next():
                return Searcher.FINISHED
            self._pop = self._algo.ask()
            self._F = np.full((len(self._pop), len(self.metrics)), np.nan)
            self._next, self._done, self._assigned = 0, 0, {}
        if self._next >= len(self._pop):
            return None               # the generation is still running
        if self.population_trial:
            self._next = len(self._pop)
            self._assigned[trial_id] = -1
            members = [self._config(ind.X) for ind in self._pop]
            return {**members[0], "population": [
                {s: m[s] for s in ("weighting", "optim", "run") if s in m} for m in members]}
        i = self._next
        self._next += 1
        self._assigned[trial_id] = i
        return self._config(self._pop[i].X)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        i = self._assigned.pop(trial_id, None)
        if i is None:
            return
        if i == -1:                   # a population trial: every member at once
            for j in range(len(self._pop)):
                self._F[j] = self._objectives(result, error, f"m{j}/")
            self._done = len(self._pop)
        else:
            self._F[i] = self._objectives(result, error)
            self._done += 1
        if self._done == len(self._pop):
            self._pop.set("F", self._F)
            self._algo.tell(infills=self._pop)
            self.generation += 1
            self._pop = None

    def _objectives(self, result, error: bool, prefix: str = "") -> list[float]:
        vals = [result.get(prefix + m) if result and not error else None for m in self.metrics]
        return [-(float(v)) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0
                for v in vals]          # pymoo minimizes; failed = AUC 0

    # -- resume -------------------------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        """Tune saves this state together with the experiment's: trials handed out but not
        finished are resumed by Tune under the same ids and report here as usual."""
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
