"""The MP stage: feature codes, the MP models on the shared feature encoder, task weights
from the weighting registry, and the stage end to end on KuaiRand fixture folders (its
config and command line: tests/test_mp_config.py)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests._kuairand import SMALL, need_sample, pattern, write_config, write_kuairand
from trainables import kuairand as kr
from trainables.data import DatasetError, load_dataset
from trainables.kuairand.config import config_from_dict, load_config
from trainables.kuairand.pipeline import _durations, run
from trainables.kuairand.splits import plan_splits
from trainables.models import MODELS
from trainables.models._features import FeatureEncoder, FeatureSpec
from trainables.mp import MP_MODELS, build_mp_model, mp_model_params
from trainables.mp.__main__ import main as mp_main
from trainables.mp.codes import FeatureCodes, Vocab
from trainables.mp.config import task_weighting
from trainables.mp.train import MPData, TrainConfig, auc_by_objective, fit, predict
from trainables.weighting import StepContext, pe_ltr_weights


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one thread is faster, and much faster on a busy machine
    (OpenMP threads spin when the cores are shared)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cfg(**sections):
    """A small checked config: SMALL with ``sections`` laid over it."""
    raw = {k: dict(v) for k, v in SMALL.items()}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    return config_from_dict(raw, "test-config")


def _quiet(msg):
    pass


# --------------------------------------------------------------------------- codes
def test_vocab_unknown_code_and_hashing():
    v = Vocab.fit("tab", pd.Series([3, 1, 1, np.nan, 7]))
    assert v.cardinality == 4
    assert v.encode(pd.Series([1, 3, 7, 5, np.nan])).tolist() == [1, 2, 3, 0, 0]
    s = Vocab.fit("s", pd.Series(["a", "b", None]))
    assert s.encode(pd.Series(["b", "z", None])).tolist() == [2, 0, 0]
    h = Vocab.fit("user_id", pd.Series(np.arange(100)), max_size=10)
    assert h.cardinality == 10
    c = h.encode(pd.Series([0, 5, 99, 1000]))
    assert c[:3].min() >= 1 and c[:3].max() <= 9 and c[3] == 0
    assert (h.encode(pd.Series(np.arange(100))) == h.encode(pd.Series(np.arange(100)))).all()
    codes = FeatureCodes.fit(pd.DataFrame({"a": [1, 2], "x": [1.0, 3.0]}), [], ["a"], ["x"])
    assert codes.numbers(pd.DataFrame({"a": [1], "x": [np.nan]})).tolist() == [[0.0]]
    assert codes.numbers(pd.DataFrame({"a": [1], "x": [3.0]})).tolist() == [[1.0]]


def test_codes_describe_what_the_shared_encoder_embeds():
    """The fitted codes' FeatureSpec is what the project's one FeatureEncoder (the ME
    models' too) embeds inside every MP model."""
    frame = pd.DataFrame({"user_id": [5, 6, 7, 5], "tab": [1, 1, 2, 3],
                          "x": [0.0, 1.0, 2.0, 3.0]})
    codes = FeatureCodes.fit(frame, ["user_id"], ["tab"], ["x"])
    assert codes.spec == FeatureSpec((("user_id", 4), ("tab", 4)), ("x",))
    for family in MP_MODELS:
        net = build_mp_model(family, 2, codes.spec, {"emb_dim": 3})
        assert type(net.inputs) is FeatureEncoder
        assert net.inputs.table.num_embeddings == 8 and net.inputs.out_dim == 2 * 3 + 1
        out = net(torch.as_tensor(codes.categorical(frame)),
                  torch.as_tensor(codes.numbers(frame)))
        assert out.shape == (4, 2)


# --------------------------------------------------------------------------- models
def _toy(n: int, seed: int):
    """Two categorical columns whose values drive two correlated tasks."""
    rng = np.random.default_rng(seed)
    cards = [21, 11]
    cat = np.stack([rng.integers(1, c, n) for c in cards], 1)
    e0, e1 = np.random.default_rng(0).normal(0, 1.5, (2, 21))
    z = e0[cat[:, 0]] + e1[cat[:, 1] % 11]
    y = np.stack([rng.random(n) < 1 / (1 + np.exp(-z)),
                  rng.random(n) < 1 / (1 + np.exp(-(z - 2)))], 1).astype(np.float32)
    num = rng.normal(0, 1, (n, 1)).astype(np.float32)
    spec = FeatureSpec((("a", cards[0]), ("b", cards[1])), ("x",))
    return spec, MPData.from_numpy(cat, num, y)


@pytest.mark.parametrize("name", ["shared_bottom", "mmoe"])
def test_models_shapes_and_learn(name):
    torch.manual_seed(0)
    spec, train = _toy(4000, 1)
    _, valid = _toy(2000, 2)
    small = {"bottom": [32]} if name == "shared_bottom" else {"expert": [32], "experts": 3}
    net = build_mp_model(name, 2, spec, {"emb_dim": 4, "tower": [16], **small})
    assert net(train.cat[:5], train.num[:5]).shape == (5, 2)
    assert all(p.requires_grad for p in net.shared_parameters())
    cfg = TrainConfig(epochs=3, batch_size=256, lr=1e-2, patience=3)
    res = fit(net, train, valid, task_weighting("static", ["a", "b"]), cfg, ["a", "b"],
              progress=False, log=_quiet)
    aucs = auc_by_objective(predict(net, valid), valid.labels.numpy(), ["a", "b"])
    assert min(aucs.values()) > 0.6, aucs
    assert res.best_epoch >= 1 and len(res.history) >= 1
    p = predict(net, valid)
    assert p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1


def test_model_registry_is_its_own_and_declares_by_signature():
    assert not set(MP_MODELS) & set(MODELS)          # no MP name shadows an ME model's
    assert {"emb_dim", "experts", "expert", "tower", "dropout"} == set(mp_model_params("mmoe"))
    with pytest.raises(ValueError, match=pattern("unknown MP model 'dnn'", "mmoe",
                                                 "shared_bottom")):
        build_mp_model("dnn", 1, FeatureSpec())
    with pytest.raises(ValueError, match=pattern("has no parameter(s) experts",
                                                 "allowed: bottom")):
        build_mp_model("shared_bottom", 1, FeatureSpec(), {"experts": 2})


# --------------------------------------------------------------------------- task weights
def _batch_losses(net, data):
    logits = net(data.cat, data.num)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, data.labels, reduction="none").mean(0)
    return logits, losses


