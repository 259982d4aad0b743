"""Selection rules (analysis.pick; docs/DESIGN.md, "Analysis") against brute-force and pymoo oracles."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from analysis.pick import SELECTORS, Selection, select

OBJ = ["click", "long_view", "like", "follow", "buy"]


def _dominates(a, b):   # maximization
    return np.all(a >= b) and np.any(a > b)


def _brute_front(F):
    ok = [i for i in range(len(F)) if np.isfinite(F[i]).all()]
    return [i for i in ok if not any(_dominates(F[j], F[i]) for j in ok if j != i)]


def _random_F(seed):
    """Rounded AUCs (ties), some duplicated rows and some NaN rows (failed trials)."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 25)), int(rng.integers(1, 5))
    F = np.round(rng.uniform(0.6, 0.8, (n, m)), 2)
    if n > 3:
        F[rng.integers(0, n, 2)] = F[rng.integers(0, n, 2)]
        F[rng.integers(0, n)] = np.nan
    if not np.isfinite(F).all(axis=1).any():
        F[0] = 0.7
    return F, OBJ[:m]


def _smooth_front(seed, n=12, m=3):
    """Distinct points near a concave front, most of them non-dominated, no ties or
    duplicates: pymoo's oracles apply to the frontier as it is."""
    rng = np.random.default_rng(seed)
    d = np.abs(rng.normal(size=(n, m)))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return 0.6 + 0.2 * rng.uniform(0.9, 1.0, (n, 1)) * d, OBJ[:m]


def _params(rule, F, objectives):
    finite = F[np.isfinite(F).all(axis=1)]
    if rule == "weights":
        return {"weights": {o: float(k + 1) for k, o in enumerate(objectives)}}
    if rule == "constraint":
        return {"floors": {objectives[0]: float(np.quantile(finite[:, 0], 0.3))}}
    return {}


@pytest.mark.parametrize("rule", sorted(SELECTORS))
def test_every_selector_returns_a_frontier_member(rule):
    for seed in range(40):
        F, objectives = _random_F(seed)
        sel = select(F, objectives, rule, **_params(rule, F, objectives))
        assert isinstance(sel, Selection) and sel.rule == rule
        assert sel.index in _brute_front(F), (seed, F, sel)
        assert f"row {sel.index}" in sel.reason and "\n" not in sel.reason


@pytest.mark.parametrize("baseline", [None, "row", "values"])
@pytest.mark.parametrize("normalize", [False, True])
def test_fair_is_brute_force_max_min_gain(baseline, normalize):
    for seed in range(30):
        F, objectives = _random_F(seed)
        ok = np.flatnonzero(np.isfinite(F).all(axis=1))
        base = {None: F[ok].min(axis=0), "row": F[ok[-1]], "values": np.full(F.shape[1], 0.65)}
        arg = {None: None, "row": int(ok[-1]), "values": [0.65] * F.shape[1]}[baseline]
        span = np.ptp(F[ok], axis=0) if normalize else np.ones(F.shape[1])
        span = np.where(span > 0, span, 1.0)
        best = max(((F[i] - base[baseline]) / span).min() for i in ok)
        sel = select(F, objectives, "fair", baseline=arg, normalize=normalize)
        assert ((F[sel.index] - base[baseline]) / span).min() == pytest.approx(best, abs=1e-12)


def test_fair_reason_reads_like_the_design():
    F = np.array([[0.70, 0.71, 0.72], [0.73, 0.70, 0.70], [0.72, 0.72, 0.71], [np.nan] * 3])
    sel = select(F, ["buy", "follow", "long_view"], "fair", labels=["a", "b", "c", "d"])
    assert sel.index == 2
    assert sel.reason.startswith("c has the largest smallest gain over the baseline")
    assert "+0.0100 (long_view)" in sel.reason and "buy +0.0200" in sel.reason


def test_constraint_is_brute_force():
    for seed in range(40):
        F, objectives = _random_F(seed)
        floors = _params("constraint", F, objectives)["floors"]
        if len(objectives) > 1:
            floors[objectives[-1]] = float(np.nanmin(F[:, -1]))
        feasible = [i for i in range(len(F)) if np.isfinite(F[i]).all()
                    and all(F[i, objectives.index(o)] >= v for o, v in floors.items())]
        sel = select(F, objectives, "constraint", floors=floors)
        assert sel.index in feasible
        assert F[sel.index].sum() == pytest.approx(max(F[i].sum() for i in feasible))


def test_constraint_infeasible_names_floors_and_best_values():
    F = np.array([[0.70, 0.75], [0.78, 0.71], [np.nan, np.nan]])
    with pytest.raises(ValueError, match=r"click >= 0\.8000.*best achievable: click 0\.7800"):
        select(F, ["click", "buy"], "constraint", floors={"click": 0.8})
    with pytest.raises(ValueError, match="unknown objective 'ctr'.*click, buy"):
        select(F, ["click", "buy"], "constraint", floors={"ctr": 0.5})


def test_ideal_is_brute_force():
    for seed in range(40):
        F, objectives = _random_F(seed)
        front = _brute_front(F)
        P = F[front]
        span = np.ptp(P, axis=0)
        U = (P.max(axis=0) - P) / np.where(span > 0, span, 1.0)
        d = np.sqrt((U ** 2).sum(axis=1))
        sel = select(F, objectives, "ideal")
        assert d[front.index(sel.index)] == pytest.approx(d.min(), abs=1e-12)


