"""Write scored rows as an ME dataset folder (docs/DESIGN.md, "Data contract"): Parquet splits + meta.yaml.

Columns per split: request_id, user_id (int64), score_<obj> (float32 in [0, 1]),
label_<obj> (int8), feat_<name> (int64 codes or float32), optional duration (float32).
Rows are ordered by request. The folder is written under a temporary name and renamed
when complete, so a failed run never leaves a half-written dataset behind.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def check_out(out: Path, overwrite: bool) -> None:
    """Fail before any work when ``out`` exists and may not be replaced."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out}: folder exists and is not empty; pass --overwrite "
                         f"to replace it or choose another folder")


def split_table(request_id, user_id, scores: np.ndarray, labels: np.ndarray,
                objectives: list[str], features: dict[str, np.ndarray],
                duration: np.ndarray | None = None) -> pd.DataFrame:
    cols = {"request_id": np.asarray(request_id, np.int64),
            "user_id": np.asarray(user_id, np.int64)}
    s = np.clip(np.nan_to_num(scores.astype(np.float32), nan=0.5), 0.0, 1.0)
    for k, o in enumerate(objectives):
        cols[f"score_{o}"] = s[:, k]
    for k, o in enumerate(objectives):
        cols[f"label_{o}"] = np.asarray(labels[:, k]).astype(np.int8)
    for name, v in features.items():
        v = np.asarray(v)
        cols[f"feat_{name}"] = v.astype(np.int64) if np.issubdtype(v.dtype, np.integer) \
            else v.astype(np.float32)
    if duration is not None:
        cols["duration"] = np.asarray(duration, np.float32)
    df = pd.DataFrame(cols)
    return df.sort_values("request_id", kind="stable").reset_index(drop=True)


def write_dataset(out, tables: dict[str, pd.DataFrame], meta: dict,
                  overwrite: bool = False) -> Path:
    """Write ``tables`` (split -> frame) and ``meta`` (its ``splits`` filled in here)."""
    out = Path(out).expanduser().resolve()
    check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        splits = {}
        for name, df in tables.items():
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                           tmp / f"{name}.parquet")
            splits[name] = {"file": f"{name}.parquet", "rows": int(len(df)),
                            **meta.get("splits", {}).get(name, {})}
        meta = {**meta, "splits": splits}
        (tmp / "meta.yaml").write_text(yaml.dump(meta, Dumper=_NoAliasDumper,
                                                 sort_keys=False))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
