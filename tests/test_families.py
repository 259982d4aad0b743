"""The fidelity report's ``families`` study (analysis/report/studies/families.py): equal
member-epochs in its plan, hypervolumes that are analysis.frontier.hypervolume of the
rows, and winner statements that follow the numbers and their noise."""
from __future__ import annotations

import json
import re

import numpy as np

import pytest

from analysis.frontier import hypervolume
from analysis.report.context import Context
from analysis.report.studies import families as fam

OBJS = ["click", "like"]


def _ctx(tmp_path, seeds=(0, 1), positives=(400, 60), rows=4000):
    counts = {s: {o: (p, rows) for o, p in zip(OBJS, positives)}
              for s in ("train", "valid", "test")}
    return Context(out=tmp_path, data=tmp_path, objectives=list(OBJS), seeds=list(seeds),
                   counts=counts, rho=np.eye(2))


def _hv_and_best(pairs, ctx):
    """From the records alone: family -> HV per seed, and family -> mean best AUC per
    objective."""
    pts: dict = {}
    for run, rec in pairs:
        rows = [p["test"] for p in rec["points"]] if rec.get("points") else [rec["test"]]
        pts.setdefault((run.extra["family"], run.seed), []).extend(
            [[r[o] for o in OBJS] for r in rows])
    hv, best = {}, {}
    for (f, s), v in pts.items():
        v = np.asarray(v)
        hv.setdefault(f, []).append(hypervolume(v, [0.5, 0.5]))
        best.setdefault(f, []).append(v.max(axis=0))
    return hv, {f: np.mean(b, axis=0) for f, b in best.items()}


def test_plan_gives_every_family_the_same_member_epochs(tmp_path):
    ctx = _ctx(tmp_path)
    runs = fam.plan(ctx)
    assert len(runs) == 2 * (3 * 3 + 1)               # seeds x (3 families x 3 weights + 1)
    cost: dict = {}
    for r in runs:
        cfg = r.config
        per = cfg.get("conditioning", {}).get("per_batch", 1)
        cost[(r.extra["family"], r.seed)] = cost.get((r.extra["family"], r.seed), 0) + \
            cfg["optim"]["epochs"] * per
        assert r.extra["member_epochs"] == cfg["optim"]["epochs"] * per
        assert ("weighting" in cfg) != ("conditioning" in cfg)
    assert len(set(cost.values())) == 1               # (K + 1) x epochs for every family
    assert {r.config["model"]["family"] for r in runs} == {"fusion", "mlp", "harmonrank"}


def test_winners_say_tie_within_noise_and_win_beyond_it():
    from analysis.report.verdicts import Measure
    def gap(best):                                    # SE of every gap: 0.0057
        return lambda x, y: Measure(best[x] - best[y], [], 0.004, 0.004)

    best = {"a": 0.80, "b": 0.79, "c": 0.70}
    top, tied = fam.winners(best, gap(best))
    assert top == "a" and tied == ["b"]               # 0.01 < 2 SE; 0.10 is not
    two = {"a": 0.8, "b": 0.7}
    assert fam.winners(two, gap(two)) == ("a", [])


def _records(ctx, tmp_path, signal, cond_points=11):
    """Every planned run with test scores from ``signal(family) -> {objective: lift}``."""
    from analysis.report.bootstrap import save_scores, score_name
    from tests._report_fakes import attach_noise, record, scores_for, test_rows
    labels = test_rows(OBJS, n=4000, rates=[0.1, 0.015])
    attach_noise(ctx, labels, tmp_path / "scores", input_signal=1.2)
    rng = np.random.default_rng(7)
    pairs = []
    for run in fam.plan(ctx):
        f = run.extra["family"]
        if f == "conditioned":
            prefs = [[i / (cond_points - 1), 1 - i / (cond_points - 1)] for i in range(cond_points)]
            S = np.stack([scores_for(labels, OBJS, {o: v * (0.5 + p[k]) for k, (o, v) in
                                                    enumerate(signal(f).items())}, rng)
                          for p in prefs])
            save_scores(tmp_path / "scores", run.key, {score_name(1, i): S[i]
                                                       for i in range(len(S))})
            pairs.append((run, record(run, labels, OBJS, S, prefs)))
        else:
            s = scores_for(labels, OBJS, signal(f), rng)
            save_scores(tmp_path / "scores", run.key, {"e1": s})
            pairs.append((run, record(run, labels, OBJS, s)))
    return pairs


