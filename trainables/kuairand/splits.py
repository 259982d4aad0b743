"""Which rows the MP stage trains on, stops early on, and writes as each ME split.

- The train days: the MP model's rows. Its early-stopping rows (``splits.mp_valid``) are
  the last train day, or a random :data:`RANDOM_VALID_SHARE` of the train days' requests.
- The score days: the ME dataset, cut by day (``splits.by: day``: the last score day is
  test, the one before valid, the rest train; ``--valid-days``/``--test-days`` choose
  others) or by user (``by: user``: :data:`USER_SPLIT`, drawn per user from the seed).

Every split must hold both classes of every objective (the ME contract), checked before
the MP model trains.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.schema import DatasetError
from .days import fmt_days, sorted_days

RANDOM_VALID_SHARE = 0.1
USER_SPLIT = {"train": 0.8, "valid": 0.1, "test": 0.1}
_FIX = ("choose other --valid-days/--test-days, score more days, set splits.by: user in "
        "the config, or leave the objective out of the config's objectives")


def check_days(train_days, score_days, mp_valid: str) -> None:
    """The train days come strictly before the score days; ``last_day`` needs two."""
    train, score = sorted_days(train_days), sorted_days(score_days)
    both = sorted(set(train) & set(score))
    if both:
        raise ValueError(f"--train-days and --score-days overlap on {fmt_days(both)}; the MP "
                         f"model must score days it was not trained on")
    if max(train) >= min(score):
        raise ValueError(f"--score-days must come after --train-days (scores for the ME "
                         f"stage may not use the future): last train day {max(train)}, "
                         f"first score day {min(score)}")
    if mp_valid == "last_day" and len(train) < 2:
        raise ValueError(f"splits.mp_valid: last_day needs at least 2 train days (got "
                         f"{fmt_days(train)}); add train days or set splits.mp_valid: random "
                         f"in the config")


def plan_splits(score_days, by: str, valid_days=None, test_days=None) -> dict:
    """ME split -> its days (split by day), or -> None (split by user)."""
    if by == "user":
        if valid_days or test_days:
            raise ValueError("--valid-days/--test-days apply to splits.by: day only")
        return {name: None for name in USER_SPLIT}
    if by != "day":
        raise ValueError(f"splits.by must be one of day, user, got {by!r}")
    score = sorted_days(score_days)
    valid = sorted_days(valid_days) if valid_days else None
    test = sorted_days(test_days) if test_days else None
    if test is None:
        test = [d for d in score if d not in (valid or [])][-1:]
    if valid is None:
        valid = [d for d in score if d not in test][-1:]
    for name, chosen in (("valid", valid), ("test", test)):
        outside = [d for d in chosen if d not in score]
        if outside:
            raise ValueError(f"--{name}-days {fmt_days(outside)} not among the score days "
                             f"{fmt_days(score)}")
    both = sorted(set(valid) & set(test))
    if both:
        raise ValueError(f"--valid-days and --test-days overlap on {fmt_days(both)}")
    train = [d for d in score if d not in valid and d not in test]
    if not train or not valid or not test:
        raise ValueError(f"a split by day needs at least one score day for each of train, "
                         f"valid and test; the score days {fmt_days(score)} give train "
                         f"[{fmt_days(train)}], valid [{fmt_days(valid)}], test "
                         f"[{fmt_days(test)}]. Score more days or set splits.by: user in "
                         f"the config")
    return {"train": train, "valid": valid, "test": test}


def assign_splits(frame: pd.DataFrame, score_mask: np.ndarray, plan: dict,
                  seed: int) -> np.ndarray:
    """Each row's ME split name ("" for rows not scored)."""
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


def held_out(frame: pd.DataFrame, is_train: np.ndarray, mp_valid: str, train_days,
             seed: int) -> np.ndarray:
    """The train days' rows the MP model stops early on (never trained on)."""
    if mp_valid == "last_day":
        return is_train & (frame["day"].dt.date.to_numpy() == max(sorted_days(train_days)))
    reqs = np.unique(frame.loc[is_train, "request_id"])
    rng = np.random.default_rng([seed, 11])
    held = reqs[rng.random(len(reqs)) < RANDOM_VALID_SHARE]
    return is_train & np.isin(frame["request_id"].to_numpy(), held)


def check_classes(frame, split_names, objectives, plan, what: str) -> None:
    """DatasetError listing every (split, objective) with a single class."""
    problems = []
    for name in plan:
        m = split_names == name
        n = int(m.sum())
        for o in objectives:
            pos = int(frame.loc[m, f"label_{o}"].sum())
            if pos == 0 or pos == n:
                days = f" (days {fmt_days(plan[name])})" if plan[name] else ""
                kind = "no positives" if pos == 0 else "no negatives"
                problems.append(f"{name}{days}: objective {o!r} has {kind} ({pos} of {n} rows)")
    if problems:
        raise DatasetError(f"{what}: " + "; ".join(problems) + ". Every split of an ME "
                           f"dataset needs both classes of every objective; {_FIX}")
