"""Integer codes for the MP model's inputs, fitted on the raw training rows only.

:class:`FeatureCodes` turns a raw frame into what every model of the project takes,
categorical codes (n, F) and standardized numbers (n, N), and describes them with the
:class:`~trainables.models._features.FeatureSpec` that the shared
:class:`~trainables.models._features.FeatureEncoder` embeds (the ME models' one too).

Each categorical (or id) column gets a :class:`Vocab`: the values seen when fitting get
codes 1..n, everything else (unseen later, or missing) the reserved code 0 "unknown".
An id column with more distinct values than ``max_ids`` is hashed into ``max_ids - 1``
buckets instead (codes 1..max_ids-1; unseen ids still 0). Numeric columns are
standardized with the fitting rows' mean and std (missing -> 0, the mean).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..models._features import FeatureSpec

MAX_IDS = 500_000


@dataclass
class Vocab:
    """Codes of one column: 0 unknown, 1.. the fitted values (or their hash buckets)."""

    name: str
    values: pd.Index
    buckets: int = 0            # > 0: hashed into that many buckets

    @classmethod
    def fit(cls, name: str, column: pd.Series, max_size: int | None = None) -> "Vocab":
        seen = pd.Index(pd.unique(column.dropna())).sort_values()
        if max_size is not None and len(seen) > max_size - 1:
            return cls(name, seen, buckets=max_size - 1)
        return cls(name, seen)

    @property
    def cardinality(self) -> int:
        return 1 + (self.buckets or len(self.values))

    def encode(self, column: pd.Series) -> np.ndarray:
        pos = self.values.get_indexer(pd.Index(column))
        if not self.buckets:
            return (pos + 1).astype(np.int64)
        numeric = pd.api.types.is_numeric_dtype(column)
        h = pd.util.hash_array(column.to_numpy() if numeric else
                               column.astype(object).to_numpy())
        codes = (h % np.uint64(self.buckets)).astype(np.int64) + 1
        return np.where(pos >= 0, codes, 0).astype(np.int64)


@dataclass
class FeatureCodes:
    """The fitted vocabularies and numeric statistics of a feature set."""

    vocabs: dict[str, Vocab]
    numeric: list[str]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    @classmethod
    def fit(cls, frame: pd.DataFrame, ids: list[str], categorical: list[str],
            numeric: list[str], max_ids: int = MAX_IDS) -> "FeatureCodes":
        vocabs = {c: Vocab.fit(c, frame[c], max_ids) for c in ids}
        vocabs.update({c: Vocab.fit(c, frame[c]) for c in categorical})
        x = _numeric(frame, numeric)
        mean = np.nanmean(x, 0) if len(x) else np.zeros(len(numeric))
        std = np.nanstd(x, 0) if len(x) else np.ones(len(numeric))
        mean = np.nan_to_num(mean)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls(vocabs, list(numeric), mean.astype(np.float32), std.astype(np.float32))

    @property
    def cardinalities(self) -> dict[str, int]:
        return {c: v.cardinality for c, v in self.vocabs.items()}

    @property
    def spec(self) -> FeatureSpec:
        """The columns of :meth:`categorical` (with cardinalities) and :meth:`numbers`."""
        return FeatureSpec(tuple(self.cardinalities.items()), tuple(self.numeric))

    def categorical(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, F) int64 codes in vocabulary order."""
        if not self.vocabs:
            return np.zeros((len(frame), 0), np.int64)
        return np.stack([v.encode(frame[c]) for c, v in self.vocabs.items()], 1)

    def numbers(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, N) float32 standardized numeric features (missing -> 0)."""
        x = (_numeric(frame, self.numeric) - self.mean) / self.std
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _numeric(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if not cols:
        return np.zeros((len(frame), 0), np.float64)
    return np.stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
                     for c in cols], 1)
