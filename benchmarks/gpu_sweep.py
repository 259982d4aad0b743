"""One sweep of fixed configs on one GPU: population trials vs one-model trials packed
with fractional GPUs, both through `search run`.

    python -m benchmarks.gpu_sweep                      # 256 configs, 10^6 rows, 20 epochs
    python -m benchmarks.gpu_sweep --smoke-test         # = --rows 20000 --epochs 1
        --configs 8 --members-per-trial 4 --device cpu: a minute or two on CPU

The configs: HarmonRank (d_model 8) + rank_auc on ``--objectives`` synthetic objectives,
static loss weights drawn seeded from Dirichlet(1) (uniform on the simplex) crossed with
``--lrs`` learning rates drawn seeded log-uniformly in [3e-3, 3e-2]: ``--configs`` =
weight vectors x lrs. Both modes train exactly these configs (checked from the results):

- **population**: ``search.algorithm: grid`` with ``search.population: true`` and
  ``members_per_trial``: ceil(configs / members) population trials
  (trainables/population.py), each holding 1/trials of the GPU so they run together;
- **packed**: the same grid as one-model trials, each holding ``--gpu-fraction`` of the
  GPU (``resources.gpus_per_worker``), so Ray runs 1/fraction of them at once (or as
  many as the CPUs allow, ``--cpus-per-trial`` each).

The population trials share the machine's CPUs (``--num-cpus``, default all) among
themselves, at least ``--cpus-per-trial`` each: on CUDA, rank_auc's soft rank runs on the
CPU by default (``--soft-rank-impl parallel`` keeps it on the GPU).

Each mode writes its space file into ``--out`` and runs ``python -m search run`` on it (a
fresh local Ray each; W&B off), exactly what a user runs. Reported per mode: wall seconds
of the whole command (Ray start included), the trials' own span (first start to last
finish), models per minute, and the hypervolume of the final AUCs
(``analysis.frontier.hypervolume``, reference AUC 0.5 per objective); then the speed
ratio (packed wall / population wall) and the HV ratio (population / packed). The table
is printed and ``<out>/gpu_sweep.json`` holds the settings, the configs and every
model's AUCs. Goal on one H100/H200: the 256-config sweep in under 10 minutes.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from . import _args
from ._args import BenchError

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ["click", "long_view", "like", "follow", "buy"]
MODES = ("population", "packed")
LR_RANGE = (3e-3, 3e-2)
REF_AUC = 0.5
GOAL_S = 600.0                       # the 256-config sweep on one H100/H200
JSON_NAME = "gpu_sweep.json"


# --- the configs -------------------------------------------------------------------------

def _sig(x: float) -> float:
    return float(f"{x:.6g}")          # what a config key keeps (search.space_tree)


def draw_configs(configs: int, lrs: int, objectives: list[str], seed: int):
    """(weight vectors, lrs): configs / lrs Dirichlet(1) weight vectors and ``lrs``
    log-uniform learning rates, seeded; their cross product is the sweep."""
    import numpy as np
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(len(objectives)), size=configs // lrs)
    weights = [{o: _sig(v) for o, v in zip(objectives, row)} for row in w]
    lo, hi = math.log(LR_RANGE[0]), math.log(LR_RANGE[1])
    rates = sorted(_sig(math.exp(v)) for v in rng.uniform(lo, hi, size=lrs))
    if len({json.dumps(x, sort_keys=True) for x in weights}) < len(weights) or \
            len(set(rates)) < lrs:
        raise BenchError(f"--seed {seed}: two drawn configs coincide to 6 digits; "
                         f"use another seed")
    return weights, rates


def config_keys(weights, rates) -> list[tuple]:
    """The sweep's configs as sortable keys: (weights by objective..., lr)."""
    return sorted(tuple(w[o] for o in sorted(w)) + (lr,) for w in weights for lr in rates)


# --- the spaces ---------------------------------------------------------------------------

def gpu_share(n: int) -> float:
    """1/n of a GPU, rounded down to Ray's 1e-4 resource precision."""
    return max(1e-4, math.floor(1e4 / n) / 1e4)


