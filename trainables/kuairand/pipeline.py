"""The MP stage on KuaiRand: train on the earlier days, score the later ones, write an ME
dataset.

1. Load and join the logs of the train and score days (:mod:`.loader`) and form requests
   (:mod:`.requests`): a user's exposures within ``data.request_window_s`` on one day.
2. Hold out part of the train days for early stopping (``splits.mp_valid``) and fit the
   feature codes on the rest (:mod:`trainables.mp.codes`): values never seen there get
   the "unknown" code 0, on the held-out and the scored days alike.
3. Train the MP model (``MP_MODELS``) with the registry's task weighting
   (:mod:`trainables.mp.train`); score the score days out of sample.
4. Split the scored days into the ME dataset's train/valid/test (:mod:`.splits`) and write
   them with the MP model's per-objective AUC in meta.yaml (``source.mp_auc``): on the
   held-out train rows (``mp_valid``), on every written split, and on all scored rows
   together (``scored``: the steadiest figure for rare objectives, which have few
   positives a day). meta.yaml also keeps the whole resolved config (``source.mp.config``).

The config (:mod:`.config`) is checked when it is loaded; the days and the output folder
here, before the logs are read; every split's classes before training starts.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..mp import build_mp_model, mp_model_params
from ..mp.codes import FeatureCodes
from ..mp.config import task_weighting
from ..mp.train import MPData, auc_by_objective, fit, predict
from ..mp.write import check_out, split_table, write_dataset
from .config import StageConfig, load_config
from .days import fmt_days, sorted_days
from .loader import load_kuairand
from .requests import assign_requests, request_sizes
from .schema import CATEGORICAL_FEATURES, ID_FEATURES, ME_FEATURES, NUMERIC_FEATURES
from .splits import assign_splits, check_classes, check_days, held_out, plan_splits


def check_args(train_days, score_days, cfg: StageConfig, out, *, valid_days=None,
               test_days=None, overwrite: bool = False) -> dict:
    """Everything that can be checked without reading the logs; returns the split plan."""
    check_days(train_days, score_days, cfg.splits.mp_valid)
    check_out(Path(out).expanduser(), overwrite)
    return plan_splits(score_days, cfg.splits.by, valid_days, test_days)


def run(logs, train_days, score_days, out, config: StageConfig | None = None, *,
        valid_days=None, test_days=None, overwrite: bool = False, progress: bool = True,
        command: str | None = None, log=None) -> dict:
    """Run the MP stage end to end with ``config`` (None: the shipped default config);
    returns a report (paths, sizes, AUCs, timings)."""
    log = log or (lambda msg: print(f"[mp] {msg}", file=sys.stderr, flush=True))
    t0 = time.time()
    cfg = config if config is not None else load_config()
    cfg.train.check()
    plan = check_args(train_days, score_days, cfg, out, valid_days=valid_days,
                      test_days=test_days, overwrite=overwrite)
    train_days, score_days = sorted_days(train_days), sorted_days(score_days)
    objectives, seed = cfg.objectives, cfg.train.seed

    data = load_kuairand(logs, train_days + score_days, on_unknown=cfg.data.unknown,
                         include_random=cfg.data.include_random)
    f = data.frame
    f["request_id"] = assign_requests(f["user_id"], f["day"], f["time_ms"],
                                      cfg.data.request_window_s)
    day = f["day"].dt.date.to_numpy()
    is_train = np.isin(day, train_days)
    score = ~is_train
    log(f"loaded {len(f):,} exposures ({int(is_train.sum()):,} on train days "
        f"{fmt_days(train_days)}, {int(score.sum()):,} on score days "
        f"{fmt_days(score_days)}) in {time.time() - t0:.1f} s")
    if any(data.unknown.values()):
        log(f"unknown ids ({cfg.data.unknown}): {data.unknown}")

    duration, unknown_duration = _durations(f["duration_s"].to_numpy(), is_train)
    split_names = assign_splits(f, score, plan, seed)
    check_classes(f, split_names, objectives, plan, f"{Path(logs)} scored days")
    hold = held_out(f, is_train, cfg.splits.mp_valid, train_days, seed)
    fit_rows = is_train & ~hold
    check_classes(f, np.where(hold, "mp_valid", ""), objectives, {"mp_valid": None},
                  f"{Path(logs)} held-out train rows (splits.mp_valid: {cfg.splits.mp_valid})")

    codes = FeatureCodes.fit(f[fit_rows], ID_FEATURES, CATEGORICAL_FEATURES,
                             list(NUMERIC_FEATURES), cfg.data.max_ids)
    labels = np.stack([f[f"label_{o}"].to_numpy() for o in objectives], 1)
    cat, num = codes.categorical(f), codes.numbers(f)

    def part(mask):
        return MPData.from_numpy(cat[mask], num[mask], labels[mask])

    torch.manual_seed(seed)          # the model's initial weights
    net = build_mp_model(cfg.model, len(objectives), codes.spec, cfg.model_params)
    weights = task_weighting(cfg.weighting, objectives, cfg.weighting_params)
    log(f"training {cfg.model} ({sum(p.numel() for p in net.parameters()):,} parameters, "
        f"{cfg.weighting} task weights) on {int(fit_rows.sum()):,} rows, early stopping on "
        f"{int(hold.sum()):,} held-out rows")
    result = fit(net, part(fit_rows), part(hold), weights, cfg.train, objectives,
                 progress=progress, log=log)

    mp_auc = {"mp_valid": result.best_valid_auc}
    tables, split_meta = {}, {}
    features = {name: cat[:, list(codes.vocabs).index(name)] for name in ME_FEATURES}
    for name in plan:
        m = split_names == name
        probs = predict(net, part(m))
        mp_auc[name] = auc_by_objective(probs, labels[m], objectives)
        tables[name] = split_table(f.loc[m, "request_id"], f.loc[m, "user_id"], probs,
                                   labels[m], objectives,
                                   {k: v[m] for k, v in features.items()}, duration[m])
        split_meta[name] = {
            "days": [str(d) for d in sorted(set(day[m]))],
            "positives": {o: int(labels[m, k].sum()) for k, o in enumerate(objectives)}}
    all_probs = np.concatenate([tables[n][[f"score_{o}" for o in objectives]].to_numpy()
                                for n in plan])
    all_labels = np.concatenate([tables[n][[f"label_{o}" for o in objectives]].to_numpy()
                                 for n in plan])
    mp_auc["scored"] = auc_by_objective(all_probs, all_labels, objectives)
    sizes = request_sizes(f.loc[score, "request_id"])
    meta = {
        "name": f"kuairand-mp-{cfg.model}-{cfg.weighting}",
        "objectives": objectives,
        "splits": split_meta,
        "categorical": {f"feat_{n}": codes.vocabs[n].cardinality for n in ME_FEATURES},
        "numeric": [],
        "source": {
            "loader": "trainables.kuairand.loader", "dataset": "kuairand",
            "logs": str(Path(logs).expanduser().resolve()),
            "files": [p.name for p in data.log_files] + [data.user_file.name,
                                                        data.video_file.name],
            "train_days": [str(d) for d in train_days],
            "score_days": [str(d) for d in score_days],
            "split": cfg.splits.by, "request_window_s": cfg.data.request_window_s,
            "request_sizes": sizes,
            "unknown_ids": {**data.unknown, "policy": cfg.data.unknown},
            "features": {"feat_0_means": "unknown (not seen on the MP training rows)",
                         "duration": f"video duration in seconds (the log's duration_ms, "
                                     f"else the video's video_duration; "
                                     f"{int(unknown_duration[score].sum())} scored row(s) "
                                     f"with neither get the train days' median): IPUT's "
                                     f"watch-time denominator"},
            "mp": {"model": cfg.model,
                   "params": {**mp_model_params(cfg.model), **cfg.model_params},
                   "weighting": cfg.weighting, "weighting_params": cfg.weighting_params,
                   "train": cfg.train.as_dict(), "mp_valid": cfg.splits.mp_valid,
                   "mp_valid_days": [str(d) for d in sorted(set(day[hold]))],
                   "fit_rows": int(fit_rows.sum()), "held_out_rows": int(hold.sum()),
                   "best_epoch": result.best_epoch, "seconds": result.seconds,
                   "inputs": {"ids": ID_FEATURES, "categorical": CATEGORICAL_FEATURES,
                              "numeric": list(NUMERIC_FEATURES),
                              "cardinalities": codes.cardinalities,
                              "max_ids": cfg.data.max_ids},
                   "config": cfg.as_dict(), "config_file": cfg.file,
                   "history": result.history},
            "mp_auc": mp_auc,
            "seed": seed,
        },
    }
    if command:
        meta["created_by"] = command
    path = write_dataset(out, tables, meta, overwrite=overwrite)
    seconds = round(time.time() - t0, 1)
    log(f"wrote {path} in {seconds} s")
    return {"out": str(path), "mp_auc": mp_auc, "request_sizes": sizes,
            "rows": {n: len(t) for n, t in tables.items()}, "seconds": seconds,
            "best_epoch": result.best_epoch, "objectives": objectives}


def _durations(seconds: np.ndarray, is_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``duration`` column (seconds, > 0: it divides the scores in EMER's IPUT): a
    row without a known duration gets the median of the train days' known ones (1 s if
    none); returns it and the mask of the rows filled."""
    known = np.isfinite(seconds) & (seconds > 0)
    ref = seconds[known & is_train] if (known & is_train).any() else seconds[known]
    fill = float(np.median(ref)) if len(ref) else 1.0
    return np.where(known, seconds, fill).astype(np.float32), ~known
