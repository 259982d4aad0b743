"""An experiment folder -> one pandas DataFrame, one row per trial (no Ray needed).

Columns: ``trial_id``, ``status`` (TERMINATED, ERROR, RUNNING, PENDING, ...), ``error``
(the last line of the trial's error, if any), ``group`` (model family + loss kind),
``member`` (-1, or the member index: a population trial gives one row per member, with
trial id ``<trial>.m<i>``, its own metrics, config and, if it diverged, error),
``point`` (-1, or the grid point: a conditioned trial, trainables.conditioned, gives one
row per point of its preference grid, trial id ``<trial>.p<i>``, with its metrics and its
preference as ``pref/<obj>``, also its ``weight/<obj>``),
``epochs``, ``time_s``, ``stopped_early`` (a scheduler such as moasha stopped the trial
at a rung: it is TERMINATED and its metrics are those of the epoch it stopped at),
``finished_at``, ``node`` / ``host`` (the Ray node id, first 12
characters, and host name the trial last ran on); the row's point: ``epoch`` (the epoch
the epoch rule chose, ``analysis.epochs``: by default the best for the trial's own weights,
``epoch_rule`` says how it was chosen), per objective ``auc/<obj>``, ``gauc/<obj>``,
``weight/<obj>`` and ``auc_sum`` of that epoch, ``checkpoint`` (the name of that epoch's
checkpoint folder, as Tune reported it, kept or not) and ``own/weight/<obj>`` (the trial's
own scalarization weights, empty when it has none); for every rule r in ``final``,
``own``, ``sum``: ``r/epoch``, ``r/auc/<obj>``, ``r/auc_sum``; ``best/auc/<obj>`` (each
objective's best epoch: no single model) and ``best/auc_sum``; ``config/<section>.<key>``
(the flattened training config as run), ``dir`` (the trial folder).
``df.attrs["objectives"]`` lists the objectives, ``df.attrs["epoch_rule"]`` the rule.

Reads Tune's files directly: each trial folder's ``result.json`` (one JSON line per
report), ``resolved_config.json`` (written by paretune's trainable) or ``params.json``,
``error.txt``, and the newest ``experiment_state-*.json`` for statuses.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .epochs import DEFAULT_RULE, RULES, applied_rule, check_rule, choose_epoch, own_weights

EXPERIMENT_FILE = "paretune.json"


def experiment_meta(experiment_dir) -> dict:
    f = Path(experiment_dir) / EXPERIMENT_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def _statuses(exp: Path) -> dict[str, str]:
    """Trial folder name -> status, from the newest experiment state Tune saved."""
    # names carry the run's start time (a resume adds a newer one; both get rewritten at
    # the end, so modification times cannot tell them apart)
    states = sorted(exp.glob("experiment_state-*.json"), key=lambda p: p.name)
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    out = {}
    for entry in data.get("trial_data", []):
        try:
            t = json.loads(entry[0]) if isinstance(entry[0], str) else entry[0]
            out[Path(t["relative_logdir"]).name] = t["status"]
        except (KeyError, TypeError, json.JSONDecodeError, IndexError):
            continue
    return out


def _read_results(tdir: Path) -> list[dict]:
    f = tdir / "result.json"
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:   # a line cut by a kill
                pass
    return rows


def _error(tdir: Path) -> str:
    f = tdir / "error.txt"
    if not f.is_file():
        return ""
    lines = [ln.strip() for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "failed (no message)"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if not isinstance(v, (list, tuple)) else json.dumps(v)
    return out


def _trial_id_from_dir(name: str) -> str:
    """paretune names trial folders ``<trial id>-<summary>`` (Tune's trial id,
    ``<experiment-id>_<index>``); older experiments used Tune's default
    ``<trainable>_<experiment-id>_<index>_...``."""
    import re
    m = re.match(r"^([0-9a-z]{5}_\d{5})(-|$)", name)
    if m:
        return m.group(1)
    parts = name.split("_")
    for i in range(len(parts) - 1):
        if len(parts[i]) == 5 and parts[i + 1].isdigit() and len(parts[i + 1]) == 5:
            return f"{parts[i]}_{parts[i + 1]}"
    return name


def trial_config(tdir: Path) -> dict:
    """The training config a trial ran with (resolved when paretune's trainable ran it)."""
    for name in ("resolved_config.json", "params.json"):
        f = Path(tdir) / name
        if f.is_file():
            return json.loads(f.read_text())
    return {}


def row_config(row) -> dict:
    """The training config of one results row: the trial's, or its member's; a grid
    point's is its conditioned trial's with ``conditioning.at`` set to the point's
    preference (a rerun then reports that preference's AUCs)."""
    cfg = trial_config(row["dir"])
    point = row.get("point", -1)
    if isinstance(cfg.get("conditioning"), dict) and _index(point) >= 0:
        pref = {k[5:]: float(row[k]) for k in row.keys()
                if str(k).startswith("pref/") and math.isfinite(float(row[k]))}
        return {**cfg, "conditioning": {**cfg["conditioning"], "at": pref}}
    member = row.get("member", -1)
    if isinstance(cfg.get("population"), list) and member is not None and int(member) >= 0:
        from trainables.population import member_configs
        return member_configs(cfg)[int(member)]
    return cfg


def _index(v) -> int:
    """A member/point column value as an int (-1 when missing or NaN)."""
    try:
        return int(v) if v is not None and math.isfinite(float(v)) else -1
    except (TypeError, ValueError):
        return -1


def _point_rows(row: dict, res: list[dict], objectives, cfg: dict, rule: str) -> list[dict]:
    """One row per grid point of a conditioned trial (``<trial>.p<i>``): its metrics
    (``p<i>/...``) at the epoch the rule picks for its preference, which is also its
    ``pref/<obj>`` and ``weight/<obj>``."""
    last = res[-1]
    flat = {f"config/{k}": v for k, v in _flatten(cfg).items()}
    out = []
    for i in range(int(last["points"])):
        pref = {o: last.get(f"p{i}/pref/{o}", math.nan) for o in objectives}
        w = np.array(list(pref.values()), dtype=np.float64)
        w = w / w.sum() if np.isfinite(w).all() and w.sum() > 0 else None
        out.append({**row, "trial_id": f"{row['trial_id']}.p{i}", "member": -1, "point": i,
                    **_metrics(res, objectives, f"p{i}/", w, rule),
                    **{f"weight/{o}": v for o, v in pref.items()},
                    **{f"pref/{o}": v for o, v in pref.items()}, **flat})
    return out


def load_results(experiment_dir, epoch: str = DEFAULT_RULE) -> pd.DataFrame:
    """The results table; ``epoch``: which epoch is each row's point (``analysis.epochs``:
    own, final or sum)."""
    check_rule(epoch)
    exp = Path(experiment_dir)
    if not exp.is_dir():
        raise FileNotFoundError(f"{exp}: no such experiment folder")
    meta = experiment_meta(exp)
    statuses = _statuses(exp)
    trial_dirs = sorted(p.parent for p in exp.glob("*/params.json"))
    all_results = {t: _read_results(t) for t in trial_dirs}
    objectives = list(meta.get("objectives") or [])
    if not objectives:
        keys = {k for res in all_results.values() for r in res for k in r}
        objectives = sorted(k[4:] for k in keys if k.startswith("auc/"))
    rows = []
    for tdir in trial_dirs:
        res = all_results[tdir]
        last = res[-1] if res else {}
        cfg = trial_config(tdir)
        err = _error(tdir)
        planned = cfg.get("optim", {}).get("epochs")
        reached = isinstance(planned, int) and last.get("epoch", 0) >= planned
        status = statuses.get(tdir.name) or ("ERROR" if err else
                                             "TERMINATED" if reached or last.get("done") else
                                             "INCOMPLETE" if res else "PENDING")
        if last.get("error"):       # a deterministic failure the trial recorded itself
            status, err = "ERROR", str(last["error"])[:500]
        row = {"trial_id": last.get("trial_id") or _trial_id_from_dir(tdir.name),
               "status": status, "error": err,
               "node": str(last.get("node_id") or "")[:12], "host": last.get("hostname", ""),
               "group": f"{cfg.get('model', {}).get('family', '?')}+"
                        f"{cfg.get('loss', {}).get('kind', '?')}",
               "epochs": last.get("epoch", 0), "time_s": last.get("time_total_s", math.nan),
               "stopped_early": bool(last.get("stopped_early", False)),
               "finished_at": last.get("timestamp", math.nan), "dir": str(tdir), "point": -1}
        if "checkpoint_path" in last:
            row["checkpoint_path"] = last["checkpoint_path"]
        if isinstance(cfg.get("conditioning"), dict) and last.get("points"):
            rows.extend(_point_rows(row, res, objectives, cfg, epoch))   # one per grid point
            continue
        if not isinstance(cfg.get("population"), list):
            rows.append({**row, "member": -1, **_metrics(res, objectives, "",
                                                         own_weights(cfg, objectives), epoch),
                         **{f"config/{k}": v for k, v in _flatten(cfg).items()}})
            continue
        # a population trial: one row per member, each a point of its own
        from trainables.population import member_configs
        for i, mcfg in enumerate(member_configs(cfg)):
            member = {**row, "trial_id": f"{row['trial_id']}.m{i}", "member": i,
                      **_metrics(res, objectives, f"m{i}/", own_weights(mcfg, objectives),
                                 epoch),
                      **{f"config/{k}": v for k, v in _flatten(mcfg).items()}}
            if last.get(f"m{i}/error"):
                member.update(status="ERROR", error=str(last[f"m{i}/error"]))
            rows.append(member)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["finished_at", "trial_id"], na_position="last").reset_index(drop=True)
    df.attrs["objectives"] = objectives
    df.attrs["experiment"] = str(exp)
    df.attrs["epoch_rule"] = epoch
    return df


