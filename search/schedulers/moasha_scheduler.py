"""The ``moasha`` Tune scheduler (``search.schedulers.moasha``; the rung rule is
``search.schedulers.rungs.promote``) and the callback that records a trial it stopped.

Each epoch's result (``epoch``, else Tune's ``training_iteration``) is checked against
the rungs: a trial reaching a rung it is not recorded at is recorded there (its
``auc/<obj>``, or for a population trial every member's ``m<i>/auc/<obj>``) and promoted
(CONTINUE) when in the rung's top 1/reduction_factor, else stopped (STOP). A stopped
trial ends TERMINATED, not failed: :class:`StoppedEarly` adds ``stopped_early``,
``stopped_at_epoch`` and ``stopped_reason`` to the result that stopped it (so they are in
its ``result.json`` and the driver's line for it), and its last epoch's AUCs stand.

The state (rung tables, stopped trials) is JSON, never a pickle: ``save(text)`` is called
after every rung decision (the runner writes ``scheduler-state.json`` in the experiment)
and :meth:`MOASHAScheduler.set_json_state` restores it on ``search resume``; a resumed
trial that was stopped is stopped again. Tune pickles the scheduler object once when the
experiment starts: that pickle holds the settings only (:meth:`__getstate__`).
"""
from __future__ import annotations

import json
import math

from ray.tune import Callback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from .rungs import milestones, population_hypervolume, promote

STATE_FORMAT = "paretune-moasha-scheduler"
STATE_VERSION = 1


class SchedulerStateError(ValueError):
    """A scheduler state that is not this scheduler's JSON state, or one for other settings."""