def _pymoo_front(F):
    front = np.array(_brute_front(F))
    assert len(front) >= 3
    G = -F[front]
    return front, (G - G.min(axis=0)) / np.ptp(G, axis=0)


def test_knee_is_pymoos_high_tradeoff_point():
    from pymoo.mcdm.high_tradeoff import HighTradeoffPoints
    # a 2-D frontier with a sharp corner at (0.9, 0.91): the knee
    t = np.linspace(0, 1, 9)
    F = np.concatenate([np.c_[0.9 * t, 1 - 0.09 * t], np.c_[0.9 + 0.1 * t[1:], 0.91 - 0.9 * t[1:]]])
    assert select(F, ["click", "buy"], "knee").index == 8
    Fs = [F] + [_smooth_front(s, n=15, m=m)[0] for s in range(20) for m in (2, 3)]
    found_some = 0
    for F in Fs:
        front, U = _pymoo_front(F)
        filters = list(warnings.filters)
        with warnings.catch_warnings():
            found = HighTradeoffPoints().do(U)
        sel = select(F, OBJ[:F.shape[1]], "knee")
        assert warnings.filters == filters          # pymoo's global filter change stays local
        if found is not None and len(found):
            found_some += 1
            assert sel.index in front[found]
            assert "is a knee" in sel.reason
        else:
            assert "no knee" in sel.reason
    assert found_some >= 3


def test_knee_falls_back_to_the_most_balanced_point():
    F = np.array([[0.80, 0.60], [0.71, 0.70], [0.6, 0.6], [np.nan, np.nan]])
    sel = select(F, ["click", "buy"], "knee", labels=["t0", "t1", "t2", "t3"])
    assert sel.index == 1 and "only 2 distinct frontier point(s)" in sel.reason
    assert sel.reason.startswith("t1: no knee")
    one = select(F[:, :1], ["click"], "knee")
    assert one.index == 0 and "no knee" in one.reason


def test_weights_is_pymoos_pseudo_weights_choice():
    from pymoo.mcdm.pseudo_weights import PseudoWeights
    for seed in range(20):
        F, objectives = _smooth_front(seed, n=15, m=2 + seed % 3)
        w = np.random.default_rng(seed).uniform(0.1, 1, F.shape[1])
        front, _ = _pymoo_front(F)
        expected = front[PseudoWeights(w / w.sum()).do(-F[front])]
        assert select(F, objectives, "weights", weights=list(w)).index == expected
        named = dict(zip(objectives, w * 3))        # a mapping, not summing to 1
        assert select(F, objectives, "weights", weights=named).index == expected


def test_weights_errors():
    F, objectives = _smooth_front(0)
    with pytest.raises(ValueError, match="unknown objective 'ctr' in weights"):
        select(F, objectives, "weights", weights={"ctr": 1.0})
    with pytest.raises(ValueError, match="2 values for 3 objectives"):
        select(F, objectives, "weights", weights=[1, 1])
    with pytest.raises(ValueError, match="not all 0"):
        select(F, objectives, "weights", weights=[0, 0, 0])


def test_input_errors():
    F, objectives = _smooth_front(0)
    with pytest.raises(ValueError, match="F is empty"):
        select(np.zeros((0, 3)), objectives, "fair")
    with pytest.raises(ValueError, match="no finite rows: all 2 trials failed"):
        select(np.full((2, 3), np.nan), objectives, "fair")
    with pytest.raises(ValueError, match="valid rules: fair, knee, weights, constraint, ideal"):
        select(F, objectives, "best")
    with pytest.raises(ValueError, match="unknown param.*normalise.*allowed: baseline, normalize"):
        select(F, objectives, "fair", normalise=True)
    with pytest.raises(ValueError, match="unknown param.*alpha.*allowed: none"):
        select(F, objectives, "ideal", alpha=1)
    with pytest.raises(ValueError, match="needs param.*floors"):
        select(F, objectives, "constraint")
    with pytest.raises(ValueError, match="2 objective names for 3 columns"):
        select(F, objectives[:2], "fair")
    with pytest.raises(ValueError, match="baseline row 99"):
        select(F, objectives, "fair", baseline=99)


@pytest.mark.parametrize("rule", sorted(SELECTORS))
def test_labels_name_the_trial_in_the_reason(rule):
    F, objectives = _random_F(3)
    labels = [f"trial_{i:05d}" for i in range(len(F))]
    sel = select(F, objectives, rule, labels=labels, **_params(rule, F, objectives))
    assert labels[sel.index] in sel.reason and "row " not in sel.reason


def test_a_rule_in_its_own_file_is_one_registry_line(tmp_path, monkeypatch):
    """A new pick rule: one file ("module:function" in SELECTORS), usable by select() and
    the CLI's --rule with its own --param."""
    import sys
    from analysis import pick
    (tmp_path / "my_rule.py").write_text(
        "import numpy as np\n"
        "from analysis.frontier import pareto_front\n"
        "def best_on(F, objectives, *, objective, labels=None):\n"
        "    j = objectives.index(objective)\n"
        "    front = pareto_front(F)\n"
        "    i = int(front[np.argmax(F[front, j])])\n"
        "    return i, f'best on {objective}'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(pick.SELECTORS, "best_on", "my_rule:best_on")
    F = np.array([[0.7, 0.9], [0.9, 0.6], [0.6, 0.6]])
    sel = pick.select(F, ["a", "b"], "best_on", objective="b")
    assert sel.index == 0 and sel.reason == "best on b"
    with pytest.raises(ValueError, match="needs param"):
        pick.select(F, ["a", "b"], "best_on")
    sys.modules.pop("my_rule", None)
