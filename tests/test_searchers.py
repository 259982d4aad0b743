"""search.searchers: the contract every registered searcher keeps, checked for each entry
of SEARCHERS without a Ray cluster (Tune's own search-algorithm protocol, driven here with
fake results), and that a searcher registered at test time needs nothing else."""
from __future__ import annotations

import copy
import re
import sys

import pytest
import yaml

from search import runner
from search.distributions import _int_at_least
from search.searchers import SEARCHERS, SearchAlgorithm, smoke_help
from search.searchers.base import basic_variant
from search.space import SpaceError, load_space, materialize, to_tune

OBJS = ["click", "buy"]
BASE = {
    "name": "contract",
    "data": {"source": "synthetic", "rows": 20000, "objectives": OBJS, "seed": 0},
    "model": {"family": "harmonrank", "d_model": {"choice": [4, 8]}},
    "optim": {"lr": {"choice": [0.01, 0.02]}, "batch_size": 1024, "epochs": 3},
    "tracking": {"wandb": {"mode": "disabled"}},
}


def _takes(name: str, spec: dict) -> bool:
    """Whether searcher ``name`` may search distribution ``spec``."""
    from search.distributions import _Dist, _Invalid
    try:
        SEARCHERS[name].check_dist("probe", _Dist(spec))
    except _Invalid:
        return False
    return True


LR_RANGE = {"loguniform": [0.01, 0.02]}


def space_dict(name: str, population: bool = False, tiny: bool = False, **search) -> dict:
    """A minimal space for searcher ``name`` (plus what it declares it needs: its
    ``example``): lr drawn from [0.01, 0.02] where the searcher takes a range (so no two
    draws train the same config), else choices; ``tiny``: choices only (4 configs)."""
    raw = copy.deepcopy(BASE)
    if not tiny and _takes(name, LR_RANGE):
        raw["optim"]["lr"] = copy.deepcopy(LR_RANGE)
    for section, value in SEARCHERS[name].example.items():
        raw[section] = {**(raw.get(section) or {}), **copy.deepcopy(value)} \
            if isinstance(value, dict) else copy.deepcopy(value)
    if population:                  # members share the architecture
        raw["model"] = {"family": "harmonrank", "d_model": 4}
        search["population"] = True
    raw["search"] = {"algorithm": name, **search}
    return raw


