"""Training throughput and peak memory per worker: data in memory vs streamed from Parquet.

    python -m benchmarks.data                                  # 10^7 and 3x10^7 rows
    python -m benchmarks.data --rows 1000000 --workers 1,2     # a quicker run
    python -m benchmarks.data --smoke-test                     # seconds

For each dataset size (the seeded synthetic generator's, written once under
``--data-dir``; the valid and test splits ``--eval-rows`` rows at every size, so that
sizes differ in training rows: exact evaluation holds every eval row's score, label and
ids, about 150 bytes a row at its peak, in either way), each way to read it (``data.stream: false`` and ``true``) and each worker
count, the training loop (``trainables.loop.train_loop_per_worker``) runs ``--epochs``
epochs as ``--workers`` processes: one process, or a gloo process group (what a Ray Train
worker group runs, without Ray's own processes). Every worker is its own child process
and its peak resident memory is read from outside, the ``ru_maxrss`` that ``wait4``
returns for it (the most any worker of the run reached is reported). samples/s is the
loop's own ``samples_per_s`` of the last epoch: training rows of all workers per second
of training time, Parquet reading and shuffling included for the streaming rows, the
best epoch after the first (the first also checks every streamed value; a shared machine's
load varies).

The table gives, for every streaming row, its throughput and peak memory as ratios of the
in-memory row of the same size and workers measured in this run; the last lines check
the goals (streaming peak per worker under 1.5 GB and flat in the rows; streaming at
least 60% of in-memory throughput with one worker). Timings depend on what else the
machine runs; they are printed, never asserted in tests.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import _args

GOAL_RSS_GB = 1.5
GOAL_RATIO = 0.6
MEMORY_BYTES_PER_ROW = 300     # an in-memory worker's peak per dataset row (measured: 2.6 GiB
                               # at 10^7 rows of 3 objectives); runs that would not fit skip


def _parser():
    ap = _args.parser("python -m benchmarks.data", __doc__)
    ap.add_argument("--rows", default="10000000,30000000",
                    help="dataset sizes, comma-separated (default 10000000,30000000)")
    ap.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    ap.add_argument("--modes", default="memory,stream",
                    help="memory and/or stream (default both; memory is the reference)")
    ap.add_argument("--model", default="mlp", help="model family (default mlp)")
    ap.add_argument("--loss", default="bce", help="loss (default bce)")
    ap.add_argument("--buffer", default="1000000",
                    help="data.shuffle_buffer of the streaming rows (default 1000000)")
    ap.add_argument("--eval-rows", default="1000000",
                    help="rows of the valid (and test) split at every size, so that sizes "
                         "differ in training rows only (default 1000000; 0: the generator's "
                         "10%%)")
    ap.add_argument("--data-dir", default=None,
                    help="where the datasets are written once (default $PARETUNE_CACHE/"
                         "bench-data, else ~/.cache/paretune/bench-data)")
    ap.add_argument("--smoke-test", action="store_true",
                    help="200,000 rows, 1 epoch, both modes, 1 worker: seconds")
    _args.add_common(ap, batch_size=10240, epochs=3, threads=1, seed=0)
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return ap


def parse_args(argv=None):
    """Parse and check the options; BenchError naming the option on a bad value."""
    a = _parser().parse_args(argv)
    if a._worker:
        return a
    _args.check_ints(a)
    if a.smoke_test:
        a.rows, a.workers, a.epochs, a.eval_rows = "200000", "1", 1, "20000"
    a.rows = [_args.integer("--rows", r, 1000) for r in str(a.rows).split(",")]
    a.workers = [_args.integer("--workers", w, 1, 64) for w in str(a.workers).split(",")]
    a.modes = [m.strip() for m in a.modes.split(",")]
    bad = [m for m in a.modes if m not in ("memory", "stream")]
    if bad or not a.modes:
        raise _args.BenchError(f"--modes {','.join(bad) or a.modes!r}: allowed: memory, stream")
    a.buffer = _args.integer("--buffer", a.buffer, 1)
    a.eval_rows = _args.integer("--eval-rows", a.eval_rows, 0)
    bad = [r for r in a.rows if a.eval_rows and r < 4 * a.eval_rows]
    if bad:
        raise _args.BenchError(f"--rows {bad[0]}: at least 4 x --eval-rows ({a.eval_rows}) "
                               f"so that the train split is the larger part; lower --eval-rows")
    return a


def _dataset(rows: int, eval_rows: int, seed: int, data_dir: Path) -> Path:
    """The synthetic dataset of ``rows`` rows (valid and test ``eval_rows`` each, or the
    generator's 10%), generated once (flat memory, chunked)."""
    from trainables.data.synthetic import generate
    extra = {"split_fractions": [rows - 2 * eval_rows, eval_rows, eval_rows]} if eval_rows \
        else {}
    folder = data_dir / f"synthetic-{rows}-eval{eval_rows or 'default'}-seed{seed}"
    if not (folder / "meta.yaml").is_file():
        print(f"# writing {rows:,} rows to {folder} ...", flush=True)
        t0 = time.perf_counter()
        generate(folder, rows=rows, seed=seed, progress=False, **extra)
        print(f"# written in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def _config(a, folder: Path, stream: bool) -> dict:
    return {"data": {"path": str(folder), "stream": stream, "shuffle_buffer": a.buffer},
            "model": {"family": a.model}, "loss": {"kind": a.loss},
            "optim": {"epochs": a.epochs, "batch_size": a.batch_size},
            "run": {"verbose": False, "device": "cpu", "seed": a.seed, "threads": a.threads}}


def _worker(spec_file: str) -> int:
    """One worker: join the process group (several workers), train, write the history."""
    spec = json.loads(Path(spec_file).read_text())
    world = spec["world"]
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{spec['port']}",
                                rank=spec["rank"], world_size=world)
    from trainables.loop import train_loop_per_worker
    history = train_loop_per_worker(spec["config"])
    Path(spec["out"]).write_text(json.dumps(history))
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(cfg: dict, world: int, tmp: Path) -> tuple[list[dict], list[int], float]:
    """(rank 0's history, each worker's peak RSS in bytes, wall seconds)."""
    port = _free_port()
    procs = []
    t0 = time.perf_counter()
    for rank in range(world):
        spec = tmp / f"spec{rank}.json"
        spec.write_text(json.dumps({"config": cfg, "rank": rank, "world": world, "port": port,
                                    "out": str(tmp / f"history{rank}.json")}))
        procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks.data", "--_worker",
                                       str(spec)], cwd=Path(__file__).resolve().parent.parent))
    peaks, codes = [], []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        peaks.append(usage.ru_maxrss * 1024)          # Linux: kilobytes
        codes.append(p.returncode)
    wall = time.perf_counter() - t0
    if any(codes):
        raise RuntimeError(f"a worker failed (exit codes {codes})")
    return json.loads((tmp / "history0.json").read_text()), peaks, wall


