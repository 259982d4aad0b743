"""PE-LTR weights (docs/DESIGN.md, "PE-LTR weights"): constraints, the analytic cases, the projection and the
exact mode against an independent QP solver (scipy SLSQP), and the weighting in the loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from trainables.weighting import build_weighting, pe_ltr_weights
from trainables.weighting.pe_ltr import project_bounded_simplex, relaxed_weights


def _case(seed, k=None, d=None):
    rng = np.random.default_rng(seed)
    k = k or int(rng.integers(2, 7))
    d = d or int(rng.integers(1, 12))
    G = rng.normal(size=(k, d)) * rng.uniform(0.1, 10, size=(k, 1))
    c = rng.dirichlet(np.ones(k)) * rng.uniform(0, 0.95) * (rng.random() < 0.8)
    return G, c


def _slsqp(P, q, c):
    """min 0.5 w'Pw + q'w  s.t. w >= c, sum w = 1, by scipy (an independent solver)."""
    k = len(c)
    res = minimize(lambda w: 0.5 * w @ P @ w + q @ w, np.full(k, 1 / k), jac=lambda w: P @ w + q,
                   bounds=[(ci, None) for ci in c],
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1,
                                 "jac": lambda w: np.ones(k)}],
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
    return res.x


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("mode", ["two_step", "exact"])
def test_constraints_always_hold(seed, mode):
    G, c = _case(seed)
    w = pe_ltr_weights(G, c, mode)
    assert w.shape == (G.shape[0],)
    assert np.all(w >= c - 1e-12) and w.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_exact_mode_matches_a_qp_solver(seed):
    G, c = _case(seed)
    M = G @ G.T
    w = pe_ltr_weights(G, c, "exact")
    ref = _slsqp(2 * M, np.zeros(len(c)), c)
    # never worse than the QP solver's answer; the same point when the optimum is unique
    assert w @ M @ w <= ref @ M @ ref + 1e-9 * max(1.0, np.abs(M).max())
    if np.linalg.matrix_rank(M) == len(c):
        np.testing.assert_allclose(w, ref, atol=1e-5)


@pytest.mark.parametrize("seed", range(40))
def test_projection_is_the_euclidean_projection(seed):
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(2, 8))
    y = rng.normal(size=k) * 2
    c = rng.dirichlet(np.ones(k)) * rng.uniform(0, 0.9)
    w = project_bounded_simplex(y, c)
    ref = _slsqp(np.eye(k), -y, c)            # min 0.5|w|^2 - y.w  =  min 0.5|w - y|^2
    np.testing.assert_allclose(w, ref, atol=1e-6)


def test_when_the_relaxed_solution_is_feasible_it_is_the_exact_optimum():
    found = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        G = rng.normal(size=(3, 8))
        c = np.full(3, 0.05)
        relaxed = relaxed_weights(G @ G.T)
        if np.all(relaxed >= c):
            found += 1
            np.testing.assert_allclose(pe_ltr_weights(G, c), relaxed, atol=1e-12)
            np.testing.assert_allclose(pe_ltr_weights(G, c, "exact"), relaxed, atol=1e-9)
    assert found >= 5


@pytest.mark.parametrize("a", [1.0, 2.0, 0.5])
def test_opposite_gradients_get_the_analytic_weights(a):
    # g2 = -a g1: the residual w1 - a w2 vanishes at w = (a, 1) / (1 + a)
    g = np.array([0.3, -1.2, 2.0])
    G = np.vstack([g, -a * g])
    for mode in ("two_step", "exact"):
        np.testing.assert_allclose(pe_ltr_weights(G, mode=mode), [a / (1 + a), 1 / (1 + a)],
                                   atol=1e-9)


def test_bounds_are_respected_when_they_bind():
    g = np.array([1.0, 0.0])
    G = np.vstack([g, -9 * g])            # unbounded optimum (0.9, 0.1)
    w = pe_ltr_weights(G, [0.0, 0.3])
    np.testing.assert_allclose(w, [0.7, 0.3], atol=1e-12)
    np.testing.assert_allclose(pe_ltr_weights(G, [0.0, 0.3], "exact"), [0.7, 0.3], atol=1e-9)


def test_input_types_and_errors():
    G = torch.randn(3, 5, dtype=torch.float32)
    w = pe_ltr_weights(G, torch.tensor([0.1, 0.1, 0.1]))
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32 and w.shape == (3,)
    with pytest.raises(ValueError, match="sum to less than 1"):
        pe_ltr_weights(np.eye(2), [0.5, 0.5])
    with pytest.raises(ValueError, match=">= 0"):
        pe_ltr_weights(np.eye(2), [-0.1, 0.2])
    with pytest.raises(ValueError, match="one value per objective"):
        pe_ltr_weights(np.eye(3), [0.1, 0.1])
    with pytest.raises(ValueError, match="mode must be one of"):
        pe_ltr_weights(np.eye(2), mode="kkt")


def test_exact_mode_beyond_enumeration_size_still_solves_it():
    G, c = _case(7, k=14, d=30)
    M = G @ G.T
    w = pe_ltr_weights(G, c, "exact")
    ref = _slsqp(2 * M, np.zeros(14), c)
    assert np.all(w >= c - 1e-12) and w.sum() == pytest.approx(1.0)
    assert w @ M @ w <= ref @ M @ ref + 1e-7


@pytest.mark.parametrize("gradients", ["scores", "shared"])
def test_the_weighting_in_the_training_loop(small_dataset, gradients):
    from trainables.loop import train_loop_per_worker
    bounds = {"click": 0.1, "like": 0.1, "follow": 0.1, "buy": 0.1}
    hist = train_loop_per_worker({
        "data": {"path": str(small_dataset)}, "model": {"family": "mlp"},
        "loss": {"kind": "rank_auc"},
        "weighting": {"kind": "pe_ltr", "bounds": bounds, "every": 2, "gradients": gradients},
        "optim": {"epochs": 2, "batch_size": 4096}, "run": {"verbose": False, "device": "cpu"}})
    objectives = ["click", "long_view", "like", "follow", "buy"]
    for h in hist:
        w = np.array([h[f"weight/{o}"] for o in objectives])
        assert w.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.all(w >= np.array([bounds.get(o, 0.0) for o in objectives]) - 1e-6)
    assert not np.allclose([hist[-1][f"weight/{o}"] for o in objectives], 0.2)   # moved


def test_weighting_parameter_errors():
    objs = ["a", "b"]
    with pytest.raises(ValueError, match="unknown objective"):
        build_weighting("pe_ltr", objs, {"bounds": {"c": 0.1}})
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        build_weighting("pe_ltr", objs, {"every": 0})
    with pytest.raises(ValueError, match="gradients must be one of"):
        build_weighting("pe_ltr", objs, {"gradients": "params"})


def _space(tmp_path, weighting: str):
    f = tmp_path / "peltr.yaml"
    f.write_text("name: peltr\ndata: {source: synthetic, rows: 20000, objectives: [buy, follow, "
                 f"long_view]}}\nmodel: {{family: mlp}}\nweighting: {weighting}\n")
    return f


def test_space_files_take_per_objective_bounds(tmp_path):
    from search.space import SpaceError, load_space, materialize
    s = load_space(_space(tmp_path, "{kind: pe_ltr, bounds: {buy: {uniform: [0.0, 0.3]}, "
                                    "follow: 0.1}, mode: exact}"))
    assert s.fixed_config()["weighting"]["bounds"] == {"buy": 0.0, "follow": 0.1}
    sampled = s.param_space()["weighting"]["bounds"]["buy"].sample()
    assert 0 <= sampled <= 0.3
    cfg = materialize({"weighting": {"kind": "pe_ltr", "bounds": {"buy": sampled, "follow": 0.1}}})
    assert build_weighting("pe_ltr", ["buy", "follow", "long_view"],
                           {"bounds": cfg["weighting"]["bounds"]}).bounds[0] == sampled
    with pytest.raises(SpaceError, match=r"weighting\.bounds.*sum to less than 1"):
        load_space(_space(tmp_path, "{kind: pe_ltr, bounds: {buy: 0.6, follow: 0.5}}"))
    with pytest.raises(SpaceError, match=r"weighting\.bounds\.purchase.*not an objective"):
        load_space(_space(tmp_path, "{kind: pe_ltr, bounds: {purchase: 0.1}}"))
    with pytest.raises(SpaceError, match=r"simplex is allowed only as weighting\.weights"):
        load_space(_space(tmp_path, "{kind: pe_ltr, bounds: {simplex: [buy, follow]}}"))


def _grid_space(tmp_path, search: str, weighting: str = "{kind: pe_ltr}"):
    f = tmp_path / "grid.yaml"
    f.write_text("name: g\ndata: {source: synthetic, rows: 20000, objectives: [buy, follow, "
                 f"long_view, click]}}\nmodel: {{family: mlp}}\nweighting: {weighting}\n"
                 f"search: {search}\n")
    return f


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_pe_ltr_grid_spreads_bound_vectors_evenly_over_the_simplex(tmp_path, partitions):
    from math import comb
    from search.space import load_space
    s = load_space(_grid_space(tmp_path, f"{{algorithm: pe_ltr_grid, partitions: {partitions},"
                                         f" bounds_total: 0.6}}"))
    vecs = s.bound_vectors()
    assert len(vecs) == comb(partitions + 3, 3)                 # Das-Dennis, 4 objectives
    B = np.array([[v[o] for o in s.objectives] for v in vecs])
    np.testing.assert_allclose(B.sum(1), 0.6)
    assert (B >= 0).all() and len({tuple(r) for r in B}) == len(B)
    steps = np.unique(np.round(B / 0.6 * partitions, 9))         # multiples of 1/partitions
    np.testing.assert_allclose(steps, np.round(steps))
    grid = s.param_space()["weighting"]["bounds"]
    assert grid == {"grid_search": vecs} and s.search["num_samples"] == 1


@pytest.mark.parametrize("search,weighting,pattern", [
    ("{algorithm: pe_ltr_grid}", "{kind: static}", r"weighting\.kind.*set weighting\.kind to pe_ltr"),
    ("{algorithm: pe_ltr_grid}", "{kind: pe_ltr, bounds: {buy: 0.1}}", r"weighting\.bounds.*set by"),
    ("{algorithm: pe_ltr_grid, bounds_total: 1.0}", "{kind: pe_ltr}", r"search\.bounds_total"),
    ("{algorithm: pe_ltr_grid, partitions: 0}", "{kind: pe_ltr}", r"search\.partitions"),
    ("{algorithm: random, partitions: 2}", "{kind: pe_ltr}", r"only for search\.algorithm pe_ltr_grid"),
])
def test_pe_ltr_grid_errors(tmp_path, search, weighting, pattern):
    from search.space import SpaceError, load_space
    with pytest.raises(SpaceError, match=pattern):
        load_space(_grid_space(tmp_path, search, weighting))
