"""The data contract: validating loader, tensors, synthetic generator, data config resolution."""
from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from trainables.data import DatasetError, load_dataset, resolve_data
from trainables.data import synthetic
from trainables.data.synthetic import generate

OBJS3 = ["click", "long_view", "buy"]


# --------------------------------------------------------------------------- fixtures / helpers
@pytest.fixture(scope="module")
def base_dataset(tmp_path_factory):
    """A 3000-row dataset whose every split holds both classes of every objective."""
    out = tmp_path_factory.mktemp("base-ds")
    generate(out, rows=3000, objectives=OBJS3, positive_rates={"buy": 0.1}, seed=0,
             progress=False)
    return out


@pytest.fixture
def ds_copy(base_dataset, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(base_dataset, dst)
    return dst


def _edit_split(folder: Path, split: str, edit):
    """Read a split, let ``edit(df)`` change it, write it back with the same column types."""
    file = folder / f"{split}.parquet"
    df = pq.read_table(file).to_pandas()
    df = edit(df) if edit is not None else df
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), file)
    return df


def _edit_meta(folder: Path, edit):
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    edit(meta)
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def _pattern(*parts: str) -> str:
    """A regex requiring each part, in order, anywhere in the message."""
    return ".*".join(re.escape(p) for p in parts)


def _set(col, row, value):
    def edit(df):
        df.loc[row, col] = value
        return df
    return edit


# --------------------------------------------------------------------------- loader rejects
def test_base_dataset_is_valid(base_dataset):
    ds = load_dataset(base_dataset)
    assert ds.objectives == OBJS3
    assert {s: ds.rows(s) for s in ds.splits} == {"train": 2400, "valid": 300, "test": 300}


def test_missing_column(ds_copy):
    _edit_split(ds_copy, "valid", lambda df: df.drop(columns=["score_buy"]))
    with pytest.raises(DatasetError, match=_pattern("valid.parquet", "missing column",
                                                    "'score_buy'")):
        load_dataset(ds_copy)


def test_missing_feature_column(ds_copy):
    _edit_split(ds_copy, "train", lambda df: df.drop(columns=["feat_hour"]))
    with pytest.raises(DatasetError, match=_pattern("train.parquet", "missing", "'feat_hour'")):
        load_dataset(ds_copy)


def test_missing_column_of_unselected_objective_is_fine(ds_copy):
    _edit_split(ds_copy, "valid", lambda df: df.drop(columns=["score_buy", "label_buy"]))
    ds = load_dataset(ds_copy, objectives=["click", "long_view"])
    assert ds.objectives == ["click", "long_view"]


@pytest.mark.parametrize("value,problem", [
    (np.nan, "NaN/inf"), (np.inf, "NaN/inf"), (-np.inf, "NaN/inf"),
    (1.5, "outside [0, 1]"), (-0.01, "outside [0, 1]")])
def test_bad_score(ds_copy, value, problem):
    df = _edit_split(ds_copy, "valid", _set("score_long_view", 7, value))
    assert df["score_long_view"].dtype == np.float32
    with pytest.raises(DatasetError, match=_pattern("valid.parquet", "'score_long_view'",
                                                    problem, "row 7")):
        load_dataset(ds_copy)


@pytest.mark.parametrize("value", [2, -1])
def test_non_binary_label(ds_copy, value):
    _edit_split(ds_copy, "test", _set("label_click", 3, value))
    with pytest.raises(DatasetError, match=_pattern("test.parquet", "'label_click'",
                                                    "not binary", "row 3")):
        load_dataset(ds_copy)


def test_nan_float_label(ds_copy):
    def edit(df):
        df["label_buy"] = df["label_buy"].astype(np.float32)
        df.loc[4, "label_buy"] = np.nan
        return df
    _edit_split(ds_copy, "train", edit)
    with pytest.raises(DatasetError, match=_pattern("train.parquet", "'label_buy'", "NaN")):
        load_dataset(ds_copy)


def test_objective_without_positives(ds_copy):
    def edit(df):
        df["label_buy"] = np.int8(0)
        return df
    _edit_split(ds_copy, "valid", edit)
    with pytest.raises(DatasetError, match=_pattern("valid.parquet", "'buy'", "'label_buy'",
                                                    "no positives")):
        load_dataset(ds_copy)
    # the other objectives still load
    assert load_dataset(ds_copy, objectives=["click"]).objectives == ["click"]


def test_objective_without_negatives(ds_copy):
    def edit(df):
        df["label_click"] = np.int8(1)
        return df
    _edit_split(ds_copy, "test", edit)
    with pytest.raises(DatasetError, match=_pattern("test.parquet", "'click'", "'label_click'",
                                                    "no negatives")):
        load_dataset(ds_copy)


