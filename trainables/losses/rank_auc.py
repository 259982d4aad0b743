"""HarmonRank's differentiable rank-sum AUC loss (sec. 4.1, eq. 6-10).

AUC_k = (<r, y_k> - P_k (P_k + 1) / 2) / (P_k N_k) with r the ranks of the batch's
scores. ``r`` is replaced by torchsort's soft ranks (Blondel et al. 2020: projection
onto the permutohedron, O(n log n) forward, O(n) backward). The ensemble score is shared
by all objectives, so the batch is soft-ranked once and every objective reuses it.
Loss = 1 - soft AUC per objective. ``soft_rank_impl: parallel`` computes the same soft
ranks (l2) in parallel torch ops (:mod:`trainables.losses.soft_rank`) instead of
torchsort's per-row sequential kernel: for long rows on a GPU.
"""
from __future__ import annotations

import torch
import torchsort

from . import soft_rank as parallel
from ._common import as_matrix, finish

REGULARIZATIONS = ("l2", "kl")
SOFT_RANK_DEVICES = ("auto", "input", "cpu")
SOFT_RANK_IMPLS = ("torchsort", "parallel")


def rank_auc(scores: torch.Tensor, labels: torch.Tensor, *,
             regularization_strength: float = 1.0, regularization: str = "l2",
             soft_rank_device: str = "auto", soft_rank_impl: str = "torchsort") -> torch.Tensor:
    """1 - soft rank-sum AUC per objective.

    ``regularization_strength`` (epsilon) sets how soft the ranks are relative to the
    gaps between scores: small values approach hard ranks (exact AUC, sparse gradients),
    large ones average over many neighbours. 0 (or less) is not allowed.

    ``soft_rank_device``: where the soft rank runs. torchsort solves the isotonic
    regression of each row sequentially, so its CUDA kernel puts a whole batch (one row)
    on one GPU thread; ``auto`` sends CUDA batches to the CPU kernel and back, which
    measured several times faster on an H100 (see the benchmark). ``input`` keeps the
    input's device; ``cpu`` always uses the CPU kernel.

    ``soft_rank_impl``: ``torchsort`` (its compiled kernels), or ``parallel``: the same
    soft ranks and gradients (exact, to rounding) from parallel torch ops on the device
    the ranks run on, for ``regularization: l2`` only. With ``parallel``, ``auto`` keeps
    the input's device, since the point is to use the GPU for one long row.
    """
    y, squeeze = as_matrix(scores, labels)
    x = scores[None, :] if scores.ndim == 1 else scores     # rows are ranked
    ranks = soft_ranks(x, regularization_strength=regularization_strength,
                       regularization=regularization, soft_rank_device=soft_rank_device,
                       soft_rank_impl=soft_rank_impl).reshape(scores.shape)
    pos = y.sum(0)
    neg = y.shape[0] - pos
    defined = (pos > 0) & (neg > 0)
    soft_auc = (ranks @ y - pos * (pos + 1) / 2) / (pos * neg).clamp_min(1.0)
    per = torch.where(defined, 1.0 - soft_auc, torch.zeros_like(soft_auc))
    return finish(per, squeeze)


def soft_ranks(x: torch.Tensor, *, regularization_strength: float = 1.0,
               regularization: str = "l2", soft_rank_device: str = "auto",
               soft_rank_impl: str = "torchsort") -> torch.Tensor:
    """Soft ranks of each row of the 2-d ``x`` on ``x``'s device, computed where and how
    :func:`rank_auc`'s parameters of the same names say (the benchmark times this)."""
    if not regularization_strength > 0:
        raise ValueError(f"regularization_strength must be > 0, got {regularization_strength}")
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {regularization!r}")
    if soft_rank_device not in SOFT_RANK_DEVICES:
        raise ValueError(f"soft_rank_device must be one of {SOFT_RANK_DEVICES}, "
                         f"got {soft_rank_device!r}")
    if soft_rank_impl not in SOFT_RANK_IMPLS:
        raise ValueError(f"soft_rank_impl must be one of {SOFT_RANK_IMPLS}, "
                         f"got {soft_rank_impl!r}")
    if soft_rank_impl == "parallel" and regularization != "l2":
        raise ValueError(f"soft_rank_impl 'parallel' computes the l2 soft rank only, got "
                         f"regularization {regularization!r}; use soft_rank_impl 'torchsort' "
                         f"or regularization 'l2'")
    device = x.device
    if soft_rank_device == "cpu" or (soft_rank_device == "auto" and x.is_cuda
                                     and soft_rank_impl == "torchsort"):
        x = x.cpu()     # a differentiable copy: the gradient flows back to the device
    rank = torchsort.soft_rank if soft_rank_impl == "torchsort" else parallel.soft_rank
    ranks = rank(x, regularization=regularization,
                 regularization_strength=regularization_strength)
    return ranks.to(device)
