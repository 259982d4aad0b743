"""HarmonRank Tables 1-2: the ensemble losses compared on one network, AUC sum on test.

Paper (Kuaishou-ELive, 5 objectives, one run each): rank_auc 3.7522 > pairwise_logistic
3.7433 > pairwise_square 3.7415 > aucm 3.7412 > label_aggregation 3.6883 > bce 3.6682.
"""
from __future__ import annotations

import math

import numpy as np

from ..context import Context, Section
from ..plots import bars
from ..runs import Run
from ..stats import auc_se, fmt, mean_std
from ..verdicts import Z, finding, judge, measure

DEFAULT = ("bce", "label_aggregation", "pairwise_logistic", "pairwise_square", "aucm",
           "rank_auc")
# AUC sum on Kuaishou-ELive with 5 objectives: Table 2 (AUC losses), Table 1 (bce, label
# aggregation); the paper gives no seeds or spread.
PAPER = {"bce": 3.6682, "label_aggregation": 3.6883, "pairwise_logistic": 3.7433,
         "pairwise_square": 3.7415, "aucm": 3.7412, "rank_auc": 3.7522}
PAPER_OBJECTIVES = 5


def losses(ctx: Context) -> list[str]:
    return list(ctx.options.get("losses") or DEFAULT)


def plan(ctx: Context) -> list[Run]:
    return [Run("losses", loss, s, ctx.config(loss=loss), {"loss": loss})
            for loss in losses(ctx) for s in ctx.seeds]


def summarize(pairs) -> dict:
    """label -> {auc_sum: (mean, std), objective: (mean, std), n, failed: [reasons]}."""
    out: dict = {}
    for run, rec in pairs:
        row = out.setdefault(run.label, {"sums": [], "per": {}, "failed": []})
        if rec["status"] != "ok":
            row["failed"].append(rec["reason"])
            continue
        row["sums"].append(rec["test_auc_sum"])
        for o, v in rec["test"].items():
            row["per"].setdefault(o, []).append(v)
    for row in out.values():
        row["auc_sum"] = mean_std(row["sums"])
        row["objective"] = {o: mean_std(v) for o, v in row["per"].items()}
        row["n"] = len(row["sums"])
    return out


def _records(pairs) -> dict:
    return {(run.label, run.seed): rec for run, rec in pairs if rec and rec["status"] == "ok"}


def _auc(look, recs, label, seed, objective) -> float:
    rec = recs.get((label, seed))
    return look.auc(rec)[objective] if rec is not None else math.nan


def _sum(look, recs, label, seed, objectives) -> float:
    return float(sum(_auc(look, recs, label, seed, o) for o in objectives))


def _measures(ctx, recs, names):
    """Each loss's AUC sum, and each loss's per-objective gap to the first loss, with
    their SEs (for the table and the figure)."""
    objs, seeds = ctx.objectives, ctx.seeds
    sums = {n: measure(ctx.noise, seeds, lambda look, s, n=n: _sum(look, recs, n, s, objs))
            for n in names}
    base = names[0]
    gaps = {n: {o: measure(ctx.noise, seeds, lambda look, s, n=n, o=o:
                           _auc(look, recs, n, s, o) - _auc(look, recs, base, s, o))
                for o in objs} for n in names[1:]}
    return sums, gaps


def _rank_first(ctx, recs, rows, ranked) -> dict:
    """rank_auc's AUC sum minus the best other loss's (by mean), per seed."""
    objs = ctx.objectives
    second = next(n for n in ranked if n != "rank_auc")
    m = measure(ctx.noise, ctx.seeds, lambda look, s: _sum(look, recs, "rank_auc", s, objs)
                - _sum(look, recs, second, s, objs), compared_with=second)
    place = ranked.index("rank_auc") + 1
    text = (f"rank_auc (HarmonRank's loss) has the highest test AUC sum: it places "
            f"{place} of {len(ranked)}; rank_auc minus the best other loss ({second}): "
            f"{m.pm()}. The paper has rank_auc first.")
    return finding("losses/rank_auc_first", judge(m), text, effect=m)


def _rank_vs_bce(ctx, recs) -> dict:
    objs, k = ctx.objectives, len(ctx.objectives)
    m = measure(ctx.noise, ctx.seeds, lambda look, s: sum(
        _auc(look, recs, "rank_auc", s, o) - _auc(look, recs, "bce", s, o) for o in objs) / k)
    per = {o: measure(ctx.noise, ctx.seeds, lambda look, s, o=o:
                      _auc(look, recs, "rank_auc", s, o) - _auc(look, recs, "bce", s, o))
           for o in objs}
    paper = (PAPER["rank_auc"] - PAPER["bce"]) / PAPER_OBJECTIVES
    signs = {w: [o for o, x in per.items() if x.beyond() == v]
             for w, v in (("above", 1), ("below", -1), ("within noise", 0))}
    away = (paper - m.effect) / m.se if m.se > 0 else math.nan
    text = (f"rank_auc vs bce, mean AUC gain per objective: {m.pm()}; the paper: "
            f"{paper:+.4f} per objective, {abs(away):.1f} SE {'above' if away > 0 else 'below'} "
            f"ours. "
            f"Per objective, beyond {Z:g} SE above bce: {', '.join(signs['above']) or 'none'}; "
            f"below: {', '.join(signs['below']) or 'none'}; within noise: "
            f"{', '.join(signs['within noise']) or 'none'}.")
    return finding("losses/rank_auc_vs_bce", judge(m), text, effect=m, paper=paper,
                   per_objective={o: x for o, x in per.items()})


