"""Issue 12, everything checked before Ray: each malformed input (space file, dataset,
KuaiRand log, command line) gets exit code 2, one short error naming the file / key /
column and the bad value, no traceback, and no Ray. Most cases call a CLI's main(argv) in
this process; memory bombs run in a fresh process under a 2 GiB address-space limit; a
few run as real `python -m ...` commands with their own Ray temp folder, which must stay
free of Ray sessions."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _bad_inputs as b
from tests._bad_inputs import OBJS, space

ROOT = Path(__file__).resolve().parents[1]
MAX_MESSAGE = 2000


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-inputs")


@pytest.fixture(scope="module")
def good_ds(work) -> Path:
    return b.make_dataset(work / "good-ds")


def _assert_refused(rc: int, err: str, fragments, ray: bool = False) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert rc == 2, (rc, err[-2000:])
    assert len(err) < MAX_MESSAGE, f"{len(err)} characters: {err[:300]}..."
    assert "error" in err.lower()
    for f in fragments:
        assert f in err, f"{f!r} not in: {err}"
    assert not ray, "Ray was started"


# --------------------------------------------------------------------------- space files
@pytest.mark.parametrize("content,fragments", list(b.SPACES.values()), ids=list(b.SPACES))
def test_bad_space(work, request, content, fragments):
    path = b.write_space(work, content, f"{request.node.callspec.id}.yaml")
    rc, err, _ = b.run_cli("search", ["run", str(path), "--storage", str(work / "exp")])
    _assert_refused(rc, err, [path.name, *fragments], b.ray_started())


def test_null_is_allowed_only_where_it_means_automatic(work):
    from search.space import SpaceError, load_space
    ok = space()        # (space() drops None values: set them here)
    ok["optim"]["grad_clip"] = None
    ok["run"] = {"threads": None, "nan_check_every": None, "chunk_rows": None}
    assert load_space(b.write_space(work, ok, "nulls.yaml")).fixed_config()["optim"][
        "grad_clip"] is None
    with pytest.raises(SpaceError, match=r"optim\.lr = None: must be a number > 0$"):
        load_space(b.write_space(work, {**ok, "optim": {"lr": None}}, "null-lr.yaml"))


def test_missing_space_file_and_folder(work):
    for target, what in ((work / "nope.yaml", "cannot read"), (work, "is a folder")):
        rc, err, _ = b.run_cli("search", ["run", str(target)])
        _assert_refused(rc, err, [str(target), what], b.ray_started())


# --------------------------------------------------------------------------- datasets
def _no_like_columns(folder):
    b.edit_meta(folder, lambda m: m["objectives"].append("like"))


def _split_outside(folder):
    b.edit_meta(folder, lambda m: m["splits"]["test"].update(file="../../../../etc/hostname"))


def _symlink_outside(folder):
    (folder / "valid.parquet").unlink()
    (folder / "valid.parquet").symlink_to("/etc/hostname")


DATASETS = {  # id: (edit of a copy of the good dataset, fragments)
    "nan-score": (lambda d: b.edit_split(d, "train", b.set_cell("score_buy", 11, float("nan"))),
                  ["train.parquet", "'score_buy'", "NaN", "row 11"]),
    "score-1.5": (lambda d: b.edit_split(d, "test", b.set_cell("score_click", 4, 1.5)),
                  ["test.parquet", "'score_click'", "outside [0, 1]", "1.5"]),
    "label-2": (lambda d: b.edit_split(d, "valid", b.set_cell("label_click", 9, 2)),
                ["valid.parquet", "'label_click'", "not binary", "row 9"]),
    "one-class-split": (lambda d: b.edit_split(d, "valid", lambda df: df.assign(label_buy=0)),
                        ["valid.parquet", "'buy'", "no positives"]),
    "missing-column": (lambda d: b.edit_split(d, "test", lambda df: df.drop(
        columns=["score_long_view"])), ["test.parquet", "missing column", "'score_long_view'"]),
    "request-id-float": (lambda d: b.edit_split(d, "train", lambda df: df.assign(
        request_id=df.request_id.astype(float))), ["train.parquet", "'request_id'", "integer"]),
    "score-as-string": (lambda d: b.edit_split(d, "valid", lambda df: df.assign(
        score_buy=df.score_buy.astype(str))), ["valid.parquet", "'score_buy'", "float"]),
    "null-user-id": (lambda d: b.edit_split(d, "train", lambda df: df.assign(
        user_id=df.user_id.astype("Int64").mask(df.index == 5))),
        ["train.parquet", "'user_id'", "null", "row 5"]),
    "categorical-out-of-range": (lambda d: b.edit_split(d, "test", b.set_cell("feat_hour", 3, 99)),
                                 ["test.parquet", "'feat_hour'", "0..23"]),
    "corrupt-parquet": (lambda d: (d / "train.parquet").write_bytes(b"PAR1 not really"),
                        ["train.parquet", "cannot be read as Parquet"]),
    "corrupt-test-pages": (lambda d: b.corrupt_pages(d / "test.parquet"),
                           ["test.parquet", "cannot be read as Parquet"]),
    "split-file-missing": (lambda d: (d / "valid.parquet").unlink(),
                           ["valid.parquet", "split 'valid' file is missing"]),
    "split-path-outside": (_split_outside, ["meta.yaml", "splits.test",
                                            "../../../../etc/hostname", "outside"]),
    "split-symlink-outside": (_symlink_outside, ["meta.yaml", "splits.valid", "outside"]),
    "objective-without-columns": (_no_like_columns, ["missing column", "'score_like'"]),
    "meta-alias-bomb": (lambda d: (d / "meta.yaml").write_text(
        b.alias_bomb(9, "source").replace("name: bomb\n", "objectives: [click]\n")),
        ["meta.yaml", "expands to more than"]),
    "meta-non-utf8": (lambda d: (d / "meta.yaml").write_bytes(
        (d / "meta.yaml").read_bytes() + b"\n# \xff\n"), ["meta.yaml", "not UTF-8"]),
    "meta-numeric-not-list": (lambda d: b.edit_meta(d, lambda m: m.update(numeric=5)),
                              ["meta.yaml", "'numeric'"]),
    "meta-missing": (lambda d: (d / "meta.yaml").unlink(), ["meta.yaml: missing"]),
}


@pytest.mark.parametrize("edit,fragments", list(DATASETS.values()), ids=list(DATASETS))
def test_bad_dataset_via_search_data(work, good_ds, request, edit, fragments):
    cid = request.node.callspec.id
    folder = b.copy_dataset(good_ds, work / f"ds-{cid}")
    edit(folder)
    own = space(data={"path": "replaced"}, weighting={"weights": None}) \
        if cid == "objective-without-columns" else space()
    path = b.write_space(work, own, f"ok-{cid}.yaml")
    rc, err, _ = b.run_cli("search", ["run", str(path), "--data", str(folder),
                                      "--storage", str(work / "exp")])
    _assert_refused(rc, err, ["--data", folder.name, *fragments], b.ray_started())


@pytest.mark.parametrize("edit,fragments", [DATASETS["nan-score"], DATASETS["label-2"]],
                         ids=["nan-score", "label-2"])
def test_bad_dataset_via_data_path(work, good_ds, request, edit, fragments):
    folder = b.copy_dataset(good_ds, work / f"dp-{request.node.callspec.id}")
    edit(folder)
    path = b.write_space(work, space(data={"path": str(folder), "objectives": OBJS}),
                         f"dp-{request.node.callspec.id}.yaml")
    rc, err, _ = b.run_cli("search", ["run", str(path), "--storage", str(work / "exp")])
    _assert_refused(rc, err, ["data.path", *fragments], b.ray_started())


@pytest.mark.parametrize("make,fragments", [
    (lambda w, ds: ["--data", str(w / "missing")], ["no such dataset folder"]),
    (lambda w, ds: ["--data", ""], ["--data", "dataset folder"]),
    (lambda w, ds: ["--data", str(ds)] + ["--name", "../x"], ["--name '../x'"]),
], ids=["data-missing", "data-empty-string", "valid-data-bad-name"])
def test_bad_data_argument(work, good_ds, make, fragments):
    path = b.write_space(work, space(), "ok.yaml")
    rc, err, _ = b.run_cli("search", ["run", str(path), *make(work, good_ds),
                                      "--storage", str(work / "exp")])
    _assert_refused(rc, err, fragments, b.ray_started())


@pytest.mark.parametrize("name", ["../x", "/abs", ".", "..", "a" * 101, "-x", "a/b", ""],
                         ids=["dotdot-x", "abs", "dot", "dotdot", "too-long", "dash", "slash",
                              "empty"])
def test_bad_experiment_name(work, name):
    path = b.write_space(work, space(), "ok.yaml")
    rc, err, _ = b.run_cli("search", ["run", str(path), f"--name={name}",
                                      "--storage", str(work / "exp")])
    _assert_refused(rc, err, ["--name"], b.ray_started())
    assert not (work / "exp").exists() or not any((work / "exp").iterdir())


# --------------------------------------------------------------------------- train, analysis
TRAIN = {  # id: (argv maker (work, good dataset) -> argv, fragments)
    "data-missing": (lambda w, ds: ["--data", str(w / "nowhere")], ["no such dataset folder"]),
    "data-nan-score": (lambda w, ds: ["--data", str(b.edit_split(b.copy_dataset(
        ds, w / "tr-nan"), "valid", b.set_cell("score_click", 2, float("nan")))),
        "--objectives", ",".join(OBJS)], ["valid.parquet", "'score_click'", "NaN"]),
    "data-corrupt-pages": (lambda w, ds: ["--data", str(_corrupt_copy(ds, w / "tr-corrupt")),
                                          "--objectives", ",".join(OBJS)],
                           ["train.parquet", "cannot be read as Parquet"]),
    "rows-10-12": (lambda w, ds: ["--rows", str(10 ** 12)], ["data.rows", "100,000,000"]),
    "config-missing": (lambda w, ds: ["--config", str(w / "none.yaml")], ["none.yaml",
                                                                          "cannot read"]),
    "config-alias-bomb": (lambda w, ds: ["--config", str(b.write_space(
        w, b.alias_bomb(), "cfg-bomb.yaml"))], ["cfg-bomb.yaml", "expands to more than"]),
    "config-non-utf8": (lambda w, ds: ["--config", str(b.write_space(
        w, b"data: {source: synthetic}\nrun: {device: \xff}\n", "cfg-latin.yaml"))],
        ["cfg-latin.yaml", "not UTF-8"]),
    "config-device-tpu": (lambda w, ds: ["--config", str(b.write_space(
        w, {"data": {"source": "synthetic", "rows": 5000}, "run": {"device": "tpu"}},
        "cfg-tpu.yaml"))], ["run.device", "'tpu'"]),
}


def _corrupt_copy(ds: Path, folder: Path) -> Path:
    b.copy_dataset(ds, folder)
    b.corrupt_pages(folder / "train.parquet")
    return folder


@pytest.mark.parametrize("make,fragments", list(TRAIN.values()), ids=list(TRAIN))
def test_train_cli_refuses(work, good_ds, make, fragments):
    rc, err, _ = b.run_cli("train", make(work, good_ds))
    _assert_refused(rc, err, fragments, b.ray_started())


@pytest.mark.parametrize("cli,argv,fragments", [
    ("analysis", ["frontier", "{w}/MISSING"], ["MISSING"]),
    ("analysis", ["pick", "{w}/MISSING", "--rule", "fair"], ["MISSING"]),
    ("search", ["resume", "{w}/MISSING"], ["MISSING"]),
], ids=["frontier-missing", "pick-missing", "resume-missing"])
def test_missing_experiment(work, cli, argv, fragments):
    rc, err, _ = b.run_cli(cli, [a.format(w=work) for a in argv])
    _assert_refused(rc, err, fragments, b.ray_started())


# --------------------------------------------------------------------------- KuaiRand logs
def _log(folder: Path) -> Path:
    return folder / "log_standard_test.csv"


KUAIRAND = {  # id: (edit of a valid raw folder, fragments)
    "extra-field": (lambda d: b.edit_csv_line(_log(d), 6, lambda ln: ln + b",99"),
                    ["log_standard_test.csv", "line 6"]),
    "log-non-utf8": (lambda d: b.edit_csv_line(_log(d), 250, lambda ln: ln + b"\xff"),
                     ["log_standard_test.csv", "not UTF-8"]),
    "users-non-utf8": (lambda d: b.edit_csv_line(d / "user_features_test.csv", 3,
                                                 lambda ln: ln.replace(b",", b",\xe9", 1)),
                       ["user_features_test.csv", "not UTF-8"]),
    "label-2": (lambda d: b.set_csv_field(_log(d), 8, "is_click", b"2"),
                ["log_standard_test.csv", "'is_click'", "not binary", "line 8"]),
    "missing-column": (lambda d: _log(d).write_text(_log(d).read_text().replace(
        "is_like", "is_liked", 1)), ["log_standard_test.csv", "'is_like'"]),
    "bad-date": (lambda d: b.set_csv_field(_log(d), 4, "date", b"20221345"),
                 ["log_standard_test.csv", "'date'", "line 4"]),
}


@pytest.mark.parametrize("edit,fragments", list(KUAIRAND.values()), ids=list(KUAIRAND))
def test_bad_kuairand_logs(work, request, edit, fragments):
    folder = b.write_kuairand(work / f"kr-{request.node.callspec.id}")
    edit(folder)
    rc, err, _ = b.run_cli("mp", ["kuairand", "--logs", str(folder), *b.KR_DAYS, "--out",
                                  str(work / f"kr-out-{request.node.callspec.id}"),
                                  "--no-progress"])
    _assert_refused(rc, err, fragments, b.ray_started())


# --------------------------------------------------------------------------- memory bombs
def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _env(tmp: Path) -> dict:
    (tmp / "raytmp").mkdir(parents=True, exist_ok=True)
    return {**os.environ, "RAY_TMPDIR": str(tmp / "raytmp"), "TMPDIR": str(tmp / "raytmp"),
            "PARETUNE_CACHE": str(tmp / "cache"), "WANDB_MODE": "offline",
            "PYTHONPATH": str(ROOT)}


BOMBS = {  # id: (space content, fragments); run in one fresh process limited to 2 GiB
    "billion-laughs": (b.alias_bomb(9), ["expands to more than 100,000"]),
    "laughs-under-unknown-key": (b.alias_bomb(8, "zzz"), ["expands to more than"]),
    "file-2MiB": ("name: x\n" + "# padding\n" * 210_000, ["larger than 1,048,576 bytes"]),
    "list-50MB": ("name: x\nmodel: {d_model: [" + "1, " * 17_000_000 + "1]}\n",
                  ["larger than 1,048,576 bytes"]),
    "pe-ltr-partitions-200": (space(data={"objectives": ["click", "long_view", "buy",
                                                        "like", "follow"], "rows": 200_000},
                                    weighting={"kind": "pe_ltr", "weights": None},
                                    search={"algorithm": "pe_ltr_grid", "partitions": 200,
                                            "num_samples": None}),
                              ["search.partitions = 200", "70,058,751", "10,000"]),
    "pe-ltr-population-30": (space(data={"objectives": ["click", "long_view", "buy", "like",
                                                       "follow"], "rows": 200_000},
                                   weighting={"kind": "pe_ltr", "weights": None},
                                   search={"algorithm": "pe_ltr_grid", "partitions": 30,
                                           "population": True, "num_samples": None}),
                             ["search.partitions = 30", "46,376", "1,000"]),
    "rows-10-12": (space(data={"rows": 10 ** 12}), ["data.rows", "100,000,000"]),
    "users-10-12": (space(data={"users": 10 ** 12}), ["data.users", "10,000,000"]),
    "buckets-10-9": (space(model={"buckets": 10 ** 9}), ["parameters", "100,000,000"]),
    "mlp-hidden-10-6": (space(model={"family": "mlp", "d_model": None,
                                     "hidden": [10 ** 6, 10 ** 6]}),
                        ["model.family = 'mlp'", "parameters"]),
    "num-samples-10-18": (space(search={"num_samples": 10 ** 18}), ["search.num_samples"]),
}


@pytest.fixture(scope="module")
def bomb_results(work, good_ds):
    cases = []
    for cid, (content, _) in BOMBS.items():
        path = b.write_space(work, content, f"bomb-{cid}.yaml")
        cases.append({"id": cid, "cli": "search", "argv": ["run", str(path), "--storage",
                                                            str(work / "exp")]})
    meta = b.copy_dataset(good_ds, work / "ds-bomb")
    (meta / "meta.yaml").write_text(b.alias_bomb(9, "source").replace(
        "name: bomb\n", "objectives: [click]\n"))
    cases.append({"id": "meta-billion-laughs", "cli": "search", "argv": [
        "run", str(b.write_space(work, space(), "ok-bomb.yaml")), "--data", str(meta)]})
    cases.append({"id": "train-config-laughs", "cli": "train", "argv": [
        "--config", str(b.write_space(work, b.alias_bomb(9), "cfg-laughs.yaml"))]})
    (work / "bombs.json").write_text(json.dumps(cases))
    out = subprocess.run([sys.executable, "-m", "tests._bad_inputs", str(work / "bombs.json")],
                         cwd=ROOT, env=_env(work / "bomb-env"), capture_output=True, text=True,
                         timeout=600, preexec_fn=_limit_memory)
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["id"]] = r
    assert len(results) == len(cases), out.stderr[-3000:]
    return results


BOMB_CASES = {**{k: v[1] for k, v in BOMBS.items()},
              "meta-billion-laughs": ["meta.yaml", "expands to more than"],
              "train-config-laughs": ["cfg-laughs.yaml", "expands to more than"]}


@pytest.mark.parametrize("cid", list(BOMB_CASES), ids=list(BOMB_CASES))
def test_memory_bomb_is_refused_fast(bomb_results, cid):
    r = bomb_results[cid]
    _assert_refused(r["rc"], r["stderr"], BOMB_CASES[cid], r["ray"])
    assert r["seconds"] < 20, f"took {r['seconds']:.1f} s"      # generous on a busy 2-core box


# --------------------------------------------------------------------------- real commands
def _commands(w: Path, ds: Path) -> dict:
    nan = b.edit_split(b.copy_dataset(ds, w / "cmd-nan"), "valid",
                       b.set_cell("score_buy", 1, float("nan")))
    return {  # id: (python -m arguments, fragments)
        "search-run-billion-laughs": (["search", "run", str(b.write_space(
            w, b.alias_bomb(9), "cmd-bomb.yaml"))], ["cmd-bomb.yaml", "expands to more than"]),
        "search-run-data-nan": (["search", "run", str(b.write_space(w, space(), "cmd-ok.yaml")),
                                 "--data", str(nan), "--storage", str(w / "exp")],
                                ["valid.parquet", "'score_buy'", "NaN"]),
        "search-run-name-dotdot": (["search", "run", str(w / "cmd-ok.yaml"), "--name", "../x",
                                    "--storage", str(w / "exp")], ["--name", "../x"]),
        "train-data-missing": (["trainables.train", "--data", str(w / "nowhere")],
                               ["no such dataset folder"]),
        "analysis-frontier-missing": (["analysis", "frontier", str(w / "MISSING")],
                                      ["MISSING"]),
    }


@pytest.fixture(scope="module")
def command_results(work, good_ds):
    """Every command at once (each its own Ray temp folder), then their outcomes."""
    procs = {}
    for cid, (args, frags) in _commands(work, good_ds).items():
        env = _env(work / f"env-{cid}")
        procs[cid] = (subprocess.Popen([sys.executable, "-m", *args], cwd=work, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, preexec_fn=_limit_memory), frags,
                      Path(env["RAY_TMPDIR"]))
    out = {}
    for cid, (p, frags, raytmp) in procs.items():
        try:
            _, err = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        sessions = [str(s) for s in raytmp.rglob("session_*")]
        out[cid] = (p.returncode, err, frags, sessions)
    return out


@pytest.mark.parametrize("cid", ["search-run-billion-laughs", "search-run-data-nan",
                                 "search-run-name-dotdot", "train-data-missing",
                                 "analysis-frontier-missing"])
def test_real_command_exits_2_without_ray(command_results, cid):
    rc, err, frags, sessions = command_results[cid]
    _assert_refused(rc, err, frags)
    assert not sessions, f"a Ray session was created: {sessions}"
