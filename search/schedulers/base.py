"""What every scheduler declares, in one place: :class:`SchedulerKind`.

A scheduler is one file in this package holding a subclass, and one line in
``SCHEDULERS`` (``search/schedulers/__init__.py``); nothing else names it. The space
parser (:func:`~search.schedulers.parse_scheduler`), the runner and the README ask the
registered object:

- ``params``: the ``scheduler:`` keys it takes beyond ``kind``, with their defaults;
- :meth:`parse`: validate them (one error naming ``scheduler.<key>``, the value and what
  is allowed), given the space's objectives and the most epochs a trial runs;
- ``population``: whether it may run with ``search.population: true`` (``population_text``
  says why not);
- :meth:`build`: its Tune ``TrialScheduler`` (None: Tune's FIFO), with a function that
  saves its JSON state (``save``) and the state to continue from on resume (``state``);
- :meth:`callbacks`: Tune callbacks it needs (recording a trial it stopped early).

``--smoke-test`` runs one epoch and drops the scheduler (no rung lies below one epoch).
Nothing here imports Ray at module level: a space is parsed without it.
"""
from __future__ import annotations


class SchedulerKind:
    """A scheduler's declaration; the defaults describe Tune's FIFO (no early stopping)."""

    params: dict = {}               # its own scheduler: keys -> default
    population: bool = True         # may run with search.population: true
    population_text: str = ""       # why not, when population is False
    about: str = ""                 # one line for the README / errors

    def parse(self, s: dict, objectives: list[str], max_epochs: int) -> None:
        """Check this scheduler's keys in ``s`` (defaults merged with what was written),
        in place; ``max_epochs``: the most epochs any trial runs (optim.epochs)."""

    def build(self, space, max_epochs: int, save=None, state: dict | None = None):
        """The Tune TrialScheduler for a space, or None for Tune's FIFO. ``save(text)``
        stores its JSON state (None: not stored); ``state``: a saved state to continue."""
        return None

    def callbacks(self, scheduler) -> list:
        """Tune callbacks the built scheduler needs (run before paretune's loggers)."""
        return []
