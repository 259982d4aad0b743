"""Ray Tune's ``OptunaSearch`` with its state saved as JSON instead of a pickle.

Tune's own ``save`` pickles the searcher's ``__dict__``: the Optuna study, its sampler and
storage. That breaks with Optuna 5 (its NSGA-II sampler holds a thread lock: "cannot
pickle '_thread.lock' object" when Tune saves the searcher) and would unpickle whatever
file sits in the experiment on resume. Here the state is data (``search.json_state``):

- every Optuna trial of the study in order: its state, parameters, objective values and
  system attributes (NSGA-II keeps each trial's generation and parents there), and the
  Tune trial it belongs to, with the study's own system attributes;
- the search space as Optuna's JSON distributions;
- the state of every random generator inside the sampler (Mersenne Twister words), so a
  restored searcher asks exactly what the uninterrupted one would.

``restore`` builds a fresh study with the sampler the space names and replays the trials
into it (``Study.add_trial``), Tune trials that were running stay askable results.
Importing this module imports Ray and Optuna: the registry entry (``optuna.py``) imports
it only when a search is built.
"""
from __future__ import annotations

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.trial import TrialState, create_trial
from ray.tune.search.optuna import OptunaSearch

from ..json_state import read_state, write_state

STATE_FORMAT = "paretune-optuna-searcher"
STATE_VERSION = 1
_DEPTH = 4          # how deep the sampler's attributes are searched for random generators


def _generators(obj, path: str = "", depth: int = 0, seen=None) -> dict[str, LazyRandomState]:
    """Every LazyRandomState reachable from a sampler through Optuna objects, by the
    attribute path of its first sighting (the same on an identically built sampler)."""
    seen = set() if seen is None else seen
    out: dict[str, LazyRandomState] = {}
    for name, value in sorted(vars(obj).items()):
        if id(value) in seen or not type(value).__module__.startswith("optuna"):
            continue
        seen.add(id(value))
        where = f"{path}.{name}" if path else name
        if isinstance(value, LazyRandomState):
            out[where] = value
        elif depth < _DEPTH and hasattr(value, "__dict__"):
            out.update(_generators(value, where, depth + 1, seen))
    return out


def _rng_state(lazy: LazyRandomState) -> list:
    name, keys, pos, has_gauss, gauss = lazy.rng.get_state()
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)]


def _set_rng_state(lazy: LazyRandomState, state: list) -> None:
    import numpy as np
    name, keys, pos, has_gauss, gauss = state
    lazy.rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


OPTUNA_POPULATION = 50          # Optuna's NSGAIISampler default generation size


def make_sampler(spec: dict):
    """The Optuna sampler ``spec`` names (``sampler``: nsga2, tpe or gp; ``seed``;
    ``pop_size`` for nsga2), seeded."""
    if spec["sampler"] == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=spec["seed"], population_size=spec.get("pop_size") or OPTUNA_POPULATION)
    if spec["sampler"] == "gp":
        return optuna.samplers.GPSampler(seed=spec["seed"])
    return optuna.samplers.TPESampler(seed=spec["seed"])


class JsonOptunaSearch(OptunaSearch):
    """``OptunaSearch`` whose ``save``/``restore`` read and write a JSON state, built from
    a plain sampler spec (see :func:`make_sampler`) so that Tune's own copy of the searcher
    (``tuner.pkl``) holds plain data too."""

    def __init__(self, metric, mode, sampler_spec: dict):
        self._sampler_spec = dict(sampler_spec)
        super().__init__(metric=metric, mode=mode, sampler=make_sampler(self._sampler_spec))

    def __getstate__(self) -> dict:
        return {"metric": self._metric, "mode": self._mode, "spec": self._sampler_spec,
                "state": self.get_json_state() if self._ot_study is not None else None}

    def __setstate__(self, saved: dict) -> None:
        self.__init__(saved["metric"], saved["mode"], saved["spec"])
        if saved["state"] is not None:
            self.set_json_state(saved["state"])

    def get_json_state(self) -> dict:
        if self._ot_study is None:
            raise RuntimeError("the Optuna searcher has no study yet: nothing to save")
        by_number = {t.number: tid for tid, t in self._ot_trials.items()}
        trials = []
        for t in self._ot_study.get_trials(deepcopy=False):
            trials.append({
                "number": t.number, "state": t.state.name, "params": t.params,
                "distributions": {k: distribution_to_json(d)
                                  for k, d in t.distributions.items()},
                "values": t.values, "system_attrs": t.system_attrs,
                "user_attrs": t.user_attrs, "tune_trial": by_number.get(t.number)})
        storage = self._ot_study._storage
        return {
            "metric": self._metric, "mode": self._mode,
            "space": {k: distribution_to_json(d) for k, d in self._space.items()},
            "study_system_attrs": storage.get_study_system_attrs(self._ot_study._study_id),
            "trials": trials, "completed": sorted(self._completed_trials),
            "generators": {p: _rng_state(g) for p, g in _generators(self._sampler).items()},
        }

    def set_json_state(self, state: dict) -> None:
        self._metric, self._mode = state["metric"], state["mode"]
        self._space = {k: json_to_distribution(v) for k, v in state["space"].items()}
        self._points_to_evaluate, self._evaluated_rewards = [], None
        self._setup_study(self._mode)           # a fresh in-memory study, this sampler
        study = self._ot_study
        storage = study._storage
        for key, value in state["study_system_attrs"].items():
            storage.set_study_system_attr(study._study_id, key, value)
        self._ot_trials, self._completed_trials = {}, set(state["completed"])
        for t in state["trials"]:
            dists = {k: json_to_distribution(v) for k, v in t["distributions"].items()}
            trial_state = TrialState[t["state"]]
            finished = trial_state.is_finished()
            study.add_trial(create_trial(
                state=trial_state if finished else TrialState.WAITING,
                params=t["params"], distributions=dists,
                values=t["values"] if trial_state == TrialState.COMPLETE else None,
                system_attrs=t["system_attrs"], user_attrs=t["user_attrs"]))
            if not finished:
                # running (or waiting) when saved: claim it again, as the same number
                frozen = study.get_trials(deepcopy=False)[-1]
                storage.set_trial_state_values(frozen._trial_id, TrialState.RUNNING)
                if t["tune_trial"] is not None:
                    self._ot_trials[t["tune_trial"]] = optuna.Trial(study, frozen._trial_id)
            elif t["tune_trial"] is not None:
                self._ot_trials[t["tune_trial"]] = optuna.Trial(
                    study, study.get_trials(deepcopy=False)[-1]._trial_id)
        gens = _generators(self._sampler)
        for path, rng in state["generators"].items():
            if path in gens:
                _set_rng_state(gens[path], rng)

    def save(self, checkpoint_path: str) -> None:
        write_state(checkpoint_path, STATE_FORMAT, STATE_VERSION, self.get_json_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_json_state(read_state(checkpoint_path, STATE_FORMAT, STATE_VERSION))
