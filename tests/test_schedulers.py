"""search.schedulers: MO-ASHA's rung rule against a brute-force non-dominated ranking on
random rung tables, the moasha Tune scheduler driven with fake results (decisions, the
record of a trial stopped early, JSON state and resume), population hypervolumes, and the
space's scheduler section (defaults, one-line errors) for every registered scheduler."""
from __future__ import annotations

import copy
import itertools
import json
import math
import pickle

import numpy as np
import pytest
import yaml

from search.schedulers import SCHEDULERS, SchedulerKind
from search.schedulers.rungs import milestones, population_hypervolume, promote
from search.space import SpaceError, load_space

OBJS = ["click", "like", "buy"]


# --- the rung rule against brute force ------------------------------------------------------

def _dominates(a, b) -> bool:
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def _brute_fronts(F) -> list[int]:
    """Front of each row by peeling: rows no remaining row dominates, pair by pair."""
    left, front, out = set(range(len(F))), 0, [None] * len(F)
    while left:
        top = {i for i in left if not any(_dominates(F[j], F[i]) for j in left if j != i)}
        for i in top:
            out[i] = front
        left -= top
        front += 1
    return out


def _brute_crowding(F, rows) -> dict:
    """NSGA-II crowding distance within ``rows``, written out per objective."""
    d = {i: 0.0 for i in rows}
    if len(rows) <= 2:
        return {i: math.inf for i in rows}
    for j in range(len(F[0])):
        order = sorted(rows, key=lambda i: F[i][j])
        lo, hi = F[order[0]][j], F[order[-1]][j]
        d[order[0]] = d[order[-1]] = math.inf
        for a, i, b in zip(order, order[1:], order[2:]):
            if hi > lo:
                d[i] += (F[b][j] - F[a][j]) / (hi - lo)
    return d


def _random_table(rng, n, m):
    """AUCs on a coarse grid (ties and duplicate rows happen), now and then a NaN."""
    F = np.round(rng.uniform(0.5, 0.8, (n, m)) * 20) / 20
    if rng.random() < 0.3:
        F[rng.integers(n), rng.integers(m)] = np.nan
    return {f"t{i}": {o: float(v) for o, v in zip(OBJS[:m], row)} for i, row in enumerate(F)}


@pytest.mark.parametrize("seed", range(40))
def test_promote_keeps_the_best_fronts_then_the_most_crowded(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 15)), int(rng.integers(1, 4))
    rf = [2, 3, 4, 2.5][seed % 4]
    table = _random_table(rng, n, m)
    kept = promote(table, OBJS[:m], rf)
    ids = list(table)
    # brute force: NaN is worse than every finite value
    F = [[-1e9 if math.isnan(r[o]) else r[o] for o in OBJS[:m]] for r in table.values()]
    fronts = _brute_fronts(F)
    k = math.ceil(n / rf)
    assert len(kept) == k and kept <= set(ids)
    inside = [i for i in range(n) if ids[i] in kept]
    outside = [i for i in range(n) if ids[i] not in kept]
    if outside:
        last = max(fronts[i] for i in inside)
        assert all(fronts[i] <= last for i in inside)
        assert all(fronts[i] >= last for i in outside)          # whole better fronts kept
        boundary = [i for i in range(n) if fronts[i] == last]
        cd = _brute_crowding(F, boundary)
        kept_cd = [cd[i] for i in boundary if i in inside]
        left_cd = [cd[i] for i in boundary if i in outside]
        assert min(kept_cd) >= max(left_cd, default=-math.inf)


def test_promote_small_cases():
    assert promote({}, OBJS, 3) == set()
    assert promote({"a": {"click": 0.6}}, ["click"], 3) == {"a"}           # alone: promoted
    # a dominated newcomer is stopped; a dominating one is kept
    t = {"a": {"click": 0.7, "like": 0.7}, "b": {"click": 0.6, "like": 0.6}}
    assert promote(t, ["click", "like"], 3) == {"a"}
    t["b"] = {"click": 0.8, "like": 0.8}
    assert promote(t, ["click", "like"], 3) == {"b"}
    # mutually non-dominated and both extreme: the larger normalized sum, then the first
    t = {"a": {"click": 0.9, "like": 0.5, "buy": 0.6},
         "b": {"click": 0.5, "like": 0.9, "buy": 0.7}}
    assert promote(t, OBJS, 2) == {"b"}
    t = {"a": {"click": 0.9, "like": 0.5}, "b": {"click": 0.5, "like": 0.9}}
    assert promote(t, ["click", "like"], 2) == {"a"}
    # a missing or NaN AUC is the worst
    t = {"a": {"click": math.nan}, "b": {"click": 0.51}}
    assert promote(t, ["click"], 2) == {"b"}


