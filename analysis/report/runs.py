"""One training run of the fidelity report, and the store that makes a killed report
resume where it stopped.

Protocol for every run: train on the ``train`` split with the one training loop, score
``valid`` after each epoch, keep the epoch with the best validation AUC sum and report
that epoch's model on ``test``. Nothing is chosen on the test split.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    study: str          # which study planned it (a STUDIES name)
    label: str          # the setting, e.g. "rank_auc" or "bce 10x"
    seed: int
    config: dict        # a training config (trainables.config); run.seed is set from seed
    extra: dict = field(default_factory=dict)   # what the study needs to read it back
    attention: bool = False                      # also record the test rows' mean A_r

    @property
    def key(self) -> str:
        # what is trained, not who asked: two studies that need the same run share it;
        # the thread count changes the speed, not the numbers
        cfg = copy.deepcopy(self.config)
        cfg.get("run", {}).pop("threads", None)
        blob = json.dumps([self.seed, cfg, self.attention], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


class RunStore:
    """``runs.jsonl`` in the report folder: one line per finished (or failed) run."""

    def __init__(self, folder: Path):
        self.file = Path(folder) / "runs.jsonl"
        self.records: dict[str, dict] = {}
        if self.file.is_file():
            for n, line in enumerate(self.file.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:   # a line cut by a kill: run it again
                    print(f"[report] {self.file}:{n}: unreadable line skipped", flush=True)
                    continue
                self.records[rec["key"]] = rec

    def get(self, run: Run) -> dict | None:
        return self.records.get(run.key)

    def add(self, record: dict) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.file, "a") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[record["key"]] = record


class TestSets:
    """The test split of each (dataset, objectives), loaded once."""

    def __init__(self):
        self._cache: dict = {}

    def get(self, path, objectives):
        from trainables.data.schema import load_dataset
        key = (str(path), tuple(objectives))
        if key not in self._cache:
            ds = load_dataset(path, list(objectives), splits=["test"])
            self._cache[key] = ds.tensors("test")
        return self._cache[key]


def execute(run: Run, tests: TestSets) -> dict:
    """Train ``run`` and return its record (``status`` ok or failed, with the reason)."""
    from trainables.loop import TrainingDiverged, evaluate, load_model, train_loop_per_worker
    cfg = copy.deepcopy(run.config)
    cfg.setdefault("run", {}).update(seed=run.seed, verbose=False, checkpoint_every=1,
                                     checkpoint_dir=None)
    objectives = list(cfg["data"]["objectives"])
    test = tests.get(cfg["data"]["path"], objectives)
    best = {"valid_auc_sum": -math.inf}

    def report(metrics: dict, checkpoint_dir=None):
        v = metrics.get("auc_sum", math.nan)
        if checkpoint_dir is None or not math.isfinite(v) or v <= best["valid_auc_sum"]:
            return
        model, _ = load_model(checkpoint_dir)
        if "points" in metrics:         # a conditioned model: its whole grid on test
            best["points"] = _grid_on_test(model, test, objectives, metrics)
            t = {f"auc/{o}": best["points"][metrics["best_point"]]["test"][o]
                 for o in objectives}
            t["auc_sum"] = sum(t.values())
        else:
            t = evaluate(model, test, objectives, 262144, with_gauc=False)
        best.update(valid_auc_sum=v, epoch=metrics["epoch"],
                    valid={o: metrics[f"auc/{o}"] for o in objectives},
                    test={o: t[f"auc/{o}"] for o in objectives}, test_auc_sum=t["auc_sum"])
        if run.attention:
            best["attention"] = model.mean_attention(test.scores, test.cat, test.num).tolist()

    rec = {"key": run.key, "study": run.study, "label": run.label, "seed": run.seed,
           "extra": run.extra, "objectives": objectives}
    t0 = time.time()
    try:
        history = train_loop_per_worker(cfg, report=report)
    except TrainingDiverged as e:
        return {**rec, "status": "failed", "reason": f"diverged: {e}",
                "seconds": round(time.time() - t0, 1)}
    if "epoch" not in best:
        return {**rec, "status": "failed", "reason": "no epoch had a finite validation AUC sum",
                "seconds": round(time.time() - t0, 1)}
    speed = sum(h["samples_per_s"] for h in history) / len(history)
    return {**rec, "status": "ok", **best, "epochs": len(history),
            "samples_per_s": round(speed), "seconds": round(time.time() - t0, 1)}


def _grid_on_test(model, test, objectives, metrics: dict, chunk: int = 8) -> list[dict]:
    """A conditioned model's grid points (``p<i>/pref/<obj>`` of the epoch's metrics):
    each point's preference, validation AUCs (reported) and test AUCs (scored here with
    ``model.score`` under that preference), in grid order."""
    import torch
    from trainables.step import _score_metrics
    n = int(metrics["points"])
    prefs = torch.tensor([[metrics[f"p{i}/pref/{o}"] for o in objectives] for i in range(n)],
                         dtype=torch.float32)
    out = []
    with torch.no_grad():
        for lo in range(0, n, chunk):
            s = model.score(test.scores, test.cat, test.num, prefs[lo:lo + chunk])
            for j in range(s.shape[0]):
                i = lo + j
                m = _score_metrics(s[j], test, objectives, False)
                out.append({"pref": prefs[i].tolist(),
                            "valid": {o: metrics[f"p{i}/auc/{o}"] for o in objectives},
                            "test": {o: m[f"auc/{o}"] for o in objectives}})
    return out


def run_all(runs: list[Run], store: RunStore, tests: TestSets, log=print) -> None:
    """Run what the store does not have yet, in order, with a progress line per run."""
    unique: dict[str, Run] = {}
    for r in runs:
        unique.setdefault(r.key, r)
    todo = [r for r in unique.values() if store.get(r) is None]
    if len(todo) < len(unique):
        log(f"[report] {len(unique) - len(todo)} of {len(unique)} runs already done, "
            f"{len(todo)} to go")
    t0 = time.time()
    for n, r in enumerate(todo, 1):
        rec = execute(r, tests)
        store.add(rec)
        eta = (time.time() - t0) / n * (len(todo) - n)
        what = f"test auc_sum {rec['test_auc_sum']:.4f} (epoch {rec['epoch']})" \
            if rec["status"] == "ok" else f"FAILED: {rec['reason']}"
        log(f"[report] {n}/{len(todo)} {r.study}: {r.label} seed {r.seed}: {what}, "
            f"{rec['seconds']} s; about {eta / 60:.0f} min left")
