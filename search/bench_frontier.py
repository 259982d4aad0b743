"""Budget comparison benchmark: five ways of finding a frontier, same data, same budget.

    python -m search.bench_frontier [--budget 28] [--epochs 2] [--rows 100000]
        [--objectives 3 | --objectives click,long_view,buy] [--methods random,nsga2,...]
        [--out experiments/bench_frontier-<time>] [--seed 0] [--ref 0.5]

Methods (each its own space file, written into ``--out``, and its own experiment folder
``<out>/<method>``, so ``python -m analysis frontier <out>/<method>`` works):

- ``random``: ``num_samples = budget`` trials, static weights uniform on the simplex and
  ``optim.lr`` log-uniform;
- ``optuna_nsga2``: the same space, Optuna's NSGA-II sampler, ``num_samples = budget``;
- ``nsga2``: the same space, the pymoo NSGA-II searcher (``search/nsga2.py``),
  ``pop_size = p`` and ``generations = budget // p``;
- ``population_nsga2``: the same as ``nsga2`` with ``search.population: true`` (each
  generation is one trial of ``p`` members trained together, on 2 CPUs);
- ``pe_ltr_grid``: one PE-LTR trial per lower-bound vector (bounds summing to
  ``BOUNDS_TOTAL`` = 0.95), the largest ``partitions``
  whose vector count C(partitions + K - 1, K - 1) is at most the budget (fewer models
  than the budget is a handicap for PE-LTR, and the output says so); fixed ``optim.lr``.

Equal budget = the same number of trained models x epochs: every model (trial or
population member) trains the same HarmonRank (small ``d_model``) with the same rank_auc
loss, batch size and epochs on the same synthetic data. One-model-per-trial methods run 2
trials at a time on 1 CPU each; the population trial gets 2 CPUs; Ray gets ``--cpus`` (2).

Hypervolume is computed against one fixed reference point for all methods (``--ref``,
default AUC 0.5 for every objective: a random ranking), after each finished trial (the
members of a population trial finish together), versus models trained and versus wall
seconds since the method's experiment started. Printed: one line per method start/end,
the table (models, epochs, wall s, final HV, HV at 25/50/75/100% of the budget, final HV
with the worst point over all methods as reference) and HV(method) / HV(random) at equal
budget. Saved: ``<out>/bench_frontier.png`` (two panels) and ``<out>/bench_frontier.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml

METHODS = ("random", "optuna_nsga2", "nsga2", "pe_ltr_grid", "population_nsga2")
# --objectives N takes the first N of these (click and long_view conflict with buy through
# the generator's "clickbait" factor, so the frontier is a real trade-off).
OBJECTIVE_ORDER = ("click", "long_view", "buy", "like", "follow", "comment", "forward",
                   "profile_enter")
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
LR_RANGE = (3.0e-3, 3.0e-2)          # --lr search: lr range of random, optuna, nsga2, population
PE_LTR_LR = 1.0e-2                   # PE-LTR's lr with --lr search (it has no lr axis)
PE_LTR_WEIGHTING = {"kind": "pe_ltr", "every": 4, "gradients": "scores", "mode": "two_step"}
# The lower bounds' sum. PE-LTR's min-norm weights give a conflicting objective (buy) no more
# than its bound, so with 0.8 the grid's points bunch on the click/long_view side; with 0.95
# each bound vector pins its weights close to itself and the grid spreads over the whole
# frontier (3 seeds, 55 vectors: HV / random's at 55 models 0.990 with 0.8, 1.017 with 0.95).
BOUNDS_TOTAL = 0.95
# 28 = C(6 + 2, 2): the 3-objective PE-LTR grid with 6 partitions is exactly the budget.
DEFAULT_BUDGET = 28


class BenchError(ValueError):
    """A bad command-line value: names the option, the value and what is allowed."""


# --- arguments ---------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m search.bench_frontier",
        description="Random search, Optuna NSGA-II, pymoo NSGA-II, the PE-LTR grid and "
                    "population NSGA-II on the same data and budget: hypervolume vs models "
                    "trained and vs wall time.")
    p.add_argument("--budget", default=str(DEFAULT_BUDGET),
                   help="models trained per method (trials, or population members); >= 2 "
                        f"(default {DEFAULT_BUDGET}: for 3 objectives the PE-LTR grid of 6 "
                        f"partitions has exactly that many bound vectors)")
    p.add_argument("--epochs", default="2", help="epochs per model (default 2)")
    p.add_argument("--rows", default="100000",
                   help="rows of synthetic data (80/10/10 train/valid/test; default 100000)")
    p.add_argument("--objectives", default="3",
                   help=f"a count N (the first N of {','.join(OBJECTIVE_ORDER)}) or a comma "
                        f"list of objective names (default 3: click,long_view,buy)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma list, a subset of {','.join(METHODS)} (default all)")
    p.add_argument("--out", default=None,
                   help="output folder (default experiments/bench_frontier-<time>)")
    p.add_argument("--seed", default="0", help="searchers' and model init seed (default 0)")
    p.add_argument("--data-seed", default="0", help="synthetic data seed (default 0)")
    p.add_argument("--pop-size", default=None,
                   help="NSGA-II generation size p (default max(2, budget // 3): 3 "
                        "generations); generations = budget // p")
    p.add_argument("--ref", default="0.5",
                   help="hypervolume reference AUC: one value for every objective or one per "
                        "objective, comma separated (default 0.5: a random ranking)")
    p.add_argument("--lr", default="0.01",
                   help="a learning rate every method uses (default 0.01: the methods compete "
                        "on the loss-weight trade-off alone), or 'search': the weight "
                        "searchers also sample lr log-uniform in [3e-3, 3e-2] while PE-LTR, "
                        "which has no lr axis, stays at 0.01")
    p.add_argument("--seeds", default="1",
                   help="repeat the whole comparison for seeds --seed .. --seed + N - 1 and "
                        "print mean and std of the final HV per method (default 1)")
    p.add_argument("--batch-size", default="2048", help="batch size (default 2048)")
    p.add_argument("--d-model", default="8", help="HarmonRank d_model (default 8)")
    p.add_argument("--cpus", default="2",
                   help="CPUs given to a local Ray (default 2; every method uses 2 at a time)")
    return p


def _int(option: str, value, lo: int, hi: int | None = None) -> int:
    try:
        v = int(str(value))
    except ValueError:
        v = None
    if v is None or v < lo or (hi is not None and v > hi):
        allowed = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise BenchError(f"{option} {value!r}: must be {allowed}")
    return v


def _objectives(value: str) -> list[str]:
    from trainables.data.synthetic import KNOWN
    value = str(value).strip()
    if value.isdigit():
        n = _int("--objectives", value, 2, len(OBJECTIVE_ORDER))
        return list(OBJECTIVE_ORDER[:n])
    names = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in names if x not in KNOWN]
    if bad:
        raise BenchError(f"--objectives {value!r}: unknown objective(s) {', '.join(bad)}; "
                         f"allowed: a count 2..{len(OBJECTIVE_ORDER)} or names from "
                         f"{', '.join(KNOWN)}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise BenchError(f"--objectives {value!r}: needs at least 2 distinct objectives")
    return names


def _methods(value: str) -> list[str]:
    names = [x.strip() for x in str(value).split(",") if x.strip()]
    bad = [x for x in names if x not in METHODS]
    if bad:
        raise BenchError(f"--methods {value!r}: unknown method(s) {', '.join(bad)}; "
                         f"allowed: {', '.join(METHODS)}")
    if not names or len(set(names)) != len(names):
        raise BenchError(f"--methods {value!r}: give one or more distinct methods from "
                         f"{', '.join(METHODS)}")
    return [m for m in METHODS if m in names]        # always the same order


def _ref(value: str, k: int) -> list[float]:
    try:
        vals = [float(x) for x in str(value).split(",")]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals = vals * k
    if len(vals) != k or not all(math.isfinite(v) and 0.0 <= v < 1.0 for v in vals):
        raise BenchError(f"--ref {value!r}: one AUC in [0, 1) for every objective, or {k} "
                         f"comma-separated ones (one per objective)")
    return vals


def pe_ltr_partitions(budget: int, k: int) -> tuple[int, int]:
    """The largest Das-Dennis ``partitions`` whose vector count C(p + k - 1, k - 1) is at
    most ``budget``, and that count; (0, 0) when even one partition (k vectors) is too many."""
    p = 0
    while math.comb(p + 1 + k - 1, k - 1) <= budget:
        p += 1
    return p, (math.comb(p + k - 1, k - 1) if p else 0)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check every option; BenchError (naming the option) on a bad value.
    Touches no file and starts nothing."""
    a = _parser().parse_args(argv)
    a.budget = _int("--budget", a.budget, 2)
    a.epochs = _int("--epochs", a.epochs, 1)
    a.rows = _int("--rows", a.rows, 2000)
    a.seed = _int("--seed", a.seed, 0)
    a.seeds = _int("--seeds", a.seeds, 1)
    if a.lr != "search":
        try:
            a.lr = float(a.lr)
        except ValueError:
            a.lr = -1.0
        if not (math.isfinite(a.lr) and 0 < a.lr < 10):
            raise BenchError(f"--lr {a.lr!r}: must be a number in (0, 10) or 'search'")
    a.data_seed = _int("--data-seed", a.data_seed, 0)
    a.batch_size = _int("--batch-size", a.batch_size, 1)
    a.d_model = _int("--d-model", a.d_model, 1)
    a.cpus = _int("--cpus", a.cpus, 2)
    a.objectives = _objectives(a.objectives)
    a.methods = _methods(a.methods)
    a.ref = _ref(a.ref, len(a.objectives))
    a.pop_size = max(2, a.budget // 3) if a.pop_size is None else \
        _int("--pop-size", a.pop_size, 2, a.budget)
    k = len(a.objectives)
    if "pe_ltr_grid" in a.methods and pe_ltr_partitions(a.budget, k)[0] == 0:
        raise BenchError(f"--budget {a.budget}: pe_ltr_grid needs at least one bound vector "
                         f"per objective ({k}); give --budget >= {k} or leave pe_ltr_grid out "
                         f"of --methods")
    a.out = Path(a.out) if a.out else \
        Path("experiments") / f"bench_frontier-{time.strftime('%Y%m%d-%H%M%S')}"
    taken = [m for m in a.methods if (a.out / m / "paretune.json").exists()]
    if taken:
        raise BenchError(f"--out {str(a.out)!r}: already holds experiment(s) "
                         f"{', '.join(taken)}; give a new folder")
    return a


# --- the spaces --------------------------------------------------------------------------

def _base_space(a, name: str) -> dict:
    objs = list(a.objectives)
    return {
        "name": name,
        "data": {"source": "synthetic", "rows": a.rows, "objectives": objs,
                 "seed": a.data_seed},
        "model": {"family": "harmonrank", "d_model": a.d_model},
        "loss": {"kind": "rank_auc"},
        "weighting": {"kind": "static", "weights": {"simplex": objs}},
        "optim": {"lr": {"loguniform": list(LR_RANGE)} if a.lr == "search" else a.lr,
                  "batch_size": a.batch_size,
                  "epochs": a.epochs},
        "run": {"seed": a.seed},
        "search": {},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0},
        "tracking": {"wandb": {"project": "paretune", "mode": "disabled"}},
    }


