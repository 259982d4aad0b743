"""Conditioned training (docs/DESIGN.md, "Conditioned training"): every registered model
trains with the preference as an input, the step minimizes the mean over the sampled
preferences of sum_k w_k L_k (a hand-computed oracle), grid-point metrics are the exact
metrics of the model's scores at that preference, the Das-Dennis grid is pymoo's, config
and space errors, grid points as frontier rows, pick and export round trips."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ._batches import random_batch
from trainables.conditioned import das_dennis, grid_partitions, preference_vector
from trainables.config import resolve_config
from trainables.loop import train_loop_per_worker
from trainables.metrics import auc_per_objective, gauc_per_objective
from trainables.models import MODELS, ConditionedModel, FeatureSpec

OBJ = ["click", "like", "buy"]
FEATS = FeatureSpec((("feat_a", 5), ("feat_b", 3)), ("feat_x",))
SMALL = {"emer": {"d_model": 8, "heads": 2, "layers": 1}, "harmonrank": {"d_model": 4},
         "mlp": {"hidden": [8]}, "fusion": {"personalized": True}}


def _cfg(family="harmonrank", **over) -> dict:
    cfg = {"data": {"source": "synthetic", "rows": 4000, "objectives": OBJ, "seed": 3},
           "model": {"family": family, **SMALL.get(family, {})}, "loss": {"kind": "rank_auc"},
           "optim": {"lr": 0.01, "batch_size": 512, "epochs": 1},
           "run": {"threads": 1, "verbose": False}, "conditioning": {"grid": 3}}
    for k, v in over.items():
        cfg[k] = v
    return cfg


# --- the grid ------------------------------------------------------------------------------

@pytest.mark.parametrize("k,h", [(2, 10), (3, 10), (3, 1), (5, 3), (4, 2)])
def test_das_dennis_is_pymoos_grid_with_the_corners(k, h):
    from pymoo.util.ref_dirs import get_reference_directions
    got = das_dennis(k, h)
    np.testing.assert_allclose(got, get_reference_directions("das-dennis", k, n_partitions=h),
                               atol=1e-12)
    np.testing.assert_allclose(got.sum(1), 1.0)
    for corner in np.eye(k):
        assert (np.abs(got - corner).sum(1) < 1e-12).any()


def test_automatic_grid_stays_within_66_points():
    assert [grid_partitions(None, k) for k in (2, 3, 4, 5, 7)] == [10, 10, 5, 3, 2]
    assert len(das_dennis(5, grid_partitions(None, 5))) == 35
    assert grid_partitions(7, 3) == 7


# --- the model ------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(MODELS))
def test_the_preference_reaches_every_models_score(family):
    scores, _, cat, num, groups = random_batch(60, 3, 0, [0.3, 0.1, 0.5], requests=9)
    torch.manual_seed(0)
    m = ConditionedModel(family, 3, FEATS, SMALL.get(family, {})).eval()
    with torch.no_grad():      # a zero-initialized preference map starts at no effect
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    W = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0.2, 0.3, 0.5]])
    both = m.score(scores, cat, num, W, groups)
    assert both.shape == (3, 60)
    for i in range(3):         # the batch under P preferences = each preference alone
        torch.testing.assert_close(both[i], m.score(scores, cat, num, W[i], groups),
                                   rtol=1e-4, atol=1e-4)
    assert (both[0] - both[1]).abs().max() > 1e-4


class _IgnoresFeatures(nn.Module):
    """A family without a preference hook that never reads its features."""

    def __init__(self, n_objectives, features):
        super().__init__()
        self.w = nn.Parameter(torch.ones(n_objectives))

    def forward(self, scores, cat, num):
        return scores @ self.w


class _ReadsFeatures(_IgnoresFeatures):
    def __init__(self, n_objectives, features):
        super().__init__(n_objectives, features)
        self.v = nn.Linear(len(features.numeric), n_objectives)

    def forward(self, scores, cat, num):
        return (scores * self.v(num)).sum(1)


def test_a_family_without_the_hook_gets_features_or_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(MODELS, "_reads", "tests.test_conditioned:_ReadsFeatures")
    monkeypatch.setitem(MODELS, "_ignores", "tests.test_conditioned:_IgnoresFeatures")
    m = ConditionedModel("_reads", 3, FEATS)                 # the generic injection
    assert m.net.v.in_features == 1 + 3
    with pytest.raises(ValueError, match=r"'_ignores' does not use its numeric features.*"
                                         r"preference w never reaches"):
        ConditionedModel("_ignores", 3, FEATS)
    from search.space import SpaceError, load_space       # refused before any Ray work
    with pytest.raises(SpaceError, match="'_ignores' does not use its numeric features"):
        load_space(_ignoring_space(tmp_path))


def _ignoring_space(tmp_path):
    p = _space(tmp_path, "{}")
    p.write_text(p.read_text().replace("family: harmonrank, d_model: {choice: [4, 8]}",
                                       "family: _ignores"))
    return p


# --- one step: the oracle ---------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["rank_auc", "bce"])
def test_one_step_minimizes_the_mean_preference_weighted_loss(loss):
    """SGD's first step moves the parameters by -lr * the gradient of the objective, so
    matching it checks the objective itself: mean_p sum_k w_pk L_k(model at w_p)."""
    from trainables.losses import get_loss
    from trainables.step import make_step
    from trainables.trainee import make_trainee
    cfg = resolve_config(_cfg(loss={"kind": loss}, optim={"optimizer": "sgd", "lr": 0.1},
                              run={"seed": 7}, conditioning={"per_batch": 3, "alpha": 0.7}))
    torch.manual_seed(0)
    t = make_trainee(cfg, OBJ, FEATS, torch.device("cpu"))
    scores, labels, cat, num = random_batch(200, 3, 1, [0.3, 0.2, 0.4])
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    # by hand: the step's preferences, each scored alone, the loss per objective
    w = np.random.default_rng([7, 5]).dirichlet([0.7] * 3, size=3)
    fn = get_loss(loss)
    t.model.zero_grad()
    per_vector = [fn(t.model.score(scores, cat, num, torch.tensor(w[p], dtype=torch.float32)),
                     labels) for p in range(3)]
    total = sum((torch.tensor(w[p], dtype=torch.float32) * per_vector[p]).sum()
                for p in range(3)) / 3
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in t.model.named_parameters()}
    t.model.step = 5                                       # the loop's global step
    step = make_step(t.model, fn, {}, t.weighting, t.optimizer)
    losses = step(scores, labels, cat, num, 5, 0)
    torch.testing.assert_close(losses, torch.stack(per_vector).detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(t.weighting.weights(), torch.tensor(w.mean(0),
                                                                   dtype=torch.float32))
    for n, p in t.model.named_parameters():
        torch.testing.assert_close(p.detach() - before[n], -0.1 * grads[n], rtol=1e-4,
                                   atol=1e-7, msg=n)


def test_a_step_out_of_sync_with_the_sampled_preferences_is_an_error():
    from trainables.losses import get_loss
    from trainables.step import make_step
    from trainables.trainee import make_trainee
    t = make_trainee(resolve_config(_cfg()), OBJ, FEATS, torch.device("cpu"))
    step = make_step(t.model, get_loss("rank_auc"), {}, t.weighting, t.optimizer)
    scores, labels, cat, num = random_batch(50, 3, 1, [0.3, 0.2, 0.4])
    with pytest.raises(RuntimeError, match="step 3 scored with the preferences of step 0"):
        step(scores, labels, cat, num, 3, 0)


# --- training and the grid's metrics --------------------------------------------------------

@pytest.mark.parametrize("family", sorted(MODELS))
def test_conditioned_training_runs_for_every_model(family):
    h = train_loop_per_worker(_cfg(family))
    m = h[-1]
    assert m["points"] == 10 and len(h) == 1
    prefs = np.array([[m[f"p{i}/pref/{o}"] for o in OBJ] for i in range(10)])
    np.testing.assert_allclose(prefs, das_dennis(3, 3), atol=1e-6)
    b = m["best_point"]
    assert m["auc_sum"] == max(m[f"p{i}/auc_sum"] for i in range(10)) == m[f"p{b}/auc_sum"]
    for o in OBJ:
        assert m[f"auc/{o}"] == m[f"p{b}/auc/{o}"] and m[f"pref/{o}"] == m[f"p{b}/pref/{o}"]
        assert 0.3 < m[f"p{b}/auc/{o}"] <= 1 and np.isfinite(m[f"loss/{o}"])
        assert f"p{b}/gauc/{o}" in m


def test_grid_metrics_are_the_metrics_of_the_models_scores_at_each_preference(tmp_path):
    from trainables.checkpoints import load_model
    from trainables.data import load_dataset, resolve_data
    cfg = _cfg(optim={"lr": 0.02, "batch_size": 256, "epochs": 2},
               run={"threads": 1, "verbose": False, "checkpoint_dir": str(tmp_path)})
    m = train_loop_per_worker(cfg)[-1]
    model, payload = load_model(tmp_path)
    assert isinstance(model, ConditionedModel)
    path, objectives = resolve_data(cfg["data"])
    v = load_dataset(path, objectives, splits=["valid"]).tensors("valid", "cpu")
    spread = []
    for i in range(m["points"]):
        w = torch.tensor([m[f"p{i}/pref/{o}"] for o in OBJ])
        s = model.score(v.scores, v.cat, v.num, w).detach()
        aucs = auc_per_objective(s, v.labels).tolist()
        gaucs = gauc_per_objective(s, v.labels, v.user).tolist()
        for k, o in enumerate(OBJ):
            assert abs(aucs[k] - m[f"p{i}/auc/{o}"]) < 1e-6, (i, o)
            assert abs(gaucs[k] - m[f"p{i}/gauc/{o}"]) < 1e-6, (i, o)
        spread.append(aucs)
    assert np.ptp(np.array(spread), axis=0).max() > 1e-3     # the preference matters


def test_resume_draws_the_same_preferences_as_an_uninterrupted_run(tmp_path):
    run = {"threads": 1, "verbose": False, "seed": 5}
    straight = train_loop_per_worker(_cfg(optim={"lr": 0.02, "batch_size": 512, "epochs": 2},
                                          run=run))
    train_loop_per_worker(_cfg(optim={"lr": 0.02, "batch_size": 512, "epochs": 1},
                               run={**run, "checkpoint_dir": str(tmp_path)}))
    resumed = train_loop_per_worker(_cfg(optim={"lr": 0.02, "batch_size": 512, "epochs": 2},
                                         run={**run, "resume_from": str(tmp_path)}))
    assert len(resumed) == 1
    for k in ("auc_sum", "p3/auc/buy", "loss/click", "weight/like"):
        assert resumed[0][k] == pytest.approx(straight[1][k], rel=1e-5, abs=1e-7), k


def test_a_nan_loss_stops_the_run_naming_step_objective_and_preference():
    from trainables.loop import TrainingDiverged
    from trainables.trainee import make_trainee
    t = make_trainee(resolve_config(_cfg(run={"seed": 2})), OBJ, FEATS, torch.device("cpu"))
    window = torch.zeros(3, 4, 3)
    window[1, 2, 1] = float("nan")
    w = np.random.default_rng([2, 11]).dirichlet([1.0] * 3, size=4)[2]
    with pytest.raises(TrainingDiverged, match=rf"'like' became nan at step 11 \(epoch 0\) "
                                               rf"under preference click {w[0]:.3f}"):
        t.diverged(window, 10, OBJ, 0)


def test_at_reports_that_preference_at_the_top_level():
    m = train_loop_per_worker(_cfg(conditioning={"grid": 2, "at": {"buy": 3, "click": 1}}))[-1]
    assert m["points"] == 6 and "p6/auc_sum" not in m
    assert [m[f"pref/{o}"] for o in OBJ] == [0.25, 0.0, 0.75]


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("over,pattern", [
    ({"conditioning": {"alfa": 1}}, r"unknown key\(s\) conditioning.alfa; allowed in "
                                    r"conditioning: alpha, at, grid, inject, per_batch"),
    ({"conditioning": {"alpha": 0}}, r"conditioning.alpha = 0: must be a number in \[0.01"),
    ({"conditioning": {"per_batch": 2.5}}, r"conditioning.per_batch = 2.5: must be an integer"),
    ({"conditioning": {"grid": 0}}, r"conditioning.grid = 0: must be null \(automatic\) or"),
    ({"conditioning": {"grid": 50}}, r"conditioning.grid = 50: gives 1326 points for 3 "
                                     r"objectives; at most 1001.*null for 10"),
    ({"conditioning": {"inject": "scores"}}, r"conditioning.inject = 'scores': allowed: features"),
    ({"conditioning": {"at": {"views": 1}}}, r"conditioning.at names unknown objective"),
    ({"conditioning": [1]}, r"section 'conditioning' must be a mapping"),
    ({"weighting": {"kind": "pe_ltr"}}, r"weighting.kind = 'pe_ltr'.*weights every step by "
                                        r"the sampled preference"),
    ({"weighting": {"kind": "static", "weights": {"buy": 1, "click": 0, "like": 0}}},
     r"weighting.kind = 'static' with .*weights.*sampled preference"),
    ({"population": [{"optim": {"lr": 0.1}}]}, r"both conditioning and population"),
])
def test_config_errors(over, pattern):
    with pytest.raises(ValueError, match=pattern):
        resolve_config(_cfg(**over))


def test_absent_or_null_conditioning_is_not_conditioned():
    assert "conditioning" not in resolve_config({**_cfg(), "conditioning": None})
    assert resolve_config(_cfg(conditioning={}))["conditioning"] == {
        "alpha": 1.0, "per_batch": 4, "grid": None, "inject": "features", "at": None}


def _space(tmp_path, conditioning: str, extra: str = "") -> Path:
    p = tmp_path / "c.yaml"
    p.write_text("name: cond\ndata: {source: synthetic, rows: 3000, objectives: [click, like, "
                 "buy], seed: 3}\nmodel: {family: harmonrank, d_model: {choice: [4, 8]}}\n"
                 "optim: {lr: {loguniform: [0.005, 0.02]}, batch_size: 512, epochs: 1}\n"
                 f"conditioning: {conditioning}\n"
                 "search: {algorithm: random, num_samples: 2, max_concurrent: 2}\n"
                 "resources: {cpus_per_worker: 1}\ntracking: {wandb: {mode: disabled}}\n" + extra)
    return p


@pytest.mark.parametrize("conditioning,extra,pattern", [
    ("{alpha: {uniform: [0.5, 2]}}", "", r"conditioning.alpha = .*values are fixed"),
    ("{alfa: 1}", "", r"conditioning.alfa = 1: unknown key; allowed in conditioning"),
    ("{alpha: 0}", "", r"conditioning.alpha = 0: must be a number"),
    ("{}", "weighting: {kind: pe_ltr}\n", r"weighting.kind = 'pe_ltr'"),
])
def test_space_errors(tmp_path, conditioning, extra, pattern):
    from search.space import SpaceError, load_space
    with pytest.raises(SpaceError, match=pattern):
        load_space(_space(tmp_path, conditioning, extra))


def test_space_passes_the_section_through(tmp_path):
    from search.space import load_space
    s = load_space(_space(tmp_path, "{per_batch: 2}"))
    assert s.param_space()["conditioning"] == {"per_batch": 2}
    assert s.fixed_config()["conditioning"] == {"per_batch": 2}
    plain = load_space(Path(__file__).parent.parent / "spaces" / "quickstart.yaml")
    assert "conditioning" not in plain.param_space()


# --- results, pick and export, from an experiment folder laid out as Tune does ------------

def _fake_trial(exp: Path, cfg: dict, tid: str = "abc12_00000") -> None:
    """Train ``cfg`` and write what a Tune trial writes: result.json lines,
    checkpoint_<n>/model.pt, params.json and resolved_config.json."""
    tdir = exp / f"{tid}-trial"
    tdir.mkdir(parents=True)
    epochs = []

    def report(metrics, checkpoint_dir=None):
        epochs.append(metrics)
        line = {**metrics, "trial_id": tid, "timestamp": len(epochs), "done": False}
        with open(tdir / "result.json", "a") as f:
            f.write(json.dumps(line) + "\n")
        if checkpoint_dir:
            shutil.copytree(checkpoint_dir, tdir / f"checkpoint_{len(epochs) - 1:06d}")

    train_loop_per_worker(cfg, report=report)
    (tdir / "params.json").write_text(json.dumps(cfg))
    (tdir / "resolved_config.json").write_text(json.dumps(resolve_config(cfg), default=str))
    (exp / "paretune.json").write_text(json.dumps({"objectives": OBJ}))


def _valid(cfg):
    from trainables.data import load_dataset, resolve_data
    path, objectives = resolve_data(cfg["data"])
    return load_dataset(path, objectives, splits=["valid"]).tensors("valid", "cpu")


def test_grid_points_become_frontier_rows_and_export_round_trips(tmp_path, capsys):
    from analysis.__main__ import main
    from analysis.results import load_results, row_config
    from trainables.serve import load
    cfg = _cfg(optim={"lr": 0.02, "batch_size": 256, "epochs": 2})
    _fake_trial(tmp_path / "exp", cfg)
    df = load_results(tmp_path / "exp")
    assert df["trial_id"].tolist() == [f"abc12_00000.p{i}" for i in range(10)]
    assert df["point"].tolist() == list(range(10))
    np.testing.assert_allclose(df[[f"pref/{o}" for o in OBJ]].to_numpy(), das_dennis(3, 3),
                               atol=1e-6)
    np.testing.assert_allclose(df[[f"weight/{o}" for o in OBJ]].to_numpy(), das_dennis(3, 3),
                               atol=1e-6)
    assert row_config(df.iloc[4])["conditioning"]["at"] == {
        o: float(df[f"pref/{o}"][4]) for o in OBJ}
    assert main(["frontier", str(tmp_path / "exp"), "--wandb", "disabled"]) == 0
    assert "abc12_00000.p" in capsys.readouterr().out
    assert main(["pick", str(tmp_path / "exp"), "--rule", "ideal"]) == 0
    picked = capsys.readouterr().out.splitlines()[0]
    assert "; preference click " in picked
    # export a point; the exported model at its preference gives the reported AUCs
    i = 7
    out = tmp_path / "served"
    assert main(["export", str(tmp_path / "exp"), "--point", "abc12_00000.p7",
                 "--out", str(out)]) == 0
    info = json.loads((out / "preference.json").read_text())
    assert info["preference"] == {o: float(df[f"pref/{o}"][i]) for o in OBJ}
    torch.load(out / "model.pt", weights_only=True)
    served = load(out)
    v = _valid(cfg)
    aucs = auc_per_objective(served.score(v.scores, v.cat, v.num), v.labels).tolist()
    for k, o in enumerate(OBJ):
        assert abs(aucs[k] - df[f"auc/{o}"][i]) < 1e-6
    corners = served.score(v.scores.numpy(), v.cat.numpy(), v.num.numpy(), np.eye(3))
    assert corners.shape == (3, len(v.labels))
    with pytest.raises(ValueError, match=r"num must be \(n, 1\)"):
        served.score(v.scores, v.cat, v.num[:, :0])


def test_export_of_an_ordinary_trial_and_of_a_population_member(tmp_path):
    from analysis.export import export_point
    from analysis.results import load_results
    from trainables.serve import load
    plain = {**_cfg("mlp"), "weighting": {"kind": "static", "weights": [1, 0, 1]}}
    plain.pop("conditioning")
    pop = {**plain, "population": [{"optim": {"lr": 0.02}}, {"run": {"seed": 4}}]}
    _fake_trial(tmp_path / "a", plain)
    _fake_trial(tmp_path / "b", pop)
    v = _valid(plain)
    for exp, i in ((tmp_path / "a", 0), (tmp_path / "b", 1)):
        df = load_results(exp)
        folder = export_point(df, i, exp / "out")
        served = load(folder)
        assert served.preference is None
        aucs = auc_per_objective(served.score(v.scores, v.cat, v.num), v.labels).tolist()
        for k, o in enumerate(OBJ):
            assert abs(aucs[k] - df[f"auc/{o}"][i]) < 1e-6
        with pytest.raises(ValueError, match="not trained conditioned"):
            served.score(v.scores, v.cat, v.num, [1, 0, 0])
    assert "population" not in load(tmp_path / "b" / "out").config


def test_preference_vector_errors():
    np.testing.assert_allclose(preference_vector({"buy": 2}, OBJ), [0, 0, 1])
    with pytest.raises(ValueError, match="has 2 values for 3 objectives"):
        preference_vector([1, 2], OBJ)
    with pytest.raises(ValueError, match="not all 0"):
        preference_vector([0, 0, 0], OBJ)


# --- a conditioned search, end to end ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.ray
def test_a_conditioned_search_gives_grid_points_on_the_frontier(tmp_path, ray_cluster, capsys):
    from analysis.__main__ import main
    from analysis.results import load_results
    from search.runner import run
    exp = run(str(_space(tmp_path, "{grid: 3}")), storage=tmp_path / "exp", name="cond")
    df = load_results(exp)
    assert (df["status"] == "TERMINATED").all() and len(df) == 2 * 10
    assert df["trial_id"].str.contains(r"\.p\d+$").all()
    assert main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    frontier = (exp / "analysis" / "frontier.csv").read_text()
    assert ".p" in frontier and "pref/click" in frontier.splitlines()[0]
    assert main(["export", str(exp), "--point", "knee", "--out", str(tmp_path / "k")]) == 0
    assert json.loads((tmp_path / "k" / "preference.json").read_text())["preference"]
