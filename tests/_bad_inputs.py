"""Makers of malformed inputs for tests/test_bad_inputs.py: space files, ME datasets with
one defect each, raw KuaiRand folders, and the CLI runner used in and out of process."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

OBJS = ["click", "long_view", "buy"]
GOOD = {"name": "ok", "data": {"source": "synthetic", "rows": 20000, "objectives": OBJS},
        "model": {"family": "harmonrank", "d_model": 8},
        "loss": {"kind": "rank_auc"},
        "weighting": {"kind": "static", "weights": {"simplex": OBJS}},
        "optim": {"lr": 0.01, "epochs": 1},
        "search": {"algorithm": "random", "num_samples": 2}}


# --------------------------------------------------------------------------- spaces
def space(**over) -> dict:
    """GOOD with sections merged (a section given as None is removed)."""
    s = json.loads(json.dumps(GOOD))
    for k, v in over.items():
        if v is None:
            s.pop(k, None)
        elif isinstance(v, dict) and isinstance(s.get(k), dict) and "path" not in v:
            s[k] = {a: x for a, x in {**s[k], **v}.items() if x is not None}
        else:
            s[k] = v
    return s


# each: (space content, fragments the error must contain besides the file name)
SPACES = {  # id: (space content, fragments the message must contain)
    # resources beyond this machine (no GPU here; 2 CPUs): refused before a local Ray starts
    "gpu-on-cpu-box": (space(resources={"gpus_per_worker": 1}),
                       ["resources.gpus_per_worker = 1", "this machine has no GPU"]),
    "cpus-beyond-machine": (space(resources={"cpus_per_worker": 64}),
                            ["resources.cpus_per_worker = 64", "largest"]),
    "workers-beyond-machine": (space(resources={"workers_per_trial": 8}),
                               ["resources.workers_per_trial = 8", "per trial"]),
    "rows-100": (space(data={"rows": 100}), ["data.rows", "100", "1,000"]),
    "rows-too-few-for-follow": (space(data={"rows": 2000, "objectives": ["buy", "follow"]},
                                      weighting={"weights": {"simplex": ["buy", "follow"]}}),
                                ["data.rows = 2000", "'follow'", "15,000"]),
    "rows-float": (space(data={"rows": 2.5e4}), ["data.rows", "25000.0"]),
    "rate-out-of-range": (space(data={"positive_rates": {"buy": 1.5}}),
                          ["data.positive_rates.buy = 1.5"]),
    "split-fractions-inf": (space(data={"split_fractions": [1, 1, ".inf"]}),
                            ["data.split_fractions"]),
    "eval-split-holdout": (space(run={"eval_split": "holdout"}),
                           ["run.eval_split = 'holdout'", "train, valid, test"]),
    "grad-clip-big": (space(optim={"grad_clip": "big"}), ["optim.grad_clip", "'big'", "> 0"]),
    "grad-clip-negative": (space(optim={"grad_clip": -1}), ["optim.grad_clip", "-1"]),
    "grad-clip-choice-member": (space(optim={"grad_clip": {"choice": [1.0, "big"]}}),
                                ["optim.grad_clip", "'big'"]),
    "threads-many": (space(run={"threads": "many"}), ["run.threads", "'many'"]),
    "threads-zero": (space(run={"threads": 0}), ["run.threads = 0", "[1, 1024]"]),
    "eval-batch-zero": (space(run={"eval_batch_size": 0}), ["run.eval_batch_size = 0", ">= 1"]),
    "weight-decay-negative": (space(optim={"weight_decay": -1}), ["optim.weight_decay", "-1"]),
    "weight-decay-uniform-below-0": (space(optim={"weight_decay": {"uniform": [-1, 0.1]}}),
                                     ["optim.weight_decay", "-1"]),
    "lr-choice-negative": (space(optim={"lr": {"choice": [0.01, -1]}}), ["optim.lr", "-1"]),
    "epochs-zero": (space(optim={"epochs": 0}), ["optim.epochs", "0"]),
    "batch-size-float": (space(optim={"batch_size": 1.5}), ["optim.batch_size", "1.5"]),
    "device-tpu": (space(run={"device": "tpu"}), ["run.device", "'tpu'", "cuda:N"]),
    "nan-check-negative": (space(run={"nan_check_every": -1}), ["run.nan_check_every", "-1"]),
    "checkpoint-every-zero": (space(run={"checkpoint_every": 0}),
                              ["run.checkpoint_every = 0", ">= 1"]),
    "seed-negative": (space(run={"seed": -3}), ["run.seed", "-3"]),
    "num-samples-huge": (space(search={"num_samples": 10 ** 9}),
                         ["search.num_samples", "1,000,000,000", "10,000"]),
    "nsga2-generations-huge": (space(search={"algorithm": "nsga2", "num_samples": None,
                                             "pop_size": 500, "generations": 500}),
                               ["search.pop_size", "250,000"]),
    "choice-101-options": (space(model={"d_model": {"choice": list(range(1, 102))}}),
                           ["model.d_model", "101 options"]),
    "grid-huge": (space(search={"algorithm": "grid", "num_samples": None},
                        model={"d_model": {"choice": list(range(4, 54))},
                               "buckets": {"choice": list(range(10, 60))}},
                        weighting={"weights": {"buy": 1, "click": 1, "long_view": 1}},
                        optim={"lr": {"choice": [0.001, 0.003, 0.01, 0.03, 0.1]}}),
                  ["search.algorithm = 'grid'", "12,500"]),
    "space-name-path": (space(name="../x"), ["name = '../x'"]),
    "space-name-too-long": (space(name="a" * 150), ["name = 'aaaa", "1 to 100"]),
    "top-level-list": ("- 1\n- 2\n", ["top level must be a mapping"]),
    "duplicate-key": ("name: a\nname: b\n", ["duplicate key 'name'"]),
    "bad-date-value": ("name: x\nmodel: {d_model: 2022-13-45}\n", ["not valid YAML"]),
    "int-5000-digits": ("name: x\nmodel: {d_model: " + "9" * 5000 + "}\n",
                        ["not valid YAML"]),
    "non-utf8": (b"name: x\ndata: {source: synthetic}\n# caf\xe9\n", ["not UTF-8", "byte 0xe9"]),
    "long-unknown-key-value": ("name: x\nfoo: '" + "y" * 100_000 + "'\n",
                               ["foo = 'yyy", "...", "unknown top-level key"]),
    "big-list-value": ("name: x\ndata: {source: synthetic}\nmodel: {d_model: ["
                       + ", ".join(["1"] * 90_000) + "]}\n", ["model.d_model = [1, 1"]),
    "recursive-alias": ("name: x\nmodel: &m {family: mlp, hidden: *m}\n",
                        ["recursive"]),
    "deep-nesting": ("name: x\nmodel: " + "[" * 150 + "]" * 150 + "\n", ["nested more than 100"]),
}


def write_space(folder: Path, content, name: str = "space.yaml") -> Path:
    """A space file from a dict (YAML), a str (text) or bytes (raw)."""
    path = folder / name
    if isinstance(content, dict):
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def alias_bomb(levels: int = 9, key: str = "model") -> str:
    """A 'billion laughs' document: 10^levels leaves through aliases, a few hundred bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "name: bomb\n" + f"{key}:\n" + "\n".join("  " + ln for ln in lines) + "\n"


