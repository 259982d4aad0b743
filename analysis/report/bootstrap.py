"""The test set's own noise on any number the report derives from test AUCs: a paired
bootstrap over the test rows (Efron & Tibshirani 1993, ch. 6).

Every run of the report is scored on the same test rows (the label-skew copies and the
two-objective runs keep the test split as it is), and each run saves its test scores at
the epochs the epoch rules pick (``runs.py``). One set of B resamples of the rows (counts
drawn once, multinomial, seeded) is applied to every run and to the input scores alike,
so a difference between two runs is resampled as a difference: the rows both were scored
on move together. A statistic (an AUC difference, an area, a hypervolume, a mean over
seeds of any of these) is computed on the original rows and on each resample; the
standard deviation over the resamples is its test-set SE. Ties count half, as in
``trainables.metrics``.

    TestNoise(labels, objectives, scores_dir, inputs, B=200, seed=0)
    noise.aucs(rec, point=None) -> (B, K) resampled AUCs of a run (or grid point)
    noise.replicate(stat) -> (value on the test rows, B resampled values)
        ``stat(look)``: ``look.auc(rec)`` and ``look.points(rec)`` give a run's test AUCs
        (dicts), ``look.inputs()`` the input scores' ({score name: {objective: AUC}})
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

B_DEFAULT = 200


def boot_aucs(scores, labels, counts) -> np.ndarray:
    """(B, K) AUCs of one score vector (n,) against (n, K) 0/1 labels under B row-count
    vectors (B, n): each row weighted by how often the resample drew it, ties half."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])     # tie groups, ascending
    W = np.asarray(counts, dtype=np.float64)[:, order]
    Y = np.asarray(labels, dtype=np.float64)[order]
    out = np.empty((W.shape[0], Y.shape[1]))
    for k in range(Y.shape[1]):
        pos = np.add.reduceat(W * Y[:, k], starts, axis=1)        # (B, groups)
        neg = np.add.reduceat(W, starts, axis=1) - pos
        below = np.cumsum(neg, axis=1) - neg
        num = (pos * (below + 0.5 * neg)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = num / (pos.sum(axis=1) * neg.sum(axis=1))
    return out


class _Look:
    """Test AUCs as a statistic sees them: the records' own (b None) or resample b's."""

    def __init__(self, noise: "TestNoise", b: int | None):
        self.noise, self.b = noise, b

    def auc(self, rec) -> dict:
        if self.b is None:
            return rec["test"]
        return dict(zip(rec["objectives"], self.noise.aucs(rec)[self.b]))

    def points(self, rec) -> list[dict]:
        if self.b is None:
            return [p["test"] for p in rec["points"]]
        return [dict(zip(rec["objectives"], self.noise.aucs(rec, i)[self.b]))
                for i in range(len(rec["points"]))]

    def inputs(self) -> dict:
        if self.b is None:
            return self.noise.inputs
        return {name: dict(zip(self.noise.objectives, v[self.b]))
                for name, v in self.noise.input_boot.items()}


class TestNoise:
    """Resampled test AUCs of the report's runs (see the module docstring)."""

    def original(self) -> _Look:
        """The test AUCs as recorded (no resampling), as a statistic reads them."""
        return _Look(self, None)

    def __init__(self, labels, objectives, scores_dir, input_scores: dict, B: int = B_DEFAULT,
                 seed: int = 0):
        self.labels = np.asarray(labels, dtype=np.int8)
        self.objectives = list(objectives)
        self.dir = Path(scores_dir)
        n = len(self.labels)
        rng = np.random.default_rng(seed)
        self.counts = rng.multinomial(n, np.full(n, 1.0 / n), size=B).astype(np.float32)
        self.B = B
        self._cache: dict = {}
        self.input_boot = {name: boot_aucs(s, self.labels, self.counts)
                           for name, s in input_scores.items()}
        from trainables.metrics import auc_per_objective
        import torch
        y = torch.from_numpy(self.labels.copy())
        self.inputs = {name: dict(zip(self.objectives, auc_per_objective(
            torch.from_numpy(np.asarray(s, dtype=np.float32).copy()), y).tolist()))
            for name, s in input_scores.items()}

    def input_se(self, name: str, objective: str) -> float:
        """The test-set SE of an input score's AUC on ``objective`` (resamples without
        both classes left out)."""
        v = self.input_boot[name][:, self.objectives.index(objective)]
        v = v[np.isfinite(v)]
        return float(v.std(ddof=1)) if len(v) > 1 else float("nan")

    def aucs(self, rec, point: int | None = None) -> np.ndarray:
        """(B, K_rec) resampled AUCs of a run viewed under an epoch rule (``runs.view``;
        ``point``: one of its grid points) on the run's objectives."""
        epoch = rec["epoch"] if point is None else rec["points"][point]["epoch"]
        key = (rec["key"], point, epoch)
        if key not in self._cache:
            cols = [self.objectives.index(o) for o in rec["objectives"]]
            s = load_scores(self.dir, rec["key"], epoch, point)
            self._cache[key] = boot_aucs(s, self.labels[:, cols], self.counts)
        return self._cache[key]

    def replicate(self, stat) -> tuple[float, np.ndarray]:
        """``stat`` on the test rows and on each resample."""
        value = float(stat(_Look(self, None)))
        boots = np.array([stat(_Look(self, b)) for b in range(self.B)], dtype=np.float64)
        return value, boots


def score_name(epoch: int, point: int | None = None) -> str:
    return f"e{int(epoch)}" if point is None else f"p{int(point)}e{int(epoch)}"


def save_scores(folder, key: str, arrays: dict) -> Path:
    """``arrays``: name (``score_name``) -> test scores; one compressed file per run."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    np.savez_compressed(path, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
    return path


def load_scores(folder, key: str, epoch: int, point: int | None = None) -> np.ndarray:
    path = Path(folder) / f"{key}.npz"
    with np.load(path) as z:
        name = score_name(epoch, point)
        if name not in z.files:
            raise ValueError(f"{path}: no test scores for {name} (saved: {', '.join(z.files)})")
        return z[name]
