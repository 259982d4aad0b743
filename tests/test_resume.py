"""A sweep whose driver is SIGKILLed mid-way resumes from its folder and completes,
losing no finished trial and not re-running it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .test_search import write_space

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


def _finished(exp: Path) -> dict[str, str]:
    """Trial folder -> result.json text, for the trials Tune has recorded as finished.

    (A trial can write its last epoch just before the kill without Tune recording it;
    such a trial counts as unfinished and is continued from its last recorded checkpoint,
    which may repeat its last epoch: deterministically, with the same numbers.)"""
    from analysis.results import _statuses
    out = {}
    for name, status in _statuses(exp).items():
        f = exp / name / "result.json"
        if status == "TERMINATED" and f.is_file():
            out[name] = f.read_text()
    return out


@pytest.mark.parametrize("search", [
    {"num_samples": 5, "max_concurrent": 1},
    # NSGA-II: 5 trials = generations of 3 and the searcher's state restored mid-way
    {"algorithm": "nsga2", "population": 3, "generations": 2, "max_concurrent": 1},
    # population trials: each generation of 3 is one trial, 3 generations
    {"algorithm": "nsga2", "population": True, "pop_size": 3, "generations": 3},
    # Optuna's NSGA-II sampler: its state saved as JSON (Optuna 5 cannot be pickled)
    {"algorithm": "optuna", "num_samples": 5, "max_concurrent": 1, "pop_size": 2},
], ids=["random", "nsga2", "nsga2-population", "optuna"])
def test_killed_sweep_resumes_without_losing_finished_trials(tmp_path, search):
    space = write_space(tmp_path, "killme", optim={"epochs": 3}, search=search,
                        tracking={"wandb": {"mode": "disabled"}})
    if search.get("algorithm") == "nsga2":      # pop_size x generations set the count
        raw = yaml.safe_load(space.read_text())
        raw["search"].pop("num_samples")
        space.write_text(yaml.safe_dump(raw))
    n_trials = 9 if search.get("population") is True else \
        6 if search.get("algorithm") == "nsga2" else 5              # rows: one per member
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exp = tmp_path / "exp" / "killme"
    proc = subprocess.Popen([sys.executable, "-m", "search", "run", str(space), "--storage",
                             str(tmp_path / "exp"), "--num-cpus", "2"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(_finished(exp)) < 2:
        time.sleep(0.5)
    done_before = _finished(exp)
    # kill the driver and everything it started (the local Ray cluster too)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done_before) >= 2, proc.stdout.read().decode()[-3000:]
    time.sleep(1)
    res = subprocess.run([sys.executable, "-m", "search", "resume", str(exp), "--num-cpus", "2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    from analysis.results import load_results
    df = load_results(exp)
    assert len(df) == n_trials and (df["status"] == "TERMINATED").all(), \
        df[["trial_id", "status"]]
    after = _finished(exp)
    for name, text in done_before.items():
        assert after[name] == text          # finished trials kept, not re-run
    if search.get("algorithm") == "optuna":     # the searcher resumed from a JSON state
        import json
        states = list(exp.glob("searcher-state-*.pkl"))
        assert states and all(json.loads(f.read_text())["format"] ==
                              "paretune-optuna-searcher" for f in states), states
