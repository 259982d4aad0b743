"""KuaiRand raw logs (Gao et al., CIKM 2022) -> one validated, joined exposure table.

    from trainables.data.kuairand import load_kuairand
    logs = load_kuairand("/data/KuaiRand-Pure/data", days=["2022-04-25", "2022-04-30"])
    logs.frame      # one row per exposure: ids, day, hour, tab, label_<obj>, user/video features

The folder holds the official CSV files (users download KuaiRand-Pure themselves; any
subset of its days works):

- ``log_*.csv``: exposure logs, e.g. ``log_standard_20220425_20220505.csv`` or the full
  dataset's ``log_standard_4_08_to_4_21_pure.csv`` / ``log_standard_4_22_to_5_08_pure.csv``.
  Random-exposure logs (``log_random_*``) are skipped unless ``include_random=True``.
- ``user_features*.csv`` and ``video_features_basic*.csv``: exactly one of each.

Objectives (:data:`OBJECTIVES`): click, long_view, like, follow, comment, forward,
profile_enter, from the log's 0/1 columns. Derived context: ``hour`` (from hourmin),
``dow`` (day of week), ``duration_s`` and its bucket, the video's age in days at exposure
and its bucket, the first tag. Outcome columns (play_time_ms, *_stay_time) are never
read: they describe what happened after the exposure.

Every problem raises one :class:`~trainables.data.schema.DatasetError` naming the file,
the column, the bad value(s) (with the CSV line) and what is allowed. Exposures whose
user or video is missing from the feature files raise by default; ``on_unknown="drop"``
drops them, ``"keep"`` keeps them with missing features (encoded "unknown" later).

:func:`assign_requests` forms requests from a user's exposures within a time window:
the logs hold mostly single-item (user, time) groups.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import DatasetError

OBJECTIVES = {"click": "is_click", "long_view": "long_view", "like": "is_like",
              "follow": "is_follow", "comment": "is_comment", "forward": "is_forward",
              "profile_enter": "is_profile_enter"}
LOG_PATTERN = "log_*.csv"
USER_PATTERN = "user_features*.csv"
VIDEO_PATTERN = "video_features_basic*.csv"
LOG_COLUMNS = ["user_id", "video_id", "date", "hourmin", "time_ms", "tab",
               *OBJECTIVES.values()]
LOG_OPTIONAL = ["duration_ms"]
ONEHOT = [f"onehot_feat{i}" for i in range(18)]
USER_COLUMNS = ["user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer",
                "is_video_author", "follow_user_num", "follow_user_num_range",
                "fans_user_num", "fans_user_num_range", "friend_user_num",
                "friend_user_num_range", "register_days", "register_days_range", *ONEHOT]
VIDEO_COLUMNS = ["video_id", "author_id", "video_type", "upload_dt", "upload_type",
                 "video_duration", "music_id", "music_type", "tag"]

# What the MP stage feeds its model, and what the ME dataset keeps as feat_<name>.
ID_FEATURES = ["user_id", "video_id", "author_id", "music_id"]
CATEGORICAL_FEATURES = [
    "hour", "tab", "user_active_degree", "is_lowactive_period", "is_live_streamer",
    "is_video_author", "follow_user_num_range", "fans_user_num_range",
    "friend_user_num_range", "register_days_range", *ONEHOT, "video_type", "upload_type",
    "music_type", "tag", "tag_first", "duration_bucket", "video_age_bucket"]
NUMERIC_FEATURES = ["log_follow_user_num", "log_fans_user_num", "log_friend_user_num",
                    "log_register_days", "log_duration_s"]
ME_FEATURES = ["hour", "tab", "user_active_degree", "register_days_range",
               "follow_user_num_range", "fans_user_num_range", "friend_user_num_range",
               "is_video_author"]

DURATION_EDGES_S = [7, 15, 30, 60, 120, 300]      # bucket 0: unknown/0 s, then 1..7
VIDEO_AGE_EDGES_D = [1, 2, 4, 8, 15, 31]           # bucket 0: unknown/negative, then 1..7
UNKNOWN = ("error", "drop", "keep")
CHUNK_ROWS = 1_000_000


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


# --------------------------------------------------------------------------- days
def parse_day(value) -> dt.date:
    """A day from ``date``, ``"2022-04-25"``, ``"20220425"`` or ``20220425``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a day; use YYYY-MM-DD (e.g. 2022-04-25) or YYYYMMDD")


def parse_days(text: str) -> list[dt.date]:
    """``"2022-04-25:2022-04-30"`` (inclusive range), ``"2022-05-01,2022-05-03"`` or a mix."""
    days: list[dt.date] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if ":" in part:
            lo, _, hi = part.partition(":")
            a, b = parse_day(lo), parse_day(hi)
            if b < a:
                raise ValueError(f"day range {part!r} ends before it starts; write FIRST:LAST")
            days += [a + dt.timedelta(d) for d in range((b - a).days + 1)]
        else:
            days.append(parse_day(part))
    if not days:
        raise ValueError(f"{text!r} names no days; use e.g. 2022-04-25:2022-04-30")
    return sorted(set(days))


# --------------------------------------------------------------------------- checks
def _line(index) -> int:
    """1-based CSV line of a 0-based data row (line 1 is the header)."""
    return int(index) + 2


