"""What one epoch of the training loop iterates: a batch source (docs/DESIGN.md, "Training
loop").

Every source has ``steps`` and ``rows`` and ``epoch(seed)``, which yields this worker's
batches of the epoch as TensorSplits on the device (``user`` left out); the loop
(:func:`trainables.loop._train_epoch`) steps on each one and does not know which source it
is:

- :class:`RowBatches`: rows of an in-memory shard, a seeded permutation cut into ``steps``
  parts of near-equal size;
- :class:`RequestBatches`: whole requests of an in-memory shard
  (:meth:`~trainables.requests.RequestIndex.epoch_batches`);
- :class:`StreamBatches`: a shard streamed from Parquet through a seeded shuffle buffer,
  as rows or as whole requests.

Every row, every epoch: a worker's shard is cut into ``steps = max over workers of
ceil(shard rows / batch rows)`` batches, so no row is dropped and every worker takes the
same number of steps (DDP needs that); a shorter shard gets slightly smaller batches. With
one worker and a batch size that divides the rows, the batches are exactly the loop's of
before. Shards (:func:`shard_cuts`) are contiguous ranges of the split in file order (for
whole requests, in request order, cut at request starts), the same rows in memory and
streamed.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Callable

import torch

from .data.tensors import TensorSplit


def shard_cuts(n: int, world: int, request_start: Callable[[int], int] | None = None) -> list[int]:
    """Worker w's rows are [cuts[w], cuts[w + 1]): near-equal contiguous ranges; with
    ``request_start`` (row -> the first request start at or after it), cut at requests."""
    cuts = [w * n // world for w in range(world + 1)]
    if request_start is not None:
        cuts = [0] + [request_start(c) for c in cuts[1:-1]] + [n]
        for w in range(1, world + 1):
            cuts[w] = max(cuts[w], cuts[w - 1])
    return cuts


def plan_steps(cuts: list[int], batch_rows: int, what: str = "rows") -> int:
    """Steps per epoch so that every worker's shard fits: max ceil(shard / batch_rows)."""
    sizes = [b - a for a, b in zip(cuts[:-1], cuts[1:])]
    if len(sizes) > 1 and min(sizes) == 0:
        raise ValueError(f"worker {sizes.index(0)} of {len(sizes)} has no training {what}: "
                         f"the train split has {cuts[-1]} rows; use fewer workers "
                         f"(resources.workers_per_trial) or more data")
    return max(1, max(math.ceil(s / batch_rows) for s in sizes))


def part_size(b: int, n: int, steps: int) -> int:
    """Rows of batch ``b`` when ``n`` rows are cut into ``steps`` near-equal parts."""
    return (b + 1) * n // steps - b * n // steps


def _train_rows(split: TensorSplit, idx) -> TensorSplit:
    """The rows a step needs (no user ids)."""
    return TensorSplit(split.scores[idx], split.labels[idx], split.cat[idx], split.num[idx],
                       None, split.request[idx],
                       None if split.duration is None else split.duration[idx])


def _request_error(rows: int, steps: int) -> ValueError:
    return ValueError(f"a request has more rows than a batch of about {rows // steps}; raise "
                      f"optim.batch_size")


