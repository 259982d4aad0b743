"""HarmonRank Fig. 3: trade-off curves of HarmonRank (rank_auc) and multi-objective BCE for
pairs of competing objectives, traced by sweeping the two objectives' loss weights.

Paper (Kuaishou-ELive): HarmonRank's curve lies above MBCE's for every weight allocation
(buy vs follow, comment vs buy, comment vs follow, long view vs follow).
"""
from __future__ import annotations

import itertools

import numpy as np

from analysis.frontier import hypervolume

from ..context import Context, Section
from ..plots import pair_curves
from ..runs import Run
from ..stats import fmt, mean_std

METHODS = ("rank_auc", "bce")
NAMES = {"rank_auc": "HarmonRank (rank_auc)", "bce": "MBCE (bce)"}
WEIGHTS = (0.1, 0.3, 0.5, 0.7, 0.9)


def pairs_of(ctx: Context) -> list[tuple[str, str]]:
    """The pairs given, or the three least correlated pairs (label Spearman on train) of
    the objectives with enough test positives for a readable AUC."""
    given = ctx.options.get("pairs")
    if given:
        return [tuple(p) for p in given]
    ok = ctx.well_measured()
    idx = {o: i for i, o in enumerate(ctx.objectives)}
    pairs = sorted(itertools.combinations(ok, 2),
                   key=lambda p: abs(ctx.rho[idx[p[0]], idx[p[1]]]))
    return pairs[:3]


def weights_of(ctx: Context) -> list[float]:
    return list(ctx.options.get("weights") or WEIGHTS)


def curve_area(points) -> float:
    """The area a trade-off curve's (AUC a, AUC b) points dominate above (0.5, 0.5) (the
    2-D hypervolume; chance level is the reference), as the report states it."""
    return hypervolume([tuple(p) for p in points], (0.5, 0.5))


def plan(ctx: Context) -> list[Run]:
    runs = []
    for a, b in pairs_of(ctx):
        for m in METHODS:
            for w in weights_of(ctx):
                cfg = ctx.config(loss=m, objectives=[a, b], weights={a: w, b: 1 - w})
                runs += [Run("frontier", f"{a}:{b} {m} w={w}", s, cfg,
                             {"pair": [a, b], "loss": m, "w": w}) for s in ctx.seeds]
    return runs


def render(ctx: Context, pairs) -> Section:
    cells: dict = {}
    for run, rec in pairs:
        if rec["status"] == "ok":
            a, b = run.extra["pair"]
            cells.setdefault((a, b, run.extra["loss"], run.extra["w"]), []).append(
                (rec["test"][a], rec["test"][b]))
    curves, lines, findings = {}, [], []
    for a, b in pairs_of(ctx):
        lines += [f"**{a} vs {b}** (label Spearman "
                  f"{ctx.rho[ctx.objectives.index(a), ctx.objectives.index(b)]:.3f}; test "
                  f"positives {ctx.positives(a)} / {ctx.positives(b)})", "",
                  f"| {a} weight | " + " | ".join(f"{NAMES[m]} {a} | {NAMES[m]} {b}"
                                                   for m in METHODS) + " | HarmonRank better on |",
                  "|" + "---|" * (2 * len(METHODS) + 2)]
        wins, both = 0, 0
        for w in weights_of(ctx):
            row, means = [], {}
            for m in METHODS:
                v = np.array(cells.get((a, b, m, w), []), dtype=float).reshape(-1, 2)
                ma, mb = mean_std(v[:, 0]), mean_std(v[:, 1])
                means[m] = (ma[0], mb[0])
                curves.setdefault((a, b), {}).setdefault(m, []).append(
                    (w, ma[0], ma[1], mb[0], mb[1]))
                row += [fmt(*ma, digits=3), fmt(*mb, digits=3)]
            h, bc = means["rank_auc"], means["bce"]
            better = [o for o, x, y in ((a, h[0], bc[0]), (b, h[1], bc[1])) if x > y]
            wins += len(better) == 2
            both += 1
            lines.append(f"| {w} | " + " | ".join(row) + f" | {', '.join(better) or 'neither'} |")
        hv = {m: curve_area([(p[1], p[3]) for p in curves[(a, b)][m]]) for m in METHODS}
        lines += ["", f"Area above (0.5, 0.5) under each curve: HarmonRank {hv['rank_auc']:.5f}, "
                  f"MBCE {hv['bce']:.5f}.", ""]
        verdict = "agrees" if wins == both else ("partly agrees" if hv["rank_auc"] > hv["bce"]
                                                else "disagrees")
        findings.append(f"{verdict}: {a} vs {b}: HarmonRank is better on both objectives at "
                        f"{wins} of {both} weight settings; its curve's area is "
                        f"{hv['rank_auc']:.5f} vs MBCE {hv['bce']:.5f}. The paper has it "
                        f"better at every setting.")
    png = pair_curves(ctx.figures / "frontiers.png", curves, NAMES)
    md = "\n".join([
        "Each point is one model trained on the two objectives alone with static loss "
        f"weights (w, 1 - w), w in {', '.join(map(str, weights_of(ctx)))}; the point is the mean "
        f"test AUC over seeds {', '.join(map(str, ctx.seeds))} (bars: seed std). Pairs: the "
        "given ones, or the three least correlated pairs among objectives with at least 100 "
        "test positives.", "", *lines, f"![Trade-off curves]({png.name})"])
    return Section("Trade-off curves (HarmonRank Fig. 3)", md, findings)