def test_render_states_hypervolumes_winners_and_the_input_scores(tmp_path):
    """render() on records with real test scores: each family's HV is the mean of its
    per-seed HVs of the records' points; winners and the input-score statements follow the
    gaps and their SEs; a family far below the inputs is named with its validation gap."""
    ctx = _ctx(tmp_path, positives=(400, 60))
    lift = {"fusion": 0.2, "mlp": 0.6, "harmonrank": 1.0, "conditioned": 2.5}
    pairs = _records(ctx, tmp_path, lambda f: {"click": lift[f], "like": lift[f]})
    sec = fam.render(ctx, pairs)
    hv, best = _hv_and_best(pairs, ctx)
    md = sec.markdown
    for f, values in hv.items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {fam.NAMES[f]} |"))
        assert f"{np.mean(values):.5f} ± " in row, (row, values)
        assert ", ".join(f"{h:.5f}" for h in values) in row
        assert sec.data["hv"][f]["per_seed"] == pytest.approx(values)
        assert sec.data["hv"][f]["se_test"] > 0 and sec.data["hv"][f]["se_seeds"] >= 0
    cost = {line.split(" | ")[1] for line in md.splitlines()
            if any(line.startswith(f"| {n} |") for n in fam.NAMES.values())}
    assert cost == {str(3 * ctx.training["optim"]["epochs"])}   # (K + 1) x epochs, K = 2
    order = sorted(hv, key=lambda f: -np.mean(hv[f]))
    assert f"Hypervolume: {fam.NAMES[order[0]]}" in md
    for k, o in enumerate(OBJS):
        scores = {f: b[k] for f, b in best.items()}
        top = max(scores, key=scores.get)
        assert sec.data["wins"][o][0] == top
        line = next(x for x in md.splitlines() if x.startswith(f"- {o}:"))
        assert f"best AUC {scores[top]:.4f} from {fam.NAMES[top]}" in line
        for f, g in sec.data["inputs"][o]["families"].items():
            z = g["gap"]["effect"] / g["gap"]["se"]
            assert g["reaches"] == (z >= -2) and g["beats"] == (z > 2)
    # the conditioned family (lift 2.5 vs the inputs' 1.2) beats the inputs; fusion (0.2)
    # cannot reach them, and the report names it with its validation gap
    for o in OBJS:
        fams = sec.data["inputs"][o]["families"]
        assert fams["conditioned"]["beats"] and not fams["fusion"]["reaches"]
        line = next(x for x in md.splitlines() if x.startswith(f"- {o}: the best single input"))
        assert "cannot reach it" in line and "fusion (weighted formula)" in line
        assert "best validation AUC" in line
    assert "conditioned HarmonRank" in md and not any("," in n for n in fam.NAMES.values())
    for f in lift:                    # the spread across weights, from the records by hand
        want = np.mean([max(np.ptp([[p["valid"][o] for o in OBJS] for run, rec in pairs
                                    if run.extra["family"] == f and run.seed == s
                                    for p in (rec.get("points") or [rec])], axis=0))
                        for s in ctx.seeds])
        assert sec.data["weight_spread"][f] == pytest.approx(want)
    assert [f["verdict"] for f in sec.findings] == ["note (the paper has no such baseline)"] * 2
    assert "In hypervolume" in sec.findings[1]["text"]
    assert (tmp_path / "families.png").stat().st_size > 1000


def test_families_study_end_to_end_on_tiny_synthetic_data(tmp_path):
    """Trains every family on 8k synthetic rows (1 epoch, one seed; a few seconds) through
    the report's runs, and checks the rendered HV against the runs.jsonl records."""
    from trainables.data.synthetic import generate
    from analysis.report import build
    data = tmp_path / "ds"
    generate(data, rows=8_000, objectives=["click", "like", "follow"], seed=3, progress=False)
    out = tmp_path / "rep"
    build(out, data, seeds=[0], studies=["families"],
          options={"family_objectives": OBJS},
          training={"optim": {"epochs": 1, "batch_size": 2048}})
    recs = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines()]
    assert len(recs) == 3 * 3 + 1 and all(r["status"] == "ok" for r in recs)
    cond = [r for r in recs if r["extra"]["family"] == "conditioned"]
    assert len(cond) == 1 and len(cond[0]["history"][0]["points"]) == 11   # K = 2: 11 points
    text = (out / "report.md").read_text()
    assert "Model families at equal member-epochs" in text
    from analysis.report.runs import view
    for f in fam.FAMILIES:
        rows = [p["test"] for r in recs if r["extra"]["family"] == f
                for p in (view(r, "own").get("points") or [view(r, "own")])]
        want = hypervolume(np.array([[x[o] for o in OBJS] for x in rows]), [0.5, 0.5])
        row = next(line for line in text.splitlines() if line.startswith(f"| {fam.NAMES[f]} |"))
        assert re.search(rf"\| {want:.5f} ± [0-9.]+ \|", row), (row, want)
    assert "Against the input scores" in text and (out / "families.png").is_file()
