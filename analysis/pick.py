"""Pick one trial from the Pareto frontier, with a one-line reason (docs/DESIGN.md, "Analysis").

Every rule works on ``F`` (n, m): per-objective AUCs to MAXIMIZE, one row per trial, NaN rows
for failed trials (never picked), and returns a row of ``pareto_front(F)``.

    select(F, objectives, rule, labels=None, **params) -> Selection(index, rule, reason)

Rules (``SELECTORS``), each ``rule(F, objectives, *, labels=None, **params) -> (index, reason)``:
    fair        max-min AUC gain over a baseline trial (the PE-LTR idea); baseline, normalize
    knee        pymoo's high trade-off point of the min-max normalized frontier
    weights     pymoo's pseudo-weights closest to the user's weights; weights
    constraint  largest AUC sum among trials meeting per-objective floors; floors
    ideal       frontier point closest to the utopia point after min-max normalization

As in ``analysis.frontier``, directions are flipped once: where pymoo is called it gets the
frontier in minimization form (``-F``).
"""
from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from analysis.frontier import _as_matrix, pareto_front, worst_point


@dataclass(frozen=True)
class Selection:
    index: int      # row of F (a member of pareto_front(F))
    rule: str       # key of SELECTORS
    reason: str     # one line a person can read


def _name(labels, i) -> str:
    return f"row {i}" if labels is None else str(labels[i])


def _aucs(F, objectives, i) -> str:
    return "AUCs " + ", ".join(f"{o} {F[i, k]:.4f}" for k, o in enumerate(objectives))


def _unit(G: np.ndarray) -> np.ndarray:
    """Min-max normalize each column to [0, 1]; a constant column becomes 0 (already best)."""
    lo, span = G.min(axis=0), np.ptp(G, axis=0)
    return (G - lo) / np.where(span > 0, span, 1.0)


def _distinct_front(F) -> np.ndarray:
    """Frontier rows with duplicate points dropped (first row kept): pymoo's decision
    making divides by the gap between points, which is 0 between duplicates."""
    front = pareto_front(F)
    _, first = np.unique(F[front], axis=0, return_index=True)
    return front[np.sort(first)]


def _column(objectives, key, what) -> int:
    if key not in objectives:
        raise ValueError(f"unknown objective {key!r} in {what}; "
                         f"objectives: {', '.join(objectives)}")
    return objectives.index(key)


def _baseline(F, objectives, baseline, labels):
    if baseline is None:
        return worst_point(F), "the baseline (worst finite AUC per objective)"
    if isinstance(baseline, numbers.Integral) and not isinstance(baseline, bool):
        if not 0 <= baseline < len(F) or not np.isfinite(F[baseline]).all():
            raise ValueError(f"baseline row {baseline} is not a finite row of F (n={len(F)})")
        return F[baseline], f"baseline {_name(labels, baseline)}"
    base = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if base.shape != (F.shape[1],) or not np.isfinite(base).all():
        raise ValueError(f"baseline must be None, a row index or {F.shape[1]} finite AUCs, "
                         f"got {baseline!r}")
    return base, "the given baseline"


def fair(F, objectives, *, baseline=None, normalize=False, labels=None):
    """Largest smallest per-objective AUC gain over a baseline (PE-LTR's fairness idea).

    A dominating row gains at least as much everywhere, so the maximum is on the frontier.
    Ties on the smallest gain go to the larger total gain, then the earlier row.
    """
    base, what = _baseline(F, objectives, baseline, labels)
    finite = F[np.isfinite(F).all(axis=1)]
    span = np.ptp(finite, axis=0)
    scale = np.where(span > 0, span, 1.0) if normalize else np.ones(F.shape[1])
    front = pareto_front(F)
    gains = (F[front] - base) / scale
    worst = gains.min(axis=1)
    j = np.lexsort((front, -gains.sum(axis=1), -worst))[0]
    k = int(np.argmin(gains[j]))
    kind = "normalized gain" if normalize else "gain"
    listed = ", ".join(f"{o} {g:+.4f}" for o, g in zip(objectives, gains[j]))
    none = "; no trial gains on every objective" if worst[j] <= 0 else ""
    return int(front[j]), (f"{_name(labels, front[j])} has the largest smallest {kind} over "
                           f"{what}: {worst[j]:+.4f} ({objectives[k]}); gains {listed}{none}")


