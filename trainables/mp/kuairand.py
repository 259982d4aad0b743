"""The MP stage on KuaiRand: train on the earlier days, score the later ones, write an ME
dataset.

1. Load and join the logs of the train and score days (:mod:`trainables.data.kuairand`)
   and form requests: a user's exposures within ``request_window_s`` on one day.
2. Hold out part of the train days for early stopping (``mp_valid``: the last train day,
   or a random 10% of the requests) and fit the feature codes on the rest: values never
   seen there get the "unknown" code 0, on the held-out and the scored days alike.
3. Train the MP model; score the score days out of sample.
4. Split the scored days into the ME dataset's train/valid/test (by day: the last score
   day is test, the one before valid, by default; or by user) and write them with the
   MP model's per-objective AUC in meta.yaml (``source.mp_auc``): on the held-out train
   rows (``mp_valid``), on every written split, and on all scored rows together
   (``scored``: the steadiest figure for rare objectives, which have few positives a day).

Every argument is checked before the logs are read, and every split must hold both
classes of every objective (the ME contract) before training starts.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import kuairand as kr
from ..data.schema import DatasetError
from . import build_model, model_params
from .._registry import check_params
from .features import MAX_IDS, Encoder
from .train import MPData, TrainConfig, auc_by_objective, fit, make_weighting, predict
from .write import check_out, split_table, write_dataset

MP_VALID = ("last_day", "random")
SPLITS = ("day", "user")
RANDOM_VALID_SHARE = 0.1
USER_SPLIT = {"train": 0.8, "valid": 0.1, "test": 0.1}


def _days(days) -> list[dt.date]:
    return sorted({kr.parse_day(d) for d in days})


def _fmt(days) -> str:
    days = sorted(days)
    if len(days) > 2 and (days[-1] - days[0]).days + 1 == len(days):
        return f"{days[0]}..{days[-1]}"
    return ", ".join(map(str, days))


def plan_splits(score_days, split: str, valid_days=None, test_days=None) -> dict:
    """ME split -> its days (split by day), or -> None (split by user)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "user":
        if valid_days or test_days:
            raise ValueError("--valid-days/--test-days apply to --split day only")
        return {name: None for name in USER_SPLIT}
    score = _days(score_days)
    valid = _days(valid_days) if valid_days else None
    test = _days(test_days) if test_days else None
    if test is None:
        test = [d for d in score if d not in (valid or [])][-1:]
    if valid is None:
        valid = [d for d in score if d not in test][-1:]
    for name, chosen in (("valid", valid), ("test", test)):
        outside = [d for d in chosen if d not in score]
        if outside:
            raise ValueError(f"--{name}-days {_fmt(outside)} not among the score days "
                             f"{_fmt(score)}")
    both = sorted(set(valid) & set(test))
    if both:
        raise ValueError(f"--valid-days and --test-days overlap on {_fmt(both)}")
    train = [d for d in score if d not in valid and d not in test]
    if not train or not valid or not test:
        raise ValueError(f"a split by day needs at least one score day for each of train, "
                         f"valid and test; the score days {_fmt(score)} give train "
                         f"[{_fmt(train)}], valid [{_fmt(valid)}], test [{_fmt(test)}]. "
                         f"Score more days or use --split user")
    return {"train": train, "valid": valid, "test": test}


def check_args(train_days, score_days, *, objectives, model, model_params_, weighting,
               weighting_params, train_cfg: TrainConfig, request_window_s, mp_valid,
               split, valid_days, test_days, out, overwrite, max_ids=MAX_IDS):
    """Everything that can be checked without reading the logs; returns the split plan."""
    train, score = _days(train_days), _days(score_days)
    both = sorted(set(train) & set(score))
    if both:
        raise ValueError(f"--train-days and --score-days overlap on {_fmt(both)}; the MP "
                         f"model must score days it was not trained on")
    if max(train) >= min(score):
        raise ValueError(f"--score-days must come after --train-days (scores for the ME "
                         f"stage may not use the future): last train day {max(train)}, "
                         f"first score day {min(score)}")
    unknown = [o for o in objectives if o not in kr.OBJECTIVES]
    if unknown or not objectives or len(set(objectives)) != len(objectives):
        raise ValueError(f"--objectives {objectives}: must be distinct names among "
                         f"{', '.join(kr.OBJECTIVES)}")
    check_params("MP model", model, model_params_, model_params(model))
    make_weighting(weighting, objectives, **weighting_params)
    train_cfg.check()
    if not (isinstance(request_window_s, (int, float)) and request_window_s > 0):
        raise ValueError(f"--request-window-s must be > 0 seconds, got {request_window_s!r}")
    if mp_valid not in MP_VALID:
        raise ValueError(f"--mp-valid must be one of {', '.join(MP_VALID)}, got {mp_valid!r}")
    if mp_valid == "last_day" and len(train) < 2:
        raise ValueError(f"--mp-valid last_day needs at least 2 train days (got {_fmt(train)}); "
                         f"add train days or use --mp-valid random")
    check_out(Path(out).expanduser(), overwrite)
    if not isinstance(max_ids, int) or max_ids < 2:
        raise ValueError(f"--max-ids must be an integer >= 2, got {max_ids!r}")
    return plan_splits(score, split, valid_days, test_days)


