"""HarmonRank Tables 1-2: the ensemble losses compared on one network, AUC sum on test.

Paper (Kuaishou-ELive, 5 objectives, one run each): rank_auc 3.7522 > pairwise_logistic
3.7433 > pairwise_square 3.7415 > aucm 3.7412 > label_aggregation 3.6883 > bce 3.6682.
"""
from __future__ import annotations

import numpy as np

from ..context import Context, Section
from ..plots import bars
from ..runs import Run
from ..stats import auc_se, fmt, mean_std

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


def render(ctx: Context, pairs) -> Section:
    rows = summarize(pairs)
    names = [n for n in losses(ctx) if n in rows]
    K = len(ctx.objectives)
    head = "| loss | " + " | ".join(ctx.objectives) + " | AUC sum (mean ± std) | seeds " \
           "| paper AUC sum (5 obj.) |\n|" + "---|" * (K + 4)
    lines = [head]
    for n in names:
        r = rows[n]
        cells = [fmt(*r["objective"].get(o, (np.nan, np.nan)), digits=3) for o in ctx.objectives]
        paper = f"{PAPER[n]:.4f}" if n in PAPER else "-"
        failed = f" ({len(r['failed'])} failed)" if r["failed"] else ""
        lines.append(f"| {n} | " + " | ".join(cells) + f" | **{fmt(*r['auc_sum'])}** | "
                     f"{r['n']}{failed} | {paper} |")
    inp = [ctx.input_auc.get(o, np.nan) for o in ctx.objectives]
    lines.append("| *each objective's own input score* | " + " | ".join(
        f"*{v:.3f}*" for v in inp) + f" | *{np.nansum(inp):.4f}* | - | - |")
    se = []
    for o in ctx.objectives:
        p, n = ctx.counts["test"][o]
        a = np.nanmean([rows[x]["objective"].get(o, (np.nan,))[0] for x in names])
        se.append(f"{o} {auc_se(a, p, n - p):.3f} ({p} positives)")

    ranked = sorted(names, key=lambda n: -rows[n]["auc_sum"][0])
    paper_rank = sorted([n for n in names if n in PAPER], key=lambda n: -PAPER[n])
    findings = []
    if "rank_auc" in rows and len(ranked) > 1:
        best = ranked[0]
        m, s = rows["rank_auc"]["auc_sum"]
        if best == "rank_auc":
            second = ranked[1]
            gap = m - rows[second]["auc_sum"][0]
            noise = max(s, rows[second]["auc_sum"][1])
            findings.append(
                f"{'agrees' if gap > noise else 'agrees weakly'}: rank_auc (HarmonRank's "
                f"loss) has the highest test AUC sum, {gap:+.4f} over {second}"
                + ("" if gap > noise else f", within the seed spread ({noise:.4f})") + ".")
        else:
            bm = rows[best]["auc_sum"][0]
            findings.append(f"disagrees: {best} has the highest test AUC sum ({bm:.4f}); "
                            f"rank_auc is {ranked.index('rank_auc') + 1} of {len(ranked)} "
                            f"({m:.4f} ± {s:.4f}). The paper has rank_auc first.")
    if "bce" in rows and "rank_auc" in rows:
        ours = (rows["rank_auc"]["auc_sum"][0] - rows["bce"]["auc_sum"][0]) / K
        paper = (PAPER["rank_auc"] - PAPER["bce"]) / PAPER_OBJECTIVES
        findings.append(f"{'agrees' if ours > 0 else 'disagrees'}: rank_auc vs bce per "
                        f"objective: {ours:+.4f} AUC here, {paper:+.4f} in the paper.")
    if "rank_auc" in rows:
        per = rows["rank_auc"]["objective"]
        below = [o for o, v in zip(ctx.objectives, inp) if per.get(o, (np.nan,))[0] < v]
        best = max(names, key=lambda n: rows[n]["auc_sum"][0])
        findings.append(
            "note (the paper has no such baseline): an ensemble has one score for all "
            "objectives, each input score serves one; here rank_auc's test AUC is below the "
            f"objective's own input score on {len(below)} of {K} objectives "
            f"({', '.join(below) or 'none'}), and the best loss ({best}) sums "
            f"{rows[best]['auc_sum'][0]:.4f} against {np.nansum(inp):.4f} for the input "
            "scores taken one per objective.")
    png = bars(ctx.figures / "losses.png", names, rows, ctx.objectives)
    md = "\n".join([
        "Same network (HarmonRank, defaults), equal loss weights, one config per loss; "
        "test AUC of the epoch with the best validation AUC sum. Mean ± std over seeds "
        f"{', '.join(map(str, ctx.seeds))}. The last row is no ensemble: each objective "
        "ranked by its own input score (one ranking per objective, which a single fused "
        "score cannot match on all objectives at once).", "", *lines, "",
        f"Ranking here: {' > '.join(ranked)}.  ",
        f"Ranking in the paper: {' > '.join(paper_rank)}.", "",
        "The test set's own AUC error (Hanley-McNeil standard error, which seeds do not "
        "average away): " + "; ".join(se) + ".", "",
        f"![AUC sum per loss]({png.name})"])
    return Section("Loss comparison (HarmonRank Tables 1-2)", md, findings)