def test_unknown_objectives_requested(ds_copy):
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "unknown objective",
                                                    "'like'", "click, long_view, buy")):
        load_dataset(ds_copy, objectives=["click", "like"])


@pytest.mark.parametrize("col,value,card", [("feat_hour", 24, 24), ("feat_age", -1, 7),
                                            ("feat_gender", 3, 3)])
def test_categorical_outside_cardinality(ds_copy, col, value, card):
    _edit_split(ds_copy, "train", _set(col, 11, value))
    with pytest.raises(DatasetError, match=_pattern("train.parquet", f"'{col}'",
                                                    f"outside 0..{card - 1}", "row 11")):
        load_dataset(ds_copy)


def test_nan_numeric_feature(ds_copy):
    _edit_split(ds_copy, "train", _set("feat_activity_score", 2, np.nan))
    with pytest.raises(DatasetError, match=_pattern("train.parquet", "'feat_activity_score'",
                                                    "NaN")):
        load_dataset(ds_copy)


def test_non_integer_ids(ds_copy):
    def edit(df):
        df["user_id"] = df["user_id"].astype(np.float64)
        return df
    _edit_split(ds_copy, "valid", edit)
    with pytest.raises(DatasetError, match=_pattern("valid.parquet", "'user_id'", "integer")):
        load_dataset(ds_copy)


def test_missing_meta(ds_copy):
    (ds_copy / "meta.yaml").unlink()
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "missing")):
        load_dataset(ds_copy)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=_pattern("nowhere", "no such dataset folder")):
        load_dataset(tmp_path / "nowhere")


def test_meta_not_yaml(ds_copy):
    (ds_copy / "meta.yaml").write_text("objectives: [click, long_view\nsplits: {train: x\n")
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "not valid YAML")):
        load_dataset(ds_copy)


def test_meta_not_a_mapping(ds_copy):
    (ds_copy / "meta.yaml").write_text("- click\n- buy\n")
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "mapping")):
        load_dataset(ds_copy)


def test_meta_unknown_key(ds_copy):
    _edit_meta(ds_copy, lambda m: m.update(colour="red"))
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "unknown key", "colour",
                                                    "objectives")):
        load_dataset(ds_copy)


@pytest.mark.parametrize("objectives", [[], "click", ["click", "click"], None])
def test_meta_bad_objectives(ds_copy, objectives):
    _edit_meta(ds_copy, lambda m: m.update(objectives=objectives))
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "'objectives'")):
        load_dataset(ds_copy)


def test_meta_bad_cardinality(ds_copy):
    _edit_meta(ds_copy, lambda m: m["categorical"].update(feat_hour=0))
    with pytest.raises(DatasetError, match=_pattern("meta.yaml", "'categorical'")):
        load_dataset(ds_copy)


def test_split_not_parquet(ds_copy):
    (ds_copy / "valid.parquet").write_text("request_id,user_id\n1,2\n")
    with pytest.raises(DatasetError, match=_pattern("valid.parquet", "cannot be read as Parquet")):
        load_dataset(ds_copy)


def test_missing_split_file(ds_copy):
    (ds_copy / "test.parquet").unlink()
    with pytest.raises(DatasetError, match=_pattern("test.parquet", "split 'test'", "missing")):
        load_dataset(ds_copy)
    # the other splits can still be read on their own
    assert set(load_dataset(ds_copy, splits=["train", "valid"]).splits) == {"train", "valid"}


def test_unknown_split_requested(ds_copy):
    with pytest.raises(DatasetError, match=_pattern("no split", "holdout", "train")):
        load_dataset(ds_copy, splits=["train", "holdout"])


def test_splits_found_by_glob_without_meta_splits(ds_copy):
    _edit_meta(ds_copy, lambda m: m.pop("splits"))
    ds = load_dataset(ds_copy)
    assert set(ds.splits) == {"train", "valid", "test"}


