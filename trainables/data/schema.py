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
raises one :class:`DatasetError` naming the file, the column and the problem. The column
checks are :class:`~trainables.data.checks.SplitChecker`'s, shared with
:func:`~trainables.data.validate.validate_dataset` (every split, batch by batch, no load);
meta.yaml is read within trainables.yaml_safe's limits and a split file must lie inside
the dataset folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..yaml_safe import short
from .checks import DatasetError, SplitChecker, clip

META_KEYS = {"name", "objectives", "splits", "categorical", "numeric", "source", "truth",
             "created_by"}


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
    """meta.yaml of a dataset folder, checked (safe YAML, bounded size: see yaml_safe)."""
    from ..yaml_safe import YAMLInputError, load_yaml
    meta_file = path / "meta.yaml"
    if not path.is_dir():
        _fail(path, "no such dataset folder (expected a folder with meta.yaml and Parquet splits)")
    if not meta_file.is_file():
        _fail(meta_file, "missing; a dataset folder needs meta.yaml listing its objectives")
    try:
        meta = load_yaml(meta_file, "meta.yaml")
    except YAMLInputError as e:
        raise DatasetError(str(e)) from None
    return check_meta(meta, meta_file)


def check_meta(meta, meta_file) -> dict:
    """meta.yaml's content checked (``meta_file`` names it in errors): a local file's or,
    for a dataset at a URI, the text :mod:`trainables.data.location` read."""
    if not isinstance(meta, dict):
        _fail(meta_file, f"must be a mapping with at least 'objectives', got {type(meta).__name__}")
    unknown = sorted(map(str, set(meta) - META_KEYS))
    if unknown:
        _fail(meta_file, f"unknown key(s) {clip(', '.join(unknown))}; allowed: "
                         f"{', '.join(sorted(META_KEYS))}")
    objs = meta.get("objectives")
    if not isinstance(objs, list) or not objs or not all(isinstance(o, str) and o for o in objs):
        _fail(meta_file, f"'objectives' must be a non-empty list of names, got {short(objs)}")
    if len(set(objs)) != len(objs):
        _fail(meta_file, f"'objectives' has duplicates: {short(objs)}")
    cat = meta.get("categorical") or {}
    if not isinstance(cat, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for k, v in cat.items()):
        _fail(meta_file, f"'categorical' must map column -> cardinality (int >= 1), got "
                         f"{short(cat)}")
    num = meta.get("numeric")
    if num is not None and not (isinstance(num, list) and all(isinstance(c, str) for c in num)):
        _fail(meta_file, f"'numeric' must be a list of column names, got {short(num)}")
    return meta


def split_files(path: Path, meta: dict) -> dict[str, Path]:
    """Split name -> Parquet file: meta.yaml's ``splits``, or every ``*.parquet`` in the
    folder. A split file must lie inside the dataset folder (after resolving links)."""
    splits = meta.get("splits")
    root = path.resolve()
    if splits is None:
        found = {p.stem: p for p in sorted(path.glob("*.parquet"))}
        if not found:
            _fail(path, "no Parquet files found and meta.yaml lists no 'splits'")
        for name, file in found.items():
            if not file.resolve().is_relative_to(root):
                _fail(file, f"split {name!r} links outside the dataset folder; a split file "
                            f"must be inside it")
        return found
    if not isinstance(splits, dict) or not splits:
        _fail(path / "meta.yaml", f"'splits' must map split name -> file, got {short(splits)}")
    out = {}
    for name, entry in splits.items():
        fname = entry.get("file") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not isinstance(fname, str) or not fname:
            _fail(path / "meta.yaml", f"splits.{short(name)} must name a Parquet file, got "
                                      f"{short(entry)}")
        file = (path / fname).resolve()
        if not file.is_relative_to(root) or file == root:
            _fail(path / "meta.yaml", f"splits.{name} = {short(fname)} points outside the "
                                      f"dataset folder; a split file must be inside it (a "
                                      f"name such as {name}.parquet)")
        out[name] = path / fname
    return out


_split_files = split_files


def read_schema(file: Path, split: str):
    """The Arrow schema of a split file; DatasetError if missing or not Parquet."""
    if not file.is_file():
        _fail(file, f"split {split!r} file is missing")
    try:
        return pq.read_schema(file)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        _fail(file, f"cannot be read as Parquet ({type(e).__name__}: {short(str(e))})")


def split_columns(path) -> dict[str, list[str]]:
    """The column names of each split of a dataset folder (Parquet schemas only, no rows
    read): e.g. to check for the optional ``duration`` column before any training."""
    path = Path(path).expanduser().resolve()
    out = {}
    for split, file in split_files(path, read_meta(path)).items():
        out[split] = list(read_schema(file, split).names)
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
    files = split_files(path, meta)
    wanted = list(splits) if splits is not None else list(files)
    missing = [s for s in wanted if s not in files]
    if missing:
        _fail(path, f"no split(s) {', '.join(map(str, missing))}; splits: {', '.join(files)}")
    categorical = dict(meta.get("categorical") or {})
    declared_numeric = meta.get("numeric")
    ds = Dataset(path=path, objectives=objs, categorical=categorical, numeric=[], meta=meta)
    for split in wanted:
        file = files[split]
        check = SplitChecker(file, read_schema(file, split), objs, categorical,
                             declared_numeric)
        try:
            table = pq.read_table(file, columns=check.columns())
        except Exception as e:  # a corrupt page: pyarrow raises OSError or ArrowInvalid
            _fail(file, f"cannot be read as Parquet ({type(e).__name__}: {short(str(e))})")
        cols = check.feed_arrow(table)
        check.finish()
        if ds.numeric and check.numeric != ds.numeric:
            _fail(file, f"numeric feature columns differ from other splits: {check.numeric} "
                        f"vs {ds.numeric}")
        ds.numeric = check.numeric
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
