"""The fidelity report (analysis.report): its statistics against oracles, the label-skew
copy, and one small end-to-end report that resumes without retraining."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from analysis.report.data import positives, skewed_copy
from analysis.report.stats import auc_se, mean_std, pearson


def test_auc_se_matches_the_spread_of_auc_over_resampled_test_sets():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    n_pos, n_neg = 40, 4000
    # a score with a fixed population AUC; draw many test sets and compare the spread
    aucs = []
    for _ in range(400):
        s = np.r_[rng.normal(0.8, 1, n_pos), rng.normal(0, 1, n_neg)]
        y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
        aucs.append(roc_auc_score(y, s))
    se = auc_se(float(np.mean(aucs)), n_pos, n_neg)
    assert se == pytest.approx(np.std(aucs), rel=0.2)
    assert np.isnan(auc_se(0.7, 0, 10))


def test_pearson_and_mean_std_against_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20), rng.normal(size=20)
    r, p = pearson(x, y)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert 0 <= p <= 1
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3])[0])
    m, s = mean_std([1.0, 2.0, np.nan, 4.0])
    assert (m, s) == pytest.approx((7 / 3, np.std([1, 2, 4], ddof=1)))


def _area_above_half(points) -> float:
    """Brute force: the area of the union of the rectangles [0.5, x] x [0.5, y], strip by
    strip between consecutive x coordinates."""
    pts = [(x, y) for x, y in points if x > 0.5 and y > 0.5]
    xs = sorted({0.5, *(x for x, _ in pts)})
    return sum((r - l) * max([y - 0.5 for x, y in pts if x >= r], default=0.0)
               for l, r in zip(xs[:-1], xs[1:]))


def test_frontier_study_curve_area_against_pymoo_and_brute_force():
    from pymoo.indicators.hv import HV
    from analysis.report.studies.frontier import curve_area
    rng = np.random.default_rng(2)
    pts = rng.uniform(0.45, 0.8, size=(9, 2))            # some below chance: no area
    want = _area_above_half(pts)
    assert want > 0
    assert curve_area(pts) == pytest.approx(want, rel=1e-12)
    assert curve_area(pts) == pytest.approx(HV(ref_point=np.array([-0.5, -0.5]))(-pts),
                                            rel=1e-12)
    assert curve_area([(0.7, 0.6), (0.6, 0.7)]) == pytest.approx(0.2 * 0.1 * 2 - 0.1 * 0.1)


def test_frontier_study_reports_the_area_of_its_seed_mean_curves(tmp_path):
    """render() of the frontier study, fed run records: the area it states for each method
    is the brute-force area of that method's seed-mean (AUC a, AUC b) points."""
    import re
    from analysis.report.context import Context
    from analysis.report.studies import frontier
    objs = ["click", "like"]
    ctx = Context(out=tmp_path, data=tmp_path, objectives=objs, seeds=[0, 1],
                  options={"pairs": [("click", "like")], "weights": [0.2, 0.5, 0.8]},
                  counts={s: {o: (500, 5000) for o in objs} for s in ("train", "valid", "test")},
                  rho=np.array([[1.0, 0.1], [0.1, 1.0]]))
    runs = frontier.plan(ctx)
    assert len(runs) == 2 * 3 * 2                     # methods x weights x seeds
    rng = np.random.default_rng(4)
    records, cells = [], {}
    for run in runs:
        w = run.extra["w"]
        auc = {"click": 0.55 + 0.2 * w + rng.uniform(0, 0.05),
               "like": 0.75 - 0.2 * w + rng.uniform(0, 0.05)}
        records.append((run, {"status": "ok", "test": auc}))
        cells.setdefault(run.extra["loss"], {}).setdefault(w, []).append(
            (auc["click"], auc["like"]))
    want = {m: _area_above_half([tuple(np.mean(v, axis=0)) for v in by_w.values()])
            for m, by_w in cells.items()}
    assert want["rank_auc"] != pytest.approx(want["bce"])
    section = frontier.render(ctx, records)
    got = re.search(r"HarmonRank ([0-9.]+), MBCE ([0-9.]+)\.", section.markdown)
    assert got, section.markdown
    assert float(got.group(1)) == pytest.approx(want["rank_auc"], abs=6e-6)
    assert float(got.group(2)) == pytest.approx(want["bce"], abs=6e-6)
    assert f"{want['rank_auc']:.5f} vs MBCE {want['bce']:.5f}" in section.findings[0]