def test_rungs_are_geometric_below_the_last_epoch():
    assert milestones(1, 3, 10) == [1, 3, 9]
    assert milestones(1, 3, 9) == [1, 3]
    assert milestones(2, 2, 20) == [2, 4, 8, 16]
    assert milestones(1, 2.5, 7) == [1, 2.5, 6.25]
    assert milestones(3, 3, 3) == []


def test_population_hypervolume_against_boxes():
    # 2 objectives, reference (0.5, 0.5): union of boxes computed by hand
    members = {"p": [{"click": 0.7, "like": 0.6}, {"click": 0.6, "like": 0.8}],
               "q": [{"click": 0.7, "like": 0.6}],
               "r": [{"click": math.nan, "like": 0.9}]}
    hv = population_hypervolume(members, ["click", "like"])
    assert hv["p"] == pytest.approx(0.2 * 0.1 + 0.1 * 0.3 - 0.1 * 0.1)
    assert hv["q"] == pytest.approx(0.2 * 0.1)
    assert hv["r"] == 0.0                       # no finite member
    # a member below 0.5 moves the shared reference down
    hv = population_hypervolume({"p": [{"click": 0.4, "like": 0.6}]}, ["click", "like"])
    assert hv["p"] == 0.0


# --- the Tune scheduler, without Ray's cluster ----------------------------------------------

class _Trial:
    def __init__(self, trial_id):
        self.trial_id = trial_id


def _result(epoch, click, like, buy=0.6):
    return {"epoch": epoch, "auc/click": click, "auc/like": like, "auc/buy": buy,
            "auc_sum": click + like + buy}


def _moasha(**kw):
    from search.schedulers.moasha_scheduler import MOASHAScheduler
    return MOASHAScheduler(OBJS, **{"grace_period": 1, "reduction_factor": 3, "max_t": 10,
                                    **kw})


def test_moasha_stops_trials_outside_the_top_third_and_records_why(tmp_path):
    from ray.tune.schedulers import TrialScheduler
    saved = []
    s = _moasha(save=saved.append)
    a, b, c, d = (_Trial(x) for x in "abcd")
    assert s.on_trial_result(None, a, _result(1, 0.7, 0.7)) == TrialScheduler.CONTINUE
    assert s.on_trial_result(None, b, _result(1, 0.6, 0.6)) == TrialScheduler.STOP
    assert s.on_trial_result(None, c, _result(1, 0.8, 0.8)) == TrialScheduler.CONTINUE
    assert s.on_trial_result(None, a, _result(2, 0.7, 0.7)) == TrialScheduler.CONTINUE
    # 4 at the epoch-1 rung keep 2: d is dominated by both kept trials
    assert s.on_trial_result(None, d, _result(1, 0.65, 0.65)) == TrialScheduler.STOP
    assert set(s.stopped) == {"b", "d"} and s.stopped["d"]["recorded"] == 4
    assert "epoch 1" in s.reason("d") and "top 1/3 of the 4 trial(s)" in s.reason("d")
    # a report without AUCs (a diverged trial) is left alone
    assert s.on_trial_result(None, _Trial("e"), {"epoch": 1, "error": "x"}) == \
        TrialScheduler.CONTINUE
    # its callback marks the result that stopped a trial
    from search.schedulers.moasha_scheduler import StoppedEarly
    r = _result(1, 0.65, 0.65)
    StoppedEarly(s).on_trial_result(0, [], d, r)
    assert r["stopped_early"] is True and r["stopped_at_epoch"] == 1
    assert r["stopped_reason"] == s.reason("d")
    # the JSON state after each decision; resume continues from it
    state = json.loads(saved[-1])
    resumed = _moasha()
    resumed.set_json_state(state)
    assert resumed.rungs == s.rungs and resumed.stopped == s.stopped
    assert resumed.on_trial_result(None, b, _result(2, 0.9, 0.9)) == TrialScheduler.STOP
    assert resumed.on_trial_result(None, c, _result(2, 0.8, 0.8)) == TrialScheduler.CONTINUE
    assert resumed.on_trial_result(None, c, _result(3, 0.8, 0.8)) == TrialScheduler.CONTINUE
    # Tune's pickle of the scheduler holds settings only: no AUCs, no storage
    blob = pickle.dumps(s)
    assert b"auc" not in blob and pickle.loads(blob).rungs == {1.0: {}, 3.0: {}, 9.0: {}}


