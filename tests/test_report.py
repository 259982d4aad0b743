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


def test_bootstrap_aucs_are_weighted_scikit_learn_aucs():
    """boot_aucs under row counts = scikit-learn's AUC with those counts as sample weights
    (ties count half in both)."""
    from sklearn.metrics import roc_auc_score
    from analysis.report.bootstrap import boot_aucs
    rng = np.random.default_rng(5)
    n = 500
    y = np.stack([rng.random(n) < 0.3, rng.random(n) < 0.05], 1).astype(np.int8)
    s = np.round(rng.normal(size=n) + y[:, 0], 1)                  # many ties
    counts = rng.multinomial(n, np.full(n, 1 / n), size=6)
    got = boot_aucs(s, y, counts)
    for b in range(6):
        for k in range(2):
            want = roc_auc_score(y[:, k], s, sample_weight=counts[b])
            assert got[b, k] == pytest.approx(want, abs=1e-12)
    assert boot_aucs(s, y, np.ones((1, n)))[0] == pytest.approx(
        [roc_auc_score(y[:, k], s) for k in range(2)])


def test_test_noise_is_paired_and_verdicts_need_two_standard_errors(tmp_path):
    """A statistic of one run minus itself has no test-set noise; the SE of one AUC is
    the spread of scikit-learn's AUC over the same resamples; the verdict words follow
    effect / SE with the threshold 2."""
    from sklearn.metrics import roc_auc_score
    from analysis.report.bootstrap import TestNoise, save_scores
    from analysis.report.verdicts import Measure, judge, measure
    rng = np.random.default_rng(6)
    n = 2000
    y = np.stack([rng.random(n) < 0.2, rng.random(n) < 0.1], 1).astype(np.int8)
    s1, s2 = rng.normal(size=n) + y[:, 0], rng.normal(size=n) + 0.5 * y[:, 1]
    noise = TestNoise(y, ["a", "b"], tmp_path, {"score_a": s1}, B=50)
    save_scores(tmp_path, "k1", {"e1": s1})
    save_scores(tmp_path, "k2", {"e1": s2})
    r1 = {"key": "k1", "objectives": ["a", "b"], "epoch": 1,
          "test": dict(zip("ab", [roc_auc_score(y[:, k], s1) for k in range(2)]))}
    r2 = {"key": "k2", "objectives": ["a"], "epoch": 1, "test": {"a": roc_auc_score(y[:, 0], s2)}}
    same = measure(noise, [0], lambda look, s: look.auc(r1)["a"] - look.inputs()["score_a"]["a"])
    assert same.effect == pytest.approx(0, abs=1e-12) and same.se_test == pytest.approx(0, abs=1e-12)
    one = measure(noise, [0], lambda look, s: look.auc(r2)["a"])
    want = [roc_auc_score(y[:, 0], s2, sample_weight=c) for c in noise.counts]
    assert one.effect == pytest.approx(r2["test"]["a"])
    assert one.se_test == pytest.approx(np.std(want, ddof=1), rel=1e-9)
    assert np.isnan(one.se_seed) and one.se == pytest.approx(one.se_test)
    seeds = measure(noise, [0, 1], lambda look, s: look.auc(r1)["b"] + 0.01 * s)
    assert seeds.se_seed == pytest.approx(0.005) and seeds.per_seed[1] - seeds.per_seed[0] == \
        pytest.approx(0.01)
    assert seeds.se == pytest.approx(np.hypot(seeds.se_seed, seeds.se_test))
    for effect, word in ((0.021, "agrees"), (0.019, "inconclusive"), (-0.019, "inconclusive"),
                         (-0.021, "disagrees")):
        assert judge(Measure(effect, [], 0.006, 0.008)) == word      # SE 0.01


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