def main(argv=None) -> int:
    try:
        a = parse_args(argv)
    except _args.BenchError as e:
        _parser().error(str(e))
    if a._worker:
        return _worker(a._worker)
    import torch
    data_dir = Path(a.data_dir or Path(os.environ.get("PARETUNE_CACHE", "~/.cache/paretune"))
                    .expanduser() / "bench-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}; {a.model} + {a.loss}; batch "
          f"{a.batch_size}; {a.epochs} epoch(s); {a.threads} thread(s) per worker; shuffle "
          f"buffer {a.buffer:,} rows", flush=True)
    results = {}
    for rows in a.rows:
        folder = _dataset(rows, a.eval_rows, a.seed, data_dir)
        for world in a.workers:
            for mode in a.modes:
                if mode == "memory" and not _fits(rows, world):
                    print(f"# {rows:,} rows, {world} worker(s), memory: skipped, about "
                          f"{world * rows * MEMORY_BYTES_PER_ROW / 2 ** 30:.0f} GiB would not "
                          f"fit in this machine's available memory", flush=True)
                    continue
                with tempfile.TemporaryDirectory(prefix="paretune-bench-") as d:
                    hist, peaks, wall = run_workers(_config(a, folder, mode == "stream"),
                                                    world, Path(d))
                last = hist[-1]
                sps = max(h["samples_per_s"] for h in hist[1:] or hist)
                results[rows, world, mode] = (sps, max(peaks), wall, last["train_rows"],
                                              last["auc_sum"])
                epochs = ", ".join(f"{h['samples_per_s']:,.0f}" for h in hist)
                print(f"# {rows:,} rows, {world} worker(s), {mode}: {sps:,.0f} samples/s "
                      f"(epochs {epochs}), peak RSS {max(peaks) / 2 ** 30:.2f} GiB, "
                      f"{wall:.0f} s", flush=True)
    _table(results)
    return 0


def _fits(rows: int, world: int) -> bool:
    """Whether ``world`` in-memory workers of ``rows`` rows fit in 80% of MemAvailable."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return True
    return world * rows * MEMORY_BYTES_PER_ROW < 0.8 * avail


def _table(results: dict) -> None:
    head = (f"{'rows':>12} {'workers':>7} {'data':>7} {'samples/s':>11} {'vs memory':>9} "
            f"{'peak RSS/worker':>15} {'vs memory':>9} {'train rows':>11} {'auc_sum':>8} "
            f"{'wall s':>7}")
    print(head)
    print("-" * len(head))
    for (rows, world, mode), (sps, rss, wall, trained, auc) in results.items():
        ref = results.get((rows, world, "memory"))
        ratio = f"{sps / ref[0]:.2f}" if ref and mode == "stream" else "-"
        rss_ratio = f"{rss / ref[1]:.2f}" if ref and mode == "stream" else "-"
        print(f"{rows:>12,} {world:>7} {mode:>7} {sps:>11,.0f} {ratio:>9} "
              f"{rss / 2 ** 30:>11.2f} GiB {rss_ratio:>9} {trained:>11,} {auc:>8.4f} "
              f"{wall:>7.0f}")
    stream = {k: v for k, v in results.items() if k[2] == "stream"}
    if stream:
        worst = max(v[1] for v in stream.values()) / 1e9
        print(f"goal: streaming peak RSS per worker < {GOAL_RSS_GB} GB: largest "
              f"{worst:.2f} GB -> {'met' if worst < GOAL_RSS_GB else 'NOT met'}")
        sizes = sorted({k[0] for k in stream})
        for world in sorted({k[1] for k in stream}):
            peaks = [stream[r, world, 'stream'][1] / 1e9 for r in sizes
                     if (r, world, 'stream') in stream]
            if len(peaks) > 1:
                print(f"streaming peak RSS, {world} worker(s), {sizes[0]:,} -> {sizes[-1]:,} "
                      f"rows: {' -> '.join(f'{p:.2f}' for p in peaks)} GB")
        for rows in sizes:
            ref, got = results.get((rows, 1, "memory")), stream.get((rows, 1, "stream"))
            if ref and got:
                r = got[0] / ref[0]
                print(f"goal: streaming >= {GOAL_RATIO:.0%} of in-memory throughput, 1 "
                      f"worker, {rows:,} rows: {r:.0%} -> {'met' if r >= GOAL_RATIO else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
