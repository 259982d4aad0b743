"""EMER's self-evolving loss weights: the "advantage evaluator" (docs/DESIGN.md, "EMER").

Per objective k, with ``Metric`` a ranking metric of the batch's labels (as gains) under
the model's scores,

    w_k = Metric_k(f(x; snapshot)) / Metric_k(f(x; current))

where the snapshot is a copy of the model's parameters refreshed every
``refresh_every`` steps (EMER's Θ_{t-1}: the serving model, the current one being
Θ_t). An objective on which the model got worse since the snapshot gets a weight above 1,
one it improved on a weight below 1. The raw ratios are clipped to ``clip`` and, by
default, rescaled to average 1 over the objectives (sum K), so the loss keeps the scale of
static equal weights. The weights are constants of the step (no gradient flows through
them) and are logged as ``weight/<obj>``.

Order inside a step t: when ``t % every == 0`` the weights are computed against the
snapshot held so far; then, when ``t % refresh_every == 0`` (or no snapshot exists yet),
the snapshot becomes the current parameters, taken before this step's update. So the
snapshot compared against is 1 to ``refresh_every`` steps old, and ``refresh_every: 1``
is exactly the paper's Θ_{t-1} vs Θ_t. At the very first step there is no earlier model
and the weights are 1.

Works for a population of P models unchanged: the snapshot scores come from
``torch.func.functional_call`` on the population module, the metric is computed for all
members at once, and the weights are (P, K).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import StepContext, Weighting

METRICS = ("dcg", "auc")
_STOCHASTIC = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


def _int_at_least(key: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"weighting.{key} must be an integer >= {low}, got {value!r}")
    return value


def _bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"weighting.{key} must be true or false, got {value!r}")
    return value


def dcg_rows(scores: torch.Tensor, gains: torch.Tensor, k: int,
             groups: torch.Tensor | None = None) -> torch.Tensor:
    """DCG@K of each gain column under each row of scores: (P, n), (n, K) -> (P, K) float64.

    The gains are ranked by descending score (ties in input order, as
    :func:`trainables.metrics.dcg_at_k`). With ``groups`` (n,) it is the mean over the
    groups of each group's DCG@K; without, the whole batch is one list."""
    gains = gains.to(torch.float64)
    n = scores.shape[1]
    by_score = torch.sort(scores, dim=1, descending=True, stable=True).indices
    if groups is None:
        top = by_score[:, :min(k, n)]                                   # (P, k)
        disc = 1.0 / torch.log2(torch.arange(top.shape[1], device=scores.device,
                                             dtype=torch.float64) + 2.0)
        return torch.einsum("pjk,j->pk", gains[top], disc)
    # order by (group, descending score): a stable sort by group after the one by score;
    # the sorted group ids are the same for every row, so the positions are shared
    by_group = torch.sort(groups[by_score], dim=1, stable=True).indices
    order = by_score.gather(1, by_group)                                # (P, n)
    g = torch.sort(groups).values
    new_group = torch.ones(n, dtype=torch.bool, device=scores.device)
    new_group[1:] = g[1:] != g[:-1]
    gid = new_group.cumsum(0) - 1
    n_groups = int(gid[-1].item()) + 1
    idx = torch.arange(n, device=scores.device)
    start = torch.zeros(n_groups, dtype=torch.int64, device=scores.device)
    start.scatter_reduce_(0, gid, idx, reduce="amin", include_self=False)
    pos = idx - start[gid]
    disc = torch.where(pos < k, 1.0 / torch.log2(pos.to(torch.float64) + 2.0),
                       torch.zeros((), dtype=torch.float64, device=scores.device))
    per_group = torch.zeros(scores.shape[0], n_groups, gains.shape[1], dtype=torch.float64,
                            device=scores.device)
    per_group.index_add_(1, gid, gains[order] * disc[None, :, None])
    return per_group.mean(1)