def _grads(losses, params) -> torch.Tensor:
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        losses[k], params, retain_graph=True)]) for k in range(losses.shape[0])]
    return torch.stack(rows).detach()


def test_pe_ltr_task_weights_are_the_registry_solver_on_the_shared_gradients():
    """The MP stage's pe_ltr is the registry's weighting: its weights are exactly
    ``trainables.weighting.pe_ltr_weights`` on the per-task gradients of the model's
    ``shared_parameters()`` (not of all its parameters)."""
    torch.manual_seed(0)
    spec, data = _toy(512, 3)
    net = build_mp_model("mmoe", 2, spec, {"emb_dim": 4, "expert": [32], "tower": [16]})
    w = task_weighting("pe_ltr", ["a", "b"], {"gradients": "shared", "bounds": {"b": 0.1}})
    logits, losses = _batch_losses(net, data)
    w.combine(losses, StepContext(0, 1, net, logits, data.labels, (data.cat, data.num)))
    shared = pe_ltr_weights(_grads(losses, net.shared_parameters()).double(), [0.0, 0.1])
    every = pe_ltr_weights(_grads(losses, list(net.parameters())).double(), [0.0, 0.1])
    assert torch.equal(w.weights(), shared.float())
    assert not torch.allclose(shared, every, atol=1e-4)     # the hook is what decides


