"""``scheduler: {kind: asha}``: Tune's ASHAScheduler on one scalar ``metric`` (``auc_sum`` or
one ``auc/<obj>``), maximized. Not with ``search.population: true``: a population reports
its best member's metrics, and stopping on them would stop every member."""
from __future__ import annotations

from ..distributions import _int_at_least
from ..space_sections import _metric, _number
from .base import SchedulerKind


class ASHA(SchedulerKind):
    params = {"metric": "auc_sum", "grace_period": 1, "reduction_factor": 3}
    population = False
    population_text = "a scheduler would stop a whole population trial; remove it when " \
                      "search.population is true (or use kind moasha, which ranks a " \
                      "population by its members' hypervolume)"
    about = "successive halving on one metric (auc_sum or one auc/<obj>)"

    def parse(self, s, objectives, max_epochs):
        _metric("scheduler.metric", s["metric"], objectives)
        _int_at_least("scheduler.grace_period", s["grace_period"], 1)
        _number("scheduler.reduction_factor", s["reduction_factor"], 1, strict=True)

    def build(self, space, max_epochs, save=None, state=None):
        from ray.tune.schedulers import ASHAScheduler
        sc = space.scheduler
        return ASHAScheduler(metric=sc["metric"], mode="max", max_t=max_epochs,
                             grace_period=sc["grace_period"],
                             reduction_factor=sc["reduction_factor"])
