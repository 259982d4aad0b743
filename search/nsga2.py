"""A Ray Tune ``Searcher`` around pymoo's NSGA-II ask/tell loop (docs/DESIGN.md, "NSGA-II").

Every sampled dimension of the Tune param space (``tune.uniform``, ``loguniform``,
``randint``, ``choice``; simplex weights are uniforms already) becomes one variable in
[0, 1] (log scale for loguniform; a choice takes bin floor(x * n)). NSGA-II asks for a
generation of ``population`` individuals; each becomes one trial; when the whole
generation has reported, its objectives (``auc/<obj>``, maximized, so negated for pymoo)
are told back and the next generation is asked. ``suggest`` returns None while a
generation is still running and ``Searcher.FINISHED`` after ``generations`` of them; use
it with ``num_samples=-1``. A failed trial counts as the worst value (AUC 0) so the
generation can complete. No individual trains a config trained before: pymoo's duplicate
elimination compares what individuals decode to (``search.space_tree.config_key``) within
a generation and against every individual ever asked, and mates again; a generation left
with no new individual ends the search (the space is exhausted).

``save``/``restore`` (and Tune's ``save_to_dir``/``restore_from_dir``, file
``nsga2-searcher-state-<session>.json`` in the experiment folder) keep the state as JSON, never
a pickle: the settings, the param space (domains written as plain data), every generation's
asked X and told F, and the generation in progress. ``restore`` rebuilds pymoo's NSGA-II
from the seed by replaying ask/tell (pymoo draws from its own seeded generator, so the replay
asks exactly the recorded X, checked), so ``search resume`` continues mid-generation with
the same next suggestions as an uninterrupted run and no finished trial repeated. A file
that is not such a JSON state is refused.

``population_trial=True`` (``search.population: true``): the whole generation is one trial,
a population (``trainables.population``) whose members are the individuals; its config is
the first individual's with a ``population`` list of every individual's weighting, optim
and run sections, and its report's ``m<i>/auc/<obj>`` are told back together.
"""
from __future__ import annotations

import copy
import glob
import json
import math
import os
import uuid
from pathlib import Path

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain, Float, Integer

from .nsga2_state import (STATE_FORMAT, STATE_VERSION, SearcherStateError, _is_log, _matrix,
                          _space_from_json, _space_to_json, read_state)


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
        if _is_log(domain):
            return float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))))
        return float(lo + x * (hi - lo))
    raise ValueError(f"nsga2 cannot search a {type(domain).__name__} domain")


def _set(tree: dict, path, value) -> None:
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


def _key_elimination(key_of, seen: set):
    """pymoo duplicate elimination by what an individual trains (``key_of(x)``, a config
    key): a duplicate within the offspring, of pymoo's population, or of any individual
    asked before (``seen``, the whole history) is dropped and pymoo mates again."""
    from pymoo.core.duplicate import DuplicateElimination

    class _KeyElimination(DuplicateElimination):
        def _do(self, pop, other, is_duplicate):
            taken = set(seen)
            if other is not None:
                taken.update(key_of(x) for x in other.get("X"))
            for i, x in enumerate(pop.get("X")):
                k = key_of(x)
                if k in taken:
                    is_duplicate[i] = True
                else:
                    taken.add(k)
            return is_duplicate

    return _KeyElimination()