def _vs_inputs(ctx, recs, best) -> dict:
    """The best loss against each objective's own input score (no paper claim)."""
    objs = ctx.objectives
    per = {o: measure(ctx.noise, ctx.seeds, lambda look, s, o=o:
                      _auc(look, recs, best, s, o) - look.inputs()[f"score_{o}"][o])
           for o in objs}
    below = [o for o, x in per.items() if x.beyond() < 0]
    above = [o for o, x in per.items() if x.beyond() > 0]
    total = measure(ctx.noise, ctx.seeds, lambda look, s: _sum(look, recs, best, s, objs) -
                    sum(look.inputs()[f"score_{o}"][o] for o in objs))
    text = (f"an ensemble has one score for all objectives, each input score serves one. "
            f"The best loss ({best}) against each objective's own input score: below it "
            f"beyond {Z:g} SE on {len(below)} of {len(objs)} ({', '.join(below) or 'none'}), "
            f"above it on {len(above)} ({', '.join(above) or 'none'}), within noise on the "
            f"rest; its AUC sum minus the input scores' (one per objective): {total.pm()}.")
    return finding("losses/input_scores", "note (the paper has no such baseline)", text, sum_gap=total,
                   per_objective=per)


def render(ctx: Context, pairs) -> Section:
    rows = summarize(pairs)
    recs = _records(pairs)
    names = [n for n in losses(ctx) if n in rows and rows[n]["n"]]
    K = len(ctx.objectives)
    sums, gaps = _measures(ctx, recs, names) if names else ({}, {})
    head = "| loss | " + " | ".join(ctx.objectives) + " | AUC sum ± SE (seeds + test rows) " \
           "| seeds | paper AUC sum (5 obj.) |\n|" + "---|" * (K + 4)
    lines = [head]
    for n in names:
        r = rows[n]
        cells = [fmt(*r["objective"].get(o, (np.nan, np.nan)), digits=3) for o in ctx.objectives]
        paper = f"{PAPER[n]:.4f}" if n in PAPER else "-"
        failed = f" ({len(r['failed'])} failed)" if r["failed"] else ""
        lines.append(f"| {n} | " + " | ".join(cells) + f" | **{sums[n].effect:.4f} ± "
                     f"{sums[n].se:.4f}** | {r['n']}{failed} | {paper} |")
    inp = {o: ctx.noise.inputs[f"score_{o}"][o] for o in ctx.objectives}
    inp_se = {o: ctx.noise.input_se(f"score_{o}", o) for o in ctx.objectives}
    lines.append("| *each objective's own input score* | " + " | ".join(
        f"*{inp[o]:.3f} ± {inp_se[o]:.3f}*" for o in ctx.objectives) +
        f" | *{sum(inp.values()):.4f}* | - | - |")
    se = []
    for o in ctx.objectives:
        p, n = ctx.counts["test"][o]
        a = np.nanmean([rows[x]["objective"].get(o, (np.nan,))[0] for x in names])
        se.append(f"{o} {auc_se(a, p, n - p):.3f} ({p} positives)")
    ranked = sorted(names, key=lambda n: -sums[n].effect)
    paper_rank = sorted([n for n in names if n in PAPER], key=lambda n: -PAPER[n])
    findings = []
    if "rank_auc" in names and len(names) > 1:
        findings.append(_rank_first(ctx, recs, rows, ranked))
    if "bce" in names and "rank_auc" in names:
        findings.append(_rank_vs_bce(ctx, recs))
    if names:
        findings.append(_vs_inputs(ctx, recs, ranked[0]))
    png = bars(ctx.figures / "losses.png", names, sums, gaps, ctx.objectives)
    md = "\n".join([
        "Same network (HarmonRank, defaults), equal loss weights, one config per loss; "
        f"test AUC of each run's point ({ctx.rule} epoch rule, chosen on validation). Per "
        f"objective: mean ± seed std over seeds {', '.join(map(str, ctx.seeds))}. AUC sum: "
        "mean ± its SE, the seed spread (std / sqrt(seeds)) and the test set's own noise "
        "(bootstrap over test rows) combined. The last row is no ensemble: each objective "
        "ranked by its own input score, ± its test-set SE (one ranking per objective, which "
        "a single fused score cannot match on all objectives at once).", "", *lines, "",
        f"Ranking here: {' > '.join(ranked)}.  ",
        f"Ranking in the paper: {' > '.join(paper_rank)}.", "",
        "The test set's own AUC error at these AUCs (Hanley-McNeil standard error, which "
        "seeds do not average away): " + "; ".join(se) + ".", "",
        f"![AUC sum per loss]({png.name})"])
    data = {"auc_sum": {n: sums[n].as_json() for n in names},
            "per_objective_mean_std": {n: rows[n]["objective"] for n in names},
            "gap_to_first": {n: {o: g.as_json() for o, g in v.items()} for n, v in gaps.items()},
            "input_scores": {o: {"auc": inp[o], "se_test": inp_se[o]} for o in ctx.objectives}}
    return Section("Loss comparison (HarmonRank Tables 1-2)", md, findings, data)