def test_frontier_study_reports_the_mean_area_of_its_seed_curves(tmp_path):
    """render() of the frontier study, fed run records with real test scores: the area it
    states for each method is the mean over seeds of the brute-force area of that seed's
    (AUC a, AUC b) points, and the verdict follows the area gap and its SE."""
    import re
    from analysis.report.bootstrap import save_scores
    from analysis.report.context import Context
    from analysis.report.studies import frontier
    from tests._report_fakes import attach_noise, record, scores_for, test_rows
    objs = ["click", "like"]
    ctx = Context(out=tmp_path, data=tmp_path, objectives=objs, seeds=[0, 1],
                  options={"pairs": [("click", "like")], "weights": [0.2, 0.5, 0.8]},
                  counts={s: {o: (900, 3000) for o in objs} for s in ("train", "valid", "test")},
                  rho=np.array([[1.0, 0.1], [0.1, 1.0]]))
    labels = test_rows(objs)
    attach_noise(ctx, labels, tmp_path / "scores")
    runs = frontier.plan(ctx)
    assert len(runs) == 2 * 3 * 2                     # methods x weights x seeds
    rng = np.random.default_rng(4)
    records, cells = [], {}
    for run in runs:
        w = run.extra["w"]
        lift = 0.3 if run.extra["loss"] == "rank_auc" else 0.0      # rank_auc: better on both
        s = scores_for(labels, objs, {"click": 0.4 + 1.2 * w + lift,
                                      "like": 1.6 - 1.2 * w + lift}, rng)
        save_scores(tmp_path / "scores", run.key, {"e1": s})
        rec = record(run, labels, objs, s)
        records.append((run, rec))
        cells.setdefault((run.extra["loss"], run.seed), []).append(
            (rec["test"]["click"], rec["test"]["like"]))
    want = {m: np.mean([_area_above_half(cells[(m, s)]) for s in ctx.seeds])
            for m in ("rank_auc", "bce")}
    section = frontier.render(ctx, records)
    got = re.search(r"HarmonRank ([0-9.]+) ± ([0-9.]+), MBCE ([0-9.]+) ± ([0-9.]+)",
                    section.markdown)
    assert got, section.markdown
    assert float(got.group(1)) == pytest.approx(want["rank_auc"], abs=6e-6)
    assert float(got.group(3)) == pytest.approx(want["bce"], abs=6e-6)
    (f,) = section.findings
    m = f["numbers"]["effect"]
    assert m["effect"] == pytest.approx(want["rank_auc"] - want["bce"], abs=1e-9)
    assert m["se"] > 0 and m["se_seeds"] > 0 and m["se_test"] > 0
    assert f["verdict"] == "agrees" and m["effect"] > 2 * m["se"]      # a lift of 0.3 on both
    assert f"{m['effect']:+.5f} ± {m['se']:.5f}" in f["text"]


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
            "--epochs", "2", "--batch-size", "2048", "--losses", "bce,rank_auc",
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
    report = json.loads((rep / "report.json").read_text())
    findings = report["findings"]
    allowed = ("agrees", "disagrees", "inconclusive", "note (the paper has no such baseline)")
    assert findings and all(f["verdict"] in allowed for f in findings)
    for f in findings:                     # every verdict follows its printed effect and SE
        assert f["text"].startswith(f["verdict"] + ":")
        m = f["numbers"].get("effect")
        if f["verdict"] in allowed[:3] and m is not None and not f["numbers"].get("no_drop"):
            z = m["effect"] / m["se"]
            assert f["verdict"] == ("agrees" if z > 2 else "disagrees" if z < -2
                                    else "inconclusive"), f
            assert f"{m['effect']:+.2f}" in f["text"] or f"{m['effect']:+.4f}" in f["text"] \
                or f"{m['effect']:+.5f}" in f["text"]
    assert report["epoch_rule"] == "own" and report["noise"]["bootstrap_resamples"] == 200
    # two epochs: every record has both epochs' valid and test AUCs and each rule's pick
    for r in records:
        assert [h["epoch"] for h in r["history"]] == [1, 2]
        own = r["chosen"]["own"]
        w = np.asarray(r["weights"])
        scored = [sum(wk * h["valid"][o] for wk, o in zip(w, r["objectives"]))
                  for h in r["history"]]
        assert own == int(np.argmax(scored)) + 1 and r["chosen"]["final"] == 2
        assert (rep / "scores" / f"{r['key']}.npz").is_file()
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


def test_mp_stage_runs_at_the_given_threads_and_counts_in_the_total(tmp_path, monkeypatch):
    """The report's MP stage: its days printed as dates, run with --threads torch threads
    (restored afterwards), its time recorded and counted in the report's total; a second
    invocation reuses it and says so."""
    import torch
    from analysis.report import build
    from analysis.report.data import MP_STAGE_FILE, mp_dataset
    from tests._kuairand import write_kuairand
    from trainables.kuairand.days import parse_days
    logs = write_kuairand(tmp_path / "kr", n=1500, n_users=20, n_videos=20)
    lines, before = [], torch.get_num_threads()
    torch.set_num_threads(2)              # so that 1 thread during the stage is a change
    seen = {}
    import trainables.kuairand.pipeline as pipeline
    real = pipeline.run

    def spy(*a, **k):                  # the thread count the stage runs under
        seen["threads"] = torch.get_num_threads()
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "run", spy)
    data = mp_dataset(tmp_path / "rep", logs, parse_days("2022-04-25:2022-04-26"),
                      parse_days("2022-04-27:2022-04-29"), threads=1, log=lines.append)
    assert seen["threads"] == 1 and torch.get_num_threads() == 2
    torch.set_num_threads(before)
    assert "2022-04-25" in lines[0] and "datetime" not in lines[0]
    info = json.loads((tmp_path / "rep" / MP_STAGE_FILE).read_text())
    assert info["threads"] == 1 and info["seconds"] > 0 and info["this_invocation"]
    mp_dataset(tmp_path / "rep", logs, parse_days("2022-04-25:2022-04-26"),
               parse_days("2022-04-27:2022-04-29"), threads=1, log=lines.append)
    assert not json.loads((tmp_path / "rep" / MP_STAGE_FILE).read_text())["this_invocation"]
    build(tmp_path / "rep", data, objectives=["click", "long_view"], seeds=[0],
          studies=["losses"], options={"losses": ["bce"]},
          training={"optim": {"epochs": 1, "batch_size": 512}}, log=lines.append)
    text = (tmp_path / "rep" / "report.md").read_text()
    assert f"The MP stage took {info['seconds'] / 60:.1f} min at 1 torch thread(s) in an " \
           "earlier invocation" in text and "MP stage and runs together" in text
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["mp_stage"]["threads"] == 1
    from analysis.report import _timing                  # this invocation: MP stage included
    from analysis.report.context import Context
    ctx = Context(out=tmp_path, data=tmp_path, objectives=["click"], seeds=[0],
                  mp={"seconds": 120.0, "threads": 1, "this_invocation": True})
    assert "This invocation took 3.0 min" in _timing(ctx, 60.0, 30.0)
    assert "together 2.5 min" in _timing(ctx, 60.0, 30.0)
    ctx.mp["this_invocation"] = False
    assert "This invocation took 1.0 min" in _timing(ctx, 60.0, 30.0)