def _metrics(res: list[dict], objectives, prefix: str = "", weights=None,
             rule: str = DEFAULT_RULE) -> dict:
    """One model's point (``prefix`` m<i>/ for a population member, p<i>/ for a grid
    point): the metrics of the epoch ``rule`` picks (``analysis.epochs``; ``weights``: the
    model's own), each rule's epoch and AUCs, and each objective's best epoch."""
    row = {}

    def series(key):
        return [r[key] for r in res if isinstance(r.get(key), (int, float))
                and not isinstance(r.get(key), bool) and math.isfinite(r[key])]

    chosen = {r: choose_epoch(res, objectives, r, weights, prefix) for r in RULES}
    for r, i in chosen.items():
        at = res[i] if i is not None else {}
        row[f"{r}/epoch"] = at.get("epoch", math.nan)
        for o in objectives:
            row[f"{r}/auc/{o}"] = at.get(f"{prefix}auc/{o}", math.nan)
        row[f"{r}/auc_sum"] = at.get(f"{prefix}auc_sum", math.nan)
    at = res[chosen[rule]] if chosen[rule] is not None else {}
    row["epoch"] = at.get("epoch", math.nan)
    row["epoch_rule"] = applied_rule(rule, weights)
    row["checkpoint"] = at.get("checkpoint_dir_name")
    for k, o in enumerate(objectives):
        vals = series(f"{prefix}auc/{o}")
        row[f"auc/{o}"] = at.get(f"{prefix}auc/{o}", math.nan)
        row[f"best/auc/{o}"] = max(vals) if vals else math.nan
        row[f"gauc/{o}"] = at.get(f"{prefix}gauc/{o}", math.nan)
        row[f"weight/{o}"] = at.get(f"{prefix}weight/{o}", math.nan)
        row[f"own/weight/{o}"] = math.nan if weights is None else float(weights[k])
    sums = series(f"{prefix}auc_sum")
    row["auc_sum"] = at.get(f"{prefix}auc_sum", math.nan)
    row["best/auc_sum"] = max(sums) if sums else math.nan
    return row