def _show(value) -> str:
    """A value as it reads in the CSV (numpy scalars without their type name)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _bad_rows(file: Path, bad: pd.Series, values: pd.Series | None, what: str,
              allowed: str = "", detail: str = "") -> None:
    """Raise one DatasetError for the rows flagged in ``bad``: ``what`` (with ``{n}``, the
    count of bad rows) names the column and the problem, then the first bad row's CSV line
    and (from ``values``) its value, then ``allowed``."""
    i = bad.idxmax()
    first = f"first at line {_line(i)}" + (f": {_show(values[i])}" if values is not None
                                           else "")
    raise DatasetError(f"{file}: {what.format(n=int(bad.sum()))} ({first}{detail}){allowed}")


def _require_columns(file: Path, present, required) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise DatasetError(f"{file}: missing column(s) {', '.join(map(repr, missing))}; "
                           f"required: {', '.join(required)}; present: {', '.join(present)}")


def _no_nan(file: Path, df: pd.DataFrame, cols) -> None:
    for c in cols:
        bad = df[c].isna()
        if bad.any():
            _bad_rows(file, bad, None, f"column {c!r} is empty/NaN in {{n}} row(s)",
                      "; every exposure needs a value there")


def _integers(file: Path, df: pd.DataFrame, col: str, what: str = "integers") -> pd.Series:
    s = df[col]
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    frac = num.notna() & (num != np.floor(num.fillna(0)))
    bad = bad | frac
    if bad.any():
        _bad_rows(file, bad, s, f"column {col!r} has {{n}} value(s) that are not {what}")
    return num.astype(np.int64)


def _binary(file: Path, df: pd.DataFrame, col: str) -> pd.Series:
    v = _integers(file, df, col, "0 or 1")
    bad = ~v.isin([0, 1])
    if bad.any():
        values = sorted(set(v[bad].unique().tolist()))[:5]
        _bad_rows(file, bad, v, f"label column {col!r} is not binary: {{n}} value(s) other "
                  f"than 0/1", "; allowed: 0 or 1", detail=f"; bad values {values}")
    return v.astype(np.int8)


def _dates(file: Path, df: pd.DataFrame) -> pd.Series:
    raw = df["date"].astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    day = pd.to_datetime(raw, format="%Y%m%d", errors="coerce")
    bad = day.isna()
    if bad.any():
        _bad_rows(file, bad, df["date"], "column 'date' has {n} unparsable value(s)",
                  "; allowed: days as YYYYMMDD, e.g. 20220425")
    return day


def _hours(file: Path, df: pd.DataFrame) -> pd.Series:
    hm = _integers(file, df, "hourmin")
    bad = (hm < 0) | (hm > 2359) | (hm % 100 > 59)
    if bad.any():
        _bad_rows(file, bad, hm, "column 'hourmin' has {n} value(s) that are not a time of "
                  "day", "; allowed: HHMM from 0 to 2359, e.g. 1300")
    return (hm // 100).astype(np.int64)


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
    _require_columns(file, header, LOG_COLUMNS)
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
    _no_nan(file, df, LOG_COLUMNS)
    out = pd.DataFrame(index=df.index)
    out["day"] = _dates(file, df)
    for c in ("user_id", "video_id", "time_ms", "tab"):
        out[c] = _integers(file, df, c)
    out["hour"] = _hours(file, df)
    for obj, col in OBJECTIVES.items():
        out[f"label_{obj}"] = _binary(file, df, col)
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
    _require_columns(file, list(df.columns), required)
    df = df[required].copy()
    _no_nan(file, df, [key])
    df[key] = _integers(file, df, key, "integer ids")
    dup = df[key].duplicated()
    if dup.any():
        _bad_rows(file, dup, df[key], f"column {key!r} repeats {{n}} id(s)",
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
            f"have a row here. Use on_unknown='drop' (--unknown drop) to drop those "
            f"exposures or 'keep' to keep them with unknown features")
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
                               f"(--include-random) to read them")
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


def assign_requests(user_id, day, time_ms, window_s: float) -> np.ndarray:
    """Request ids (int64, 0..R-1) grouping a user's exposures within a time window.

    Exposures are ordered by (day, user, time). A request starts at a user's exposure and
    takes every later exposure of that user on the same day whose time_ms is at most
    ``window_s`` seconds after that first one; the next exposure starts a new request.
    Requests never cross days, so a split by day never cuts one.
    """
    if not window_s > 0:
        raise ValueError(f"request window must be > 0 seconds, got {window_s!r}")
    u = np.asarray(user_id, dtype=np.int64)
    d = np.asarray(day).astype("datetime64[D]").astype(np.int64)
    t = np.asarray(time_ms, dtype=np.int64)
    order = np.lexsort((t, u, d))
    w = int(round(window_s * 1000))
    rid_sorted = np.empty(len(u), np.int64)
    r, start, prev_u, prev_d = -1, 0, None, None
    for i, (uu, dd, tt) in enumerate(zip(u[order].tolist(), d[order].tolist(),
                                         t[order].tolist())):
        if uu != prev_u or dd != prev_d or tt - start > w:
            r += 1
            start, prev_u, prev_d = tt, uu, dd
        rid_sorted[i] = r
    out = np.empty_like(rid_sorted)
    out[order] = rid_sorted
    return out


def request_sizes(request_id) -> dict:
    """Summary of the request-size distribution (for logs and meta.yaml)."""
    sizes = np.bincount(np.unique(np.asarray(request_id), return_inverse=True)[1])
    hist = np.bincount(np.minimum(sizes, 10), minlength=11)[1:]
    return {"requests": int(len(sizes)), "rows": int(sizes.sum()),
            "mean": round(float(sizes.mean()), 3),
            "single_share": round(float((sizes == 1).mean()), 4),
            "rows_in_multi_share": round(float(sizes[sizes > 1].sum() / sizes.sum()), 4),
            "p50": int(np.percentile(sizes, 50)), "p90": int(np.percentile(sizes, 90)),
            "p99": int(np.percentile(sizes, 99)), "max": int(sizes.max()),
            "histogram": {(f"{k}" if k < 10 else "10+"): int(v)
                          for k, v in zip(range(1, 11), hist)}}
