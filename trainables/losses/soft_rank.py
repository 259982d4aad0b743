"""Exact soft ranks in parallel torch ops: torchsort's ``soft_rank`` (l2) for long rows.

Blondel et al. 2020 ("Fast Differentiable Sorting and Ranking", Prop. 3): the l2 soft
rank of x with strength eps is the projection of theta = x / eps onto the permutahedron.
With s = theta sorted descending and w = (n, ..., 1), the ranks in sorted order are
s - v, where v is the non-increasing isotonic regression of y = s - w. torchsort solves
it with pool-adjacent-violators (PAV), sequentially per row: its CUDA kernel runs a whole
row on one GPU thread.

Here v comes from geometry instead. With C_k = y_0 + ... + y_{k-1} (k = 0..n), PAV's
blocks are the edges of the least concave majorant of the points (k, C_k) (its upper
hull), and v on a block is the edge's slope, the block's mean of y. The hull is built in
O(log^2 n) dependent steps of vectorized work over every row and segment at once:

1. candidates: the points that can be vertices. k is one only if y_{k-1} > y_k (a gap
   > 1 between neighbouring sorted thetas); a few rounds then drop every candidate
   that lies on or below the chord of its neighbours (never a vertex of the hull);
2. divide and conquer over the candidates: at level l the hulls of adjacent runs of
   2^(l-1) candidates merge through their bridge, the common tangent. Every left vertex
   binary-searches its tangent to the right hull; the bridge is the tangent whose height
   between the two runs is largest.

At most O(n log^2 n) work. Exact: the same blocks as PAV, values from block sums in
float64 (prefix sums of the centred thetas; the w part exactly, as integers held in
float64). Backward: the Jacobian of
isotonic regression averages within blocks (Blondel et al. sec. 5), with torchsort's
partition (adjacent values within 1e-9 share a block), so gradients match torchsort's.
Only the l2 regularization; any floating dtype, computed in float64, returned as input.
"""
from __future__ import annotations

import torch

PARTITION_TOL = 1e-9     # torchsort's: neighbouring solution values this close share a block
PRUNE_ROUNDS = 16        # chord-pruning rounds; a cascade that needs more: divide and conquer


def soft_rank(values: torch.Tensor, regularization: str = "l2",
              regularization_strength: float = 1.0) -> torch.Tensor:
    """Soft ranks of each row of the 2-d ``values``, equal to ``torchsort.soft_rank``
    with ``regularization="l2"`` (values and gradients), computed in parallel torch ops
    on the input's device."""
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-d tensor (rows are ranked), got shape "
                         f"{tuple(values.shape)}")
    if regularization != "l2":
        raise ValueError(f"the parallel soft rank supports regularization 'l2' only, got "
                         f"{regularization!r} (use torchsort for 'kl')")
    if not regularization_strength > 0:
        raise ValueError(f"regularization_strength must be > 0, got {regularization_strength}")
    if not values.is_floating_point():
        raise ValueError(f"values must be floating point, got {values.dtype}")
    return _SoftRank.apply(values, float(regularization_strength))


class _SoftRank(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, strength):
        scale = 1.0 / strength
        theta = values * scale                         # as torchsort, for the same rounding
        s, perm = torch.sort(theta, dim=1, descending=True)
        dual = isotonic_l2_ranks(s)
        ranks = torch.empty_like(values).scatter_(1, perm, (s.double() - dual).to(values.dtype))
        start = torch.ones_like(dual, dtype=torch.bool)
        start[:, 1:] = (dual[:, 1:] - dual[:, :-1]).abs() > PARTITION_TOL
        ctx.save_for_backward(perm, start)
        ctx.scale = scale
        return ranks

    @staticmethod
    def backward(ctx, grad):
        perm, start = ctx.saved_tensors
        g = grad.gather(1, perm).double()
        a, b = _block_bounds(start)
        cs = torch.nn.functional.pad(g.cumsum(1), (1, 0))
        g = g - (cs.gather(1, b) - cs.gather(1, a)) / (b - a)
        out = torch.empty_like(grad).scatter_(1, perm, (g * ctx.scale).to(grad.dtype))
        return out, None


def isotonic_l2_ranks(s: torch.Tensor) -> torch.Tensor:
    """v: the non-increasing isotonic regression of y = s - (n, ..., 1), per row, for rows
    ``s`` sorted descending (torchsort's ``isotonic_l2(s - w)``), as float64."""
    p, n = s.shape
    s = s.double()
    if n == 0:
        return s.clone()
    c = s.mean(1, keepdim=True)                         # centred: small prefix sums
    S = torch.nn.functional.pad((s - c).cumsum(1), (1, 0))
    cand = torch.ones(p, n + 1, dtype=torch.bool, device=s.device)
    cand[:, 1:n] = (s[:, :-1] - s[:, 1:]) > 1           # y_{k-1} > y_k
    vertex = _hull(S, cand, n)
    a, b = _block_bounds(vertex[:, :n])
    sums = S.gather(1, b) - S.gather(1, a) - _w_sum(a.double(), b.double(), n)
    return sums / (b - a) + c


