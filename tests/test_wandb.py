"""W&B a person can browse, checked on real offline run files (no mocks): each trial's run
holds one history row per epoch and its *training* config (real weights summing to 1, only
the chosen model family's parameters, no Ray paths), the API key never reaches Ray's
runtime-env logs, and `analysis frontier` writes a summary run in the trials' group with
the trials table and a chart per pair of objectives."""
from __future__ import annotations

import itertools
import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml

OBJECTIVES = ["click", "like", "buy"]
FAKE_KEY = "paretune-test-key-must-not-be-logged-0123456789"


def _space(folder: Path, name: str) -> Path:
    space = {
        "name": name,
        "data": {"source": "synthetic", "rows": 4000, "objectives": OBJECTIVES, "seed": 5,
                 "positive_rates": {"like": 0.05, "buy": 0.03}},
        "model": {"family": {"choice": ["harmonrank", "mlp"]},
                  "harmonrank": {"d_model": 8, "buckets": 50}, "mlp": {"hidden": [16]}},
        "loss": {"kind": "rank_auc"},
        "weighting": {"kind": "static", "weights": {"simplex": OBJECTIVES}},
        "optim": {"epochs": 2, "batch_size": 2048, "lr": {"loguniform": [1e-3, 3e-2]}},
        "search": {"algorithm": "random", "num_samples": 2, "max_concurrent": 2, "seed": 3,
                   "max_failures": 0},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1},
        "tracking": {"wandb": {"project": "paretune-tests", "mode": "offline"}},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def _runs(exp: Path):
    from search.tracking import read_offline_run
    return [read_offline_run(f) for f in sorted((exp / "wandb").glob("offline-run-*/run-*.wandb"))]


def _strings(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _strings(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _strings(v)
    elif isinstance(tree, str):
        yield tree


def test_run_config_is_the_training_config():
    """No Ray: a sampled Tune config -> what a trial's run shows."""
    from search.tracking import run_config
    from search.trial import resolved, trial_config
    resources = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0}
    sampled = {"data": {"path": os.path.join(tempfile.gettempdir(), "ray", "session", "ds"),
                        "objectives": OBJECTIVES},
               "model": {"family": "mlp", "harmonrank": {"d_model": 8}, "mlp": {"hidden": [16]}},
               "weighting": {"kind": "static", "weights": {"__simplex__": {
                   "click": 0.5, "like": 0.25, "buy": 0.125}}},
               "optim": {"lr": 0.01}, "trial_log_path": "x"}
    cfg = run_config(sampled, lambda c: {**resolved(trial_config(
        {k: v for k, v in c.items() if k != "trial_log_path"}, resources)), "trial_log_path": 1})
    w = cfg["weighting"]["weights"]
    assert set(w) == set(OBJECTIVES) and sum(w.values()) == pytest.approx(1.0)
    assert w["buy"] > w["like"] > w["click"]             # -log u: smaller u, larger weight
    assert cfg["model"]["family"] == "mlp" and cfg["model"]["hidden"] == [16]
    assert "d_model" not in cfg["model"] and "harmonrank" not in cfg["model"]
    assert "path" not in cfg["data"] and "trial_log_path" not in cfg     # temporary / Ray's
    json.dumps(cfg)                                                      # plain data


@pytest.mark.ray
def test_trial_runs_hold_history_and_training_config_and_frontier_run(ray_cluster, tmp_path,
                                                                       monkeypatch):
    from analysis.__main__ import main as analysis_main
    from analysis.results import load_results
    from search.__main__ import main as search_main
    from trainables.models import model_params
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)        # offline: set, unused, never logged
    assert search_main(["run", str(_space(tmp_path, "wbtest")),
                        "--storage", str(tmp_path / "exp")]) == 0
    exp = tmp_path / "exp" / "wbtest"
    df = load_results(exp)
    assert len(df) == 2 and (df["status"] == "TERMINATED").all()
    runs = _runs(exp)
    by_id = {r.run_id: r for r in runs}
    assert len(runs) == 2 and set(by_id) == set(df["trial_id"])        # run id = trial id
    for _, row in df.iterrows():
        run = by_id[row["trial_id"]]
        assert run.finished and run.group == "wbtest" and run.project == "paretune-tests"
        rows = [h for h in run.history if f"auc/{OBJECTIVES[0]}" in h]
        assert [h["epoch"] for h in rows] == [1, 2]                    # one row per epoch
        for h in rows:
            assert all(0 < h[f"auc/{o}"] < 1 for o in OBJECTIVES)
            assert h["_step"] == h["training_iteration"]
        assert rows[-1]["auc_sum"] == pytest.approx(row["auc_sum"])
        cfg = run.config
        text = json.dumps(cfg)
        assert "__simplex__" not in text and "trial_log_path" not in cfg
        assert not any(s.startswith(tempfile.gettempdir()) for s in _strings(cfg))
        w = cfg["weighting"]["weights"]
        assert set(w) == set(OBJECTIVES) and sum(w.values()) == pytest.approx(1.0)
        family = cfg["model"]["family"]
        assert set(cfg["model"]) == {"family"} | set(model_params(family))
        resolved = json.loads((Path(row["dir"]) / "resolved_config.json").read_text())
        for section in ("model", "loss", "weighting", "optim"):
            assert cfg[section] == resolved[section], section
        assert cfg["trial_id"] == row["trial_id"]
        assert cfg["node_id"].startswith(row["node"]) and cfg["hostname"] == row["host"]
    # the key went nowhere in Ray's logs (Ray's callback passes it as a runtime_env var)
    import ray._private.worker as worker
    logs = Path(worker._global_node.get_session_dir_path()) / "logs"
    for f in logs.rglob("*"):
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f.name

    # the frontier run: same group, trials table with config, a chart per objective pair
    assert analysis_main(["frontier", str(exp)]) == 0
    (frontier,) = [r for r in _runs(exp) if r.run_id not in by_id]
    assert frontier.finished and frontier.group == "wbtest"
    assert frontier.config["experiment"] == "wbtest"
    logged = {k for h in frontier.history for k in h}
    for a, b in itertools.combinations(OBJECTIVES, 2):
        assert f"tradeoff/{a}-vs-{b}_table/_type" in logged
        chart = frontier.config[f"_wandb/visualize/tradeoff/{a}-vs-{b}"]
        assert chart["panel_config"]["fieldSettings"] == {"x": f"auc/{a}", "y": f"auc/{b}"}
    for png in ("tradeoffs", "parallel", "hypervolume"):
        assert f"plot/{png}/_type" in logged
    (table_file,) = frontier.path.parent.glob("files/media/table/trials_*.table.json")
    table = json.loads(table_file.read_text())
    cols = table["columns"]
    for c in ["model.family", "loss.kind", "optim.lr", "on_frontier"] + \
            [f"weighting.weights.{o}" for o in OBJECTIVES] + [f"auc/{o}" for o in OBJECTIVES]:
        assert c in cols, c
    assert len(table["data"]) == 2
    for r in table["data"]:
        rec = dict(zip(cols, r))
        assert sum(rec[f"weighting.weights.{o}"] for o in OBJECTIVES) == pytest.approx(1.0)
        assert rec["on_frontier"] in (True, False)
