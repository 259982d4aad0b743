"""The pymoo NSGA-II searcher's ask/tell protocol, decoding, and save/restore mid-generation,
driven without Ray by a known bi-objective problem."""
from __future__ import annotations

import numpy as np
import pytest
from ray import tune
from ray.tune.search import Searcher

from analysis.frontier import hypervolume
from search.nsga2 import NSGA2Searcher

SPACE = {"optim": {"lr": tune.loguniform(1e-3, 1e-1), "epochs": 3},
         "model": {"d": tune.choice([8, 16, 32]), "k": tune.randint(1, 5)},
         "weighting": {"weights": {"__simplex__": {"a": tune.uniform(1e-9, 1), "b":
                                                   tune.uniform(1e-9, 1)}}}}


def _objectives(cfg):
    """Two conflicting objectives of the sampled lr (a ZDT1-like front in lr's log)."""
    x = (np.log10(cfg["optim"]["lr"]) + 3) / 2          # 0..1
    a = 1 - x
    b = 1 - np.sqrt(x) * (1 + 0.1 * (cfg["model"]["d"] == 16))
    return {"auc/a": float(a), "auc/b": float(b)}


def _drive(searcher, n_trials, start=0, stop_after=None):
    """Run trials one generation at a time like Tune; return the reported results."""
    results, running, t = [], [], start
    while True:
        cfg = searcher.suggest(f"t{t}")
        if cfg is Searcher.FINISHED:
            break
        if cfg is None:      # generation waits for its trials
            for tid, c in running:
                r = _objectives(c)
                searcher.on_trial_complete(tid, r)
                results.append((c, r))
            running = []
            continue
        running.append((f"t{t}", cfg))
        t += 1
        if stop_after is not None and t - start >= stop_after:
            return results, running, t
    for tid, c in running:
        searcher.on_trial_complete(tid, _objectives(c))
    return results, running, t


def test_generations_run_in_order_and_finish():
    s = NSGA2Searcher(["auc/a", "auc/b"], population=6, generations=4, seed=0, param_space=SPACE)
    results, _, n = _drive(s, 0)
    assert n == 24 and len(results) == 24 and s.generation == 4
    assert s.suggest("late") is Searcher.FINISHED
    for cfg, _ in results:                                 # decoded into the domains
        assert 1e-3 <= cfg["optim"]["lr"] <= 1e-1 and cfg["optim"]["epochs"] == 3
        assert cfg["model"]["d"] in (8, 16, 32) and 1 <= cfg["model"]["k"] <= 4
        assert 0 < cfg["weighting"]["weights"]["__simplex__"]["a"] <= 1


def test_later_generations_improve_the_front():
    s = NSGA2Searcher(["auc/a", "auc/b"], population=8, generations=6, seed=1, param_space=SPACE)
    results, _, _ = _drive(s, 0)
    F = np.array([[r["auc/a"], r["auc/b"]] for _, r in results])
    ref = [0.0, -0.2]
    assert hypervolume(F[-8:], ref) > hypervolume(F[:8], ref)


def test_save_and_restore_mid_generation_continues_without_repeats(tmp_path):
    full = NSGA2Searcher(["auc/a", "auc/b"], population=6, generations=3, seed=2,
                         param_space=SPACE)
    ref_results, _, _ = _drive(full, 0)
    s = NSGA2Searcher(["auc/a", "auc/b"], population=6, generations=3, seed=2, param_space=SPACE)
    done, running, t = _drive(s, 0, stop_after=9)          # 1.5 generations handed out
    for tid, c in running[:1]:                             # one of them finished
        s.on_trial_complete(tid, _objectives(c))
    s.save(str(tmp_path / "nsga2.pkl"))
    restored = NSGA2Searcher(["auc/a", "auc/b"], population=6, generations=3, seed=99)
    restored.restore(str(tmp_path / "nsga2.pkl"))
    for tid, c in running[1:]:                             # Tune resumes the unfinished ones
        restored.on_trial_complete(tid, _objectives(c))
    rest, _, n = _drive(restored, 0, start=t)
    assert n == 18 and restored.generation == 3            # same generation count
    got = [c["optim"]["lr"] for c, _ in done] + [c["optim"]["lr"] for _, c in running] + \
        [c["optim"]["lr"] for c, _ in rest]
    assert sorted(got) == pytest.approx(sorted(c["optim"]["lr"] for c, _ in ref_results))


def test_failed_trials_count_as_worst_and_the_generation_completes():
    s = NSGA2Searcher(["auc/a", "auc/b"], population=4, generations=2, seed=0, param_space=SPACE)
    ids = [f"t{i}" for i in range(4)]
    cfgs = [s.suggest(i) for i in ids]
    assert s.suggest("t4") is None
    for i, c in zip(ids, cfgs):
        s.on_trial_complete(i, None, error=True) if i == "t0" else \
            s.on_trial_complete(i, _objectives(c))
    assert s.generation == 1 and isinstance(s.suggest("t4"), dict)


def test_grid_search_is_refused():
    with pytest.raises(ValueError, match="cannot search a grid"):
        NSGA2Searcher(["auc/a"], 4, 2, param_space={"x": tune.grid_search([1, 2])})