def test_pe_ltr_task_weights_through_the_loop():
    torch.manual_seed(0)
    spec, train = _toy(2000, 3)
    net = build_mp_model("mmoe", 2, spec, {"emb_dim": 4, "expert": [32], "tower": [16]})
    w = task_weighting("pe_ltr", ["a", "b"], {"gradients": "shared", "bounds": {"b": 0.3}})
    res = fit(net, train, None, w, TrainConfig(epochs=1, batch_size=256), ["a", "b"],
              progress=False)
    weights = w.weights().numpy()
    assert abs(weights.sum() - 1) < 1e-5 and weights[1] >= 0.3 - 1e-6
    assert weights[1] > 0.3 + 1e-3 or weights[0] > 0.5      # moved off the start
    assert res.history[0]["weights"] == [round(float(v), 4) for v in weights]


@pytest.mark.parametrize("kind, params, fragments", [
    ("gradnorm", {}, ("unknown weighting 'gradnorm'", "valid weightings: pe_ltr",
                      "static")),
    ("pe_ltr", {"gradients": "scores"}, ("cannot weight the MP model's tasks",
                                         "use gradients: shared")),
    ("self_evolving", {}, ("cannot weight the MP model's tasks", "one per objective")),
    ("pe_ltr", {"gradients": "shared", "bounds": {"b": 0.6, "a": 0.5}},
     ("weighting.bounds", "sum to less than 1")),
    ("static", {"weights": {"a": 1}}, ("weighting.weights lacks objective(s) b",)),
])
def test_task_weighting_refuses(kind, params, fragments):
    with pytest.raises(ValueError, match=pattern(*fragments)):
        task_weighting(kind, ["a", "b"], params)


# --------------------------------------------------------------------------- the stage
@pytest.fixture
def kr_dir(tmp_path):
    return write_kuairand(tmp_path / "kr")


