"""MO-ASHA's rung rule as pure numpy functions (Schmucker et al. 2021, "Multi-objective
Asynchronous Successive Halving", sec. 3; Salinas et al. 2021): no Ray, no state.

A rung table maps trial ids, in the order they reached the rung, to their AUCs (objective
-> value, maximized). :func:`promote` returns the trials in its top ``1 / reduction_factor``:
the ``ceil(n / reduction_factor)`` best of the ``n`` recorded, ranked by non-dominated
sorting (pymoo's, on the negated AUCs); within the last front that fits only in part, by
NSGA-II's crowding distance (Deb et al. 2002, sec. III-B), larger first. Ties in crowding
distance (a front's extreme points all have an infinite one) go to the larger sum of the
rung's min-max-normalized AUCs, then to the trial recorded first. A missing or non-finite
AUC counts as worse than every finite one.

A population trial enters a rung as one value, :func:`population_hypervolume`: the
hypervolume of its members' AUCs above a reference point shared by the rung, AUC 0.5 per
objective (a ranking no better than chance), or lower where a member is worse.
"""
from __future__ import annotations

import math

import numpy as np


def milestones(grace_period: int, reduction_factor: float, max_t: int) -> list[float]:
    """The rungs, in epochs: grace_period * reduction_factor^k below ``max_t`` (a trial
    that reaches ``max_t`` ends by itself; a rung there would decide nothing)."""
    out, k = [], 0
    while grace_period * reduction_factor ** k < max_t:
        out.append(float(grace_period * reduction_factor ** k))
        k += 1
    return out


def _matrix(rung_table: dict, objectives) -> np.ndarray:
    """(n, m) AUCs to maximize; non-finite or missing values below each column's finite
    minimum, so they are dominated by every finite value and crowding stays finite."""
    F = np.array([[_float(row.get(o) if isinstance(row, dict) else None) for o in objectives]
                  for row in rung_table.values()], dtype=np.float64).reshape(
        len(rung_table), len(objectives))
    for j in range(F.shape[1]):
        ok = np.isfinite(F[:, j])
        floor = (F[ok, j].min() - 1.0) if ok.any() else 0.0
        F[~ok, j] = floor
    return F


def _float(v) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return math.nan


def front_ranks(F: np.ndarray) -> np.ndarray:
    """Front index (0: non-dominated) of each row of ``F`` (maximized)."""
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    _, rank = NonDominatedSorting().do(-F, return_rank=True)
    return np.asarray(rank, dtype=int)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row of one front: per objective, the extremes
    get infinity and the others the normalized gap between their neighbours, summed."""
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        span = col[-1] - col[0]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (col[2:] - col[:-2]) / span
    return d


def promote(rung_table: dict, objectives, reduction_factor: float) -> set:
    """The trial ids of ``rung_table`` in its top ``1 / reduction_factor`` (see the
    module's docstring); a trial that reached the rung is promoted iff it is in this set."""
    ids = list(rung_table)
    n = len(ids)
    if n == 0:
        return set()
    k = math.ceil(n / reduction_factor - 1e-12)
    F = _matrix(rung_table, list(objectives))
    rank = front_ranks(F)
    lo, hi = F.min(axis=0), F.max(axis=0)
    norm = ((F - lo) / np.where(hi > lo, hi - lo, 1.0)).sum(axis=1)
    chosen: list[int] = []
    for r in sorted(set(rank.tolist())):
        front = np.flatnonzero(rank == r)
        if len(chosen) + len(front) <= k:
            chosen.extend(front.tolist())
            continue
        cd = crowding_distance(F[front])
        order = sorted(range(len(front)), key=lambda i: (-cd[i], -norm[front[i]], front[i]))
        chosen.extend(front[i] for i in order[:k - len(chosen)])
        break
    return {ids[i] for i in chosen}


def population_hypervolume(members: dict, objectives) -> dict:
    """Population trial id -> the hypervolume of its members' AUCs (``members``: id ->
    list of objective -> AUC mappings), all against one reference point: AUC 0.5 per
    objective, or the worst finite member AUC where that is lower. Non-finite members
    are left out; a trial with none gets 0."""
    from pymoo.indicators.hv import HV
    objectives = list(objectives)
    pts = {t: np.array([[_float(m.get(o)) for o in objectives] for m in ms
                        if isinstance(m, dict)], dtype=np.float64).reshape(-1, len(objectives))
           for t, ms in members.items()}
    pts = {t: P[np.isfinite(P).all(axis=1)] for t, P in pts.items()}
    finite = [P for P in pts.values() if len(P)]
    ref = np.full(len(objectives), 0.5)
    if finite:
        ref = np.minimum(ref, np.vstack(finite).min(axis=0))
    indicator = HV(ref_point=-ref)
    return {t: float(indicator(-P)) if len(P) else 0.0 for t, P in pts.items()}
