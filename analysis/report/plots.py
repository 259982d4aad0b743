"""The report's figures (PNG, matplotlib's Agg canvas through analysis.plots helpers)."""
from __future__ import annotations

import math

import numpy as np

from analysis.plots import colours, figure, save


def bars(path, names, rows, objectives):
    """Left: AUC sum per loss (seed std as error bars). Right: each objective's AUC change
    against the first loss (bce by default)."""
    fig = figure(12, 4.2)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2])
    means = [rows[n]["auc_sum"][0] for n in names]
    stds = [rows[n]["auc_sum"][1] for n in names]
    colour = colours(names)
    ax1.bar(range(len(names)), means, yerr=stds, color=[colour[n] for n in names], capsize=3)
    finite = [m for m in means if math.isfinite(m)]
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(hi - lo, 0.01)
        ax1.set_ylim(lo - pad, hi + pad)
    ax1.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax1.set_ylabel("test AUC sum")
    ax1.set_title("AUC sum (mean ± std over seeds)")
    base = names[0]
    width = 0.8 / max(1, len(names) - 1)
    for j, n in enumerate(names[1:]):
        d = [rows[n]["objective"][o][0] - rows[base]["objective"][o][0] for o in objectives]
        ax2.bar(np.arange(len(objectives)) + j * width - 0.4 + width / 2, d, width,
                label=n, color=colour[n])
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xticks(range(len(objectives)), objectives, rotation=30, ha="right")
    ax2.set_ylabel(f"test AUC - {base}")
    ax2.set_title(f"per objective, against {base}")
    ax2.legend(fontsize=8)
    return save(fig, path)


def skew_lines(path, methods, factors, stat, objective):
    fig = figure(6, 4)
    ax = fig.subplots()
    colour = colours(methods)
    for m in methods:
        base = stat.get((m, 1), (math.nan,))[0]
        y = [(stat.get((m, f), (math.nan,))[0] - base) / base * 100 for f in factors]
        ax.plot(range(len(factors)), y, "o-", color=colour[m], label=m)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(factors)), [f"{f}x" for f in factors])
    ax.set_xlabel(f"fewer {objective} positives in train")
    ax.set_ylabel("test AUC sum change (%)")
    ax.set_title("Label-skew robustness")
    ax.legend()
    return save(fig, path)


def pair_curves(path, curves, names):
    """curves: (a, b) -> method -> [(w, mean_a, std_a, mean_b, std_b)]."""
    n = max(1, len(curves))
    fig = figure(5 * n, 4.4)
    axes = np.atleast_1d(fig.subplots(1, n))
    colour = colours(list(names))
    for ax, ((a, b), by_method) in zip(axes, curves.items()):
        for m, pts in by_method.items():
            pts = np.array(pts, dtype=float)
            ax.errorbar(pts[:, 1], pts[:, 3], xerr=pts[:, 2], yerr=pts[:, 4], fmt="o-",
                        color=colour[m], label=names[m], capsize=2)
            for w, x, _, y, _ in pts:
                ax.annotate(f"{w:g}", (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel(f"test AUC {a}")
        ax.set_ylabel(f"test AUC {b}")
        ax.set_title(f"{a} vs {b} (labels: {a} weight)")
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