def test_plan_splits_and_day_checks(kr_dir, tmp_path):
    days = kr.parse_days("2022-05-01:2022-05-05")
    plan = plan_splits(days, "day")
    assert plan["test"] == [dt.date(2022, 5, 5)] and plan["valid"] == [dt.date(2022, 5, 4)]
    assert len(plan["train"]) == 3
    with pytest.raises(ValueError, match=pattern("at least one score day for each",
                                                 "splits.by: user")):
        plan_splits(days[:2], "day")
    with pytest.raises(ValueError, match="not among the score days"):
        plan_splits(days, "day", test_days=["2022-05-09"])
    out, cfg = str(tmp_path / "o"), _cfg()
    with pytest.raises(ValueError, match=pattern("overlap on 2022-04-27")):
        run(kr_dir, kr.parse_days("2022-04-25:2022-04-27"),
            kr.parse_days("2022-04-27:2022-04-29"), out, cfg)
    with pytest.raises(ValueError, match="must come after --train-days"):
        run(kr_dir, kr.parse_days("2022-04-28:2022-04-29"),
            kr.parse_days("2022-04-25:2022-04-27"), out, cfg)
    with pytest.raises(DatasetError, match=pattern(
            "no exposures on day(s) 2022-04-30, 2022-05-01", "cover 2022-04-25..2022-04-29")):
        run(kr_dir, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-29:2022-05-01"), out, cfg)
    with pytest.raises(ValueError, match=pattern("splits.mp_valid: last_day needs at least 2",
                                                 "splits.mp_valid: random")):
        run(kr_dir, kr.parse_days("2022-04-25"), kr.parse_days("2022-04-26:2022-04-28"), out,
            cfg)


def test_stage_refuses_split_without_positives(tmp_path):
    def no_forward_last_day(log):
        return log.assign(is_forward=np.where(log.date == 20220429, 0, log.is_forward))
    folder = write_kuairand(tmp_path / "kr", n=600, edit_log=no_forward_last_day)
    with pytest.raises(DatasetError, match=pattern(
            "test (days 2022-04-29): objective 'forward' has no positives", "objectives")):
        run(folder, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-27:2022-04-29"), tmp_path / "o", _cfg())
    assert not (tmp_path / "o").exists()


def test_stage_end_to_end_on_fixture(tmp_path, capsys):
    folder = write_kuairand(tmp_path / "kr", n=4000, n_users=20, n_videos=20)
    out = tmp_path / "me"
    config = write_config(tmp_path, {
        "data": {"request_window_s": 7200},
        "model": {"family": "shared_bottom", "emb_dim": 8, "bottom": [32], "tower": [8]},
        "weighting": {"kind": "pe_ltr", "gradients": "shared", "every": 2,
                      "bounds": {"follow": 0.05}},
        "train": {"epochs": 3, "lr": 0.01}})
    days = ["--train-days", "2022-04-25:2022-04-26", "--score-days", "2022-04-27:2022-04-29"]
    rc = mp_main(["kuairand", "--logs", str(folder), *days, "--out", str(out), "--config",
                  str(config), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "MP model AUC per objective" in printed and "profile_enter" in printed
    ds = load_dataset(out)
    assert ds.objectives == list(kr.OBJECTIVES)
    assert set(ds.splits) == {"train", "valid", "test"}
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    src = meta["source"]
    assert meta["splits"]["test"]["days"] == ["2022-04-29"]
    assert set(src["mp_auc"]) == {"mp_valid", "train", "valid", "test", "scored"}
    assert src["mp"]["weighting"] == "pe_ltr"
    assert src["mp"]["weighting_params"]["bounds"] == {"follow": 0.05}
    # the whole resolved config is recorded: given keys and every owner's default
    assert src["mp"]["config"] == load_config(config).as_dict()
    assert src["mp"]["config"]["weighting"]["mode"] == "two_step"          # a class default
    assert src["mp"]["config"]["model"]["dropout"] == 0.1                 # a signature default
    assert src["mp"]["config"]["train"]["batch_size"] == TrainConfig().batch_size
    assert src["request_window_s"] == 7200 and src["loader"] == "trainables.kuairand.loader"
    weights = [row["weights"] for row in src["mp"]["history"]]
    assert all(abs(sum(w) - 1) < 1e-3 and w[3] >= 0.05 - 1e-4 for w in weights)
    assert meta["created_by"].startswith("python -m trainables.mp kuairand")
    assert set(meta["categorical"]) == {f"feat_{n}" for n in kr.ME_FEATURES}
    test = ds.splits["test"]
    assert test["score_click"].dtype == np.float32 and "duration" in test
    assert (test["duration"] > 0).all()
    # request ids are unique across splits, and a request holds one user
    ids = [set(ds.splits[s]["request_id"].tolist()) for s in ds.splits]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    df = pd.DataFrame({"r": test["request_id"], "u": test["user_id"]})
    assert (df.groupby("r")["u"].nunique() == 1).all()
    # the recorded AUC is the written scores' AUC
    from trainables.metrics import auc
    assert abs(auc(np.array(test["score_click"]), np.array(test["label_click"]))
               - src["mp_auc"]["test"]["click"]) < 1e-6
    # the signal is learnable: user and video effects drive every label
    assert src["mp_auc"]["test"]["click"] > 0.6
    # an existing non-empty output folder is refused before any work
    assert mp_main(["kuairand", "--logs", str(folder), *days, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_stage_is_reproducible_with_a_seed(tmp_path):
    folder = write_kuairand(tmp_path / "kr", n=1500, n_users=20, n_videos=20)
    scores = []
    for name in ("a", "b"):
        run(folder, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-27:2022-04-29"), tmp_path / name,
            _cfg(train={"seed": 3}), progress=False, log=_quiet)
        scores.append(load_dataset(tmp_path / name).splits["test"]["score_like"])
    assert np.array_equal(scores[0], scores[1])


def test_stage_split_by_user_and_random_mp_valid(tmp_path):
    folder = write_kuairand(tmp_path / "kr", n=3000, n_users=40, n_videos=20)
    report = run(folder, kr.parse_days("2022-04-25"), kr.parse_days("2022-04-26:2022-04-29"),
                 tmp_path / "me", _cfg(splits={"by": "user", "mp_valid": "random"}),
                 progress=False, log=_quiet)
    ds = load_dataset(tmp_path / "me")
    users = [set(ds.splits[s]["user_id"].tolist()) for s in ("train", "valid", "test")]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert sum(report["rows"].values()) == sum(ds.rows(s) for s in ds.splits)
    meta = yaml.safe_load((tmp_path / "me" / "meta.yaml").read_text())
    assert meta["source"]["mp"]["mp_valid"] == "random" and meta["source"]["split"] == "user"


def test_mp_duration_column_is_positive_unknown_gets_the_train_median():
    """The ME dataset's ``duration`` divides the scores in IPUT: a row whose video has no
    known duration (0 or missing in the logs) gets the train days' median known one."""
    sec = np.array([10.0, 0.0, 30.0, np.nan, 50.0, 0.0])
    is_train = np.array([True, True, True, False, False, False])
    dur, filled = _durations(sec, is_train)
    assert dur.dtype == np.float32
    np.testing.assert_array_equal(dur, [10.0, 20.0, 30.0, 20.0, 50.0, 20.0])
    np.testing.assert_array_equal(filled, [False, True, False, True, False, True])
    dur, _ = _durations(np.zeros(3), np.ones(3, bool))            # nothing known: 1 s
    np.testing.assert_array_equal(dur, [1.0, 1.0, 1.0])


# --------------------------------------------------------------------------- real sample
def test_stage_on_real_sample(tmp_path):
    sample = need_sample()
    report = run(sample, kr.parse_days("2022-04-29:2022-04-30"),
                 kr.parse_days("2022-05-01:2022-05-03"), tmp_path / "kr-me",
                 _cfg(model={"emb_dim": 8, "expert": [64], "tower": [64]},
                      train={"epochs": 2, "batch_size": 512, "lr": 0.01}),
                 progress=False, log=_quiet)
    ds = load_dataset(tmp_path / "kr-me")
    assert ds.rows("train") + ds.rows("valid") + ds.rows("test") == 59_287
    for split in ("train", "valid", "test"):
        for obj in ("click", "long_view"):
            assert report["mp_auc"][split][obj] > 0.6, (split, obj, report["mp_auc"])


# The MP stage's numbers before it moved onto the weighting registry and the shared
# feature encoder (its own StaticWeights/PELTRWeights and embedding; seed 0, one thread):
# the pooled AUCs on the scored days (source.mp_auc.scored) of these two configs.
BEFORE = {
    "static": ({"kind": "static"},
               {"click": 0.672185, "long_view": 0.669334, "like": 0.685039,
                "follow": 0.696302, "comment": 0.556526, "forward": 0.596033,
                "profile_enter": 0.602037}),
    "pe_ltr": ({"kind": "pe_ltr", "gradients": "shared", "every": 5,
                "bounds": {"follow": 0.05}},
               {"click": 0.614365, "long_view": 0.412308, "like": 0.620507,
                "follow": 0.705561, "comment": 0.614347, "forward": 0.595284,
                "profile_enter": 0.531458}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BEFORE))
def test_same_numbers_as_before_the_registry(tmp_path, name):
    sample = need_sample()
    weighting, scored = BEFORE[name]
    cfg = config_from_dict({
        "model": {"family": "mmoe", "emb_dim": 8, "experts": 2, "expert": [64]},
        "weighting": weighting,
        "train": {"epochs": 2, "batch_size": 512, "lr": 0.01, "seed": 0}}, "before")
    report = run(sample, kr.parse_days("2022-04-29:2022-04-30"),
                 kr.parse_days("2022-05-01:2022-05-03"), tmp_path / name, cfg,
                 progress=False, log=_quiet)
    assert report["mp_auc"]["scored"] == scored
