"""benchmarks.gpu_sweep: population trials vs packed one-model trials over the same fixed
configs, both through `search run`. The flags and the two spaces are checked without Ray;
a tiny CPU sweep runs end to end (ray, slow: two local Rays, about 2 minutes on 2 cores);
a small CUDA sweep runs where a GPU is present (gpu)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from benchmarks import gpu_sweep

TINY = ["--rows", "20000", "--epochs", "1", "--configs", "8", "--members-per-trial", "4"]


def _key(weights: dict, lr: float) -> tuple:
    return tuple(weights[o] for o in sorted(weights)) + (lr,)


@pytest.mark.parametrize("flags,says", [
    (["--gpu-fraction", "1.5"], "--gpu-fraction '1.5': must be a GPU share in (0, 1]"),
    (["--gpu-fraction", "0"], "--gpu-fraction '0': must be a GPU share in (0, 1]"),
    (["--gpu-fraction", "1/0"], "--gpu-fraction '1/0': must be a GPU share"),
    (["--configs", "10", "--lrs", "4"], "--configs 10: must be a multiple of --lrs 4"),
    (["--members-per-trial", "0"], "--members-per-trial '0': must be an integer >= 1"),
    (["--modes", "population,bogus"], "a comma-separated list of distinct modes from "
                                      "population, packed"),
    (["--objectives", "1"], "--objectives '1': must be an integer >= 2"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial '0': must be a number > 0"),
])
def test_a_bad_flag_is_a_usage_error_naming_it(tmp_path, capsys, flags, says):
    with pytest.raises(SystemExit) as e:
        gpu_sweep.main([*TINY, "--device", "cpu", "--out", str(tmp_path), *flags])
    assert e.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_sweep.main([*TINY, "--device", "cuda", "--out", str(tmp_path)])
    assert e.value.code == 2 and "no CUDA device is available here" in capsys.readouterr().err


def test_smoke_test_is_the_tiny_cpu_size(tmp_path):
    a = gpu_sweep.parse_args(["--smoke-test", "--out", str(tmp_path)])
    assert (a.rows, a.epochs, a.configs, a.members_per_trial, a.device) == \
        (20000, 1, 8, 4, "cpu")


def test_both_spaces_plan_the_same_configs_with_the_gpu_shares(tmp_path):
    """The two space files, as written for a GPU: the same grid (seeded weights x lrs),
    as 2 population trials holding half the GPU and half the CPUs each, or 8 trials of
    1/16 GPU and 1 CPU each."""
    from search.searchers.grid import member_points
    from search.space import load_space
    a = gpu_sweep.parse_args([*TINY, "--device", "cpu", "--num-cpus", "8",
                              "--out", str(tmp_path)])
    a.dev = torch.device("cuda")              # the spaces only: nothing runs
    weights, rates = gpu_sweep.draw_configs(a.configs, a.lrs, a.objectives, a.seed)
    assert (weights, rates) == gpu_sweep.draw_configs(8, 4, a.objectives, 0)   # seeded
    assert len(weights) == 2 and len(rates) == 4 and 3e-3 <= min(rates) <= max(rates) <= 3e-2
    assert all(abs(sum(w.values()) - 1) < 1e-5 for w in weights)
    spaces = {}
    for mode in gpu_sweep.MODES:
        p = tmp_path / f"{mode}.yaml"
        p.write_text(yaml.safe_dump(gpu_sweep.space(a, mode, weights, rates)))
        spaces[mode] = load_space(p)
    pop, packed = spaces["population"], spaces["packed"]
    assert pop.planned_trials() == 2 and packed.planned_trials() == 8
    assert pop.resources["gpus_per_worker"] == 0.5
    assert packed.resources["gpus_per_worker"] == 0.0625
    assert pop.resources["cpus_per_worker"] == 4 and packed.resources["cpus_per_worker"] == 1
    members = member_points(pop._tree)
    assert sorted(_key(m["weighting"]["weights"], m["optim"]["lr"]) for m in members) == \
        gpu_sweep.config_keys(weights, rates)
    ps = packed.param_space()
    grid = [_key(w, lr) for w in ps["weighting"]["weights"]["grid_search"]
            for lr in ps["optim"]["lr"]["grid_search"]]
    assert sorted(grid) == gpu_sweep.config_keys(weights, rates)


def _check_result(r: dict, out, printed: str, configs: int) -> None:
    from analysis.frontier import hypervolume
    planned = sorted(_key(c["weights"], c["lr"]) for c in r["configs"])
    assert len(planned) == configs == len(set(planned))
    for mode, m in r["modes"].items():
        assert m["finished"] == m["models"] == configs and m["configs_match"] is True
        assert sorted(_key(x["weights"], x["lr"]) for x in m["rows"]) == planned
        F = [[math.nan if v is None else v for v in x["auc"]] for x in m["rows"]]
        assert m["hv"] == hypervolume(F, r["reference"]) and m["hv"] > 0
        assert r["reference"] == [0.5] * len(r["settings"]["objectives"])
        assert m["models_per_min"] == pytest.approx(configs / m["wall_s"] * 60)
        assert (out / "spaces" / f"{mode}.yaml").is_file()
        assert (out / "experiments").is_dir()
        line = next(ln for ln in printed.splitlines() if ln.startswith(mode + " "))
        assert f"{m['hv']:.5f}" in line and f"{m['wall_s']:.1f}" in line
    pop, packed = r["modes"]["population"], r["modes"]["packed"]
    assert pop["trials"] == 2 and packed["trials"] == configs
    assert r["speed_ratio"] == pytest.approx(packed["wall_s"] / pop["wall_s"])
    assert r["hv_ratio"] == pytest.approx(pop["hv"] / packed["hv"])
    assert f"speed {r['speed_ratio']:.2f}x" in printed and f"HV {r['hv_ratio']:.4f}" in printed


@pytest.mark.ray
@pytest.mark.slow
def test_a_tiny_cpu_sweep_trains_the_same_configs_both_ways(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert gpu_sweep.main([*TINY, "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    r = json.loads((out / gpu_sweep.JSON_NAME).read_text())
    assert r["settings"]["device"] == "cpu" and r["settings"]["configs"] == 8
    _check_result(r, out, printed, 8)
    # a population member gets exactly the gradient it would get alone: same AUCs
    aucs = {mode: {_key(x["weights"], x["lr"]): x["auc"] for x in m["rows"]}
            for mode, m in r["modes"].items()}
    for k, v in aucs["population"].items():
        assert v == pytest.approx(aucs["packed"][k], abs=1e-4)


@pytest.mark.gpu
@pytest.mark.ray
def test_a_small_cuda_sweep_packs_trials_on_the_gpu(tmp_path, capsys):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    out = tmp_path / "sweep"
    assert gpu_sweep.main([*TINY, "--device", "cuda", "--gpu-fraction", "1/4",
                           "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    r = json.loads((out / gpu_sweep.JSON_NAME).read_text())
    assert r["settings"]["device"].startswith("cuda")
    assert r["modes"]["population"]["gpus_per_trial"] == 0.5
    assert r["modes"]["packed"]["gpus_per_trial"] == 0.25
    _check_result(r, out, printed, 8)
    assert "goal: 8 configs under 10 min on one GPU" in printed
