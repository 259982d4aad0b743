"""``scheduler: {kind: moasha, grace_period: 1, reduction_factor: 3}``: multi-objective
asynchronous successive halving (Schmucker et al. 2021). Rungs at grace_period *
reduction_factor^k epochs below the most epochs a trial runs; a trial reaching a rung is
promoted when it is in the top 1/reduction_factor of the trials recorded there so far
(itself included), ranked on the space's objectives' AUCs by non-dominated sorting and
crowding distance (``search.schedulers.rungs``), else stopped early. A population trial
is ranked by its members' hypervolume. The Tune scheduler and its JSON state live in
``search.schedulers.moasha_scheduler``."""
from __future__ import annotations

from ..distributions import _fail, _int_at_least
from ..space_sections import _number
from .base import SchedulerKind
from .rungs import milestones


class MOASHA(SchedulerKind):
    params = {"grace_period": 1, "reduction_factor": 3}
    about = "successive halving on every objective's AUC (non-dominated sorting)"

    def parse(self, s, objectives, max_epochs):
        _int_at_least("scheduler.grace_period", s["grace_period"], 1)
        _number("scheduler.reduction_factor", s["reduction_factor"], 1, strict=True)
        if not milestones(s["grace_period"], s["reduction_factor"], max_epochs):
            _fail("scheduler.grace_period", s["grace_period"],
                  f"no rung below optim.epochs ({max_epochs}): moasha would stop nothing; "
                  f"give a grace_period below {max_epochs} or more epochs")

    def build(self, space, max_epochs, save=None, state=None):
        from .moasha_scheduler import MOASHAScheduler
        sc = space.scheduler
        sched = MOASHAScheduler(space.objectives, sc["grace_period"], sc["reduction_factor"],
                                max_epochs, population=bool(space.search["population"]),
                                save=save)
        if state is not None:
            sched.set_json_state(state)
        return sched

    def callbacks(self, scheduler):
        from .moasha_scheduler import StoppedEarly
        return [StoppedEarly(scheduler)]
