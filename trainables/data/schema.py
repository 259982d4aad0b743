"""The ME dataset contract and its validating loader.

A dataset folder holds ``meta.yaml`` and one Parquet file per split. meta.yaml:

    objectives: [buy, follow, long_view]        # required
    splits: {train: train.parquet, valid: valid.parquet, test: test.parquet}
    categorical: {feat_age: 7, feat_hour: 24}   # column -> cardinality (values 0..card-1)
    numeric: [feat_activity_score]              # optional; default: every other feat_* column
    source: {...}                               # free-form provenance
    truth: {...}                                # free-form (the synthetic generator's truth)

Each split has int64 ``request_id`` and ``user_id``, float ``score_<obj>`` in [0, 1],
0/1 ``label_<obj>``, and the feature columns; optionally ``duration`` (float > 0: the
item's duration or predicted watch time, the denominator of EMER's IPUT). Any violation
raises one :class:`DatasetError` naming the file, the column and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

META_KEYS = {"name", "objectives", "splits", "categorical", "numeric", "source", "truth",
             "created_by"}


class DatasetError(ValueError):
    """A dataset that breaks the contract; the message names file, column and problem."""


@dataclass
class Dataset:
    """A validated dataset: the meta, and per split the columns as numpy arrays."""

    path: Path
    objectives: list[str]
    categorical: dict[str, int]
    numeric: list[str]
    meta: dict
    splits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def rows(self, split: str) -> int:
        return len(self.splits[split]["request_id"])

    numeric_mean: np.ndarray | None = None
    numeric_std: np.ndarray | None = None

    def numeric_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each numeric feature on the training split (std 0 -> 1), so
        every split is standardized the same way, whichever splits were loaded."""
        return self.numeric_mean, self.numeric_std

    def tensors(self, split: str, device="cpu"):
        from .tensors import TensorSplit
        if split not in self.splits:
            raise DatasetError(f"{self.path}: no split {split!r}; splits: {', '.join(self.splits)}")
        return TensorSplit.from_dataset(self, split, device)

    def label_spearman(self, split: str = "train") -> np.ndarray:
        """Spearman correlation of the labels (for binary labels it equals Pearson's phi)."""
        y = np.stack([self.splits[split][f"label_{o}"] for o in self.objectives], 1)
        return np.corrcoef(y.astype(np.float64), rowvar=False)


def _fail(where, msg: str):
    raise DatasetError(f"{where}: {msg}")


def read_meta(path: Path) -> dict:
    meta_file = path / "meta.yaml"
    if not path.is_dir():
        _fail(path, "no such dataset folder (expected a folder with meta.yaml and Parquet splits)")
    if not meta_file.is_file():
        _fail(meta_file, "missing; a dataset folder needs meta.yaml listing its objectives")
    try:
        meta = yaml.safe_load(meta_file.read_text())
    except yaml.YAMLError as e:
        _fail(meta_file, f"not valid YAML ({e})")
    if not isinstance(meta, dict):
        _fail(meta_file, f"must be a mapping with at least 'objectives', got {type(meta).__name__}")
    unknown = sorted(set(meta) - META_KEYS)
    if unknown:
        _fail(meta_file, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(META_KEYS))}")
    objs = meta.get("objectives")
    if not isinstance(objs, list) or not objs or not all(isinstance(o, str) and o for o in objs):
        _fail(meta_file, f"'objectives' must be a non-empty list of names, got {objs!r}")
    if len(set(objs)) != len(objs):
        _fail(meta_file, f"'objectives' has duplicates: {objs}")
    cat = meta.get("categorical") or {}
    if not isinstance(cat, dict) or not all(isinstance(v, int) and v >= 1 for v in cat.values()):
        _fail(meta_file, f"'categorical' must map column -> cardinality (int >= 1), got {cat!r}")
    return meta


def _split_files(path: Path, meta: dict) -> dict[str, Path]:
    splits = meta.get("splits")
    if splits is None:
        found = {p.stem: p for p in sorted(path.glob("*.parquet"))}
        if not found:
            _fail(path, "no Parquet files found and meta.yaml lists no 'splits'")
        return found
    if not isinstance(splits, dict) or not splits:
        _fail(path / "meta.yaml", f"'splits' must map split name -> file, got {splits!r}")
    out = {}
    for name, entry in splits.items():
        fname = entry.get("file") if isinstance(entry, dict) else entry
        if not isinstance(fname, str):
            _fail(path / "meta.yaml", f"splits.{name} must name a Parquet file, got {entry!r}")
        out[name] = path / fname
    return out


