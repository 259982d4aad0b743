"""PNG plots (analysis.plots; docs/DESIGN.md, "Analysis"): valid PNG files, no figure left open."""
from __future__ import annotations

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.frontier import hypervolume_curve, pareto_front, worst_point
from analysis.plots import (_parallel_figure, _tradeoffs_figure, plot_hypervolume, plot_parallel,
                            plot_tradeoffs)

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


def test_hypervolume_plots(tmp_path):
    F, *_ = _results(3)
    hv = hypervolume_curve(F, worst_point(F))
    _assert_png(plot_hypervolume(hv, tmp_path / "hv.png", title="hypervolume"))
    series = {"harmonrank": hv, "pe_ltr": hv * 0.9, "by time": np.c_[np.arange(30) * 7.5, hv]}
    _assert_png(plot_hypervolume(None, tmp_path / "hv_s.png", xlabel="seconds", series=series))
    _assert_png(plot_hypervolume(hv, tmp_path / "hv_both.png", series={"pe_ltr": hv[:10]}))
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_hypervolume(None, tmp_path / "none.png")