def test_moasha_state_for_other_settings_or_not_ours_is_refused():
    from search.schedulers.moasha_scheduler import SchedulerStateError
    s = _moasha()
    s.on_trial_result(None, _Trial("a"), _result(1, 0.7, 0.7))
    state = s.get_json_state()
    with pytest.raises(SchedulerStateError, match="reduction_factor 3.*2"):
        _moasha(reduction_factor=2).set_json_state(state)
    with pytest.raises(SchedulerStateError, match="format"):
        _moasha().set_json_state({"rungs": []})
    bad = copy.deepcopy(state)
    bad["rungs"] = "x"
    with pytest.raises(SchedulerStateError, match="rungs"):
        _moasha().set_json_state(bad)


def test_moasha_ranks_population_trials_by_their_members_hypervolume():
    from ray.tune.schedulers import TrialScheduler
    s = _moasha(population=True)

    def pop(epoch, *members):
        r = {"epoch": epoch, "members": len(members)}
        for i, (c, lk) in enumerate(members):
            r.update({f"m{i}/auc/click": c, f"m{i}/auc/like": lk, f"m{i}/auc/buy": 0.7})
        return r
    assert s.on_trial_result(None, _Trial("p"), pop(1, (0.7, 0.6), (0.6, 0.7))) == \
        TrialScheduler.CONTINUE
    # one member better on each objective than any of p's, but less volume in all
    assert s.on_trial_result(None, _Trial("q"), pop(1, (0.75, 0.55))) == TrialScheduler.STOP
    assert s.on_trial_result(None, _Trial("r"), pop(1, (0.8, 0.8), (0.6, 0.6))) == \
        TrialScheduler.CONTINUE


# --- the space's scheduler section, for every registered scheduler --------------------------

BASE = {"name": "sched", "data": {"source": "synthetic", "rows": 20000, "objectives": OBJS,
                                  "seed": 0},
        "optim": {"lr": {"loguniform": [0.001, 0.01]}, "epochs": 4},
        "tracking": {"wandb": {"mode": "disabled"}}}


def _load(tmp_path, scheduler, **over):
    raw = {**copy.deepcopy(BASE), "scheduler": scheduler, **over}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_space(p)


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
def test_every_scheduler_declares_its_keys_and_builds(tmp_path, kind):
    spec = SCHEDULERS[kind]
    assert isinstance(spec, SchedulerKind)
    space = _load(tmp_path, {"kind": kind})
    assert space.scheduler == {"kind": kind, **spec.params}
    built = spec.build(space, 4)
    if built is not None:
        from ray.tune.schedulers import TrialScheduler
        assert isinstance(built, TrialScheduler)
    assert isinstance(spec.callbacks(built), list)
    # a key of another scheduler, or of none, is one line naming it
    for key in sorted({k for s in SCHEDULERS.values() for k in s.params} | {"bogus"}):
        if key in spec.params:
            continue
        owners = sorted(n for n, s in SCHEDULERS.items() if key in s.params)
        with pytest.raises(SpaceError) as e:
            _load(tmp_path, {"kind": kind, key: 1})
        msg = str(e.value)
        assert "\n" not in msg and f"scheduler.{key} = 1: " in msg
        assert (f"only for scheduler.kind {', '.join(owners)}" if owners else
                f"unknown key; allowed in scheduler: kind") in msg


