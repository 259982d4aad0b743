"""The optimizer step and validation of the training loop (:mod:`trainables.loop`).

:func:`make_step` is shared by the loop and the benchmarks, so the benchmarks time exactly
the loop's step; :func:`evaluate` scores a model (or, :func:`evaluate_members`, each member
of a population) on a split.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from .distributed import EvalShard
from .metrics import auc_per_objective, gauc_per_objective
from .population import clip_grad_norm_per_member
from .requests import needs_requests, predict_by_request
from .weighting import StepContext

# Batch data a loss may ask for by naming it before its ``*`` (its hyper-parameters are
# keyword-only): the batch's request ids, the MP's scores (n, K) and the rows' durations
# (n,) (None when the dataset has no ``duration`` column).
LOSS_DATA = ("groups", "mp_scores", "duration")


def make_optimizer(params, o: dict) -> torch.optim.Optimizer:
    """The optimizer of ``optim``; Adam/AdamW fused (one kernel for all parameters: ~4x
    cheaper per step than the default on CPU for a model of many small tensors)."""
    params = list(params)
    if o["optimizer"] in ("adam", "adamw"):
        cls = torch.optim.Adam if o["optimizer"] == "adam" else torch.optim.AdamW
        try:
            return cls(params, lr=o["lr"], weight_decay=o["weight_decay"], fused=True)
        except (RuntimeError, TypeError):  # a device without a fused kernel
            return cls(params, lr=o["lr"], weight_decay=o["weight_decay"])
    return torch.optim.SGD(params, lr=o["lr"], weight_decay=o["weight_decay"], momentum=0.9)


def loss_data(loss_fn) -> tuple[str, ...]:
    """The batch data (of :data:`LOSS_DATA`) that ``loss_fn`` names as arguments."""
    params = inspect.signature(loss_fn).parameters
    return tuple(k for k in LOSS_DATA if k in params
                 and params[k].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def by_request(model, loss_fn) -> bool:
    """Whether batches must hold whole requests (the model or the loss needs them)."""
    return needs_requests(model) or "groups" in loss_data(loss_fn)


def make_step(model, loss_fn, loss_hp: dict, weighting, optimizer, grad_clip=None,
              alive: torch.Tensor | None = None) -> Callable:
    """One optimizer step on a batch; returns the per-objective losses, detached: (K,), or
    (P, K) for a population (``alive``, (P,) bool: members still training; a diverged
    member's losses are masked out so its NaNs reach nobody).

    A model that needs requests is called with the batch's request ids ``groups`` (which
    then are also in ``StepContext.inputs``, so ``model(*ctx.inputs)`` stays its call);
    a loss gets the batch data it names (:func:`loss_data`).
    Shared by the loop and the benchmark, so the benchmark times exactly this code.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    per_member = getattr(getattr(model, "module", model), "members", None) is not None  # DDP
    model_groups = needs_requests(model)
    wants = loss_data(loss_fn)

    def step(scores, labels, cat, num, step_no: int, epoch: int, groups=None,
             duration=None) -> torch.Tensor:
        inputs = (scores, cat, num, groups) if model_groups else (scores, cat, num)
        s = model(*inputs)
        data = {}
        if "groups" in wants:
            data["groups"] = groups
        if "mp_scores" in wants:
            data["mp_scores"] = scores
        if "duration" in wants:
            data["duration"] = duration
        losses = loss_fn(s, labels, **data, **loss_hp)
        masked = losses if alive is None else \
            torch.where(alive[:, None], losses, torch.zeros_like(losses))
        total = weighting.combine(masked, StepContext(step_no, epoch, model, s, labels,
                                                      inputs, groups))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            if per_member:
                clip_grad_norm_per_member(params, grad_clip)
            else:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return losses.detach()

    return step


@torch.no_grad()
def predict(model, split, batch_size: int) -> torch.Tensor:
    """Scores of ``model`` on every row of a TensorSplit, in batches: (n,), or (P, n) for
    a population. A model that needs requests gets batches of whole requests. An
    :class:`~trainables.distributed.EvalShard` (several workers, or a streamed split) is
    scored in this worker's share and gathered: every worker gets the whole split's scores."""
    if isinstance(split, EvalShard):
        return split.predict(model, batch_size)
    was_training = model.training
    model.eval()
    if needs_requests(model):
        s = predict_by_request(model, split, batch_size)
        model.train(was_training)
        return s
    out = [model(split.scores[i:i + batch_size], split.cat[i:i + batch_size],
                 split.num[i:i + batch_size]) for i in range(0, len(split), batch_size)]
    model.train(was_training)
    return torch.cat(out, dim=-1)


def evaluate(model, split, objectives, batch_size: int, with_gauc: bool = True,
             with_request_gauc: bool = False) -> dict:
    """Exact validation AUC (and GAUC per user, per request) per objective, and the AUC sum."""
    return _score_metrics(predict(model, split, batch_size), split, objectives, with_gauc,
                          with_request_gauc)


def evaluate_members(model, split, objectives, batch_size: int, with_gauc: bool = True,
                     alive=None, with_request_gauc: bool = False) -> list[dict]:
    """:func:`evaluate` for each member of a population (NaNs for a diverged member)."""
    s = predict(model, split, batch_size)
    live = {i: _score_metrics(s[i], split, objectives, with_gauc, with_request_gauc)
            for i in range(s.shape[0]) if alive is None or bool(alive[i])}
    keys = next(iter(live.values())).keys()       # the loop stops when no member is left
    return [live[i] if i in live else dict.fromkeys(keys, math.nan) for i in range(s.shape[0])]


def _score_metrics(s, split, objectives, with_gauc: bool,
                   with_request_gauc: bool = False) -> dict:
    aucs = auc_per_objective(s, split.labels).tolist()
    metrics = {f"auc/{o}": a for o, a in zip(objectives, aucs)}
    metrics["auc_sum"] = float(sum(aucs))
    for on, prefix, groups in ((with_gauc, "gauc", split.user),
                               (with_request_gauc, "request_gauc", split.request)):
        if on:
            g = gauc_per_objective(s, split.labels, groups).tolist()
            metrics.update({f"{prefix}/{o}": v for o, v in zip(objectives, g)})
    return metrics

