"""End to end on a real local Ray cluster: a search records every trial (failed ones with
their reason), W&B writes one offline run per trial, analysis works on the folder, a
2-worker TorchTrainer trial runs, bad space files fail before Ray starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


def write_space(folder: Path, name: str, **over) -> Path:
    space = {
        "name": name,
        "data": {"source": "synthetic", "rows": 6000, "objectives": ["click", "like", "buy"],
                 "seed": 5, "positive_rates": {"like": 0.05, "buy": 0.03}},
        "model": {"family": "harmonrank", "d_model": 8, "buckets": 50},
        "loss": {"kind": "rank_auc"},
        "weighting": {"kind": "static", "weights": {"simplex": ["click", "like", "buy"]}},
        "optim": {"epochs": 2, "batch_size": 2048},
        "search": {"algorithm": "random", "num_samples": 2, "max_concurrent": 2,
                   "max_failures": 0},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1},
        "tracking": {"wandb": {"project": "paretune-tests", "mode": "offline"}},
    }
    for k, v in over.items():   # data/optim/search/resources merge; other sections replace
        merge = k in ("data", "optim", "search", "resources") and isinstance(v, dict)
        space[k] = {**space.get(k, {}), **v} if merge else v
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def test_search_records_every_trial_and_its_failure_reason(ray_cluster, tmp_path):
    from analysis.__main__ import main as analysis_main
    from analysis.frontier import pareto_front
    from analysis.results import auc_matrix, load_results
    from search.runner import run
    # grid: two families x two learning rates; lr 1e30 with SGD diverges (NaN loss)
    space = write_space(tmp_path, "grid4",
                        model={"family": {"choice": ["harmonrank", "mlp"]},
                               "harmonrank": {"d_model": 8, "buckets": 50}},
                        loss={"kind": "label_aggregation"},
                        weighting={"kind": "static",
                                   "weights": {"click": 1.0, "like": 1.0, "buy": 1.0}},
                        optim={"optimizer": "sgd", "lr": {"choice": [0.01, 1e30]}},
                        search={"algorithm": "grid", "num_samples": 1})
    exp = run(space, storage=tmp_path / "exp")
    df = load_results(exp)
    assert len(df) == 4
    bad = df[df["config/optim.lr"] > 1]
    good = df[df["config/optim.lr"] < 1]
    assert (bad["status"] == "ERROR").all(), df[["status", "error"]]
    assert bad["error"].str.contains(r"became (?:nan|inf) at step", regex=True).all()
    assert (good["status"] == "TERMINATED").all() and (good["epochs"] == 2).all()
    assert set(good["group"]) == {"harmonrank+label_aggregation", "mlp+label_aggregation"}
    # the frontier only ever holds finished trials
    F = auc_matrix(df, ["click", "like", "buy"])
    assert set(pareto_front(F)) <= set(np.flatnonzero(df["status"] == "TERMINATED"))
    # one offline W&B run per trial (attempt), real run files
    runs = list((exp / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) >= 4
    # analysis works on the folder: tables, plots, a pick with its reason
    assert analysis_main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    for f in ("tradeoffs.png", "parallel.png", "hypervolume.png", "results.csv", "frontier.csv"):
        assert (exp / "analysis" / f).stat().st_size > 0
    assert analysis_main(["pick", str(exp), "--rule", "fair"]) == 0
    assert (exp / "analysis" / "pick-fair.yaml").is_file()
    # rerun the fair pick with two seeds: mean and spread per objective, model saved
    assert analysis_main(["rerun", str(exp), "--point", "fair", "--seeds", "2",
                          "--epochs", "1"]) == 0
    out = next(exp.glob("rerun-*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 2 and summary["epochs"] == 1
    assert {s["seed"] for s in summary["per_seed"]} == {0, 1}
    vals = [s["auc_sum"] for s in summary["per_seed"]]
    assert summary["mean"]["auc_sum"] == pytest.approx(np.mean(vals))
    assert summary["std"]["auc_sum"] == pytest.approx(np.std(vals, ddof=1))
    from trainables.loop import load_model
    _, payload = load_model(out)
    assert payload["config"]["optim"]["epochs"] == 1


def test_random_search_samples_the_simplex_and_reports_weights(ray_cluster, tmp_path):
    from analysis.results import load_results
    from search.runner import run
    exp = run(write_space(tmp_path, "rand2"), storage=tmp_path / "exp")
    df = load_results(exp)
    assert (df["status"] == "TERMINATED").all() and len(df) == 2
    w = df[[f"weight/{o}" for o in ("click", "like", "buy")]].to_numpy()
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    assert not np.allclose(w[0], w[1])           # two different samples
    for d in df["dir"]:
        assert (Path(d) / "resolved_config.json").is_file()
    # one offline W&B run per trial; `analysis frontier` adds the frontier summary run
    from analysis.__main__ import main as analysis_main
    before = set((exp / "wandb").glob("offline-run-*"))
    assert len(before) == 2
    assert analysis_main(["frontier", str(exp)]) == 0        # the space says offline
    new = set((exp / "wandb").glob("offline-run-*")) - before
    assert len(new) == 1
    assert next(next(iter(new)).glob("run-*.wandb")).stat().st_size > 0


def test_a_two_worker_torchtrainer_trial(ray_cluster, tmp_path):
    from analysis.results import load_results
    from search.runner import run
    space = write_space(tmp_path, "ddp", search={"num_samples": 1, "max_concurrent": 1},
                        resources={"workers_per_trial": 2, "cpus_per_worker": 0.9},
                        tracking={"wandb": {"mode": "disabled"}})
    exp = run(space, storage=tmp_path / "exp")
    df = load_results(exp)
    assert df["status"].tolist() == ["TERMINATED"], df[["status", "error"]]
    assert df["epochs"][0] == 2 and 1.5 < df["auc_sum"][0] < 3.0
    assert "checkpoint_path" in df and Path(df["checkpoint_path"][0]).exists()


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("name: x\n  data: [", "YAML"),
    ("name: x\ndata: {source: synthetic}\noptim: {lrr: 0.1}\n", "optim.lrr"),
])
def test_bad_space_fails_fast_before_ray(tmp_path, text, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "search", "run", str(bad), "--storage",
                           str(tmp_path / "exp")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "bad.yaml" in proc.stderr
    assert "ray" not in proc.stderr.lower().replace("array", "")   # Ray never started
    assert not (tmp_path / "exp").exists()
    assert time.time() - t0 < 60


def test_data_errors_fail_fast_before_ray(tmp_path):
    """--data: a missing folder, a folder without meta.yaml, objectives the dataset lacks:
    exit 2 with one error naming the path (and the allowed objectives), no Ray."""
    space = write_space(tmp_path, "d1")
    (tmp_path / "nometa").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "meta.yaml").write_text("objectives: [click, long_view]\n")
    for data, needles in ((tmp_path / "missing", ["missing: no such dataset folder"]),
                          (tmp_path / "nometa", ["meta.yaml: missing"]),
                          (other, ["like, buy are not in this dataset",
                                   "allowed (its meta.yaml): click, long_view"])):
        proc = subprocess.run([sys.executable, "-m", "search", "run", str(space), "--data",
                               str(data), "--storage", str(tmp_path / "exp")],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert f"--data {data}" in proc.stderr
        for needle in needles:
            assert needle in proc.stderr, proc.stderr
        assert not (tmp_path / "exp").exists()


def test_run_with_data_replaces_the_space_data(ray_cluster, tmp_path, kuairand_like_dataset):
    from analysis.results import load_results
    from search.runner import run
    space = write_space(tmp_path, "d2", data={"objectives": ["click", "like", "follow"]},
                        weighting={"kind": "static",
                                   "weights": {"simplex": ["click", "like", "follow"]}},
                        search={"num_samples": 1})
    exp = run(space, storage=tmp_path / "exp", data=kuairand_like_dataset)
    saved = yaml.safe_load((exp / "space.yaml").read_text())
    assert saved["data"] == {"path": str(kuairand_like_dataset.resolve()),
                             "objectives": ["click", "like", "follow"]}
    df = load_results(exp)
    assert (df["status"] == "TERMINATED").all(), df[["status", "error"]]
    assert np.isfinite(df["auc/follow"]).all()


@pytest.mark.parametrize("space", sorted(p.name for p in (ROOT / "spaces").glob("*.yaml")))
def test_every_shipped_space_passes_its_smoke_test(ray_cluster, tmp_path, space,
                                                   kuairand_like_dataset):
    from analysis.results import load_results
    from search.runner import run
    from .test_space import shipped_data
    path = ROOT / "spaces" / space
    exp = run(path, storage=tmp_path / "exp", smoke_test=True,
              data=shipped_data(path, kuairand_like_dataset))
    df = load_results(exp)
    assert len(df) >= 1 and (df["status"] == "TERMINATED").all(), df[["status", "error"]]
    assert (df["epochs"] == 1).all()