def test_moasha_section_defaults_and_errors(tmp_path):
    s = _load(tmp_path, {"kind": "moasha"})
    assert s.scheduler == {"kind": "moasha", "grace_period": 1, "reduction_factor": 3}
    assert _load(tmp_path, None).scheduler is None                        # FIFO
    for sched, pattern in [
        ({"kind": "hyperband"}, r"scheduler\.kind = 'hyperband': allowed: asha, fifo, moasha$"),
        ({"kind": "moasha", "grace_period": 0}, r"scheduler\.grace_period = 0: .*>= 1"),
        ({"kind": "moasha", "reduction_factor": 1}, r"scheduler\.reduction_factor = 1: .*> 1"),
        ({"kind": "moasha", "grace_period": 4}, r"scheduler\.grace_period = 4: no rung below "
                                                r"optim\.epochs \(4\)"),
        ({"kind": "moasha", "metric": "auc_sum"}, r"scheduler\.metric = 'auc_sum': only for "
                                                  r"scheduler\.kind asha$")]:
        with pytest.raises(SpaceError, match=pattern):
            _load(tmp_path, sched)
    # a searched epochs counts with its largest value
    s = _load(tmp_path, {"kind": "moasha", "grace_period": 4},
              optim={"lr": 0.01, "epochs": {"choice": [2, 6]}})
    assert s.scheduler["grace_period"] == 4


def test_moasha_serves_population_trials_asha_does_not(tmp_path):
    pop = {"algorithm": "nsga2", "population": True, "pop_size": 2, "generations": 1}
    assert _load(tmp_path, {"kind": "moasha"}, search=pop).scheduler["kind"] == "moasha"
    with pytest.raises(SpaceError, match=r"scheduler = .*population"):
        _load(tmp_path, {"kind": "asha"}, search=pop)


def test_a_bad_scheduler_is_exit_code_2_in_one_line(tmp_path):
    from tests import _bad_inputs as b
    raw = {**copy.deepcopy(BASE), "scheduler": {"kind": "moasha", "grace": 2}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    rc, err, _ = b.run_cli("search", ["run", str(path), "--storage", str(tmp_path / "exp")])
    assert rc == 2 and "Traceback" not in err
    assert "scheduler.grace = 2: unknown key; allowed in scheduler: kind, grace_period, " \
           "reduction_factor" in err


def test_rung_tables_survive_json_with_every_point_kind():
    s = _moasha(population=True)
    s.decide("p", 1, [{"click": math.nan, "like": 0.6, "buy": 0.6}])
    text = json.dumps(s.get_json_state(), allow_nan=False)
    again = _moasha(population=True)
    again.set_json_state(json.loads(text))
    assert again.rungs[1.0]["p"] == [{"click": None, "like": 0.6, "buy": 0.6}]
    assert list(itertools.chain(*[t for t in again.rungs.values()])) == ["p"]


# --- a real search ----------------------------------------------------------------------------

@pytest.mark.ray
@pytest.mark.slow
def test_moasha_stops_trials_at_the_first_rung_of_a_real_search(ray_cluster, tmp_path):
    """A random search of 6 trials x 3 epochs on tiny synthetic data with moasha: some
    trials stop at the epoch-1 rung, finished (not failed) and marked in result.json; the
    scheduler's JSON state names them, and resuming the experiment reads it back."""
    from analysis.results import load_results
    from search.runner import SCHEDULER_STATE, resume_search, run_search

    from .test_search import write_space
    space = write_space(tmp_path, "moasha", optim={"epochs": 3},
                        search={"num_samples": 6, "max_concurrent": 2},
                        scheduler={"kind": "moasha", "grace_period": 1, "reduction_factor": 3},
                        tracking={"wandb": {"mode": "disabled"}})
    out = run_search(space, storage=tmp_path / "exp")
    df = load_results(out.folder)
    assert out.failed == 0 and (df["status"] == "TERMINATED").all() and len(df) == 6
    last = {d.rsplit("/", 1)[-1].split("-")[0]: json.loads(
        (tmp_path / "exp" / "moasha" / d.rsplit("/", 1)[-1] / "result.json")
        .read_text().splitlines()[-1]) for d in df["dir"]}
    stopped = {t for t, r in last.items() if r.get("stopped_early")}
    assert 1 <= len(stopped) < 6
    assert all(last[t]["epoch"] == 1 and "moasha" in last[t]["stopped_reason"] for t in stopped)
    assert all(r["epoch"] == 3 for t, r in last.items() if t not in stopped)
    state = json.loads((out.folder / SCHEDULER_STATE).read_text())
    assert set(state["stopped"]) == stopped and len(state["rungs"][0][1]) == 6
    again = resume_search(out.folder)
    assert again.finished == 6 and again.failed == 0
