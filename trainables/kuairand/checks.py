"""Column checks of KuaiRand's CSV files: each problem is one DatasetError naming the
file, the column, the first bad value with its CSV line, and what is allowed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.schema import DatasetError


def _line(index) -> int:
    """1-based CSV line of a 0-based data row (line 1 is the header)."""
    return int(index) + 2


def _show(value) -> str:
    """A value as it reads in the CSV (numpy scalars without their type name)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def bad_rows(file: Path, bad: pd.Series, values: pd.Series | None, what: str,
             allowed: str = "", detail: str = "") -> None:
    """Raise one DatasetError for the rows flagged in ``bad``: ``what`` (with ``{n}``, the
    count of bad rows) names the column and the problem, then the first bad row's CSV line
    and (from ``values``) its value, then ``allowed``."""
    i = bad.idxmax()
    first = f"first at line {_line(i)}" + (f": {_show(values[i])}" if values is not None
                                           else "")
    raise DatasetError(f"{file}: {what.format(n=int(bad.sum()))} ({first}{detail}){allowed}")


def require_columns(file: Path, present, required) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise DatasetError(f"{file}: missing column(s) {', '.join(map(repr, missing))}; "
                           f"required: {', '.join(required)}; present: {', '.join(present)}")


def no_nan(file: Path, df: pd.DataFrame, cols) -> None:
    for c in cols:
        bad = df[c].isna()
        if bad.any():
            bad_rows(file, bad, None, f"column {c!r} is empty/NaN in {{n}} row(s)",
                     "; every exposure needs a value there")


def integers(file: Path, df: pd.DataFrame, col: str, what: str = "integers") -> pd.Series:
    s = df[col]
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    frac = num.notna() & (num != np.floor(num.fillna(0)))
    bad = bad | frac
    if bad.any():
        bad_rows(file, bad, s, f"column {col!r} has {{n}} value(s) that are not {what}")
    return num.astype(np.int64)


def binary(file: Path, df: pd.DataFrame, col: str) -> pd.Series:
    v = integers(file, df, col, "0 or 1")
    bad = ~v.isin([0, 1])
    if bad.any():
        values = sorted(set(v[bad].unique().tolist()))[:5]
        bad_rows(file, bad, v, f"label column {col!r} is not binary: {{n}} value(s) other "
                 f"than 0/1", "; allowed: 0 or 1", detail=f"; bad values {values}")
    return v.astype(np.int8)


def dates(file: Path, df: pd.DataFrame) -> pd.Series:
    raw = df["date"].astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    day = pd.to_datetime(raw, format="%Y%m%d", errors="coerce")
    bad = day.isna()
    if bad.any():
        bad_rows(file, bad, df["date"], "column 'date' has {n} unparsable value(s)",
                 "; allowed: days as YYYYMMDD, e.g. 20220425")
    return day


def hours(file: Path, df: pd.DataFrame) -> pd.Series:
    hm = integers(file, df, "hourmin")
    bad = (hm < 0) | (hm > 2359) | (hm % 100 > 59)
    if bad.any():
        bad_rows(file, bad, hm, "column 'hourmin' has {n} value(s) that are not a time of "
                 "day", "; allowed: HHMM from 0 to 2359, e.g. 1300")
    return (hm // 100).astype(np.int64)