# --------------------------------------------------------------------------- valid dataset
def test_valid_dataset_tensors(small_dataset):
    objs = ["click", "long_view", "like", "follow", "buy"]
    ds = load_dataset(small_dataset)
    assert ds.objectives == objs
    raw = pq.read_table(small_dataset / "train.parquet").to_pandas()
    t = ds.tensors("train")
    n = len(raw)
    assert len(t) == n == ds.rows("train")
    assert t.scores.shape == (n, 5) and t.scores.dtype == torch.float32
    assert t.labels.shape == (n, 5) and t.labels.dtype == torch.float32
    assert t.cat.shape == (n, 4) and t.cat.dtype == torch.int64
    assert t.num.shape == (n, 1) and t.num.dtype == torch.float32
    assert t.user.shape == (n,) and t.user.dtype == torch.int64
    assert t.request.shape == (n,) and t.request.dtype == torch.int64
    for j, o in enumerate(objs):
        np.testing.assert_array_equal(t.scores[:, j].numpy(), raw[f"score_{o}"].to_numpy())
        np.testing.assert_array_equal(t.labels[:, j].numpy(), raw[f"label_{o}"].to_numpy())
    for j, c in enumerate(ds.categorical):
        np.testing.assert_array_equal(t.cat[:, j].numpy(), raw[c].to_numpy())
    np.testing.assert_array_equal(t.user.numpy(), raw["user_id"].to_numpy())
    np.testing.assert_array_equal(t.request.numpy(), raw["request_id"].to_numpy())
    assert set(np.unique(t.labels.numpy())) == {0.0, 1.0}
    # numeric features standardized with the training split's statistics
    num = t.num.double()
    assert abs(num.mean().item()) < 1e-4
    assert num.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    x = raw["feat_activity_score"].to_numpy().astype(np.float64)
    assert x.std() > 0.1  # the raw feature is not already standardized
    v = ds.tensors("valid")
    raw_v = pq.read_table(small_dataset / "valid.parquet").to_pandas()
    expected = (raw_v["feat_activity_score"].to_numpy().astype(np.float64) - x.mean()) / x.std()
    np.testing.assert_allclose(v.num[:, 0].numpy(), expected, atol=1e-4)
    with pytest.raises(DatasetError, match="holdout"):
        ds.tensors("holdout")


def test_objective_subset_order(small_dataset):
    ds = load_dataset(small_dataset, objectives=["buy", "click"], splits=["valid"])
    assert list(ds.splits) == ["valid"]
    raw = pq.read_table(small_dataset / "valid.parquet").to_pandas()
    t = ds.tensors("valid")
    assert t.scores.shape[1] == 2
    np.testing.assert_array_equal(t.scores[:, 0].numpy(), raw["score_buy"].to_numpy())
    np.testing.assert_array_equal(t.labels[:, 1].numpy(), raw["label_click"].to_numpy())


# --------------------------------------------------------------------------- synthetic generator
def _tables(folder):
    return {s: pq.read_table(folder / f"{s}.parquet") for s in ("train", "valid", "test")}


def test_generator_is_deterministic(tmp_path):
    kw = dict(rows=3000, objectives=["click", "buy", "like"], progress=False)
    a = generate(tmp_path / "a", seed=4, **kw)
    b = generate(tmp_path / "b", seed=4, **kw)
    c = generate(tmp_path / "c", seed=5, **kw)
    ta, tb, tc = _tables(a), _tables(b), _tables(c)
    for s in ta:
        assert ta[s].num_rows > 0
        assert ta[s].equals(tb[s]), s
        assert not ta[s].equals(tc[s]), s
    assert (a / "meta.yaml").read_text() == (b / "meta.yaml").read_text()
    assert not np.array_equal(ta["train"]["score_click"].to_numpy(),
                              tc["train"]["score_click"].to_numpy())


def test_generator_layout(tmp_path):
    out = generate(tmp_path / "g", rows=2000, objectives=["click", "buy"], seed=0,
                   candidates=5, progress=False)
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert meta["objectives"] == ["click", "buy"]
    t = _tables(out)
    assert [t[s].num_rows for s in ("train", "valid", "test")] == [1600, 200, 200]
    assert {s: meta["splits"][s]["rows"] for s in t} == {"train": 1600, "valid": 200,
                                                          "test": 200}
    df = t["train"].to_pandas()
    assert df.groupby("request_id").size().eq(5).all()
    assert df.groupby("request_id")["user_id"].nunique().eq(1).all()
    # request ids are disjoint across splits
    ids = [set(t[s]["request_id"].to_numpy()) for s in t]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert t["train"].schema.field("score_click").type == pa.float32()
    assert t["train"].schema.field("label_click").type == pa.int8()


BIG_OBJS = ["click", "long_view", "like", "follow", "buy", "forward"]


@pytest.fixture(scope="module")
def big_synthetic(tmp_path_factory):
    """~1M rows (a few seconds), a rare objective at 1e-3."""
    out = tmp_path_factory.mktemp("big-ds")
    generate(out, rows=1_000_000, objectives=BIG_OBJS, positive_rates={"forward": 1e-3},
             seed=0, progress=False)
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    df = pd.concat([pq.read_table(out / f"{s}.parquet").to_pandas()
                    for s in ("train", "valid", "test")], ignore_index=True)
    return meta, df


