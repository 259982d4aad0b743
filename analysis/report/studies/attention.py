"""HarmonRank sec. 5.7.2: does the relation attention A_r learn the labels' correlations?

Paper (Kuaishou-ELive): with sigmoid-normalized attention, Pearson r = 0.82 (p = 0.004)
between label Spearman rho and A_r; buy's row orders comment > long view > follow > like
in both views.
"""
from __future__ import annotations

import numpy as np

from ..context import Context, Section
from ..plots import heatmaps
from ..runs import Run
from ..stats import fmt, mean_std, pearson
from ..verdicts import Measure, Z, finding, judge

NORMS = ("sigmoid", "softmax")    # the paper's choice for this analysis, and the default


def focus(ctx: Context) -> str:
    """The objective whose row is read (the paper: buy, its rarest): the rarest objective
    with at least 100 training positives."""
    return ctx.options.get("attention_objective") or ctx.rarest(min_positives=100)


def plan(ctx: Context) -> list[Run]:
    return [Run("attention", f"rank_auc {n}", s, ctx.config(model={"attention_norm": n}),
                {"norm": n}, attention=True) for n in NORMS for s in ctx.seeds]


def _upper(m: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(m.shape[0], 1)
    return m[i, j]


def _verdict(per_seed, K: int) -> dict:
    """The seed-mean r over the objective pairs, with the seed spread and r's own sampling
    SE over n pairs, (1 - r^2) / sqrt(n - 1) (A_r is a mean over every test row: its
    own test-set noise is far smaller than both)."""
    n = K * (K - 1) // 2
    vals = np.array([r for r in per_seed if np.isfinite(r)])
    r = float(vals.mean()) if len(vals) else float("nan")
    se_seed = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    se_pairs = (1 - r * r) / np.sqrt(n - 1) if n > 1 and np.isfinite(r) else float("nan")
    m = Measure(r, [float(x) for x in per_seed], se_seed, float(se_pairs),
                {"pairs": n, "paper": 0.82}, second=f"{n} pairs")
    text = (f"sigmoid A_r vs label Spearman over the {n} objective pairs, Pearson's r "
            f"(mean over seeds): {m.pm(2)}; the claim is r > 0 beyond {Z:g} SE; the paper "
            f"reports r = 0.82 (p = 0.004), {abs(0.82 - r) / m.se:.1f} SE "
            f"{'above' if r < 0.82 else 'below'} ours.")
    return finding("attention/sigmoid_r", judge(m), text, r=m)


def render(ctx: Context, pairs) -> Section:
    K = len(ctx.objectives)
    rho = ctx.rho
    f = focus(ctx)
    fi = ctx.objectives.index(f)
    others = [k for k in range(K) if k != fi]
    lines = ["| A_r normalization | r (all pairs) per seed | mean r ± seed std | p (mean A_r) | "
             f"r ({f}'s row) | mean A_r row of {f} |", "|---|---|---|---|---|---|"]
    findings, mats = [], {}
    for norm in NORMS:
        A = [np.array(rec["attention"]) for run, rec in pairs
             if rec["status"] == "ok" and run.extra["norm"] == norm and "attention" in rec]
        if not A:
            continue
        # A_r is not symmetric: entry (m, n) and (n, m) both meet rho_mn; average them
        per_seed = [pearson(_upper((a + a.T) / 2), _upper(rho))[0] for a in A]
        mean_a = np.mean(A, 0)
        mats[norm] = mean_a
        r, p = pearson(_upper((mean_a + mean_a.T) / 2), _upper(rho))
        r_row, _ = pearson(mean_a[fi, others], rho[fi, others])
        row = ", ".join(f"{ctx.objectives[k]} {mean_a[fi, k]:.3f}" for k in others)
        lines.append(f"| {norm} | {', '.join(f'{x:.2f}' for x in per_seed)} | "
                     f"{fmt(*mean_std(per_seed), digits=2)} | {p:.3g} | {r_row:.2f} | {row} |")
        if norm == "sigmoid":
            findings.append(_verdict(per_seed, K))
    order_rho = [ctx.objectives[k] for k in sorted(others, key=lambda k: -rho[fi, k])]
    png = heatmaps(ctx.figures / "attention.png", rho, mats, ctx.objectives)
    md = "\n".join([
        "HarmonRank with rank_auc and equal weights on all objectives; A_r averaged over the "
        "test rows (row m: how objective m's score embedding attends to the others). The "
        "ground truth is the label Spearman correlation on the training split. r is Pearson's "
        "correlation between the two over the objective pairs (A_r symmetrized); the row "
        f"columns read {f}'s row alone, as the paper's Fig. 5 reads buy's. Seeds "
        f"{', '.join(map(str, ctx.seeds))}.", "", *lines, "",
        f"Label correlation order of {f}'s row: {' > '.join(order_rho)}.", "",
        f"![A_r vs label Spearman]({png.name})"])
    return Section("Attention vs label correlation (HarmonRank sec. 5.7.2)", md, findings)
