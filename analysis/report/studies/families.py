"""Model families at equal member-epochs: the frontiers of ``fusion`` (the industry's
weighted formula), ``mlp``, ``harmonrank`` and a preference-conditioned ``harmonrank``
(docs/DESIGN.md, "Conditioned training").

Each static family trains K + 1 models per seed, one per loss-weight vector (the K corners
of the simplex and its centre), E epochs each: (K + 1) x E member-epochs. The conditioned
HarmonRank trains one model per seed for E epochs with K + 1 preferences per step, which
costs the same (K + 1) x E member-epochs, and is scored on test at every point of its
Das-Dennis grid. A family's frontier (per seed) is its models' (grid points') test AUCs;
its hypervolume is taken against AUC 0.5 on every objective (chance), mean and std over
seeds. Per objective, the family with the best AUC (the best of its points, mean over
seeds) wins; a family whose best AUC is within z = 1 standard error of the difference
(Hanley-McNeil, :func:`analysis.noise.auc_se`, on the test split's positives and
negatives) is said to tie with it.
"""
from __future__ import annotations

import math

import numpy as np

from analysis.frontier import hypervolume
from analysis.noise import auc_se

from ..context import Context, Section
from ..runs import Run
from ..stats import fmt, mean_std

FAMILIES = ("fusion", "mlp", "harmonrank", "conditioned")
NAMES = {"fusion": "fusion (weighted formula)", "mlp": "MLP", "harmonrank": "HarmonRank",
         "conditioned": "HarmonRank, conditioned"}
MAX_OBJECTIVES = 3           # the most well-measured objectives the study uses
REF = 0.5                    # hypervolume reference AUC on every objective: chance
Z = 1.0                      # a win smaller than Z standard errors of the difference: a tie


def objectives_of(ctx: Context) -> list[str]:
    """The objectives given (``family_objectives``), else the first MAX_OBJECTIVES with at
    least 100 test positives (all when fewer than two have that many)."""
    given = ctx.options.get("family_objectives")
    if given:
        return list(given)
    ok = ctx.well_measured()
    return (ok if len(ok) >= 2 else list(ctx.objectives))[:MAX_OBJECTIVES]


def weight_vectors(objectives) -> list[dict]:
    """The K corners of the simplex and its centre."""
    k = len(objectives)
    corners = [{o: float(i == j) for j, o in enumerate(objectives)} for i in range(k)]
    return corners + [{o: 1.0 / k for o in objectives}]


def plan(ctx: Context) -> list[Run]:
    objs = objectives_of(ctx)
    epochs = ctx.training["optim"]["epochs"]
    runs = []
    for s in ctx.seeds:
        for fam in FAMILIES[:3]:
            for i, w in enumerate(weight_vectors(objs)):
                cfg = ctx.config(objectives=objs, weights=w, model={"family": fam})
                runs.append(Run("families", f"{fam} w{i}", s, cfg,
                                {"family": fam, "member_epochs": epochs}))
        cfg = ctx.config(objectives=objs, model={"family": "harmonrank"})
        cfg["conditioning"] = {"per_batch": len(objs) + 1}
        runs.append(Run("families", "harmonrank conditioned", s, cfg,
                        {"family": "conditioned", "member_epochs": epochs * (len(objs) + 1)}))
    return runs


def points(pairs, objectives) -> dict:
    """(family, seed) -> (n, K) test AUCs of its models, or of its grid points."""
    out: dict = {}
    for run, rec in pairs:
        if rec is None or rec["status"] != "ok":
            continue
        key = (run.extra["family"], run.seed)
        rows = [p["test"] for p in rec["points"]] if rec.get("points") else [rec["test"]]
        out.setdefault(key, []).extend([[r[o] for o in objectives] for r in rows])
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def winners(best: dict, se: dict) -> tuple[str, list[str]]:
    """best: family -> mean best AUC on one objective; se: family -> its SE. The family
    with the highest AUC and those within Z standard errors of the difference of it."""
    top = max(best, key=best.get)
    tied = [f for f in best if f != top and
            best[top] - best[f] <= Z * math.sqrt(se[top] ** 2 + se[f] ** 2)]
    return top, tied


