"""HarmonRank Fig. 3: trade-off curves of HarmonRank (rank_auc) and multi-objective BCE for
pairs of competing objectives, traced by sweeping the two objectives' loss weights.

Paper (Kuaishou-ELive): HarmonRank's curve lies above MBCE's for every weight allocation
(buy vs follow, comment vs buy, comment vs follow, long view vs follow).
"""
from __future__ import annotations

import itertools
import math

from analysis.frontier import hypervolume

from ..context import Context, Section
from ..plots import pair_curves
from ..runs import Run
from ..verdicts import Z, finding, judge, measure

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


def _cell(recs, a, b, m, w, o):
    def stat(look, seed):
        rec = recs.get((a, b, m, w, seed))
        return look.auc(rec)[o] if rec is not None else math.nan
    return stat


def _area(recs, a, b, m, weights):
    """Per seed: the area of that seed's curve (its points at every weight)."""
    def stat(look, seed):
        pts = [recs.get((a, b, m, w, seed)) for w in weights]
        if any(p is None for p in pts):
            return math.nan
        return curve_area([(look.auc(p)[a], look.auc(p)[b]) for p in pts])
    return stat


def _pair(ctx, recs, a, b, curves, lines) -> dict:
    """One pair's table rows, curve points and finding."""
    weights, noise, seeds = weights_of(ctx), ctx.noise, ctx.seeds
    lines += [f"**{a} vs {b}** (label Spearman "
              f"{ctx.rho[ctx.objectives.index(a), ctx.objectives.index(b)]:.3f}; test "
              f"positives {ctx.positives(a)} / {ctx.positives(b)})", "",
              f"| {a} weight | " + " | ".join(f"{NAMES[m]} {a} | {NAMES[m]} {b}"
                                               for m in METHODS) +
              f" | HarmonRank - MBCE, {a} | HarmonRank - MBCE, {b} |",
              "|" + "---|" * (2 * len(METHODS) + 3)]
    both = {"rank_auc": 0, "bce": 0}
    for w in weights:
        row = []
        for m in METHODS:
            pa, pb = (measure(noise, seeds, _cell(recs, a, b, m, w, o)) for o in (a, b))
            curves.setdefault((a, b), {}).setdefault(m, []).append(
                (w, pa.effect, pa.se, pb.effect, pb.se))
            row += [f"{pa.effect:.3f} ± {pa.se:.3f}", f"{pb.effect:.3f} ± {pb.se:.3f}"]
        gaps = [measure(noise, seeds, lambda look, s, o=o: _cell(recs, a, b, "rank_auc", w, o)(
            look, s) - _cell(recs, a, b, "bce", w, o)(look, s)) for o in (a, b)]
        both["rank_auc"] += all(g.beyond() > 0 for g in gaps)
        both["bce"] += all(g.beyond() < 0 for g in gaps)
        lines.append(f"| {w} | " + " | ".join(row) + " | " + " | ".join(
            f"{g.effect:+.3f} ± {g.se:.3f}" + (" *" if g.beyond() else "") for g in gaps) + " |")
    area = {m: measure(noise, seeds, _area(recs, a, b, m, weights)) for m in METHODS}
    diff = measure(noise, seeds, lambda look, s: _area(recs, a, b, "rank_auc", weights)(
        look, s) - _area(recs, a, b, "bce", weights)(look, s))
    lines += ["", f"Area above (0.5, 0.5) under each seed's curve, mean ± SE: HarmonRank "
              f"{area['rank_auc'].effect:.5f} ± {area['rank_auc'].se:.5f}, MBCE "
              f"{area['bce'].effect:.5f} ± {area['bce'].se:.5f}; HarmonRank - MBCE "
              f"{diff.pm(5)}.", ""]
    text = (f"{a} vs {b}: HarmonRank's curve area minus MBCE's: {diff.pm(5)}; better on both "
            f"objectives beyond {Z:g} SE at {both['rank_auc']} of {len(weights)} weight "
            f"settings (MBCE at {both['bce']}). The paper has HarmonRank better at every "
            f"setting.")
    return finding(f"frontier/{a}:{b}", judge(diff), text, effect=diff, area_rank_auc=area["rank_auc"],
                   area_bce=area["bce"], settings_rank_auc_better=both["rank_auc"],
                   settings_bce_better=both["bce"], settings=len(weights),
                   test_positives={a: ctx.positives(a), b: ctx.positives(b)})


def render(ctx: Context, pairs) -> Section:
    recs = {}
    for run, rec in pairs:
        if rec["status"] == "ok":
            recs[(*run.extra["pair"], run.extra["loss"], run.extra["w"], run.seed)] = rec
    curves, lines, findings, inputs = {}, [], [], {}
    for a, b in pairs_of(ctx):
        findings.append(_pair(ctx, recs, a, b, curves, lines))
        inputs[(a, b)] = {n: (v[a], v[b]) for n, v in ctx.inputs([a, b]).items()
                          if n in (f"score_{a}", f"score_{b}")}
    png = pair_curves(ctx.figures / "frontiers.png", curves, NAMES, inputs)
    md = "\n".join([
        "Each point is one model trained on the two objectives alone with static loss "
        f"weights (w, 1 - w), w in {', '.join(map(str, weights_of(ctx)))}, at its point "
        f"({ctx.rule} epoch rule: for own, the epoch best for w AUC_a + (1 - w) AUC_b on "
        f"validation); each cell is the mean test AUC over seeds "
        f"{', '.join(map(str, ctx.seeds))} ± its SE (seed spread and the test set's own "
        f"noise, bootstrap over test rows; bars in the figure: ±2 SE; * marks a gap beyond "
        f"{Z:g} SE). Stars: the two objectives' own input scores. Pairs: the given ones, or "
        "the three least correlated pairs among objectives with at least 100 test "
        "positives.", "", *lines, f"![Trade-off curves]({png.name})"])
    data = {f"{a}:{b}": {m: [dict(zip(("w", "auc_a", "se_a", "auc_b", "se_b"), p))
                              for p in pts] for m, pts in by.items()}
            for (a, b), by in curves.items()}
    return Section("Trade-off curves (HarmonRank Fig. 3)", md, findings, data)
