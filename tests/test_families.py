"""The fidelity report's ``families`` study (analysis/report/studies/families.py): equal
member-epochs in its plan, hypervolumes that are analysis.frontier.hypervolume of the
rows, and winner statements that follow the numbers and their noise."""
from __future__ import annotations

import json
import re

import numpy as np

from analysis.frontier import hypervolume
from analysis.noise import auc_se
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
    top, tied = fam.winners({"a": 0.80, "b": 0.79, "c": 0.70}, {"a": 0.01, "b": 0.01, "c": 0.01})
    assert top == "a" and tied == ["b"]               # 0.01 < sqrt(2) x 0.01; 0.10 is not
    assert fam.winners({"a": 0.8, "b": 0.7}, {"a": 0.01, "b": 0.01}) == ("a", [])


def test_render_states_hypervolumes_and_winners_that_follow_the_records(tmp_path):
    ctx = _ctx(tmp_path)
    rng = np.random.default_rng(7)
    pairs = []
    for run in fam.plan(ctx):
        base = {"fusion": 0.55, "mlp": 0.62, "harmonrank": 0.68, "conditioned": 0.76}
        b = base[run.extra["family"]]
        # click: families 0.06+ apart (400 positives: beyond noise); like: 0.016 apart on 60
        # positives (SE about 0.035): within noise
        draw = lambda: {"click": b + rng.uniform(-0.01, 0.01),            # noqa: E731
                        "like": 0.70 + (b - 0.6) / 5 + rng.uniform(-0.005, 0.005)}
        if run.extra["family"] == "conditioned":
            pts = [{"test": draw()} for _ in range(11)]
            rec = {"status": "ok", "points": pts, "test": pts[0]["test"]}
        else:
            rec = {"status": "ok", "test": draw()}
        pairs.append((run, rec))
    sec = fam.render(ctx, pairs)
    hv, best = _hv_and_best(pairs, ctx)
    md = sec.markdown
    for f, values in hv.items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {fam.NAMES[f]} |"))
        mean, std = np.mean(values), np.std(values, ddof=1)
        assert f"{mean:.5f} ± {std:.5f}" in row, (row, values)
        assert ", ".join(f"{h:.5f}" for h in values) in row
        assert np.allclose(sec.data["hv"][f], values)
    cost = {line.split(" | ")[1] for line in md.splitlines()
            if any(line.startswith(f"| {n} |") for n in fam.NAMES.values())}
    assert cost == {str(3 * ctx.training["optim"]["epochs"])}   # (K + 1) x epochs, K = 2
    order = sorted(hv, key=lambda f: -np.mean(hv[f]))
    assert f"Hypervolume: {fam.NAMES[order[0]]}" in md
    for k, o in enumerate(OBJS):
        pos = ctx.counts["test"][o][0]
        scores = {f: b[k] for f, b in best.items()}
        top = max(scores, key=scores.get)
        se = {f: float(auc_se(v, pos, 4000 - pos)) for f, v in scores.items()}
        tied = sorted(f for f in scores if f != top and
                      scores[top] - scores[f] <= np.hypot(se[top], se[f]))
        line = next(x for x in md.splitlines() if x.startswith(f"- {o}:"))
        assert f"best AUC {scores[top]:.4f} from {fam.NAMES[top]}" in line
        if tied:
            assert "tie within noise" in line and all(fam.NAMES[f] in line for f in tied)
        else:
            assert "beyond noise" in line
        assert sorted(sec.data["wins"][o][1]) == tied and sec.data["wins"][o][0] == top
    lines = {o: next(x for x in md.splitlines() if x.startswith(f"- {o}:")) for o in OBJS}
    assert "beyond noise" in lines["click"] and "tie within noise" in lines["like"]
    assert sec.findings and sec.findings[0].startswith("note")


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
    assert len(cond) == 1 and len(cond[0]["points"]) == 11      # K = 2: 11 grid points
    text = (out / "report.md").read_text()
    assert "Model families at equal member-epochs" in text
    for f in fam.FAMILIES:
        rows = [p["test"] for r in recs if r["extra"]["family"] == f
                for p in (r.get("points") or [{"test": r["test"]}])]
        want = hypervolume(np.array([[x[o] for o in OBJS] for x in rows]), [0.5, 0.5])
        row = next(line for line in text.splitlines() if line.startswith(f"| {fam.NAMES[f]} |"))
        assert re.search(rf"\| {want:.5f} ± 0\.00000 \|", row), (row, want)
