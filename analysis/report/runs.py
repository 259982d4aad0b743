"""One training run of the fidelity report, and the store that makes a killed report
resume where it stopped.

Protocol for every run: train on the ``train`` split with the one training loop, score
``valid`` and ``test`` after each epoch, and record both per epoch. Which epoch stands for
the run is chosen afterwards on validation only, by the rule the whole analysis uses
(``analysis.epochs``; the report's ``--epoch``, by default ``own``: the epoch best for the
run's own loss weights or, for a conditioned model, each grid point's preference);
nothing is chosen on the test split. Each run also saves its test scores at the epochs
the three rules pick (``scores/<key>.npz``), for the bootstrap over test rows
(``bootstrap.py``). :func:`view` gives a record as the studies read it under a rule.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.epochs import RULES, choose_epoch, own_weights

# 2: every epoch's valid and test AUCs recorded, test scores saved (a record of
# protocol 1 kept only the epoch with the best validation AUC sum)
PROTOCOL = 2

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
        blob = json.dumps([self.seed, cfg, self.attention, PROTOCOL], sort_keys=True,
                          default=str)
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


def execute(run: Run, tests: TestSets, scores_dir=None) -> dict:
    """Train ``run`` and return its record (``status`` ok or failed, with the reason):
    per epoch the validation and test AUCs (a conditioned model's: per grid point),
    the mean A_r on test when asked, the epoch each rule picks; the test scores of those
    epochs go to ``scores_dir``."""
    from trainables.loop import TrainingDiverged, load_model, train_loop_per_worker
    cfg = copy.deepcopy(run.config)
    cfg.setdefault("run", {}).update(seed=run.seed, verbose=False, checkpoint_every=1,
                                     checkpoint_dir=None)
    objectives = list(cfg["data"]["objectives"])
    test = tests.get(cfg["data"]["path"], objectives)
    history, kept = [], {}

    def report(metrics: dict, checkpoint_dir=None):
        if checkpoint_dir is None:
            return
        model, _ = load_model(checkpoint_dir)
        entry, kept[metrics["epoch"]] = _epoch_on_test(model, test, objectives, metrics)
        if run.attention:
            entry["attention"] = model.mean_attention(test.scores, test.cat, test.num).tolist()
        history.append(entry)

    rec = {"key": run.key, "study": run.study, "label": run.label, "seed": run.seed,
           "extra": run.extra, "objectives": objectives, "protocol": PROTOCOL}
    t0 = time.time()
    try:
        trained = train_loop_per_worker(cfg, report=report)
    except TrainingDiverged as e:
        return {**rec, "status": "failed", "reason": f"diverged: {e}",
                "seconds": round(time.time() - t0, 1)}
    weights = own_weights(cfg, objectives)
    chosen = _choices(history, objectives, weights)
    if not history or chosen is None:
        return {**rec, "status": "failed", "reason": "no epoch had finite validation AUCs",
                "seconds": round(time.time() - t0, 1)}
    if scores_dir is not None:
        _save(scores_dir, run.key, kept, chosen)
    speed = sum(h["samples_per_s"] for h in trained) / len(trained)
    return {**rec, "status": "ok", "history": history, "chosen": chosen,
            "weights": None if weights is None else weights.tolist(),
            "epochs": len(trained), "samples_per_s": round(speed),
            "seconds": round(time.time() - t0, 1)}


def _epoch_on_test(model, test, objectives, metrics: dict):
    """(one epoch's entry: valid and test AUCs, per grid point for a conditioned model;
    the test scores, (n,) or (P, n))."""
    import torch
    from trainables.step import _score_metrics, predict
    valid = {o: metrics[f"auc/{o}"] for o in objectives}
    if "points" not in metrics:
        with torch.no_grad():
            s = predict(model, test, 262144)
        t = _score_metrics(s, test, objectives, False)
        return ({"epoch": metrics["epoch"], "valid": valid,
                 "test": {o: t[f"auc/{o}"] for o in objectives}},
                s.detach().cpu().numpy().astype(np.float32))
    points, s = _grid_on_test(model, test, objectives, metrics)
    return {"epoch": metrics["epoch"], "valid": valid, "points": points}, s


def _grid_on_test(model, test, objectives, metrics: dict, chunk: int = 8):
    """A conditioned model's grid points (``p<i>/pref/<obj>`` of the epoch's metrics):
    each point's preference, validation AUCs (reported) and test AUCs (scored here with
    ``model.score`` under that preference), in grid order; and the (P, n) test scores."""
    import torch
    from trainables.step import _score_metrics
    n = int(metrics["points"])
    prefs = torch.tensor([[metrics[f"p{i}/pref/{o}"] for o in objectives] for i in range(n)],
                         dtype=torch.float32)
    out, scores = [], []
    with torch.no_grad():
        for lo in range(0, n, chunk):
            s = model.score(test.scores, test.cat, test.num, prefs[lo:lo + chunk])
            scores.append(s.cpu().numpy().astype(np.float32))
            for j in range(s.shape[0]):
                i = lo + j
                m = _score_metrics(s[j], test, objectives, False)
                out.append({"pref": prefs[i].tolist(),
                            "valid": {o: metrics[f"p{i}/auc/{o}"] for o in objectives},
                            "test": {o: m[f"auc/{o}"] for o in objectives}})
    return out, np.concatenate(scores)


def _as_results(entries, objectives) -> list[dict]:
    """Epoch entries as the rule reads reports: ``auc/<obj>`` = validation AUC."""
    return [{"epoch": e["epoch"], **{f"auc/{o}": e["valid"][o] for o in objectives}}
            for e in entries]


def _choices(history, objectives, weights):
    """rule -> the epoch it picks (one model), or rule -> [epoch per grid point]."""
    if not history:
        return None
    if "points" not in history[0]:
        rows = _as_results(history, objectives)
        picks = {r: choose_epoch(rows, objectives, r, weights) for r in RULES}
        if any(i is None for i in picks.values()):
            return None
        return {r: history[i]["epoch"] for r, i in picks.items()}
    out = {r: [] for r in RULES}
    for p in range(len(history[0]["points"])):
        entries = [{"epoch": e["epoch"], "valid": e["points"][p]["valid"]} for e in history]
        w = np.asarray(history[0]["points"][p]["pref"], dtype=np.float64)
        for r in RULES:
            i = choose_epoch(_as_results(entries, objectives), objectives, r, w / w.sum())
            if i is None:
                return None
            out[r].append(history[i]["epoch"])
    return out


def _save(folder, key: str, kept: dict, chosen: dict) -> None:
    """The test scores of every epoch some rule picks."""
    from .bootstrap import save_scores, score_name
    arrays = {}
    for picks in chosen.values():
        if isinstance(picks, list):
            for p, e in enumerate(picks):
                arrays[score_name(e, p)] = kept[e][p]
        else:
            arrays[score_name(picks)] = kept[picks]
    save_scores(folder, key, arrays)


def view(rec: dict | None, rule: str) -> dict | None:
    """A record as the studies read it under epoch rule ``rule``: ``epoch``, ``valid``,
    ``test`` and ``test_auc_sum`` of the chosen epoch (``attention`` too, when
    recorded); for a conditioned model ``points``, each at its own chosen epoch, and at
    the top level its point with the best validation AUC sum."""
    if rec is None or rec.get("status") != "ok":
        return rec
    by_epoch = {e["epoch"]: e for e in rec["history"]}
    picks = rec["chosen"][rule]
    out = {**rec, "rule": rule}
    if isinstance(picks, list):
        out["points"] = [{**by_epoch[e]["points"][p], "epoch": e} for p, e in enumerate(picks)]
        top = max(out["points"], key=lambda q: sum(q["valid"].values()))
        out.update(epoch=top["epoch"], valid=top["valid"], test=top["test"])
    else:
        at = by_epoch[picks]
        out.update(epoch=picks, valid=at["valid"], test=at["test"])
        if "attention" in at:
            out["attention"] = at["attention"]
    out["test_auc_sum"] = float(sum(out["test"].values()))
    return out


def run_all(runs: list[Run], store: RunStore, tests: TestSets, log=print,
            scores_dir=None, rule: str = "own") -> None:
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
        rec = execute(r, tests, scores_dir)
        store.add(rec)
        eta = (time.time() - t0) / n * (len(todo) - n)
        shown = view(rec, rule)
        what = f"test auc_sum {shown['test_auc_sum']:.4f} (epoch {shown['epoch']}, {rule} " \
            "rule)" if rec["status"] == "ok" else f"FAILED: {rec['reason']}"
        log(f"[report] {n}/{len(todo)} {r.study}: {r.label} seed {r.seed}: {what}, "
            f"{rec['seconds']} s; about {eta / 60:.0f} min left")
