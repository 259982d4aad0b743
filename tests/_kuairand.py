"""KuaiRand fixture folders (raw CSV files with a learnable signal) and helpers shared by
the KuaiRand and MP stage tests."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

# the shipped sample, beside the repository (or where PARETUNE_KUAIRAND points)
SAMPLE = Path(os.environ.get("PARETUNE_KUAIRAND") or
              Path(__file__).resolve().parents[2] / "shared" / "data" / "kuairand_pure_partial")
DAY0 = dt.date(2022, 4, 25)


def pattern(*parts: str) -> str:
    return ".*".join(re.escape(p) for p in parts)


def need_sample() -> Path:
    if not (SAMPLE / "log_standard_20220425_20220505.csv").is_file():
        pytest.skip(f"the KuaiRand sample is not at {SAMPLE} (shared/data is not checked out "
                    f"beside the repository and PARETUNE_KUAIRAND is not set)")
    return SAMPLE


def write_config(folder: Path, config: dict, name: str = "mp.yaml") -> Path:
    """An MP config file (YAML) from a dict."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# a small, fast MP config for the fixture folders
SMALL = {"model": {"family": "mmoe", "emb_dim": 4, "experts": 2, "expert": [16],
                   "tower": [8]},
         "train": {"epochs": 1}}


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


def exposures(n: int, rng, n_users: int, n_videos: int, days: int = 5,
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
    log = exposures(n, rng, n_users, n_videos, days, signal)
    users, videos = _users(n_users, rng), _videos(n_videos, rng)
    log = edit_log(log) if edit_log else log
    users = edit_users(users) if edit_users else users
    videos = edit_videos(videos) if edit_videos else videos
    log.to_csv(folder / "log_standard_test.csv", index=False)
    users.to_csv(folder / "user_features_test.csv", index=False)
    videos.to_csv(folder / "video_features_basic_test.csv", index=False)
    return folder