def knee(F, objectives, *, labels=None):
    """pymoo ``HighTradeoffPoints`` on the frontier (minimization form, min-max normalized):
    a point that loses much more than it gains when traded for a nearby frontier point.
    Without one (fewer than 3 distinct frontier points, one objective, or no outlier),
    fall back to the most balanced point: the largest smallest normalized AUC (ties, as
    always with 2 points in 2-D, go to the larger AUC sum)."""
    front = _distinct_front(F)
    U = _unit(-F[front])                    # 0 = best on the frontier, 1 = worst
    balance = 1.0 - U.max(axis=1)           # smallest normalized AUC of each point
    found = None
    if len(front) >= 3 and F.shape[1] >= 2:
        with warnings.catch_warnings():     # pymoo calls filterwarnings("ignore") globally,
            warnings.simplefilter("ignore")  # and its import warns about scipy's ckdtree
            from pymoo.mcdm.high_tradeoff import HighTradeoffPoints
            found = HighTradeoffPoints().do(U)
    if found is None or len(found) == 0:
        why = (f"only {len(front)} distinct frontier point(s)" if len(front) < 3
               else "one objective" if F.shape[1] < 2 else "pymoo found no high trade-off point")
        j = int(np.lexsort((front, -F[front].sum(axis=1), -balance))[0])   # ties: AUC sum
        return int(front[j]), (f"{_name(labels, front[j])}: no knee ({why}), so the most balanced "
                               f"frontier point (smallest normalized AUC {balance[j]:.3f}); "
                               f"{_aucs(F, objectives, front[j])}")
    found = np.asarray(found, dtype=int)
    j = int(found[np.argmax(balance[found])])   # several knees: the most balanced one
    return int(front[j]), (f"{_name(labels, front[j])} is a knee of the frontier (pymoo high "
                           f"trade-off point, {len(found)} of {len(front)} found): leaving it for "
                           f"a nearby frontier point loses much more than it gains; "
                           f"{_aucs(F, objectives, front[j])}")


def _weight_vector(weights, objectives) -> np.ndarray:
    if isinstance(weights, Mapping):
        w = np.zeros(len(objectives))
        for key, v in weights.items():
            w[_column(objectives, key, "weights")] = v
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(objectives),):
            raise ValueError(f"weights has {w.size} values for {len(objectives)} objectives")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights!r}")
    return w / w.sum()


def weighted(F, objectives, *, weights, labels=None):
    """pymoo ``PseudoWeights(w)`` on the frontier (minimization form); ``weights`` is a
    mapping objective -> weight (missing ones are 0) or a sequence, scaled to sum 1.
    Objectives constant on the frontier hold no trade-off (and would divide by 0 in pymoo):
    they are left out and the remaining weights rescaled."""
    w = _weight_vector(weights, objectives)
    front = _distinct_front(F)
    G = -F[front]
    vary = np.ptp(G, axis=0) > 0
    if len(front) == 1 or not vary.any():
        return int(front[0]), (f"{_name(labels, front[0])} is the only distinct frontier point, "
                               f"so any weights pick it; {_aucs(F, objectives, front[0])}")
    from pymoo.mcdm.pseudo_weights import PseudoWeights
    wv = w[vary] / w[vary].sum() if w[vary].sum() > 0 else np.full(vary.sum(), 1.0 / vary.sum())
    j, P = PseudoWeights(wv).do(G[:, vary], return_pseudo_weights=True)
    pw = np.zeros(len(objectives))
    pw[vary] = P[j]
    fmt = lambda v: ", ".join(f"{o} {x:.2f}" for o, x in zip(objectives, v))  # noqa: E731
    left = [o for o, v in zip(objectives, vary) if not v]
    note = f" ({', '.join(left)} equal on the frontier, left out)" if left else ""
    return int(front[j]), (f"{_name(labels, front[j])} has the pseudo-weights closest to the asked "
                           f"weights: {fmt(pw)} vs asked {fmt(w)}{note}; "
                           f"{_aucs(F, objectives, front[j])}")