def trial_row(df: pd.DataFrame, trial_id) -> int:
    """The one row whose trial id ends with ``trial_id`` (a full id or its tail)."""
    hits = np.flatnonzero(df["trial_id"].astype(str).str.endswith(str(trial_id)))
    if len(hits) != 1:
        raise ValueError(f"trial {trial_id!r} "
                         f"{'matches several trials' if len(hits) else 'not found'}; trials: "
                         f"{', '.join(df['trial_id'].astype(str))[:1500]}")
    return int(hits[0])


def auc_matrix(df: pd.DataFrame, objectives, which: str = "point") -> np.ndarray:
    """(n, m) AUCs to maximize: each row's point (``point``: the epoch the results' epoch
    rule chose), its last epoch's (``final``) or each objective's best epoch (``best``,
    no single model); NaN for trials that did not finish (they never enter a frontier)."""
    cols = {"point": "auc/", "final": "final/auc/", "best": "best/auc/"}
    if which not in cols:
        raise ValueError(f"which must be one of {', '.join(cols)}, got {which!r}")
    if not len(df):
        return np.zeros((0, len(objectives)))
    prefix = cols[which] if f"{cols[which]}{objectives[0]}" in df else "auc/"
    F = np.array(df[[f"{prefix}{o}" for o in objectives]].to_numpy(dtype=np.float64),
                 copy=True)                                  # pandas 3: views are read-only
    ok = (df["status"] == "TERMINATED").to_numpy()
    F[~ok] = np.nan
    return F


def row_prefix(row) -> str:
    """The prefix of a row's own metrics in its trial's reports: ``m<i>/`` for a population
    member, ``p<i>/`` for a grid point, else ''."""
    member, point = _index(row.get("member", -1)), _index(row.get("point", -1))
    return f"m{member}/" if member >= 0 else f"p{point}/" if point >= 0 else ""


def row_history(row) -> list[dict]:
    """Every report of a row's trial, in order (its ``result.json``)."""
    return _read_results(Path(row["dir"]))
