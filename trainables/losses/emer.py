"""EMER's pairwise losses inside a request (He et al. 2025, "Loss Function"; docs/DESIGN.md, "EMER").

Both are means of the pairwise logistic loss -log sigmoid(s_i - s_j) = softplus(s_j - s_i)
over pairs (i, j) of candidates of the *same request* where i should rank above j:

- ``emer_prior`` (eq. 2-5): for objective k, the pairs ordered by the MP's score of k
  (pxtr_k(i) > pxtr_k(j); ties make no pair). Equal-weight sum over k = eq. 5 with w = 1.
- ``emer_posterior`` (eq. 1): pairs ordered by the user's feedback. One loss per objective,
  two ways (``pairs``):
  * ``"objective"`` (default): objective k's pairs are those where k's label differs
    (y_k(i) = 1, y_k(j) = 0). Each objective's loss depends on its own labels only (the
    loss contract: the (n, K) form equals K calls on single columns), and a weighting can
    trade objectives off. Summed with equal weights, a pair where i's feedback dominates
    j's is pushed with weight c_i - c_j (c = number of positive feedbacks: "relative
    satisfaction increases with the quantity of positive feedback"); a pair with mixed
    feedback (i liked, j shared) is pushed both ways and the weights decide.
  * ``"count"``: the paper's D exactly, pairs with c_i > c_j ("positive pairs"), each
    pair's loss shared equally among the objectives on which i is positive and j is not.
    The losses sum to eq. 1 (as a mean over D), pairs with equal counts are not trained;
    but objective k's loss now depends on the other objectives' labels.
- ``emer``: eq. 6, posterior + ``prior_weight`` * prior per objective, on one set of pairs.

Pairs: all within-request pairs when there are at most ``max_pairs`` of them, else
``max_pairs`` drawn uniformly with replacement (as ``pairwise_logistic``), so memory is
O(min(pairs, max_pairs)) whatever the batch; pair indices are built vectorized from the
request offsets. Mean over an objective's pairs ("objective", prior) or over D ("count");
an objective without pairs in the batch contributes 0.

Data arguments (before the ``*``; the training loop fills them, see
``trainables.requests``): ``groups`` (n,) request ids (None: the batch is one request);
``mp_scores`` (n, K) (or (n,) with 1-d labels), the MP's pxtr of each objective (None: the
labels order the prior's pairs); ``duration`` (n,) for IPUT.

IPUT ("Evaluation methodology", eq. 10): pxtr_IPUT = pxtr / p_watchtime, interactions per
unit of watch time. ``use_iput`` orders the prior's pairs of the objectives
``iput_objectives`` (column indices; None = all: list only the interaction objectives) by
``iput(pxtr, duration)``, ``duration`` standing in for the predicted watch time. Only the
order within a request matters, so the unit of ``duration`` does not. The training loop
passes the dataset's optional ``duration`` column (``trainables.loop.LOSS_DATA``; the
KuaiRand MP stage writes the video's duration in seconds) and lets a config name the
objectives (``iput_objectives: [like, follow]``, turned into indices by
``trainables.losses.bind_objectives``); ``use_iput: true`` on a dataset without the column
is an error before training.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..requests import request_layout
from ._common import as_matrix, finish

POSTERIOR_PAIRS = ("objective", "count")


def iput(scores: torch.Tensor, duration: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Interaction probability per unit time (EMER eq. 10): ``scores / duration`` row-wise,
    (n,) or (n, K) scores, (n,) durations (or predicted watch times), clamped to >= eps."""
    d = duration.to(scores.dtype).clamp_min(eps)
    return scores / (d if scores.ndim == 1 else d[:, None])


