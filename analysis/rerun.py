"""Retrain a chosen trial's config with several seeds (DESIGN.md §6 rerun).

Reads only the config the trial ran with (``resolved_config.json``), runs one Ray Tune
trial per seed (``run.seed`` = 0..N-1, optionally more epochs), and writes into
``<experiment>/rerun-<trial>/``: ``config.yaml`` (the config, seed left to choose),
``summary.json`` / ``summary.csv`` (per objective mean and std over seeds, and each
seed's values) and ``model.pt`` (the checkpoint of the seed with the best AUC sum; load it
with ``trainables.loop.load_model``).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import yaml

from .results import row_config


def rerun_config(experiment_dir, trial_dir, seeds: int, epochs: int | None = None,
                 num_cpus: int | None = None, cpus_per_trial: float = 1.0,
                 member: int = -1) -> dict:
    """Run the seeds; return the summary dict (also written to disk). ``member``: which
    member of a population trial (its own config, trained alone)."""
    import ray
    from ray import tune
    from trainables.config import resolve_config
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    cfg = row_config({"dir": trial_dir, "member": member})
    if "data" not in cfg:
        raise ValueError(f"{trial_dir}: no training config recorded for this trial")
    cfg = resolve_config(cfg)
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {epochs}")
        cfg["optim"]["epochs"] = int(epochs)
    cfg["run"].update(verbose=False, checkpoint_dir=None, resume_from=None)
    if cfg["run"]["device"] == "auto":
        cfg["run"]["device"] = "cpu"
    objectives = None
    trial_name = Path(trial_dir).name
    out = Path(experiment_dir) / (f"rerun-{_short(trial_name)}" +
                                  (f"-m{member}" if member >= 0 else ""))
    out.mkdir(parents=True, exist_ok=True)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")

    def seed_trial(config):
        from trainables.loop import train_loop_per_worker, tune_reporter
        train_loop_per_worker(config, report=tune_reporter())

    space = copy.deepcopy(cfg)
    space["run"]["seed"] = tune.grid_search(list(range(seeds)))
    print(f"[rerun] {trial_name}: {seeds} seed(s) x {cfg['optim']['epochs']} epochs", flush=True)
    tuner = tune.Tuner(tune.with_resources(seed_trial, {"cpu": cpus_per_trial}),
                       param_space=space,
                       run_config=tune.RunConfig(name="seeds", storage_path=str(out.resolve()),
                                                 verbose=0))
    grid = tuner.fit()
    per_seed, best = [], None
    for r in grid:
        if r.error is not None or not r.metrics:
            print(f"[rerun] seed {r.config['run']['seed']} failed: {r.error}", flush=True)
            continue
        m = r.metrics
        objectives = objectives or [k[4:] for k in m if k.startswith("auc/")]
        per_seed.append({"seed": r.config["run"]["seed"], "auc_sum": m["auc_sum"],
                         **{f"auc/{o}": m[f"auc/{o}"] for o in objectives}})
        if r.checkpoint and (best is None or m["auc_sum"] > best[0]):
            best = (m["auc_sum"], r.checkpoint)
    if not per_seed:
        raise RuntimeError(f"every seed failed; see {out / 'seeds'}")
    keys = [f"auc/{o}" for o in objectives] + ["auc_sum"]
    vals = np.array([[s[k] for k in keys] for s in per_seed])
    summary = {"trial": trial_name, "seeds": len(per_seed), "epochs": cfg["optim"]["epochs"],
               "mean": dict(zip(keys, vals.mean(0).tolist())),
               "std": dict(zip(keys, vals.std(0, ddof=1).tolist() if len(vals) > 1
                               else [0.0] * len(keys))),
               "per_seed": per_seed, "folder": str(out)}
    cfg_out = copy.deepcopy(cfg)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg_out, sort_keys=False))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    import pandas as pd
    pd.DataFrame(per_seed).to_csv(out / "summary.csv", index=False)
    if best is not None:
        with best[1].as_directory() as d:
            shutil.copyfile(Path(d) / "model.pt", out / "model.pt")
    return summary


def _short(name: str) -> str:
    from .results import _trial_id_from_dir
    return _trial_id_from_dir(name)


def format_summary(summary: dict) -> str:
    lines = [f"{summary['trial']}: {summary['seeds']} seed(s), {summary['epochs']} epochs"]
    for k, mean in summary["mean"].items():
        lines.append(f"  {k:24s} {mean:.4f} ± {summary['std'][k]:.4f}")
    lines.append(f"  saved: {summary['folder']}/model.pt, config.yaml, summary.json")
    return "\n".join(lines)
