"""Pareto front and hypervolume against brute force (independent of pymoo)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.frontier import hypervolume, hypervolume_curve, pareto_front, worst_point


def _dominates(a, b):   # maximization
    return np.all(a >= b) and np.any(a > b)


def _brute_front(F):
    keep = []
    for i, a in enumerate(F):
        if not np.isfinite(a).all():
            continue
        if not any(_dominates(b, a) for j, b in enumerate(F) if j != i and np.isfinite(b).all()):
            keep.append(i)
    return np.array(keep, dtype=int)


def _brute_hv(F, ref):
    """Exact HV (maximization) by inclusion over the grid of distinct coordinates."""
    F = np.array([f for f in F if np.isfinite(f).all() and np.all(f > ref)])
    if len(F) == 0:
        return 0.0
    m = F.shape[1]
    axes = [np.unique(np.concatenate([[ref[k]], F[:, k]])) for k in range(m)]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = np.array([axes[k][c] for k, c in enumerate(cell)])
        hi = np.array([axes[k][c + 1] for k, c in enumerate(cell)])
        if any(np.all(f >= hi) for f in F):
            total += float(np.prod(hi - lo))
    return total


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("m", [2, 3])
def test_front_and_hypervolume_equal_brute_force(seed, m):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 25))
    F = np.round(rng.uniform(0.5, 0.9, (n, m)), 2)     # rounding makes ties and duplicates
    if n > 3:
        F[1] = F[0]                                    # an exact duplicate
        F[2, 0] = np.nan                               # a failed trial
    np.testing.assert_array_equal(pareto_front(F), _brute_front(F))
    ref = np.full(m, 0.5)
    assert hypervolume(F, ref) == pytest.approx(_brute_hv(F, ref), abs=1e-12)


def test_duplicates_of_a_front_point_are_all_kept():
    F = np.array([[0.9, 0.6], [0.9, 0.6], [0.7, 0.8], [0.6, 0.6]])
    np.testing.assert_array_equal(pareto_front(F), [0, 1, 2])


def test_minimization_and_mixed_directions():
    F = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0]])
    np.testing.assert_array_equal(pareto_front(F, maximize=False), [0, 1])
    np.testing.assert_array_equal(pareto_front(F, maximize=[False, True]), [0])
    # boxes [1,4]x[5,6] (3) and [2,4]x[2,6] (8) overlap in [2,4]x[5,6] (2)
    assert hypervolume(F, [4.0, 6.0], maximize=False) == pytest.approx(3 + 8 - 2)


def test_edge_cases():
    assert pareto_front(np.zeros((0, 2))).size == 0
    assert pareto_front(np.array([[np.nan, 1.0]])).size == 0
    np.testing.assert_array_equal(pareto_front([0.3, 0.9, 0.9]), [1, 2])   # 1-d input
    assert hypervolume([[0.4, 0.4]], [0.5, 0.5]) == 0.0                    # behind ref
    with pytest.raises(ValueError, match="2 objectives"):
        hypervolume([[0.6, 0.6]], [0.5])
    np.testing.assert_allclose(worst_point([[0.6, 0.9], [0.8, 0.7]]), [0.6, 0.7])
    curve = hypervolume_curve([[0.6, 0.6], [0.7, 0.55], [0.65, 0.65]], [0.5, 0.5])
    assert np.all(np.diff(curve) >= 0) and curve[0] == pytest.approx(0.01)


def test_hypervolume_curve_counts_a_population_trials_members_together_when_asked():
    F = [[0.6, 0.6], [0.7, 0.55], [0.65, 0.65], [0.8, 0.52]]
    ref = [0.5, 0.5]
    each = hypervolume_curve(F, ref)                            # one step per row
    together = hypervolume_curve(F, ref, trials=["a", "p", "p", "b"])
    assert len(each) == 4 and len(together) == 3
    assert together[0] == each[0]
    assert together[1] == pytest.approx(hypervolume(F[:3], ref)) == each[2]
    assert together[2] == pytest.approx(hypervolume(F, ref)) == each[3]
    # a key's rows enter at its first row, wherever the others are
    apart = hypervolume_curve(F, ref, trials=["p", "a", "p", "b"])
    assert apart[0] == pytest.approx(hypervolume([F[0], F[2]], ref))
    with pytest.raises(ValueError, match="3 keys for 4 rows"):
        hypervolume_curve(F, ref, trials=["a", "b", "c"])


def _brute_contributions(F, ref):
    """Leave-one-out over the brute-force frontier, with the brute-force hypervolume."""
    front = _brute_front(F)
    out = np.where(np.isfinite(F).all(axis=1), 0.0, np.nan)
    total = _brute_hv(F[front], ref)
    for i in front:
        out[i] = total - _brute_hv(F[[j for j in front if j != i]], ref)
    return out


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_contributions_equal_leave_one_out(seed, m):
    import moocore
    from analysis.frontier import hypervolume_contributions
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 16))
    F = np.round(rng.uniform(0.5, 0.9, (n, m)), 2)
    if n > 3:
        F[1] = F[0]                                    # a duplicate: each copy adds 0
        F[2, 1] = np.nan
    ref = np.full(m, 0.5)
    got = hypervolume_contributions(F, ref)
    np.testing.assert_allclose(got, _brute_contributions(F, ref), atol=1e-12)
    ok = np.isfinite(F).all(axis=1)                    # moocore's own exclusive contributions
    np.testing.assert_allclose(got[ok], moocore.hv_contributions(F[ok], ref, maximise=True),
                               atol=1e-12)
    front = pareto_front(F)                            # and pymoo's HV, leave one out
    loo = [hypervolume(F[front], ref) - hypervolume(np.delete(F[front], j, 0), ref)
           for j in range(len(front))]
    np.testing.assert_allclose(got[front], loo, atol=1e-12)
    assert got[ok].sum() <= hypervolume(F, ref) + 1e-12


def test_hypervolume_contributions_edge_cases():
    from analysis.frontier import hypervolume_contributions
    assert hypervolume_contributions(np.zeros((0, 2)), [0.5, 0.5]).shape == (0,)
    np.testing.assert_array_equal(hypervolume_contributions([[np.nan, 0.7]], [0.5, 0.5]),
                                  [np.nan])
    # a frontier point on the reference (the worst value of one objective) adds nothing
    np.testing.assert_allclose(hypervolume_contributions([[0.9, 0.5], [0.6, 0.8]], [0.5, 0.5]),
                               [0.0, 0.1 * 0.3])
    with pytest.raises(ValueError, match="2 objectives"):
        hypervolume_contributions([[0.6, 0.6]], [0.5])
