"""Reading splits from Parquet as training goes, in bounded memory (docs/DESIGN.md, "Data
contract": streaming).

:class:`StreamData` is what :func:`~trainables.data.load_dataset` is for the in-memory path,
without loading: the layout (objectives, categorical and numeric features), the training
split's numeric statistics (one pass over the numeric columns only) and a
:class:`ParquetSplit` per split. A ParquetSplit reads any range of rows of its file as
row-group *pieces* ``(group, start, stop)``; a worker reads only the row groups of its own
rows, ``chunk_rows`` rows at a time, on any filesystem :class:`DataLocation` serves.

Values are checked by the loader's own :class:`~trainables.data.checks.SplitChecker` as
rows are first read (types on the schema before any row); checks that need a whole split
(both classes of every objective) are :func:`~trainables.data.validate_dataset`'s, which
``search run`` runs before Ray starts. Whole-request reading (a model or loss that needs
requests) takes the file's row order as the request order, so it needs the split sorted
by ``request_id``, as the synthetic generator and the MP stage write it; a split that is
not is an error naming the row.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .checks import DatasetError, SplitChecker
from .location import DataLocation
from .tensors import TensorSplit

CHUNK_ROWS = 65_536      # rows decoded at a time


class StreamData:
    """A dataset read from Parquet: layout, numeric statistics and split readers."""

    def __init__(self, location: DataLocation, objectives: list[str] | None, splits: list[str]):
        meta = location.meta()
        available = list(meta["objectives"])
        objs = list(objectives) if objectives is not None else available
        unknown = [o for o in objs if o not in available]
        if unknown:
            raise DatasetError(f"{location.uri}/meta.yaml: unknown objective(s) "
                               f"{', '.join(map(repr, unknown))}; this dataset has: "
                               f"{', '.join(available)}")
        self.location, self.objectives = location, objs
        self.categorical = dict(meta.get("categorical") or {})
        self.splits: dict[str, ParquetSplit] = {}
        self.numeric = None
        for split in dict.fromkeys(["train", *splits]):
            ps = ParquetSplit(location, split, objs, self.categorical, meta.get("numeric"))
            if self.numeric is not None and ps.checker.numeric != self.numeric:
                raise DatasetError(f"{ps.where}: numeric feature columns differ from other "
                                   f"splits: {ps.checker.numeric} vs {self.numeric}")
            self.numeric = ps.checker.numeric
            self.splits[split] = ps
        self.mean, self.std = self.splits["train"].numeric_stats(self.numeric)

    def numeric_stats(self):
        return self.mean, self.std

    def has_duration(self) -> bool:
        return "duration" in self.splits["train"].checker.columns()


class ParquetSplit:
    """One split's Parquet file: its row groups, and rows read as TensorSplit chunks."""

    def __init__(self, location: DataLocation, split: str, objectives, categorical: dict,
                 numeric):
        self.pf = location.open(split)
        self.where = location.where(split)
        md = self.pf.metadata
        self.group_rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)],
                                   dtype=np.int64)
        self.group_start = np.concatenate([[0], np.cumsum(self.group_rows)])
        self.n = int(md.num_rows)
        self.checker = SplitChecker(self.where, self.pf.schema_arrow, objectives, categorical,
                                    numeric)
        self.objectives, self.categorical = list(objectives), dict(categorical)
        self._checked: set = set()             # pieces whose values were checked
        self._rid = None                        # request_id column's index in the file
        self._ids = None                        # (row group, its request ids) last read
        if self.n == 0:
            raise DatasetError(f"{self.where}: has no rows")

    # -- layout -----------------------------------------------------------------------
    def pieces(self, a: int, b: int) -> list[tuple[int, int, int]]:
        """Rows [a, b) of the file as (row group, start, stop) pieces, in file order."""
        out = []
        for g in range(len(self.group_rows)):
            lo, hi = max(a, self.group_start[g]), min(b, self.group_start[g + 1])
            if lo < hi:
                out.append((g, int(lo - self.group_start[g]), int(hi - self.group_start[g])))
        return out

    def spans(self, a: int, b: int, whole_requests: bool) -> list[list[tuple[int, int, int]]]:
        """Rows [a, b) as spans that can be read in any order: one per row group, or, for
        whole requests, cut at the first request start in each row group (a request that
        crosses a row group boundary stays in one span)."""
        if not whole_requests:
            return [[p] for p in self.pieces(a, b)]
        cuts = [a]
        for g in range(1, len(self.group_rows)):
            gs = int(self.group_start[g])
            if a < gs < b:
                c = min(self.request_start(gs), b)
                if c > cuts[-1]:
                    cuts.append(c)
        cuts.append(b)
        return [self.pieces(x, y) for x, y in zip(cuts[:-1], cuts[1:]) if x < y]

    def _rid_index(self) -> int:
        if self._rid is None:
            self._rid = self.pf.schema_arrow.get_field_index("request_id")
        return self._rid

    def _group_ids(self, g: int) -> np.ndarray:
        if self._ids is None or self._ids[0] != g:     # the last group read is kept
            self._ids = (g, self.pf.read_row_group(g, columns=["request_id"]).column(0)
                         .to_numpy())
        return self._ids[1]

    def _stats_boundary(self, g: int) -> bool:
        """Whether the row group statistics show that a request starts at group g's first
        row (its smallest id is above the previous group's largest)."""
        try:
            md = self.pf.metadata
            a = md.row_group(g - 1).column(self._rid_index()).statistics
            b = md.row_group(g).column(self._rid_index()).statistics
            return bool(a is not None and b is not None and a.has_min_max and b.has_min_max
                        and b.min > a.max)
        except Exception:       # no statistics written: read the column instead
            return False

    def request_start(self, row: int) -> int:
        """The first row >= ``row`` where a request starts (the file sorted by request
        id), or the row count when none does. Reads only the request ids it needs."""
        if row <= 0:
            return 0
        if row >= self.n:
            return self.n
        g = int(np.searchsorted(self.group_start, row, side="right") - 1)
        if row == self.group_start[g] and self._stats_boundary(g):
            return row
        gp = int(np.searchsorted(self.group_start, row - 1, side="right") - 1)
        prev = self._group_ids(gp)[row - 1 - self.group_start[gp]]
        while g < len(self.group_rows):
            ids = self._group_ids(g)
            local = ids[max(0, row - self.group_start[g]):]
            self._check_sorted(local, prev, int(max(row, self.group_start[g])))
            moved = np.flatnonzero(local != prev)
            if len(moved):
                return int(max(row, self.group_start[g]) + moved[0])
            g += 1
        return self.n

    def _check_sorted(self, ids: np.ndarray, prev, at: int) -> None:
        """``ids``: the request ids of rows at, at + 1, ...; ``prev``: row at - 1's or None."""
        full = ids if prev is None else np.concatenate([[prev], ids])
        bad = np.flatnonzero(np.diff(full) < 0)
        if len(bad):
            j = int(bad[0]) + 1
            row = at + j - (0 if prev is None else 1)
            raise DatasetError(
                f"{self.where}: row {row} has request_id {full[j]} after {full[j - 1]}: "
                f"streaming whole requests (a model or loss that needs requests) reads the "
                f"split in file order and needs its rows sorted by request_id; sort the split "
                f"by request_id (the synthetic generator and the MP stage write it sorted) or "
                f"set data.stream: false")

    # -- reading ----------------------------------------------------------------------
    def numeric_stats(self, numeric: list[str]):
        """Mean and std (0 -> 1) of each numeric column over the whole split, float32 as
        the in-memory loader gives them; chunk by chunk (Chan et al.'s pairwise update)."""
        if not numeric:
            return np.zeros(0, np.float32), np.ones(0, np.float32)
        n, mean, m2 = 0, np.zeros(len(numeric)), np.zeros(len(numeric))
        for batch in self.pf.iter_batches(batch_size=CHUNK_ROWS * 4, columns=numeric):
            x = np.stack([batch.column(c).to_numpy(zero_copy_only=False) for c in numeric],
                         1).astype(np.float64)
            k = x.shape[0]
            if not k:
                continue
            mb = x.mean(0)
            m2b = ((x - mb) ** 2).sum(0)
            delta = mb - mean
            total = n + k
            mean = mean + delta * (k / total)
            m2 = m2 + m2b + delta ** 2 * (n * k / total)
            n = total
        std = np.sqrt(m2 / max(n, 1))
        return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)

    def read(self, pieces, stats, sorted_ids: bool = False, user: bool = True,
             chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, TensorSplit]]:
        """(first row in the file, rows) chunks of ``pieces``, in order, on the CPU. Values
        are checked the first time a piece is read; ``sorted_ids`` checks that the request
        ids do not decrease; ``user=False`` leaves the user ids out."""
        numeric, columns, prev = self.checker.numeric, self.checker.columns(), None
        for piece in pieces:
            g, start, stop = piece
            check = piece not in self._checked
            pos = 0                                   # the batch's first row in the group
            for batch in self.pf.iter_batches(batch_size=chunk_rows, row_groups=[g],
                                              columns=columns):
                lo, hi = max(start - pos, 0), min(stop - pos, batch.num_rows)
                at = int(self.group_start[g]) + pos + lo
                if lo < hi:
                    part = batch.slice(lo, hi - lo)
                    if check:
                        self.checker.rows = at          # error messages name file rows
                        cols = self.checker.feed_arrow(part)
                    else:
                        cols = {c: part.column(c).to_numpy(zero_copy_only=False)
                                for c in columns}
                    if sorted_ids:
                        self._check_sorted(cols["request_id"], prev, at)
                        prev = cols["request_id"][-1]
                    yield at, TensorSplit.from_columns(cols, self.objectives, self.categorical,
                                                       numeric, stats, user=user)
                pos += batch.num_rows
                if pos >= stop:
                    break
            self._checked.add(piece)

    def whole_requests(self, span, stats, user: bool = True) -> Iterator[TensorSplit]:
        """The rows of a span (starting and ending at request boundaries) in chunks that
        hold whole requests only: each chunk's last request waits for the next chunk."""
        carry = None
        for _, t in self.read(span, stats, sorted_ids=True, user=user):
            if carry is not None:
                t = TensorSplit.concat([carry, t])
            cut = int(torch.searchsorted(t.request, t.request[-1:]).item())
            carry = t.rows(cut, len(t))
            if cut:
                yield t.rows(0, cut)
        if carry is not None and len(carry):
            yield carry

    def ranges(self, cuts: list[int], stats, sorted_ids: bool) -> Iterator[TensorSplit]:
        """Rows [cuts[0], cuts[-1]) of the file, one chunk per [cuts[i], cuts[i + 1])
        (``cuts`` strictly ascending): how evaluation reads its batches."""
        pending, i = [], 1
        for at, t in self.read(self.pieces(cuts[0], cuts[-1]), stats, sorted_ids):
            pos = 0
            while i < len(cuts) and at + len(t) >= cuts[i]:
                end = cuts[i] - at
                if end > pos:
                    pending.append(t.rows(pos, end))
                pos = end
                yield TensorSplit.concat(pending)
                pending, i = [], i + 1
            if pos < len(t):
                pending.append(t.rows(pos, len(t)))
