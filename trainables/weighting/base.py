"""The interface every weighting implements, for one model or a population of them.

One model: ``losses`` is (K,), ``ctx.scores`` (n,), ``weights()`` (K,).
A population of P members trained together (``trainables.population``): ``losses`` is
(P, K), ``ctx.scores`` (P, n), ``ctx.model(*ctx.inputs)`` returns (P, n), the model's
parameters are stacked with the member as their first dimension, and ``weights()`` is
(P, K). ``combine`` returns one scalar either way (for a population, the sum of the
members' losses: their parameters are disjoint, so each member gets exactly its own
gradient). A weighting with per-member state is built once per member (so each member's
parameters are checked on their own) and the P instances are merged by
:meth:`Weighting.stack`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class PerObjective:
    """How a per-objective parameter (a mapping objective -> number) is written in a space:
    ``required``: every objective needs a value (else unnamed ones default in the class);
    ``simplex``: ``{simplex: [objectives]}`` may sample it uniformly on the simplex."""

    required: bool = False
    simplex: bool = False


@dataclass
class StepContext:
    """What a weighting may look at in one training step."""

    step: int                   # global optimizer step, from 0
    epoch: int
    model: torch.nn.Module      # model(*inputs) -> scores; a population's returns (P, n)
    scores: torch.Tensor        # (n,) or (P, n): the batch's ensemble scores (in the graph)
    labels: torch.Tensor        # (n, K)
    inputs: tuple = ()          # what model(*inputs) takes: (mp_scores (n, K), cat (n, C),
    #                             num (n, F)), plus the request ids for request models
    groups: torch.Tensor | None = None   # (n,) request ids of the batch, when known
    extra: dict = field(default_factory=dict)


class Weighting:
    """Combine per-objective losses into one scalar; expose the current weights."""

    #: attributes that are per-member state, stacked by :meth:`stack` (first dim = member);
    #: every other attribute must be equal across the members of a population.
    member_state: tuple[str, ...] = ()
    #: parameters that map objective -> number, each with how a space writes it: the space
    #: parser checks their keys against the data's objectives, and a population member's
    #: value replaces the base config's whole mapping (never merged key by key).
    per_objective: dict[str, PerObjective] = {}

    def __init__(self, objectives: list[str]):
        self.objectives = list(objectives)
        self.members: int | None = None      # None: one model; P: a population

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        raise NotImplementedError

    def weights(self) -> torch.Tensor:
        """Current weights, (K,) or (P, K), for logging as ``weight/<obj>``."""
        raise NotImplementedError

    def preference(self) -> list[float] | None:
        """The fixed trade-off this weighting stands for: K weights on the simplex, or None
        when it states none (weights that follow the training state, e.g. EMER's
        self-evolving ones). The analysis judges each epoch of a trial by sum_k w_k AUC_k
        under these weights and takes the best epoch as the trial's point
        (docs/DESIGN.md, "Which epoch is a trial's point"). Called on one model's
        weighting (a population member's is built on its own)."""
        return None

    def multi_task_issue(self) -> str | None:
        """None when this weighting can also weight a multi-task model's losses (the MP
        stage, ``trainables.mp``: ``ctx.scores`` is (n, K), one column per objective,
        not one ensemble score per row); else why not, as a sentence for an error."""
        return "it reads one ensemble score per row, and an MP model gives one per objective"

    def state_dict(self) -> dict:
        """State to checkpoint (stateless weightings return {})."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @classmethod
    def stack(cls, members: list["Weighting"]) -> "Weighting":
        """One weighting for a population from one instance per member.

        Attributes named in ``member_state`` (tensors or numpy arrays) are stacked along a
        new first dimension; any other setting must be the same for every member, else a
        ValueError names it (a population shares everything but its per-member state)."""
        import copy

        import numpy as np

        if not members:
            raise ValueError("a population needs at least one member")
        first = members[0]
        for i, m in enumerate(members[1:], 1):
            if type(m) is not type(first):
                raise ValueError(f"population member {i} uses weighting {type(m).__name__}, "
                                 f"member 0 {type(first).__name__}: members share the kind")
            for key, value in vars(first).items():
                if key in cls.member_state or key.startswith("_cache"):
                    continue
                other = vars(m).get(key)
                same = (np.array_equal(np.asarray(value), np.asarray(other))
                        if isinstance(value, (np.ndarray, torch.Tensor)) else value == other)
                if not same:
                    raise ValueError(
                        f"weighting.{key.lstrip('_')} differs between population members "
                        f"({value!r} vs {other!r}); only "
                        f"{', '.join(k.lstrip('_') for k in cls.member_state) or 'nothing'} "
                        f"may vary inside one population")
        out = copy.copy(first)
        out.__dict__ = dict(vars(first))
        for key in cls.member_state:
            vals = [vars(m)[key] for m in members]
            out.__dict__[key] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) \
                else np.stack(vals)
        out.members = len(members)
        return out