def plan(a) -> dict:
    """method -> {"space": the space file's content, "models": models it will train,
    "note": how its budget was set}."""
    out = {}
    p = a.pop_size
    g = a.budget // p
    for m in a.methods:
        s = _base_space(a, m)
        if m in ("random", "optuna_nsga2"):
            s["search"] = {"algorithm": "random", "num_samples": a.budget} \
                if m == "random" else \
                {"algorithm": "optuna", "sampler": "nsga2", "num_samples": a.budget,
                 "pop_size": p}
            models = a.budget
            note = f"num_samples {a.budget}" + (f", NSGA-II generations of {p}"
                                                if m == "optuna_nsga2" else "")
        elif m in ("nsga2", "population_nsga2"):
            s["search"] = {"algorithm": "nsga2", "pop_size": p, "generations": g}
            if m == "population_nsga2":
                s["search"]["population"] = True
                s["resources"]["cpus_per_worker"] = 2
            models = p * g
            note = f"pop_size {p} x {g} generations" + \
                   (" (one population trial each)" if m == "population_nsga2" else "")
        else:   # pe_ltr_grid
            parts, n = pe_ltr_partitions(a.budget, len(a.objectives))
            s["weighting"] = dict(PE_LTR_WEIGHTING)
            s["optim"]["lr"] = PE_LTR_LR if a.lr == "search" else a.lr
            s["search"] = {"algorithm": "pe_ltr_grid", "partitions": parts,
                           "bounds_total": BOUNDS_TOTAL}
            models, note = n, f"partitions {parts}: {n} bound vectors"
        if models < a.budget:
            note += f", {models} < budget {a.budget} models (a handicap, not an advantage)"
        s["search"].update(max_failures=0, seed=a.seed)
        if m != "population_nsga2":
            s["search"]["max_concurrent"] = 2
        out[m] = {"space": s, "models": models, "note": note}
    return out


