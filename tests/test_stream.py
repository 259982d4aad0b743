"""Streaming data and the batch sources (docs/DESIGN.md, "Data contract" and "Training
loop"): streaming equals the in-memory path when a shard fits the buffer; a small buffer
still trains every row once per epoch, requests whole; two data-parallel workers train on
every row and evaluate exactly (gloo processes: what a Ray Train worker group runs); URIs;
the data config's options and their errors."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

import trainables.loop as loop
from trainables.config import resolve_config
from trainables.data import DatasetError, load_dataset

from ._workers import run_workers

TIMING = ("samples_per_s", "train_time_s")
EMER = {"family": "emer", "d_model": 8, "heads": 2, "layers": 1}
KINDS = {"rows": {"model": {"family": "harmonrank", "d_model": 8}, "loss": {"kind": "rank_auc"}},
         "request_loss": {"model": {"family": "fusion"}, "loss": {"kind": "emer_posterior"}},
         "request_model": {"model": EMER, "loss": {"kind": "bce"}}}


def _cfg(path, stream, kind="rows", epochs=1, **over):
    cfg = {"data": {"path": str(path), "stream": stream}, **KINDS[kind],
           "optim": {"epochs": epochs, "batch_size": 4096},
           "run": {"verbose": False, "device": "cpu", "request_gauc": True}}
    for section, values in over.items():       # model and loss are replaced, not merged
        cfg[section] = values if section in ("model", "loss") else {**cfg[section], **values}
    return cfg


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k not in TIMING} == \
            {k: v for k, v in y.items() if k not in TIMING}


@pytest.fixture(scope="module")
def grouped(small_dataset, tmp_path_factory):
    """small_dataset with its train split in row groups of 2,995 rows: requests (10 rows)
    cross row group boundaries."""
    out = tmp_path_factory.mktemp("grouped")
    shutil.copytree(small_dataset, out, dirs_exist_ok=True)
    pq.write_table(pq.read_table(out / "train.parquet"), out / "train.parquet",
                   row_group_size=2995)
    return out


@pytest.fixture(scope="module")
def rows16k(tmp_path_factory):
    """A dataset whose train split has 16,000 rows."""
    from trainables.data.synthetic import generate
    out = tmp_path_factory.mktemp("rows16k")
    generate(out, rows=20_000, objectives=["click", "long_view", "buy"], seed=2, progress=False)
    assert pq.ParquetFile(out / "train.parquet").metadata.num_rows == 16_000
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_streaming_equals_in_memory_when_the_shard_fits_the_buffer(small_dataset, kind):
    _same(loop.train_loop_per_worker(_cfg(small_dataset, False, kind)),
          loop.train_loop_per_worker(_cfg(small_dataset, True, kind)))


@pytest.mark.parametrize("kind", ["rows", "request_loss"])
def test_a_small_buffer_trains_every_row_once_per_epoch(grouped, monkeypatch, kind):
    over = {"model": {"family": "fusion"}, "loss": {"kind": "bce"}} if kind == "rows" else {}
    cfg = _cfg(grouped, True, kind, epochs=2, **over)
    cfg["data"]["shuffle_buffer"] = 3000
    from tests._batches import record_batches
    hist, seen = record_batches(monkeypatch, cfg)
    train = load_dataset(grouped, splits=["train"]).tensors("train")
    sizes = torch.bincount(train.request)
    want = torch.sort(train.scores[:, 0]).values
    for epoch in range(2):
        batches = [(g, s) for e, g, s in seen if e == epoch]
        assert len(batches) == math.ceil(len(train) / 4096)
        assert torch.equal(torch.sort(torch.cat([s for _, s in batches])[:, 0]).values, want)
        assert hist[epoch]["train_rows"] == len(train)
        if kind != "rows":                                    # whole requests per batch
            for g, _ in batches:
                assert torch.equal(torch.bincount(g, minlength=len(sizes))[g], sizes[g])
    first = [s for e, _, s in seen if e == 0][0]
    assert not torch.equal(first, [s for e, _, s in seen if e == 1][0])   # reshuffled


def test_two_workers_stream_every_row_and_evaluate_exactly(rows16k, tmp_path):
    """A population trial as 2 data-parallel workers streaming a 16,000-row train split:
    all 16,000 rows each epoch (no batch dropped), and the reported metrics are those of
    one process evaluating the checkpoint on the whole validation split."""
    ck = tmp_path / "ck"
    cfg = _cfg(rows16k, True, epochs=2, run={"checkpoint_dir": str(ck), "eval_batch_size": 700},
               optim={"batch_size": 3000}, model={"family": "mlp"}, loss={"kind": "bce"})
    cfg["population"] = [{"optim": {"lr": 0.003}}, {"run": {"seed": 3}}]
    ranks = run_workers(cfg, 2, tmp_path)
    assert [h["train_rows"] for h in ranks[0]] == [16_000, 16_000]
    _same(ranks[0], ranks[1])
    from trainables.checkpoints import _load_checkpoint
    from trainables.models import FeatureSpec
    from trainables.trainee import make_trainee
    payload = _load_checkpoint(ck)
    f = payload["features"]
    trainee = make_trainee(payload["config"], payload["objectives"],
                           FeatureSpec(tuple(f["categorical"].items()), tuple(f["numeric"])),
                           torch.device("cpu"))
    trainee.load_state(payload)
    valid = load_dataset(rows16k, splits=["valid"]).tensors("valid")
    alone = loop.evaluate_members(trainee.model, valid, ["click", "long_view", "buy"], 700,
                                  True, None, True)
    for i, metrics in enumerate(alone):
        for k, v in metrics.items():
            assert ranks[0][-1][f"m{i}/{k}"] == pytest.approx(v, abs=1e-9), k


def test_two_workers_in_memory_whole_requests(rows16k, tmp_path):
    ck = tmp_path / "ck"
    cfg = _cfg(rows16k, False, "request_model", epochs=1,
               run={"checkpoint_dir": str(ck), "eval_batch_size": 500})
    ranks = run_workers(cfg, 2, tmp_path)
    assert ranks[0][0]["train_rows"] == 16_000
    _same(ranks[0], ranks[1])
    model, _ = loop.load_model(ck)
    valid = load_dataset(rows16k, splits=["valid"]).tensors("valid")
    alone = loop.evaluate(model, valid, ["click", "long_view", "buy"], 500, True, True)
    for k, v in alone.items():
        assert ranks[0][0][k] == pytest.approx(v, abs=1e-9), k


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_two_workers_stream_as_they_train_in_memory(rows16k, tmp_path, kind):
    """Same shards, same permutations: 2 streaming workers = 2 in-memory workers."""
    memory = run_workers(_cfg(rows16k, False, kind, epochs=2), 2, tmp_path / "a")
    streamed = run_workers(_cfg(rows16k, True, kind, epochs=2), 2, tmp_path / "b")
    for a, b in zip(memory, streamed):
        _same(a, b)


def test_a_file_uri_streams(small_dataset):
    over = {"model": {"family": "fusion"}, "loss": {"kind": "bce"}}
    uri = _cfg(f"file://{small_dataset}", "auto", **over)          # a URI streams under auto
    _same(loop.train_loop_per_worker(_cfg(small_dataset, False, **over)),
          loop.train_loop_per_worker(uri))
    with pytest.raises(ValueError, match=r"data\.path = file://.* is a URI and data\.stream = "
                                         r"false; the in-memory loader reads local folders"):
        loop.train_loop_per_worker(_cfg(f"file://{small_dataset}", False, **over))


def test_an_s3_dataset_streams_and_validates(small_dataset, monkeypatch):
    """s3:// with an endpoint (moto's S3 server on 127.0.0.1): validated batch by batch,
    streamed as from the local folder."""
    from trainables.data import validate_dataset
    from trainables.storage import open_storage

    from .ray_local import S3Server
    s3 = S3Server()
    try:
        for k, v in s3.env.items():
            monkeypatch.setenv(k, v)
        uri = f"s3://{s3.bucket}/datasets/small"
        open_storage(uri, s3.endpoint).upload(small_dataset)
        validate_dataset(uri, endpoint=s3.endpoint)
        over = {"model": {"family": "fusion"}, "loss": {"kind": "bce"}}
        _same(loop.train_loop_per_worker(_cfg(small_dataset, False, **over)),
              loop.train_loop_per_worker(_cfg(uri, "auto", data={"endpoint": s3.endpoint},
                                              **over)))
        with pytest.raises(DatasetError, match=r"s3://.*/nope/meta\.yaml: missing"):
            validate_dataset(f"s3://{s3.bucket}/nope", endpoint=s3.endpoint)
    finally:
        s3.close()


def test_auto_streams_above_the_size_limit(small_dataset, monkeypatch):
    import trainables.sources as sources
    assert not sources.open_data({"stream": "auto"}, small_dataset, None, "valid", "cpu").stream
    monkeypatch.setattr(sources, "STREAM_AUTO_BYTES", 1000)
    assert sources.open_data({"stream": "auto"}, small_dataset, None, "valid", "cpu").stream


def test_streamed_numeric_statistics_are_the_loaders(grouped):
    from trainables.data.location import DataLocation
    from trainables.data.stream import StreamData
    mean, std = load_dataset(grouped, splits=["train"]).numeric_stats()
    got = StreamData(DataLocation(grouped), None, ["valid"]).numeric_stats()
    assert np.array_equal(got[0], mean) and np.array_equal(got[1], std)


def _rewrite(src, dst, fn):
    shutil.copytree(src, dst)
    t = pq.read_table(dst / "train.parquet")
    pq.write_table(fn(t), dst / "train.parquet", row_group_size=5000)
    return dst


def test_streamed_rows_are_checked_and_requests_must_be_sorted(small_dataset, tmp_path):
    def bad_score(t):
        s = t.column("score_click").to_numpy().copy()
        s[12_345] = 1.5
        return t.set_column(t.schema.get_field_index("score_click"), "score_click", pa.array(s))
    bad = _rewrite(small_dataset, tmp_path / "bad", bad_score)
    with pytest.raises(DatasetError, match=r"train\.parquet: column 'score_click' has 1 value"
                                           r"\(s\) outside \[0, 1\] \(first at row 12345: 1\.5"):
        loop.train_loop_per_worker(_cfg(bad, True, model={"family": "fusion"},
                                        loss={"kind": "bce"}))
    unsorted = _rewrite(small_dataset, tmp_path / "unsorted", lambda t: t.take(
        pa.array(np.arange(t.num_rows)[::-1].copy())))
    with pytest.raises(DatasetError, match=r"train\.parquet: row \d+ has request_id \d+ after "
                                           r"\d+: streaming whole requests .* sorted by "
                                           r"request_id.* or set data\.stream: false"):
        loop.train_loop_per_worker(_cfg(unsorted, True, "request_loss"))
    assert loop.train_loop_per_worker(_cfg(unsorted, True, model={"family": "fusion"},
                                           loss={"kind": "bce"}))[0]["train_rows"] == 32_000


@pytest.mark.parametrize("data,pattern", [
    ({"stream": "yes"}, r"data\.stream = 'yes'; allowed: auto .*, true .* or false"),
    ({"stream": 1}, r"data\.stream = 1; allowed: auto"),
    ({"shuffle_buffer": 0}, r"data\.shuffle_buffer = 0; must be an integer >= 1"),
    ({"endpoint": "http://127.0.0.1:9000"}, r"data\.endpoint = .* is for an s3:// data\.path"),
    ({"streem": True}, r"unknown key\(s\) data\.streem; allowed in data: endpoint, "
                       r"objectives, path, shuffle_buffer, stream"),
])
def test_data_option_errors_name_the_key(small_dataset, data, pattern):
    with pytest.raises(ValueError, match=pattern):
        loop.train_loop_per_worker(_cfg(small_dataset, "auto", data=data))


def test_space_files_check_the_data_options(tmp_path, small_dataset):
    from search.space import SpaceError, load_space
    space = {"name": "s", "data": {"path": str(small_dataset), "stream": True,
                                   "shuffle_buffer": 50_000},
             "model": {"family": "fusion"}, "loss": {"kind": "bce"},
             "optim": {"epochs": 1}}
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(space))
    assert load_space(ok).fixed_config()["data"]["stream"] is True
    synthetic = {**space, "data": {"source": "synthetic", "rows": 20_000, "stream": "auto"}}
    ok.write_text(yaml.safe_dump(synthetic))
    assert resolve_config(load_space(ok).fixed_config())["data"]["shuffle_buffer"] == 1_000_000
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**space, "data": {**space["data"], "stream": "sometimes"}}))
    with pytest.raises(SpaceError, match=r"bad\.yaml: data\.stream = 'sometimes'; allowed: "
                                         r"auto"):
        load_space(bad)