def test_skewed_copy_drops_positives_of_train_only(small_dataset, tmp_path):
    meta = yaml.safe_load((small_dataset / "meta.yaml").read_text())
    obj = meta["objectives"][-1]
    before = positives(small_dataset, [obj])
    folder, n, kept = skewed_copy(small_dataset, tmp_path / "skew", obj, 10)
    after = positives(folder, [obj])
    assert n == before["train"][obj][0] and kept == max(1, round(n / 10))
    assert after["train"][obj] == (kept, before["train"][obj][1] - (n - kept))
    assert after["valid"] == before["valid"] and after["test"] == before["test"]
    # the rows kept are the original rows, unchanged
    orig = pq.read_table(small_dataset / "train.parquet").to_pandas()
    new = pq.read_table(folder / "train.parquet").to_pandas()
    neg = orig[orig[f"label_{obj}"] == 0].reset_index(drop=True)
    assert neg.equals(new[new[f"label_{obj}"] == 0].reset_index(drop=True))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from trainables.data.synthetic import generate
    out = tmp_path_factory.mktemp("tiny-ds")
    generate(out, rows=8_000, objectives=["click", "like", "follow"], seed=3, progress=False)
    return out


def test_report_end_to_end_resumes_and_states_findings(tiny_dataset, tmp_path, capsys):
    from analysis.__main__ import main
    args = ["report", str(tmp_path / "rep"), "--data", str(tiny_dataset), "--seeds", "0",
            "--epochs", "1", "--batch-size", "2048", "--losses", "bce,rank_auc",
            "--skew-losses", "bce,rank_auc", "--pairs", "click:like", "--weights", "0.2,0.8",
            "--docs", str(tmp_path / "docs")]
    assert main(args) == 0
    rep = tmp_path / "rep"
    text = (rep / "report.md").read_text()
    for title in ("Loss comparison", "Label-skew", "Trade-off curves", "Attention"):
        assert title in text
    for png in ("losses.png", "label_skew.png", "frontiers.png", "attention.png"):
        assert (rep / png).stat().st_size > 1000 and (tmp_path / "docs" / png).is_file()
    records = [json.loads(l) for l in (rep / "runs.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in records)
    # losses 2 + skew 2 losses x 2 new factors + frontier 2 losses x 2 weights + attention
    # 2 norms; the skew's 1x runs are the loss study's runs
    assert len(records) == 2 + 4 + 4 + 2
    findings = json.loads((rep / "report.json").read_text())["findings"]
    allowed = ("agrees", "agrees weakly", "disagrees", "partly agrees",
               "note (the paper has no such baseline)")
    assert findings and all(f.split(":")[0] in allowed for f in findings)
    capsys.readouterr()
    assert main(args) == 0                       # everything is in runs.jsonl already
    assert "12 of 12 runs already done, 0 to go" in capsys.readouterr().out
    assert len((rep / "runs.jsonl").read_text().splitlines()) == len(records)


def test_report_rejects_bad_input_before_training(small_dataset, tmp_path, capsys):
    from analysis.__main__ import main
    assert main(["report", str(tmp_path / "r"), "--data", str(small_dataset),
                 "--objectives", "nope"]) == 2
    assert "unknown objective" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "r"), "--data", str(small_dataset),
                 "--studies", "tables"]) == 2
    assert "unknown study 'tables'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "r"), "--logs", str(tmp_path)]) == 2
    assert "--train-days" in capsys.readouterr().err
    assert not (tmp_path / "r" / "runs.jsonl").exists()