# --------------------------------------------------------------------------- datasets
def make_dataset(folder: Path) -> Path:
    from trainables.data.synthetic import generate
    return generate(folder, rows=3000, objectives=OBJS, positive_rates={"buy": 0.1}, seed=0,
                    progress=False)


def copy_dataset(good: Path, folder: Path) -> Path:
    shutil.copytree(good, folder)
    return folder


def edit_split(folder: Path, split: str, edit) -> Path:
    file = folder / f"{split}.parquet"
    df = pq.read_table(file).to_pandas()
    df = edit(df)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), file)
    return folder


def edit_meta(folder: Path, edit) -> Path:
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    edit(meta)
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


def set_cell(col: str, row: int, value):
    def edit(df):
        df[col] = df[col].astype(object) if isinstance(value, str) else df[col]
        df.loc[row, col] = value
        return df
    return edit


def corrupt_pages(file: Path) -> None:
    """Scramble the data pages, keep the footer: the schema reads, the rows do not."""
    b = bytearray(file.read_bytes())
    for i in range(200, len(b) // 2):
        b[i] = (b[i] * 7 + 13) % 256
    file.write_bytes(bytes(b))


# --------------------------------------------------------------------------- KuaiRand logs
DAY0 = dt.date(2022, 4, 25)
KR_DAYS = ["--train-days", "2022-04-25:2022-04-26", "--score-days", "2022-04-27:2022-04-29"]


def write_kuairand(folder: Path, n: int = 300) -> Path:
    """A tiny valid raw KuaiRand folder (log, user and video features)."""
    from trainables import kuairand as kr
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    users = pd.DataFrame({c: rng.integers(0, 3, 20) for c in kr.USER_COLUMNS})
    users["user_id"] = np.arange(20)
    videos = pd.DataFrame({c: rng.integers(0, 3, 30) for c in kr.VIDEO_COLUMNS})
    videos["video_id"] = np.arange(30)
    videos["upload_dt"] = "2022-04-20"
    day = rng.integers(0, 5, n)
    log = pd.DataFrame({"user_id": rng.integers(0, 20, n), "video_id": rng.integers(0, 30, n),
                        "date": [int((DAY0 + dt.timedelta(int(d))).strftime("%Y%m%d"))
                                 for d in day],
                        "hourmin": rng.integers(0, 24, n) * 100,
                        "time_ms": 1650000000000 + day * 86_400_000, "tab": 1})
    for col in kr.OBJECTIVES.values():
        log[col] = (rng.random(n) < 0.3).astype(int)
    log["play_time_ms"] = 100
    log.to_csv(folder / "log_standard_test.csv", index=False)
    users.to_csv(folder / "user_features_test.csv", index=False)
    videos.to_csv(folder / "video_features_basic_test.csv", index=False)
    return folder


def edit_csv_line(file: Path, line: int, edit) -> None:
    """Replace the 1-based CSV line ``line`` (1 is the header) by ``edit(bytes)``."""
    lines = file.read_bytes().split(b"\n")
    lines[line - 1] = edit(lines[line - 1])
    file.write_bytes(b"\n".join(lines))


def set_csv_field(file: Path, line: int, column: str, value: bytes) -> None:
    """Set one field of a CSV line (1-based; 1 is the header)."""
    col = file.read_bytes().split(b"\n", 1)[0].split(b",").index(column.encode())

    def edit(ln: bytes) -> bytes:
        fields = ln.split(b",")
        fields[col] = value
        return b",".join(fields)
    edit_csv_line(file, line, edit)


# --------------------------------------------------------------------------- running CLIs
def cli_main(which: str):
    if which == "search":
        from search.__main__ import main
    elif which == "train":
        from trainables.train import main
    elif which == "analysis":
        from analysis.__main__ import main
    else:
        from trainables.mp.__main__ import main
    return main


def run_cli(which: str, argv: list[str]) -> tuple[int, str, float]:
    """A CLI's main(argv) in this process: (exit code, stderr, seconds)."""
    err = io.StringIO()
    t0 = time.time()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli_main(which)(argv)
        except SystemExit as e:           # argparse errors
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:             # noqa: BLE001 - a traceback is what we test for
            import traceback
            traceback.print_exc()
            rc = 1
    return rc, err.getvalue(), time.time() - t0


def ray_started() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


if __name__ == "__main__":     # run a list of cases in a fresh process (memory bombs)
    cases = json.loads(Path(sys.argv[1]).read_text())
    for case in cases:
        rc, err, secs = run_cli(case["cli"], case["argv"])
        print(json.dumps({"id": case["id"], "rc": rc, "stderr": err, "seconds": secs,
                          "ray": ray_started()}), flush=True)