def constraint(F, objectives, *, floors, labels=None):
    """Largest AUC sum among trials with ``F[:, o] >= floors[o]`` for every floored ``o``.

    A row dominating a feasible row is feasible with a larger sum, so searching the feasible
    frontier rows finds the maximum and always returns a frontier row."""
    if not isinstance(floors, Mapping):
        raise ValueError(f"floors must be a mapping objective -> minimum AUC, got {floors!r}")
    cols = {o: _column(objectives, o, "floors") for o in floors}
    finite = np.isfinite(F).all(axis=1)
    ok = finite.copy()
    for o, k in cols.items():
        ok &= F[:, k] >= float(floors[o])
    asked = ", ".join(f"{o} >= {float(v):.4f}" for o, v in floors.items()) or "(none)"
    if not ok.any():
        best = ", ".join(f"{o} {F[finite, k].max():.4f}" for o, k in cols.items())
        raise ValueError(f"no trial meets the floors {asked}; best achievable: {best}")
    front = pareto_front(F)
    cand = front[ok[front]]
    i = int(cand[np.argmax(F[cand].sum(axis=1))])
    return i, (f"{_name(labels, i)} has the largest AUC sum {F[i].sum():.4f} among the "
               f"{int(ok.sum())} trials meeting the floors {asked}; {_aucs(F, objectives, i)}")


def ideal(F, objectives, *, labels=None):
    """Frontier point closest (Euclidean) to the utopia point, each objective min-max
    normalized over the frontier (utopia = best of each objective = the origin)."""
    front = pareto_front(F)
    d = np.linalg.norm(_unit(-F[front]), axis=1)
    j = int(np.argmin(d))
    return int(front[j]), (f"{_name(labels, front[j])} is closest to the utopia point: distance "
                           f"{d[j]:.3f} after min-max normalization over the {len(front)} frontier "
                           f"points (0 = best on every objective); "
                           f"{_aucs(F, objectives, front[j])}")


# A rule in its own file is one line here: "name": "package.module:function" (imported
# when first used).
SELECTORS = {"fair": fair, "knee": knee, "weights": weighted, "constraint": constraint,
             "ideal": ideal}


def rule_function(rule: str):
    """The selection function registered as ``rule``."""
    if rule not in SELECTORS:
        raise ValueError(f"unknown rule {rule!r}; valid rules: {', '.join(SELECTORS)}")
    fn = SELECTORS[rule]
    if isinstance(fn, str):
        import importlib
        module, _, attr = fn.partition(":")
        fn = getattr(importlib.import_module(module), attr)
    return fn


def select(F, objectives, rule, labels=None, **params) -> Selection:
    """Apply the selection rule ``rule`` to ``F`` and return the frontier row it picks.

    ``labels`` (trial ids, one per row) name the trials in the reason; default "row <i>".
    """
    F = _as_matrix(F)
    objectives = [objectives] if isinstance(objectives, str) else list(objectives)
    if len(F) == 0:
        raise ValueError("F is empty: no trials to select from")
    if len(objectives) != F.shape[1]:
        raise ValueError(f"{len(objectives)} objective names for {F.shape[1]} columns of F")
    if not np.isfinite(F).all(axis=1).any():
        raise ValueError(f"F has no finite rows: all {len(F)} trials failed (NaN); "
                         f"nothing to select")
    if labels is not None and len(labels) != len(F):
        raise ValueError(f"{len(labels)} labels for {len(F)} rows of F")
    fn = rule_function(rule)
    kw = [p for p in inspect.signature(fn).parameters.values()
          if p.kind is p.KEYWORD_ONLY and p.name != "labels"]
    allowed = ", ".join(p.name for p in kw) or "none"
    unknown = sorted(set(params) - {p.name for p in kw})
    if unknown:
        raise ValueError(f"unknown param(s) {', '.join(unknown)} for rule {rule!r}; "
                         f"allowed: {allowed}")
    missing = [p.name for p in kw if p.default is p.empty and p.name not in params]
    if missing:
        raise ValueError(f"rule {rule!r} needs param(s) {', '.join(missing)}")
    index, reason = fn(F, objectives, labels=labels, **params)
    if index not in pareto_front(F):    # the contract; a failure here is a bug in the rule
        raise RuntimeError(f"rule {rule!r} picked row {index}, which is not on the frontier")
    return Selection(int(index), rule, reason)
