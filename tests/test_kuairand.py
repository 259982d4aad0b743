"""KuaiRand's own code (trainables/kuairand): the loader, request windows, days. The MP
stage on it: tests/test_mp.py; its config and command line: tests/test_mp_config.py."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests._kuairand import DAY0, exposures, write_kuairand
from tests._kuairand import pattern as _pattern
from trainables import kuairand as kr
from trainables.data import DatasetError


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
    extra = exposures(50, np.random.default_rng(5), 30, 40, 1)
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


def test_one_home_for_kuairand_code():
    """Every KuaiRand module lives in trainables/kuairand, each under 400 lines; the old
    homes are gone (no second copy to drift)."""
    from pathlib import Path

    import trainables
    root = Path(trainables.__file__).parent
    assert not (root / "data" / "kuairand.py").exists()
    assert not (root / "mp" / "kuairand.py").exists()
    files = sorted((root / "kuairand").glob("*.py"))
    assert {f.stem for f in files} >= {"loader", "requests", "pipeline", "cli", "config"}
    for f in files:
        assert len(f.read_text().splitlines()) < 400, f
