"""The ME dataset contract's column checks, one split at a time and batch by batch.

:class:`SplitChecker` is the one place the contract's columns are checked: the loader
(:func:`~trainables.data.schema.load_dataset`) feeds it whole columns, the validator
(:func:`~trainables.data.validate.validate_dataset`) feeds it Parquet record batches so
memory stays bounded on any dataset size. Types are checked on the Arrow schema before
any row is read; values (finite scores in [0, 1], 0/1 labels, categorical codes inside
their cardinality, finite numeric features, positive durations, no nulls) batch by batch
with the file's row number of the first bad value; both classes of every objective when
the split ends.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa



class DatasetError(ValueError):
    """A dataset that breaks the contract; the message names file, column and problem."""


def fail(where, msg: str):
    raise DatasetError(f"{where}: {msg}")


def clip(text: str, limit: int = 400) -> str:
    """A list written out for a message, cut after ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + " ..."


def _is_int(t) -> bool:
    return pa.types.is_integer(t)


def _is_float(t) -> bool:
    return pa.types.is_floating(t)


def _is_num(t) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _first(bad: np.ndarray) -> int:
    return int(np.argmax(bad))


class SplitChecker:
    """Checks one split file: ``columns()`` to read, ``feed()`` each batch, ``finish()``."""

    def __init__(self, file: Path, schema: pa.Schema, objectives, categorical: dict,
                 numeric: list[str] | None):
        self.file = file
        self.objectives = list(objectives)
        self.categorical = dict(categorical)
        names = list(schema.names)
        self.numeric = list(numeric) if numeric is not None else sorted(
            c for c in names if c.startswith("feat_") and c not in self.categorical)
        need = ["request_id", "user_id"] + [f"score_{o}" for o in self.objectives] + \
            [f"label_{o}" for o in self.objectives] + list(self.categorical) + self.numeric
        absent = [c for c in need if c not in names]
        if absent:
            fail(file, f"missing column(s) {clip(', '.join(map(repr, absent)))}; present: "
                       f"{clip(', '.join(sorted(names)))}")
        self.need = need + (["duration"] if "duration" in names else [])
        types = {f.name: f.type for f in schema}
        for c in ("request_id", "user_id"):
            if not _is_int(types[c]):
                fail(file, f"column {c!r} must be integer, got {types[c]}")
        for o in self.objectives:
            t = types[f"score_{o}"]
            if not _is_float(t):
                fail(file, f"column 'score_{o}' must be float, got {t}")
            t = types[f"label_{o}"]
            if not _is_num(t):
                fail(file, f"column 'label_{o}' must hold 0/1 numbers, got {t}")
        for c in self.categorical:
            if not _is_int(types[c]):
                fail(file, f"categorical column {c!r} must be integer codes, got {types[c]}")
        for c in self.numeric:
            if not _is_num(types[c]):
                fail(file, f"numeric feature column {c!r} must be numeric, got {types[c]}")
        if "duration" in types and not _is_num(types["duration"]):
            fail(file, f"column 'duration' must be numeric (seconds), got {types['duration']}")
        self.rows = 0
        self.positives = {o: 0 for o in self.objectives}

    def columns(self) -> list[str]:
        """The columns to read: the contract's, plus ``duration`` when present."""
        return list(self.need)

    def feed_arrow(self, batch) -> dict[str, np.ndarray]:
        """Check an Arrow table or record batch (nulls first); returns its numpy columns."""
        for c in self.need:     # a float column's nulls read as NaN, reported as such
            col = batch.column(c)
            if col.null_count and not _is_float(col.type):
                valid = np.asarray(col.is_valid())
                fail(self.file, f"column {c!r} has {col.null_count} null value(s) (first at "
                                f"row {self.rows + _first(~valid)}); the column must be "
                                f"complete")
        cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in self.need}
        self.feed(cols)
        return cols

    def feed(self, cols: dict[str, np.ndarray]) -> None:
        """Check the values of the next rows (numpy columns)."""
        file, at = self.file, self.rows
        n = len(cols["request_id"])
        for o in self.objectives:
            s, y = cols[f"score_{o}"], cols[f"label_{o}"]
            bad = ~np.isfinite(s)
            if bad.any():
                i = _first(bad)
                fail(file, f"column 'score_{o}' has {int(bad.sum())} NaN/inf value(s) "
                           f"(first at row {at + i}: {s[i]}); scores must be finite "
                           f"probabilities in [0, 1]")
            bad = (s < 0) | (s > 1)
            if bad.any():
                i = _first(bad)
                fail(file, f"column 'score_{o}' has {int(bad.sum())} value(s) outside [0, 1] "
                           f"(first at row {at + i}: {s[i]}); scores must be probabilities "
                           f"in [0, 1]")
            if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
                i = _first(~np.isfinite(y))
                fail(file, f"column 'label_{o}' has NaN/inf (first at row {at + i}); labels "
                           f"must be 0 or 1")
            bad = (y != 0) & (y != 1)
            if bad.any():
                i = _first(bad)
                fail(file, f"column 'label_{o}' is not binary: {int(bad.sum())} value(s) "
                           f"other than 0/1 (first at row {at + i}: {y[i]}); allowed: 0 or 1")
            self.positives[o] += int(np.count_nonzero(y))
        for c, card in self.categorical.items():
            v = cols[c]
            bad = (v < 0) | (v >= card)
            if bad.any():
                i = _first(bad)
                fail(file, f"categorical column {c!r} has {int(bad.sum())} value(s) outside "
                           f"0..{card - 1} (first at row {at + i}: {v[i]}); meta.yaml "
                           f"declares cardinality {card}")
        for c in self.numeric:
            bad = ~np.isfinite(cols[c].astype(np.float64))
            if bad.any():
                fail(file, f"feature column {c!r} has {int(bad.sum())} NaN/inf value(s) "
                           f"(first at row {at + _first(bad)})")
        if "duration" in cols:
            v = cols["duration"].astype(np.float64)
            bad = ~np.isfinite(v) | (v <= 0)
            if bad.any():
                i = _first(bad)
                fail(file, f"column 'duration' has {int(bad.sum())} value(s) that are not "
                           f"finite and > 0 (first at row {at + i}: {v[i]}); a duration (or "
                           f"predicted watch time) divides the scores in IPUT, so it must be "
                           f"positive")
        self.rows += n

    def finish(self) -> None:
        """After the last batch: rows present, both classes of every objective."""
        n = self.rows
        if n == 0:
            fail(self.file, "has no rows")
        for o, pos in self.positives.items():
            if pos == 0 or pos == n:
                kind = "no positives" if pos == 0 else "no negatives"
                fail(self.file, f"objective {o!r} (column 'label_{o}') has {kind} in this "
                                f"split ({pos} of {n} rows positive): its AUC is undefined. "
                                f"Use more rows, another split, or drop the objective")
