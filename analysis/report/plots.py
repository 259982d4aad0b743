"""The report's figures (PNG, matplotlib's Agg canvas through analysis.plots helpers)."""
from __future__ import annotations

import math

import numpy as np

from analysis.plots import colours, figure, save


ERR = 2.0        # error bars span +-2 SE: the verdicts' threshold (verdicts.Z)


def bars(path, names, sums, gaps, objectives):
    """Left: each loss's test AUC sum above chance (sum of AUC - 0.5), zero-based bars with
    +-2 SE (seeds + test rows). Right: each objective's AUC gap to the first loss (bce by
    default), +-2 SE of the gap. ``sums``: name -> Measure; ``gaps``: name -> objective
    -> Measure (verdicts.Measure)."""
    fig = figure(12, 4.4)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2])
    k = len(objectives)
    colour = colours(names)
    above = [sums[n].effect - 0.5 * k for n in names]
    ax1.bar(range(len(names)), above, yerr=[ERR * sums[n].se for n in names],
            color=[colour[n] for n in names], capsize=3)
    ends = [v + d * ERR * sums[n].se for v, n in zip(above, names) for d in (-1, 1)]
    ends = [e for e in ends if math.isfinite(e)]
    lo, hi = min([0.0, *ends]), max([0.0, *ends])       # zero-based, bars and bars' tips in
    ax1.set_ylim(lo, hi if hi > lo else lo + 0.01)
    ax1.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax1.set_ylabel(f"test AUC sum - {0.5 * k:g} (chance)")
    ax1.set_title("AUC sum above chance (±2 SE: seeds + test rows)", fontsize=10)
    base = names[0] if names else ""
    width = 0.8 / max(1, len(names) - 1)
    for j, n in enumerate(names[1:]):
        d = [gaps[n][o].effect for o in objectives]
        e = [ERR * gaps[n][o].se for o in objectives]
        ax2.bar(np.arange(k) + j * width - 0.4 + width / 2, d, width, yerr=e, capsize=2,
                label=n, color=colour[n], error_kw={"elinewidth": 0.8})
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xticks(range(k), objectives, rotation=30, ha="right")
    ax2.set_ylabel(f"test AUC - {base}")
    ax2.set_title(f"per objective, against {base} (±2 SE of the gap)", fontsize=10)
    if len(names) > 1:
        ax2.legend(fontsize=8)
    return save(fig, path)


def skew_lines(path, methods, factors, changes, objective):
    """The AUC sum's change (%) from 1x per method and factor, +-2 SE (seeds + test rows);
    ``changes``: (method, factor) -> Measure (factor 1: zero)."""
    fig = figure(6, 4)
    ax = fig.subplots()
    colour = colours(methods)
    for j, m in enumerate(methods):
        x = np.arange(len(factors)) + (j - (len(methods) - 1) / 2) * 0.06
        y = [changes[(m, f)].effect if (m, f) in changes else math.nan for f in factors]
        e = [ERR * changes[(m, f)].se if (m, f) in changes else 0.0 for f in factors]
        ax.errorbar(x, y, yerr=e, fmt="o-", color=colour[m], label=m, capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(factors)), [f"{f}x" for f in factors])
    ax.set_xlabel(f"fewer {objective} positives in train")
    ax.set_ylabel("test AUC sum change from 1x (%)")
    ax.set_title("Label-skew robustness (±2 SE: seeds + test rows)", fontsize=10)
    ax.legend()
    return save(fig, path)


def pair_curves(path, curves, names, inputs=None):
    """curves: (a, b) -> method -> [(w, mean_a, se_a, mean_b, se_b)] (bars: +-2 SE, seeds +
    test rows); ``inputs``: (a, b) -> {input score name: (AUC a, AUC b)}, drawn as stars.
    The axes are AUCs, not lengths: they start where the points are."""
    n = max(1, len(curves))
    fig = figure(5 * n, 4.6)
    axes = np.atleast_1d(fig.subplots(1, n))
    colour = colours(list(names))
    for ax, ((a, b), by_method) in zip(axes, curves.items()):
        for m, pts in by_method.items():
            pts = np.array(pts, dtype=float)
            ax.errorbar(pts[:, 1], pts[:, 3], xerr=ERR * pts[:, 2], yerr=ERR * pts[:, 4],
                        fmt="o-", color=colour[m], label=names[m], capsize=2)
            for w, x, _, y, _ in pts:
                ax.annotate(f"{w:g}", (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        for j, (name, (x, y)) in enumerate(((inputs or {}).get((a, b)) or {}).items()):
            ax.plot([x], [y], "*", ms=10, color="black",
                    label="input score (baseline)" if j == 0 else "_nolegend_")
            ax.annotate(name.removeprefix("score_"), (x, y), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
        ax.set_xlabel(f"test AUC {a}")
        ax.set_ylabel(f"test AUC {b}")
        ax.set_title(f"{a} vs {b} (labels: {a} weight; ±2 SE)", fontsize=10)
        ax.legend(fontsize=8)
    return save(fig, path)


def heatmaps(path, rho, mats: dict, objectives):
    panels = [("label Spearman (train)", rho)] + [(f"A_r ({k})", m) for k, m in mats.items()]
    fig = figure(4.6 * len(panels), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, m) in zip(axes, panels):
        shown = np.array(m, dtype=float)
        if title.startswith("label"):
            shown = shown.copy()
            np.fill_diagonal(shown, np.nan)    # the diagonal (1) would wash out the rest
        im = ax.imshow(shown, cmap="viridis")
        ax.set_xticks(range(len(objectives)), objectives, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(objectives)), objectives, fontsize=8)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return save(fig, path)
