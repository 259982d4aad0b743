"""PNG plots (analysis.plots; docs/DESIGN.md, "Analysis"): what each figure shows (points at
the AUCs given, one panel per objective pair, the frontier marked, objective names on the
axes, the hypervolume curve's values), valid PNG files, no figure left open."""
from __future__ import annotations

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.frontier import hypervolume_curve, pareto_front, worst_point
from analysis.plots import (_hypervolume_figure, _parallel_figure, _tradeoffs_figure,
                            plot_hypervolume, plot_parallel, plot_tradeoffs)

OBJ = ["click", "long_view", "like", "follow", "buy"]
GROUPS = ["harmonrank+rank_auc", "pe_ltr+bce", "equal+bce"]


def _results(m, n=30, seed=0):
    rng = np.random.default_rng(seed)
    F = rng.uniform(0.6, 0.8, (n, m))
    F[[4, 11]] = np.nan                          # failed trials
    groups = [GROUPS[i % 3] for i in range(n)]
    return F, OBJ[:m], groups, [f"trial_{i:03d}" for i in range(n)]


def _assert_png(path):
    assert path.exists()
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 0 and img.shape[1] > 0
    assert plt.get_fignums() == []


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_tradeoffs_and_parallel_write_pngs(m, tmp_path):
    F, objectives, groups, labels = _results(m)
    front = pareto_front(F)
    _assert_png(plot_tradeoffs(F, objectives, groups, front, tmp_path / "a" / "trade.png",
                               labels=labels, title="5 objectives"))
    if m <= 2:
        _assert_png(plot_tradeoffs(F, objectives, None, None, tmp_path / "trade_plain.png"))
    _assert_png(plot_parallel(F, objectives, front, tmp_path / "par.png", labels=labels))
    _assert_png(plot_parallel(F, objectives, front, str(tmp_path / "par_g.png"), groups=groups))


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_tradeoffs_has_one_panel_per_pair(m):
    F, objectives, groups, _ = _results(m)
    fig = _tradeoffs_figure(F, objectives, groups, pareto_front(F))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == max(1, m * (m - 1) // 2)
    assert {ax.get_ylabel() for ax in panels} <= {f"AUC {o}" for o in objectives}
    if m >= 2:
        assert panels[0].get_xlabel() == "AUC click" and panels[0].get_ylabel() == "AUC long_view"
        assert len(panels[0].lines) == len(GROUPS)   # one curve per group
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[:3] == GROUPS


def _rows(a):
    """A set of rounded coordinate rows, to compare drawn points with given ones."""
    return sorted(map(tuple, np.round(np.asarray(a, dtype=float), 12).tolist()))


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_tradeoffs_points_are_the_aucs_given_and_the_frontier_is_marked(m):
    import itertools
    F, objectives, groups, _ = _results(m)
    front = pareto_front(F)
    fig = _tradeoffs_figure(F, objectives, groups, front)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    pairs = list(itertools.combinations(range(m), 2))
    assert len(panels) == max(1, len(pairs))
    ok = np.isfinite(F).all(axis=1)
    g = np.array(groups)
    for ax, pair in zip(panels, pairs or [(None, 0)]):
        a, b = pair
        xy = (np.c_[np.arange(len(F)), F[:, b]] if a is None else F[:, [a, b]])
        assert ax.get_xlabel() == ("trial (row)" if a is None else f"AUC {objectives[a]}")
        assert ax.get_ylabel() == f"AUC {objectives[b]}"
        *by_group, marked = ax.collections           # one scatter per group, then the frontier
        assert [c.get_label() for c in by_group] == GROUPS
        for c, name in zip(by_group, GROUPS):         # every finite trial, at its AUCs
            assert _rows(c.get_offsets()) == _rows(xy[ok & (g == name)])
        assert sum(len(c.get_offsets()) for c in by_group) == ok.sum()   # failed: not drawn
        assert marked.get_label().startswith("Pareto frontier")
        assert _rows(marked.get_offsets()) == _rows(xy[front])
        assert len(front) > 0 and np.isfinite(F[front]).all()
        if a is not None:                             # each group's 2-D trade-off curve
            for line, name in zip(ax.lines, GROUPS):
                rows = np.flatnonzero(ok & (g == name))
                best = rows[pareto_front(F[rows][:, [a, b]])]
                assert _rows(line.get_xydata()) == _rows(xy[best])


def test_parallel_draws_one_line_per_frontier_row():
    F, objectives, groups, _ = _results(3)
    front = pareto_front(F)
    ax = _parallel_figure(F, objectives, front, groups=groups).axes[0]
    assert len(ax.lines) == len(front) + 3        # + one vertical axis line per objective
    ends = {t.get_text() for t in ax.texts}
    assert f"{F[front, 0].min():.4f}" in ends and f"{F[front, 0].max():.4f}" in ends


def test_all_failed_trials_still_plot(tmp_path):
    F = np.full((4, 3), np.nan)
    _assert_png(plot_tradeoffs(F, OBJ[:3], None, None, tmp_path / "t.png"))
    _assert_png(plot_parallel(F, OBJ[:3], None, tmp_path / "p.png"))


def test_hypervolume_figure_draws_the_curve_values():
    F, *_ = _results(3)
    hv = hypervolume_curve(F, worst_point(F))
    ax = _hypervolume_figure(hv, title="hv").axes[0]
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_ydata(), hv)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(hv) + 1))
    assert ax.get_xlabel() == "trials finished" and ax.get_ylabel() == "hypervolume"
    assert ax.get_title() == "hv"
    timed = np.c_[np.arange(30) * 7.5, hv]
    ax = _hypervolume_figure(hv, xlabel="seconds", series={"pe_ltr": hv * 0.9,
                                                            "by time": timed}).axes[0]
    lines = {l.get_label(): l for l in ax.lines}
    assert list(lines) == ["all trials", "pe_ltr", "by time"]
    np.testing.assert_array_equal(lines["all trials"].get_ydata(), hv)
    np.testing.assert_array_equal(lines["pe_ltr"].get_ydata(), hv * 0.9)
    np.testing.assert_array_equal(lines["by time"].get_xdata(), timed[:, 0])
    np.testing.assert_array_equal(lines["by time"].get_ydata(), hv)
    assert ax.get_xlabel() == "seconds"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)