def _check_split(file: Path, cols: dict[str, np.ndarray], objectives, categorical, numeric):
    n = len(cols["request_id"])
    if n == 0:
        _fail(file, "has no rows")
    for c in ("request_id", "user_id"):
        if not np.issubdtype(cols[c].dtype, np.integer):
            _fail(file, f"column {c!r} must be integer, got {cols[c].dtype}")
    for o in objectives:
        s, y = cols[f"score_{o}"], cols[f"label_{o}"]
        if not np.issubdtype(s.dtype, np.floating):
            _fail(file, f"column 'score_{o}' must be float, got {s.dtype}")
        bad = ~np.isfinite(s)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"column 'score_{o}' has {int(bad.sum())} NaN/inf value(s) "
                        f"(first at row {i}: {s[i]}); scores must be finite probabilities")
        bad = (s < 0) | (s > 1)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"column 'score_{o}' has {int(bad.sum())} value(s) outside [0, 1] "
                        f"(first at row {i}: {s[i]}); scores must be probabilities in [0, 1]")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            i = int(np.argmax(~np.isfinite(y)))
            _fail(file, f"column 'label_{o}' has NaN/inf (first at row {i}); labels must be 0 or 1")
        bad = (y != 0) & (y != 1)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"column 'label_{o}' is not binary: {int(bad.sum())} value(s) other "
                        f"than 0/1 (first at row {i}: {y[i]})")
        pos = int(np.count_nonzero(y))
        if pos == 0 or pos == n:
            kind = "no positives" if pos == 0 else "no negatives"
            _fail(file, f"objective {o!r} (column 'label_{o}') has {kind} in this split "
                        f"({pos} of {n} rows positive): its AUC is undefined. Use more rows, "
                        f"another split, or drop the objective")
    for c, card in categorical.items():
        v = cols[c]
        if not np.issubdtype(v.dtype, np.integer):
            _fail(file, f"categorical column {c!r} must be integer codes, got {v.dtype}")
        bad = (v < 0) | (v >= card)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"categorical column {c!r} has {int(bad.sum())} value(s) outside "
                        f"0..{card - 1} (first at row {i}: {v[i]}); meta.yaml declares "
                        f"cardinality {card}")
    for c in numeric:
        v = cols[c]
        if not (np.issubdtype(v.dtype, np.number) or v.dtype == bool):
            _fail(file, f"numeric feature column {c!r} must be numeric, got {v.dtype}")
        bad = ~np.isfinite(v.astype(np.float64))
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"feature column {c!r} has {int(bad.sum())} NaN/inf value(s) "
                        f"(first at row {i})")
    if "duration" in cols:
        v = cols["duration"]
        if not np.issubdtype(v.dtype, np.number):
            _fail(file, f"column 'duration' must be numeric (seconds), got {v.dtype}")
        v = v.astype(np.float64)
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(file, f"column 'duration' has {int(bad.sum())} value(s) that are not finite "
                        f"and > 0 (first at row {i}: {v[i]}); a duration (or predicted watch "
                        f"time) divides the scores in IPUT, so it must be positive")


def split_columns(path) -> dict[str, list[str]]:
    """The column names of each split of a dataset folder (Parquet schemas only, no rows
    read): e.g. to check for the optional ``duration`` column before any training."""
    path = Path(path).expanduser().resolve()
    out = {}
    for split, file in _split_files(path, read_meta(path)).items():
        if not file.is_file():
            _fail(file, f"split {split!r} file is missing")
        try:
            out[split] = list(pq.read_schema(file).names)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            _fail(file, f"cannot be read as Parquet ({type(e).__name__}: {e})")
    return out


def load_dataset(path, objectives: list[str] | None = None,
                 splits: list[str] | None = None) -> Dataset:
    """Read and validate a dataset folder.

    ``objectives``: the subset to use (default: all in meta.yaml); unknown names are an
    error listing the available ones. ``splits``: which splits to read (default: all).
    """
    path = Path(path).expanduser().resolve()
    meta = read_meta(path)
    available = list(meta["objectives"])
    objs = list(objectives) if objectives is not None else available
    unknown = [o for o in objs if o not in available]
    if unknown:
        _fail(path / "meta.yaml", f"unknown objective(s) {', '.join(map(repr, unknown))}; "
                                  f"this dataset has: {', '.join(available)}")
    if not objs:
        _fail(path, "no objectives selected")
    files = _split_files(path, meta)
    wanted = list(splits) if splits is not None else list(files)
    missing = [s for s in wanted if s not in files]
    if missing:
        _fail(path, f"no split(s) {', '.join(missing)}; splits: {', '.join(files)}")
    categorical = dict(meta.get("categorical") or {})
    declared_numeric = meta.get("numeric")
    ds = Dataset(path=path, objectives=objs, categorical=categorical, numeric=[], meta=meta)
    for split in wanted:
        file = files[split]
        if not file.is_file():
            _fail(file, f"split {split!r} file is missing")
        try:
            schema = pq.read_schema(file)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            _fail(file, f"cannot be read as Parquet ({type(e).__name__}: {e})")
        names = set(schema.names)
        numeric = list(declared_numeric) if declared_numeric is not None else sorted(
            c for c in names if c.startswith("feat_") and c not in categorical)
        need = ["request_id", "user_id"] + [f"score_{o}" for o in objs] + \
            [f"label_{o}" for o in objs] + list(categorical) + numeric
        absent = [c for c in need if c not in names]
        if absent:
            _fail(file, f"missing column(s) {', '.join(map(repr, absent))}; present: "
                        f"{', '.join(sorted(names))}")
        extra = ["duration"] if "duration" in names else []
        table = pq.read_table(file, columns=need + extra)
        cols = {c: table.column(c).to_numpy() for c in table.column_names}
        _check_split(file, cols, objs, categorical, numeric)
        if ds.numeric and numeric != ds.numeric:
            _fail(file, f"numeric feature columns differ from other splits: {numeric} vs {ds.numeric}")
        ds.numeric = numeric
        ds.splits[split] = cols
    ds.numeric_mean, ds.numeric_std = _numeric_stats(ds, files)
    return ds


def _numeric_stats(ds: Dataset, files: dict[str, Path]):
    if not ds.numeric:
        return np.zeros(0, np.float32), np.ones(0, np.float32)
    if "train" in ds.splits:
        cols = ds.splits["train"]
    elif "train" in files:   # not asked for: read just its numeric columns
        table = pq.read_table(files["train"], columns=ds.numeric)
        cols = {c: table.column(c).to_numpy() for c in ds.numeric}
    else:
        cols = next(iter(ds.splits.values()))
    x = np.stack([np.asarray(cols[c], dtype=np.float64) for c in ds.numeric], 1)
    mean, std = x.mean(0), x.std(0)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)
