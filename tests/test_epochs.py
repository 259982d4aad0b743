"""Which epoch a trial's point stands for (analysis.epochs; docs/DESIGN.md, "Which epoch is
a trial's point"): the rule against a brute-force argmax, each weighting's declared
trade-off, the results table's columns for trials, members and grid points, and export of
the chosen epoch's checkpoint (the model reproduces the AUCs reported for that epoch)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.epochs import chosen_epoch, choose_epoch, own_weights

OBJ = ["click", "buy", "follow"]


def _history(rng, epochs=6, prefix=""):
    return [{"epoch": e + 1, **{f"{prefix}auc/{o}": float(v) for o, v in
                                zip(OBJ, rng.uniform(0.5, 0.9, len(OBJ)))}}
            for e in range(epochs)]


def test_rules_pick_the_brute_force_epoch():
    rng = np.random.default_rng(0)
    for trial in range(50):
        hist = _history(rng)
        A = np.array([[h[f"auc/{o}"] for o in OBJ] for h in hist])
        w = rng.dirichlet(np.ones(3))
        assert choose_epoch(hist, OBJ, "own", w) == int(np.argmax(A @ w))
        assert choose_epoch(hist, OBJ, "sum", w) == int(np.argmax(A.sum(1)))
        assert choose_epoch(hist, OBJ, "final", w) == len(hist) - 1
        assert choose_epoch(hist, OBJ, "own", None) == len(hist) - 1   # no own weights
    corner = np.array([0.0, 1.0, 0.0])           # the buy corner: buy's best epoch alone
    hist = _history(rng)
    assert choose_epoch(hist, OBJ, "own", corner) == \
        int(np.argmax([h["auc/buy"] for h in hist]))
    tie = [{"epoch": 1, "auc/click": 0.7}, {"epoch": 2, "auc/click": 0.7}]
    assert choose_epoch(tie, ["click"], "sum") == 0              # ties: the earlier epoch
    nan = [{"epoch": 1, "auc/click": 0.6}, {"epoch": 2, "auc/click": float("nan")}]
    assert choose_epoch(nan, ["click"], "sum") == 0 and choose_epoch(nan, ["click"], "final") == 1
    assert choose_epoch([{"epoch": 1}], ["click"], "own", [1.0]) is None
    with pytest.raises(ValueError, match="final, own|own, final"):
        choose_epoch(hist, OBJ, "best")


def test_each_weighting_declares_its_trade_off():
    from trainables.weighting.pe_ltr import project_bounded_simplex
    static = {"weighting": {"kind": "static", "weights": {"click": 2, "buy": 1, "follow": 1}}}
    np.testing.assert_allclose(own_weights(static, OBJ), [0.5, 0.25, 0.25])
    assert own_weights({}, OBJ).tolist() == pytest.approx([1 / 3] * 3)   # static, equal
    bounds = {"click": 0.6, "buy": 0.1, "follow": 0.05}
    pe = own_weights({"weighting": {"kind": "pe_ltr", "bounds": bounds}}, OBJ)
    want = project_bounded_simplex(np.full(3, 1 / 3), np.array([0.6, 0.1, 0.05]))
    np.testing.assert_allclose(pe, want)
    np.testing.assert_allclose(pe, [0.6, 0.2, 0.2])     # the click bound binds; the rest equal
    assert (pe >= [0.6, 0.1, 0.05]).all() and pe.sum() == pytest.approx(1)
    assert own_weights({"weighting": {"kind": "self_evolving"}}, OBJ) is None
    cond = {"conditioning": {"at": {"click": 1, "buy": 3, "follow": 0}}}
    np.testing.assert_allclose(own_weights(cond, OBJ), [0.25, 0.75, 0.0])
    assert own_weights({"conditioning": {}}, OBJ) is None
    pick = chosen_epoch([{"epoch": 1, "auc/click": 0.9, "auc/buy": 0.1, "auc/follow": 0.1,
                          "checkpoint_dir_name": "checkpoint_000000"},
                         {"epoch": 2, "auc/click": 0.1, "auc/buy": 0.9, "auc/follow": 0.9,
                          "checkpoint_dir_name": "checkpoint_000001"}],
                        {**static, "data": {"objectives": OBJ}})
    assert pick == {"index": 0, "epoch": 1, "rule": "own", "checkpoint": "checkpoint_000000",
                    "weights": {"click": 0.5, "buy": 0.25, "follow": 0.25}}


def _trial(exp, name, cfg, history):
    tdir = exp / name
    tdir.mkdir(parents=True)
    (tdir / "params.json").write_text(json.dumps(cfg))
    (tdir / "result.json").write_text("".join(json.dumps({**h, "trial_id": name[:11],
                                                          "timestamp": 1000 + h["epoch"]})
                                              + "\n" for h in history))
    return tdir


def test_results_rows_stand_for_their_own_epoch(tmp_path):
    """One static trial, one PE-LTR population (2 members), one conditioned trial (2 grid
    points), one self-evolving trial: each row's auc/<obj> is its own rule's epoch."""
    from analysis.results import load_results
    rng = np.random.default_rng(1)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "paretune.json").write_text(json.dumps({"objectives": OBJ}))
    base = {"data": {"path": "x", "objectives": OBJ}, "model": {"family": "mlp"},
            "loss": {"kind": "bce"}, "optim": {"epochs": 6}}
    w = {"click": 0.1, "buy": 0.1, "follow": 0.8}
    _trial(exp, "abcde_00000-s", {**base, "weighting": {"kind": "static", "weights": w}},
           _history(rng))
    members = [{"weighting": {"bounds": {"click": 0.9}}}, {"weighting": {"bounds": {"buy": 0.9}}}]
    hist = [{**a, **b, "epoch": a["epoch"]} for a, b in zip(_history(rng, prefix="m0/"),
                                                               _history(rng, prefix="m1/"))]
    _trial(exp, "abcde_00001-p", {**base, "weighting": {"kind": "pe_ltr"},
                                  "population": members}, hist)
    prefs = [{"click": 1.0, "buy": 0.0, "follow": 0.0}, {"click": 0.0, "buy": 0.5, "follow": 0.5}]
    hist = [{**a, **b, "epoch": a["epoch"], "points": 2,
             **{f"p{i}/pref/{o}": v for i, p in enumerate(prefs) for o, v in p.items()}}
            for a, b in zip(_history(rng, prefix="p0/"), _history(rng, prefix="p1/"))]
    _trial(exp, "abcde_00002-c", {**base, "conditioning": {"per_batch": 2}}, hist)
    _trial(exp, "abcde_00003-e", {**base, "weighting": {"kind": "self_evolving"}},
           _history(rng))
    df = load_results(exp).set_index("trial_id")
    res = {d.name[:11]: [json.loads(line) for line in (d / "result.json").read_text().splitlines()]
           for d in exp.iterdir() if d.is_dir()}

    def brute(trial, prefix, weights):
        A = np.array([[r[f"{prefix}auc/{o}"] for o in OBJ] for r in res[trial]])
        return int(np.argmax(A @ np.asarray(weights))) + 1

    want = {"abcde_00000": brute("abcde_00000", "", [0.1, 0.1, 0.8]),
            "abcde_00001.m0": brute("abcde_00001", "m0/", [0.9, 0.05, 0.05]),
            "abcde_00001.m1": brute("abcde_00001", "m1/", [0.05, 0.9, 0.05]),
            "abcde_00002.p0": brute("abcde_00002", "p0/", [1, 0, 0]),
            "abcde_00002.p1": brute("abcde_00002", "p1/", [0, 0.5, 0.5]),
            "abcde_00003": 6}
    for row, epoch in want.items():
        r = df.loc[row]
        assert r["epoch"] == epoch and r["own/epoch"] == epoch, row
        trial, _, idx = row.partition(".")
        prefix = f"{idx}/" if idx else ""
        at = res[trial][epoch - 1]
        assert [r[f"auc/{o}"] for o in OBJ] == [at[f"{prefix}auc/{o}"] for o in OBJ]
        last = res[trial][-1]
        assert [r[f"final/auc/{o}"] for o in OBJ] == [last[f"{prefix}auc/{o}"] for o in OBJ]
    assert df.loc["abcde_00003", "epoch_rule"] == "final (no own weights)"
    assert df.loc["abcde_00000", "own/weight/follow"] == pytest.approx(0.8)
    final = load_results(exp, "final").set_index("trial_id")
    assert (final["epoch"] == 6).all()
    sums = load_results(exp, "sum").set_index("trial_id")
    A = np.array([[h[f"auc/{o}"] for o in OBJ] for h in res["abcde_00000"]])
    assert sums.loc["abcde_00000", "epoch"] == int(np.argmax(A.sum(1))) + 1


@pytest.fixture(scope="module")
def trained_trial(tmp_path_factory, small_dataset):
    """A real trial folder in Tune's layout: a static-weight MLP trained 4 epochs at one
    corner (the fourth objective) by the one loop, a checkpoint per epoch, one result line
    per epoch."""
    from trainables.loop import _save_checkpoint, train_loop_per_worker
    import yaml
    objectives = yaml.safe_load((small_dataset / "meta.yaml").read_text())["objectives"]
    root = tmp_path_factory.mktemp("exp-ckpt")
    exp = root / "exp"
    tdir = exp / "abcde_00000-mlp"
    tdir.mkdir(parents=True)
    (exp / "paretune.json").write_text(json.dumps({"objectives": objectives}))
    w = {o: float(o == objectives[3]) for o in objectives}
    cfg = {"data": {"path": str(small_dataset), "objectives": objectives},
           "model": {"family": "mlp"}, "loss": {"kind": "bce"},
           "weighting": {"kind": "static", "weights": w},
           "optim": {"epochs": 4, "batch_size": 512, "lr": 0.03}, "run": {"gauc": False}}
    lines = []

    def report(metrics, checkpoint_dir=None):
        name = f"checkpoint_{len(lines):06d}"
        from trainables.loop import _load_checkpoint
        _save_checkpoint(tdir / name, _load_checkpoint(checkpoint_dir))
        lines.append({**metrics, "trial_id": "abcde_00000", "checkpoint_dir_name": name,
                      "timestamp": 1000 + metrics["epoch"]})

    train_loop_per_worker(cfg, report=report)
    (tdir / "params.json").write_text(json.dumps(cfg))
    (tdir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return exp, objectives, lines


def test_export_writes_the_chosen_epochs_model(trained_trial, tmp_path):
    from analysis.__main__ import main
    from analysis.results import load_results
    from trainables.data.schema import load_dataset
    from trainables.loop import evaluate, load_model
    exp, objectives, lines = trained_trial
    df = load_results(exp)
    epoch = int(df["epoch"][0])
    corner = [r[f"auc/{objectives[3]}"] for r in lines]
    assert epoch == int(np.argmax(corner)) + 1          # the corner objective's best epoch
    assert epoch != 4                                   # so own and final differ here
    for rule, e in (("own", epoch), ("final", 4)):
        out = tmp_path / rule
        assert main(["export", str(exp), "--point", "abcde_00000", "--epoch", rule,
                     "--out", str(out)]) == 0
        info = json.loads((out / "preference.json").read_text())
        assert info["epoch"] == e and info["point_epoch"] == e
        model, _ = load_model(out)
        ds = load_dataset(json.loads((exp / "abcde_00000-mlp" / "params.json").read_text())
                          ["data"]["path"], objectives)
        got = evaluate(model, ds.tensors("valid"), objectives, 65536, with_gauc=False)
        for o in objectives:                            # the model of the reported epoch
            assert got[f"auc/{o}"] == pytest.approx(lines[e - 1][f"auc/{o}"], abs=1e-6)
            assert info["auc"][o] == pytest.approx(lines[e - 1][f"auc/{o}"])


def test_export_refuses_a_checkpoint_that_was_not_kept(trained_trial, tmp_path, capsys):
    import shutil
    from analysis.__main__ import main
    from analysis.results import load_results
    exp, objectives, lines = trained_trial
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy)
    epoch = int(load_results(copy)["epoch"][0])
    kept = {1, 2, 3, 4} - {epoch}                      # the point's checkpoint is gone
    shutil.rmtree(copy / "abcde_00000-mlp" / f"checkpoint_{epoch - 1:06d}")
    assert main(["export", str(copy), "--point", "abcde_00000", "--out",
                 str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"epoch {epoch}" in err and "was not kept" in err and "--nearest-checkpoint" in err
    assert not (tmp_path / "x").exists()
    assert main(["export", str(copy), "--point", "abcde_00000", "--out", str(tmp_path / "y"),
                 "--nearest-checkpoint"]) == 0
    near = min(kept, key=lambda e: (abs(e - epoch), -e))
    info = json.loads((tmp_path / "y" / "preference.json").read_text())
    assert info["epoch"] == near and info["point_epoch"] == epoch
    assert info["auc"] == pytest.approx({o: lines[near - 1][f"auc/{o}"] for o in objectives})
    assert f"nearest to the point's epoch {epoch}" in capsys.readouterr().out
