"""The input scores as baseline points (docs/DESIGN.md, "Input-score baselines").

An ME dataset carries the upstream (MP) model's prediction per objective, ``score_<obj>``.
Ranking the items by one of them, score_j, is a ranking whose AUC can be measured on
every objective's labels: a point in the same space as the ensembles' points, and the
cheapest one a practitioner can deploy. Each input score's own AUC vector is a baseline
point; "the best single input" for objective k is the best of them on k (usually
score_k itself).

    input_aucs(file, objectives) -> (names, B (J, K) AUCs, counts (K, 2))
    experiment_baselines(df, objectives, experiment_dir) -> Baselines or None, note
    versus(F, se, base, z) -> per row "beats" / "within noise of <score>" /
        "dominated by <score>" ("" for rows that did not finish)

A point *beats the baselines* when, against every input score, it is better on some
objective by more than z standard errors of the difference, sqrt(se_row^2 + se_input^2)
(Hanley-McNeil SEs, ``analysis.noise``; z is ``--noise-z``; with unknown SEs the margin is
0, i.e. plain dominance). Otherwise it is marked: "dominated by score_j" when score_j is at
least as good on every objective, else "within noise of score_j" (its only advantages
over score_j are within noise).

The AUCs are measured on the split the trials were evaluated on (``run.eval_split``), read
one score column at a time next to the label columns (the sort holds about 30 bytes a
row), and saved in ``EXP/analysis/baselines.json`` with the split file's size and
modification time, as the label counts are (``analysis.label_counts``): the next run reads
nothing, and a machine without the data uses the saved file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BASELINES_FILE = "baselines.json"       # under EXP/analysis/


@dataclass
class Baselines:
    names: list[str]            # "score_<obj>", one per input score
    F: np.ndarray               # (J, K) AUCs on the experiment's objectives
    se: np.ndarray              # (J, K) Hanley-McNeil SEs
    counts: np.ndarray          # (K, 2) positives, negatives
    where: str                  # which split of which dataset

    def best_single(self, objectives) -> dict:
        """objective -> (best input AUC on it, that input's name)."""
        return {o: (float(self.F[:, k].max()), self.names[int(self.F[:, k].argmax())])
                for k, o in enumerate(objectives)}


def input_aucs(file, objectives) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every ``score_*`` column of a split file ranked against each objective's labels:
    (names, (J, K) exact AUCs, (K, 2) positives and negatives)."""
    import pyarrow.parquet as pq
    import torch
    from trainables.metrics import auc_per_objective
    pf = pq.ParquetFile(file)
    names = pf.schema_arrow.names
    labels = [f"label_{o}" for o in objectives]
    missing = [c for c in labels if c not in names]
    if missing:
        raise ValueError(f"{file}: no column(s) {', '.join(missing)}")
    scores = [c for c in names if c.startswith("score_")]
    if not scores:
        raise ValueError(f"{file}: no score_* columns (no input scores to compare with)")
    def column(name, dtype):            # a writable copy: torch refuses read-only memory
        return np.array(pf.read(columns=[name]).column(0).to_numpy(), dtype=dtype, copy=True)

    y = torch.from_numpy(np.stack([column(c, np.int8) for c in labels], 1))
    pos = y.sum(0, dtype=torch.int64).numpy()
    B = np.stack([auc_per_objective(
        torch.from_numpy(column(c, np.float32)),
        y).numpy() for c in scores])
    return scores, B, np.stack([pos, len(y) - pos], 1).astype(np.float64)


def _lookup(cfg: dict, objectives, saved: dict):
    """(names, B, counts, where) for one trial's data, from the saved file when the
    split is unchanged or unreachable; (None, why not) otherwise."""
    from .label_counts import _eval_split, _key, dataset_folder, split_file
    key, split = _key(cfg), _eval_split(cfg)
    entry = saved.get(key) if isinstance(saved.get(key), dict) else None
    have = entry is not None and all(o in entry.get("objectives", []) for o in objectives)

    def from_entry(where):
        idx = [entry["objectives"].index(o) for o in objectives]
        B = np.asarray(entry["auc"], dtype=np.float64)[:, idx]
        return (entry["names"], B, np.asarray(entry["counts"], dtype=np.float64)[idx], where)

    try:
        file = split_file(dataset_folder(cfg.get("data")), split)
        st = file.stat()
    except (ValueError, OSError) as e:
        if have:
            return from_entry(f"saved {BASELINES_FILE} (the dataset is not reachable here)")
        return None, f"{split} split not found ({str(e).splitlines()[0][:160]})"
    where = f"the {split} split of {file.parent}"
    if have and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return from_entry(where)
    try:
        names, B, counts = input_aucs(file, objectives)
    except (ValueError, OSError) as e:
        return None, f"{file}: input scores not readable ({str(e).splitlines()[0][:160]})"
    saved[key] = {"data": cfg.get("data"), "split": split, "file": str(file),
                  "size": st.st_size, "mtime_ns": st.st_mtime_ns, "names": names,
                  "objectives": list(objectives), "auc": B.tolist(), "counts": counts.tolist()}
    return names, B, counts, where


def experiment_baselines(df, objectives, experiment_dir=None):
    """(Baselines, note) for the experiment's data, or (None, why not). All finished
    rows must share one dataset and split: a frontier over several has no one baseline."""
    from .label_counts import _key, _load_saved
    from .noise import auc_se
    from .results import trial_config
    objectives = list(objectives)
    finished = df[df["status"] == "TERMINATED"] if len(df) else df
    configs = {}
    for tdir in dict.fromkeys(finished["dir"].astype(str)) if len(finished) else []:
        cfg = trial_config(Path(tdir))
        configs.setdefault(_key(cfg), cfg)
    if len(configs) != 1:
        return None, ("no finished trial" if not configs else
                      f"the trials use {len(configs)} datasets/splits: no one baseline")
    path = None if experiment_dir is None else Path(experiment_dir) / "analysis" / BASELINES_FILE
    saved = _load_saved(path)
    before = json.dumps(saved, sort_keys=True, default=str)
    found = _lookup(next(iter(configs.values())), objectives, saved)
    if path is not None and json.dumps(saved, sort_keys=True, default=str) != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=1, default=str))
    if found[0] is None:
        return None, found[1]
    names, B, counts, where = found
    se = auc_se(B, counts[None, :, 0], counts[None, :, 1])
    return Baselines(list(names), B, se, counts, where), f"input scores from {where}"


def versus(F, se, base: Baselines, z: float = 1.0) -> list[str]:
    """Each row of ``F`` (n, K AUCs) against the input scores (see the module docstring)."""
    F = np.asarray(F, dtype=np.float64)
    S = np.broadcast_to(np.asarray(se, dtype=np.float64), F.shape)
    out = []
    for f, s in zip(F, S):
        if not np.isfinite(f).all():
            out.append("")
            continue
        margin = z * np.sqrt(s[None, :] ** 2 + base.se ** 2)
        margin = np.where(np.isfinite(margin), margin, 0.0)
        gain = f[None, :] - base.F
        beaten = (gain > margin).any(axis=1)             # per input score
        if beaten.all():
            out.append("beats")
            continue
        dominated = np.flatnonzero((gain <= 0).all(axis=1))
        j = int(dominated[0]) if len(dominated) else int(np.flatnonzero(~beaten)[0])
        out.append(f"{'dominated by' if len(dominated) else 'within noise of'} {base.names[j]}")
    return out


def print_baselines(df, objectives, base: Baselines, front, hv_ref=None, file=None) -> None:
    """The input scores' points, the best single input per objective, and the frontier
    rows that do not beat them (``vs_baseline`` column)."""
    import sys
    from .frontier import hypervolume
    p = lambda *a: print(*a, file=file or sys.stdout)  # noqa: E731
    p(f"  input scores (baselines, {base.where}):")
    for name, row, s in zip(base.names, base.F, base.se):
        p(f"  b {name[:14]:14s} {'input score':24s} " +
          " ".join(f"{v:10.4f}" for v in row) + f" {row.sum():8.4f}" +
          "   ±SE " + ", ".join(f"{x:.4f}" for x in s))
    best = base.best_single(objectives)
    p("  best single input per objective: " + ", ".join(
        f"{o} {v:.4f} ({n})" for o, (v, n) in best.items()))
    if hv_ref is not None:
        p(f"  hypervolume of the input scores alone: {hypervolume(base.F, hv_ref):.6g} "
          f"(same reference)")
    marks = df["vs_baseline"].astype(str).to_numpy()
    weak = [i for i in np.asarray(front, dtype=int).tolist() if marks[i] != "beats"]
    p(f"  frontier points that do not beat the input scores: {len(weak)} of {len(front)}" +
      "".join(f"\n    {df['trial_id'].iloc[i]}: {marks[i]}" for i in weak[:20]) +
      ("\n    ..." if len(weak) > 20 else ""))
