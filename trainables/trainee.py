"""What the training loop trains: one model (:class:`SingleModel`) or a population of P
members trained side by side as one stacked model (:class:`Population`).

Both are a :class:`Trainee`: built from the resolved config, they hold the model, its
weighting and optimizer, and provide what differs between the two: the shape of the
per-epoch loss sums, what a NaN/inf loss does (a single model stops the run with
:class:`TrainingDiverged`; a population stops only that member, and the run once none is
left), the epoch's validation metrics (a population's are ``m<i>/<metric>`` per member
plus its best member's at the top level) and the state its checkpoint holds and resumes.
A third trainee, one preference-conditioned model whose input includes the preference
vector, lives in ``trainables.conditioned`` (:class:`~trainables.conditioned.Conditioned`).
"""
from __future__ import annotations

import math
from typing import Protocol

import torch

from .models import build_model
from .population import MemberLR, PopulationModel, finite_members, member_configs
from .requests import RequestPopulationModel, needs_requests
from .step import evaluate, evaluate_members, make_optimizer
from .weighting import build_weighting


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the objective."""


class Trainee(Protocol):
    """One model or a population, as the loop sees it."""
    model: torch.nn.Module          # unwrapped (the loop may wrap it for data parallelism)
    weighting: object
    optimizer: torch.optim.Optimizer
    alive: torch.Tensor | None      # (P,) bool: members still training; None: one model

    def loss_shape(self, n_objectives: int) -> tuple[int, ...]:
        """The shape of one step's losses: (K,) or (P, K)."""

    def diverged(self, stacked: torch.Tensor, first_step: int, objectives, epoch: int) -> None:
        """Handle a window of step losses (stacked) holding a NaN/inf."""

    def metrics(self, valid, objectives, run: dict, mean_loss: torch.Tensor) -> dict:
        """The epoch's validation metrics with its mean training losses and weights."""

    def load_state(self, resume: dict) -> None:
        """Resume from a checkpoint's payload."""

    def payload(self, **info) -> dict:
        """A checkpoint's payload: this trainee's state with ``info`` (epoch, step, ...)."""


def make_trainee(cfg: dict, objectives, features, device) -> Trainee:
    """The config's trainee: a :class:`Population` when it has a ``population`` section,
    a :class:`~trainables.conditioned.Conditioned` model when it has ``conditioning``."""
    if cfg.get("conditioning") is not None:
        from .conditioned import Conditioned
        return Conditioned.build(cfg, objectives, features, device)
    members = member_configs(cfg)
    if members is None:
        return SingleModel.build(cfg, objectives, features, device)
    return Population.build(cfg, members, objectives, features, device)


class _Trainee:
    """What both trainees share: their parts, resuming them and checkpointing them."""
    alive = None

    def __init__(self, model, weighting, optimizer):
        self.model, self.weighting, self.optimizer = model, weighting, optimizer
        self.member_errors: dict[int, str] = {}

    def load_state(self, resume: dict) -> None:
        self.model.load_state_dict(resume["model"])
        self.optimizer.load_state_dict(resume["optimizer"])
        self.weighting.load_state_dict(resume.get("weighting", {}))

    def payload(self, **info) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "weighting": self.weighting.state_dict(), **info,
                "member_errors": dict(self.member_errors)}


class SingleModel(_Trainee):
    """One model; a NaN/inf loss stops the run."""

    @classmethod
    def build(cls, cfg: dict, objectives, features, device) -> SingleModel:
        model = build_model(cfg["model"]["family"], len(objectives), features,
                            _model_cfg(cfg)).to(device)
        return cls(model, _weighting(cfg["weighting"]["kind"], cfg, objectives),
                   make_optimizer(model.parameters(), cfg["optim"]))

    def loss_shape(self, n_objectives: int) -> tuple[int, ...]:
        return (n_objectives,)

    def diverged(self, stacked, first_step, objectives, epoch) -> None:
        bad = ~torch.isfinite(stacked)
        row, col = (int(v) for v in bad.nonzero()[0])
        value = stacked[row, col].item()
        raise TrainingDiverged(
            f"loss for objective {objectives[col]!r} became {value} at step {first_step + row} "
            f"(epoch {epoch}); the run stops here. Lower optim.lr, set optim.grad_clip, or "
            f"check the loss's parameters")

    def metrics(self, valid, objectives, run, mean_loss) -> dict:
        metrics = evaluate(self.model, valid, objectives, run["eval_batch_size"], run["gauc"],
                           run["request_gauc"])
        metrics.update(_per_objective("loss", objectives, mean_loss))
        metrics.update(_per_objective("weight", objectives, self.weighting.weights()))
        return metrics


