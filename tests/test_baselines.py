"""The input scores as baseline points (analysis.baselines; docs/DESIGN.md, "Input-score
baselines"): their AUCs against scikit-learn, the beat / within noise / dominated marks
against their definition, and `analysis frontier` with them (table, JSON, the cache)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from analysis.baselines import Baselines, input_aucs, versus

OBJ = ["click", "buy"]


def _dataset(folder, n=3000, seed=0):
    """A valid split whose score_click ranks click well, score_buy buy; ties included."""
    rng = np.random.default_rng(seed)
    y = {"click": (rng.random(n) < 0.3).astype(np.int8), "buy": (rng.random(n) < 0.05).astype(np.int8)}
    s = {"click": np.clip(0.3 + 0.3 * y["click"] + rng.normal(0, 0.25, n), 0, 1),
         "buy": np.clip(0.1 + 0.2 * y["buy"] + rng.normal(0, 0.15, n), 0, 1)}
    s = {o: np.round(v, 2).astype(np.float32) for o, v in s.items()}    # ties
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.yaml").write_text(yaml.safe_dump(
        {"objectives": OBJ, "splits": {"valid": "valid.parquet"}}))
    pq.write_table(pa.table({**{f"score_{o}": s[o] for o in OBJ},
                             **{f"label_{o}": y[o] for o in OBJ}}), folder / "valid.parquet")
    return folder, s, y


def test_input_aucs_are_scikit_learns(tmp_path):
    from sklearn.metrics import roc_auc_score
    ds, s, y = _dataset(tmp_path / "ds")
    names, B, counts = input_aucs(ds / "valid.parquet", OBJ)
    assert names == ["score_click", "score_buy"]
    want = [[roc_auc_score(y[o], s[j]) for o in OBJ] for j in OBJ]
    np.testing.assert_allclose(B, want, atol=1e-9)
    assert counts.tolist() == [[y[o].sum(), len(y[o]) - y[o].sum()] for o in OBJ]


def test_versus_marks_follow_the_definition():
    base = Baselines(["score_a", "score_b"], np.array([[0.80, 0.60], [0.60, 0.80]]),
                     np.full((2, 2), 0.01), np.array([[100, 900], [100, 900]]), "test")
    F = np.array([[0.79, 0.59],       # below score_a everywhere: dominated
                  [0.81, 0.61],       # above score_a by 0.01 only: within noise of it
                  [0.85, 0.70],       # beyond z SE over both on some objective
                  [np.nan, 0.7]])
    se = np.full(F.shape, 0.01)
    assert versus(F, se, base, 1.0) == ["dominated by score_a", "within noise of score_a",
                                        "beats", ""]
    # z = 0, or unknown SEs: plain dominance decides
    assert versus(F[:3], se[:3], base, 0.0)[1] == "beats"
    assert versus(F[:3], np.full((3, 2), np.nan), Baselines(
        base.names, base.F, np.full((2, 2), np.nan), base.counts, "t"), 1.0)[1] == "beats"
    # brute force over random points: "beats" iff every input is beaten beyond the margin
    rng = np.random.default_rng(3)
    P = rng.uniform(0.55, 0.85, (200, 2))
    marks = versus(P, se[:1].repeat(200, 0), base, 1.0)
    margin = np.sqrt(2) * 0.01
    for p, m in zip(P, marks):
        beats = all(((p - b) > margin).any() for b in base.F)
        dominated = any((b >= p).all() for b in base.F)
        assert (m == "beats") == beats
        assert m.startswith("dominated") == (not beats and dominated)


def _experiment(root, data_path, aucs):
    exp = root / "exp"
    exp.mkdir(parents=True)
    (exp / "paretune.json").write_text(json.dumps({"objectives": OBJ}))
    cfg = {"data": {"path": str(data_path), "objectives": OBJ}, "model": {"family": "fusion"},
           "loss": {"kind": "bce"}, "optim": {"epochs": 1}}
    for t, row in enumerate(aucs):
        tdir = exp / f"abcde_{t:05d}-x"
        tdir.mkdir()
        (tdir / "params.json").write_text(json.dumps(cfg))
        (tdir / "result.json").write_text(json.dumps(
            {"trial_id": f"abcde_{t:05d}", "epoch": 1, "done": True, "timestamp": 1000 + t,
             **{f"auc/{o}": v for o, v in zip(OBJ, row)}, "auc_sum": sum(row)}) + "\n")
    return exp


def test_frontier_shows_the_input_scores_and_marks_points_below_them(tmp_path, capsys):
    from analysis.__main__ import main
    ds, _, _ = _dataset(tmp_path / "ds")
    names, B, _ = input_aucs(ds / "valid.parquet", OBJ)
    best = B.max(axis=0)
    aucs = [[best[0] + 0.05, best[1] + 0.05],          # beats both inputs
            [best[0] - 0.001, B[0, 1] - 0.001]]        # below score_click on both
    exp = _experiment(tmp_path, ds, aucs)
    assert main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    out = capsys.readouterr().out
    assert "b score_click" in out and "best single input per objective" in out
    res = pd.read_csv(exp / "analysis" / "results.csv").set_index("trial_id")
    assert res.loc["abcde_00000", "vs_baseline"] == "beats"
    assert res.loc["abcde_00001", "vs_baseline"] == "dominated by score_click"
    js = json.loads((exp / "analysis" / "frontier.json").read_text())
    pts = {p["name"]: p["auc"] for p in js["baselines"]["points"]}
    assert pts["score_buy"] == pytest.approx(dict(zip(OBJ, B[1])))
    assert js["baselines"]["best_single"]["click"]["input"] == names[int(B[:, 0].argmax())]
    assert js["epoch_rule"] == "own"
    # the cache: with the dataset gone, the saved AUCs still serve
    saved = json.loads((exp / "analysis" / "baselines.json").read_text())
    (entry,) = saved.values()
    np.testing.assert_allclose(entry["auc"], B)
    for f in ds.iterdir():
        f.unlink()
    assert main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    assert "saved baselines.json" in capsys.readouterr().out
    res = pd.read_csv(exp / "analysis" / "results.csv").set_index("trial_id")
    assert res.loc["abcde_00001", "vs_baseline"] == "dominated by score_click"