class NSGA2Searcher(Searcher):
    CKPT_FILE_TMPL = "nsga2-searcher-state-{}.json"

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
        self._history = []            # per told generation: {"X": asked, "F": told}
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
        self._seen = set()            # keys of every individual asked so far
        self._algo = NSGA2(pop_size=self.population,
                           eliminate_duplicates=_key_elimination(self._key, self._seen))
        self._algo.setup(problem, termination=("n_gen", self.generations), seed=self.seed)

    def _config(self, x: np.ndarray) -> dict:
        cfg = copy.deepcopy({k: v for k, v in self._space.items()})
        for (path, domain), xi in zip(self._dims, x):
            _set(cfg, path, _decode(domain, xi))
        return cfg

    def _key(self, x: np.ndarray) -> str:
        from .space_tree import config_key
        return config_key(self._config(x))

    def _ask(self):
        """pymoo's next generation (None or empty: no new individual is left), its
        individuals' keys added to the history."""
        pop = self._algo.ask()
        if pop is not None:
            self._seen.update(self._key(x) for x in pop.get("X"))
        return pop

    def suggest(self, trial_id: str):
        if self._algo is None:
            return None
        if self._pop is None:
            if self.generation >= self.generations or not self._algo.has_next():
                return Searcher.FINISHED
            pop = self._ask()
            if pop is None or len(pop) == 0:
                print(f"[search] nsga2: generation {self.generation + 1} has no individual "
                      f"that was not trained before (the space's configurations are "
                      f"exhausted); the search ends", flush=True)
                return Searcher.FINISHED
            self._pop = pop
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
            self._history.append({"X": self._pop.get("X").tolist(), "F": self._F.tolist()})
            self._algo.tell(infills=self._pop)
            self.generation += 1
            self._pop = None

    def _objectives(self, result, error: bool, prefix: str = "") -> list[float]:
        vals = [result.get(prefix + m) if result and not error else None for m in self.metrics]
        return [-(float(v)) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0
                for v in vals]          # pymoo minimizes; failed = AUC 0

    # -- resume: JSON state, rebuilt by replaying ask/tell ------------------------------------
    def get_json_state(self) -> dict:
        """The whole state as plain JSON data (see the module's docstring)."""
        if self._space is None:
            raise RuntimeError("the nsga2 searcher has no param space yet; nothing to save")
        cur = None
        if self._pop is not None:
            cur = {"X": self._pop.get("X").tolist(),
                   "F": [[None if not math.isfinite(v) else float(v) for v in row]
                         for row in self._F.tolist()],
                   "assigned": {str(k): int(v) for k, v in self._assigned.items()},
                   "next": int(self._next), "done": int(self._done)}
        return {"format": STATE_FORMAT, "version": STATE_VERSION,
                "metrics": list(self.metrics), "population": int(self.population),
                "generations": int(self.generations), "seed": int(self.seed),
                "population_trial": bool(self.population_trial),
                "space": _space_to_json(self._space), "generation": int(self.generation),
                "history": copy.deepcopy(self._history), "current": cur}

    def set_json_state(self, state: dict) -> None:
        """Rebuild from :meth:`get_json_state`'s data: pymoo's NSGA-II set up from the seed
        and the recorded generations replayed (each ask must give the recorded X)."""
        self.metrics = list(state["metrics"])
        self._metric, self._mode = self.metrics[0], "max"
        self.population, self.generations = state["population"], state["generations"]
        self.seed, self.population_trial = state["seed"], state["population_trial"]
        self._setup(_space_from_json(state["space"]))
        n_var, n_obj = len(self._dims), len(self.metrics)

        def ask(X_saved, what):
            pop = self._ask()
            if pop is None:
                raise SearcherStateError(f"{what}: replaying NSGA-II from seed {self.seed} "
                                         f"asked nothing where the state recorded individuals")
            X = _matrix(X_saved, None, n_var, f"{what} X")
            if pop.get("X").shape != X.shape or not np.array_equal(pop.get("X"), X):
                raise SearcherStateError(
                    f"{what}: replaying NSGA-II from seed {self.seed} did not ask the recorded "
                    f"individuals (a different pymoo version or param space?); the search "
                    f"cannot continue from this state")
            return pop, X

        self._history = []
        for g, gen in enumerate(state["history"]):
            if not isinstance(gen, dict):
                raise SearcherStateError(f"generation {g}: must hold X and F")
            pop, X = ask(gen.get("X"), f"generation {g}")
            F = _matrix(gen.get("F"), len(X), n_obj, f"generation {g} F")
            pop.set("F", F)
            self._algo.tell(infills=pop)
            self._history.append({"X": X.tolist(), "F": F.tolist()})
        self.generation = len(self._history)
        cur = state.get("current")
        if cur is None:
            self._pop, self._F, self._assigned, self._next, self._done = None, None, {}, 0, 0
            return
        self._pop, X = ask(cur.get("X"), f"generation {self.generation} (in progress)")
        self._F = _matrix(cur.get("F"), len(X), n_obj, "the generation in progress's F",
                          allow_none=True)
        self._assigned = {str(k): int(v) for k, v in cur["assigned"].items()}
        self._next, self._done = int(cur["next"]), int(cur["done"])

    def save(self, checkpoint_path: str) -> None:
        """Write the JSON state (atomically) to ``checkpoint_path``."""
        path = Path(checkpoint_path)
        tmp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
        tmp.write_text(json.dumps(self.get_json_state(), allow_nan=False))
        os.replace(tmp, path)

    def restore(self, checkpoint_path: str) -> None:
        """Tune saves this state together with the experiment's: trials handed out but not
        finished are resumed by Tune under the same ids and report here as usual. Only a
        JSON state is read; anything else raises :class:`SearcherStateError`."""
        self.set_json_state(read_state(checkpoint_path))

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Tune's experiment checkpoint: the JSON state as
        ``nsga2-searcher-state-<session>.json`` (Tune's own default would be a pickle)."""
        self.save(os.path.join(checkpoint_dir, self.CKPT_FILE_TMPL.format(session_str)))

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore from the newest JSON state in ``checkpoint_dir``; a pickled state (an
        older paretune's ``searcher-state-*.pkl``) is never read."""
        found = glob.glob(os.path.join(glob.escape(str(checkpoint_dir)),
                                       self.CKPT_FILE_TMPL.format("*")))
        if not found:
            old = glob.glob(os.path.join(glob.escape(str(checkpoint_dir)),
                                         Searcher.CKPT_FILE_TMPL.format("*")))
            raise SearcherStateError(
                f"{checkpoint_dir}: no NSGA-II searcher state "
                f"({self.CKPT_FILE_TMPL.format('*')})" +
                (f"; {Path(max(old)).name} is a pickled state, which is not read because "
                 f"unpickling a file can run code" if old else ""))
        self.restore(max(found))