class Population(_Trainee):
    """P members as one stacked model; a member whose loss goes NaN/inf stops alone."""

    def __init__(self, model, weighting, optimizer, alive):
        super().__init__(model, weighting, optimizer)
        self.alive = alive

    @classmethod
    def build(cls, cfg: dict, members: list[dict], objectives, features, device) -> Population:
        nets = []
        for m in members:              # each member initialized from its own run.seed
            torch.manual_seed(m["run"]["seed"])
            nets.append(build_model(cfg["model"]["family"], len(objectives), features,
                                    _model_cfg(cfg)))
        torch.manual_seed(cfg["run"]["seed"])
        population = RequestPopulationModel if needs_requests(nets[0]) else PopulationModel
        model = population(nets, cfg["run"]["chunk_rows"]).to(device)
        parts = []
        for i, m in enumerate(members):
            try:
                parts.append(_weighting(cfg["weighting"]["kind"], m, objectives))
            except ValueError as e:
                raise ValueError(f"population member {i}: {e}") from None
        weighting = type(parts[0]).stack(parts)
        lrs = [float(m["optim"]["lr"]) for m in members]
        optimizer = make_optimizer(model.parameters(), {**cfg["optim"], "lr": lrs[0]})
        if len(set(lrs)) > 1:
            optimizer = MemberLR(optimizer, lrs)
        return cls(model, weighting, optimizer,
                   torch.ones(len(members), dtype=torch.bool, device=device))

    def loss_shape(self, n_objectives: int) -> tuple[int, ...]:
        return (len(self.alive), n_objectives)

    def load_state(self, resume: dict) -> None:
        super().load_state(resume)
        self.member_errors = {int(k): v for k, v in resume.get("member_errors", {}).items()}
        for i in self.member_errors:
            self.alive[i] = False

    def diverged(self, stacked, first_step, objectives, epoch) -> None:
        """Stop the members whose losses went NaN/inf (recorded with the step and
        objective); the others train on. When none is left the run fails like a single
        model."""
        alive, member_errors = self.alive, self.member_errors
        ok = finite_members(stacked)
        for i in (~ok & alive).nonzero().flatten().tolist():
            bad = (~torch.isfinite(stacked[:, i])).nonzero()[0]
            row, col = int(bad[0]), int(bad[1])
            member_errors[i] = (f"loss for objective {objectives[col]!r} became "
                                f"{stacked[row, i, col].item()} at step {first_step + row} "
                                f"(epoch {epoch}); member {i} stopped there")
            alive[i] = False
        if not bool(alive.any()):
            raise TrainingDiverged("every population member diverged: " + "; ".join(
                member_errors[i] for i in sorted(member_errors)))

    def metrics(self, valid, objectives, run, mean_loss) -> dict:
        return _population_metrics(
            evaluate_members(self.model, valid, objectives, run["eval_batch_size"],
                             run["gauc"], self.alive, run["request_gauc"]),
            mean_loss, self.weighting.weights(), objectives, self.member_errors)


def _model_cfg(cfg: dict) -> dict:
    return {k: v for k, v in cfg["model"].items() if k != "family"}


def _weighting(kind: str, cfg: dict, objectives):
    """Weighting ``kind`` with the parameters of a (member's) config."""
    return build_weighting(kind, objectives,
                           {k: v for k, v in cfg["weighting"].items() if k != "kind"})


def _per_objective(prefix: str, objectives, values: torch.Tensor) -> dict:
    return {f"{prefix}/{o}": float(v) for o, v in zip(objectives, values.tolist())}


def _population_metrics(per_member: list[dict], mean_loss, weights, objectives,
                        member_errors) -> dict:
    """One report for a population: ``m<i>/<metric>`` for every member, ``members``, and
    at the top level the metrics of the member with the best AUC sum (``best_member``),
    so progress lines and schedulers see the population's best."""
    out = {"members": len(per_member)}
    for i, m in enumerate(per_member):
        out.update({f"m{i}/{k}": v for k, v in m.items()})
        out.update({f"m{i}/{k}": v for k, v in _per_objective("loss", objectives,
                                                                mean_loss[i]).items()})
        out.update({f"m{i}/{k}": v for k, v in _per_objective("weight", objectives,
                                                                weights[i]).items()})
        if i in member_errors:
            out[f"m{i}/error"] = member_errors[i]
    sums = [m["auc_sum"] if math.isfinite(m["auc_sum"]) else -math.inf for m in per_member]
    best = max(range(len(sums)), key=sums.__getitem__)
    out.update({k: v for k, v in per_member[best].items()})
    out["best_member"] = best
    return out