def auc_rows(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Exact AUC (ties count half) of each label column under each row of scores:
    (P, n), (n, K) -> (P, K) float64; NaN for a column with one class only."""
    n = scores.shape[1]
    s, order = torch.sort(scores, dim=1)
    idx = torch.arange(n, device=scores.device)
    new_run = torch.ones_like(s, dtype=torch.bool)
    new_run[:, 1:] = s[:, 1:] != s[:, :-1]
    ends_run = torch.ones_like(new_run)
    ends_run[:, :-1] = new_run[:, 1:]
    first = torch.where(new_run, idx, torch.zeros_like(idx)).cummax(1).values
    last = torch.where(ends_run, idx, torch.full_like(idx, n)).flip(1).cummin(1).values.flip(1)
    ranks = (first + last).to(torch.float64) / 2.0 + 1.0               # 1-based average rank
    y = labels.to(torch.float64)
    rank_sum = torch.einsum("pn,pnk->pk", ranks, y[order])
    pos = y.sum(0)
    neg = n - pos
    out = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return torch.where((pos > 0) & (neg > 0), out, torch.full_like(out, math.nan))


class SelfEvolvingWeighting(Weighting):
    """``kind: self_evolving`` — w_k = Metric_k(snapshot) / Metric_k(current), clipped,
    normalized.

    ``metric``: "dcg" (DCG@``k`` of the labels as gains, the paper's default) or "auc"
    (exact AUC per objective). ``k``: the DCG cutoff (default 100: over a whole batch of
    thousands of rows, the top 100 still holds positives of objectives with rates near 1%).
    ``per_request``: DCG as the mean over the batch's requests (``StepContext.groups``)
    instead of over the batch as one list; only useful when batches hold whole requests.
    ``refresh_every``: steps between snapshot refreshes (default 10; 1 compares with the
    previous step's model, as in the paper). ``every``: recompute the weights every that
    many steps, keeping them in between (default 1). ``clip``: [low, high], 0 < low <= high
    finite, applied to the raw ratios (default [0.5, 2.0]: at most a factor 2 either way).
    ``normalize``: rescale the clipped ratios to average 1 over the objectives (default
    true; the clip then bounds the ratios between weights, not the weights themselves).

    An objective whose batch has no signal (DCG: no positive gain; AUC: one class only) gets
    raw weight 1; current metric 0 with snapshot metric > 0 gets the clip's upper value;
    both 0 give 1.
    """

    member_state = ("_w",)

    def __init__(self, objectives: list[str], *, metric: str = "dcg", k: int = 100,
                 per_request: bool = False, refresh_every: int = 10, every: int = 1,
                 clip=(0.5, 2.0), normalize: bool = True):
        super().__init__(objectives)
        if metric not in METRICS:
            raise ValueError(f"weighting.metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.k = _int_at_least("k", k, 1)
        self.per_request = _bool("per_request", per_request)
        if self.per_request and metric != "dcg":
            raise ValueError(f"weighting.per_request applies to metric 'dcg' only, "
                             f"got metric {metric!r}")
        self.refresh_every = _int_at_least("refresh_every", refresh_every, 1)
        self.every = _int_at_least("every", every, 1)
        try:
            low, high = (float(v) for v in clip)
        except (TypeError, ValueError):
            raise ValueError(f"weighting.clip must be a pair [low, high] of numbers, "
                             f"got {clip!r}") from None
        if not (0 < low <= high < math.inf):
            raise ValueError(f"weighting.clip = {list(clip)!r}: need 0 < low <= high, both "
                             f"finite (the weights must stay strictly positive)")
        self.clip = (low, high)
        self.normalize = _bool("normalize", normalize)
        self._w = torch.ones(len(self.objectives), dtype=torch.float32)
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._cache_stochastic: tuple[int, bool] | None = None

    # -- the advantage evaluator ------------------------------------------------------------

    def _metric(self, scores: torch.Tensor, labels: torch.Tensor, groups) -> torch.Tensor:
        if self.metric == "auc":
            return auc_rows(scores, labels)
        return dcg_rows(scores, labels, self.k, groups if self.per_request else None)

    def ratios(self, prev: torch.Tensor, cur: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Clipped raw weights from the snapshot's and the current metric (..., K)."""
        low, high = self.clip
        y = labels.to(torch.float64)
        if self.metric == "auc":
            signal = (y.sum(0) > 0) & (y.sum(0) < y.shape[0])
        else:
            signal = (y > 0).any(0)
        one = torch.ones_like(cur)
        raw = torch.where(cur > 0, prev / torch.where(cur > 0, cur, one),
                          torch.where(prev > 0, torch.full_like(cur, high), one))
        raw = torch.where(signal & torch.isfinite(prev) & torch.isfinite(cur), raw, one)
        return raw.clamp(low, high)

    def _core(self, model: nn.Module) -> nn.Module:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            return model.module
        return model

    def _stochastic(self, model: nn.Module) -> bool:
        """Whether the model's training-mode forward differs from eval mode (dropout, BN)."""
        if self._cache_stochastic is None or self._cache_stochastic[0] != id(model):
            flag = any(isinstance(m, _STOCHASTIC) for m in model.modules())
            self._cache_stochastic = (id(model), flag)
        return self._cache_stochastic[1]

    @torch.no_grad()
    def _compute(self, ctx: StepContext) -> torch.Tensor:
        model = self._core(ctx.model)
        if self.per_request and ctx.groups is None:
            raise ValueError("weighting.per_request needs the batch's request ids "
                             "(StepContext.groups); this caller gives none")
        snap = self._snapshot
        first = next(iter(snap.values()), None)
        device = ctx.scores.device
        if first is not None and first.device != device:
            snap = self._snapshot = {name: t.to(device) for name, t in snap.items()}
        # both forwards in eval mode when training mode would add noise (dropout) or
        # write into the buffers (batch norm); otherwise the step's own scores serve
        stochastic = model.training and self._stochastic(model)
        if stochastic:
            model.eval()
        try:
            prev_scores = torch.func.functional_call(model, snap, tuple(ctx.inputs))
            cur_scores = model(*ctx.inputs) if stochastic else ctx.scores.detach()
        finally:
            if stochastic:
                model.train()
        one = ctx.scores.ndim == 1
        if one:
            prev_scores, cur_scores = prev_scores[None], cur_scores[None]
        labels = ctx.labels
        prev = self._metric(prev_scores.detach(), labels, ctx.groups)
        cur = self._metric(cur_scores, labels, ctx.groups)
        w = self.ratios(prev, cur, labels)
        if self.normalize:
            w = w * (w.shape[-1] / w.sum(-1, keepdim=True))
        w = w.to(torch.float32)
        return w[0] if one else w

    def _refresh(self, model: nn.Module) -> None:
        model = self._core(model)
        snap = {name: p.detach().clone() for name, p in model.named_parameters()}
        snap.update({name: b.detach().clone() for name, b in model.named_buffers()})
        self._snapshot = snap

    # -- the Weighting interface ------------------------------------------------------------

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if self._snapshot is not None and ctx.step % self.every == 0:
            self._w = self._compute(ctx)
        if self._snapshot is None or ctx.step % self.refresh_every == 0:
            self._refresh(ctx.model)
        w = self._w
        if w.device != losses.device or w.dtype != losses.dtype:
            w = w.to(device=losses.device, dtype=losses.dtype)
        return (losses * w).sum()

    def weights(self) -> torch.Tensor:
        return self._w.detach().to("cpu", torch.float32).clone()

    def state_dict(self) -> dict:
        snap = None if self._snapshot is None else \
            {name: t.detach().cpu().clone() for name, t in self._snapshot.items()}
        return {"weights": self.weights(), "snapshot": snap}

    def load_state_dict(self, state: dict) -> None:
        if state.get("weights") is not None:
            self._w = torch.as_tensor(state["weights"], dtype=torch.float32).clone()
        if "snapshot" in state:
            snap = state["snapshot"]
            self._snapshot = None if snap is None else {n: t.clone() for n, t in snap.items()}
