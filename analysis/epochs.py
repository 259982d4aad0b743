"""Which epoch a trial's point stands for (docs/DESIGN.md, "Which epoch is a trial's point").

A trial reports validation AUCs after every epoch; its point on a frontier is one of
those epochs, chosen by one rule everywhere (the results table, ``analysis frontier``,
``pick``, ``export``, the fidelity report, the benchmarks and W&B):

- ``own`` (the default): the epoch that is best for the trial's own objective, its
  scalarization sum_k w_k AUC_k of the validation AUCs under its own weights w: a static
  trial's loss weights (normalized), a PE-LTR trial's bounds (the weights closest to equal
  ones that respect them), a population member's own weights, a conditioned grid point's
  preference. A trial whose weighting states no trade-off (EMER's self-evolving weights)
  takes its final epoch;
- ``final``: the last epoch;
- ``sum``: the epoch with the best unweighted AUC sum.

Why the AUC-weighted sum and not the loss: the frontier's axes are AUCs, so the point
should be the trial's best on what is plotted, under its own trade-off; the loss is
measured on the training rows while the weights move, and its scale differs between
losses (bce, rank_auc, pairwise) and objectives, so a weighted loss says nothing about
which epoch ranks best on held-out rows. Ties go to the earlier epoch.

    own_weights(config, objectives) -> (K,) weights on the simplex, or None
    choose_epoch(history, objectives, rule, weights, prefix="") -> index into history
    chosen_epoch(history, config, rule="own", prefix="") -> {"index", "epoch", "rule",
        "weights", "checkpoint"}: the whole rule for one model's report history, for
        callers outside the results table (e.g. W&B at the end of a trial)
"""
from __future__ import annotations

import math

import numpy as np

RULES = ("own", "final", "sum")
DEFAULT_RULE = "own"


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"--epoch {rule!r}: the epoch rule must be one of {', '.join(RULES)} "
                         f"(own: best for the trial's own weights; final: the last epoch; "
                         f"sum: best unweighted AUC sum)")
    return rule


def own_weights(config: dict, objectives) -> np.ndarray | None:
    """The trial's own scalarization weights (K,), summing to 1, from the config it ran
    with (a member's or a grid point's config: ``analysis.results.row_config``); None when
    it states none. A conditioned config's weights are its ``conditioning.at``."""
    objectives = list(objectives)
    cond = config.get("conditioning") if isinstance(config, dict) else None
    if isinstance(cond, dict):
        at = cond.get("at")
        if isinstance(at, dict) and at:
            w = np.array([float(at.get(o, 0.0)) for o in objectives])
            return w / w.sum() if w.sum() > 0 and np.isfinite(w).all() else None
        return None
    section = (config or {}).get("weighting") or {"kind": "static"}
    from trainables.weighting import build_weighting
    params = {k: v for k, v in section.items() if k != "kind"}
    try:
        pref = build_weighting(section.get("kind", "static"), objectives, params).preference()
    except (ValueError, TypeError):       # a config this install cannot build: no weights
        return None
    if pref is None:
        return None
    w = np.asarray(pref, dtype=np.float64)
    return w / w.sum() if w.shape == (len(objectives),) and w.sum() > 0 else None


def _aucs(row: dict, objectives, prefix: str) -> np.ndarray:
    vals = [row.get(f"{prefix}auc/{o}") for o in objectives]
    return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
                     for v in vals], dtype=np.float64)


def choose_epoch(history, objectives, rule: str = DEFAULT_RULE, weights=None,
                 prefix: str = "") -> int | None:
    """Index into ``history`` (one dict per reported epoch, keys ``<prefix>auc/<obj>``) of
    the epoch ``rule`` picks; None when no epoch reported AUCs. ``weights``: the trial's
    own (``own_weights``); ``own`` without them is ``final``. Epochs with a non-finite AUC
    can be chosen only by ``final``."""
    check_rule(rule)
    reported = [i for i, r in enumerate(history) if f"{prefix}auc/{objectives[0]}" in r]
    if not reported:
        return None
    if rule == "final" or (rule == "own" and weights is None):
        return reported[-1]
    w = np.ones(len(objectives)) if rule == "sum" else np.asarray(weights, dtype=np.float64)
    best, best_i = -math.inf, None
    for i in reported:
        a = _aucs(history[i], objectives, prefix)
        if not np.isfinite(a).all():
            continue
        score = float(a @ w)
        if score > best:                   # strictly: ties keep the earlier epoch
            best, best_i = score, i
    return reported[-1] if best_i is None else best_i


def applied_rule(rule: str, weights) -> str:
    """What ``rule`` amounts to for a trial: ``own`` without own weights is ``final``."""
    return "final (no own weights)" if rule == "own" and weights is None else rule


def chosen_epoch(history, config: dict, rule: str = DEFAULT_RULE, prefix: str = "") -> dict:
    """The rule applied to one model's history (a trial's ``result.json`` lines, or what
    the training loop reported): the chosen index and epoch number, the rule as applied,
    the weights and the epoch's checkpoint (Tune's ``checkpoint_dir_name``, when
    reported). ``objectives`` come from the config's data section."""
    objectives = list((config.get("data") or {}).get("objectives") or [])
    if not objectives:
        keys = {k for r in history for k in r if k.startswith(f"{prefix}auc/")}
        objectives = sorted(k[len(prefix) + 4:] for k in keys)
    weights = own_weights(config, objectives) if rule == "own" else None
    i = choose_epoch(history, objectives, rule, weights, prefix) if objectives else None
    row = history[i] if i is not None else {}
    return {"index": i, "epoch": row.get("epoch"), "rule": applied_rule(rule, weights),
            "weights": None if weights is None else dict(zip(objectives, weights.tolist())),
            "checkpoint": row.get("checkpoint_dir_name")}
