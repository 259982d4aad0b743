"""Retrain a chosen trial's config with several seeds, on the same cluster and through
the same trial runner as the search (``search.trial``): the same resources (CPUs, GPUs,
workers per trial), device choice, resolved config, W&B logging and multi-worker path.

Reads only the config the trial ran with (``resolved_config.json``, or a population
member's), runs one Tune trial per seed (``run.seed`` = 0..N-1, optionally more epochs) into
``<experiment>/rerun-<trial>/seeds`` on the experiment's storage, and writes beside it
``config.yaml`` (the config, seed left to choose), ``summary.json`` / ``summary.csv`` (per
objective mean and std over seeds, each seed's values at its point: the epoch best for the
config's own weights, ``analysis.epochs``, as in the analysis) and ``model.pt`` (the
last checkpoint of the seed with the best AUC sum; load it with
``trainables.loop.load_model``).
"""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import yaml


def rerun(experiment, point: str, seeds: int, epochs: int | None = None, address=None,
          num_cpus=None, storage_endpoint=None, rule_params: dict | None = None) -> dict:
    """``point``: a trial id or a pick rule name. Returns the summary (also written)."""
    from analysis.location import experiment_folder
    from analysis.results import experiment_meta, load_results, row_config
    from trainables.config import resolve_config
    from trainables.storage import open_storage
    from .cluster import check_cluster, describe, init_ray
    from .space import SpaceError
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    folder, remote = experiment_folder(experiment, storage_endpoint)
    exp = remote or open_storage(folder)
    df = load_results(folder)
    if not len(df):
        raise ValueError(f"{experiment}: no trials recorded yet")
    i = _row(df, point, rule_params or {})
    row = df.iloc[i]
    cfg = row_config(row)
    if "data" not in cfg:
        raise ValueError(f"{row['dir']}: no training config recorded for this trial")
    cfg = resolve_config(cfg)
    if epochs is not None:
        cfg["optim"]["epochs"] = int(epochs)
    cfg["run"].update(verbose=False, checkpoint_dir=None, resume_from=None)
    meta = experiment_meta(folder)
    from .space import RESOURCES_DEFAULTS
    resources = {**RESOURCES_DEFAULTS, **(meta.get("resources") or {})}
    tid = str(row["trial_id"]).replace(".", "-")
    out = exp.join(f"rerun-{tid}")
    print(f"[rerun] {row['trial_id']}: {seeds} seed(s) x {cfg['optim']['epochs']} epochs on "
          f"{describe(address)}, {resources['workers_per_trial']} worker(s) x "
          f"{resources['cpus_per_worker']} CPU / {resources['gpus_per_worker']} GPU; "
          f"results in {out.uri}", flush=True)
    init_ray(address, num_cpus)
    try:
        check_cluster(resources, out, "this cluster" if address else "the local Ray")
    except SpaceError as e:
        raise ValueError(str(e)) from None
    local_out = Path(folder) / f"rerun-{tid}"      # the driver's W&B runs (uploaded if remote)
    grid = _fit(cfg, seeds, resources, out, _space_of(folder), local_out,
                meta.get("name") or Path(folder).name)      # the trials' W&B group
    if remote is not None and (local_out / "wandb").is_dir():
        out.upload(local_out / "wandb", "wandb")
    return _summarize(grid, cfg, row, out)


def _space_of(folder):
    """The experiment's space as run (for its tracking settings), or None."""
    from .space import SpaceError, load_space
    try:
        return load_space(Path(folder) / "space.yaml")
    except (SpaceError, OSError, ValueError):
        return None


def _row(df, point: str, params: dict) -> int:
    from analysis.pick import SELECTORS, select
    from analysis.results import auc_matrix
    objectives = df.attrs["objectives"]
    if point in SELECTORS:
        F = auc_matrix(df, objectives)
        return select(F, objectives, point, labels=df["trial_id"].astype(str).tolist(),
                      **params).index
    from analysis.results import trial_row
    return trial_row(df, point)


