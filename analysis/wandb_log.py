"""Log an experiment's frontier to W&B as one summary run: a table of every finished trial
(with an ``on_frontier`` column), a scatter of the first two objectives, the frontier's
hypervolume, and the PNG plots. Offline by default (``wandb sync`` uploads later)."""
from __future__ import annotations

import os
from pathlib import Path


def log_frontier(experiment_dir, df, objectives, front, hv, pngs=(), project="paretune",
                 mode="offline", entity=None, group=None) -> str | None:
    """Returns the run's local folder, or None when W&B is disabled."""
    if mode == "disabled":
        return None
    import wandb
    exp = Path(experiment_dir)
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project=project, entity=entity, group=group or exp.name,
                     name=f"{exp.name}-frontier", job_type="frontier", mode=mode,
                     dir=str(exp), reinit="finish_previous",
                     config={"experiment": str(exp), "objectives": list(objectives)})
    try:
        front = set(int(i) for i in front)
        cols = ["trial_id", "group", "status"] + [f"auc/{o}" for o in objectives] + \
            ["auc_sum", "on_frontier"]
        table = wandb.Table(columns=cols)
        for i, r in df.iterrows():
            table.add_data(str(r["trial_id"]), str(r["group"]), str(r["status"]),
                           *[float(r[f"auc/{o}"]) for o in objectives], float(r["auc_sum"]),
                           i in front)
        log = {"trials": table, "hypervolume": hv, "frontier_size": len(front)}
        if len(objectives) >= 2:
            a, b = (f"auc/{o}" for o in objectives[:2])
            log["tradeoff"] = wandb.plot.scatter(table, a, b, title=f"{a} vs {b}")
        for p in pngs:
            log[f"plot/{Path(p).stem}"] = wandb.Image(str(p))
        run.log(log)
        run.summary["hypervolume"] = hv
        return str(Path(run.dir).parent)
    finally:
        run.finish()