def _clustered_se(values: np.ndarray, cluster: np.ndarray) -> float:
    """Standard error of the mean of ``values`` with rows clustered (requests are iid)."""
    _, inv = np.unique(cluster, return_inverse=True)
    resid = np.bincount(inv, values - values.mean())
    return float(np.sqrt((resid ** 2).sum()) / len(values))


def test_generator_positive_rates(big_synthetic):
    meta, df = big_synthetic
    truth = meta["truth"]
    assert len(df) == 1_000_000
    assert truth["positive_rates_target"]["forward"] == 1e-3
    for o in BIG_OBJS:
        target = truth["positive_rates_target"][o]
        assert truth["positive_rates_expected"][o] == pytest.approx(target, rel=1e-6)
        y = df[f"label_{o}"].to_numpy().astype(np.float64)
        se = _clustered_se(y, df["request_id"].to_numpy())
        # the request-clustered SE is at least the binomial one; 4.5 SE: a false alarm
        # is ~1e-5 likely, while a 10 % rate error on the rare objective is ~3 SE
        assert se >= 0.9 * math.sqrt(target * (1 - target) / len(y))
        assert abs(y.mean() - target) <= 4.5 * se, (o, y.mean(), target, se)
    assert df["label_forward"].sum() > 500


def test_generator_label_correlation(big_synthetic):
    meta, df = big_synthetic
    y = df[[f"label_{o}" for o in BIG_OBJS]].to_numpy().astype(np.float64)
    emp = np.corrcoef(y, rowvar=False)
    truth = np.array(meta["truth"]["label_correlation"])
    assert truth.shape == (6, 6)
    np.testing.assert_allclose(np.diag(truth), 1.0)
    np.testing.assert_allclose(emp, truth, atol=0.03)
    # the designed structure is there: click/long_view aligned more than click/buy
    i = {o: j for j, o in enumerate(BIG_OBJS)}
    assert truth[i["click"], i["long_view"]] > truth[i["click"], i["buy"]] + 0.05


def test_generator_scores_calibrated(big_synthetic):
    meta, df = big_synthetic
    req = df["request_id"].to_numpy()
    for o in BIG_OBJS:
        s = df[f"score_{o}"].to_numpy().astype(np.float64)
        y = df[f"label_{o}"].to_numpy().astype(np.float64)
        assert ((s >= 0) & (s <= 1)).all()
        # calibration in the large
        assert abs((y - s).mean()) <= 4.5 * _clustered_se(y - s, req), o
        # by score decile: mean label ~ mean score where a bin holds enough positives
        edges = np.quantile(s, np.linspace(0, 1, 11))
        b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, 9)
        exp_pos = np.bincount(b, s, 10)
        got_pos = np.bincount(b, y, 10)
        checked = 0
        for d in range(10):
            if exp_pos[d] < 200:
                continue
            tol = max(0.05, 4 * math.sqrt(2.0 / exp_pos[d]))
            assert abs(got_pos[d] - exp_pos[d]) <= tol * exp_pos[d], (o, d, got_pos[d],
                                                                      exp_pos[d])
            checked += 1
        assert checked >= (10 if meta["truth"]["positive_rates_target"][o] >= 0.3 else 1), o
        # informative: the top decile is far more positive than the bottom one
        assert got_pos[9] > 3 * got_pos[0], o


def test_generator_accepts_tiny_rates(tmp_path):
    out = generate(tmp_path / "tiny", rows=1000, objectives=["click", "follow"],
                   positive_rates={"follow": 1e-5}, seed=0, progress=False)
    truth = yaml.safe_load((out / "meta.yaml").read_text())["truth"]
    assert truth["positive_rates_target"]["follow"] == 1e-5
    assert truth["positive_rates_expected"]["follow"] == pytest.approx(1e-5, rel=1e-4)
    assert truth["positive_rates_expected"]["click"] == pytest.approx(0.4, rel=1e-4)


