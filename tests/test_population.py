"""Population training: batched losses vs row by row, the stacked model vs its members,
a population run vs the same members trained alone, divergence, resume, config errors,
and population trials in a search (PE-LTR grid and NSGA-II generations)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from ._batches import random_batch
from trainables.config import resolve_config
from trainables.loop import TrainingDiverged, train_loop_per_worker
from trainables.losses import LOSSES, get_loss
from trainables.models import FeatureSpec, build_model
from trainables.population import PopulationModel, clip_grad_norm_per_member, member_configs
from trainables.weighting import StepContext, build_weighting

FEATS = FeatureSpec((("feat_a", 5), ("feat_b", 3)), ("feat_x",))


def _batch(n=300, k=3, seed=0):
    return random_batch(n, k, seed, [0.3, 0.1, 0.5])


# --- losses ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LOSSES))
def test_batched_loss_equals_row_by_row(name):
    _, labels, _, _ = _batch()
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, labels.shape[0], generator=g, dtype=torch.float64, requires_grad=True)
    loss = get_loss(name)
    kw = {"max_pairs": 10 ** 9} if name == "pairwise_logistic" else {}
    batched = loss(s, labels.double(), **kw)
    assert batched.shape == (4, labels.shape[1])
    rows = torch.stack([loss(s[i], labels.double(), **kw) for i in range(4)])
    torch.testing.assert_close(batched, rows, rtol=1e-9, atol=1e-12)
    w = torch.rand(4, labels.shape[1], generator=g, dtype=torch.float64)
    gb, = torch.autograd.grad((batched * w).sum(), s)
    gr, = torch.autograd.grad((rows * w).sum(), s)
    torch.testing.assert_close(gb, gr, rtol=1e-9, atol=1e-12)


# --- the stacked model ---------------------------------------------------------------------

@pytest.mark.parametrize("family", ["fusion", "mlp", "harmonrank"])
@pytest.mark.parametrize("chunk", [None, 7, 10 ** 6])
def test_population_forward_equals_members(family, chunk):
    scores, _, cat, num = _batch()
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(build_model(family, 3, FEATS, {}))
    pop = PopulationModel(members, chunk_rows=chunk)
    out = pop(scores, cat, num)
    want = torch.stack([m(scores, cat, num) for m in members])
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    # a member exported as an ordinary model scores exactly like the member
    fresh = build_model(family, 3, FEATS, {})
    fresh.load_state_dict(pop.member_state_dict(1))
    torch.testing.assert_close(fresh(scores, cat, num), want[1], rtol=1e-5, atol=1e-5)


def test_member_gradients_are_their_own():
    """One backward of the summed member losses gives each member its own gradient."""
    scores, labels, cat, num = _batch()
    members = [build_model("harmonrank", 3, FEATS, {"d_model": 4}) for _ in range(2)]
    pop = PopulationModel(members)
    loss = get_loss("rank_auc")
    loss(pop(scores, cat, num), labels).sum().backward()
    for i, m in enumerate(members):
        loss(m(scores, cat, num), labels).sum().backward()
        for name, p in m.named_parameters():
            got = getattr(pop, name.replace(".", "__")).grad[i]
            torch.testing.assert_close(got, p.grad, rtol=1e-4, atol=1e-6)


def test_clip_per_member():
    a = torch.nn.Parameter(torch.zeros(3, 4))
    b = torch.nn.Parameter(torch.zeros(3, 2))
    a.grad = torch.tensor([[3.0, 0, 0, 0], [0.1, 0, 0, 0], [0, 0, 0, 0]])
    b.grad = torch.tensor([[4.0, 0], [0, 0.1], [0, 0]])
    clip_grad_norm_per_member([a, b], 1.0)
    norms = (a.grad.pow(2).sum(1) + b.grad.pow(2).sum(1)).sqrt()
    torch.testing.assert_close(norms, torch.tensor([1.0, math.sqrt(0.02), 0.0]), atol=1e-5,
                               rtol=1e-5)


def test_pe_ltr_population_weights_equal_each_member_alone():
    scores, labels, cat, num = _batch(k=3)
    objs = ["a", "b", "c"]
    bounds = [[0.0, 0.0, 0.0], [0.5, 0.1, 0.0], [0.0, 0.0, 0.7]]
    members = [build_model("mlp", 3, FEATS, {}) for _ in bounds]
    for gradients in ("scores", "shared"):
        singles = [build_weighting("pe_ltr", objs, {"bounds": c, "gradients": gradients})
                   for c in bounds]
        stacked = type(singles[0]).stack(
            [build_weighting("pe_ltr", objs, {"bounds": c, "gradients": gradients})
             for c in bounds])
        pop = PopulationModel(members)
        s = pop(scores, cat, num)
        losses = get_loss("bce")(s, labels)
        stacked.combine(losses, StepContext(0, 0, pop, s, labels, (scores, cat, num)))
        for i, (m, w) in enumerate(zip(members, singles)):
            si = m(scores, cat, num)
            w.combine(get_loss("bce")(si, labels), StepContext(0, 0, m, si, labels))
            torch.testing.assert_close(stacked.weights()[i], w.weights(), atol=1e-5, rtol=1e-4)
            assert stacked.weights()[i].sum().item() == pytest.approx(1.0, abs=1e-6)
            assert (stacked.weights()[i] >= torch.tensor(bounds[i]) - 1e-6).all()


def test_stack_refuses_members_that_differ_in_shared_settings():
    objs = ["a", "b"]
    with pytest.raises(ValueError, match="every"):
        type(build_weighting("pe_ltr", objs)).stack(
            [build_weighting("pe_ltr", objs, {"every": 1}),
             build_weighting("pe_ltr", objs, {"every": 2})])


# --- training ------------------------------------------------------------------------------

OBJS = ["click", "like", "buy"]


def _cfg(small_dataset, **over):
    cfg = {"data": {"path": str(small_dataset), "objectives": OBJS},
           "model": {"family": "harmonrank", "d_model": 8},
           "loss": {"kind": "rank_auc"},
           "optim": {"epochs": 1, "batch_size": 4096},
           "run": {"verbose": False, "gauc": False}}
    cfg.update(over)
    return cfg


MEMBERS = [{"weighting": {"weights": {"click": 1.0, "like": 1.0, "buy": 1.0}}},
           {"weighting": {"weights": {"click": 3.0, "like": 0.2, "buy": 0.2}},
            "optim": {"lr": 0.003}},
           {"weighting": {"weights": {"click": 0.1, "like": 0.1, "buy": 2.0}}}]


def test_population_run_equals_members_trained_alone(small_dataset):
    base = _cfg(small_dataset)
    pop = train_loop_per_worker({**base, "population": MEMBERS})[-1]
    assert pop["members"] == 3
    for i, m in enumerate(member_configs(resolve_config({**base, "population": MEMBERS}))):
        alone = train_loop_per_worker(m)[-1]
        for o in OBJS:
            assert pop[f"m{i}/auc/{o}"] == pytest.approx(alone[f"auc/{o}"], abs=2e-4)
            assert pop[f"m{i}/weight/{o}"] == pytest.approx(alone[f"weight/{o}"])
    best = max(range(3), key=lambda i: pop[f"m{i}/auc_sum"])
    assert pop["best_member"] == best and pop["auc_sum"] == pop[f"m{best}/auc_sum"]


def test_member_seed_sets_its_initialization(small_dataset):
    """run.seed of a member picks its initial parameters (the batch order is the
    population's): same weights, other seed -> another model; same seed -> the same."""
    base = _cfg(small_dataset, model={"family": "mlp"}, loss={"kind": "bce"})
    last = train_loop_per_worker({**base, "population": [{}, {"run": {"seed": 5}}, {}]})[-1]
    assert last["m0/auc_sum"] == pytest.approx(last["m2/auc_sum"], abs=1e-9)
    assert abs(last["m0/auc_sum"] - last["m1/auc_sum"]) > 1e-4


def test_a_diverging_member_stops_alone(small_dataset):
    members = [{"optim": {"lr": 1e-2}}, {"optim": {"lr": 1e30}}]
    base = _cfg(small_dataset, model={"family": "fusion"}, loss={"kind": "label_aggregation"},
                optim={"epochs": 2, "batch_size": 4096, "optimizer": "sgd"})
    last = train_loop_per_worker({**base, "population": members})[-1]
    assert "m1/error" in last and "member 1 stopped" in last["m1/error"]
    assert math.isnan(last["m1/auc_sum"]) and math.isfinite(last["m0/auc_sum"])
    assert "m0/error" not in last and last["best_member"] == 0
    with pytest.raises(TrainingDiverged, match="every population member diverged"):
        train_loop_per_worker({**base, "population": [{"optim": {"lr": 1e30}}] * 2})


def test_population_resume_is_exact(small_dataset, tmp_path):
    base = _cfg(small_dataset, model={"family": "mlp"}, loss={"kind": "bce"})
    straight = train_loop_per_worker({**base, "optim": {"epochs": 2, "batch_size": 4096},
                                      "population": MEMBERS})[-1]
    ck = str(tmp_path / "ck")
    train_loop_per_worker({**base, "run": {**base["run"], "checkpoint_dir": ck},
                           "population": MEMBERS})
    resumed = train_loop_per_worker({**base, "optim": {"epochs": 2, "batch_size": 4096},
                                     "run": {**base["run"], "resume_from": ck},
                                     "population": MEMBERS})[-1]
    for i in range(3):
        for o in OBJS:
            assert resumed[f"m{i}/auc/{o}"] == pytest.approx(straight[f"m{i}/auc/{o}"],
                                                             abs=1e-6)


@pytest.mark.parametrize("population,pattern", [
    ([], "non-empty list"),
    ([{"model": {"d_model": 4}}], r"section\(s\) model cannot differ"),
    ([{}, {"optim": {"batch_size": 128}}], r"optim.batch_size = 128 differs"),
    ([{}, {"weighting": {"kind": "pe_ltr"}}], "weighting.kind 'pe_ltr' differs"),
    ([{"weighting": {"weights": {"nope": 1.0}}}], r"population member 0: .*nope"),
    ([{}, {"optim": {"lr": -1}}], r"population member 1: optim.lr"),
])
def test_population_config_errors(small_dataset, population, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_loop_per_worker({**_cfg(small_dataset), "population": population})


# --- search --------------------------------------------------------------------------------

def _space(tmp_path, search: str, weighting: str, extra: str = "") -> str:
    p = tmp_path / "space.yaml"
    p.write_text(
        "name: pop\n"
        "data: {source: synthetic, rows: 12000, objectives: [click, like, buy], seed: 3}\n"
        "model: {family: fusion}\nloss: {kind: bce}\n"
        f"weighting: {weighting}\n"
        "optim: {lr: 0.05, batch_size: 2048, epochs: 1}\n"
        f"search: {search}\n"
        "resources: {cpus_per_worker: 1}\n"
        "tracking: {wandb: {mode: disabled}}\n" + extra)
    return str(p)


@pytest.mark.parametrize("search,weighting,extra,pattern", [
    ("{algorithm: random, population: true}", "{kind: static}", "",
     "search.population.*random trains one model"),
    ("{algorithm: nsga2, population: true}", "{kind: static}",
     "", None),
    ("{algorithm: nsga2, population: true, pop_size: 4}",
     "{kind: static, weights: {simplex: [click, like, buy]}}",
     "scheduler: {kind: asha}\n", "scheduler"),
    ("{algorithm: nsga2, population: 4, pop_size: 4}", "{kind: static}", "",
     "generation size once"),
    ("{algorithm: pe_ltr_grid, population: true, num_samples: 2}", "{kind: pe_ltr}", "",
     "one trial"),
])
def test_population_space_errors(tmp_path, search, weighting, extra, pattern):
    from search.space import SpaceError, load_space
    path = _space(tmp_path, search, weighting, extra)
    if pattern is None:
        load_space(path)
        return
    with pytest.raises(SpaceError, match=pattern):
        load_space(path)


def test_population_space_refuses_searched_architecture(tmp_path):
    from search.space import SpaceError, load_space
    p = tmp_path / "s.yaml"
    p.write_text("name: pop\ndata: {source: synthetic, rows: 12000, objectives: [click, buy]}\n"
                 "model: {family: harmonrank, d_model: {choice: [4, 8]}}\n"
                 "search: {algorithm: nsga2, population: true}\n")
    with pytest.raises(SpaceError, match=r"model.d_model.*share the architecture"):
        load_space(p)


def test_integer_population_is_the_generation_size(tmp_path):
    from search.space import load_space
    s = load_space(_space(tmp_path, "{algorithm: nsga2, population: 6, generations: 2}",
                          "{kind: static, weights: {simplex: [click, like, buy]}}"))
    assert s.search["pop_size"] == 6 and s.search["population"] is False
    assert s.search["num_samples"] == 12
    s = load_space(_space(tmp_path, "{algorithm: nsga2, population: true, pop_size: 6, "
                                    "generations: 2}",
                          "{kind: static, weights: {simplex: [click, like, buy]}}"))
    assert s.search["num_samples"] == 2


@pytest.mark.ray
def test_pe_ltr_grid_as_one_population_trial(tmp_path, ray_cluster):
    from analysis.results import load_results, row_config
    from search.runner import run
    from search.space import load_space
    path = _space(tmp_path, "{algorithm: pe_ltr_grid, population: true, partitions: 2, "
                            "bounds_total: 0.6}", "{kind: pe_ltr, every: 2}")
    vectors = load_space(path).bound_vectors()
    exp = run(path, storage=tmp_path / "exp", name="pg")
    df = load_results(exp)
    assert len(df) == len(vectors) == 6
    assert df["trial_id"].str.rsplit(".", n=1).str[0].nunique() == 1     # one trial
    assert (df["status"] == "TERMINATED").all()
    assert sorted(df["member"]) == list(range(6))
    for _, row in df.iterrows():
        cfg = row_config(row)
        assert cfg["weighting"]["bounds"] == vectors[row["member"]]
        # the weights logged for the member honour its own bounds
        for o, c in vectors[row["member"]].items():
            assert row[f"weight/{o}"] >= c - 1e-6


@pytest.mark.ray
def test_nsga2_generations_as_population_trials(tmp_path, ray_cluster):
    from analysis.results import load_results
    from search.runner import run
    path = _space(tmp_path, "{algorithm: nsga2, population: true, pop_size: 4, generations: 2, "
                            "seed: 1}",
                  "{kind: static, weights: {simplex: [click, like, buy]}}")
    exp = run(path, storage=tmp_path / "exp", name="ng")
    df = load_results(exp)
    trials = df["trial_id"].str.rsplit(".", n=1).str[0]
    assert trials.nunique() == 2 and len(df) == 8
    assert (df["status"] == "TERMINATED").all()
    # members of a generation carry distinct sampled weights
    first = df[trials == trials.iloc[0]]
    w = first[[f"config/weighting.weights.{o}" for o in ["click", "like", "buy"]]].round(6)
    assert len(w.drop_duplicates()) == 4
    sums = w.sum(axis=1)
    assert ((sums - 1).abs() < 1e-6).all()
    state = json.loads((exp / "paretune.json").read_text())
    assert state["objectives"] == ["click", "like", "buy"]
