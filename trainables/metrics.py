"""Exact ranking metrics: AUC (ties count half), GAUC, AUC sum, DCG@K.

All of them sort once (O(n log n)) and run on the tensor's device. The rank-sum form
of AUC is HarmonRank eq. (6) with average ranks for ties:

    AUC = (sum of positives' ranks - P (P + 1) / 2) / (P N)

which equals the Mann-Whitney statistic, i.e. scikit-learn's ``roc_auc_score``.
Sums are accumulated in float64 so 10^8 rows stay exact to well under 1e-9.

Public (docs/DESIGN.md, "Stable public functions"): ``auc(scores, labels) -> float`` and
``gauc(scores, labels, groups) -> float``. The ``*_per_objective`` functions take a
``(n, K)`` label matrix and return a ``(K,)`` float64 tensor: one sort serves all K
objectives, which is what the training loop uses.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["auc", "gauc", "auc_sum", "dcg_at_k", "auc_per_objective", "gauc_per_objective"]


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric, got an object array")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _check_1d(scores: torch.Tensor, labels: torch.Tensor) -> None:
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-d, got shape {tuple(scores.shape)}")
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(
            f"scores and labels differ in length: {scores.shape[0]} vs {labels.shape[0]}")


def _average_ranks_sorted(sorted_keys: torch.Tensor) -> torch.Tensor:
    """1-based average ranks of an ascending sorted 1-d tensor (ties share the mean rank)."""
    _, inverse, counts = torch.unique_consecutive(sorted_keys, return_inverse=True,
                                                  return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    mean_rank = ends - (counts.to(torch.float64) - 1.0) / 2.0
    return mean_rank[inverse]


def auc_per_objective(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Exact AUC of one score against each column of ``labels`` (n, K) -> (K,) float64.

    A column with only one class gives NaN (the public :func:`auc` raises instead).
    """
    if labels.ndim == 1:
        labels = labels[:, None]
    _check_1d(scores, labels)
    sorted_scores, order = torch.sort(scores)
    ranks = _average_ranks_sorted(sorted_scores)
    y = labels[order].to(torch.float64)
    pos = y.sum(0)
    neg = y.shape[0] - pos
    rank_sum = ranks @ y
    with torch.no_grad():
        out = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return torch.where((pos > 0) & (neg > 0), out, torch.full_like(out, math.nan))


