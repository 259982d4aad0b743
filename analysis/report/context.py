"""What every study of the report shares: the dataset, objectives, seeds, the training
setup, and the data facts (positives per split, label correlations) the studies read."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Every study trains HarmonRank's network (the paper gives its baselines the same
# network, sec. 5.3) with equal loss weights unless the study varies them.
TRAINING = {
    "model": {"family": "harmonrank"},
    "optim": {"lr": 3e-3, "batch_size": 2048, "epochs": 8},
    # one torch thread per run: the runs are small, and two OpenMP threads on a core
    # another process is using spin-wait each other down (27x slower measured on 2 cores)
    "run": {"gauc": False, "threads": 1},
}
MIN_POSITIVES = 100       # an objective needs this many test positives to be plotted


@dataclass
class Context:
    out: Path
    data: Path
    objectives: list[str]
    seeds: list[int]
    training: dict = field(default_factory=lambda: copy.deepcopy(TRAINING))
    options: dict = field(default_factory=dict)    # per-study options (CLI)
    counts: dict = field(default_factory=dict)     # split -> objective -> (positives, rows)
    rho: np.ndarray | None = None                  # label Spearman on train (K, K)
    input_auc: dict = field(default_factory=dict)  # test AUC of each objective's own score
    rule: str = "own"                              # which epoch is a run's point
    noise: object = None                           # bootstrap.TestNoise of the test rows
    mp: dict = field(default_factory=dict)         # the MP stage's time and threads
    valid_inputs: dict = field(default_factory=dict)   # input score -> objective -> valid AUC

    @property
    def figures(self) -> Path:
        return self.out

    def config(self, *, loss: str = "rank_auc", objectives=None, data=None,
               weights: dict | None = None, model: dict | None = None) -> dict:
        """A training config on the report's data (or ``data``) and objectives."""
        cfg = copy.deepcopy(self.training)
        objectives = list(objectives or self.objectives)
        cfg["data"] = {"path": str(data or self.data), "objectives": objectives}
        cfg["loss"] = {"kind": loss}
        if weights is not None:
            cfg["weighting"] = {"kind": "static", "weights": dict(weights)}
        cfg["model"].update(model or {})
        return cfg

    def positives(self, objective: str, split: str = "test") -> int:
        return self.counts[split][objective][0]

    def rarest(self, min_positives: int = 0) -> str:
        """The objective with the lowest positive rate on train, among those with at least
        ``min_positives`` train positives (all objectives when none has that many)."""
        train = self.counts["train"]
        pool = [o for o in self.objectives if train[o][0] >= min_positives] or self.objectives
        return min(pool, key=lambda o: train[o][0] / max(1, train[o][1]))

    def well_measured(self, split: str = "test") -> list[str]:
        """Objectives with at least MIN_POSITIVES positives in ``split``."""
        return [o for o in self.objectives if self.positives(o, split) >= MIN_POSITIVES]


    def inputs(self, objectives=None) -> dict:
        """Input score name -> {objective: test AUC}: each input score ranked against
        every objective's labels (``analysis.baselines``' points, on test)."""
        objectives = list(objectives or self.objectives)
        return {n: {o: v[o] for o in objectives} for n, v in self.noise.inputs.items()}


@dataclass
class Section:
    title: str
    markdown: str
    findings: list[dict] = field(default_factory=list)   # verdicts.finding(...) each
    data: dict = field(default_factory=dict)              # the section's numbers, as JSON
