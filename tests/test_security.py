"""Files from an experiment folder are read as data, never unpickled: a crafted model.pt or
NSGA-II searcher state that would run code when unpickled is refused (and runs nothing),
while paretune's own checkpoints and searcher states still round-trip exactly."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from ray import tune
from ray.tune.search import Searcher

from search.nsga2 import NSGA2Searcher, SearcherStateError
from trainables.config import resolve_config
from trainables.data import load_dataset
from trainables.loop import (CHECKPOINT_FILE, UnsafeCheckpoint, _save_checkpoint, load_model,
                             predict, train_loop_per_worker)
from trainables.models import FeatureSpec, build_model

from .conftest import OBJECTIVES

# torch notes that the crafted plain pickles use a newer pickle protocol than its own
crafted = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


def _touch(path):
    with open(path, "w") as fh:
        fh.write("ran")
    return 0


class _Crafted:
    """Unpickling this calls _touch(marker): what a malicious file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def _crafted_files(folder, name, marker):
    """The same malicious object written as torch.save (zip) and as a plain pickle."""
    out = []
    for kind in ("zip", "pickle"):
        d = folder / kind
        d.mkdir()
        if kind == "zip":
            torch.save({"model": _Crafted(marker)}, d / name)
        else:
            (d / name).write_bytes(pickle.dumps({"model": _Crafted(marker)}))
        out.append(d)
    return out


@crafted
def test_a_crafted_model_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    for d in _crafted_files(tmp_path, CHECKPOINT_FILE, marker):
        with pytest.raises(UnsafeCheckpoint, match="refused"):
            load_model(d)
        assert not marker.exists()
    # a crafted payload passed to resume (run.resume_from) goes through the same reader
    from trainables.loop import _load_checkpoint
    with pytest.raises(UnsafeCheckpoint):
        _load_checkpoint(tmp_path / "zip")
    assert not marker.exists()


def test_checkpoints_round_trip_with_identical_outputs(small_dataset, tmp_path):
    ds = load_dataset(small_dataset)
    valid = ds.tensors("valid")
    features = FeatureSpec(tuple(ds.categorical.items()), tuple(ds.numeric))
    cfg = resolve_config({"data": {"path": small_dataset},          # a Path: saved as str
                          "model": {"family": "harmonrank", "d_model": 8}})
    torch.manual_seed(3)
    model = build_model("harmonrank", len(OBJECTIVES), features,
                        {k: v for k, v in cfg["model"].items() if k != "family"})
    payload = {"model": model.state_dict(), "config": cfg, "objectives": list(OBJECTIVES),
               "features": {"categorical": dict(ds.categorical), "numeric": list(ds.numeric)},
               "epoch": 1, "step": 7,
               # what other code might hand over: numpy scalars and arrays
               "metrics": {"auc_sum": np.float64(2.5), "epoch": np.int64(1)},
               "weighting": {"weights": np.array([0.2, 0.8])}, "member_errors": {}}
    _save_checkpoint(tmp_path, payload)
    loaded, p = load_model(tmp_path)
    assert torch.equal(predict(model.eval(), valid, 8192), predict(loaded, valid, 8192))
    assert p["config"]["data"]["path"] == str(small_dataset)
    assert p["metrics"] == {"auc_sum": 2.5, "epoch": 1}
    assert type(p["metrics"]["auc_sum"]) is float and type(p["metrics"]["epoch"]) is int
    assert torch.equal(p["weighting"]["weights"], torch.tensor([0.2, 0.8], dtype=torch.float64))
    with pytest.raises(TypeError, match="cannot go into a checkpoint"):
        _save_checkpoint(tmp_path / "bad", {**payload, "metrics": {"x": object()}})


def test_a_training_checkpoint_loads_as_weights_only_and_resumes_exactly(small_dataset,
                                                                         tmp_path):
    cfg = {"data": {"path": str(small_dataset)}, "model": {"family": "mlp"},
           "weighting": {"kind": "self_evolving"},
           "optim": {"epochs": 2, "batch_size": 8192},
           "run": {"verbose": False, "device": "cpu", "gauc": False}}
    straight = train_loop_per_worker(cfg)
    first = train_loop_per_worker({**cfg, "optim": {**cfg["optim"], "epochs": 1},
                                   "run": {**cfg["run"], "checkpoint_dir": str(tmp_path)}})
    payload = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)   # plain data only
    assert payload["epoch"] == 1 and payload["metrics"]["auc_sum"] == first[0]["auc_sum"]
    rest = train_loop_per_worker({**cfg, "run": {**cfg["run"], "resume_from": str(tmp_path)}})
    assert [h["epoch"] for h in rest] == [2]
    for k in [f"auc/{o}" for o in OBJECTIVES] + [f"weight/{o}" for o in OBJECTIVES]:
        assert rest[0][k] == straight[1][k], k                         # bit for bit


