"""The trial schedulers a space's ``scheduler.kind`` names: ONE registry, :data:`SCHEDULERS`.

Each entry is a :class:`~search.schedulers.base.SchedulerKind` declaring its
``scheduler:`` keys and defaults, whether it serves population trials, and the Tune
scheduler it builds. Adding one is a file in this package and a line below; the space
parser (:func:`parse_scheduler`) and the runner read only this dict. A space without a
``scheduler`` section runs Tune's FIFO (every trial all its epochs); ``scheduler: {}``
without ``kind`` is :data:`DEFAULT_KIND`.
"""
from __future__ import annotations

from ..distributions import _Dist, _fail, _mapping, _plugin
from .asha import ASHA
from .base import SchedulerKind
from .fifo import FIFO
from .moasha import MOASHA

SCHEDULERS: dict[str, SchedulerKind] = {
    "asha": ASHA(),
    "fifo": FIFO(),
    "moasha": MOASHA(),
}
DEFAULT_KIND = "asha"

__all__ = ["DEFAULT_KIND", "SCHEDULERS", "SchedulerKind", "max_epochs", "parse_scheduler"]


def max_epochs(optim_tree: dict) -> int:
    """The most epochs a trial of a parsed optim section runs (a searched ``epochs``
    counts with its largest value)."""
    from trainables.config import OPTIM_DEFAULTS
    e = optim_tree.get("epochs", OPTIM_DEFAULTS["epochs"])
    if isinstance(e, _Dist):
        return int(max(e.args))
    return int(e if e is not None else OPTIM_DEFAULTS["epochs"])


def parse_scheduler(v, objectives: list[str], population: bool, epochs: int) -> dict | None:
    """Validate a space's ``scheduler:`` (None: no section) -> ``{kind, **its params}``;
    one error naming ``scheduler.<key>``, the value and what is allowed."""
    if v is None:
        return None
    v = _mapping("scheduler", v)
    kind, chosen = _plugin("scheduler", v, "kind", DEFAULT_KIND, SCHEDULERS, ["kind"])
    if population and not chosen.population:
        _fail("scheduler", v, chosen.population_text)
    s = {"kind": kind, **chosen.params, **v}
    chosen.parse(s, objectives, epochs)
    return s
