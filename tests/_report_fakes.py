"""Report runs without training, for the studies' render tests: each planned run gets a
test score vector drawn from the labels (its signal per objective chosen by the test), its
record (test AUCs by scikit-learn) and its saved scores, and the context a bootstrap over
the same test rows (analysis.report.bootstrap.TestNoise)."""
from __future__ import annotations

import numpy as np


def test_rows(objectives, n=3000, rates=None, seed=0) -> np.ndarray:
    """(n, K) 0/1 labels with the given positive rates (default 0.3 each)."""
    rng = np.random.default_rng(seed)
    rates = rates or [0.3] * len(objectives)
    return np.stack([rng.random(n) < r for r in rates], 1).astype(np.int8)


def scores_for(labels, objectives, signal: dict, rng) -> np.ndarray:
    """A score that ranks each objective's positives up by ``signal[objective]``."""
    s = rng.normal(size=len(labels))
    for k, o in enumerate(objectives):
        s = s + signal.get(o, 0.0) * labels[:, k]
    return s


def record(run, labels, all_objectives, scores, points=None) -> dict:
    """A report record (as ``runs.view`` gives it, epoch 1) for ``run`` with these test
    scores, (n,) or (P, n) for a conditioned run's points."""
    from sklearn.metrics import roc_auc_score
    objs = list(run.config["data"]["objectives"])
    cols = [all_objectives.index(o) for o in objs]

    def aucs(s):
        return {o: float(roc_auc_score(labels[:, c], s)) for o, c in zip(objs, cols)}

    rec = {"status": "ok", "key": run.key, "objectives": objs, "epoch": 1}
    if points is None:
        rec["test"] = aucs(scores)
        rec["valid"] = dict(rec["test"])
    else:
        rec["points"] = [{"test": aucs(s), "valid": aucs(s), "epoch": 1, "pref": p}
                         for s, p in zip(scores, points)]
        rec["test"], rec["valid"] = rec["points"][0]["test"], rec["points"][0]["valid"]
    rec["test_auc_sum"] = float(sum(rec["test"].values()))
    entry = {"epoch": 1, "valid": rec["valid"]}
    entry.update({"points": rec["points"]} if points is not None else {"test": rec["test"]})
    rec["history"] = [entry]
    return rec


def attach_noise(ctx, labels, folder, input_signal=1.0, B=60, seed=1):
    """ctx.noise over these test rows; input score_<o> ranks o with ``input_signal``."""
    from analysis.report.bootstrap import TestNoise
    rng = np.random.default_rng(seed)
    inputs = {f"score_{o}": scores_for(labels, ctx.objectives, {o: input_signal}, rng)
              for o in ctx.objectives}
    ctx.noise = TestNoise(labels, ctx.objectives, folder, inputs, B=B)
    ctx.valid_inputs = ctx.noise.inputs
    return ctx
