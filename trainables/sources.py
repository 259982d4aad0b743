"""The training loop's data: loaded into memory or streamed from Parquet, and this worker's
batch source and eval split (docs/DESIGN.md, "Data contract" and "Training loop").

    data = open_data(cfg["data"], path, objectives, eval_split, device)
    train, valid = data.sources(batch_size, eval_batch_size, rank, world,
                                whole_requests, eval_requests, device)

``data`` has the layout a model and a checkpoint need (``objectives``, ``categorical``,
``numeric``, ``has_duration``). ``train`` is a batch source (:mod:`trainables.batches`);
``valid`` is the eval split as a TensorSplit (one process, in memory: exactly as before) or
an :class:`~trainables.distributed.EvalShard` (several workers, or streaming), which
``trainables.step.evaluate`` scores and gathers.

``data.stream`` (:mod:`trainables.data.location`): ``false`` loads, ``true`` streams,
``auto`` streams a dataset at a URI or one whose train split would take more than
``STREAM_AUTO_BYTES`` as tensors.
"""
from __future__ import annotations

import torch

from .batches import RequestBatches, RowBatches, StreamBatches, plan_steps, shard_cuts
from .data.location import STREAM_AUTO_BYTES, DataLocation, tensor_bytes
from .distributed import EvalShard, eval_cuts


def open_data(data_cfg: dict, path, objectives, eval_split: str, device):
    """The dataset at ``path`` in memory (:class:`InMemory`) or streamed (:class:`Streamed`)
    as ``data_cfg['stream']`` says."""
    location = DataLocation(path, data_cfg.get("endpoint"))
    stream = data_cfg.get("stream", "auto")
    if stream == "auto":
        stream = not location.local or _too_big(location, objectives)
    if not stream and not location.local:
        raise ValueError(f"data.path = {location.uri} is a URI and data.stream = false; the "
                         f"in-memory loader reads local folders only. Set data.stream to "
                         f"true or auto (stream it), or copy the dataset to a local folder")
    if stream:
        return Streamed(location, objectives, eval_split,
                        int(data_cfg.get("shuffle_buffer") or 1_000_000))
    return InMemory(location.root, objectives, eval_split, device)


def _too_big(location: DataLocation, objectives) -> bool:
    """Whether the train split's tensors would exceed STREAM_AUTO_BYTES (from the Parquet
    metadata and meta.yaml; no rows read)."""
    meta = location.meta()
    pf = location.open("train")
    names = pf.schema_arrow.names
    cat = meta.get("categorical") or {}
    num = meta.get("numeric")
    n_num = len(num) if num is not None else sum(
        c.startswith("feat_") and c not in cat for c in names)
    k = len(objectives) if objectives is not None else len(meta["objectives"])
    return tensor_bytes(pf.metadata.num_rows, k, len(cat), n_num,
                        "duration" in names) > STREAM_AUTO_BYTES


def _starts_fn(starts: torch.Tensor, n: int):
    """row -> the first request start at or after it (``starts``: ascending)."""
    def first(row: int) -> int:
        i = int(torch.searchsorted(starts, torch.tensor([row], device=starts.device)))
        return int(starts[i]) if i < len(starts) else n
    return first


class InMemory:
    """Both splits as TensorSplits on the device (:func:`~trainables.data.load_dataset`)."""
    stream = False

    def __init__(self, path, objectives, eval_split: str, device):
        from .data import load_dataset
        ds = load_dataset(path, objectives, splits=["train", eval_split])
        self.objectives, self.categorical, self.numeric = ds.objectives, ds.categorical, \
            ds.numeric
        self.train = ds.tensors("train", device)
        self.valid = ds.tensors(eval_split, device)
        ds.splits.clear()                      # the tensors hold the rows now
        self.has_duration = self.train.duration is not None

    def sources(self, batch_size: int, eval_batch_size: int, rank: int, world: int,
                whole_requests: bool, eval_requests: bool, device):
        from .requests import RequestIndex
        train, n = self.train, len(self.train)
        bs = max(1, batch_size // world)
        if whole_requests:
            idx = RequestIndex.build(train.request)
            cuts = shard_cuts(n, world, _starts_fn(idx.offsets, n) if world > 1 else None)
            steps = plan_steps(cuts, bs, "requests")
            shard = train if world == 1 else train.take(idx.order[cuts[rank]:cuts[rank + 1]])
            source = RequestBatches(shard, bs, steps, world, device)
        else:
            cuts = shard_cuts(n, world)
            steps = plan_steps(cuts, bs)
            shard = train if world == 1 else train.take(
                torch.arange(cuts[rank], cuts[rank + 1], device=train.scores.device))
            source = RowBatches(shard, steps, device)
        self.train = None                      # only this worker's shard stays
        if world == 1:
            return source, self.valid
        return source, self._eval_shard(eval_batch_size, rank, world, eval_requests, device)

    def _eval_shard(self, batch_rows: int, rank: int, world: int, requests: bool, device):
        valid, n = self.valid, len(self.valid)
        if requests:
            from .requests import RequestIndex
            idx = RequestIndex.build(valid.request)
            mine = EvalShard.share(eval_cuts(n, batch_rows, _starts_fn(idx.offsets, n)),
                                   rank, world)
            take = lambda a, b: valid.take(idx.order[a:b])  # noqa: E731
        else:
            mine = EvalShard.share(eval_cuts(n, batch_rows, None), rank, world)
            take = valid.rows
        return EvalShard(lambda: (take(a, b) for a, b in zip(mine[:-1], mine[1:])), device)


class Streamed:
    """Both splits read from Parquet as needed (:class:`~trainables.data.stream.StreamData`);
    a worker reads only its own rows of the train split and its share of the eval split."""
    stream = True

    def __init__(self, location: DataLocation, objectives, eval_split: str, buffer: int):
        from .data.stream import StreamData
        self.data = StreamData(location, objectives, ["train", eval_split])
        self.objectives, self.categorical, self.numeric = self.data.objectives, \
            self.data.categorical, self.data.numeric
        self.eval_split, self.buffer = eval_split, buffer
        self.has_duration = self.data.has_duration()

    def sources(self, batch_size: int, eval_batch_size: int, rank: int, world: int,
                whole_requests: bool, eval_requests: bool, device):
        stats = self.data.numeric_stats()
        train = self.data.splits["train"]
        bs = max(1, batch_size // world)
        cuts = shard_cuts(train.n, world,
                          train.request_start if whole_requests and world > 1 else None)
        steps = plan_steps(cuts, bs, "requests" if whole_requests else "rows")
        a, b = cuts[rank], cuts[rank + 1]
        source = StreamBatches(train, train.spans(a, b, whole_requests), b - a, stats, bs,
                               steps, max(self.buffer, 1), whole_requests, world, device)
        valid = self.data.splits[self.eval_split]
        mine = EvalShard.share(eval_cuts(valid.n, eval_batch_size,
                                         valid.request_start if eval_requests else None),
                               rank, world)
        chunks = lambda: valid.ranges(mine, stats, eval_requests) if len(mine) > 1 \
            else iter(())  # noqa: E731
        return source, EvalShard(chunks, device)