# --------------------------------------------------------------------------- helpers
def _w_sum(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """sum_{a <= i < b} (n - i) for float64 positions: exact (an even integer product
    below 2^53, halved) for n up to 10^7."""
    return (b - a) * (2 * n + 1 - a - b) * 0.5


def _block_bounds(start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For (P, n) block-start flags (column 0 set): each position's block [a, b)."""
    p, n = start.shape
    pos = torch.arange(n, device=start.device).expand(p, n)
    a = torch.where(start, pos, 0).cummax(1).values
    end = torch.ones_like(start)
    end[:, :-1] = start[:, 1:]
    b = torch.where(end, pos + 1, n).flip(1).cummin(1).values.flip(1)
    return a, b


def _at(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """x[i] for 1-d x: index_select, many times faster than advanced indexing on CPU."""
    return x.index_select(0, i)


def _where(mask: torch.Tensor) -> torch.Tensor:
    return mask.nonzero().squeeze(1)


def _diff(S, K, i, j, n):
    """C_j - C_i up to the shear c*k (which keeps the hull): prefix sums of the centred
    thetas minus the exact sum of w between the two positions."""
    return _at(S, j) - _at(S, i) - _w_sum(_at(K, i), _at(K, j), n)


def _hull(S: torch.Tensor, cand: torch.Tensor, n: int) -> torch.Tensor:
    """(P, n+1) flags of the upper-hull vertices of the points (k, C_k) of every row,
    given candidate flags that include every vertex and both ends."""
    p = cand.shape[0]
    flat = _where(cand.reshape(-1))
    row, K, Sv = flat // (n + 1), (flat % (n + 1)).double(), _at(S.reshape(-1), flat)
    for _ in range(PRUNE_ROUNDS):
        keep = _chord_keep(Sv, K, row, n)
        kept = _where(keep)
        if kept.numel() == flat.numel():      # concave at every candidate: the hull itself
            return _flags(flat, p, n)
        flat, row, K, Sv = (_at(x, kept) for x in (flat, row, K, Sv))
    counts = torch.bincount(row, minlength=p)
    rank = torch.arange(flat.numel(), device=flat.device) - _at(counts.cumsum(0) - counts, row)
    alive = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    for level in range(1, (int(counts.max()) - 1).bit_length() + 1):
        idx = _where(alive)
        keep = _merge_level(*(_at(x, idx) for x in (Sv, K, row, rank)), level, n)
        alive.index_fill_(0, _at(idx, _where(~keep)), False)
    return _flags(_at(flat, _where(alive)), p, n)


def _flags(flat, p, n):
    out = torch.zeros(p * (n + 1), dtype=torch.bool, device=flat.device)
    return out.index_fill_(0, flat, True).view(p, n + 1)


def _chord_keep(Sv, K, row, n):
    """Candidates to keep: row ends, and points strictly above the chord of neighbours."""
    m = K.numel()
    j = torch.arange(m, device=K.device)
    prev, nxt = (j - 1).clamp_min(0), (j + 1).clamp_max(m - 1)
    inner = (_at(row, prev) == row) & (_at(row, nxt) == row) & (j > 0) & (j < m - 1)
    left = _diff(Sv, K, prev, j, n) * (_at(K, nxt) - K)
    right = _diff(Sv, K, j, nxt, n) * (K - _at(K, prev))
    return ~inner | (left > right)


def _merge_level(Sv, K, row, rank, level, n):
    """One divide-and-conquer level over the alive candidates (sorted by row, position):
    merge the hulls of rank runs [2g h, (2g+1) h) and [(2g+1) h, (2g+2) h), h = 2^(level-1).
    Returns which candidates stay vertices."""
    m = K.numel()
    pos = torch.arange(m, device=K.device)
    half = (rank >> (level - 1)) & 1
    groups = int(rank.max()) >> level if m else 0
    key = ((row * (groups + 1) + (rank >> level)) << 1) | half       # sorted
    rstart = torch.searchsorted(key, key | 1)                         # the group's right run
    rend = torch.searchsorted(key, (key | 1) + 1)
    left = half == 0
    has_right = rend > rstart
    active = left & has_right
    # each left vertex's tangent to the right hull: the first right vertex whose next
    # vertex lies strictly below the line from the left vertex through it
    lo = torch.where(active, rstart, pos)
    hi = torch.where(active, rend - 1, pos)
    for _ in range(level - 1):
        mid = (lo + hi) >> 1
        nxt = (mid + 1).clamp_max(m - 1)
        k_mid, k_nxt = _at(K, mid), _at(K, nxt)
        below = _diff(Sv, K, mid, nxt, n) * (k_mid - K) < \
            _diff(Sv, K, pos, mid, n) * (k_nxt - k_mid)
        open_ = lo < hi
        hi = torch.where(open_ & below, mid, hi)
        lo = torch.where(open_ & ~below, mid + 1, lo)
    b = lo
    # bridge: the tangent highest at x0, between the two runs (relative to C at rstart)
    r0 = torch.where(active, rstart, pos)
    x0 = 0.5 * (_at(K, (r0 - 1).clamp_min(0)) + _at(K, r0))
    span = (_at(K, b) - K).clamp_min(1)
    h = _diff(Sv, K, r0, pos, n) + _diff(Sv, K, pos, b, n) * (x0 - K) / span
    h = torch.where(active, h, -torch.inf)
    g = torch.where(active, rstart, 0)
    hmax = torch.full((m,), -torch.inf, dtype=h.dtype, device=h.device).scatter_reduce(
        0, g, h, "amax")
    best = active & (h == _at(hmax, g))
    apos = torch.full((m,), m, device=K.device).scatter_reduce(
        0, g, torch.where(best, pos, m), "amin")                       # leftmost on ties
    chosen = best & (pos == _at(apos, g))
    bpos = torch.zeros(m, dtype=torch.long, device=K.device).scatter_reduce(
        0, g, torch.where(chosen, b, 0), "amax")
    gi = rstart.clamp_max(m - 1)                 # (rstart = m only where there is no right run)
    return ~has_right | (left & (pos <= _at(apos, gi))) | (~left & (pos >= _at(bpos, gi)))
