"""Data-parallel workers of the training loop: who this worker is, sums over workers, and
exact evaluation of sharded eval data (docs/DESIGN.md, "Training loop").

The loop is data parallel inside a Ray Train worker group, or under any launcher that has
initialized ``torch.distributed`` (e.g. two processes with gloo, as the tests and
``benchmarks/data.py`` do); otherwise it is one process. Evaluation is exact with any
number of workers: each scores its share of the eval split (:class:`EvalShard`: whole
eval batches, cut where one process's :func:`~trainables.step.predict` cuts them, so every
row gets the very score one process gives it), then the scores, labels, users and
requests of every worker are gathered (``torch.distributed.all_gather``, padded to equal
length) and each worker computes the metrics of ``trainables.metrics`` on the whole split,
the very numbers one process computes. No histogram, no approximation.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch

from .data.tensors import TensorSplit


def _dist():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def rank_world(ray_ctx=None) -> tuple[int, int]:
    """(rank, world size): Ray Train's, else torch.distributed's, else (0, 1)."""
    if ray_ctx is not None:
        return ray_ctx.get_world_rank(), ray_ctx.get_world_size()
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)


def wrap_model(model: torch.nn.Module, device, ray_ctx) -> torch.nn.Module:
    """The model wrapped for data parallelism: Ray Train's ``prepare_model``, or plain
    DistributedDataParallel under another launcher."""
    if ray_ctx is not None:
        import ray.train.torch
        return ray.train.torch.prepare_model(model)
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _device():
    dist = _dist()
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` (float64) summed over every worker."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return values
    t = values.to(_device(), torch.float64)
    dist.all_reduce(t)
    return t.to(values.device)


def all_rows(t: torch.Tensor | None) -> torch.Tensor:
    """Every worker's ``t`` ((n,) or (n, d); None for no rows) concatenated along the rows
    in rank order, on every worker (``all_gather``: gloo on CPU, nccl on GPU); shorter
    parts are padded for the transfer and cut back after."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return t
    dev, world = _device(), dist.get_world_size()
    code = {None: -1, torch.float32: 0, torch.float64: 1, torch.int64: 2, torch.uint8: 3}
    shape = [0, -1, -1, -1] if t is None else \
        [t.shape[0], t.dim(), t.shape[1] if t.dim() > 1 else 0, code[t.dtype]]
    metas = [torch.zeros(4, dtype=torch.int64, device=dev) for _ in range(world)]
    dist.all_gather(metas, torch.tensor(shape, device=dev))
    sizes = [int(m[0]) for m in metas]
    _, ndim, width, kind = next(m.tolist() for m in metas if m[1] >= 0)
    dtype = {v: k for k, v in code.items()}[kind]
    padded = torch.zeros((max(sizes),) + ((width,) if ndim > 1 else ()), dtype=dtype, device=dev)
    if t is not None and len(t):
        padded[:len(t)] = t.to(dev)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])


def eval_cuts(n: int, batch_rows: int, request_start: Callable[[int], int] | None) -> list[int]:
    """Where one process's predict cuts an eval split of ``n`` rows into batches: every
    ``batch_rows`` rows, or for whole requests (``request_start``: row -> the first
    request start at or after it) at the first request starting in each such stretch."""
    cuts = list(range(0, n, batch_rows)) + [n]
    if request_start is not None and n > batch_rows:
        cuts = sorted({0, n} | {request_start(c) for c in cuts[1:-1]})
    return cuts


class EvalShard:
    """This worker's share of the eval split: ``chunks()`` yields its eval batches (a
    contiguous run of the split's batches) in order. :meth:`predict` scores them and
    gathers every worker's scores; ``labels``, ``user`` and ``request`` are the whole
    split's (gathered once), so ``trainables.step`` computes exact metrics from them as
    from an in-memory split."""

    def __init__(self, chunks: Callable[[], Iterator[TensorSplit]], device):
        self.chunks, self.device = chunks, device
        self.labels = self.user = self.request = None

    @staticmethod
    def share(cuts: list[int], rank: int, world: int) -> list[int]:
        """The cuts of worker ``rank``'s batches: a contiguous run of the split's."""
        c = len(cuts) - 1
        return cuts[rank * c // world:(rank + 1) * c // world + 1]

    def predict(self, model, batch_size: int) -> torch.Tensor:
        """Scores of the whole split in split order, (n,) or (P, n), on every worker."""
        from .step import predict
        first = self.labels is None
        scores, labels, users, requests = [], [], [], []
        for chunk in self.chunks():
            chunk = chunk.to(self.device)
            s = predict(model, chunk, batch_size)
            scores.append(s.T if s.dim() > 1 else s)
            if first:
                labels.append(chunk.labels.to(torch.uint8))
                users.append(chunk.user)
                requests.append(chunk.request)
        cat = (lambda xs: torch.cat(xs) if xs else None)  # noqa: E731
        if first:
            self.labels, self.user, self.request = (
                all_rows(cat(x)).to(self.device) for x in (labels, users, requests))
        s = all_rows(cat(scores)).to(self.device)
        return s.T.contiguous() if s.dim() > 1 else s
