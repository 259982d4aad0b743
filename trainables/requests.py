"""Request-level data organization (EMER: docs/DESIGN.md, "EMER" and "Training loop").

A component that must see whole requests declares it, and the one training loop
(``trainables.loop``) adapts; nothing else changes for the others:

- a **model** with the class attribute ``needs_requests = True`` is called
  ``model(scores, cat, num, groups)`` with the batch's request ids (n,);
- a **loss** that names ``groups`` among its data arguments (the parameters *before* the
  ``*``; hyper-parameters are keyword-only after it) gets ``groups=`` the request ids.

Either one switches the loop to request batches: per epoch the requests are permuted
(seeded like the row permutation) and consecutive requests are taken until about
``batch_size`` rows, so every batch holds whole requests and every row is seen once.
Evaluation cuts its batches at request boundaries too. Everything here is vectorized
(sorts, offsets, ``repeat_interleave``): no Python loop over rows or requests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import functional_call

from .population import PopulationModel


def needs_requests(model) -> bool:
    """Whether ``model`` (or the module a DDP wrapper holds) must be given request ids."""
    return bool(getattr(getattr(model, "module", model), "needs_requests", False))


def request_layout(groups: torch.Tensor):
    """Rows grouped by request id, ties in input order.

    Returns ``order`` (n,): the rows sorted by request; ``rid`` (n,): each *sorted* row's
    0-based request index; ``counts`` (R,) and ``starts`` (R,): each request's size and
    first position in ``order``.
    """
    order = torch.sort(groups, stable=True).indices
    _, rid, counts = torch.unique_consecutive(groups[order], return_inverse=True,
                                              return_counts=True)
    starts = counts.cumsum(0) - counts
    return order, rid, counts, starts


@dataclass
class RequestIndex:
    """The requests of a split: rows sorted by request, and each request's offset, size."""

    order: torch.Tensor     # (n,) row indices sorted by request id
    offsets: torch.Tensor   # (R,) first position of each request in ``order``
    sizes: torch.Tensor     # (R,) rows per request

    @classmethod
    def build(cls, request: torch.Tensor) -> "RequestIndex":
        order, _, counts, starts = request_layout(request)
        return cls(order, starts, counts)

    def __len__(self) -> int:
        return self.sizes.shape[0]

    @property
    def rows(self) -> int:
        return self.order.shape[0]

    def epoch_batches(self, batch_size: int, generator: torch.Generator | None = None,
                      n_batches: int | None = None) -> tuple[torch.Tensor, list[int]]:
        """One epoch of request batches: ``(rows, bounds)``, batch b being
        ``rows[bounds[b]:bounds[b + 1]]``.

        The requests are permuted with ``generator`` and laid end to end; the sequence is
        cut into ``n_batches`` (default ceil(rows / batch_size)) parts of about equal row
        counts, each request going to the part that holds its middle row. So a batch has
        about rows / n_batches <= batch_size rows, give or take one request, and is empty
        only when a request is larger than that (empty batches are dropped).
        """
        n, dev = self.rows, self.order.device
        if n_batches is None:
            n_batches = max(1, math.ceil(n / batch_size))
        perm = torch.randperm(len(self), device=dev, generator=generator)
        sizes = self.sizes[perm]
        ends = sizes.cumsum(0)
        starts = ends - sizes
        # row t of the epoch is row (t - start of its request) of that request
        shift = torch.repeat_interleave(self.offsets[perm] - starts, sizes, output_size=n)
        rows = self.order[shift + torch.arange(n, device=dev)]
        part = torch.div((2 * starts + sizes) * n_batches, 2 * n, rounding_mode="floor")
        per_part = torch.zeros(n_batches, dtype=torch.int64, device=dev)
        per_part.scatter_add_(0, part, sizes)
        bounds = [0] + per_part[per_part > 0].cumsum(0).tolist()
        return rows, bounds

    def chunks(self, max_rows: int) -> list[int]:
        """Bounds in ``order`` that cut it into chunks of whole requests: a request joins
        the chunk in which it starts, so a chunk has at most max_rows + (its last
        request's size - 1) rows."""
        return chunk_bounds(self.offsets, self.rows, max_rows)


def chunk_bounds(starts: torch.Tensor, n: int, max_rows: int) -> list[int]:
    """Cut positions [0, ..., n] of rows sorted by request (``starts``: each request's
    first position) into chunks of about ``max_rows`` rows of whole requests."""
    if n <= max_rows:
        return [0, n]
    part = torch.div(starts, max_rows, rounding_mode="floor")
    first = torch.ones_like(part, dtype=torch.bool)
    first[1:] = part[1:] != part[:-1]
    return starts[first].tolist() + [n]


def shard_requests(request: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rows of every ``world``-th request (by sorted id) starting at ``rank``: the rows a
    data-parallel worker trains on when batches must hold whole requests."""
    idx = RequestIndex.build(request)
    mine = torch.arange(rank, len(idx), world, device=request.device)
    sizes = idx.sizes[mine]
    n = int(sizes.sum())
    local = torch.arange(n, device=request.device) - \
        torch.repeat_interleave(sizes.cumsum(0) - sizes, sizes, output_size=n)
    return idx.order[torch.repeat_interleave(idx.offsets[mine], sizes, output_size=n) + local]


@torch.no_grad()
def predict_by_request(model, split, batch_size: int) -> torch.Tensor:
    """Scores of a request model on every row of a TensorSplit: batches of whole requests
    (about ``batch_size`` rows), returned in the split's row order; (n,) or (P, n)."""
    idx = RequestIndex.build(split.request)
    bounds = idx.chunks(batch_size)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        r = idx.order[a:b]
        out.append(model(split.scores[r], split.cat[r], split.num[r], split.request[r]))
    s = torch.cat(out, dim=-1)
    inverse = torch.empty_like(idx.order)
    inverse[idx.order] = torch.arange(idx.rows, device=idx.order.device)
    return s[..., inverse]


class RequestPopulationModel(PopulationModel):
    """:class:`~trainables.population.PopulationModel` for a model that needs requests:
    forward takes the batch's request ids, passes them to every member (not vmapped: the
    members share the batch) and, when the rows are run in chunks (CPU), cuts the chunks
    at request boundaries."""

    needs_requests = True

    def __init__(self, members, chunk_rows: int | None = None):
        super().__init__(members, chunk_rows)
        self._vmapped_groups = torch.vmap(self._one_groups, in_dims=(0, None, None, None, None),
                                          randomness="different")

    def _one_groups(self, params, scores, cat, num, groups):
        buffers = {n: getattr(self, "buf__" + n.replace(".", "__")) for n in self._buffer_names}
        return functional_call(self._base, (params, buffers), (scores, cat, num, groups))

    def forward(self, scores, cat, num, groups=None):
        if groups is None:   # the whole batch is one request, as for a member alone
            groups = torch.zeros(scores.shape[0], dtype=torch.int64, device=scores.device)
        params = self.stacked()
        n = scores.shape[0]
        chunk = self._chunk(scores)
        if chunk >= n:
            return self._vmapped_groups(params, scores, cat, num, groups)
        order, _, _, starts = request_layout(groups)
        bounds = chunk_bounds(starts, n, chunk)
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            r = order[a:b]
            out.append(self._vmapped_groups(params, scores[r], cat[r], num[r], groups[r]))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(n, device=order.device)
        return torch.cat(out, dim=1)[:, inverse]
