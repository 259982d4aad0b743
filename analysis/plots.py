"""PNG plots of a search's per-objective AUCs (docs/DESIGN.md, "Analysis").

    plot_tradeoffs(F, objectives, groups, front, path, se=None, within=None)  one panel per
        pair of objectives, like HarmonRank Fig. 3: trials coloured by group (method), one
        line per group through its 2-D non-dominated points, the global frontier circled;
        with ``se`` (n, m AUC standard errors) ±SE error bars on both axes, with ``within``
        (per row True/False/None) the rows within noise of the frontier ringed dashed;
        ``baselines`` (``analysis.baselines.Baselines``): the input scores' points as black
        stars (±SE) and the best single input per objective as dotted lines; ``marked``:
        rows that do not beat the input scores, crossed
    plot_parallel(F, objectives, front, path)           parallel coordinates of the frontier
    plot_hypervolume(values, path, series=...)          hypervolume over trials (or time)

``F`` is (n, m) AUCs to maximize, NaN rows are failed trials (not drawn); ``front`` holds row
indices (None: ``pareto_front(F)``). Figures are built on matplotlib's Agg canvas directly,
never through pyplot: no window opens and no figure is left registered. The building
blocks ``figure(width, height)``, ``save(fig, path)`` and ``colours(names)`` are public
for other figures (the fidelity report, the benchmarks) to look the same.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.frontier import _as_matrix, pareto_front


def figure(width, height) -> Figure:
    """An empty figure on matplotlib's Agg canvas (no pyplot, no window), sized in inches."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders made); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def colours(names) -> dict:
    """One colour per name, in order (tab10, or tab20 beyond ten names)."""
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {g: cmap(i % cmap.N) for i, g in enumerate(names)}


def _inputs(F, front):
    F = _as_matrix(F)
    ok = np.isfinite(F).all(axis=1)
    front = pareto_front(F) if front is None else np.asarray(front, dtype=int).reshape(-1)
    return F, ok, front[ok[front]]


def _error_bars(ax, x, y, xerr, yerr, rows, colour) -> None:
    """±SE bars (no markers: the scatter draws the points) on the rows whose SEs are known;
    the panel's first set names them in the legend."""
    first = not ax.containers
    known = np.isfinite(yerr[rows]) & (True if xerr is None else np.isfinite(xerr[rows]))
    rows = rows[known]
    if len(rows):
        ax.errorbar(x[rows], y[rows], yerr=yerr[rows],
                    xerr=None if xerr is None else xerr[rows], fmt="none", ecolor=colour,
                    elinewidth=0.7, alpha=0.45, capsize=0,
                    label="±1 SE (Hanley-McNeil)" if first else "_nolegend_")


