"""KuaiRand raw logs (Gao et al., CIKM 2022) -> one validated, joined exposure table.

    from trainables.kuairand.loader import load_kuairand
    logs = load_kuairand(folder, days=["2022-04-25", "2022-04-30"])
    logs.frame      # one row per exposure: ids, day, hour, tab, label_<obj>, user/video features

The folder holds the official CSV files (users download KuaiRand-Pure themselves; any
subset of its days works):

- ``log_*.csv``: exposure logs, e.g. ``log_standard_20220425_20220505.csv`` or the full
  dataset's ``log_standard_4_08_to_4_21_pure.csv`` / ``log_standard_4_22_to_5_08_pure.csv``.
  Random-exposure logs (``log_random_*``) are skipped unless ``include_random=True``.
- ``user_features*.csv`` and ``video_features_basic*.csv``: exactly one of each.

Objectives (:data:`~trainables.kuairand.schema.OBJECTIVES`): click, long_view, like,
follow, comment, forward, profile_enter, from the log's 0/1 columns. Derived context: ``hour`` (from hourmin),
``dow`` (day of week), ``duration_s`` and its bucket, the video's age in days at exposure
and its bucket, the first tag. Outcome columns (play_time_ms, *_stay_time) are never
read: they describe what happened after the exposure.

Every problem raises one :class:`~trainables.data.schema.DatasetError` naming the file,
the column, the bad value(s) (with the CSV line) and what is allowed. Exposures whose
user or video is missing from the feature files raise by default; ``on_unknown="drop"``
drops them, ``"keep"`` keeps them with missing features (encoded "unknown" later).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.schema import DatasetError
from .checks import bad_rows, binary, dates, hours, integers, no_nan, require_columns
from .days import parse_day
from .schema import (CHUNK_ROWS, DURATION_EDGES_S, LOG_COLUMNS, LOG_OPTIONAL, LOG_PATTERN,
                     OBJECTIVES, UNKNOWN, VIDEO_AGE_EDGES_D,
                     USER_COLUMNS, USER_PATTERN, VIDEO_COLUMNS, VIDEO_PATTERN)


@dataclass
class KuaiRandLogs:
    """The joined exposures (``frame``) and where they came from."""

    frame: pd.DataFrame
    folder: Path
    log_files: list[Path]
    user_file: Path
    video_file: Path
    unknown: dict = field(default_factory=dict)     # {"user_id": rows, "video_id": rows}

    @property
    def days(self) -> list[dt.date]:
        return sorted(pd.to_datetime(self.frame["day"].unique()).date)


# --------------------------------------------------------------------------- files
def _find(folder: Path, pattern: str, what: str, many: bool = False) -> list[Path]:
    files = sorted(folder.glob(pattern))
    if not files:
        raise DatasetError(f"{folder}: no {what} file matching {pattern!r} (KuaiRand's "
                           f"folder holds log_*.csv, user_features*.csv and "
                           f"video_features_basic*.csv)")
    if not many and len(files) > 1:
        raise DatasetError(f"{folder}: {len(files)} {what} files match {pattern!r} "
                           f"({', '.join(f.name for f in files)}); keep exactly one")
    return files


def _csv_error(file: Path, e: Exception) -> DatasetError:
    """A pandas/codec failure as one DatasetError naming the file (and the line)."""
    if isinstance(e, UnicodeDecodeError):
        return DatasetError(f"{file}: not UTF-8 text ({e.reason}: byte 0x{e.object[e.start]:02x}"
                            f"); KuaiRand's CSV files are UTF-8")
    text = " ".join(str(e).split())
    text = text.replace("Error tokenizing data. C error: ", "")
    if len(text) > 300:
        text = text[:300] + " ..."
    return DatasetError(f"{file}: malformed CSV ({text}); every line must have the header's "
                        f"fields")


def _read_log(file: Path, days: set | None) -> pd.DataFrame:
    try:
        header = list(pd.read_csv(file, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DatasetError(f"{file}: cannot be read as CSV ({type(e).__name__}: "
                           f"{' '.join(str(e).split())[:300]})") from None
    require_columns(file, header, LOG_COLUMNS)
    cols = LOG_COLUMNS + [c for c in LOG_OPTIONAL if c in header]
    parts = []
    try:
        # every column is parsed (no usecols): with usecols pandas silently ignores a line
        # with extra fields; then only the used ones are kept, chunk by chunk
        chunks = pd.read_csv(file, chunksize=CHUNK_ROWS, low_memory=False)
        for df in chunks:
            parts.append(_check_log_chunk(file, df[cols], days))
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise _csv_error(file, e) from None
    return pd.concat(parts) if parts else pd.DataFrame(columns=cols)


def _check_log_chunk(file: Path, df: pd.DataFrame, days: set | None) -> pd.DataFrame:
    no_nan(file, df, LOG_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["day"] = dates(file, df)
    for c in ("user_id", "video_id", "time_ms", "tab"):
        out[c] = integers(file, df, c)
    out["hour"] = hours(file, df)
    for obj, col in OBJECTIVES.items():
        out[f"label_{obj}"] = binary(file, df, col)
    if "duration_ms" in df:
        out["duration_ms"] = pd.to_numeric(df["duration_ms"], errors="coerce")
    if days is not None:
        out = out[out["day"].dt.date.isin(days)]
    return out


def _read_features(file: Path, required: list[str], key: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(file, low_memory=False)
    except pd.errors.EmptyDataError as e:
        raise DatasetError(f"{file}: cannot be read as CSV ({type(e).__name__}: {e})") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise _csv_error(file, e) from None
    require_columns(file, list(df.columns), required)
    df = df[required].copy()
    no_nan(file, df, [key])
    df[key] = integers(file, df, key, "integer ids")
    dup = df[key].duplicated()
    if dup.any():
        bad_rows(file, dup, df[key], f"column {key!r} repeats {{n}} id(s)",
                 f"; each {key} must appear once")
    return df


def _join(frame, feats, key, file, log_files, on_unknown):
    known = frame[key].isin(feats[key])
    n_bad = int((~known).sum())
    if n_bad and on_unknown == "error":
        ids = sorted(frame.loc[~known, key].unique().tolist())
        raise DatasetError(
            f"{file}: {n_bad} exposure(s) in {', '.join(f.name for f in log_files)} have a "
            f"{key} not in this file ({len(ids)} distinct, e.g. {ids[:5]}); every {key} must "
            f"have a row here. Use on_unknown='drop' (the MP config's data.unknown: drop) "
            f"to drop those exposures or 'keep' to keep them with unknown features")
    if n_bad and on_unknown == "drop":
        frame = frame[known]
    return frame.merge(feats, on=key, how="left", validate="many_to_one"), n_bad


# --------------------------------------------------------------------------- derived
def _bucket(values: pd.Series, edges) -> np.ndarray:
    """0 for unknown (NaN) or non-positive values, then 1..len(edges)+1 by ``edges``."""
    v = values.to_numpy(dtype=np.float64)
    out = np.searchsorted(np.asarray(edges, np.float64), v, side="right") + 1
    return np.where(np.isfinite(v) & (v > 0), out, 0).astype(np.int64)


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame
    f["dow"] = f["day"].dt.day_of_week.astype(np.int64)
    dur = f.pop("duration_ms") if "duration_ms" in f else pd.Series(np.nan, index=f.index)
    dur = dur.where(dur > 0, pd.to_numeric(f["video_duration"], errors="coerce"))
    f["duration_s"] = (dur / 1000.0).fillna(0.0).astype(np.float32)
    f["duration_bucket"] = _bucket(f["duration_s"], DURATION_EDGES_S)
    upload = pd.to_datetime(f["upload_dt"], errors="coerce")
    f["video_age_days"] = (f["day"] - upload).dt.days
    f["video_age_bucket"] = _bucket(f["video_age_days"] + 1, VIDEO_AGE_EDGES_D)
    f["tag_first"] = f["tag"].astype("string").str.split(",").str[0]
    for c in ("follow_user_num", "fans_user_num", "friend_user_num", "register_days"):
        v = pd.to_numeric(f[c], errors="coerce").clip(lower=0)
        f[f"log_{c}"] = np.log1p(v).astype(np.float32)
    f["log_duration_s"] = np.log1p(f["duration_s"]).astype(np.float32)
    return f


# --------------------------------------------------------------------------- public
def load_kuairand(path, days=None, *, on_unknown: str = "error",
                  include_random: bool = False) -> KuaiRandLogs:
    """Read, validate and join KuaiRand's logs and feature files from folder ``path``.

    ``days``: the days to keep (dates or strings, see :func:`parse_day`); None keeps all.
    Asking for a day the logs do not hold is an error naming the days they cover.
    """
    if on_unknown not in UNKNOWN:
        raise ValueError(f"on_unknown must be one of {', '.join(UNKNOWN)}, got {on_unknown!r}")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder; pass the KuaiRand data folder holding "
                           f"log_*.csv, user_features*.csv and video_features_basic*.csv")
    logs = _find(folder, LOG_PATTERN, "exposure log", many=True)
    if not include_random:
        standard = [f for f in logs if "random" not in f.name]
        if not standard:
            raise DatasetError(f"{folder}: only random-exposure logs "
                               f"({', '.join(f.name for f in logs)}); pass include_random=True "
                               f"(the MP config's data.include_random: true) to read them")
        logs = standard
    user_file = _find(folder, USER_PATTERN, "user features")[0]
    video_file = _find(folder, VIDEO_PATTERN, "video features")[0]
    wanted = None if days is None else {parse_day(d) for d in days}
    frame = pd.concat([_read_log(f, wanted) for f in logs], ignore_index=True)
    if wanted is not None:
        have = set(frame["day"].dt.date.unique())
        absent = sorted(wanted - have)
        if absent:
            cover = _cover(logs)
            names = ", ".join(f.name for f in logs)
            raise DatasetError(f"{folder}: no exposures on day(s) "
                               f"{', '.join(map(str, absent))} in {names}; the logs cover "
                               f"{cover}")
    if frame.empty:
        raise DatasetError(f"{folder}: the logs {', '.join(f.name for f in logs)} hold no rows")
    users = _read_features(user_file, USER_COLUMNS, "user_id")
    videos = _read_features(video_file, VIDEO_COLUMNS, "video_id")
    unknown = {}
    frame, unknown["user_id"] = _join(frame, users, "user_id", user_file, logs, on_unknown)
    frame, unknown["video_id"] = _join(frame, videos, "video_id", video_file, logs, on_unknown)
    if frame.empty:
        raise DatasetError(f"{folder}: no exposure left after dropping unknown users/videos")
    frame = _derive(frame).sort_values(["day", "user_id", "time_ms"], kind="stable")
    return KuaiRandLogs(frame=frame.reset_index(drop=True), folder=folder, log_files=logs,
                        user_file=user_file, video_file=video_file, unknown=unknown)


def _cover(logs: list[Path]) -> str:
    """The days the log files hold (a cheap pass over the date column)."""
    days = set()
    for f in logs:
        for chunk in pd.read_csv(f, usecols=["date"], chunksize=CHUNK_ROWS):
            days |= set(pd.to_datetime(chunk["date"].astype(str), format="%Y%m%d",
                                       errors="coerce").dropna().dt.date)
    if not days:
        return "no days"
    lo, hi = min(days), max(days)
    gaps = (hi - lo).days + 1 - len(days)
    return f"{lo}..{hi}" + (f" ({gaps} day(s) missing in between)" if gaps else "")