def within_request_pairs(groups: torch.Tensor | None, n: int, max_pairs: int,
                         device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (i, j) of the unordered pairs of candidates of the same request: all of
    them (each once, i before j in request order) when there are at most ``max_pairs``,
    else ``max_pairs`` draws, uniform over those pairs, with replacement."""
    if groups is None:
        groups = torch.zeros(n, dtype=torch.int64, device=device)
    order, _, counts, starts = request_layout(groups)
    sq = counts * counts                     # ordered (a, b) slots per request, a == b too
    cum = sq.cumsum(0)
    n_pairs = int(((counts * (counts - 1)) // 2).sum())
    if n_pairs <= max_pairs:
        total = int(cum[-1]) if len(cum) else 0
        req = torch.repeat_interleave(torch.arange(len(counts), device=groups.device), sq,
                                      output_size=total)
        q = torch.arange(total, device=groups.device) - (cum - sq)[req]
    else:   # uniform over slots, keep a != b: uniform over unordered pairs (both orders)
        slot = torch.randint(int(cum[-1]), (2 * max_pairs,), device=groups.device)
        req = torch.searchsorted(cum, slot, right=True)
        q = slot - (cum - sq)[req]
    c = counts[req]
    a, b = torch.div(q, c, rounding_mode="floor"), q % c
    keep = a < b if n_pairs <= max_pairs else a != b
    a, b, req = a[keep], b[keep], req[keep]
    if n_pairs > max_pairs:
        a, b, req = a[:max_pairs], b[:max_pairs], req[:max_pairs]
    return order[starts[req] + a], order[starts[req] + b]


def _pair_losses(scores, i, j):
    """softplus(s_j - s_i) and softplus(s_i - s_j): the loss of each pair when i should
    rank first, and when j should; (..., T) each."""
    d = scores[..., i] - scores[..., j]
    return F.softplus(-d), F.softplus(d)


def _ordered_mean(up, down, sign):
    """Per objective, the mean over its pairs with a nonzero ``sign`` (T, K): +1 when i
    should rank first (loss ``up``), -1 when j should (``down``); 0 without pairs."""
    first, second = (sign > 0).to(up.dtype), (sign < 0).to(up.dtype)
    count = first.sum(0) + second.sum(0)
    return (up @ first + down @ second) / count.clamp_min(1.0)


def _check(scores, labels, groups, max_pairs):
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    y, squeeze = as_matrix(scores, labels)
    if groups is not None and groups.shape != (y.shape[0],):
        raise ValueError(f"groups must be (n,) request ids with n = {y.shape[0]}, "
                         f"got shape {tuple(groups.shape)}")
    return y, squeeze


def _pxtr(y, mp_scores, duration, use_iput, iput_objectives):
    """The (n, K) keys that order the prior's pairs."""
    if mp_scores is None:
        key = y
    else:
        key = mp_scores[:, None] if mp_scores.ndim == 1 else mp_scores
        if key.shape != y.shape:
            raise ValueError(f"mp_scores must have the labels' shape {tuple(y.shape)}, got "
                             f"{tuple(mp_scores.shape)}")
    if use_iput:
        if duration is None:
            raise ValueError("use_iput needs duration (n,) (the watch-time denominator of "
                             "IPUT); none was given (the dataset has no 'duration' column?)")
        cols = list(range(key.shape[1])) if iput_objectives is None else list(iput_objectives)
        bad = [c for c in cols if not isinstance(c, int) or not 0 <= c < key.shape[1]]
        if bad:
            raise ValueError(f"iput_objectives must be column indices in [0, "
                             f"{key.shape[1]}), got {bad}")
        key = key.clone()
        key[:, cols] = iput(key[:, cols].to(torch.float64), duration).to(key.dtype)
    return key


def _prior(up, down, key, i, j):
    return _ordered_mean(up, down, torch.sign(key[i] - key[j]))


def _posterior(up, down, y, i, j, pairs):
    dy = y[i] - y[j]                                                   # (T, K)
    if pairs == "objective":
        return _ordered_mean(up, down, torch.sign(dy))
    sign = torch.sign(dy.sum(1))                                       # count order
    favor = (dy * sign[:, None] > 0).to(up.dtype)          # objectives where the better wins
    share = favor / favor.sum(1, keepdim=True).clamp_min(1.0)
    per_pair = torch.where(sign > 0, up, down)
    return (per_pair @ share) / (sign != 0).sum().clamp_min(1).to(up.dtype)


def emer_prior(scores: torch.Tensor, labels: torch.Tensor, groups=None, mp_scores=None,
               duration=None, *, max_pairs: int = 1 << 18, use_iput: bool = False,
               iput_objectives: list[int] | None = None) -> torch.Tensor:
    """Per objective k: mean softplus(s_j - s_i) over same-request pairs with
    pxtr_k(i) > pxtr_k(j) (EMER eq. 4 with y_ij = 1[pxtr_i > pxtr_j])."""
    y, squeeze = _check(scores, labels, groups, max_pairs)
    key = _pxtr(y, mp_scores, duration, use_iput, iput_objectives)
    i, j = within_request_pairs(groups, y.shape[0], max_pairs, scores.device)
    up, down = _pair_losses(scores, i, j)
    return finish(_prior(up, down, key, i, j), squeeze)


def emer_posterior(scores: torch.Tensor, labels: torch.Tensor, groups=None, *,
                   pairs: str = "objective", max_pairs: int = 1 << 18) -> torch.Tensor:
    """Per objective: mean softplus(s_j - s_i) over same-request pairs ordered by the
    feedback (``pairs``: by objective k's label, or by the count of positives, EMER eq. 1)."""
    if pairs not in POSTERIOR_PAIRS:
        raise ValueError(f"pairs must be one of {POSTERIOR_PAIRS}, got {pairs!r}")
    y, squeeze = _check(scores, labels, groups, max_pairs)
    i, j = within_request_pairs(groups, y.shape[0], max_pairs, scores.device)
    up, down = _pair_losses(scores, i, j)
    return finish(_posterior(up, down, y, i, j, pairs), squeeze)


def emer(scores: torch.Tensor, labels: torch.Tensor, groups=None, mp_scores=None,
         duration=None, *, prior_weight: float = 1.0, pairs: str = "objective",
         max_pairs: int = 1 << 18, use_iput: bool = False,
         iput_objectives: list[int] | None = None) -> torch.Tensor:
    """EMER eq. 6 per objective: posterior + prior_weight * prior, on the same pairs."""
    if pairs not in POSTERIOR_PAIRS:
        raise ValueError(f"pairs must be one of {POSTERIOR_PAIRS}, got {pairs!r}")
    y, squeeze = _check(scores, labels, groups, max_pairs)
    key = _pxtr(y, mp_scores, duration, use_iput, iput_objectives)
    i, j = within_request_pairs(groups, y.shape[0], max_pairs, scores.device)
    up, down = _pair_losses(scores, i, j)
    per = _posterior(up, down, y, i, j, pairs) + prior_weight * _prior(up, down, key, i, j)
    return finish(per, squeeze)