@pytest.mark.parametrize("params,key", [
    ({"bogus": 1}, "bogus"),
    ({"positive_rates": {"buy": 0}}, "positive_rates.buy"),
    ({"positive_rates": {"buy": 0.95}}, "positive_rates.buy"),
    ({"positive_rates": {"buy": -0.1}}, "positive_rates.buy"),
    ({"positive_rates": {"buy": "0.1"}}, "positive_rates.buy"),
    ({"positive_rates": {"nope": 0.1}}, "nope"),
    ({"positive_rates": [0.1]}, "positive_rates"),
    ({"objectives": []}, "objectives"),
    ({"objectives": "buy"}, "objectives"),
    ({"objectives": ["buy", "buy"]}, "objectives"),
    ({"objectives": ["bad name"]}, "objectives"),
    ({"rows": 10}, "rows"),
    ({"candidates": 0}, "candidates"),
    ({"split_fractions": [0.8, 0.2]}, "split_fractions"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"users": 3}, "users"),
    ({"users": 2.5}, "users"),
    ({"items": 3}, "items"),
])
def test_generator_rejects_bad_params(tmp_path, params, key):
    kw = {"rows": 1000, "objectives": ["click", "buy"], "seed": 0, **params}
    with pytest.raises(ValueError, match=re.escape(key)):
        generate(tmp_path / "bad", progress=False, **kw)
    assert not (tmp_path / "bad").exists()


def test_generator_explicit_population(tmp_path):
    out = generate(tmp_path / "pop", rows=1000, objectives=["click"], users=10, items=10,
                   seed=0, progress=False)
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert (meta["source"]["users"], meta["source"]["items"]) == (10, 10)
    df = pq.read_table(out / "train.parquet").to_pandas()
    assert df["user_id"].nunique() <= 10 and df["item_id"].nunique() <= 10


def test_generated_dataset_loads(tmp_path):
    out = generate(tmp_path / "ok", rows=4000, objectives=["click", "like"],
                   positive_rates={"like": 0.05}, seed=2, progress=False)
    ds = load_dataset(out)
    assert ds.objectives == ["click", "like"]
    assert ds.numeric == ["feat_activity_score"]
    assert ds.categorical == {"feat_age": 7, "feat_gender": 3, "feat_activity": 4, "feat_hour": 24}


# --------------------------------------------------------------------------- resolve_data
def _snapshot(folder: Path):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in sorted(folder.iterdir())}


def test_resolve_synthetic_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETUNE_CACHE", str(tmp_path / "cache"))
    cfg = {"source": "synthetic", "rows": 2000, "objectives": ["click", "long_view"], "seed": 3}
    path, objs = resolve_data(cfg)
    assert objs == ["click", "long_view"]
    assert path.parent == tmp_path / "cache" / "synthetic"
    assert (path / "meta.yaml").is_file()
    assert load_dataset(path).objectives == ["click", "long_view"]
    before = _snapshot(path)
    path2, objs2 = resolve_data(dict(cfg))
    assert path2 == path and objs2 == objs
    assert _snapshot(path) == before                  # nothing rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]   # no temp folders left
    assert cfg["source"] == "synthetic"               # the caller's config is not mutated
    # different parameters -> a different folder
    path3, _ = resolve_data({**cfg, "seed": 4})
    assert path3 != path and (path3 / "meta.yaml").is_file()


def test_resolve_synthetic_default_objectives(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETUNE_CACHE", str(tmp_path / "cache"))
    path, objs = resolve_data({"source": "synthetic", "rows": 1000,
                               "positive_rates": {"follow": 0.05, "buy": 0.05}})
    assert objs == synthetic.defaults()["objectives"]
    assert yaml.safe_load((path / "meta.yaml").read_text())["objectives"] == objs


def test_resolve_path(tmp_path):
    path, objs = resolve_data({"path": str(tmp_path), "objectives": ["buy"]})
    assert path == tmp_path and objs == ["buy"]
    path, objs = resolve_data({"path": str(tmp_path)})
    assert objs is None


@pytest.mark.parametrize("cfg,pattern", [
    ({"path": "/x", "bogus": 1}, "bogus"),
    ({"rows": 1000}, "source"),
    ({"source": "kaggle"}, "kaggle"),
    ({"source": "synthetic", "bogus": 1}, "bogus"),
    ("synthetic", "mapping"),
])
def test_resolve_rejects_bad_config(tmp_path, monkeypatch, cfg, pattern):
    monkeypatch.setenv("PARETUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=pattern):
        resolve_data(cfg)


def test_numeric_features_use_training_statistics_whatever_splits_are_loaded(tmp_path):
    from trainables.data.synthetic import generate
    generate(tmp_path, rows=3000, objectives=["click", "like"], seed=0, progress=False)
    full = load_dataset(tmp_path)
    only_test = load_dataset(tmp_path, splits=["test"])
    torch.testing.assert_close(only_test.tensors("test").num, full.tensors("test").num)


def test_more_candidates_than_a_split_holds_is_an_error(tmp_path):
    from trainables.data.synthetic import generate
    with pytest.raises(ValueError, match="data.candidates = 500 is more than"):
        generate(tmp_path, rows=1000, candidates=500, progress=False)