class RowBatches:
    """An in-memory shard's rows, permuted each epoch, in ``steps`` near-equal batches."""

    def __init__(self, shard: TensorSplit, steps: int, device):
        self.shard, self.rows, self.steps, self.device = shard, len(shard), steps, device
        self.gen = torch.Generator(device=device)

    def epoch(self, seed: int):
        self.gen.manual_seed(seed)
        perm = torch.randperm(self.rows, device=self.device, generator=self.gen)
        for b in range(self.steps):
            yield _train_rows(self.shard, perm[b * self.rows // self.steps:
                                               (b + 1) * self.rows // self.steps])


class RequestBatches:
    """An in-memory shard's whole requests, permuted each epoch, cut into ``steps`` parts
    of near-equal rows (each request joins the part holding its middle row)."""

    def __init__(self, shard: TensorSplit, batch_rows: int, steps: int, world: int, device):
        from .requests import RequestIndex
        self.shard, self.rows, self.steps, self.world = shard, len(shard), steps, world
        self.batch_rows, self.index = batch_rows, RequestIndex.build(shard.request)
        self.gen = torch.Generator(device=device)

    def epoch(self, seed: int):
        self.gen.manual_seed(seed)
        perm, bounds = self.index.epoch_batches(self.batch_rows, self.gen, self.steps)
        if self.world > 1 and len(bounds) - 1 != self.steps:
            raise _request_error(self.rows, self.steps)
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield _train_rows(self.shard, perm[a:b])


class StreamBatches:
    """A shard streamed from Parquet (``reader``: a :class:`~trainables.data.stream.
    ParquetSplit`; ``spans``: its row ranges), shuffled in a buffer of ``buffer`` rows.

    Each epoch the spans are read in a seeded random order (in file order when the whole
    shard fits the buffer), by a background thread. Rows collect until the buffer holds
    more than ``buffer``; then the buffer is permuted and batches are taken from it until a
    quarter of it is left, which mixes with the next rows read; at the end everything left
    is permuted and taken. So a
    shard that fits in the buffer gets exactly the in-memory path's permutation and
    batches, and memory never holds more than about ``buffer`` + one batch + a few chunks
    of rows. Whole requests are shuffled as requests, like :class:`RequestBatches`.
    """

    def __init__(self, reader, spans, rows: int, stats, batch_rows: int, steps: int,
                 buffer: int, whole_requests: bool, world: int, device):
        self.reader, self.spans, self.rows, self.stats = reader, spans, rows, stats
        self.batch_rows, self.steps, self.buffer = batch_rows, steps, buffer
        self.whole_requests, self.world, self.device = whole_requests, world, device

    def _chunks(self, order):
        for i in order:
            if self.whole_requests:
                yield from self.reader.whole_requests(self.spans[i], self.stats, user=False)
            else:
                for _, t in self.reader.read(self.spans[i], self.stats, user=False):
                    yield t

    def _out(self, pool: TensorSplit, idx) -> TensorSplit:
        return _train_rows(pool, idx).to(self.device, non_blocking=True)

    def epoch(self, seed: int):
        gen = torch.Generator().manual_seed(seed)
        place = self._place_requests if self.whole_requests else self._place_rows
        self._b, self._t, self._acc, self._emitted = 0, 0, [], 0
        order = range(len(self.spans))
        if self.rows > self.buffer:
            order = torch.randperm(len(self.spans), generator=gen).tolist()
        pool, held = [], 0
        for t in _prefetched(self._chunks(order)):
            pool.append(t)
            held += len(t)
            if held > self.buffer:
                rest = yield from place(TensorSplit.concat(pool), gen, self.buffer // 4)
                pool, held = [rest], len(rest)
        if pool:
            yield from place(TensorSplit.concat(pool), gen, 0)
        if self.whole_requests and self._acc:
            yield self._flush()
        if self._t != self.rows:
            raise RuntimeError(f"streamed {self._t} rows; the shard has {self.rows}")
        if self.world > 1 and self._emitted != self.steps:   # an empty part: DDP would hang
            raise _request_error(self.rows, self.steps)

    def _place_rows(self, pool: TensorSplit, gen, keep: int):
        """Batches from the permuted pool while more than ``keep`` rows stay; the rest."""
        perm = torch.randperm(len(pool), generator=gen)
        pos = 0
        while self._b < self.steps:
            size = part_size(self._b, self.rows, self.steps)
            if keep and len(pool) - pos - size < keep:
                break
            yield self._out(pool, perm[pos:pos + size])
            pos, self._b, self._t, self._emitted = pos + size, self._b + 1, \
                self._t + size, self._emitted + 1
        return pool.take(perm[pos:])

    def _flush(self) -> TensorSplit:
        batch = TensorSplit.concat(self._acc)
        self._acc, self._emitted = [], self._emitted + 1
        return batch

    def _place_requests(self, pool: TensorSplit, gen, keep: int):
        """Requests of the pool (rows grouped by request) in a random order; each joins
        the batch that holds its middle row in the epoch, as in RequestIndex.epoch_batches;
        requests are placed while more than ``keep`` rows stay. Returns the rest."""
        n, dev = len(pool), pool.request.device
        first = torch.ones(n, dtype=torch.bool, device=dev)
        first[1:] = pool.request[1:] != pool.request[:-1]
        starts = first.nonzero().flatten()
        sizes = torch.diff(starts, append=torch.tensor([n], device=dev))
        perm = torch.randperm(len(starts), generator=gen)
        sz = sizes[perm]
        ends = sz.cumsum(0)
        j = len(perm) if not keep else int((n - ends >= keep).sum())
        placed = int(ends[j - 1]) if j else 0
        if j:
            st = ends[:j] - sz[:j]
            parts = torch.div((2 * (self._t + st) + sz[:j]) * self.steps, 2 * self.rows,
                              rounding_mode="floor")
            rows = _laid_out(starts[perm[:j]], sz[:j])
            change = torch.ones(j, dtype=torch.bool)
            change[1:] = parts[1:] != parts[:-1]
            heads = change.nonzero().flatten().tolist() + [j]
            for a, b in zip(heads[:-1], heads[1:]):
                p = int(parts[a])
                if p != self._b:
                    if self._acc:
                        yield self._flush()
                    self._b = p
                lo, hi = int(st[a]), int(ends[b - 1])
                self._acc.append(self._out(pool, rows[lo:hi]))
            self._t += placed
        return pool.take(_laid_out(starts[perm[j:]], sz[j:]))


def _prefetched(chunks, depth: int = 4):
    """``chunks`` read by a background thread, ``depth`` ahead: Parquet decoding and
    conversion (which release the GIL) overlap the training steps. Errors surface here."""
    q: queue.Queue = queue.Queue(depth)
    stop, done = threading.Event(), object()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        try:
            for x in chunks:
                if not put(x):
                    return
            put(done)
        except BaseException as e:   # noqa: BLE001 (handed to the consumer)
            put(_Failed(e))

    thread = threading.Thread(target=produce, name="paretune-stream", daemon=True)
    thread.start()
    try:
        while (x := q.get()) is not done:
            if isinstance(x, _Failed):
                raise x.error
            yield x
    finally:
        stop.set()
        thread.join()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def _laid_out(starts: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Row indices of runs ``[starts[i], starts[i] + sizes[i])`` laid end to end."""
    total = int(sizes.sum()) if len(sizes) else 0
    if not total:
        return torch.zeros(0, dtype=torch.int64)
    shift = torch.repeat_interleave(starts - (sizes.cumsum(0) - sizes), sizes,
                                    output_size=total)
    return shift + torch.arange(total)