def test_hypervolume_plots(tmp_path):
    F, *_ = _results(3)
    hv = hypervolume_curve(F, worst_point(F))
    _assert_png(plot_hypervolume(hv, tmp_path / "hv.png", title="hypervolume"))
    series = {"harmonrank": hv, "pe_ltr": hv * 0.9, "by time": np.c_[np.arange(30) * 7.5, hv]}
    _assert_png(plot_hypervolume(None, tmp_path / "hv_s.png", xlabel="seconds", series=series))
    _assert_png(plot_hypervolume(hv, tmp_path / "hv_both.png", series={"pe_ltr": hv[:10]}))
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_hypervolume(None, tmp_path / "none.png")


@pytest.mark.parametrize("m", [1, 2, 3])
def test_tradeoffs_draw_se_error_bars_and_ring_the_points_within_noise(m, tmp_path):
    import itertools
    from matplotlib.collections import PathCollection
    from matplotlib.container import ErrorbarContainer
    F, objectives, groups, _ = _results(m)
    rng = np.random.default_rng(3)
    S = rng.uniform(0.002, 0.01, F.shape)
    S[7] = np.nan                                  # SE unknown: that point gets no bars
    front = pareto_front(F)
    near = [i for i in range(len(F)) if np.isfinite(F[i]).all() and i not in front][:4]
    within = [True if i in near or i in front else (None if i == 9 else False)
              for i in range(len(F))]
    fig = _tradeoffs_figure(F, objectives, groups, front, se=S, within=within)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    drawn = np.isfinite(F).all(axis=1) & np.isfinite(S).all(axis=1)
    g = np.array(groups)
    for ax, (a, b) in zip(panels, list(itertools.combinations(range(m), 2)) or [(None, 0)]):
        x = np.arange(len(F), dtype=float) if a is None else F[:, a]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == len(GROUPS)            # one set of bars per group, its colour
        for c, name in zip(bars, GROUPS):
            rows = np.flatnonzero(drawn & (g == name))
            assert c.has_yerr and c.has_xerr == (a is not None)
            ycol = c.lines[2][-1]                  # the y bars: one segment per point
            want = [((x[i], F[i, b] - S[i, b]), (x[i], F[i, b] + S[i, b])) for i in rows]
            got = [tuple(map(tuple, seg)) for seg in ycol.get_segments()]
            np.testing.assert_allclose(np.array(got), np.array(want), rtol=0, atol=1e-12)
            if a is not None:
                xcol = c.lines[2][0]
                want = [((x[i] - S[i, a], F[i, b]), (x[i] + S[i, a], F[i, b])) for i in rows]
                np.testing.assert_allclose(np.array(xcol.get_segments()), np.array(want),
                                           atol=1e-12)
        (ring,) = [c for c in ax.collections if isinstance(c, PathCollection)
                   and c.get_label() == "within noise of the frontier"]
        y = F[:, b]
        assert _rows(ring.get_offsets()) == _rows(np.c_[x[near], y[near]])
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "within noise of the frontier" in texts and "±1 SE (Hanley-McNeil)" in texts
    assert texts[:3] == GROUPS
    _assert_png(plot_tradeoffs(F, objectives, groups, front, tmp_path / "t.png", se=S,
                               within=within))
    with pytest.raises(ValueError, match="one SE per AUC"):
        _tradeoffs_figure(F, objectives, groups, front, se=S[:, :1] if m > 1 else S[:3])