def write_spaces(planned: dict, folder: Path) -> dict:
    """Write ``<folder>/<method>.yaml`` for each method and validate it with
    ``search.space.load_space`` (no Ray, no data); method -> path."""
    from search.space import load_space
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for m, p in planned.items():
        f = folder / f"{m}.yaml"
        f.write_text(f"# written by python -m search.bench_frontier ({p['note']})\n" +
                     yaml.safe_dump(p["space"], sort_keys=False))
        load_space(f)
        paths[m] = f
    return paths


# --- hypervolume curves ------------------------------------------------------------------

def hv_curve(df, objectives, ref, start: float | None = None) -> dict:
    """Hypervolume after each finished trial, in the order trials finished.

    The rows of one trial (a population trial's members) enter together; rows that never
    reported (no ``finished_at``) come last. Returns lists, starting at (0 models, HV 0):
    ``models`` (rows so far: models trained or tried), ``epochs`` (epochs reported so
    far), ``seconds`` (``finished_at - start``; NaN without a start or a finish time),
    ``hv`` (of the finished models so far; failed ones add nothing)."""
    from analysis.frontier import hypervolume
    from analysis.results import auc_matrix
    curve = {"models": [0], "epochs": [0], "seconds": [0.0], "hv": [0.0]}
    if df is None or not len(df):
        return curve
    F = auc_matrix(df, objectives)
    fin = df["finished_at"].to_numpy(dtype=np.float64)
    epochs = df["epochs"].fillna(0).to_numpy(dtype=np.float64) if "epochs" in df else \
        np.zeros(len(df))
    key = (df["dir"] if "dir" in df else df["trial_id"]).astype(str).to_numpy()
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(key):
        groups.setdefault(k, []).append(i)
    order = sorted(groups.values(), key=lambda rows: (
        not math.isfinite(fin[rows[0]]), fin[rows[0]] if math.isfinite(fin[rows[0]]) else 0.0,
        rows[0]))
    taken: list[int] = []
    for rows in order:
        taken += rows
        t = fin[rows[0]]
        curve["models"].append(len(taken))
        curve["epochs"].append(int(epochs[taken].sum()))
        curve["seconds"].append(float(t - start) if start is not None and math.isfinite(t)
                                else math.nan)
        curve["hv"].append(float(hypervolume(F[taken], ref)))
    return curve


