"""``scheduler: {kind: fifo}``: Tune's FIFO, every trial runs all its epochs (what a space
without a scheduler section gets)."""
from __future__ import annotations

from .base import SchedulerKind


class FIFO(SchedulerKind):
    about = "no early stopping: every trial runs all its epochs (the default)"
