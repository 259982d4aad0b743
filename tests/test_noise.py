"""Frontier noise (analysis.noise, analysis.label_counts; docs/DESIGN.md, "Frontier noise"):
Hanley-McNeil SEs against the formula by hand and a bootstrap of scikit-learn's AUC,
within-noise marks against the brute-force definition, label counts from the trials' data
(or a saved file, or none), and `analysis frontier`'s tables, JSON and printout."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from analysis.noise import add_noise, auc_se, noise_columns, within_noise

OBJ = ["click", "buy"]


def _hand_se(a, p, n):
    """Hanley & McNeil (1982) eq. 2, scalar, written out from the paper."""
    q1 = a / (2 - a)
    q2 = 2 * a ** 2 / (1 + a)
    return math.sqrt((a * (1 - a) + (p - 1) * (q1 - a ** 2) + (n - 1) * (q2 - a ** 2)) / (p * n))


def test_se_is_the_hanley_mcneil_formula():
    # A = 0.8, 50 positives, 200 negatives: Q1 = 2/3, Q2 = 32/45, var = 0.00156178
    assert float(auc_se(0.8, 50, 200)) == pytest.approx(math.sqrt(0.0015617777777), rel=1e-9)
    a = np.array([[0.55, 0.7], [0.9, 0.99]])
    p, n = np.array([12, 3000]), np.array([400, 90000])
    got = auc_se(a, p, n)                                    # broadcast over rows
    want = [[_hand_se(a[i, k], p[k], n[k]) for k in range(2)] for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(auc_se([np.nan, 0.7, 0.7, 1.2], [10, 0, 10, 10], [10, 10, 0, 10])).all()
    assert float(auc_se(1.0, 10, 10)) == 0.0
    from analysis.report.stats import auc_se as report_se    # one formula for both
    assert report_se(0.8, 50, 200) == float(auc_se(0.8, 50, 200))
    assert math.isnan(report_se(0.8, 0, 200))


@pytest.mark.parametrize("scores", ["binormal", "exponential"])
def test_se_is_close_to_the_bootstrap_sd_of_sklearn_auc(scores):
    # Hanley-McNeil's Q1, Q2 are exact for exponential scores (here AUC ~0.86) and close
    # for binormal ones at moderate AUC (~0.76); at high binormal AUC (0.9) the formula
    # overstates the SE by about a third (measured), which errs towards "within noise"
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(7)
    P, N = 150, 600
    if scores == "binormal":
        pos, neg = rng.normal(1.0, 1.0, P), rng.normal(0.0, 1.0, N)
    else:
        pos, neg = rng.exponential(6.0, P), rng.exponential(1.0, N)
    y = np.r_[np.ones(P), np.zeros(N)]
    auc = roc_auc_score(y, np.r_[pos, neg])
    boots = [roc_auc_score(y, np.r_[rng.choice(pos, P), rng.choice(neg, N)])
             for _ in range(400)]                           # positives, negatives resampled
    assert float(auc_se(auc, P, N)) == pytest.approx(np.std(boots, ddof=1), rel=0.2)


def _brute_within(F, S, z):
    """The definition, pair by pair: j beats i beyond noise iff on every objective
    F[j] - F[i] > z * sqrt(S[i]^2 + S[j]^2); unknown SEs make a comparison undecided."""
    out = []
    for i in range(len(F)):
        if not np.isfinite(F[i]).all():
            out.append(None)
            continue
        verdicts = []                      # per j: True (beats), False (does not), None
        for j in range(len(F)):
            if not np.isfinite(F[j]).all():
                continue
            per_k = []
            for k in range(F.shape[1]):
                gain = F[j, k] - F[i, k]
                margin = z * math.sqrt(S[i, k] ** 2 + S[j, k] ** 2)
                per_k.append(False if gain <= 0 else None if math.isnan(margin)
                             else gain > margin)
            verdicts.append(False if False in per_k else True if all(per_k) else None)
        out.append(False if True in verdicts else True if all(v is False for v in verdicts)
                   else None)
    return out


def test_within_noise_on_a_hand_made_table():
    F = np.array([[0.80, 0.70],      # frontier
                  [0.79, 0.69],      # beaten by row 0, but by 0.01 < sqrt(2) * 0.01
                  [0.70, 0.60],      # beaten by 0.10 on both
                  [0.81, 0.60],      # frontier (best click)
                  [np.nan, np.nan]])  # failed
    S = np.full(F.shape, 0.01)
    assert within_noise(F, S, z=1).tolist() == [True, True, False, True, None]
    assert within_noise(F, S, z=0).tolist() == [True, False, False, True, None]
    assert within_noise(F, S, z=10).tolist() == [True, True, True, True, None]
    S[1] = np.nan                    # row 1's SE unknown: its verdict too, row 2's stays
    assert within_noise(F, S, z=1).tolist() == [True, None, False, True, None]
    with pytest.raises(ValueError, match="--noise-z"):
        within_noise(F, S, z=-1)


@pytest.mark.parametrize("seed", range(8))
def test_within_noise_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 30)), int(rng.integers(1, 4))
    F = np.round(rng.uniform(0.6, 0.8, (n, m)), 2)
    S = rng.uniform(0.0, 0.03, (n, m))
    if n > 3:
        F[2] = np.nan
        S[rng.integers(0, n)] = np.nan
        F[1] = F[0]
    z = float(rng.choice([0.0, 1.0, 2.0]))
    assert within_noise(F, S, z).tolist() == _brute_within(F, S, z)


def test_noise_columns_per_row_whatever_the_expansion():
    # rows may be trials, population members (.m<i>) or preference points (.p<i>): each
    # row is one point with its own AUCs and its trial's counts
    F = np.array([[0.80, 0.70], [0.79, 0.69], [0.70, 0.60], [np.nan, np.nan]])
    counts = np.array([[[100, 900], [10, 990]]] * 4, dtype=float)
    counts[2] = np.nan
    cols = noise_columns(F, OBJ, counts, ref=[0.6, 0.5])
    assert list(cols.columns) == ["n_pos/click", "n_neg/click", "n_pos/buy", "n_neg/buy",
                                  "se/click", "se/buy", "within_noise", "hv_contribution"]
    assert cols["se/buy"][0] == pytest.approx(_hand_se(0.70, 10, 990))
    assert np.isnan(cols["se/click"][2]) and np.isnan(cols["se/click"][3])
    # row 2: row 0 beats it by 0.1 everywhere, but with its SE unknown that proves nothing
    assert cols["within_noise"].isna().tolist() == [False, False, True, True]
    assert cols["within_noise"].tolist()[:2] == [True, True]
    # the frontier is row 0 alone: its whole box; dominated rows add nothing
    assert cols["hv_contribution"].tolist()[:3] == pytest.approx([0.2 * 0.2, 0.0, 0.0])
    assert np.isnan(cols["hv_contribution"][3])


# --- label counts and the CLI, on a hand-made experiment folder ---------------------

def _dataset(folder, labels: dict, split="valid"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.yaml").write_text(yaml.safe_dump(
        {"objectives": list(labels), "splits": {split: f"{split}.parquet"}}))
    pq.write_table(pa.table({f"label_{o}": np.asarray(v, dtype=np.int8)
                             for o, v in labels.items()}), folder / f"{split}.parquet")
    return folder


def _experiment(root, data, aucs, population=False):
    """Trials t0, t1, ... with final AUCs ``aucs`` (a population trial: one member each)."""
    exp = root / "exp"
    exp.mkdir(parents=True)
    (exp / "paretune.json").write_text(json.dumps({"name": "exp", "objectives": OBJ}))
    cfg = {"data": data, "model": {"family": "fusion"}, "loss": {"kind": "bce"},
           "optim": {"epochs": 1}, "run": {"eval_split": "valid"}}
    trials = [[row] for row in aucs] if not population else [aucs]
    for t, rows in enumerate(trials):
        tdir = exp / f"abcde_{t:05d}-x"
        tdir.mkdir()
        report = {"trial_id": f"abcde_{t:05d}", "epoch": 1, "done": True,
                  "timestamp": 1000 + t}
        if population:
            cfg = {**cfg, "population": [{} for _ in rows]}
        for i, row in enumerate(rows):
            pre = f"m{i}/" if population else ""
            report.update({f"{pre}auc/{o}": v for o, v in zip(OBJ, row)})
            report[f"{pre}auc_sum"] = float(sum(row))
        (tdir / "params.json").write_text(json.dumps(cfg))
        (tdir / "result.json").write_text(json.dumps(report) + "\n")
    return exp


def _labels(n_pos, n, seed=0):
    y = np.zeros(n, dtype=np.int8)
    y[np.random.default_rng(seed).choice(n, n_pos, replace=False)] = 1
    return y


AUCS = [[0.80, 0.70], [0.79, 0.69], [0.70, 0.60], [0.85, 0.55]]


def test_frontier_cli_writes_and_prints_the_noise_columns(tmp_path, capsys):
    from analysis.__main__ import main
    ds = _dataset(tmp_path / "ds", {"click": _labels(300, 2000), "buy": _labels(40, 2000, 1)})
    exp = _experiment(tmp_path, {"path": str(ds)}, AUCS)
    assert main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    printed = capsys.readouterr().out
    res = pd.read_csv(exp / "analysis" / "results.csv")
    for c in ("se/click", "se/buy", "within_noise", "hv_contribution", "n_pos/buy"):
        assert c in res.columns
    res = res.set_index("trial_id")
    assert res.loc["abcde_00000", "n_pos/buy"] == 40 and res.loc["abcde_00000", "n_neg/buy"] == 1960
    assert res.loc["abcde_00001", "se/click"] == pytest.approx(_hand_se(0.79, 300, 1700))
    assert res["within_noise"].tolist() == [True, True, False, True]
    front = pd.read_csv(exp / "analysis" / "frontier.csv")
    assert set(front["trial_id"]) == {"abcde_00000", "abcde_00003"}
    assert {"se/click", "within_noise", "hv_contribution"} <= set(front.columns)
    js = json.loads((exp / "analysis" / "frontier.json").read_text())
    assert js["noise"]["z"] == 1.0 and "valid split" in js["noise"]["note"]
    pts = {p["trial_id"]: p for p in js["points"]}
    assert set(pts) == {"abcde_00000", "abcde_00001", "abcde_00003"}   # frontier + near
    assert pts["abcde_00001"]["on_frontier"] is False and pts["abcde_00001"]["within_noise"]
    # ref = worst per objective (0.70, 0.55): t3 is the worst buy, so it adds no area
    assert pts["abcde_00000"]["hv_contribution"] == pytest.approx(0.10 * 0.15)
    assert pts["abcde_00003"]["hv_contribution"] == 0.0
    assert "hv_share" in printed and "AUC SE on the frontier" in printed
    assert "~ abcde_00001" in printed and "1 more within noise" in printed
    saved = json.loads((exp / "analysis" / "label_counts.json").read_text())
    (entry,) = saved.values()
    assert entry["counts"] == {"click": [300, 1700], "buy": [40, 1960]}
    # a stricter z, and the saved counts when the dataset has gone (a remote experiment)
    for f in ds.iterdir():
        f.unlink()
    ds.rmdir()
    assert main(["frontier", str(exp), "--wandb", "disabled", "--noise-z", "0"]) == 0
    res = pd.read_csv(exp / "analysis" / "results.csv").set_index("trial_id")
    assert res.loc["abcde_00001", "se/click"] == pytest.approx(_hand_se(0.79, 300, 1700))
    assert res.loc["abcde_00001", "within_noise"] == False  # noqa: E712
    assert "saved label_counts.json" in capsys.readouterr().out
    assert main(["frontier", str(exp), "--noise-z", "-1", "--wandb", "disabled"]) == 2


def test_frontier_without_reachable_data_leaves_the_se_columns_empty(tmp_path, capsys):
    from analysis.__main__ import main
    exp = _experiment(tmp_path, {"path": str(tmp_path / "elsewhere")}, AUCS)
    assert main(["frontier", str(exp), "--wandb", "disabled"]) == 0
    out = capsys.readouterr().out
    assert "standard errors unknown for 4 of 4" in out and "valid split not found" in out
    res = pd.read_csv(exp / "analysis" / "results.csv").set_index("trial_id")
    assert res["se/click"].isna().all()
    # frontier rows are within noise whatever the SEs; the others cannot be decided
    assert res["within_noise"].tolist()[:1] == [True] and res["within_noise"].isna().sum() == 2
    assert res["hv_contribution"].notna().all()


def test_synthetic_data_is_found_in_its_cache_and_never_generated(tmp_path, monkeypatch):
    from analysis.label_counts import dataset_folder, eval_counts
    from analysis.results import load_results
    monkeypatch.setenv("PARETUNE_CACHE", str(tmp_path / "cache"))
    data = {"source": "synthetic", "rows": 3000, "objectives": OBJ, "seed": 3}
    folder = dataset_folder(data)
    assert folder.parent == tmp_path / "cache" / "synthetic"
    exp = _experiment(tmp_path, data, AUCS[:3], population=True)   # rows t.m0, t.m1, t.m2
    df = load_results(exp)
    assert df["trial_id"].tolist() == [f"abcde_00000.m{i}" for i in range(3)]
    counts, note = eval_counts(df, OBJ, exp)
    assert np.isnan(counts).all() and "not found" in note and not folder.exists()
    # the training side's resolver, on the raw and the resolved config, finds the same folder
    from trainables.config import resolve_config
    from trainables.data import resolve_data
    resolved = resolve_config({"data": data, "model": {"family": "fusion"},
                               "loss": {"kind": "bce"}})["data"]
    assert dataset_folder(resolved) == folder == resolve_data(data)[0]   # generated now
    y = pd.read_parquet(folder / "valid.parquet", columns=["label_click", "label_buy"])
    want = [[int(y[f"label_{o}"].sum()), int((y[f"label_{o}"] == 0).sum())] for o in OBJ]
    counts, note = eval_counts(df, OBJ, exp)
    assert counts.tolist() == [want] * 3 and str(folder) in note
    noisy, _ = add_noise(df, OBJ, df[["auc/click", "auc/buy"]].to_numpy(), [0.6, 0.5], 1.0,
                         exp)
    assert noisy.attrs["objectives"] == OBJ and len(noisy) == 3
    assert noisy["se/buy"].tolist() == pytest.approx(
        [_hand_se(a, *want[1]) for a in noisy["auc/buy"]])


def test_wandb_table_has_the_noise_columns():
    pytest.importorskip("wandb")
    from analysis.wandb_log import trials_table
    F = np.array(AUCS)
    df = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "group": "g", "status": "TERMINATED",
                       "auc/click": F[:, 0], "auc/buy": F[:, 1], "auc_sum": F.sum(axis=1)})
    counts = np.array([[[100, 900], [100, 900]]] * 4, dtype=float)
    counts[3] = np.nan
    df = pd.concat([df, noise_columns(F, OBJ, counts, [0.6, 0.5])], axis=1)
    table, names = trials_table(df, OBJ, [0, 3])
    assert names[-4:] == ["se/click", "se/buy", "within_noise", "hv_contribution"]
    rows = {r[0]: dict(zip(names, r)) for r in table.data}
    assert rows["a"]["se/click"] == pytest.approx(_hand_se(0.80, 100, 900))
    assert rows["d"]["se/click"] is None and rows["c"]["within_noise"] is False   # 0.1 behind a
    assert rows["b"]["within_noise"] is True                                        # 0.01 behind
    assert rows["d"]["within_noise"] is True            # on the frontier: within noise