def hv_at(curve: dict, models: int) -> float:
    """HV once at most ``models`` models were trained (a trial whose members would cross
    the mark does not count yet)."""
    best = 0.0
    for n, h in zip(curve["models"], curve["hv"]):
        if n <= models:
            best = h
    return best


def marks(budget: int) -> list[int]:
    return [max(1, int(round(f * budget))) for f in FRACTIONS]


# --- the run -----------------------------------------------------------------------------

def _run_method(method: str, space_path: Path, out: Path, objectives, ref, index: int,
                total: int, planned: dict) -> dict:
    from analysis.results import experiment_meta, load_results
    from search.runner import run
    print(f"[bench] {index}/{total} {method}: start ({planned['models']} models x "
          f"{planned['space']['optim']['epochs']} epochs; {planned['note']}; space "
          f"{space_path})", flush=True)
    t0 = time.time()
    rec = {"space": str(space_path), "experiment": str(out / method),
           "planned_models": planned["models"], "note": planned["note"], "error": None}
    try:
        exp = run(space_path, storage=out, name=method)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:      # one broken method must not lose the others' numbers
        rec["error"] = f"{type(e).__name__}: {e}"
        exp = out / method
    rec["wall_s"] = time.time() - t0
    df = load_results(exp) if (exp / "paretune.json").is_file() else None
    start = experiment_meta(exp).get("created", t0)
    rec["df"] = df
    rec["curve"] = hv_curve(df, objectives, ref, start)
    rec["models"] = rec["curve"]["models"][-1]
    rec["finished"] = int((df["status"] == "TERMINATED").sum()) if df is not None and len(df) \
        else 0
    rec["epochs"] = rec["curve"]["epochs"][-1]
    rec["final_hv"] = rec["curve"]["hv"][-1]
    status = f"failed: {rec['error']}" if rec["error"] else "done"
    print(f"[bench] {index}/{total} {method}: {status} in {rec['wall_s']:.0f} s: "
          f"{rec['finished']}/{rec['models']} models finished, {rec['epochs']} epochs, "
          f"HV {rec['final_hv']:.6f}", flush=True)
    return rec