def _assign_splits(frame: pd.DataFrame, score_mask: np.ndarray, plan: dict,
                   seed: int) -> np.ndarray:
    names = np.full(len(frame), "", dtype=object)
    if all(v is None for v in plan.values()):      # by user
        users = np.unique(frame.loc[score_mask, "user_id"].to_numpy())
        u = np.random.default_rng([seed, 7]).random(len(users))
        edges = np.cumsum(list(USER_SPLIT.values()))
        pick = np.array(list(USER_SPLIT))[np.searchsorted(edges, u, side="right")
                                          .clip(max=len(edges) - 1)]
        by_user = pd.Series(pick, index=users)
        names[score_mask] = by_user.reindex(frame.loc[score_mask, "user_id"]).to_numpy()
        return names
    day = frame["day"].dt.date.to_numpy()
    for name, days in plan.items():
        names[score_mask & np.isin(day, days)] = name
    return names


def _check_classes(frame, split_names, objectives, plan, what: str):
    problems = []
    for name in plan:
        m = split_names == name
        n = int(m.sum())
        for o in objectives:
            pos = int(frame.loc[m, f"label_{o}"].sum())
            if pos == 0 or pos == n:
                days = f" (days {_fmt(plan[name])})" if plan[name] else ""
                kind = "no positives" if pos == 0 else "no negatives"
                problems.append(f"{name}{days}: objective {o!r} has {kind} ({pos} of {n} rows)")
    if problems:
        raise DatasetError(f"{what}: " + "; ".join(problems) + ". Every split of an ME "
                           "dataset needs both classes of every objective; choose other "
                           "--valid-days/--test-days, score more days, --split user, or "
                           "leave the objective out with --objectives")


