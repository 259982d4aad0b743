"""KuaiRand loader, request windows, the MP models and the MP stage (trainables.mp)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from trainables.data import DatasetError, load_dataset
from trainables.data import kuairand as kr
from trainables.mp import build_model, model_params
from trainables.mp.__main__ import main as mp_main
from trainables.mp.features import Encoder, Vocab
from trainables.mp.kuairand import plan_splits, run
from trainables.mp.train import (MPData, PELTRWeights, TrainConfig, auc_by_objective, fit,
                                 make_weighting, predict)

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "kuairand_pure_partial"
DAY0 = dt.date(2022, 4, 25)


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one thread is faster, and much faster on a busy machine
    (OpenMP threads spin when the cores are shared)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _pattern(*parts: str) -> str:
    return ".*".join(re.escape(p) for p in parts)


# --------------------------------------------------------------------------- fixture files
def _users(n: int, rng) -> pd.DataFrame:
    df = pd.DataFrame({"user_id": np.arange(n)})
    df["user_active_degree"] = rng.choice(["full_active", "high_active", "low_active"], n)
    df["is_lowactive_period"] = 0
    df["is_live_streamer"] = rng.choice([1, -124], n)
    df["is_video_author"] = rng.integers(0, 2, n)
    for c, ranges in (("follow_user_num", ["0", "(0,10]", "500+"]),
                      ("fans_user_num", ["0", "[1,10)", "[10,100)"]),
                      ("friend_user_num", ["0", "[1,5)", "[5,30)"])):
        df[c] = rng.integers(0, 600, n)
        df[f"{c}_range"] = rng.choice(ranges, n)
    df["register_days"] = rng.integers(8, 2000, n)
    df["register_days_range"] = rng.choice(["8-14", "730+"], n)
    for i in range(18):
        df[f"onehot_feat{i}"] = rng.integers(0, 3, n)
    return df


def _videos(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({
        "video_id": np.arange(n), "author_id": rng.integers(1000, 1000 + n // 2 + 1, n),
        "video_type": rng.choice(["NORMAL", "AD"], n, p=[0.9, 0.1]),
        "upload_dt": [str(DAY0 - dt.timedelta(int(d))) for d in rng.integers(0, 20, n)],
        "upload_type": rng.choice(["Web", "Kmovie", "LongImport"], n),
        "visible_status": 0.0, "video_duration": rng.integers(3000, 400000, n).astype(float),
        "music_id": rng.integers(0, 50, n), "music_type": rng.choice([4.0, 9.0], n),
        "tag": rng.choice(["39", "3", "39,68", "12"], n)})


def _log(n: int, rng, n_users: int, n_videos: int, days: int = 5,
         signal: bool = True) -> pd.DataFrame:
    """Exposures whose labels depend on the user and the video (learnable)."""
    u = rng.integers(0, n_users, n)
    v = rng.integers(0, n_videos, n)
    day = rng.integers(0, days, n)
    secs = rng.integers(0, 86400, n)
    base = dt.datetime(2022, 4, 25, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    t0 = int(base.timestamp() * 1000)
    time_ms = t0 + day * 86_400_000 + secs * 1000
    hh, mm = secs // 3600, 0
    df = pd.DataFrame({"user_id": u, "video_id": v,
                       "date": [int((DAY0 + dt.timedelta(int(d))).strftime("%Y%m%d"))
                                for d in day],
                       "hourmin": hh * 100 + mm, "time_ms": time_ms})
    ue = np.random.default_rng(99).normal(0, 1.5, n_users)
    ve = np.random.default_rng(98).normal(0, 1.5, n_videos)
    z = (ue[u] + ve[v]) if signal else np.zeros(n)
    rates = {"is_click": 0.0, "long_view": -0.5, "is_like": -2.0, "is_follow": -2.5,
             "is_comment": -2.5, "is_forward": -2.5, "is_profile_enter": -2.0}
    for col, c in rates.items():
        df[col] = (rng.random(n) < 1 / (1 + np.exp(-(c + z)))).astype(int)
    df["is_hate"] = 0
    df["play_time_ms"] = rng.integers(0, 10000, n)
    df["duration_ms"] = rng.integers(3000, 400000, n)
    df["profile_stay_time"] = 0
    df["comment_stay_time"] = 0
    df["is_rand"] = 0
    df["tab"] = rng.choice([0, 1, 4], n)
    return df


def write_kuairand(folder: Path, n: int = 400, n_users: int = 30, n_videos: int = 40,
                   days: int = 5, seed: int = 0, edit_log=None, edit_users=None,
                   edit_videos=None, signal: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    log = _log(n, rng, n_users, n_videos, days, signal)
    users, videos = _users(n_users, rng), _videos(n_videos, rng)
    log = edit_log(log) if edit_log else log
    users = edit_users(users) if edit_users else users
    videos = edit_videos(videos) if edit_videos else videos
    log.to_csv(folder / "log_standard_test.csv", index=False)
    users.to_csv(folder / "user_features_test.csv", index=False)
    videos.to_csv(folder / "video_features_basic_test.csv", index=False)
    return folder


@pytest.fixture
def kr_dir(tmp_path):
    return write_kuairand(tmp_path / "kr")


# --------------------------------------------------------------------------- loader
def test_loader_derives_objectives_context_and_joins(kr_dir):
    raw = pd.read_csv(kr_dir / "log_standard_test.csv")
    users = pd.read_csv(kr_dir / "user_features_test.csv")
    videos = pd.read_csv(kr_dir / "video_features_basic_test.csv")
    logs = kr.load_kuairand(kr_dir)
    f = logs.frame
    assert len(f) == len(raw)
    m = raw.merge(f, on=["user_id", "video_id", "time_ms"], suffixes=("", "_f"))
    assert len(m) == len(raw)
    for obj, col in kr.OBJECTIVES.items():
        assert (m[col] == m[f"label_{obj}"]).all(), obj
        assert f[f"label_{obj}"].dtype == np.int8
    assert (m["hour"] == m["hourmin"] // 100).all()
    assert (m["day"].dt.strftime("%Y%m%d").astype(int) == m["date"]).all()
    assert (m["dow"] == m["day"].dt.day_of_week).all()
    assert np.allclose(m["duration_s"], m["duration_ms"] / 1000)
    assert (m["tab_f"] == m["tab"]).all()
    j = f.merge(users[["user_id", "user_active_degree"]], on="user_id", suffixes=("", "_u"))
    assert (j["user_active_degree"] == j["user_active_degree_u"]).all()
    j = f.merge(videos[["video_id", "author_id"]], on="video_id", suffixes=("", "_v"))
    assert (j["author_id"] == j["author_id_v"]).all()
    assert set(f["tag_first"].dropna()) <= {"39", "3", "12"}
    assert f["duration_bucket"].between(0, len(kr.DURATION_EDGES_S) + 1).all()
    assert f["video_age_bucket"].min() >= 1          # uploads precede exposures here
    # outcome columns are never read
    assert not {"play_time_ms", "profile_stay_time", "comment_stay_time"} & set(f.columns)
    assert logs.days == [DAY0 + dt.timedelta(d) for d in range(5)]


def test_loader_days_files_and_random_logs(kr_dir):
    few = kr.load_kuairand(kr_dir, days=["2022-04-26", 20220428])
    assert few.days == [dt.date(2022, 4, 26), dt.date(2022, 4, 28)]
    with pytest.raises(DatasetError, match=_pattern("no exposures on day(s) 2022-05-09",
                                                    "cover 2022-04-25..2022-04-29")):
        kr.load_kuairand(kr_dir, days=["2022-05-09"])
    # a second standard log is read too; a random log only on request
    extra = _log(50, np.random.default_rng(5), 30, 40, 1)
    extra.to_csv(kr_dir / "log_standard_more.csv", index=False)
    extra.to_csv(kr_dir / "log_random_4_22_to_5_08_pure.csv", index=False)
    assert len(kr.load_kuairand(kr_dir).frame) == 450
    both = kr.load_kuairand(kr_dir, include_random=True)
    assert len(both.frame) == 500 and len(both.log_files) == 3


@pytest.mark.parametrize("edit, pattern", [
    (lambda log: log.drop(columns=["is_like"]),
     ("log_standard_test.csv", "missing column(s) 'is_like'", "required:")),
    (lambda log: log.assign(is_follow=np.where(np.arange(len(log)) == 7, 2, log.is_follow)),
     ("log_standard_test.csv", "'is_follow' is not binary", "line 9: 2", "allowed: 0 or 1")),
    (lambda log: log.assign(long_view=log.long_view.astype(object).where(
        np.arange(len(log)) != 3, "yes")),
     ("log_standard_test.csv", "'long_view'", "not 0 or 1", "line 5: 'yes'")),
    (lambda log: log.assign(date=log.date.astype(object).where(np.arange(len(log)) != 0,
                                                               "2022-13-45")),
     ("log_standard_test.csv", "column 'date'", "unparsable", "line 2: '2022-13-45'",
      "YYYYMMDD")),
    (lambda log: log.assign(date=log.date.where(np.arange(len(log)) != 1, 20221345)),
     ("column 'date'", "line 3: 20221345")),
    (lambda log: log.assign(user_id=log.user_id.astype(float).where(
        np.arange(len(log)) != 10, np.nan)),
     ("log_standard_test.csv", "column 'user_id' is empty/NaN in 1 row(s)", "line 12")),
    (lambda log: log.assign(hourmin=log.hourmin.where(np.arange(len(log)) != 4, 2475)),
     ("column 'hourmin'", "line 6: 2475", "HHMM")),
])
def test_loader_rejects_malformed_logs(tmp_path, edit, pattern):
    folder = write_kuairand(tmp_path / "bad", edit_log=edit)
    with pytest.raises(DatasetError, match=_pattern(*pattern)):
        kr.load_kuairand(folder)


def test_loader_missing_files_and_feature_problems(tmp_path):
    with pytest.raises(DatasetError, match=_pattern("no such folder")):
        kr.load_kuairand(tmp_path / "nowhere")
    folder = write_kuairand(tmp_path / "a")
    (folder / "user_features_test.csv").unlink()
    with pytest.raises(DatasetError, match=_pattern("no user features file matching",
                                                    "user_features*.csv")):
        kr.load_kuairand(folder)
    folder = write_kuairand(tmp_path / "b", edit_videos=lambda v: v.drop(columns=["tag"]))
    with pytest.raises(DatasetError, match=_pattern("video_features_basic_test.csv",
                                                    "missing column(s) 'tag'")):
        kr.load_kuairand(folder)
    folder = write_kuairand(tmp_path / "c",
                            edit_users=lambda u: pd.concat([u, u.iloc[[3]]]))
    with pytest.raises(DatasetError, match=_pattern("user_features_test.csv",
                                                    "'user_id' repeats 1 id(s)", ": 3")):
        kr.load_kuairand(folder)


def test_loader_unknown_ids_error_drop_keep(tmp_path):
    # users 0..29 in the log, only 0..24 in the features file
    folder = write_kuairand(tmp_path / "u", edit_users=lambda u: u[u.user_id < 25])
    raw = pd.read_csv(folder / "log_standard_test.csv")
    n_bad = int((raw.user_id >= 25).sum())
    assert n_bad > 0
    with pytest.raises(DatasetError, match=_pattern(
            "user_features_test.csv", f"{n_bad} exposure(s)", "user_id not in this file",
            "5 distinct", "on_unknown='drop'")):
        kr.load_kuairand(folder)
    dropped = kr.load_kuairand(folder, on_unknown="drop")
    assert len(dropped.frame) == len(raw) - n_bad and dropped.unknown["user_id"] == n_bad
    kept = kr.load_kuairand(folder, on_unknown="keep")
    assert len(kept.frame) == len(raw)
    assert kept.frame.loc[kept.frame.user_id >= 25, "user_active_degree"].isna().all()
    with pytest.raises(ValueError, match="on_unknown must be one of"):
        kr.load_kuairand(folder, on_unknown="ignore")


def _brute_requests(user, day, t, w_ms):
    """Each (user, day): repeatedly take the earliest left and all within w_ms of it."""
    groups = []
    df = pd.DataFrame({"u": user, "d": day, "t": t})
    for _, g in df.groupby(["d", "u"], sort=True):
        left = sorted(zip(g.t, g.index))
        while left:
            start = left[0][0]
            groups.append(frozenset(i for tt, i in left if tt <= start + w_ms))
            left = [(tt, i) for tt, i in left if tt > start + w_ms]
    return set(groups)


@pytest.mark.parametrize("window", [1, 30, 600])
def test_requests_match_brute_force(window):
    rng = np.random.default_rng(window)
    n = 600
    user = rng.integers(0, 12, n)
    day = np.datetime64("2022-04-25") + rng.integers(0, 3, n).astype("timedelta64[D]")
    t = (day.astype("datetime64[ms]").astype(np.int64) + rng.integers(0, 3_600_000, n)
         // 1000 * 1000)
    rid = kr.assign_requests(user, day, t, window)
    got = {frozenset(np.nonzero(rid == r)[0].tolist()) for r in np.unique(rid)}
    assert got == _brute_requests(user, day, t, window * 1000)
    assert rid.min() == 0 and rid.max() == len(got) - 1
    s = kr.request_sizes(rid)
    assert s["requests"] == len(got) and s["rows"] == n
    assert sum(s["histogram"].values()) == len(got)
    with pytest.raises(ValueError, match="> 0 seconds"):
        kr.assign_requests(user, day, t, 0)


def test_parse_days():
    assert kr.parse_days("2022-04-29:2022-05-01") == [dt.date(2022, 4, 29),
                                                      dt.date(2022, 4, 30), dt.date(2022, 5, 1)]
    assert kr.parse_days("20220502,2022-04-30") == [dt.date(2022, 4, 30), dt.date(2022, 5, 2)]
    with pytest.raises(ValueError, match="ends before it starts"):
        kr.parse_days("2022-05-01:2022-04-30")
    with pytest.raises(ValueError, match="not a day; use YYYY-MM-DD"):
        kr.parse_days("2022-04-31")


# --------------------------------------------------------------------------- features
def test_vocab_unknown_code_and_hashing():
    v = Vocab.fit("tab", pd.Series([3, 1, 1, np.nan, 7]))
    assert v.cardinality == 4
    codes = v.encode(pd.Series([1, 3, 7, 5, np.nan]))
    assert codes.tolist() == [1, 2, 3, 0, 0]
    s = Vocab.fit("s", pd.Series(["a", "b", None]))
    assert s.encode(pd.Series(["b", "z", None])).tolist() == [2, 0, 0]
    h = Vocab.fit("user_id", pd.Series(np.arange(100)), max_size=10)
    assert h.cardinality == 10
    c = h.encode(pd.Series([0, 5, 99, 1000]))
    assert c[:3].min() >= 1 and c[:3].max() <= 9 and c[3] == 0
    assert (h.encode(pd.Series(np.arange(100))) == h.encode(pd.Series(np.arange(100)))).all()
    enc = Encoder.fit(pd.DataFrame({"a": [1, 2], "x": [1.0, 3.0]}), [], ["a"], ["x"])
    assert enc.numbers(pd.DataFrame({"a": [1], "x": [np.nan]})).tolist() == [[0.0]]
    assert enc.numbers(pd.DataFrame({"a": [1], "x": [3.0]})).tolist() == [[1.0]]


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
    return cards, MPData.from_numpy(cat, num, y)


@pytest.mark.parametrize("name", ["shared_bottom", "mmoe"])
def test_models_shapes_and_learn(name):
    torch.manual_seed(0)
    cards, train = _toy(4000, 1)
    _, valid = _toy(2000, 2)
    small = {"bottom": [32]} if name == "shared_bottom" else {"expert": [32], "experts": 3}
    net = build_model(name, cards, 1, 2, {"emb_dim": 4, "tower": [16], **small})
    assert net(train.cat[:5], train.num[:5]).shape == (5, 2)
    assert all(p.requires_grad for p in net.shared_parameters())
    cfg = TrainConfig(epochs=3, batch_size=256, lr=1e-2, patience=3)
    res = fit(net, train, valid, make_weighting("static", ["a", "b"]), cfg, ["a", "b"],
              progress=False, log=lambda m: None)
    aucs = auc_by_objective(predict(net, valid), valid.labels.numpy(), ["a", "b"])
    assert min(aucs.values()) > 0.6, aucs
    assert res.best_epoch >= 1 and len(res.history) >= 1
    p = predict(net, valid)
    assert p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1


def test_model_registry_errors():
    assert {"emb_dim", "experts", "expert", "tower"} <= set(model_params("mmoe"))
    with pytest.raises(ValueError, match=_pattern("unknown MP model 'dnn'", "mmoe",
                                                  "shared_bottom")):
        build_model("dnn", [3], 0, 1)
    with pytest.raises(ValueError, match=_pattern("has no parameter(s) experts",
                                                  "allowed: bottom")):
        build_model("shared_bottom", [3], 0, 1, {"experts": 2})


def test_pe_ltr_task_weights_sum_to_one_and_respect_bounds():
    torch.manual_seed(0)
    cards, train = _toy(2000, 3)
    net = build_model("mmoe", cards, 1, 2, {"emb_dim": 4, "expert": [32], "tower": [16]})
    w = make_weighting("pe_ltr", ["a", "b"], bounds={"b": 0.3}, every=1)
    res = fit(net, train, None, w, TrainConfig(epochs=1, batch_size=256), ["a", "b"],
              progress=False)
    weights = w.w.numpy()
    assert abs(weights.sum() - 1) < 1e-5 and weights[1] >= 0.3 - 1e-6
    assert res.history[0]["weights"] == [round(float(v), 4) for v in weights]
    with pytest.raises(ValueError, match="sum to less than 1"):
        PELTRWeights(["a", "b"], bounds=[0.6, 0.5])
    with pytest.raises(ValueError, match="unknown objective"):
        PELTRWeights(["a", "b"], bounds={"c": 0.1})
    with pytest.raises(ValueError, match="unknown task weighting"):
        make_weighting("gradnorm", ["a"])


# --------------------------------------------------------------------------- MP stage
def test_plan_splits_and_argument_checks(kr_dir, tmp_path):
    days = kr.parse_days("2022-05-01:2022-05-05")
    plan = plan_splits(days, "day")
    assert plan["test"] == [dt.date(2022, 5, 5)] and plan["valid"] == [dt.date(2022, 5, 4)]
    assert len(plan["train"]) == 3
    with pytest.raises(ValueError, match="at least one score day for each"):
        plan_splits(days[:2], "day")
    with pytest.raises(ValueError, match="not among the score days"):
        plan_splits(days, "day", test_days=["2022-05-09"])
    out = str(tmp_path / "o")
    with pytest.raises(ValueError, match=_pattern("overlap on 2022-04-27")):
        run(kr_dir, kr.parse_days("2022-04-25:2022-04-27"),
            kr.parse_days("2022-04-27:2022-04-29"), out)
    with pytest.raises(ValueError, match="must come after --train-days"):
        run(kr_dir, kr.parse_days("2022-04-28:2022-04-29"),
            kr.parse_days("2022-04-25:2022-04-27"), out)
    with pytest.raises(DatasetError, match=_pattern(
            "no exposures on day(s) 2022-04-30, 2022-05-01", "cover 2022-04-25..2022-04-29")):
        run(kr_dir, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-29:2022-05-01"), out)
    with pytest.raises(ValueError, match="needs at least 2 train days"):
        run(kr_dir, kr.parse_days("2022-04-25"), kr.parse_days("2022-04-26:2022-04-28"), out)
    with pytest.raises(SystemExit):
        mp_main(["kuairand", "--logs", str(kr_dir), "--train-days", "2022-04-25:x",
                 "--score-days", "2022-04-27", "--out", out])


def test_stage_refuses_split_without_positives(tmp_path):
    def no_forward_last_day(log):
        return log.assign(is_forward=np.where(log.date == 20220429, 0, log.is_forward))
    folder = write_kuairand(tmp_path / "kr", n=600, edit_log=no_forward_last_day)
    with pytest.raises(DatasetError, match=_pattern(
            "test (days 2022-04-29): objective 'forward' has no positives", "--objectives")):
        run(folder, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-27:2022-04-29"), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_stage_end_to_end_on_fixture(tmp_path, capsys):
    folder = write_kuairand(tmp_path / "kr", n=4000, n_users=20, n_videos=20)
    out = tmp_path / "me"
    rc = mp_main(["kuairand", "--logs", str(folder), "--train-days", "2022-04-25:2022-04-26",
                  "--score-days", "2022-04-27:2022-04-29", "--out", str(out), "--epochs", "3",
                  "--model", "shared_bottom", "--weighting", "pe_ltr",
                  "--pe-ltr-bounds", "follow=0.05", "--no-progress", "--lr", "0.01",
                  "--request-window-s", "7200"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "MP model AUC per objective" in printed and "profile_enter" in printed
    ds = load_dataset(out)
    assert ds.objectives == list(kr.OBJECTIVES)
    assert set(ds.splits) == {"train", "valid", "test"}
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert meta["splits"]["test"]["days"] == ["2022-04-29"]
    assert set(meta["source"]["mp_auc"]) == {"mp_valid", "train", "valid", "test", "scored"}
    assert meta["source"]["mp"]["weighting_params"]["bounds"] == {"follow": 0.05}
    assert meta["source"]["request_window_s"] == 7200
    assert meta["created_by"].startswith("python -m trainables.mp kuairand")
    assert set(meta["categorical"]) == {f"feat_{n}" for n in kr.ME_FEATURES}
    test = ds.splits["test"]
    assert test["score_click"].dtype == np.float32 and "duration" in test
    assert (test["duration"] > 0).all()
    assert "scored row(s)" in meta["source"]["features"]["duration"]
    # request ids are unique across splits, and a request holds one user
    ids = [set(ds.splits[s]["request_id"].tolist()) for s in ds.splits]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    df = pd.DataFrame({"r": test["request_id"], "u": test["user_id"]})
    assert (df.groupby("r")["u"].nunique() == 1).all()
    # the recorded AUC is the written scores' AUC
    from trainables.metrics import auc
    assert abs(auc(np.array(test["score_click"]), np.array(test["label_click"]))
               - meta["source"]["mp_auc"]["test"]["click"]) < 1e-6
    # the signal is learnable: user and video effects drive every label
    assert meta["source"]["mp_auc"]["test"]["click"] > 0.6
    # an existing non-empty output folder is refused before any work
    assert mp_main(["kuairand", "--logs", str(folder), "--train-days", "2022-04-25:2022-04-26",
                    "--score-days", "2022-04-27:2022-04-29", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_stage_on_real_sample(tmp_path):
    if not (SAMPLE / "log_standard_20220425_20220505.csv").is_file():
        pytest.skip(f"the KuaiRand sample is not at {SAMPLE} (shared/data is not checked out "
                    f"beside the repository)")
    report = run(SAMPLE, kr.parse_days("2022-04-29:2022-04-30"),
                 kr.parse_days("2022-05-01:2022-05-03"), tmp_path / "kr-me",
                 model_params_={"emb_dim": 8, "experts": 2, "expert": [64]},
                 weighting="static",
                 train_cfg=TrainConfig(epochs=2, batch_size=512, lr=1e-2), progress=False,
                 log=lambda m: None)
    ds = load_dataset(tmp_path / "kr-me")
    assert ds.rows("train") + ds.rows("valid") + ds.rows("test") == 59_287
    for split in ("train", "valid", "test"):
        for obj in ("click", "long_view"):
            assert report["mp_auc"][split][obj] > 0.6, (split, obj, report["mp_auc"])


def test_stage_is_reproducible_with_a_seed(tmp_path):
    folder = write_kuairand(tmp_path / "kr", n=1500, n_users=20, n_videos=20)
    scores = []
    for name in ("a", "b"):
        run(folder, kr.parse_days("2022-04-25:2022-04-26"),
            kr.parse_days("2022-04-27:2022-04-29"), tmp_path / name,
            model_params_={"emb_dim": 4, "expert": [16], "tower": [8]},
            train_cfg=TrainConfig(epochs=1, seed=3), progress=False, log=lambda m: None)
        scores.append(load_dataset(tmp_path / name).splits["test"]["score_like"])
    assert np.array_equal(scores[0], scores[1])


def test_stage_split_by_user_and_random_mp_valid(tmp_path):
    folder = write_kuairand(tmp_path / "kr", n=3000, n_users=40, n_videos=20)
    report = run(folder, kr.parse_days("2022-04-25"), kr.parse_days("2022-04-26:2022-04-29"),
                 tmp_path / "me", split="user", mp_valid="random", weighting="static",
                 model_params_={"emb_dim": 4, "expert": [16], "tower": [8]},
                 train_cfg=TrainConfig(epochs=1), progress=False, log=lambda m: None)
    ds = load_dataset(tmp_path / "me")
    users = [set(ds.splits[s]["user_id"].tolist()) for s in ("train", "valid", "test")]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert sum(report["rows"].values()) == sum(ds.rows(s) for s in ds.splits)
    meta = yaml.safe_load((tmp_path / "me" / "meta.yaml").read_text())
    assert meta["source"]["mp"]["mp_valid"] == "random" and meta["source"]["split"] == "user"


def test_mp_duration_column_is_positive_unknown_gets_the_train_median():
    """The ME dataset's ``duration`` divides the scores in IPUT: a row whose video has no
    known duration (0 or missing in the logs) gets the train days' median known one."""
    from trainables.mp.kuairand import _durations
    sec = np.array([10.0, 0.0, 30.0, np.nan, 50.0, 0.0])
    is_train = np.array([True, True, True, False, False, False])
    dur, filled = _durations(sec, is_train)
    assert dur.dtype == np.float32
    np.testing.assert_array_equal(dur, [10.0, 20.0, 30.0, 20.0, 50.0, 20.0])
    np.testing.assert_array_equal(filled, [False, True, False, True, False, True])
    dur, _ = _durations(np.zeros(3), np.ones(3, bool))            # nothing known: 1 s
    np.testing.assert_array_equal(dur, [1.0, 1.0, 1.0])
