"""A split held as tensors on one device and batched by index (no per-sample Python)."""
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
        cols = ds.splits[split]
        n = len(cols["request_id"])
        scores = np.stack([cols[f"score_{o}"] for o in ds.objectives], 1).astype(np.float32)
        labels = np.stack([cols[f"label_{o}"] for o in ds.objectives], 1).astype(np.float32)
        cat = np.stack([cols[c] for c in ds.categorical], 1).astype(np.int64) if ds.categorical \
            else np.zeros((n, 0), np.int64)
        if ds.numeric:
            mean, std = ds.numeric_stats()
            num = (np.stack([cols[c] for c in ds.numeric], 1).astype(np.float32) - mean) / std
        else:
            num = np.zeros((n, 0), np.float32)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        duration = t(cols["duration"].astype(np.float32)) if "duration" in cols else None
        return cls(t(scores), t(labels), t(cat), t(num),
                   t(cols["user_id"].astype(np.int64)), t(cols["request_id"].astype(np.int64)),
                   duration)

    def _rows(self, key) -> "TensorSplit":
        return TensorSplit(*(None if (v := getattr(self, f.name)) is None else v[key]
                             for f in fields(self)))

    def take(self, idx: torch.Tensor) -> "TensorSplit":
        """Rows ``idx`` of every field (a gather on the device)."""
        return self._rows(idx)

    def shard(self, rank: int, world: int) -> "TensorSplit":
        """Every ``world``-th row starting at ``rank`` (data-parallel workers)."""
        if world == 1:
            return self
        return self._rows(slice(rank, None, world))
