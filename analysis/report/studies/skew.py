"""HarmonRank Table 7: positives of the rarest objective down-sampled 10x and 100x in the
training split only; the relative drop of the test AUC sum per method.

Paper (Kuaishou-ELive, buy at 1:10^3): MBCE 3.67 -> 3.48 (-5.2%) -> 3.31 (-9.8%),
pairwise logistic 3.74 -> 3.60 (-3.7%) -> 3.58 (-4.3%), HarmonRank 3.75 -> 3.74 (-0.3%)
-> 3.70 (-1.3%).
"""
from __future__ import annotations

import math

from ..context import Context, Section
from ..data import skewed_copy
from ..plots import skew_lines
from ..runs import Run
from ..stats import fmt, mean_std
from ..verdicts import Z, finding, judge, measure

DEFAULT = ("bce", "pairwise_logistic", "rank_auc")
FACTORS = (1, 10, 100)
PAPER = {"bce": (3.67, 3.48, 3.31), "pairwise_logistic": (3.74, 3.60, 3.58),
         "rank_auc": (3.75, 3.74, 3.70)}


def _setup(ctx: Context):
    methods = list(ctx.options.get("skew_losses") or DEFAULT)
    objective = ctx.options.get("skew_objective") or ctx.rarest()
    data, kept = {}, {}
    for f in FACTORS:
        if f == 1:
            data[f] = ctx.data
            kept[f] = ctx.positives(objective, "train")
            continue
        folder, _, kept[f] = skewed_copy(ctx.data, ctx.out / "data" / f"skew_{objective}_{f}x",
                                         objective, f)
        data[f] = folder
    return methods, objective, data, kept


def plan(ctx: Context) -> list[Run]:
    methods, objective, data, _ = _setup(ctx)
    return [Run("label_skew", f"{m} {f}x", s, ctx.config(loss=m, data=data[f]),
                {"loss": m, "factor": f}) for m in methods for f in FACTORS for s in ctx.seeds]


def _change(recs, m, f):
    """Per seed: the AUC sum's change (%) from 1x to ``f`` for method ``m``."""
    def stat(look, seed):
        a, b = recs.get((m, 1, seed)), recs.get((m, f, seed))
        if a is None or b is None:
            return math.nan
        s1, sf = sum(look.auc(a).values()), sum(look.auc(b).values())
        return (sf - s1) / s1 * 100
    return stat


def _verdict(ctx, recs, methods, changes, objective) -> dict:
    worst = max(FACTORS)
    others = [m for m in methods if m != "rank_auc"]
    best_other = max(others, key=lambda m: changes[(m, worst)].effect)
    m = measure(ctx.noise, ctx.seeds, lambda look, s: _change(recs, "rank_auc", worst)(look, s)
                - _change(recs, best_other, worst)(look, s), compared_with=best_other)
    drops = [x for x in methods if changes[(x, worst)].beyond() < 0]
    each = "; ".join(f"{x} {changes[(x, worst)].pm(2, pct=True)}" for x in methods)
    paper = "the paper has rank_auc dropping least (-1.3% vs -9.8% MBCE, -4.3% PL)"
    if not drops:
        return finding("label_skew/rank_auc_least_drop", "inconclusive",
                       f"at {worst}x fewer {objective} positives no method's AUC sum drops "
                       f"beyond {Z:g} SE ({each}), so there is no drop to be robust to "
                       f"(rank_auc's change minus {best_other}'s: {m.pm(2, pct=True)}); "
                       f"{paper}.", effect=m, no_drop=True,
                       changes={x: changes[(x, worst)] for x in methods})
    text = (f"at {worst}x fewer {objective} positives rank_auc's AUC sum change minus the "
            f"most robust other method's ({best_other}): {m.pm(2, pct=True)} ({each}); "
            f"{paper}.")
    return finding("label_skew/rank_auc_least_drop", judge(m), text, effect=m,
                   changes={x: changes[(x, worst)] for x in methods})


def render(ctx: Context, pairs) -> Section:
    methods, objective, _, kept = _setup(ctx)
    sums: dict = {}
    rare: dict = {}
    recs = {}
    for run, rec in pairs:
        if rec["status"] == "ok":
            key = (run.extra["loss"], run.extra["factor"])
            sums.setdefault(key, []).append(rec["test_auc_sum"])
            rare.setdefault(key, []).append(rec["test"][objective])
            recs[(*key, run.seed)] = rec
    stat = {k: mean_std(v) for k, v in sums.items()}
    rstat = {k: mean_std(v) for k, v in rare.items()}
    changes = {(m, f): measure(ctx.noise, ctx.seeds, _change(recs, m, f))
               for m in methods for f in FACTORS}
    lines = ["| method | " + " | ".join(f"{f}x ({kept[f]} train positives)" for f in FACTORS)
             + f" | {objective} AUC at " + ", ".join(f"{f}x" for f in FACTORS)
             + " | paper |", "|" + "---|" * (len(FACTORS) + 3)]
    for m in methods:
        cells = []
        for f in FACTORS:
            mean, std = stat.get((m, f), (float("nan"), float("nan")))
            c = changes[(m, f)]
            cells.append(fmt(mean, std) + ("" if f == 1 else
                                           f" ({c.effect:+.2f}% ± {c.se:.2f}%)"))
        rcells = ", ".join(fmt(*rstat.get((m, f), (float("nan"), None)), digits=3)
                           for f in FACTORS)
        p = PAPER.get(m)
        paper = " → ".join(f"{v:.2f}" for v in p) + \
            f" ({(p[-1] - p[0]) / p[0] * 100:+.1f}%)" if p else "-"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {rcells} | {paper} |")
    findings = []
    if "rank_auc" in methods and len(methods) > 1:
        findings.append(_verdict(ctx, recs, methods, changes, objective))
    png = skew_lines(ctx.figures / "label_skew.png", methods, FACTORS, changes, objective)
    md = "\n".join([
        f"The rarest objective on train is **{objective}** "
        f"({ctx.counts['train'][objective][0]} positives in "
        f"{ctx.counts['train'][objective][1]:,} training rows; "
        f"{ctx.counts['test'][objective][0]} test positives). Its positive rows are "
        "dropped from the training split at random, keeping 1/10 and 1/100 of them (at least "
        "one); valid and test are unchanged. Test AUC sum over all objectives at each run's "
        f"point ({ctx.rule} epoch rule), mean ± seed std over seeds "
        f"{', '.join(map(str, ctx.seeds))}; in brackets the change from 1x ± its SE (seed "
        "spread of the paired per-seed changes and the test set's own noise, bootstrap over "
        f"test rows). The {objective} AUCs: mean ± seed std.", "",
        *lines, "",
        f"![AUC sum under label skew]({png.name})"])
    data = {"objective": objective, "kept_train_positives": kept,
            "auc_sum_mean_std": {f"{m} {f}x": stat.get((m, f)) for m in methods for f in FACTORS},
            "change_pct": {f"{m} {f}x": changes[(m, f)].as_json()
                           for m in methods for f in FACTORS if f != 1}}
    return Section("Label-skew robustness (HarmonRank Table 7)", md, findings, data)