def render(ctx: Context, pairs) -> Section:
    objs = objectives_of(ctx)
    pts = points(pairs, objs)
    spent: dict = {}                 # (family, seed) -> member-epochs of its runs
    for run, _ in pairs:
        key = (run.extra["family"], run.seed)
        spent[key] = spent.get(key, 0) + run.extra["member_epochs"]
    cost = {f: max(v for (g, _), v in spent.items() if g == f) for f, _ in spent}
    fams = [f for f in FAMILIES if any(k[0] == f for k in pts)]
    hv = {f: [hypervolume(pts[(f, s)], [REF] * len(objs)) for s in ctx.seeds
              if (f, s) in pts] for f in fams}
    lines = ["| family | member-epochs per seed | points per seed | hypervolume (mean ± std) "
             "| per seed |", "|---|---|---|---|---|"]
    for f in fams:
        n = np.mean([len(pts[(f, s)]) for s in ctx.seeds if (f, s) in pts])
        lines.append(f"| {NAMES[f]} | {cost[f]} | {n:.0f} | {fmt(*mean_std(hv[f]), digits=5)} "
                     f"| {', '.join(f'{h:.5f}' for h in hv[f])} |")
    order = sorted(fams, key=lambda f: -mean_std(hv[f])[0])
    statements = ["Hypervolume: " + " > ".join(
        f"{NAMES[f]} {mean_std(hv[f])[0]:.5f}" for f in order) + "."]
    head = "| objective (test positives) | " + " | ".join(NAMES[f] for f in fams) + " | wins |"
    table = [head, "|" + "---|" * (len(fams) + 2)]
    wins: dict = {}
    for k, o in enumerate(objs):
        pos, rows = ctx.counts["test"][o]
        best = {f: mean_std([pts[(f, s)][:, k].max() for s in ctx.seeds if (f, s) in pts])[0]
                for f in fams}
        se = {f: float(auc_se(best[f], pos, rows - pos)) for f in fams}
        top, tied = winners(best, se)
        wins[o] = (top, tied)
        verdict = f"{NAMES[top]}" + (f"; tie within noise: {', '.join(NAMES[f] for f in tied)}"
                                     if tied else " (beyond noise)")
        table.append(f"| {o} ({pos:,}) | " + " | ".join(
            f"{best[f]:.4f} ± {se[f]:.4f}" for f in fams) + f" | {verdict} |")
        statements.append(f"{o}: best AUC {best[top]:.4f} from {NAMES[top]}" +
                          (f", a tie within noise with {', '.join(NAMES[f] for f in tied)}"
                           if tied else f", ahead of every other family beyond noise ({Z:g} SE)")
                          + ".")
    findings = [f"note (the paper has no such baseline): families at equal member-epochs: "
                f"{statements[0]} " + " ".join(statements[1:])] if fams else []
    md = "\n".join([
        f"Objectives {', '.join(objs)}; {ctx.training['optim']['epochs']} epochs per model. "
        f"Each static family trains {len(objs) + 1} models per seed with static loss weights "
        "(the corners of the simplex and its centre); the conditioned HarmonRank trains one "
        f"model per seed with {len(objs) + 1} preferences per step: the same member-epochs. "
        f"Hypervolume of each seed's test-AUC points against AUC {REF} per objective; seeds "
        f"{', '.join(map(str, ctx.seeds))}.", "", *lines, "",
        "Best test AUC per objective (the best of a family's points, mean over seeds) ± its "
        "Hanley-McNeil standard error on the test split; a family within "
        f"{Z:g} standard error of the difference of the best is a tie.", "", *table, "",
        *[f"- {s}" for s in statements]])
    sec = Section("Model families at equal member-epochs", md, findings)
    sec.data = {"objectives": objs, "hv": hv, "wins": wins}
    return sec
