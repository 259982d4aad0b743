"""A split (or a streamed chunk of one) held as tensors on one device and batched by index
(no per-sample Python)."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class TensorSplit:
    scores: torch.Tensor     # (n, K) float32 in [0, 1]
    labels: torch.Tensor     # (n, K) float32 0/1 (float: losses take matrix products with it)
    cat: torch.Tensor        # (n, C) int64 categorical codes
    num: torch.Tensor        # (n, F) float32, standardized with the training split's stats
    user: torch.Tensor       # (n,) int64
    request: torch.Tensor    # (n,) int64
    duration: torch.Tensor | None = None   # (n,) float32 > 0 when the data has `duration`

    def __len__(self) -> int:
        return self.scores.shape[0]

    @classmethod
    def from_dataset(cls, ds, split: str, device="cpu") -> "TensorSplit":
        return cls.from_columns(ds.splits[split], ds.objectives, ds.categorical, ds.numeric,
                                ds.numeric_stats(), device)

    @classmethod
    def from_columns(cls, cols: dict, objectives, categorical, numeric, stats,
                     device="cpu", user: bool = True) -> "TensorSplit":
        """Rows from numpy columns named as the data contract names them (a whole split
        or a streamed chunk); numeric features standardized with ``stats`` = (mean, std)
        of the training split. ``user=False`` leaves the user ids out (training batches
        do not use them)."""
        n = len(cols["request_id"])
        scores = np.stack([cols[f"score_{o}"] for o in objectives], 1).astype(np.float32,
                                                                                copy=False)
        labels = np.stack([cols[f"label_{o}"] for o in objectives], 1).astype(np.float32,
                                                                                copy=False)
        cat = np.stack([cols[c] for c in categorical], 1).astype(np.int64, copy=False) \
            if categorical else np.zeros((n, 0), np.int64)
        if numeric:
            mean, std = stats
            num = (np.stack([cols[c] for c in numeric], 1).astype(np.float32) - mean) / std
        else:
            num = np.zeros((n, 0), np.float32)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        duration = t(cols["duration"].astype(np.float32)) if "duration" in cols else None
        # ids: no copy unless Arrow's buffer is read-only (torch wants writable memory)
        ids = lambda c: t(cols[c].astype(np.int64, copy=not cols[c].flags.writeable))  # noqa
        return cls(t(scores), t(labels), t(cat), t(num), ids("user_id") if user else None,
                   ids("request_id"), duration)

    @classmethod
    def concat(cls, parts: list["TensorSplit"]) -> "TensorSplit":
        """The rows of ``parts``, one after another."""
        if len(parts) == 1:
            return parts[0]
        return cls(*(None if getattr(parts[0], f.name) is None else
                     torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def to(self, device, non_blocking: bool = False) -> "TensorSplit":
        return TensorSplit(*(None if (v := getattr(self, f.name)) is None else
                             v.to(device, non_blocking=non_blocking) for f in fields(self)))

    def _rows(self, key) -> "TensorSplit":
        return TensorSplit(*(None if (v := getattr(self, f.name)) is None else v[key]
                             for f in fields(self)))

    def take(self, idx: torch.Tensor) -> "TensorSplit":
        """Rows ``idx`` of every field (a gather on the device)."""
        return self._rows(idx)

    def rows(self, start: int, stop: int) -> "TensorSplit":
        """Rows ``start:stop`` (views, no copy)."""
        return self._rows(slice(start, stop))

    def shard(self, rank: int, world: int) -> "TensorSplit":
        """Every ``world``-th row starting at ``rank`` (data-parallel workers)."""
        if world == 1:
            return self
        return self._rows(slice(rank, None, world))
