"""Export one frontier point as a model to serve (docs/DESIGN.md, "Conditioned training").

    python -m analysis export EXPERIMENT --point TRIAL_ID|RULE [--out DIR]

writes ``DIR`` (default ``<experiment>/export-<point>``) with

- ``model.pt``: the point's model as a paretune checkpoint (weights and plain data, read
  back with ``torch.load(weights_only=True)``; ``trainables.checkpoints.load_model``
  rebuilds it): a conditioned trial's whole model (its input includes the preference),
  a population member's own slice, or an ordinary trial's model; its ``config`` is the
  point's (a grid point's has ``conditioning.at`` = its preference);
- ``preference.json``: the trial and point, the objectives, the chosen preference (null
  for a model that was not conditioned) and the AUCs the trial reported for the point.

Serve it with ``trainables.serve.load(DIR).score(scores, cat, num)`` (the exported
preference) or ``.score(scores, cat, num, w)`` (any other preference, conditioned models
only). The trial's last checkpoint is the one exported: the model of its last reported
epoch, whose AUCs the frontier shows with ``--use final``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

PREFERENCE_FILE = "preference.json"


def latest_checkpoint(row) -> Path:
    """The newest checkpoint folder of a results row's trial (Tune's
    ``checkpoint_<n>/``, else the recorded ``checkpoint_path``)."""
    found = sorted(Path(row["dir"]).glob("checkpoint_*/model.pt"),
                   key=lambda p: p.parent.name)
    if found:
        return found[-1].parent
    path = row.get("checkpoint_path")
    if isinstance(path, str) and (Path(path) / "model.pt").is_file():
        return Path(path)
    raise ValueError(f"trial {row['trial_id']}: no checkpoint with a model.pt in {row['dir']}; "
                     f"export needs a trial that finished at least one epoch")


def export_point(df, i: int, out=None) -> Path:
    """Write row ``i`` of a results table (``analysis.results.load_results``) as a
    servable model; returns the folder."""
    from trainables.checkpoints import _load_checkpoint, _save_checkpoint
    from .results import _index, row_config
    row = df.iloc[i]
    objectives = list(df.attrs["objectives"])
    if row["status"] != "TERMINATED":
        raise ValueError(f"trial {row['trial_id']} is {row['status']}"
                         f"{': ' + str(row['error']) if row.get('error') else ''}; export a "
                         f"finished point")
    source = latest_checkpoint(row)
    payload = _load_checkpoint(source)
    cfg = payload["config"]
    member, point = _index(row.get("member", -1)), _index(row.get("point", -1))
    state = payload["model"]
    if member >= 0 and isinstance(cfg.get("population"), list):
        state = _member_state(payload, member)
    config = row_config(row)
    if member >= 0 or point >= 0:
        from trainables.config import resolve_config
        config = resolve_config(config)
    preference = None
    if point >= 0:
        preference = {o: float(row[f"pref/{o}"]) for o in objectives}
    elif cfg.get("conditioning") is not None:
        raise ValueError(f"trial {row['trial_id']} is conditioned: export one of its grid "
                         f"points ({row['trial_id']}.p<i>)")
    aucs = {o: float(row[f"auc/{o}"]) for o in payload["objectives"]}
    folder = Path(out) if out else \
        Path(df.attrs["experiment"]) / f"export-{str(row['trial_id']).replace('.', '-')}"
    _save_checkpoint(folder, {
        "model": state, "config": config, "objectives": list(payload["objectives"]),
        "features": payload["features"], "epoch": payload.get("epoch"),
        "step": payload.get("step"), "metrics": {f"auc/{o}": v for o, v in aucs.items()}})
    (folder / PREFERENCE_FILE).write_text(json.dumps({
        "trial": str(row["trial_id"]), "point": point if point >= 0 else None,
        "member": member if member >= 0 else None, "objectives": list(payload["objectives"]),
        "preference": preference, "auc": aucs,
        "auc_sum": float(sum(v for v in aucs.values() if math.isfinite(v))),
        "epoch": payload.get("epoch"), "source": str(source),
        "serve": "trainables.serve.load(folder).score(scores, cat, num[, w])"}, indent=1))
    return folder


def _member_state(payload: dict, member: int) -> dict:
    """Population member ``member``'s weights as one ordinary model's state dict."""
    from trainables.models import FeatureSpec, build_model
    from trainables.population import PopulationModel
    from trainables.requests import RequestPopulationModel, needs_requests
    cfg, f = payload["config"], payload["features"]
    features = FeatureSpec(tuple(f["categorical"].items()), tuple(f["numeric"]))
    params = {k: v for k, v in cfg["model"].items() if k != "family"}
    nets = [build_model(cfg["model"]["family"], len(payload["objectives"]), features, params)
            for _ in cfg["population"]]
    cls = RequestPopulationModel if needs_requests(nets[0]) else PopulationModel
    pop = cls(nets)
    pop.load_state_dict(payload["model"])
    return pop.member_state_dict(member)


def describe(folder: Path) -> str:
    info = json.loads((Path(folder) / PREFERENCE_FILE).read_text())
    pref = info["preference"]
    what = ("preference " + ", ".join(f"{o} {w:.3f}" for o, w in pref.items())) if pref \
        else "no preference input (a model of one fixed trade-off)"
    aucs = ", ".join(f"{o} {v:.4f}" for o, v in info["auc"].items())
    return (f"exported {info['trial']} ({what}; AUCs {aucs}) to {folder}\n"
            f"  serve: from trainables.serve import load; load({str(folder)!r})"
            f".score(scores, cat, num{', w' if pref else ''})")


def preference_text(row, objectives) -> str | None:
    """``"preference buy 0.300, ..."`` for a grid point's row, None for other rows."""
    from .results import _index
    if _index(row.get("point", -1)) < 0:
        return None
    w = np.array([float(row[f"pref/{o}"]) for o in objectives])
    return "preference " + ", ".join(f"{o} {x:.3f}" for o, x in zip(objectives, w))
