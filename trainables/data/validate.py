"""Validate a whole ME dataset folder without loading it: what ``search run`` (and a
space's ``data.path``) checks before Ray starts, and what the loader checks too.

    validate_dataset("path/to/dataset", ["buy", "follow"])   # None, or one DatasetError

Every split listed in meta.yaml (or found as ``*.parquet``) is read record batch by record
batch (:data:`BATCH_ROWS` rows of the contract's columns at a time), so memory stays
bounded whatever the dataset's size; the checks are the loader's own
(:class:`~trainables.data.checks.SplitChecker`): split files inside the folder, columns
present with their types, no nulls, scores finite in [0, 1], labels 0/1, categorical
codes inside their cardinality, both classes of every objective in every split.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ..yaml_safe import short
from .checks import DatasetError, SplitChecker, clip
from .schema import read_meta, read_schema, split_files

BATCH_ROWS = 65_536


def dataset_splits(path) -> list[str]:
    """The split names of a dataset folder (meta.yaml checked, no rows read)."""
    path = Path(path).expanduser().resolve()
    return list(split_files(path, read_meta(path)))


def validate_dataset(path, objectives: list[str] | None = None,
                     splits: list[str] | None = None) -> None:
    """Check a dataset folder against the contract, for ``objectives`` (default: all of
    meta.yaml's) in ``splits`` (default: every split). Raises one DatasetError naming the
    file, the column, the bad value and what is allowed."""
    path = Path(path).expanduser().resolve()
    meta = read_meta(path)
    available = list(meta["objectives"])
    objs = list(objectives) if objectives is not None else available
    if not objs:
        raise DatasetError(f"{path}: no objectives selected")
    unknown = [o for o in objs if o not in available]
    if unknown:
        raise DatasetError(f"{path / 'meta.yaml'}: unknown objective(s) "
                           f"{clip(', '.join(map(short, unknown)))}; this dataset has: "
                           f"{', '.join(available)}")
    files = split_files(path, meta)
    wanted = list(splits) if splits is not None else list(files)
    missing = [s for s in wanted if s not in files]
    if missing:
        raise DatasetError(f"{path}: no split(s) {clip(', '.join(map(str, missing)))}; "
                           f"splits: {', '.join(files)}")
    categorical = dict(meta.get("categorical") or {})
    numeric = None
    for split in wanted:
        file = files[split]
        check = SplitChecker(file, read_schema(file, split), objs, categorical,
                             meta.get("numeric"))
        try:
            pf = pq.ParquetFile(file)
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=check.columns(),
                                         use_threads=False):   # no thread pool: bounded
                check.feed_arrow(batch)
        except DatasetError:
            raise
        except Exception as e:  # a corrupt page: pyarrow raises OSError or ArrowInvalid
            raise DatasetError(f"{file}: cannot be read as Parquet ({type(e).__name__}: "
                               f"{short(str(e))})") from None
        check.finish()
        if numeric is not None and check.numeric != numeric:
            raise DatasetError(f"{file}: numeric feature columns differ from other splits: "
                               f"{clip(str(check.numeric))} vs {clip(str(numeric))}")
        numeric = check.numeric