def _fit(cfg: dict, seeds: int, resources: dict, out, exp_space, local_out: Path, name: str):
    from ray import tune
    from .progress import ProgressCallback, file_loggers
    from .tracking import wandb_callback
    from .trial import make_trainable
    space = copy.deepcopy(cfg)
    space["run"]["seed"] = tune.grid_search(list(range(seeds)))
    objectives = list(cfg["data"].get("objectives") or [])
    callbacks = [ProgressCallback(objectives, seeds), *file_loggers()]
    wb = wandb_callback(exp_space, local_out, name=name) if exp_space is not None else None
    tuner = tune.Tuner(
        make_trainable(resources, out.join("seeds").uri, out.endpoint),
        param_space=space,
        run_config=tune.RunConfig(
            name="seeds", storage_path=out.path, storage_filesystem=None if out.local else out.fs,
            verbose=0, callbacks=callbacks + ([wb] if wb is not None else [])))
    return tuner.fit()


def _point_of(result, last: dict, cfg: dict) -> tuple[dict, int | None]:
    """One seed's point: the metrics of the epoch the analysis' rule picks
    (``analysis.epochs``, the epoch best for the config's own weights), and that epoch."""
    from analysis.epochs import chosen_epoch
    frame = getattr(result, "metrics_dataframe", None)
    history = frame.to_dict("records") if frame is not None and len(frame) else [last]
    pick = chosen_epoch(history, cfg)
    if pick["index"] is None:
        return last, last.get("epoch")
    return {**last, **history[pick["index"]]}, pick["epoch"]


def _summarize(grid, cfg: dict, row, out) -> dict:
    per_seed, best, objectives = [], None, None
    for r in grid:
        m = r.metrics or {}
        if r.error is not None or not m or m.get("error"):
            print(f"[rerun] seed {r.config['run']['seed']} failed: {r.error or m.get('error')}",
                  flush=True)
            continue
        objectives = objectives or [k[4:] for k in m if k.startswith("auc/")]
        m, epoch = _point_of(r, m, cfg)
        per_seed.append({"seed": r.config["run"]["seed"], "epoch": epoch,
                         "auc_sum": m["auc_sum"],
                         "node": m.get("node_id", ""), "host": m.get("hostname", ""),
                         **{f"auc/{o}": m[f"auc/{o}"] for o in objectives}})
        if r.checkpoint and (best is None or m["auc_sum"] > best[0]):
            best = (m["auc_sum"], r.checkpoint)
    if not per_seed:
        raise RuntimeError(f"every seed failed; see {out.uri}/seeds")
    keys = [f"auc/{o}" for o in objectives] + ["auc_sum"]
    vals = np.array([[s[k] for k in keys] for s in per_seed])
    summary = {"trial": str(row["trial_id"]), "seeds": len(per_seed),
               "epochs": cfg["optim"]["epochs"],
               "mean": dict(zip(keys, vals.mean(0).tolist())),
               "std": dict(zip(keys, vals.std(0, ddof=1).tolist() if len(vals) > 1
                               else [0.0] * len(keys))),
               "per_seed": per_seed, "folder": out.uri}
    out.write_text("config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    out.write_text("summary.json", json.dumps(summary, indent=1))
    import pandas as pd
    buf = io.StringIO()
    pd.DataFrame(per_seed).to_csv(buf, index=False)
    out.write_text("summary.csv", buf.getvalue())
    if best is not None:
        with best[1].as_directory() as d:
            for f in Path(d).iterdir():        # model.pt and the plain-data config beside it
                if f.is_file():
                    out.write_bytes(f.name, f.read_bytes())
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{summary['trial']}: {summary['seeds']} seed(s), {summary['epochs']} epochs"]
    for k, mean in summary["mean"].items():
        lines.append(f"  {k:24s} {mean:.4f} ± {summary['std'][k]:.4f}")
    lines.append(f"  saved: {summary['folder']}/model.pt, config.yaml, summary.json")
    return "\n".join(lines)