# --- the NSGA-II searcher's state ------------------------------------------------------------

SPACE = {"optim": {"lr": tune.loguniform(1e-3, 1e-1), "epochs": 3},
         "model": {"family": tune.choice(["mlp", "harmonrank"]), "k": tune.randint(1, 5)},
         "weighting": {"weights": {"__simplex__": {"a": tune.uniform(1e-9, 1),
                                                   "b": tune.uniform(1e-9, 1)}}}}
METRICS = ["auc/a", "auc/b"]


def _result(cfg):
    x = (np.log10(cfg["optim"]["lr"]) + 3) / 2
    return {"auc/a": float(1 - x), "auc/b": float(1 - np.sqrt(x)) + 0.01 * cfg["model"]["k"]}


def _steps(searcher, start=0, stop_at=None, running=None):
    """Drive like Tune with 2 concurrent slots: suggest, complete the oldest when full or
    when the generation waits. Returns (events, running, next index); stops after
    ``stop_at`` events (for a save) or when the searcher finishes."""
    events, running, t = [], list(running or []), start
    while stop_at is None or len(events) < stop_at:
        if len(running) < 2:
            cfg = searcher.suggest(f"t{t}")
            if cfg is Searcher.FINISHED:
                break
            if cfg is not None:
                events.append(("suggest", f"t{t}", cfg))
                running.append((f"t{t}", cfg))
                t += 1
                continue
        if not running:
            break
        tid, cfg = running.pop(0)
        searcher.on_trial_complete(tid, None if tid == "t3" else _result(cfg),
                                   error=tid == "t3")          # one failed trial
        events.append(("complete", tid, None))
    return events, running, t


@pytest.mark.parametrize("population_trial", [False, True])
@pytest.mark.parametrize("stop_at", [5, 12, 13])
def test_nsga2_state_is_json_and_restore_continues_with_the_same_suggestions(
        tmp_path, stop_at, population_trial):
    def make(**kw):
        return NSGA2Searcher(METRICS, population=4, generations=4, seed=7,
                             population_trial=population_trial, **kw)
    reference, _, _ = _steps(make(param_space=SPACE))
    s = make(param_space=SPACE)
    before, running, t = _steps(s, stop_at=stop_at)
    s.save_to_dir(str(tmp_path), "2024-01-01_00-00-00")
    (f,) = tmp_path.glob("nsga2-searcher-state-*.json")
    state = json.loads(f.read_text())                       # plain JSON
    assert state["format"] == "paretune-nsga2-searcher"
    restored = NSGA2Searcher(["other"], population=2, generations=1)   # settings come back
    restored.restore_from_dir(str(tmp_path))
    after, _, _ = _steps(restored, start=t, running=running)
    assert before + after == reference                      # exactly the same suggestions
    assert restored.generation == 4 and restored.suggest("late") is Searcher.FINISHED


@crafted
def test_a_crafted_searcher_state_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    s = NSGA2Searcher(METRICS, population=4, generations=2, seed=0, param_space=SPACE)
    for d in _crafted_files(tmp_path, "nsga2-searcher-state-x.json", marker):
        with pytest.raises(SearcherStateError, match="not a JSON searcher state"):
            s.restore(str(d / "nsga2-searcher-state-x.json"))
        with pytest.raises(SearcherStateError):
            s.restore_from_dir(str(d))
        assert not marker.exists()
    # a pickled state as Tune's default Searcher.save_to_dir names it is never read
    old = tmp_path / "old"
    old.mkdir()
    (old / "searcher-state-2024.pkl").write_bytes(pickle.dumps(_Crafted(marker)))
    with pytest.raises(SearcherStateError, match="pickled state, which is not read"):
        s.restore_from_dir(str(old))
    # JSON, but not a searcher state
    (old / "nsga2-searcher-state-1.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(SearcherStateError, match="not a paretune NSGA-II searcher state"):
        s.restore_from_dir(str(old))
    assert not marker.exists()
    # a valid state still restores after the refusals
    s.save_to_dir(str(old), "2")
    assert os.path.exists(old / "nsga2-searcher-state-2.json")
    s.restore_from_dir(str(old))                 # the newest name: "-2", a valid state