def write(tmp_path, raw: dict, name: str = "s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


def _trainable(config):
    return None


def fake_result(i: int, metrics, members: int = 32) -> dict:
    """AUCs for trial ``i``, and for up to ``members`` population members (``m<p>/...``)."""
    r = {m: 0.5 + 0.03 * ((i * 5 + j) % 11) for j, m in enumerate(metrics)}
    for p in range(members):
        r.update({f"m{p}/{m}": 0.5 + 0.02 * ((i + p * 3 + j) % 13)
                  for j, m in enumerate(metrics)})
    r["auc_sum"] = sum(r[m] for m in metrics)
    return r


def drive(built, space, tmp_path, limit: int = 40):
    """What Tune does with a search algorithm, minus the cluster: set_search_properties,
    add_configurations, next_trial; a trial completes (fake AUCs) whenever the searcher
    has nothing to hand out. Returns (generator, materialized configs, pending ids)."""
    from ray.tune.experiment import Experiment
    from ray.tune.search import SearchGenerator, Searcher
    gen = SearchGenerator(built) if isinstance(built, Searcher) else built
    ps = space.param_space()
    gen.set_search_properties(None, None, ps)
    num = sys.maxsize if space.searcher.ends_itself else space.search["num_samples"]
    gen.add_configurations([Experiment("contract", run=_trainable, config=ps,
                                       num_samples=num, storage_path=str(tmp_path / "tune"))])
    configs, pending, done = [], [], 0
    while len(configs) < limit:
        trial = gen.next_trial()
        if trial is not None:
            configs.append(materialize(trial.config))
            pending.append(trial.trial_id)
        elif pending:
            gen.on_trial_complete(pending.pop(0), fake_result(done, space.search["metrics"]))
            done += 1
        else:
            assert gen.is_finished(), "the searcher hands out nothing and is not finished"
            break
    return gen, configs, pending


# every searcher, its population form, and every declared variant of its own keys
# (optuna's samplers): (name, population, extra search keys)
CASES = [(n, False, {}) for n in SEARCHERS] + \
    [(n, True, {}) for n, s in SEARCHERS.items() if s.population] + \
    [(n, False, {k: v}) for n, s in SEARCHERS.items() for k, vs in s.variants.items()
     for v in vs]
IDS = [n + ("-population" if p else "") + "".join(f"-{k}={v}" for k, v in x.items())
       for n, p, x in CASES]


@pytest.mark.parametrize("name,population,extra", CASES, ids=IDS)
def test_every_searcher_keeps_the_contract(tmp_path, name, population, extra):
    spec = SEARCHERS[name]
    assert isinstance(spec, SearchAlgorithm)
    space = load_space(write(tmp_path, space_dict(name, population, **extra)))
    for k, v in extra.items():
        assert space.search[k] == v
    assert space.searcher is spec and space.search["population"] is population
    # every registered searcher's own keys are in space.search (None if not this one's)
    for other in SEARCHERS.values():
        for key in other.params:
            assert key in space.search
    planned = space.planned_trials()
    assert planned >= 1

    # its Tune search algorithm, driven through Tune's protocol with fake results
    gen, configs, pending = drive(spec.build(space), space, tmp_path, limit=planned + 5)
    assert len(configs) == planned            # exactly the trials it plans, then finished
    for cfg in configs:
        assert 0.01 <= cfg["optim"]["lr"] <= 0.02
        assert isinstance(cfg.get("population"), list) is population

    # save / restore where the searcher resumes by itself (a Tune Searcher)
    from ray.tune.search import Searcher
    searcher = getattr(gen, "searcher", None)
    if isinstance(searcher, Searcher):
        # stopped mid-run, trials running (nsga2: into a generation); both finish them
        gen2, first, running = drive(spec.build(space), space, tmp_path / "again",
                                     limit=planned // 2 + 1)
        assert first == configs[:len(first)]           # same seed, same configs
        path = tmp_path / "searcher-state"
        gen2.searcher.save(str(path))
        restored = spec.build(space)
        restored.restore(str(path))
        for s in (gen2.searcher, restored):
            for i, trial_id in enumerate(running):
                s.on_trial_complete(trial_id, fake_result(100 + i, space.search["metrics"]))
        a, b = gen2.searcher.suggest("after-restore"), restored.suggest("after-restore")
        assert isinstance(a, dict) and materialize(a) == materialize(b)

    # --smoke-test: at most the trials it declares, 1 epoch
    smoke = runner._smoke(space)
    k = len(smoke.objectives)
    assert smoke.planned_trials() <= spec.smoke_trials(k)
    assert smoke.fixed_config()["optim"]["epochs"] == 1
    _, smoke_configs, _ = drive(spec.build(smoke), smoke, tmp_path / "smoke", limit=1000)
    assert len(smoke_configs) == smoke.planned_trials()
    assert name in smoke_help()

    # a bogus key in search: one error naming it
    raw = space_dict(name, population, **extra)
    raw["search"]["bogus_key"] = 1
    with pytest.raises(SpaceError) as e:
        load_space(write(tmp_path, raw, "bogus.yaml"))
    msg = str(e.value)
    assert "\n" not in msg and "search.bogus_key = 1: unknown key; allowed in search:" in msg


# a budget above the tiny space's 4 configs, per searcher (others: their default budget)
OVER_BUDGET = {"random": {"num_samples": 10}, "optuna": {"num_samples": 10},
               "nsga2": {"pop_size": 4, "generations": 3}, "pe_ltr_grid": {"num_samples": 2}}


@pytest.mark.parametrize("name,population,extra", CASES, ids=IDS)
def test_no_searcher_trains_a_config_twice(tmp_path, capsys, name, population, extra):
    """A space of 4 configs (d_model x lr choices; a population varies lr only) and a
    budget above it: every config handed out is new, and the search ends by itself,
    saying why when it ends before its plan."""
    from search.space_tree import config_key
    budget = {} if population and name == "pe_ltr_grid" else OVER_BUDGET.get(name, {})
    space = load_space(write(tmp_path, space_dict(name, population, tiny=True,
                                                  **budget, **extra)))
    planned = space.planned_trials()
    gen, configs, pending = drive(space.searcher.build(space), space, tmp_path,
                                  limit=planned + 5)
    assert not pending and gen.is_finished()
    keys = [config_key(c) for c in configs]
    assert len(set(keys)) == len(keys) >= 1, "a config was handed out twice"
    members = [config_key({**c, **m}) for c in configs for m in c.get("population", [])]
    assert len(set(members)) == len(members), "a population trained a member twice"
    out = capsys.readouterr().out
    if len(configs) < planned:
        assert re.search(r"\[search\] .*(distinct configurations of the space are trained|"
                         r"exhausted|skipped)", out), out
    if name in ("random", "optuna"):
        assert len(configs) == 4 and "all 4 distinct configurations" in out


def test_optuna_gp_sampler_proposes_after_its_random_start_and_is_seeded(tmp_path):
    """search.sampler gp: Optuna's GPSampler (multi-objective) proposes once its 10 random
    trials have reported; the same seed proposes the same configs."""
    raw = space_dict("optuna", sampler="gp", num_samples=12, seed=3, max_concurrent=1)
    raw["optim"]["weight_decay"] = {"uniform": [0.0, 0.01]}
    runs = []
    for i in range(2):
        space = load_space(write(tmp_path, raw, f"gp{i}.yaml"))
        _, configs, _ = drive(space.searcher.build(space), space, tmp_path / f"gp{i}",
                              limit=20)
        runs.append([(c["optim"]["lr"], c["optim"]["weight_decay"], c["model"]["d_model"])
                     for c in configs])
    assert len(runs[0]) == 12 and runs[0] == runs[1]
    assert all(0.01 <= lr <= 0.02 and 0 <= wd <= 0.01 for lr, wd, _ in runs[0])


@pytest.mark.parametrize("key,owners", sorted(
    {k: sorted(n for n, s in SEARCHERS.items() if k in s.params)
     for s in SEARCHERS.values() for k in s.params}.items()))
def test_a_searchers_own_key_is_refused_by_the_others(tmp_path, key, owners):
    for name in SEARCHERS:
        if name in owners:
            continue
        raw = space_dict(name)
        raw["search"][key] = 2
        with pytest.raises(SpaceError, match=rf"search\.{key} = 2: only for search\.algorithm "
                                             rf"{', '.join(owners)}$"):
            load_space(write(tmp_path, raw))


def test_an_unknown_algorithm_lists_every_registered_name(tmp_path):
    raw = space_dict("random")
    raw["search"]["algorithm"] = "hyperband"
    with pytest.raises(SpaceError) as e:
        load_space(write(tmp_path, raw))
    assert str(e.value).endswith(f"search.algorithm = 'hyperband': allowed: "
                                 f"{', '.join(sorted(SEARCHERS))}")
    with pytest.raises(SpaceError, match="allowed: " + ", ".join(sorted(SEARCHERS))):
        to_tune({"choice": [1, 2]}, "hyperband")


class _Depth(SearchAlgorithm):
    """A throwaway searcher: one key of its own, Tune's generator, its own smoke size."""

    params = {"depth": 3}
    smoke_text = "1 trial of depth 1"
    built: list = []

    def parse(self, s, given):
        _int_at_least("search.depth", s["depth"], 1)

    def build(self, space):
        self.built.append(space.search["depth"])
        return basic_variant(space.search)

    def shrink(self, raw):
        raw["search"].update(num_samples=1, depth=1)

    def smoke_trials(self, k):
        return 1


def test_a_searcher_registered_at_test_time_needs_no_other_edit(tmp_path, monkeypatch):
    mine = _Depth()
    mine.built = []
    monkeypatch.setitem(SEARCHERS, "depth_first", mine)
    raw = space_dict("random")
    raw["search"] = {"algorithm": "depth_first", "depth": 5, "num_samples": 3, "seed": 1}
    space = load_space(write(tmp_path, raw))
    assert space.searcher is mine
    assert space.search["depth"] == 5 and space.search["num_samples"] == 3
    assert space.search["pop_size"] is None and space.planned_trials() == 3
    built = runner._searcher(space)
    assert mine.built == [5]
    _, configs, _ = drive(built, space, tmp_path)
    assert len(configs) == 3
    assert to_tune({"choice": [1, 2]}, "depth_first").categories == [1, 2]
    # its key is its own: checked by it, refused for the others
    raw["search"]["depth"] = 0
    with pytest.raises(SpaceError, match=r"search\.depth = 0: must be an integer >= 1"):
        load_space(write(tmp_path, raw))
    other = space_dict("random")
    other["search"]["depth"] = 2
    with pytest.raises(SpaceError, match=r"search\.depth = 2: only for search\.algorithm "
                                         r"depth_first"):
        load_space(write(tmp_path, other))
    bad = space_dict("random")
    bad["search"]["algorithm"] = "nope"
    with pytest.raises(SpaceError, match=r"allowed: depth_first, grid"):
        load_space(write(tmp_path, bad))
    # population trials, limits and --smoke-test come from its declaration
    raw["search"].update(depth=2, population=True)
    with pytest.raises(SpaceError, match=r"search\.population.*depth_first trains one model"):
        load_space(write(tmp_path, raw))
    raw["search"].update(population=False, num_samples=10 ** 6)
    with pytest.raises(SpaceError, match=r"search\.num_samples = 1000000: plans 1,000,000"):
        load_space(write(tmp_path, raw))
    smoke = runner._smoke(space)
    assert smoke.search["depth"] == 1 and smoke.planned_trials() == 1
    assert "depth_first: 1 trial of depth 1" in smoke_help()


def test_the_smoke_test_help_says_what_each_searcher_runs():
    from search.__main__ import main
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = smoke_help()
    for name, spec in SEARCHERS.items():
        assert name in text and spec.smoke_text in text


def test_a_population_grid_splits_its_points_into_trials_of_members_per_trial(tmp_path):
    """grid + search.population: every point of weights x lr exactly once, as population
    trials of members_per_trial members (the last one shorter), in grid order."""
    weights = [{"click": 0.25, "buy": 0.75}, {"click": 0.5, "buy": 0.5},
               {"click": 0.9, "buy": 0.1}]
    raw = space_dict("grid", population=True, members_per_trial=4)
    raw["weighting"] = {"kind": "static", "weights": {"choice": weights}}
    space = load_space(write(tmp_path, raw))
    assert space.planned_trials() == 2                       # 3 x 2 points: 4 + 2 members
    _, configs, _ = drive(space.searcher.build(space), space, tmp_path, limit=10)
    members = [(tuple(sorted(m["weighting"]["weights"].items())), m["optim"]["lr"])
               for c in configs for m in c["population"]]
    assert [len(c["population"]) for c in configs] == [4, 2]
    assert members == [(tuple(sorted(w.items())), lr) for w in weights for lr in (0.01, 0.02)]
    for bad, match in [({"members_per_trial": 0}, r"members_per_trial = 0: must be an "
                        r"integer >= 1 or null"),
                       ({"members_per_trial": 2, "population": False},
                        r"members_per_trial = 2: only with search\.population: true")]:
        raw["search"] = {"algorithm": "grid", "population": True, **bad}
        with pytest.raises(SpaceError, match=match):
            load_space(write(tmp_path, raw))
    raw["search"] = {"algorithm": "grid", "population": True}
    raw["model"]["d_model"] = {"choice": [4, 8]}
    with pytest.raises(SpaceError, match=r"model\.d_model.*only weighting parameters and "
                                         r"optim\.lr may be searched"):
        load_space(write(tmp_path, raw))
