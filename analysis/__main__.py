"""python -m analysis frontier EXPERIMENT [--epoch own|final|sum] [--use point|final|best]
                                         [--baseline TRIAL | --ref A,B,..] [--noise-z Z]
python -m analysis pick EXPERIMENT --rule fair|knee|constraint|weights|ideal [...]
python -m analysis rerun EXPERIMENT --point TRIAL_ID|RULE --seeds N [--epochs E]
python -m analysis export EXPERIMENT --point TRIAL_ID|RULE [--out DIR] [--nearest-checkpoint]
python -m analysis report EXPERIMENT (--data ME_DATASET | --logs DIR --train-days A:B
                                      --score-days C:D) [--seeds 0,1,2] [--docs DIR]

Works on the experiment folder alone (no Ray running) except rerun and report, which train.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml


def _load(experiment, epoch: str = "own"):
    from .results import experiment_meta, load_results
    df = load_results(experiment, epoch)
    if not len(df):
        raise ValueError(f"{experiment}: no trials recorded yet")
    return df, df.attrs["objectives"], experiment_meta(experiment)


def _parse_map(text: str, objectives, what: str) -> dict:
    out = {}
    for part in filter(None, (text or "").split(",")):
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError(f"{what}: {part!r} is not objective=value")
        if k not in objectives:
            raise ValueError(f"{what}: unknown objective {k!r}; objectives: {', '.join(objectives)}")
        out[k] = float(v)
    return out


def cmd_frontier(a) -> int:
    from .results import trial_row
    from .frontier import hypervolume_curve
    from .plots import plot_hypervolume, plot_parallel, plot_tradeoffs
    from .summary import print_summary
    from .results import auc_matrix
    from .frontier import worst_point
    from .noise import add_noise
    df, objectives, meta = _load(a.experiment, a.epoch)
    exp = Path(a.experiment)
    F = auc_matrix(df, objectives, a.use)
    ref, ref_label = None, "worst value per objective"
    if a.baseline:
        i = trial_row(df, a.baseline)
        ref, ref_label = F[i], f"baseline trial {df['trial_id'][i]}"
        if not np.isfinite(ref).all():
            raise ValueError(f"baseline trial {a.baseline} did not finish")
    elif a.ref:
        ref = np.array([float(v) for v in a.ref.split(",")])
        ref_label = "given point"
    if ref is None and np.isfinite(F).all(axis=1).any():
        ref = worst_point(F)
    df, _ = add_noise(df, objectives, F, ref, a.noise_z, exp)    # se/<obj>, within_noise, ...
    base, base_note = _baselines(df, objectives, F, a.noise_z, exp)   # vs_baseline column
    columns = [c.strip() for c in (a.columns or "").split(",") if c.strip()]
    info = print_summary(df, objectives, a.uri, which=a.use, ref=ref, ref_label=ref_label,
                         columns=columns)
    print(f"  points: {_epoch_text(a)}")
    if base is not None:
        from .baselines import print_baselines
        print_baselines(df, objectives, base, info["front"], info["ref"])
    else:
        print(f"  input scores: not shown ({base_note})")
    out = exp / "analysis"
    out.mkdir(exist_ok=True)
    front = info["front"]
    df.assign(on_frontier=[i in set(front) for i in range(len(df))]).to_csv(
        out / "results.csv", index=False)
    df.to_parquet(out / "results.parquet", index=False) if _has_pyarrow() else None
    df.iloc[front].to_csv(out / "frontier.csv", index=False)
    _write_frontier_json(out / "frontier.json", df, objectives, info, a, ref_label, base)
    pngs = []
    if len(front):
        labels = df["trial_id"].astype(str).tolist()
        groups = df["group"].astype(str).tolist()
        se = df[[f"se/{o}" for o in objectives]].to_numpy(dtype=float)
        pngs.append(plot_tradeoffs(F, objectives, groups, front, out / "tradeoffs.png",
                                   labels=labels, title=_title(a.uri), se=se,
                                   within=df["within_noise"].to_numpy(dtype=object),
                                   baselines=base, marked=_marked(df, front)))
        pngs.append(plot_parallel(F, objectives, front, out / "parallel.png", labels=labels,
                                  groups=groups))
        order = np.argsort(df["finished_at"].to_numpy(dtype=float), kind="stable")
        # one step per row: a population trial's members enter one by one, in row order
        curve = hypervolume_curve(F[order], info["ref"], trials=None)
        pngs.append(plot_hypervolume(curve, out / "hypervolume.png", title=_title(a.uri)))
    print(f"  plots: {', '.join(str(p) for p in pngs) or 'none (no finished trial)'}")
    print(f"  tables: {out / 'results.csv'}, {out / 'frontier.csv'}, {out / 'frontier.json'}")
    wb = (meta.get("tracking") or {}).get("wandb") or {}
    mode = a.wandb or wb.get("mode", "offline")
    if len(front) and mode != "disabled":
        from .wandb_log import log_frontier
        folder = log_frontier(exp, df, objectives, front, info["hypervolume"], pngs,
                              project=wb.get("project", "paretune"), mode=mode,
                              entity=wb.get("entity"), group=wb.get("group"))
        print(f"  W&B frontier run ({mode}): {folder}" +
              ("  (upload with: wandb sync " + str(folder) + ")" if mode == "offline" else ""))
    return 0


def _epoch_text(a) -> str:
    """Which AUCs the table shows, in words."""
    if a.use == "point":
        return {"own": "each trial's epoch best for its own weights (--epoch own; final epoch "
                       "for trials without weights)",
                "final": "each trial's last epoch (--epoch final)",
                "sum": "each trial's epoch with the best AUC sum (--epoch sum)"}[a.epoch]
    return {"final": "each trial's last epoch (--use final)",
            "best": "each objective's best epoch (--use best: no single model)"}[a.use]


def _baselines(df, objectives, F, z, exp):
    """The input scores' points and each row's ``vs_baseline`` mark (empty without them);
    returns (Baselines or None, note)."""
    from .baselines import experiment_baselines, versus
    base, note = experiment_baselines(df, objectives, exp)
    if base is None:
        df["vs_baseline"] = ""
        return None, note
    se = df[[f"se/{o}" for o in objectives]].to_numpy(dtype=float)
    df["vs_baseline"] = versus(F, se, base, z)
    return base, note


def _marked(df, front) -> list[int]:
    """Frontier rows that do not beat the input scores."""
    marks = df["vs_baseline"].astype(str).to_numpy()
    return [i for i in np.asarray(front, dtype=int).tolist() if marks[i] not in ("", "beats")]


def _write_frontier_json(path, df, objectives, info, a, ref_label, base=None) -> None:
    """The frontier and the rows within noise of it, with the reference point, the
    hypervolume and how the noise was measured (docs/DESIGN.md, "Frontier noise")."""
    import json
    front = set(np.asarray(info["front"]).tolist())
    near = df["within_noise"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    rows = [i for i in range(len(df)) if i in front or near[i]]
    cols = ["trial_id", "group", "epoch", "epoch_rule", "checkpoint"] + [
        c for c in df.columns if c.split("/", 1)[0] in
        ("auc", "best", "se", "n_pos", "n_neg", "pref")] + \
        ["within_noise", "hv_contribution", "vs_baseline"]
    points = json.loads(df.iloc[rows][cols].assign(
        on_frontier=[i in front for i in rows]).to_json(orient="records"))
    ref = info["ref"]
    path.write_text(json.dumps({
        "experiment": str(a.uri), "objectives": list(objectives), "use": a.use,
        "epoch_rule": a.epoch,
        "baselines": None if base is None else {
            "where": base.where, "points": [
                {"name": n, "auc": dict(zip(objectives, f.tolist())),
                 "se": dict(zip(objectives, s.tolist()))}
                for n, f, s in zip(base.names, base.F, base.se)],
            "best_single": {o: {"auc": v, "input": n}
                            for o, (v, n) in base.best_single(objectives).items()}},
        "reference": {"point": None if ref is None else np.asarray(ref).tolist(),
                      "label": ref_label},
        "hypervolume": info["hypervolume"] if np.isfinite(info["hypervolume"]) else None,
        "noise": df.attrs.get("noise"), "points": points}, indent=1))


def _title(uri: str) -> str:
    return str(uri).rstrip("/").rsplit("/", 1)[-1]


def _has_pyarrow() -> bool:
    import importlib.util
    return importlib.util.find_spec("pyarrow") is not None


def _pick(df, objectives, a):
    from .pick import select
    from .results import auc_matrix, trial_row
    F = auc_matrix(df, objectives, a.use)
    params = {}
    if a.rule == "fair" and a.baseline:
        params["baseline"] = trial_row(df, a.baseline)
    if a.rule == "constraint":
        params["floors"] = _parse_map(a.floors, objectives, "--floors")
    if a.rule == "weights":
        params["weights"] = _parse_map(a.weights, objectives, "--weights")
    for item in getattr(a, "param", None) or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError(f"--param {item!r} is not NAME=VALUE")
        params[k] = yaml.safe_load(v)
    return select(F, objectives, a.rule, labels=df["trial_id"].astype(str).tolist(), **params)


def cmd_pick(a) -> int:
    from .results import row_config
    df, objectives, _ = _load(a.experiment, a.epoch)
    sel = _pick(df, objectives, a)
    row = df.iloc[sel.index]
    cfg = row_config(row)
    from .export import preference_text          # a conditioned trial's grid point
    reason = "; ".join(filter(None, [sel.reason, preference_text(row, objectives)]))
    print(f"picked {row['trial_id']} ({row['group']}) by rule {sel.rule}: {reason}")
    print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
    out = Path(a.experiment) / "analysis"
    out.mkdir(exist_ok=True)
    (out / f"pick-{sel.rule}.yaml").write_text(
        f"# trial {row['trial_id']}, rule {sel.rule}: {reason}\n" +
        yaml.safe_dump(cfg, sort_keys=False))
    print(f"saved: {out / f'pick-{sel.rule}.yaml'}")
    return 0


def _point(a):
    """(results, row index) of ``--point``: a trial id, or the row ``pick --rule`` would
    choose with the same options."""
    from .pick import SELECTORS
    from .results import trial_row
    df, objectives, _ = _load(a.experiment, a.epoch)
    if a.point in SELECTORS:
        a.rule = a.point
        return df, _pick(df, objectives, a).index
    return df, trial_row(df, a.point)


def cmd_export(a) -> int:
    """A frontier point's model (a grid point's with its preference) as a folder to serve."""
    from .export import describe, export_point
    df, i = _point(a)
    print(describe(export_point(df, i, a.out, nearest=a.nearest_checkpoint)))
    return 0


def cmd_rerun(a) -> int:
    """Training needs Ray: the same trial runner and cluster handling as ``search run``."""
    from search.rerun import format_summary, rerun
    df, i = _point(a)
    summary = rerun(a.uri, str(df["trial_id"][i]), a.seeds, a.epochs, address=a.address,
                    num_cpus=a.num_cpus, storage_endpoint=a.storage_endpoint)
    print(format_summary(summary))
    return 0


def _locate(a):
    """EXPERIMENT as given (a folder or a URI, or a name under --storage) -> a local folder
    to read (a URI's small files are mirrored locally), and the remote storage or None."""
    from trainables.storage import is_uri
    from .location import experiment_folder
    exp = a.experiment
    if a.cmd == "report":
        if is_uri(exp):
            raise ValueError(f"{exp}: a report is written to a local folder; give a folder")
        a.uri = exp
        return Path(exp), None
    if a.storage and not is_uri(exp) and "/" not in exp:
        exp = a.storage.rstrip("/") + "/" + exp
    a.uri = exp
    local, remote = experiment_folder(exp, a.storage_endpoint)
    a.experiment = str(local)
    return local, remote


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis",
                                 description="Frontier, pick and rerun for a paretune experiment.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("experiment", help="the experiment: a folder, a URI (s3://bucket/exps/"
                                          "NAME, gs://..., file://...), or a name under "
                                          "--storage")
        p.add_argument("--storage", help="where experiments live (as for search run), when "
                                         "EXPERIMENT is a name")
        p.add_argument("--storage-endpoint", metavar="URL",
                       help="an S3-compatible server for s3:// URIs (or AWS_ENDPOINT_URL)")
        p.add_argument("--epoch", choices=["own", "final", "sum"], default="own",
                       help="which epoch is a trial's point: own (default): the epoch best "
                            "for the trial's own weights (sum_k w_k AUC_k on validation; "
                            "its loss weights, PE-LTR bounds, member weights or grid "
                            "preference; the last epoch for trials without weights); "
                            "final: the last epoch; sum: the best unweighted AUC sum")
        p.add_argument("--use", choices=["point", "final", "best"], default="point",
                       help="point (default): each row's AUCs at the epoch --epoch chose; "
                            "final: the last epoch's; best: each objective's best epoch "
                            "(a different epoch per objective: no single model)")
        p.add_argument("--baseline", help="a trial id: reference point for hypervolume / fair")

    f = sub.add_parser("frontier", help="non-dominated trials, hypervolume, plots, tables")
    common(f)
    f.add_argument("--ref", help="reference point, comma-separated AUCs in objective order")
    f.add_argument("--columns", help="extra columns in the table, comma-separated: node, host "
                                     "(where each trial ran), epochs, time_s, or any results "
                                     "column such as config/optim.lr")
    f.add_argument("--noise-z", type=float, default=1.0, metavar="Z",
                   help="a trial is within noise of the frontier unless another beats it on "
                        "every objective by more than Z standard errors of the AUC difference "
                        "(default 1; Hanley-McNeil SEs from the validation label counts)")
    f.add_argument("--wandb", choices=["offline", "online", "disabled"],
                   help="log the frontier to W&B (default: the experiment's tracking mode)")
    from .pick import SELECTORS
    p = sub.add_parser("pick", help="choose one frontier trial by a rule, with the reason")
    common(p)
    p.add_argument("--rule", required=True,
                   help="a rule registered in analysis.pick.SELECTORS: " +
                        ", ".join(SELECTORS))
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the rule (repeatable; the value is read as YAML)")
    p.add_argument("--floors", help="constraint: e.g. buy=0.85,follow=0.80")
    p.add_argument("--weights", help="weights: e.g. buy=0.5,follow=0.3,long_view=0.2")
    r = sub.add_parser("rerun", help="retrain a chosen trial with several seeds")
    common(r)
    r.add_argument("--point", required=True, help="a trial id, or a rule name (fair, knee...)")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--epochs", type=int, help="train longer than the search did")
    r.add_argument("--floors")
    r.add_argument("--weights")
    r.add_argument("--address", help="a running Ray cluster ('auto' or HOST:PORT); default: "
                                     "a private local Ray, as search run")
    r.add_argument("--num-cpus", type=int, help="CPUs of the local Ray")
    e = sub.add_parser("export", help="write a frontier point's model (and preference) to serve")
    common(e)
    e.add_argument("--point", required=True, help="a trial id (a grid point <trial>.p<i>, a "
                                                   "member <trial>.m<i>), or a rule name")
    e.add_argument("--out", help="the folder to write (default <experiment>/export-<point>)")
    e.add_argument("--nearest-checkpoint", action="store_true",
                   help="when the chosen epoch's checkpoint was not kept, export the kept "
                        "checkpoint nearest to it (its epoch and AUCs are written and "
                        "printed); without this flag that is an error")
    e.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    e.add_argument("--floors")
    e.add_argument("--weights")
    from .report_cli import add_report_parser, cmd_report
    add_report_parser(sub)
    a = ap.parse_args(argv)
    try:
        local, remote = _locate(a)
        code = {"frontier": cmd_frontier, "pick": cmd_pick, "rerun": cmd_rerun,
                "report": cmd_report, "export": cmd_export}[a.cmd](a)
        if remote is not None and a.cmd not in ("rerun", "export"):   # rerun: the storage
            from .location import publish
            publish(local, remote, "analysis", "wandb", *(p.name for p in Path(local).glob("report*")))
            print(f"  uploaded to {remote.uri}/analysis")
        return code
    except (ValueError, FileNotFoundError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