def auc(scores, labels) -> float:
    """Exact ROC AUC of 1-d ``scores`` against binary ``labels``; ties count half.

    Accepts numpy arrays or tensors. Raises ``ValueError`` when labels hold one class
    only (AUC is undefined there), or when labels are not 0/1.
    """
    s = _as_tensor(scores, "scores")
    y = _as_tensor(labels, "labels")
    _check_1d(s, y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-d, got shape {tuple(y.shape)}")
    if not torch.is_floating_point(s):
        s = s.to(torch.float64)
    bad = ~((y == 0) | (y == 1))
    if bool(bad.any()):
        raise ValueError(f"labels must be 0/1, got {y[bad][0].item()!r}")
    if bool(torch.isnan(s).any()):
        raise ValueError("scores contain NaN")
    n_pos = int(y.sum().item())
    if n_pos == 0 or n_pos == y.shape[0]:
        raise ValueError(
            f"AUC is undefined: labels hold one class only ({n_pos} positives of {y.shape[0]})")
    return float(auc_per_objective(s, y)[0].item())


def _group_sort(keys: torch.Tensor, groups: torch.Tensor):
    """Order rows by (group, key), both ascending, ties in input order (two stable sorts).

    Returns the order, a mask of the rows that start a group (in sorted order), each
    sorted row's 0-based group id, and each group's first sorted position (int64).
    """
    o1 = torch.sort(keys, stable=True).indices
    order = o1[torch.sort(groups[o1], stable=True).indices]
    g = groups[order]
    new_group = torch.ones(g.shape[0], dtype=torch.bool, device=g.device)
    new_group[1:] = g[1:] != g[:-1]
    gid = new_group.cumsum(0) - 1
    n_groups = int(gid[-1].item()) + 1 if g.shape[0] else 0
    start = torch.zeros(n_groups, dtype=torch.int64, device=g.device)
    start.scatter_reduce_(0, gid, torch.arange(g.shape[0], device=g.device), reduce="amin",
                          include_self=False)
    return order, new_group, gid, start


def gauc_per_objective(scores: torch.Tensor, labels: torch.Tensor,
                       groups: torch.Tensor) -> torch.Tensor:
    """Impression-weighted GAUC per label column (n, K) -> (K,) float64.

    Per group g with both classes: AUC_g from within-group average ranks; result is
    sum_g n_g AUC_g / sum_g n_g over those groups (n_g = the group's row count).
    NaN for a column where no group holds both classes.
    """
    if labels.ndim == 1:
        labels = labels[:, None]
    _check_1d(scores, labels)
    n = scores.shape[0]
    order, new_group, gid, start = _group_sort(scores, groups)
    s = scores[order]
    new_tie = new_group.clone()
    new_tie[1:] |= s[1:] != s[:-1]
    tid = new_tie.cumsum(0) - 1
    n_groups = start.shape[0]
    pos_idx = torch.arange(n, device=scores.device, dtype=torch.float64)
    group_start = start.to(torch.float64)
    # Average 1-based rank inside the tie run, relative to the group's first row.
    n_ties = int(tid[-1].item()) + 1 if n else 0
    tie_first = torch.zeros(n_ties, dtype=torch.float64, device=scores.device)
    tie_first.scatter_reduce_(0, tid, pos_idx, reduce="amin", include_self=False)
    tie_count = torch.bincount(tid, minlength=n_ties).to(torch.float64)
    rank = tie_first[tid] + (tie_count[tid] + 1) / 2 - group_start[gid]
    y = labels[order].to(torch.float64)
    k = y.shape[1]
    size = torch.bincount(gid, minlength=n_groups).to(torch.float64)
    pos = torch.zeros(n_groups, k, dtype=torch.float64, device=scores.device)
    pos.index_add_(0, gid, y)
    rank_sum = torch.zeros_like(pos)
    rank_sum.index_add_(0, gid, y * rank[:, None])
    neg = size[:, None] - pos
    valid = (pos > 0) & (neg > 0)
    per_group = torch.where(valid, (rank_sum - pos * (pos + 1) / 2) / (pos * neg).clamp_min(1),
                            torch.zeros_like(pos))
    w = torch.where(valid, size[:, None].expand_as(pos), torch.zeros_like(pos))
    total = w.sum(0)
    out = (per_group * w).sum(0) / total.clamp_min(1)
    return torch.where(total > 0, out, torch.full_like(out, math.nan))


def gauc(scores, labels, groups) -> float:
    """Impression-weighted mean of per-group AUC over groups that hold both classes.

    Raises ``ValueError`` when no group holds both classes.
    """
    s = _as_tensor(scores, "scores")
    y = _as_tensor(labels, "labels")
    g = _as_tensor(groups, "groups")
    _check_1d(s, y)
    if g.shape != s.shape:
        raise ValueError(f"groups must have the shape of scores {tuple(s.shape)}, "
                         f"got {tuple(g.shape)}")
    if not torch.is_floating_point(s):
        s = s.to(torch.float64)
    value = float(gauc_per_objective(s, y, g.to(torch.int64))[0].item())
    if math.isnan(value):
        raise ValueError("GAUC is undefined: no group holds both positive and negative labels")
    return value


def auc_sum(scores, labels) -> float:
    """Sum over label columns of the exact AUC (HarmonRank eq. 4); labels (n, K)."""
    s = _as_tensor(scores, "scores")
    y = _as_tensor(labels, "labels")
    if y.ndim != 2:
        raise ValueError(f"labels must be (n, K), got shape {tuple(y.shape)}")
    per = auc_per_objective(s.to(torch.float64) if not torch.is_floating_point(s) else s, y)
    if bool(torch.isnan(per).any()):
        bad = [i for i, v in enumerate(per.tolist()) if math.isnan(v)]
        raise ValueError(f"AUC is undefined for label column(s) {bad}: one class only")
    return float(per.sum().item())


def dcg_at_k(scores, gains, k: int, groups=None) -> float:
    """DCG@K of ``gains`` ranked by descending ``scores``: sum_{i<=K} gain_i / log2(i + 1).

    With ``groups`` (e.g. request ids) it is the mean over groups of each group's DCG@K;
    without, the whole input is one list. Ties in score keep input order (stable sort).
    EMER's advantage evaluator uses it with gains = number of positive feedbacks.
    """
    s = _as_tensor(scores, "scores").to(torch.float64)
    gain = _as_tensor(gains, "gains").to(torch.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if groups is None:
        groups = torch.zeros(s.shape[0], dtype=torch.int64, device=s.device)
    g = _as_tensor(groups, "groups").to(torch.int64)
    order, _, gid, start = _group_sort(-s, g)
    pos = torch.arange(s.shape[0], device=s.device) - start[gid]  # position in the group
    disc = torch.where(pos < k, 1.0 / torch.log2(pos.to(torch.float64) + 2.0),
                       torch.zeros_like(pos, dtype=torch.float64))
    per_group = torch.zeros(start.shape[0], dtype=torch.float64, device=s.device)
    per_group.index_add_(0, gid, gain[order] * disc)
    return float(per_group.mean().item())
