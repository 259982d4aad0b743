"""Log an experiment's frontier to W&B as one summary run, in the trials' group: a table
of every trial (its flattened training config: model, loss, weights, optimizer, ...; its
AUCs; an ``on_frontier`` column; with the frontier-noise columns of
:func:`analysis.noise.add_noise`, ``se/<obj>``, ``within_noise`` and ``hv_contribution``),
a scatter for every pair of objectives, the frontier's hypervolume, and the PNG plots
(trade-offs, parallel coordinates, hypervolume over time). Offline by default (``wandb
sync`` uploads later)."""
from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

from pandas import NA as _NA     # a nullable column's missing value

# config sections always shown; other config columns only where trials differ
CONFIG_SECTIONS = ("model.", "loss.", "weighting.", "optim.")


def noise_columns(df, objectives) -> list[str]:
    """The frontier-noise columns present in ``df``, in table order."""
    want = [f"se/{o}" for o in objectives] + ["within_noise", "hv_contribution"]
    return [c for c in want if c in df.columns]


def _cell(v):
    """A table cell: plain Python, None for missing/NaN."""
    if v is None or v is _NA:
        return None
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, default=str)


def config_columns(df) -> list[str]:
    """The ``config/...`` columns for the table: model, loss, weighting and optim ones, and
    any other that is not the same for every trial."""
    out = []
    for c in df.columns:
        if not str(c).startswith("config/"):
            continue
        key = str(c)[len("config/"):]
        values = {json.dumps(_cell(v), default=str) for v in df[c]}
        if key.startswith(CONFIG_SECTIONS) or len(values) > 1:
            out.append(c)
    return out


def trials_table(df, objectives, front):
    """(wandb.Table, its column names): one row per trial."""
    import wandb
    front = set(int(i) for i in front)
    cfg_cols = config_columns(df)
    aucs = [f"auc/{o}" for o in objectives]
    noise = noise_columns(df, objectives)
    names = ["trial_id", "group", "status"] + [c[len("config/"):] for c in cfg_cols] + \
        aucs + ["auc_sum", "on_frontier"] + noise
    rows = []
    for i, (_, r) in enumerate(df.iterrows()):
        rows.append([str(r["trial_id"]), str(r["group"]), str(r["status"])] +
                    [_cell(r[c]) for c in cfg_cols] + [_cell(r[a]) for a in aucs] +
                    [_cell(r["auc_sum"]), i in front] + [_cell(r[c]) for c in noise])
    return wandb.Table(columns=names, data=rows, allow_mixed_types=True), names


def log_frontier(experiment_dir, df, objectives, front, hv, pngs=(), project="paretune",
                 mode="offline", entity=None, group=None) -> str | None:
    """Returns the run's local folder, or None when W&B is disabled. ``group`` defaults to
    the trials' group (:func:`search.tracking.wandb_group`: the experiment's name)."""
    if mode == "disabled":
        return None
    import wandb
    from search.tracking import wandb_group
    from .results import experiment_meta
    exp = Path(experiment_dir)
    meta = experiment_meta(exp)
    group = group or wandb_group((meta.get("tracking") or {}).get("wandb"),
                                 meta.get("name") or exp.name)
    os.environ.setdefault("WANDB_SILENT", "true")
    name = meta.get("name") or exp.name
    run = wandb.init(project=project, entity=entity, group=group,
                     name=f"{name}-frontier", job_type="frontier", mode=mode,
                     dir=str(exp), reinit="finish_previous",
                     config={"experiment": name, "objectives": list(objectives),
                             **({"noise": df.attrs["noise"]} if df.attrs.get("noise") else {})})
    try:
        table, _ = trials_table(df, objectives, front)
        log = {"trials": table, "hypervolume": hv, "frontier_size": len(front)}
        if "within_noise" in df.columns:
            log["within_noise_size"] = int(df["within_noise"].astype("boolean").fillna(False)
                                           .to_numpy(dtype=bool).sum())
        for a, b in itertools.combinations(objectives, 2):      # every pair of objectives
            x, y = f"auc/{a}", f"auc/{b}"
            log[f"tradeoff/{a}-vs-{b}"] = wandb.plot.scatter(table, x, y,
                                                             title=f"AUC {a} vs {b}")
        for p in pngs:
            log[f"plot/{Path(p).stem}"] = wandb.Image(str(p))
        run.log(log)
        run.summary["hypervolume"] = hv
        return str(Path(run.dir).parent)
    finally:
        run.finish()
