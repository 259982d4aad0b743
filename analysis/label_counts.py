"""How many positives and negatives each trial's AUCs were measured on (docs/DESIGN.md,
"Frontier noise"): per objective, the label counts of the split the training loop
evaluates on (``run.eval_split``, ``valid`` by default).

    eval_counts(df, objectives, experiment_dir) -> (counts, note)
        counts: (n, m, 2) floats, [..., 0] positives and [..., 1] negatives of row i's
        objective k, NaN where unknown; note: one line saying where they came from.

Sources, per trial (all the points of a trial share its data), the first that answers:

1. ``n_pos/<obj>`` and ``n_neg/<obj>`` columns of the results table, should the training
   loop report them;
2. the dataset the trial's saved config names (``data.path``, or for ``source: synthetic``
   the cache folder ``$PARETUNE_CACHE/synthetic/<fingerprint>``, which is never generated
   here): only the split's label columns are read, batch by batch. The counts are saved in
   ``EXP/analysis/label_counts.json`` with the split file's size and modification time, so
   the next run reads nothing while the file is unchanged;
3. that saved file, when the dataset is not reachable here (a remote experiment whose data
   lives on the cluster: the file travels with ``analysis/``).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

COUNTS_FILE = "label_counts.json"       # under EXP/analysis/
_MEMO: dict = {}                        # (file, size, mtime, objectives) -> counts


def dataset_folder(data) -> Path:
    """The dataset folder a trial's ``data`` config names, without generating anything."""
    if not isinstance(data, dict):
        raise ValueError(f"the trial's config has no data section (got {str(data)[:80]!r})")
    if "path" in data:
        return Path(str(data["path"])).expanduser()
    if data.get("source") == "synthetic":
        from trainables.data.resolve import synthetic_folder
        return synthetic_folder(data)
    raise ValueError(f"data config names neither a path nor source: synthetic: "
                     f"{json.dumps(data, default=str)[:120]}")


def split_file(folder: Path, split: str) -> Path:
    """The Parquet file of ``split`` in a dataset folder (meta.yaml checked)."""
    from trainables.data.schema import read_meta, split_files
    files = split_files(folder, read_meta(folder))
    if split not in files:
        raise ValueError(f"{folder}: no split {split!r} (the trials evaluated on it); "
                         f"splits: {', '.join(files)}")
    return files[split]


def count_labels(file, objectives) -> dict[str, tuple[int, int]]:
    """Objective -> (positives, negatives) in a split file, reading only ``label_<obj>``
    columns (0/1 by the data contract), once per file version in this process."""
    import pyarrow.parquet as pq
    file = Path(file)
    st = file.stat()
    key = (str(file.resolve()), st.st_size, st.st_mtime_ns, tuple(objectives))
    if key in _MEMO:
        return _MEMO[key]
    pf = pq.ParquetFile(file)
    cols = [f"label_{o}" for o in objectives]
    missing = [c for c in cols if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"{file}: no column(s) {', '.join(missing)}; label columns there: "
                         f"{', '.join(c for c in pf.schema_arrow.names if c.startswith('label_'))}")
    pos = dict.fromkeys(objectives, 0)
    for batch in pf.iter_batches(batch_size=1 << 18, columns=cols, use_threads=False):
        for o in objectives:
            pos[o] += int(np.count_nonzero(batch.column(f"label_{o}").to_numpy(
                zero_copy_only=False)))
    rows = int(pf.metadata.num_rows)
    _MEMO[key] = out = {o: (pos[o], rows - pos[o]) for o in objectives}
    return out


def _eval_split(cfg: dict) -> str:
    from trainables.config import RUN_DEFAULTS
    return str((cfg.get("run") or {}).get("eval_split") or RUN_DEFAULTS["eval_split"])


def _key(cfg: dict) -> str:
    text = json.dumps({"data": cfg.get("data"), "split": _eval_split(cfg)}, sort_keys=True,
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _saved_file(experiment_dir) -> Path | None:
    return None if experiment_dir is None else Path(experiment_dir) / "analysis" / COUNTS_FILE


def _load_saved(path: Path | None) -> dict:
    try:
        data = json.loads(path.read_text()) if path is not None and path.is_file() else {}
    except (OSError, json.JSONDecodeError):     # a broken cache is recounted, not fatal
        return {}
    return data if isinstance(data, dict) else {}


def _lookup(cfg, objectives, saved: dict):
    """(objective -> (pos, neg), where from) or (None, why not) for one trial's config."""
    key, split = _key(cfg), _eval_split(cfg)
    entry = saved.get(key) if isinstance(saved.get(key), dict) else None
    have = entry is not None and all(o in (entry.get("counts") or {}) for o in objectives)
    try:
        file = split_file(dataset_folder(cfg.get("data")), split)
        st = file.stat()
    except (ValueError, OSError) as e:          # DatasetError is a ValueError
        if have:
            return ({o: tuple(entry["counts"][o]) for o in objectives},
                    f"saved {COUNTS_FILE} (the dataset is not reachable here)")
        return None, f"{split} split not found ({str(e).splitlines()[0][:160]})"
    where = f"the {split} split of {file.parent}"
    if have and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return {o: tuple(entry["counts"][o]) for o in objectives}, where
    try:
        counts = count_labels(file, objectives)
    except (ValueError, OSError) as e:          # ArrowInvalid is a ValueError too
        return None, f"{file}: labels not readable ({str(e).splitlines()[0][:160]})"
    saved[key] = {"data": cfg.get("data"), "split": split, "file": str(file),
                  "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                  "counts": {o: list(c) for o, c in counts.items()}}
    return counts, where


def eval_counts(df, objectives, experiment_dir=None) -> tuple[np.ndarray, str]:
    """Positives and negatives behind every row's AUCs (see the module docstring)."""
    from .results import trial_config
    objectives = list(objectives)
    counts = np.full((len(df), len(objectives), 2), np.nan)
    reported = [f"n_{s}/{o}" for s in ("pos", "neg") for o in objectives]
    use_reported = all(c in df.columns for c in reported)
    path = _saved_file(experiment_dir)
    saved = _load_saved(path)
    before = json.dumps(saved, sort_keys=True, default=str)
    by_trial: dict = {}
    sources: dict[str, int] = {}
    for r in range(len(df)):
        row = df.iloc[r]
        if use_reported:
            vals = np.array([row[c] for c in reported], dtype=np.float64)
            if np.isfinite(vals).all():
                counts[r] = vals.reshape(2, -1).T
                sources["the counts the trials reported"] = \
                    sources.get("the counts the trials reported", 0) + 1
                continue
        tdir = str(row.get("dir", ""))
        if tdir not in by_trial:
            cfg = trial_config(Path(tdir)) if tdir else {}
            by_trial[tdir] = _lookup(cfg, objectives, saved)
        found, where = by_trial[tdir]
        sources[where] = sources.get(where, 0) + 1
        if found is not None:
            counts[r] = [found[o] for o in objectives]
    if path is not None and json.dumps(saved, sort_keys=True, default=str) != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=1, default=str))
    return counts, _note(sources, len(df))


def _note(sources: dict[str, int], n: int) -> str:
    if not sources:
        return "no rows"
    parts = [where if k == n else f"{where}: {k} of {n} rows" for where, k in sources.items()]
    return "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more" if len(parts) > 4 else "")


def fmt_count(v) -> str:
    """A count for people: 1234 -> '1,234'; NaN -> '?'."""
    return "?" if v is None or not math.isfinite(float(v)) else f"{int(v):,}"
