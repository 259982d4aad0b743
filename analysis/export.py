"""Export one frontier point as a model to serve (docs/DESIGN.md, "Conditioned training").

    python -m analysis export EXPERIMENT --point TRIAL_ID|RULE [--out DIR] [--epoch own|final|sum]
                                    [--nearest-checkpoint]

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
only). The checkpoint exported is the one of the point's epoch (``--epoch``, by default
the epoch best for the trial's own weights: ``analysis.epochs``), whose AUCs the frontier
shows. Tune keeps only some checkpoints of a trial; when that epoch's was not kept,
export says so and stops, unless ``--nearest-checkpoint`` asks for the kept checkpoint
nearest to it (the later one on a tie), whose epoch and AUCs are then written and
printed (docs/DESIGN.md, "Which epoch is a trial's point").
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

PREFERENCE_FILE = "preference.json"


def kept_checkpoints(row) -> dict[int, Path]:
    """Epoch -> checkpoint folder for the checkpoints of a row's trial still on disk (the
    epoch from the trial's reports, ``checkpoint_dir_name``, else from the checkpoint)."""
    from trainables.checkpoints import _load_checkpoint
    from .results import row_history
    named = {r["checkpoint_dir_name"]: r.get("epoch") for r in row_history(row)
             if r.get("checkpoint_dir_name")}
    out = {}
    for f in sorted(Path(row["dir"]).glob("checkpoint_*/model.pt")):
        epoch = named.get(f.parent.name)
        if epoch is None:
            epoch = _load_checkpoint(f.parent).get("epoch")
        if isinstance(epoch, int):
            out[epoch] = f.parent
    return out


def point_checkpoint(row, nearest: bool = False) -> tuple[Path, int | None]:
    """(checkpoint folder, its epoch) of a results row's point: the checkpoint of the
    epoch the row stands for (``row['epoch']``); else, with ``nearest``, the kept one
    nearest to it; else a ValueError saying what is kept and what to do."""
    want = row.get("epoch")
    want = int(want) if want is not None and np.isfinite(float(want)) else None
    kept = kept_checkpoints(row)
    if want is None:                       # a table without the epoch: the newest one
        if kept:
            return kept[max(kept)], max(kept)
        return latest_checkpoint(row), None
    if want in kept:
        return kept[want], want
    if not kept:
        raise ValueError(f"trial {row['trial_id']}: no checkpoint with a model.pt in "
                         f"{row['dir']}; export needs a trial that finished at least one epoch")
    near = min(kept, key=lambda e: (abs(e - want), -e))
    if not nearest:
        raise ValueError(
            f"trial {row['trial_id']}: its point is epoch {want} ({row.get('epoch_rule')} "
            f"rule), whose checkpoint ({row.get('checkpoint') or 'none reported'}) was not "
            f"kept; kept epochs: {', '.join(map(str, sorted(kept)))}. Export the nearest kept "
            f"one (epoch {near}, whose AUCs differ) with --nearest-checkpoint, or choose "
            f"another rule with --epoch final|own|sum")
    return kept[near], near


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


def export_point(df, i: int, out=None, nearest: bool = False) -> Path:
    """Write row ``i`` of a results table (``analysis.results.load_results``) as a
    servable model: the checkpoint of the row's epoch (``nearest``: the kept one nearest
    to it, see :func:`point_checkpoint`); returns the folder."""
    from trainables.checkpoints import _load_checkpoint, _save_checkpoint
    from .results import _index, row_config
    row = df.iloc[i]
    objectives = list(df.attrs["objectives"])
    if row["status"] != "TERMINATED":
        raise ValueError(f"trial {row['trial_id']} is {row['status']}"
                         f"{': ' + str(row['error']) if row.get('error') else ''}; export a "
                         f"finished point")
    source, epoch = point_checkpoint(row, nearest)
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
    aucs = _epoch_aucs(row, payload["objectives"], payload.get("epoch"))
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
        "epoch": payload.get("epoch"), "point_epoch": _int(row.get("epoch")),
        "epoch_rule": row.get("epoch_rule"), "source": str(source),
        "serve": "trainables.serve.load(folder).score(scores, cat, num[, w])"}, indent=1))
    return folder


def _int(v):
    return int(v) if v is not None and np.isfinite(float(v)) else None


def _epoch_aucs(row, objectives, epoch) -> dict:
    """The row's validation AUCs at ``epoch`` (its point's when that is the epoch)."""
    if epoch is None or epoch == _int(row.get("epoch")):
        return {o: float(row[f"auc/{o}"]) for o in objectives}
    from .results import row_history, row_prefix
    prefix = row_prefix(row)
    at = next((r for r in row_history(row) if r.get("epoch") == epoch), {})
    return {o: float(at.get(f"{prefix}auc/{o}", math.nan)) for o in objectives}


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
    epoch = f"epoch {info.get('epoch')}"
    if info.get("point_epoch") is not None and info["point_epoch"] != info.get("epoch"):
        epoch += (f", the kept checkpoint nearest to the point's epoch {info['point_epoch']} "
                  f"({info.get('epoch_rule')} rule)")
    return (f"exported {info['trial']} ({what}; {epoch}; AUCs {aucs}) to {folder}\n"
            f"  serve: from trainables.serve import load; load({str(folder)!r})"
            f".score(scores, cat, num{', w' if pref else ''})")


def preference_text(row, objectives) -> str | None:
    """``"preference buy 0.300, ..."`` for a grid point's row, None for other rows."""
    from .results import _index
    if _index(row.get("point", -1)) < 0:
        return None
    w = np.array([float(row[f"pref/{o}"]) for o in objectives])
    return "preference " + ", ".join(f"{o} {x:.3f}" for o, x in zip(objectives, w))