def _baseline_marks(ax, base, a, b, first: bool) -> None:
    """The input scores' points on one panel (a, b), and the best single input per
    objective as dotted lines (a vertical one for a, a horizontal one for b)."""
    B, S = base.F, base.se
    x = B[:, a] if a is not None else np.full(len(B), -1.0)
    ax.errorbar(x, B[:, b], xerr=None if a is None else S[:, a], yerr=S[:, b], fmt="*",
                ms=9, color="black", ecolor="0.2", elinewidth=0.8, capsize=0,
                label="input score (baseline, ±1 SE)" if first else "_nolegend_")
    for j, name in enumerate(base.names):
        ax.annotate(name.removeprefix("score_"), (x[j], B[j, b]), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")
    if a is not None:
        ax.axvline(B[:, a].max(), color="0.3", ls=":", lw=0.9)
    ax.axhline(B[:, b].max(), color="0.3", ls=":", lw=0.9,
               label="best single input per objective" if first else "_nolegend_")


def _tradeoffs_figure(F, objectives, groups, front, labels=None, title=None, se=None,
                      within=None, baselines=None, marked=None) -> Figure:
    F, ok, front = _inputs(F, front)
    S = None if se is None else _as_matrix(se)
    if S is not None and S.shape != F.shape:
        raise ValueError(f"se has shape {S.shape}, F has {F.shape}: one SE per AUC")
    n, m = F.shape
    groups = np.array(["trials"] * n if groups is None else [str(g) for g in groups])
    names = list(dict.fromkeys(groups[ok]))            # in order of first appearance
    colour = colours(names)
    pairs = list(itertools.combinations(range(m), 2)) or [(None, 0)]   # m = 1: AUC vs row
    ncols = math.ceil(math.sqrt(len(pairs)))
    nrows = math.ceil(len(pairs) / ncols)
    fig = figure(max(4.8, 3.6 * ncols), 3.2 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (a, b) in zip(axes, pairs):
        x, y = (np.arange(n, dtype=float) if a is None else F[:, a]), F[:, b]
        for g in names:
            rows = np.flatnonzero(ok & (groups == g))
            ax.scatter(x[rows], y[rows], s=12, color=colour[g], alpha=0.6, label=g)
            if S is not None:
                _error_bars(ax, x, y, None if a is None else S[:, a], S[:, b], rows, colour[g])
            if a is not None:                          # the group's own 2-D trade-off curve
                best = rows[pareto_front(F[rows][:, [a, b]])]
                best = best[np.argsort(x[best], kind="stable")]
                ax.plot(x[best], y[best], color=colour[g], lw=1.3)
        ax.scatter(x[front], y[front], s=55, facecolors="none", edgecolors="black", lw=1.1,
                   label="Pareto frontier (all objectives)")
        if within is not None:
            near = np.flatnonzero(ok & np.array([v is True or v is np.True_ for v in within]))
            near = np.setdiff1d(near, front)
            ax.scatter(x[near], y[near], s=55, facecolors="none", edgecolors="0.35", lw=0.9,
                       linestyles="--", label="within noise of the frontier")
        if baselines is not None:
            _baseline_marks(ax, baselines, a, b, ax is axes[0])
        if marked is not None and len(marked):
            m = np.asarray(marked, dtype=int)
            ax.scatter(x[m], y[m], s=45, marker="x", color="black", lw=1.3, zorder=5,
                       label="does not beat the input scores")
        if labels is not None and len(front) <= 20:
            for i in front:
                ax.annotate(str(labels[i]), (x[i], y[i]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel("trial (row)" if a is None else f"AUC {objectives[a]}")
        ax.set_ylabel(f"AUC {objectives[b]}")
        ax.grid(alpha=0.3)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    handles, texts = axes[0].get_legend_handles_labels()
    width = fig.get_figwidth()          # about 2.4 inches per legend entry at font size 8
    fig.legend(handles, texts, loc="outside lower center",
               ncols=max(1, min(len(texts), 2 * ncols, int(width // 2.4))), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_tradeoffs(F, objectives, groups, front, path, labels=None, title=None, se=None,
                   within=None, baselines=None, marked=None) -> Path:
    """Pairwise trade-off panels (m(m-1)/2 of them; one AUC-vs-row panel when m = 1)."""
    return save(_tradeoffs_figure(F, objectives, groups, front, labels, title, se, within,
                                  baselines, marked), path)


def _parallel_figure(F, objectives, front, labels=None, groups=None) -> Figure:
    F, ok, front = _inputs(F, front)
    m = F.shape[1]
    fig = figure(max(4.0, 1.5 * m + 2.0), 4.2)
    ax = fig.add_subplot()
    xs = np.arange(m)
    ax.set_xticks(xs, list(objectives))
    ax.set_yticks([])
    ax.set_xlim(-0.4, m - 0.6)
    ax.set_ylim(-0.15, 1.15)
    ax.set_title(f"Pareto frontier: {len(front)} trials (AUC range at each axis' ends)",
                 fontsize=10)
    if len(front) == 0:
        ax.text(0.5, 0.5, "no finite trials", transform=ax.transAxes, ha="center")
        return fig
    P = F[front]
    lo, span = P.min(axis=0), np.ptp(P, axis=0)
    U = np.where(span > 0, (P - lo) / np.where(span > 0, span, 1.0), 0.5)
    for k in xs:
        ax.axvline(k, color="0.5", lw=0.8, zorder=0)
        ax.text(k, -0.04, f"{lo[k]:.4f}", ha="center", va="top", fontsize=8)
        ax.text(k, 1.04, f"{lo[k] + span[k]:.4f}", ha="center", va="bottom", fontsize=8)
    if groups is not None:      # colours in the same order as plot_tradeoffs'
        key = [str(groups[i]) for i in front]
        colour = colours(list(dict.fromkeys(str(groups[i]) for i in np.flatnonzero(ok))))
    else:
        key = [str(labels[i]) if labels is not None else f"row {i}" for i in front]
        colour = colours(key)
    for k, u in zip(key, U):
        ax.plot(xs, u, marker="o", ms=3, lw=1.2, alpha=0.8, color=colour[k], label=k)
    if groups is not None or len(front) <= 12:
        handles, texts = ax.get_legend_handles_labels()
        unique = dict(zip(texts, handles))             # one entry per group
        fig.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize=8)
    return fig


def plot_parallel(F, objectives, front, path, labels=None, groups=None) -> Path:
    """Parallel coordinates of the frontier rows, each axis min-max normalized over them."""
    return save(_parallel_figure(F, objectives, front, labels, groups), path)


def _curve(v):
    """A sequence of hypervolumes (x = 1..n) or an (n, 2) array of (x, hypervolume) rows."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 2 and v.shape[1] == 2:
        return v[:, 0], v[:, 1]
    v = v.reshape(-1)
    return np.arange(1, len(v) + 1), v


def plot_hypervolume(values, path, xlabel="trials finished", title=None, series=None) -> Path:
    """Hypervolume over trials (or time); ``series`` maps a name to more curves.

    Each curve is a sequence of hypervolumes, one per finished trial, or an (n, 2) array
    of (x, hypervolume) rows, e.g. (seconds, hypervolume).
    """
    return save(_hypervolume_figure(values, xlabel, title, series), path)


def _hypervolume_figure(values, xlabel="trials finished", title=None, series=None) -> Figure:
    curves = {} if values is None else {"all trials" if series else "hypervolume": values}
    curves.update(series or {})
    if not curves:
        raise ValueError("nothing to plot: give values or series")
    fig = figure(6.0, 4.0)
    ax = fig.add_subplot()
    for name, v in curves.items():
        x, y = _curve(v)
        ax.plot(x, y, drawstyle="steps-post", marker="." if len(y) <= 60 else None,
                label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("hypervolume")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
