"""Pareto frontier and hypervolume of per-objective AUCs (docs/DESIGN.md, "Analysis" and
"Stable public functions").

Directions are normalized once, here: every private function minimizes, the public
wrappers flip maximized objectives (AUCs) before calling them. pymoo does the work
(non-dominated sorting, the HV indicator); the wrappers handle empty, 1-d and non-finite
input and the reference point.

    pareto_front(F, maximize=True) -> indices of the non-dominated rows of F (n, m);
        duplicates of a non-dominated row are all kept; rows with NaN/inf never are.
    hypervolume(F, ref, maximize=True) -> the volume dominated by F and bounded by ref;
        rows that do not strictly beat ref in every objective add nothing.
    hypervolume_curve(F, ref, trials=None) -> hypervolume as rows (or whole trials) enter.
    hypervolume_contributions(F, ref, maximize=True) -> each frontier row's exclusive
        contribution: HV(frontier) - HV(frontier without it); 0 off it and for duplicates.
"""
from __future__ import annotations

import numpy as np


def _as_matrix(F) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim == 1:
        F = F[:, None]          # one objective: n rows of one value
    if F.ndim != 2:
        raise ValueError(f"F must be (n, m), got shape {F.shape}")
    return F


def _minimized(F: np.ndarray, maximize) -> np.ndarray:
    sign = np.where(np.broadcast_to(np.asarray(maximize, dtype=bool), (F.shape[1],)), -1.0, 1.0)
    return F * sign


def _non_dominated(G: np.ndarray) -> np.ndarray:
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    if len(G) == 1:
        return np.zeros(1, dtype=int)
    return np.sort(np.asarray(NonDominatedSorting().do(G, only_non_dominated_front=True),
                              dtype=int))


def pareto_front(F, maximize=True) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of ``F``."""
    F = _as_matrix(F)
    finite = np.flatnonzero(np.isfinite(F).all(axis=1))
    if finite.size == 0:
        return np.zeros(0, dtype=int)
    return finite[_non_dominated(_minimized(F[finite], maximize))]


def _hv_min(G: np.ndarray, ref: np.ndarray) -> float:
    from pymoo.indicators.hv import HV
    G = G[(G < ref).all(axis=1)]
    if len(G) == 0:
        return 0.0
    return float(HV(ref_point=ref)(G))


def _ref(ref, m: int) -> np.ndarray:
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if ref.shape[0] != m:
        raise ValueError(f"ref has {ref.shape[0]} values for {m} objectives")
    if not np.isfinite(ref).all():
        raise ValueError(f"ref must be finite, got {ref.tolist()}")
    return ref


def hypervolume(F, ref, maximize=True) -> float:
    """Dominated hypervolume of ``F`` relative to the reference point ``ref``."""
    F = _as_matrix(F)
    ref = _ref(ref, F.shape[1])
    F = F[np.isfinite(F).all(axis=1)]
    if len(F) == 0:
        return 0.0
    return _hv_min(_minimized(F, maximize), _minimized(ref[None, :], maximize)[0])


def worst_point(F, maximize=True) -> np.ndarray:
    """The default reference point: the worst finite value of each objective."""
    F = _as_matrix(F)
    F = F[np.isfinite(F).all(axis=1)]
    if len(F) == 0:
        raise ValueError("no finite rows to take a reference point from")
    G = _minimized(F, maximize)
    return _minimized(G.max(axis=0)[None, :], maximize)[0]


def trial_steps(trials) -> list[list[int]]:
    """Row indices grouped by trial key, each group in row order, the groups in the order
    of their first row: the steps in which rows enter a hypervolume curve."""
    groups: dict = {}
    for i, key in enumerate(trials):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def hypervolume_curve(F, ref, maximize=True, trials=None) -> np.ndarray:
    """Hypervolume as the rows of ``F`` enter, in the order given (the order trials
    finished); one value per step.

    ``trials`` says how the members of a population trial count. None: every row is its
    own step (n values), so a population's members enter one at a time. A sequence of n
    trial keys: the rows sharing a key enter together, in one step placed at that key's
    first row (one value per distinct key, see :func:`trial_steps`), as a population
    trial's members finish together. Rows with a non-finite value add nothing.
    """
    F = _as_matrix(F)
    if trials is None:
        steps = [[i] for i in range(len(F))]
    else:
        trials = list(trials)
        if len(trials) != len(F):
            raise ValueError(f"trials has {len(trials)} keys for {len(F)} rows")
        steps = trial_steps(trials)
    taken: list[int] = []
    out = []
    for rows in steps:
        taken += rows
        out.append(hypervolume(F[taken], ref, maximize))
    return np.array(out, dtype=np.float64)


def hypervolume_contributions(F, ref, maximize=True) -> np.ndarray:
    """Each frontier row's exclusive hypervolume contribution: the hypervolume of the
    frontier minus that of the frontier without the row, i.e. the volume no other frontier
    point dominates (pymoo's HV, once per frontier row; moocore's ``hv_contributions``
    with ``ignore_dominated=True``). Dominated rows contribute 0 and are left out of both
    volumes; so are the copies of a repeated frontier point (each copy covers the other's
    box) and a row that does not strictly beat ``ref`` everywhere (with the default
    reference, the worst value per objective: a frontier row worst on some objective).
    NaN for rows with a non-finite value."""
    F = _as_matrix(F)
    ref = _ref(ref, F.shape[1])
    out = np.full(len(F), np.nan)
    finite = np.isfinite(F).all(axis=1)
    out[finite] = 0.0
    front = pareto_front(F, maximize)
    if front.size == 0:
        return out
    G = _minimized(F[front], maximize)
    r = _minimized(ref[None, :], maximize)[0]
    _, inverse, counts = np.unique(G, axis=0, return_inverse=True, return_counts=True)
    total = _hv_min(G, r)
    for j, i in enumerate(front):
        if counts[inverse.reshape(-1)[j]] == 1:    # a duplicate's twin still covers its box
            out[i] = max(total - _hv_min(np.delete(G, j, axis=0), r), 0.0)
    return out
