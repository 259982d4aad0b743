"""The budget comparison benchmark (benchmarks/frontier.py): its arguments, the space
files it generates (equal budgets), the hypervolume curves, and one tiny real run."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import frontier as bf


# --- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv,pattern", [
    (["--methods", "random,bayes"], r"--methods 'random,bayes'.*unknown method\(s\) bayes.*"
                                    r"allowed: random, optuna_nsga2, nsga2, pe_ltr_grid"),
    (["--methods", "random,random"], r"--methods.*distinct"),
    (["--budget", "1"], r"--budget '1': must be an integer >= 2"),
    (["--budget", "many"], r"--budget 'many': must be an integer >= 2"),
    (["--epochs", "0"], r"--epochs '0': must be an integer >= 1"),
    (["--rows", "10"], r"--rows '10': must be an integer >= 2000"),
    (["--objectives", "1"], r"--objectives '1': must be an integer >= 2"),
    (["--objectives", "click,nope"], r"--objectives 'click,nope'.*unknown objective\(s\) nope"),
    (["--objectives", "click"], r"--objectives 'click'.*at least 2"),
    (["--ref", "0.5,0.5"], r"--ref '0.5,0.5'.*3 comma-separated"),
    (["--ref", "1.5"], r"--ref '1.5'"),
    (["--budget", "6", "--pop-size", "7"], r"--pop-size '7': must be an integer >= 2 and <= 6"),
    (["--budget", "2"], r"--budget 2: pe_ltr_grid needs at least one bound vector per "
                        r"objective \(3\)"),
])
def test_bad_arguments_name_the_option_the_value_and_what_is_allowed(argv, pattern, tmp_path):
    with pytest.raises(bf.BenchError, match=pattern):
        bf.parse_args(argv + ["--out", str(tmp_path / "b")])


def test_main_exits_2_with_the_message_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bf.main(["--methods", "grid", "--out", str(tmp_path / "b")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--methods 'grid'" in err and "allowed: random" in err
    assert not (tmp_path / "b").exists()


def test_an_out_folder_holding_results_is_refused(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "paretune.json").write_text("{}")
    with pytest.raises(bf.BenchError, match=r"--out .*already holds experiment\(s\) random"):
        bf.parse_args(["--methods", "random,nsga2", "--out", str(tmp_path)])


def test_defaults():
    a = bf.parse_args([])
    assert a.budget == 28 and a.epochs == 2 and a.rows == 100_000 and a.seed == 0
    assert a.objectives == ["click", "long_view", "buy"]
    assert a.methods == list(bf.METHODS) and a.pop_size == 9 and a.ref == [0.5] * 3
    # the default budget is exactly the 3-objective PE-LTR grid: no handicap for PE-LTR
    assert bf.pe_ltr_partitions(a.budget, 3) == (6, 28)
    planned = bf.plan(a)
    assert planned["pe_ltr_grid"]["models"] == a.budget
    assert planned["pe_ltr_grid"]["space"]["search"]["bounds_total"] == bf.BOUNDS_TOTAL == 0.95
    assert a.out.name.startswith("bench_frontier-") and a.out.parent.name == "experiments"


# --- the generated spaces ----------------------------------------------------------------

def test_pe_ltr_partitions_is_the_largest_grid_within_the_budget():
    assert bf.pe_ltr_partitions(24, 3) == (5, 21)      # C(7, 2) = 21 <= 24 < C(8, 2) = 28
    assert bf.pe_ltr_partitions(21, 3) == (5, 21)
    assert bf.pe_ltr_partitions(4, 3) == (1, 3)
    assert bf.pe_ltr_partitions(2, 3) == (0, 0)
    assert bf.pe_ltr_partitions(35, 4) == (4, 35)


@pytest.mark.parametrize("budget,pop,gens", [(24, 8, 3), (10, 3, 3), (4, 2, 2)])
def test_spaces_load_and_give_equal_budgets(tmp_path, budget, pop, gens):
    from search.space import load_space
    a = bf.parse_args(["--budget", str(budget), "--out", str(tmp_path)])
    planned = bf.plan(a)
    paths = bf.write_spaces(planned, tmp_path)
    assert set(paths) == set(bf.METHODS)
    spaces = {m: load_space(p) for m, p in paths.items()}
    for m in ("random", "optuna_nsga2"):
        assert spaces[m].search["num_samples"] == budget == planned[m]["models"]
        assert spaces[m].search["max_concurrent"] == 2
    assert spaces["optuna_nsga2"].search["algorithm"] == "optuna"
    assert spaces["optuna_nsga2"].search["sampler"] == "nsga2"
    for m in ("nsga2", "population_nsga2"):
        s = spaces[m].search
        assert (s["algorithm"], s["pop_size"], s["generations"]) == ("nsga2", pop, gens)
        assert planned[m]["models"] == pop * gens <= budget
    assert spaces["population_nsga2"].search["population"] is True
    assert spaces["population_nsga2"].search["num_samples"] == gens      # one trial each
    assert spaces["population_nsga2"].resources["cpus_per_worker"] == 2
    assert spaces["nsga2"].resources["cpus_per_worker"] == 1
    pe = spaces["pe_ltr_grid"]
    parts, n = bf.pe_ltr_partitions(budget, 3)
    assert pe.search["partitions"] == parts and len(pe.bound_vectors()) == n <= budget
    assert math.comb(parts + 3, 2) > budget                  # the largest grid that fits
    assert pe.fixed_config()["weighting"]["kind"] == "pe_ltr"
    if n < budget:
        assert "handicap" in planned["pe_ltr_grid"]["note"]
    # the same data, model, loss, epochs and batch size everywhere; W&B off
    cfgs = {m: s.fixed_config() for m, s in spaces.items()}
    for m, c in cfgs.items():
        assert c["data"] == cfgs["random"]["data"]
        assert c["model"] == {"family": "harmonrank", "d_model": 8}
        assert c["loss"] == {"kind": "rank_auc"}
        assert c["optim"]["batch_size"] == 2048
        assert c["optim"]["epochs"] == {"conditioned": a.cond_epochs,
                                        "random+moasha": a.moasha_epochs}.get(m, 2)
        assert spaces[m].tracking["wandb"]["mode"] == "disabled"
        assert spaces[m].objectives == ["click", "long_view", "buy"]
    for m in ("random", "optuna_nsga2", "nsga2", "population_nsga2"):
        assert spaces[m].raw["weighting"] == {"kind": "static",
                                              "weights": {"simplex": spaces[m].objectives}}
        assert spaces[m].raw["optim"]["lr"] == 0.01       # default --lr: one lr for all
    assert spaces["pe_ltr_grid"].raw["optim"]["lr"] == 0.01
    # the methods of benchmarks.frontier_methods
    assert spaces["optuna_gp"].search["sampler"] == "gp"
    assert spaces["optuna_gp"].search["num_samples"] == budget
    moasha = spaces["random+moasha"]
    assert (moasha.search["algorithm"], moasha.search["num_samples"]) == ("random", budget)
    assert moasha.scheduler == {"kind": "moasha", "grace_period": 1, "reduction_factor": 3}
    assert paths["random+moasha"].name == "random_moasha.yaml"      # no '+' in a name
    cond = spaces["conditioned"]
    assert "weighting" not in cond.raw and cond.raw["conditioning"]["per_batch"] == 2
    assert cond.search["num_samples"] == a.cond_trials == 2


@pytest.mark.parametrize("budget,epochs,want", [(28, 4, 8), (28, 2, 4), (4, 2, 1)])
def test_conditioned_epochs_fit_in_30_percent_of_the_budget(tmp_path, budget, epochs, want):
    a = bf.parse_args(["--budget", str(budget), "--epochs", str(epochs), "--out",
                       str(tmp_path / "o"), "--methods", "random,conditioned"])
    assert a.cond_epochs == want
    cost = a.cond_trials * a.cond_epochs * a.cond_per_batch
    assert cost <= max(0.3 * budget * epochs, a.cond_trials * a.cond_per_batch)
    assert f"= {cost} member-epochs" in bf.plan(a)["conditioned"]["note"]


def test_data_option_takes_an_me_dataset_and_its_objectives(tmp_path):
    import yaml
    d = tmp_path / "me"
    d.mkdir()
    (d / "meta.yaml").write_text(yaml.safe_dump({"objectives": ["like", "click", "comment",
                                                                "long_view"]}))
    a = bf.parse_args(["--data", str(d), "--out", str(tmp_path / "o"), "--methods", "random"])
    assert a.objectives == ["click", "long_view", "like"]      # OBJECTIVE_ORDER first
    space = bf.plan(a)["random"]["space"]
    assert space["data"] == {"path": str(d.resolve()), "objectives": a.objectives}
    a = bf.parse_args(["--data", str(d), "--objectives", "comment,like", "--out",
                       str(tmp_path / "o"), "--methods", "random"])
    assert a.objectives == ["comment", "like"]
    with pytest.raises(bf.BenchError, match=r"--objectives 'buy,click'.*unknown objective"
                                          r"\(s\) buy; allowed: a count 2..4 or names from "
                                          r"click, long_view, like, comment"):
        bf.parse_args(["--data", str(d), "--objectives", "buy,click", "--out", str(tmp_path)])
    with pytest.raises(bf.BenchError, match=r"--data .*not an ME dataset folder"):
        bf.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "o")])


def test_lr_search_option(tmp_path):
    a = bf.parse_args(["--lr", "search", "--out", str(tmp_path / "o")])
    planned = bf.plan(a)
    assert planned["random"]["space"]["optim"]["lr"] == {"loguniform": list(bf.LR_RANGE)}
    assert planned["pe_ltr_grid"]["space"]["optim"]["lr"] == bf.PE_LTR_LR
    for bad in ("0", "-1", "fast", "nan"):
        with pytest.raises(bf.BenchError, match="--lr"):
            bf.parse_args(["--lr", bad, "--out", str(tmp_path / "o")])
    with pytest.raises(bf.BenchError, match="--seeds"):
        bf.parse_args(["--seeds", "0", "--out", str(tmp_path / "o")])


# --- hypervolume curves ------------------------------------------------------------------

def _frame():
    """Three one-model trials, a population trial of two members, a failed trial and one
    that never reported; rows deliberately out of finishing order."""
    rows = [  # trial id, dir, status, finished_at, epochs, aucs
        ("b", "d/b", "TERMINATED", 20.0, 2, (0.70, 0.60)),
        ("a", "d/a", "TERMINATED", 10.0, 2, (0.60, 0.70)),
        ("p.m0", "d/p", "TERMINATED", 30.0, 2, (0.75, 0.55)),
        ("p.m1", "d/p", "TERMINATED", 30.0, 2, (0.65, 0.65)),
        ("e", "d/e", "ERROR", 25.0, 1, (0.90, 0.90)),          # failed: adds nothing
        ("c", "d/c", "TERMINATED", 40.0, 2, (0.80, 0.80)),
        ("z", "d/z", "PENDING", math.nan, 0, (math.nan, math.nan)),
    ]
    return pd.DataFrame([{"trial_id": t, "dir": d, "status": s, "finished_at": f, "epochs": e,
                          "auc/x": x, "auc/y": y} for t, d, s, f, e, (x, y) in rows])


def test_hv_curve_matches_hypervolume_of_the_models_finished_so_far():
    from analysis.frontier import hypervolume
    df = _frame()
    ref = [0.5, 0.5]
    c = bf.hv_curve(df, ["x", "y"], ref, start=5.0)
    assert c["models"] == [0, 1, 2, 3, 5, 6, 7]       # a, b, e, p (two members), c, z
    assert c["epochs"] == [0, 2, 4, 5, 9, 11, 11]
    assert c["member_epochs"] == c["epochs"]           # no conditioned trial here
    assert c["seconds"][:6] == [0.0, 5.0, 15.0, 20.0, 25.0, 35.0]
    assert math.isnan(c["seconds"][6])
    entered = [["a"], ["a", "b"], ["a", "b", "e"], ["a", "b", "e", "p.m0", "p.m1"],
               ["a", "b", "e", "p.m0", "p.m1", "c"]]
    for i, ids in enumerate(entered, 1):
        sub = df[df["trial_id"].isin(ids) & (df["status"] == "TERMINATED")]
        want = hypervolume(sub[["auc/x", "auc/y"]].to_numpy(), ref)
        assert c["hv"][i] == pytest.approx(want, abs=1e-12)
    assert c["hv"][1] == pytest.approx(0.1 * 0.2)
    assert c["hv"][6] == c["hv"][5] == pytest.approx(0.3 * 0.3)
    assert np.all(np.diff(c["hv"]) >= 0)
    # HV at a budget counts only trials wholly within it: the population's members enter
    # together at 5 models
    assert bf.hv_at(c, 4) == c["hv"][3] and bf.hv_at(c, 5) == c["hv"][4]
    assert bf.hv_at(c, 0) == 0.0 and bf.hv_at(c, 100) == c["hv"][-1]
    assert bf.marks(24) == [6, 12, 18, 24] and bf.marks(4) == [1, 2, 3, 4]


def test_hv_curve_of_nothing_is_zero():
    assert bf.hv_curve(None, ["x"], [0.5]) == {"models": [0], "epochs": [0],
                                                "member_epochs": [0], "seconds": [0.0],
                                                "hv": [0.0]}


def test_member_epochs_of_a_conditioned_trial_and_a_stopped_one():
    """A conditioned trial (its grid points are rows) is one model costing epochs x
    per_batch; a trial the scheduler stopped at epoch 1 costs 1."""
    from analysis.frontier import hypervolume
    rows = [{"trial_id": "s", "dir": "d/s", "status": "TERMINATED", "finished_at": 1.0,
             "epochs": 1, "point": -1, "auc/x": 0.6, "auc/y": 0.6}]
    rows += [{"trial_id": f"c.p{i}", "dir": "d/c", "status": "TERMINATED", "finished_at": 2.0,
              "epochs": 5, "point": i, "config/conditioning.per_batch": 4,
              "auc/x": 0.6 + 0.05 * i, "auc/y": 0.8 - 0.05 * i} for i in range(3)]
    rows += [{"trial_id": "f", "dir": "d/f", "status": "TERMINATED", "finished_at": 3.0,
              "epochs": 8, "point": -1, "auc/x": 0.72, "auc/y": 0.72}]
    df = pd.DataFrame(rows)
    c = bf.hv_curve(df, ["x", "y"], [0.5, 0.5])
    assert c["models"] == [0, 1, 2, 3] and c["epochs"] == [0, 1, 6, 14]
    assert c["member_epochs"] == [0, 1, 21, 29]
    pts = df[["auc/x", "auc/y"]].to_numpy()
    assert c["hv"][2] == pytest.approx(hypervolume(pts[:4], [0.5, 0.5]))
    assert bf.hv_at(c, 20, "member_epochs") == c["hv"][1]
    assert bf.hv_at(c, 21, "member_epochs") == c["hv"][2]
    from benchmarks.frontier_report import reach
    assert reach(c, c["hv"][2]) == 21 and reach(c, 1.0) is None
    assert reach(c, c["hv"][3] - 1e-12) == 29 if c["hv"][3] > c["hv"][2] else True


# --- a real run ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.ray
def test_a_tiny_benchmark_runs_and_saves_the_plot_and_the_curves(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = bf.main(["--budget", "4", "--epochs", "1", "--rows", "20000",
                  "--methods", "random,pe_ltr_grid,population_nsga2", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "HV(method) / HV(random) at equal member-epochs" in text
    assert "pe_ltr_grid: partitions 1: 3 bound vectors, 3 < budget 4" in text
    png, js = out / "bench_frontier.png", out / "bench_frontier.json"
    assert png.is_file() and png.stat().st_size > 10_000
    doc = json.loads(js.read_text())
    assert doc["reference"]["auc"] == [0.5, 0.5, 0.5]
    assert set(doc["curves"]) == {"random", "pe_ltr_grid", "population_nsga2"}
    models = {"random": 4, "pe_ltr_grid": 3, "population_nsga2": 4}
    for m, c in doc["curves"].items():
        hv = np.array(c["hv"], dtype=float)
        assert np.all(np.diff(hv) >= 0), (m, hv)
        assert hv[-1] > 0 and c["models"][-1] == models[m]
        assert np.all(np.diff(c["models"]) > 0)
        t = doc["table"][m]
        assert t["models"] == t["finished"] == models[m] and t["epochs"] == models[m]
        assert t["error"] is None and t["wall_s"] > 0
        assert (out / m / "paretune.json").is_file() and (out / f"{m}.yaml").is_file()
    # the population's two members of a generation enter together
    assert doc["curves"]["population_nsga2"]["models"] == [0, 2, 4]
    assert doc["table"]["random"]["ratio_vs_random"]["4"] == 1.0     # 4 models x 1 epoch
    # the input scores as baselines: each score column's AUCs on the valid split
    from sklearn.metrics import roc_auc_score
    import pandas as pd
    inputs = doc["input_scores"]
    assert "input scores as baselines" in text and len(inputs["names"]) == 3
    folder = inputs["where"].split(" split of ", 1)[1]
    valid = pd.read_parquet(f"{folder}/valid.parquet")
    objectives = doc["settings"]["objectives"]
    want = [[roc_auc_score(valid[f"label_{o}"], valid[n]) for o in objectives]
            for n in inputs["names"]]
    np.testing.assert_allclose(inputs["auc"], want, atol=1e-9)
    assert set(inputs["methods"]) == set(doc["curves"])
    for m, r in inputs["methods"].items():
        assert 0 <= r["not_beating"] <= r["frontier"]
        assert r["hv_minus_inputs"] == pytest.approx(doc["table"][m]["final_hv"] - inputs["hv"])


@pytest.mark.slow
@pytest.mark.ray
def test_the_member_epoch_methods_run_and_count_their_cost(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = bf.main(["--budget", "4", "--epochs", "2", "--rows", "20000", "--moasha-epochs", "3",
                  "--lr", "search", "--methods", "random,conditioned,random+moasha,optuna_gp",
                  "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "goal conditioned:" in text and "goal random+moasha:" in text
    doc = json.loads((out / "bench_frontier.json").read_text())
    t = doc["table"]
    assert t["random"]["member_epochs"] == t["optuna_gp"]["member_epochs"] == 8
    assert t["conditioned"]["models"] == 2 and t["conditioned"]["member_epochs"] == 2 * 1 * 2
    assert 4 <= t["random+moasha"]["member_epochs"] <= 4 * 3          # stopped trials cost less
    assert (out / "random_moasha" / "paretune.json").is_file()
    g = doc["goals"]
    assert g["conditioned"]["spent"] == pytest.approx(4 / 8)
    assert g["conditioned"]["hv_ratio"] == pytest.approx(
        t["conditioned"]["final_hv"] / t["random"]["final_hv"])
