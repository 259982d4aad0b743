"""The synthetic generator at scale: flat memory in rows, row groups, data independent of
the row-group size, the capped population and its cache keys, URI targets, the CLI."""
from __future__ import annotations

import os
import tracemalloc

import pyarrow.parquet as pq
import pytest
import yaml

from trainables.data import synthetic
from trainables.data.synthetic import generate, main
from trainables.data.synthetic_params import _check, fingerprint, population

SMALL = dict(objectives=["click", "buy"], positive_rates={"buy": 0.05}, seed=3,
             users=300, items=1000, progress=False)


def _tables(folder):
    return {s: pq.read_table(os.path.join(folder, f"{s}.parquet"))
            for s in ("train", "valid", "test")}


def _run(monkeypatch, out, rows, chunk_rows):
    """Generate with 2,000-row blocks; returns (tracemalloc peak bytes, most rows one
    block drew, most rows a writer held)."""
    monkeypatch.setattr(synthetic, "BLOCK_ROWS", 2_000)
    seen = {"block": 0, "held": 0}
    rows_fn, close_fn = synthetic._World.rows, synthetic._RowGroups.close

    def rows_spy(self, rng, n_requests, candidates, first_request):
        seen["block"] = max(seen["block"], n_requests * candidates)
        return rows_fn(self, rng, n_requests, candidates, first_request)

    def close_spy(self):
        seen["held"] = max(seen["held"], self.peak_rows)
        close_fn(self)

    monkeypatch.setattr(synthetic._World, "rows", rows_spy)
    monkeypatch.setattr(synthetic._RowGroups, "close", close_spy)
    tracemalloc.start()
    try:
        generate(out, rows=rows, chunk_rows=chunk_rows, **SMALL)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, seen["block"], seen["held"]


def test_memory_is_flat_in_rows(tmp_path, monkeypatch):
    """Twice the rows: the same peak (numpy's allocations, traced), no block over
    BLOCK_ROWS, no writer holding more than a row group and a block. Holding a whole
    split (or every block) before writing fails all three."""
    _run(monkeypatch, tmp_path / "warm", 4_000, 5_000)     # first-call imports and caches
    peak1, block1, held1 = _run(monkeypatch, tmp_path / "a", 40_000, 5_000)
    peak2, block2, held2 = _run(monkeypatch, tmp_path / "b", 80_000, 5_000)
    assert max(block1, block2) <= 2_000
    assert max(held1, held2) < 5_000 + 2_000
    assert peak2 <= 1.25 * peak1, (peak1, peak2)
    meta = pq.ParquetFile(tmp_path / "b" / "train.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 64_000 and max(sizes) == 5_000 and len(sizes) == 13


def test_data_do_not_depend_on_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "BLOCK_ROWS", 4_000)
    a = generate(tmp_path / "a", rows=30_000, chunk_rows=1_000, **SMALL)
    b = generate(tmp_path / "b", rows=30_000, chunk_rows=50_000, **SMALL)
    ta, tb = _tables(a), _tables(b)
    for s in ta:
        assert ta[s].equals(tb[s]), s
    groups = [pq.ParquetFile(f / "train.parquet").metadata.num_row_groups for f in (a, b)]
    assert groups == [24, 1]
    ma, mb = (yaml.safe_load((f / "meta.yaml").read_text()) for f in (a, b))
    assert ma["source"]["params"].pop("chunk_rows") == 1_000     # recorded, nothing else
    mb["source"]["params"].pop("chunk_rows")
    assert ma == mb


def test_row_groups_hold_whole_requests(tmp_path):
    out = generate(tmp_path / "c", rows=20_000, candidates=7, chunk_rows=1_000,
                   **{**SMALL, "users": 50})
    f = pq.ParquetFile(out / "train.parquet")
    for i in range(f.metadata.num_row_groups):
        ids = f.read_row_group(i, columns=["request_id"])["request_id"].to_numpy()
        assert len(ids) % 7 == 0 and (ids.reshape(-1, 7) == ids[::7, None]).all()


def test_population_is_capped_and_keys_of_smaller_data_unchanged():
    assert population(_check({"rows": 10_000_000})) == (250_000, 1_000_000)
    assert population(_check({"rows": 100_000_000})) == (250_000, 1_000_000)
    assert population(_check({"rows": 100_000_000, "users": 7, "items": 9} | {"users": 70,
                                                                              "items": 90})) \
        == (70, 90)
    assert population(_check({"rows": 4_000})) == (200, 500)
    # cache keys as the generator before the cap computed them (data unchanged there) ...
    assert fingerprint({}) == "3cba722fd6c4"
    assert fingerprint({"rows": 10_000_000}) == "ac5dabeb05b3"
    assert fingerprint({"rows": 100_000_000, "users": 1000, "items": 5000}) == "76c3251598e9"
    # ... and new keys where the capped population changed the data
    assert fingerprint({"rows": 100_000_000}) != "0c3ef21c781a"
    assert fingerprint({"rows": 10_000_040}) != "d6a23cd9e0c3"


def test_generate_to_an_s3_uri(tmp_path, monkeypatch):
    from pyarrow import fs

    from trainables.storage import open_storage

    from .ray_local import S3Server
    s3 = S3Server()
    try:
        for k, v in s3.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
        uri = f"s3://{s3.bucket}/data/syn"
        assert generate(uri, rows=3_000, chunk_rows=1_000, **SMALL) == uri
        local = _tables(generate(tmp_path / "local", rows=3_000, **SMALL))
        store = open_storage(uri)
        for s, table in local.items():
            got = pq.read_table(store.join(f"{s}.parquet").path, filesystem=store.fs)
            assert got.equals(table), s
        meta = yaml.safe_load(store.read_text("meta.yaml"))
        assert meta["splits"]["train"]["rows"] == 2_400
        assert store.fs.get_file_info(store.path).type == fs.FileType.Directory
    finally:
        s3.close()


def test_cli_writes_and_reports(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "cli"), "--rows", "2000", "--objectives",
                 "click,like", "--seed", "2", "--users", "40"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "cli")
    assert "[synthetic] 2,000/2,000 rows" in err and "rows/s" in err
    assert yaml.safe_load((tmp_path / "cli" / "meta.yaml").read_text())["source"]["users"] == 40


@pytest.mark.parametrize("argv,message", [
    (["--rows", "10"], "error: --rows must be an integer in [1,000"),
    (["--chunk-rows", "5"], "error: --chunk-rows must be an integer"),
    (["--rates", "buy=2", "--objectives", "buy"], "error: --rates.buy = 2.0: must be in"),
    (["--rates", "buy"], "error: --rates: 'buy' is not name=number"),
    (["--objectives", "a b"], "error: --objectives must be a list"),
    (["--users", "3"], "error: --users must be an integer in [10,"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["--out", str(tmp_path / "bad"), *argv]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message) and err.count("\n") == 1 and out == ""
    assert not (tmp_path / "bad").exists()


def test_cli_unsupported_uri(capsys):
    assert main(["--out", "ftp://host/x", "--rows", "1000"]) == 2
    assert "storage URI scheme 'ftp'" in capsys.readouterr().err