def run(logs, train_days, score_days, out, *, objectives=None, model: str = "mmoe",
        model_params_: dict | None = None, weighting: str = "pe_ltr",
        weighting_params: dict | None = None, train_cfg: TrainConfig | None = None,
        request_window_s: float = 3600, mp_valid: str = "last_day", split: str = "day",
        valid_days=None, test_days=None, on_unknown: str = "error",
        include_random: bool = False, max_ids: int = MAX_IDS, overwrite: bool = False,
        progress: bool = True, command: str | None = None, log=None) -> dict:
    """Run the MP stage end to end; returns a report (paths, sizes, AUCs, timings)."""
    log = log or (lambda msg: print(f"[mp] {msg}", file=sys.stderr, flush=True))
    t0 = time.time()
    objectives = list(objectives or kr.OBJECTIVES)
    model_params_ = dict(model_params_ or {})
    weighting_params = dict(weighting_params or {})
    train_cfg = train_cfg or TrainConfig()
    plan = check_args(train_days, score_days, objectives=objectives, model=model,
                      model_params_=model_params_, weighting=weighting,
                      weighting_params=weighting_params, train_cfg=train_cfg,
                      request_window_s=request_window_s, mp_valid=mp_valid, split=split,
                      valid_days=valid_days, test_days=test_days, out=out,
                      overwrite=overwrite, max_ids=max_ids)
    train_days, score_days = _days(train_days), _days(score_days)

    data = kr.load_kuairand(logs, train_days + score_days, on_unknown=on_unknown,
                            include_random=include_random)
    f = data.frame
    f["request_id"] = kr.assign_requests(f["user_id"], f["day"], f["time_ms"],
                                         request_window_s)
    day = f["day"].dt.date.to_numpy()
    is_train = np.isin(day, train_days)
    score = ~is_train
    log(f"loaded {len(f):,} exposures ({int(is_train.sum()):,} on train days "
        f"{_fmt(train_days)}, {int(score.sum()):,} on score days {_fmt(score_days)}) "
        f"in {time.time() - t0:.1f} s")
    if any(data.unknown.values()):
        log(f"unknown ids ({on_unknown}): {data.unknown}")

    duration, unknown_duration = _durations(f["duration_s"].to_numpy(), is_train)
    split_names = _assign_splits(f, score, plan, train_cfg.seed)
    _check_classes(f, split_names, objectives, plan, f"{Path(logs)} scored days")
    if mp_valid == "last_day":
        hold = is_train & (day == max(train_days))
    else:
        reqs = np.unique(f.loc[is_train, "request_id"])
        rng = np.random.default_rng([train_cfg.seed, 11])
        held = reqs[rng.random(len(reqs)) < RANDOM_VALID_SHARE]
        hold = is_train & np.isin(f["request_id"].to_numpy(), held)
    fit_rows = is_train & ~hold
    _check_classes(f, np.where(hold, "mp_valid", ""), objectives, {"mp_valid": None},
                   f"{Path(logs)} held-out train rows (--mp-valid {mp_valid})")

    numeric = list(kr.NUMERIC_FEATURES)
    enc = Encoder.fit(f[fit_rows], kr.ID_FEATURES, kr.CATEGORICAL_FEATURES, numeric, max_ids)
    labels = np.stack([f[f"label_{o}"].to_numpy() for o in objectives], 1)
    cat, num = enc.categorical(f), enc.numbers(f)

    def part(mask):
        return MPData.from_numpy(cat[mask], num[mask], labels[mask])

    torch.manual_seed(train_cfg.seed)          # the model's initial weights
    net = build_model(model, list(enc.cardinalities.values()), num.shape[1],
                      len(objectives), model_params_)
    weights = make_weighting(weighting, objectives, **weighting_params)
    log(f"training {model} ({sum(p.numel() for p in net.parameters()):,} parameters, "
        f"{weighting} task weights) on {int(fit_rows.sum()):,} rows, early stopping on "
        f"{int(hold.sum()):,} held-out rows")
    result = fit(net, part(fit_rows), part(hold), weights, train_cfg, objectives,
                 progress=progress, log=log)

    mp_auc = {"mp_valid": result.best_valid_auc}
    tables, split_meta = {}, {}
    features = {name: cat[:, list(enc.vocabs).index(name)] for name in kr.ME_FEATURES}
    for name in plan:
        m = split_names == name
        probs = predict(net, part(m))
        mp_auc[name] = auc_by_objective(probs, labels[m], objectives)
        tables[name] = split_table(f.loc[m, "request_id"], f.loc[m, "user_id"], probs,
                                   labels[m], objectives,
                                   {k: v[m] for k, v in features.items()},
                                   duration[m])
        split_meta[name] = {
            "days": [str(d) for d in sorted(set(day[m]))],
            "positives": {o: int(labels[m, k].sum()) for k, o in enumerate(objectives)}}
    all_probs = np.concatenate([tables[n][[f"score_{o}" for o in objectives]].to_numpy()
                                for n in plan])
    all_labels = np.concatenate([tables[n][[f"label_{o}" for o in objectives]].to_numpy()
                                 for n in plan])
    mp_auc["scored"] = auc_by_objective(all_probs, all_labels, objectives)
    sizes = kr.request_sizes(f.loc[score, "request_id"])
    meta = {
        "name": f"kuairand-mp-{model}-{weighting}",
        "objectives": objectives,
        "splits": split_meta,
        "categorical": {f"feat_{n}": enc.vocabs[n].cardinality for n in kr.ME_FEATURES},
        "numeric": [],
        "source": {
            "loader": "trainables.data.kuairand", "dataset": "kuairand",
            "logs": str(Path(logs).expanduser().resolve()),
            "files": [p.name for p in data.log_files] + [data.user_file.name,
                                                        data.video_file.name],
            "train_days": [str(d) for d in train_days],
            "score_days": [str(d) for d in score_days],
            "split": split, "request_window_s": request_window_s,
            "request_sizes": sizes, "unknown_ids": {**data.unknown, "policy": on_unknown},
            "features": {"feat_0_means": "unknown (not seen on the MP training rows)",
                         "duration": f"video duration in seconds (the log's duration_ms, "
                                     f"else the video's video_duration; "
                                     f"{int(unknown_duration[score].sum())} scored row(s) "
                                     f"with neither get the train days' median): IPUT's "
                                     f"watch-time denominator"},
            "mp": {"model": model, "params": {**model_params(model), **model_params_},
                   "weighting": weighting, "weighting_params": weighting_params,
                   "train": train_cfg.as_dict(), "mp_valid": mp_valid,
                   "mp_valid_days": [str(d) for d in sorted(set(day[hold]))],
                   "fit_rows": int(fit_rows.sum()), "held_out_rows": int(hold.sum()),
                   "best_epoch": result.best_epoch, "seconds": result.seconds,
                   "inputs": {"ids": kr.ID_FEATURES, "categorical": kr.CATEGORICAL_FEATURES,
                              "numeric": numeric,
                              "cardinalities": enc.cardinalities, "max_ids": max_ids},
                   "history": result.history},
            "mp_auc": mp_auc,
            "seed": train_cfg.seed,
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