def space(a, mode: str, weights, rates) -> dict:
    """The space file of one mode: the same grid, as population trials or packed trials."""
    members = min(a.members_per_trial, a.configs)
    trials = math.ceil(a.configs / members) if mode == "population" else a.configs
    gpus, cpus = 0.0, a.cpus_per_trial
    if a.dev.type == "cuda":
        gpus = gpu_share(trials) if mode == "population" else a.gpu_fraction
    if mode == "population":    # the machine's CPUs shared by the few trials, as packed
        cpus = max(cpus, float((a.num_cpus or len(os.sched_getaffinity(0))) // trials))
    loss = {"kind": "rank_auc"}
    if a.soft_rank_impl:
        loss["soft_rank_impl"] = a.soft_rank_impl
    search = {"algorithm": "grid", "seed": a.seed}
    if mode == "population":
        search.update(population=True, members_per_trial=members)
    return {
        "name": f"gpu_sweep_{mode}",
        "data": {"source": "synthetic", "rows": a.rows, "objectives": a.objectives,
                 "seed": a.seed},
        "model": {"family": "harmonrank", "d_model": 8},
        "loss": loss,
        "weighting": {"kind": "static", "weights": {"choice": weights}},
        "optim": {"lr": {"choice": rates}, "batch_size": a.batch_size, "epochs": a.epochs},
        "run": {"seed": a.seed},
        "search": search,
        "resources": {"workers_per_trial": 1, "cpus_per_worker": cpus,
                      "gpus_per_worker": gpus},
        "tracking": {"wandb": {"mode": "disabled"}},
    }


# --- one mode -----------------------------------------------------------------------------

def run_mode(a, mode: str, weights, rates, stamp: str) -> dict:
    """Write the mode's space, run `python -m search run` on it, read its results."""
    import yaml
    from analysis.frontier import hypervolume
    from analysis.results import auc_matrix, load_results
    sp = space(a, mode, weights, rates)
    path = a.out / "spaces" / f"{mode}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sp, sort_keys=False))
    name = f"gpu_sweep_{mode}-{stamp}"
    storage = a.out / "experiments"
    cmd = [sys.executable, "-m", "search", "run", str(path), "--storage", str(storage),
           "--name", name] + (["--num-cpus", str(a.num_cpus)] if a.num_cpus else [])
    log = a.out / f"{mode}.log"
    print(f"[gpu_sweep] {mode}: {' '.join(cmd[1:])}  (log {log})", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                            env=env).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        raise RuntimeError(f"{mode}: `search run` exited {rc}; the end of {log}:\n{tail}")
    df = load_results(storage / name)
    F = auc_matrix(df, a.objectives)
    rows = [{"trial": str(r["trial_id"]), "status": str(r["status"]),
             "weights": {o: _sig(float(r[f"config/weighting.weights.{o}"]))
                         for o in a.objectives},
             "lr": _sig(float(r["config/optim.lr"])),
             "auc": [None if not math.isfinite(v) else float(v) for v in F[i]]}
            for i, (_, r) in enumerate(df.iterrows())]
    trained = sorted(tuple(x["weights"][o] for o in sorted(x["weights"])) + (x["lr"],)
                     for x in rows)
    start = (df["finished_at"] - df["time_s"]).min()
    finished = int((df["status"] == "TERMINATED").sum())
    return {"space": str(path), "experiment": str(storage / name), "log": str(log),
            "trials": int(df["trial_id"].astype(str).str.rsplit(".m", n=1).str[0]
                          .nunique()),
            "members_per_trial": sp["search"].get("members_per_trial", 1),
            "gpus_per_trial": sp["resources"]["gpus_per_worker"],
            "cpus_per_trial": sp["resources"]["cpus_per_worker"],
            "models": len(rows), "finished": finished,
            "wall_s": wall, "trials_span_s": float(df["finished_at"].max() - start),
            "models_per_min": finished / wall * 60.0,
            "hv": hypervolume(F, [REF_AUC] * len(a.objectives)),
            "configs_match": trained == config_keys(weights, rates),
            "rows": rows}


# --- the command line ----------------------------------------------------------------------

def _parser():
    ap = _args.parser("python -m benchmarks.gpu_sweep", __doc__)
    _args.add_common(ap, rows=1_000_000, epochs=20, objectives=3, batch_size=10240, seed=0,
                     device="auto", out="experiments/gpu_sweep-<time>",
                     help_device="auto, cpu, cuda or cuda:N (default {default}: cuda when a "
                                 "GPU is present)")
    ap.add_argument("--configs", default="256", help="configs in the sweep (default 256)")
    ap.add_argument("--lrs", default="4", help="learning rates; --configs / --lrs weight "
                    "vectors (default 4)")
    ap.add_argument("--members-per-trial", default="64",
                    help="population members per trial (default 64: 256 configs = 4 trials)")
    ap.add_argument("--gpu-fraction", default="1/16",
                    help="packed mode: the GPU share of each trial, in (0, 1], as 0.0625 or "
                         "1/16 (default 1/16: 16 trials share the GPU); cuda only")
    ap.add_argument("--cpus-per-trial", default="1", help="CPUs each trial holds (default 1)")
    ap.add_argument("--num-cpus", default=None, help="CPUs of the local Ray (default: all)")
    ap.add_argument("--soft-rank-impl", choices=["torchsort", "parallel"], default=None,
                    help="rank_auc's soft rank (default: the loss's own, torchsort)")
    ap.add_argument("--modes", default="population,packed",
                    help="which sweeps, comma-separated (default population,packed)")
    ap.add_argument("--smoke-test", action="store_true",
                    help="the tiny size: " + " ".join(SMOKE) + " (cpu unless --device)")
    return ap


SMOKE = ("--rows", "20000", "--epochs", "1", "--configs", "8", "--members-per-trial", "4")


def _fraction(option: str, value: str) -> float:
    try:
        num, _, den = str(value).partition("/")
        v = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        v = math.nan
    if not (0 < v <= 1):
        raise BenchError(f"{option} {value!r}: must be a GPU share in (0, 1], e.g. 0.125 or "
                         f"1/8 (1/N: N trials share one GPU)")
    return v


def parse_args(argv=None):
    """Parse and check the options; BenchError naming the option on a bad value."""
    a = _parser().parse_args(argv)
    if a.smoke_test:
        for flag, value in zip(SMOKE[::2], SMOKE[1::2]):
            setattr(a, flag[2:].replace("-", "_"), value)
        a.device = "cpu" if a.device == "auto" else a.device
    _args.check_ints(a, objectives=2)
    if a.objectives > len(OBJECTIVES):
        raise BenchError(f"--objectives {a.objectives}: at most {len(OBJECTIVES)} "
                         f"({', '.join(OBJECTIVES)})")
    a.objectives = OBJECTIVES[:a.objectives]
    a.configs = _args.integer("--configs", a.configs, 1, 1000)
    a.lrs = _args.integer("--lrs", a.lrs, 1, a.configs)
    if a.configs % a.lrs:
        raise BenchError(f"--configs {a.configs}: must be a multiple of --lrs {a.lrs} (the "
                         f"sweep is weight vectors x learning rates)")
    a.members_per_trial = _args.integer("--members-per-trial", a.members_per_trial, 1, 1000)
    a.gpu_fraction = _fraction("--gpu-fraction", a.gpu_fraction)
    try:
        cpus = float(a.cpus_per_trial)
    except ValueError:
        cpus = math.nan
    if not (cpus > 0 and math.isfinite(cpus)):
        raise BenchError(f"--cpus-per-trial {a.cpus_per_trial!r}: must be a number > 0")
    a.cpus_per_trial = cpus
    a.num_cpus = None if a.num_cpus is None else _args.integer("--num-cpus", a.num_cpus, 1)
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in a.modes if m not in MODES]
    if bad or not a.modes or len(set(a.modes)) != len(a.modes):
        raise BenchError(f"--modes {','.join(a.modes)!r}: a comma-separated list of distinct "
                         f"modes from {', '.join(MODES)}")
    if a.device == "auto":
        a.device = None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    a.out = Path(a.out if a.out and "<time>" not in a.out else
                 f"experiments/gpu_sweep-{stamp}").resolve()
    if (a.out / JSON_NAME).exists():
        raise BenchError(f"--out {str(a.out)!r}: already holds a {JSON_NAME}; give a new "
                         f"folder")
    return a


def table(result: dict) -> list[str]:
    """The printed table: one line per mode, then the ratios."""
    lines = [f"{'mode':<11}{'trials':>7}{'models':>8}{'GPU/trial':>10}{'wall s':>9}"
             f"{'span s':>9}{'models/min':>12}{'HV':>10}  same configs"]
    for mode, r in result["modes"].items():
        lines.append(f"{mode:<11}{r['trials']:>7}{r['finished']:>8}{r['gpus_per_trial']:>10.4g}"
                     f"{r['wall_s']:>9.1f}{r['trials_span_s']:>9.1f}"
                     f"{r['models_per_min']:>12.1f}{r['hv']:>10.5f}  {r['configs_match']}")
    if result.get("speed_ratio") is not None:
        lines.append(f"population/packed {result['settings']['configs']} configs: speed "
                     f"{result['speed_ratio']:.2f}x (packed wall / population wall), HV "
                     f"{result['hv_ratio']:.4f} (population / packed)")
    return lines


def main(argv=None) -> int:
    a, dev, name = _args.parse_with_device(parse_args, _parser, argv)
    a.dev = dev
    from trainables.data import resolve_data
    weights, rates = draw_configs(a.configs, a.lrs, a.objectives, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"# device: {name}; {a.configs} configs ({len(weights)} weight vectors x "
          f"{len(rates)} lrs); harmonrank d_model 8 + rank_auc; {len(a.objectives)} "
          f"objectives; {a.rows:,} rows; {a.epochs} epochs; batch {a.batch_size}; "
          f"out {a.out}", flush=True)
    resolve_data({"source": "synthetic", "rows": a.rows, "objectives": a.objectives,
                  "seed": a.seed})                  # generated once, outside the timings
    stamp = time.strftime("%Y%m%d-%H%M%S")
    modes = {m: run_mode(a, m, weights, rates, stamp) for m in a.modes}
    both = all(m in modes for m in MODES)
    result = {
        "settings": {"configs": a.configs, "weight_vectors": len(weights), "lrs": len(rates),
                     "rows": a.rows, "epochs": a.epochs, "batch_size": a.batch_size,
                     "objectives": a.objectives, "model": "harmonrank", "d_model": 8,
                     "loss": "rank_auc", "soft_rank_impl": a.soft_rank_impl,
                     "members_per_trial": a.members_per_trial, "gpu_fraction": a.gpu_fraction,
                     "cpus_per_trial": a.cpus_per_trial, "seed": a.seed,
                     "device": str(dev), "device_name": name},
        "reference": [REF_AUC] * len(a.objectives),
        "configs": [{"weights": w, "lr": lr} for w in weights for lr in rates],
        "modes": modes,
        "speed_ratio": modes["packed"]["wall_s"] / modes["population"]["wall_s"]
        if both else None,
        "hv_ratio": modes["population"]["hv"] / modes["packed"]["hv"]
        if both and modes["packed"]["hv"] > 0 else None,
        "goal_s": GOAL_S,
    }
    lines = table(result)
    if dev.type == "cuda":
        best = min(r["wall_s"] for r in modes.values())
        lines.append(f"goal: {a.configs} configs under {GOAL_S / 60:.0f} min on one GPU: "
                     f"{'met' if best < GOAL_S else 'not met'} (fastest {best:.0f} s)")
    (a.out / JSON_NAME).write_text(json.dumps(result, indent=1))
    print("\n".join(lines), flush=True)
    print(f"[gpu_sweep] {a.out / JSON_NAME}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
