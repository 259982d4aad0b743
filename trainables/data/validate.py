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

from ..yaml_safe import short
from .checks import DatasetError, SplitChecker, clip
from .location import DataLocation

BATCH_ROWS = 65_536


def dataset_splits(path, endpoint: str | None = None) -> list[str]:
    """The split names of a dataset folder or URI (meta.yaml checked, no rows read)."""
    return list(DataLocation(path, endpoint).files())


def validate_dataset(path, objectives: list[str] | None = None,
                     splits: list[str] | None = None, endpoint: str | None = None) -> None:
    """Check a dataset folder (or URI: :class:`~trainables.data.location.DataLocation`)
    against the contract, for ``objectives`` (default: all of meta.yaml's) in ``splits``
    (default: every split). Raises one DatasetError naming the file, the column, the bad
    value and what is allowed."""
    location = DataLocation(path, endpoint)
    path = location.uri
    meta = location.meta()
    available = list(meta["objectives"])
    objs = list(objectives) if objectives is not None else available
    if not objs:
        raise DatasetError(f"{path}: no objectives selected")
    unknown = [o for o in objs if o not in available]
    if unknown:
        raise DatasetError(f"{path}/meta.yaml: unknown objective(s) "
                           f"{clip(', '.join(map(short, unknown)))}; this dataset has: "
                           f"{', '.join(available)}")
    files = location.files()
    wanted = list(splits) if splits is not None else list(files)
    missing = [s for s in wanted if s not in files]
    if missing:
        raise DatasetError(f"{path}: no split(s) {clip(', '.join(map(str, missing)))}; "
                           f"splits: {', '.join(files)}")
    categorical = dict(meta.get("categorical") or {})
    numeric = None
    for split in wanted:
        pf = location.open(split)
        file = location.where(split)
        check = SplitChecker(file, pf.schema_arrow, objs, categorical, meta.get("numeric"))
        try:
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