def _fmt(x, spec=".6f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, spec)


def report(results: dict, a, worst_ref, file=None) -> dict:
    """Print the table and the ratios to random; returns the table (for the JSON)."""
    file = file or sys.stdout
    from analysis.frontier import hypervolume
    from analysis.results import auc_matrix
    ks = marks(a.budget)
    p = lambda *x: print(*x, file=file)   # noqa: E731
    table = {}
    for m, r in results.items():
        F = auc_matrix(r["df"], a.objectives) if r["df"] is not None else \
            np.zeros((0, len(a.objectives)))
        hv_w = hypervolume(F, worst_ref) if worst_ref is not None and len(F) else math.nan
        table[m] = {"models": r["models"], "finished": r["finished"], "epochs": r["epochs"],
                    "wall_s": round(r["wall_s"], 1), "final_hv": r["final_hv"],
                    "final_hv_worst_ref": hv_w,
                    "hv_at": {str(k): hv_at(r["curve"], k) for k in ks},
                    "note": r["note"], "error": r["error"]}
    ref_s = ", ".join(f"{o} {v:g}" for o, v in zip(a.objectives, a.ref))
    worst_s = "n/a" if worst_ref is None else \
        ", ".join(f"{o} {v:.4f}" for o, v in zip(a.objectives, worst_ref))
    p(f"\n== bench_frontier: budget {a.budget} models x {a.epochs} epochs per method, "
      f"{a.rows} rows, objectives {', '.join(a.objectives)} ==")
    p(f"HV reference (all methods): AUC {ref_s}.  HV(worst) column: reference = worst "
      f"AUC over all methods' models ({worst_s})")
    head = f"{'method':17s} {'models':>6s} {'epochs':>6s} {'wall s':>7s} {'final HV':>10s} " + \
        " ".join(f"{f'HV@{int(f * 100)}%({k})':>12s}" for f, k in zip(FRACTIONS, ks)) + \
        f" {'HV(worst)':>10s}"
    p(head)
    for m, t in table.items():
        p(f"{m:17s} {t['models']:6d} {t['epochs']:6d} {t['wall_s']:7.0f} "
          f"{_fmt(t['final_hv']):>10s} " +
          " ".join(f"{_fmt(t['hv_at'][str(k)]):>12s}" for k in ks) +
          f" {_fmt(t['final_hv_worst_ref']):>10s}")
    for m, t in table.items():
        p(f"  {m}: {t['note']}" + (f"; ERROR {t['error']}" if t["error"] else ""))
    if "random" in table:
        p("\nHV(method) / HV(random) at equal budget (models trained):")
        p(f"{'method':17s} " + " ".join(f"{f'@{k}':>8s}" for k in ks))
        base = table["random"]["hv_at"]
        for m, t in table.items():
            ratios = {str(k): (t["hv_at"][str(k)] / base[str(k)] if base[str(k)] > 0
                               else math.nan) for k in ks}
            t["ratio_vs_random"] = ratios
            p(f"{m:17s} " + " ".join(f"{_fmt(ratios[str(k)], '.3f'):>8s}" for k in ks))
    return table


def plot(results: dict, a, path: Path) -> Path:
    from analysis.plots import _colours, _figure, _save
    fig = _figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    colour = _colours(list(results))
    styles = ["-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2))]   # coinciding curves stay visible
    for j, (m, r) in enumerate(results.items()):
        c = r["curve"]
        kw = dict(drawstyle="steps-post", marker=".", color=colour[m], label=m,
                  ls=styles[j % len(styles)])
        left.plot(c["models"], c["hv"], **kw)
        s = np.asarray(c["seconds"], dtype=float)
        ok = np.isfinite(s)
        right.plot(s[ok], np.asarray(c["hv"])[ok], **kw)
    left.axvline(a.budget, color="0.5", ls="--", lw=0.8)
    from matplotlib.ticker import MaxNLocator
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("models trained")
    right.set_xlabel("wall seconds since the method's experiment started")
    for ax in (left, right):
        ax.set_ylabel("hypervolume")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    ref_s = ", ".join(f"{v:g}" for v in a.ref)
    fig.suptitle(f"Hypervolume (reference AUC {ref_s}); {a.epochs} epochs per model, "
                 f"{a.rows} rows, objectives {', '.join(a.objectives)}", fontsize=10)
    return _save(fig, path)


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def bench(a) -> dict:
    """Run the methods one after another on one Ray instance; print, plot, save."""
    from analysis.frontier import worst_point
    from analysis.results import auc_matrix
    out = a.out.resolve()
    planned = plan(a)
    spaces = write_spaces(planned, out)          # every space validated before Ray starts
    from trainables.data import resolve_data     # the data once, outside every method's clock
    resolve_data(planned[a.methods[0]]["space"]["data"])
    import ray
    from search.cluster import init_ray as _init_ray
    started = not ray.is_initialized()
    _init_ray(None, a.cpus)
    print(f"[bench] {len(a.methods)} method(s): {', '.join(a.methods)}; budget {a.budget} "
          f"models x {a.epochs} epochs each; results in {out}", flush=True)
    results = {}
    try:
        for i, m in enumerate(a.methods, 1):
            results[m] = _run_method(m, spaces[m], out, a.objectives, a.ref, i,
                                     len(a.methods), planned[m])
    finally:
        if started:
            ray.shutdown()
    Fs = [auc_matrix(r["df"], a.objectives) for r in results.values() if r["df"] is not None]
    F = np.vstack(Fs) if Fs else np.zeros((0, len(a.objectives)))
    worst = worst_point(F).tolist() if np.isfinite(F).all(axis=1).any() else None
    table = report(results, a, worst)
    png = plot(results, a, out / "bench_frontier.png")
    doc = {"settings": {"budget": a.budget, "epochs": a.epochs, "rows": a.rows,
                        "objectives": a.objectives, "methods": a.methods, "seed": a.seed,
                        "data_seed": a.data_seed, "pop_size": a.pop_size,
                        "generations": a.budget // a.pop_size, "batch_size": a.batch_size,
                        "d_model": a.d_model, "lr": a.lr,
                        "lr_range": list(LR_RANGE) if a.lr == "search" else None,
                        "pe_ltr_bounds_total": BOUNDS_TOTAL,
                        "cpus": a.cpus},
           "reference": {"auc": a.ref, "worst_over_methods": worst},
           "table": table,
           "curves": {m: r["curve"] for m, r in results.items()},
           "experiments": {m: r["experiment"] for m, r in results.items()},
           "spaces": {m: r["space"] for m, r in results.items()}}
    js = out / "bench_frontier.json"
    js.write_text(json.dumps(_json_safe(doc), indent=1))
    print(f"\nplot: {png}\njson: {js}\nper method: python -m analysis frontier {out}/<method>",
          flush=True)
    return doc


def over_seeds(docs: list[dict], a, file=None) -> dict:
    """Mean and std over seeds of each method's final HV and of its ratio to random's."""
    out = {}
    print(f"\n== over {len(docs)} seeds ({a.seed}..{a.seed + len(docs) - 1}): final HV, "
          f"reference AUC {a.ref} ==", file=file)
    print(f"{'method':18s} {'mean HV':>10s} {'std':>9s} {'HV/random mean':>15s} "
          f"{'beats random':>13s}", file=file)
    for m in a.methods:
        hv = np.array([d["table"][m]["final_hv"] for d in docs], dtype=float)
        row = {"final_hv": hv.tolist(), "mean": float(hv.mean()), "std": float(hv.std())}
        if "random" in a.methods:
            rnd = np.array([d["table"]["random"]["final_hv"] for d in docs], dtype=float)
            ratio = hv / rnd
            row.update(ratio_mean=float(ratio.mean()), wins=int((hv > rnd).sum()))
        out[m] = row
        ratio_s = f"{row['ratio_mean']:15.3f}" if "ratio_mean" in row else f"{'-':>15s}"
        wins = f"{row['wins']}/{len(docs)}" if "wins" in row else "-"
        print(f"{m:18s} {row['mean']:10.6f} {row['std']:9.6f} {ratio_s} {wins:>13s}",
              file=file, flush=True)
    return out


def main(argv=None) -> int:
    import copy
    try:
        a = parse_args(argv)
    except BenchError as e:
        _parser().error(str(e))          # usage + the message, exit code 2
    from search.space import SpaceError
    docs = []
    try:
        for i in range(a.seeds):
            one = copy.copy(a)
            one.seed = a.seed + i
            if a.seeds > 1:
                one.out = a.out / f"seed{one.seed}"
            docs.append(bench(one))
    except SpaceError as e:              # a generated space the validator rejects: no Ray yet
        print(f"python -m search.bench_frontier: a generated space file was rejected: {e}",
              file=sys.stderr)
        return 2
    if a.seeds > 1:
        summary = over_seeds(docs, a)
        (a.out / "bench_frontier_seeds.json").write_text(json.dumps(_json_safe(
            {"seeds": list(range(a.seed, a.seed + a.seeds)), "summary": summary}), indent=1))
    return 1 if any(t.get("error") for d in docs for t in d["table"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