def _num(v):
    """A JSON-safe AUC: a finite float, else None."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


class MOASHAScheduler(FIFOScheduler):
    """Multi-objective ASHA on the AUCs of ``objectives`` (maximized)."""

    def __init__(self, objectives, grace_period: int = 1, reduction_factor: float = 3,
                 max_t: int = 100, population: bool = False, save=None):
        super().__init__()
        if grace_period < 1 or reduction_factor <= 1:
            raise ValueError("moasha needs grace_period >= 1 and reduction_factor > 1")
        self.objectives = list(objectives)
        self.grace_period, self.reduction_factor = grace_period, reduction_factor
        self.max_t, self.population = int(max_t), bool(population)
        self.milestones = milestones(grace_period, reduction_factor, self.max_t)
        self.rungs: dict[float, dict] = {m: {} for m in self.milestones}
        self.stopped: dict[str, dict] = {}      # trial id -> epoch, rung, recorded, kept
        self._save = save
        self._save_failed = False

    # -- Tune's protocol --------------------------------------------------------------------
    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True                  # ranks its own objectives; Tune's metric/mode unused

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if trial.trial_id in self.stopped:
            return TrialScheduler.STOP          # stopped before a resume: stays stopped
        epoch = result.get("epoch", result.get("training_iteration"))
        point = self._point(result)
        if not isinstance(epoch, (int, float)) or point is None:
            return TrialScheduler.CONTINUE      # a diverged trial's report: it ends itself
        return self.decide(trial.trial_id, epoch, point)

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m:g}: {len(t)}" for m, t in self.rungs.items())
        return f"MOASHA: stopped {len(self.stopped)}; trials recorded per rung: {rungs}"

    # -- the rung rule ------------------------------------------------------------------------
    def _point(self, result: dict):
        if self.population:
            n = result.get("members")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                return None
            return [{o: _num(result.get(f"m{i}/auc/{o}")) for o in self.objectives}
                    for i in range(n)]
        if not any(f"auc/{o}" in result for o in self.objectives):
            return None
        return {o: _num(result.get(f"auc/{o}")) for o in self.objectives}

    def decide(self, trial_id: str, epoch: float, point) -> str:
        """Record ``point`` at the highest rung ``epoch`` reached (unless recorded there
        already) and return CONTINUE (promoted) or STOP."""
        passed = [m for m in self.milestones if epoch >= m]
        if not passed or trial_id in self.rungs[passed[-1]]:
            return TrialScheduler.CONTINUE
        rung = passed[-1]
        table = self.rungs[rung]
        table[trial_id] = point
        kept = self._promoted(table)
        decision = TrialScheduler.CONTINUE if trial_id in kept else TrialScheduler.STOP
        if decision == TrialScheduler.STOP:
            self.stopped[trial_id] = {"epoch": epoch, "rung": rung, "recorded": len(table),
                                      "kept": len(kept)}
        self._persist()
        return decision

    def _promoted(self, table: dict) -> set:
        if not self.population:
            return promote(table, self.objectives, self.reduction_factor)
        hv = population_hypervolume(table, self.objectives)
        return promote({t: {"hypervolume": v} for t, v in hv.items()}, ["hypervolume"],
                       self.reduction_factor)

    def reason(self, trial_id: str) -> str:
        """Why a trial was stopped, in one line."""
        s = self.stopped[trial_id]
        return (f"stopped early by moasha at epoch {s['epoch']:g}: not in the top "
                f"1/{self.reduction_factor:g} of the {s['recorded']} trial(s) at the epoch-"
                f"{s['rung']:g} rung ({s['kept']} kept)")

    # -- state as JSON ------------------------------------------------------------------------
    def get_json_state(self) -> dict:
        def plain(p):
            return [{o: _num(v) for o, v in m.items()} for m in p] if isinstance(p, list) \
                else {o: _num(v) for o, v in p.items()}
        return {"format": STATE_FORMAT, "version": STATE_VERSION,
                "objectives": self.objectives, "grace_period": self.grace_period,
                "reduction_factor": self.reduction_factor, "max_t": self.max_t,
                "population": self.population,
                "rungs": [[m, {t: plain(p) for t, p in table.items()}]
                          for m, table in self.rungs.items()],
                "stopped": self.stopped}

    def set_json_state(self, state) -> None:
        """Continue from :meth:`get_json_state`'s data; the settings must be the same."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise SchedulerStateError(f"not a paretune moasha scheduler state (no 'format': "
                                      f"{STATE_FORMAT!r})")
        if state.get("version") != STATE_VERSION:
            raise SchedulerStateError(f"moasha state version {state.get('version')!r}; this "
                                      f"paretune reads version {STATE_VERSION}")
        for k in ("objectives", "grace_period", "reduction_factor", "max_t", "population"):
            if state.get(k) != getattr(self, k):
                raise SchedulerStateError(
                    f"the saved moasha state has {k} {state.get(k)!r}, the space "
                    f"{getattr(self, k)!r}; resume with the space the search started with")
        rungs, stopped = state.get("rungs"), state.get("stopped")
        if not isinstance(rungs, list) or not isinstance(stopped, dict) or not all(
                isinstance(r, list) and len(r) == 2 and isinstance(r[1], dict) for r in rungs):
            raise SchedulerStateError("'rungs' must be [epoch, {trial: AUCs}] pairs and "
                                      "'stopped' a mapping")
        tables = {float(m): dict(t) for m, t in rungs}
        if sorted(tables) != self.milestones:
            raise SchedulerStateError(f"saved rungs {sorted(tables)} differ from "
                                      f"{self.milestones}")
        self.rungs = {m: tables[m] for m in self.milestones}
        self.stopped = {str(t): dict(s) for t, s in stopped.items()}

    def _persist(self) -> None:
        if self._save is None:
            return
        try:
            self._save(json.dumps(self.get_json_state(), allow_nan=False))
        except Exception as e:  # noqa: BLE001 - losing resumability must not end the search
            if not self._save_failed:
                print(f"[search] could not save the moasha state ({type(e).__name__}: {e}); "
                      f"a resumed search would start its rungs empty", flush=True)
            self._save_failed = True

    def __getstate__(self) -> dict:
        """Tune pickles the scheduler into tuner.pkl when the experiment starts: settings
        only (no AUCs, no storage); paretune restores the JSON state itself."""
        state = self.__dict__.copy()
        state.update(_save=None, rungs={m: {} for m in self.milestones}, stopped={})
        return state


class StoppedEarly(Callback):
    """Record a trial the scheduler stopped in the result that stopped it (Tune hands
    callbacks that result before its loggers write it), and sum up at the end."""

    def __init__(self, scheduler: MOASHAScheduler):
        self.scheduler = scheduler

    def on_trial_result(self, iteration, trials, trial, result, **info):
        why = self.scheduler.stopped.get(trial.trial_id)
        if why is not None:
            result.update(stopped_early=True, stopped_at_epoch=why["epoch"],
                          stopped_reason=self.scheduler.reason(trial.trial_id))

    def on_experiment_end(self, trials, **info):
        n = len(self.scheduler.stopped)
        if n:
            at = sorted({f"{s['rung']:g}" for s in self.scheduler.stopped.values()},
                        key=float)
            print(f"[search] moasha stopped {n} of {len(trials)} trial(s) early (at the "
                  f"epoch {', '.join(at)} rung(s)); they count as finished with the AUCs "
                  f"of their last epoch", flush=True)
