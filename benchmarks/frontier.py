"""Budget comparison benchmark: random search, Optuna NSGA-II and GP, pymoo NSGA-II, the
PE-LTR grid, population NSGA-II, random search with the moasha scheduler and
preference-conditioned trials find a frontier on the same data with the same budget;
hypervolume vs member-epochs and vs wall time.

    python -m benchmarks.frontier [--budget 28] [--epochs 2] [--rows 100000 | --data DIR]
        [--objectives 3 | --objectives click,long_view,buy] [--methods random,nsga2,...]
        [--out experiments/bench_frontier-<time>] [--seed 0] [--seeds 1] [--ref 0.5]

Methods (each its own space file, written into ``--out``, and its own experiment folder
``<out>/<method>``, so ``python -m analysis frontier <out>/<method>`` works). A searcher
declares how it enters (``search.searchers``: ``bench_methods``, ``bench``,
``bench_population``); today's:

- ``random``: ``num_samples = budget`` trials, static weights uniform on the simplex and
  ``optim.lr`` log-uniform;
- ``optuna_nsga2``: the same space, Optuna's NSGA-II sampler, ``num_samples = budget``;
- ``nsga2``: the same space, paretune's pymoo NSGA-II searcher,
  ``pop_size = p`` and ``generations = budget // p``;
- ``population_nsga2``: the same as ``nsga2`` with ``search.population: true`` (each
  generation is one trial of ``p`` members trained together, on 2 CPUs);
- ``pe_ltr_grid``: one PE-LTR trial per lower-bound vector (bounds summing to
  ``BOUNDS_TOTAL`` = 0.95), the largest ``partitions``
  whose vector count C(partitions + K - 1, K - 1) is at most the budget (fewer models
  than the budget is a handicap for PE-LTR, and the output says so); fixed ``optim.lr``;
- ``conditioned``, ``random+moasha``, ``optuna_gp``: :mod:`benchmarks.frontier_methods`.

The budget is counted in member-epochs (a model trained one epoch: 1; a conditioned
epoch scoring P preferences per step: P; a trial moasha stops: the epochs it ran), random's
``--budget`` models x ``--epochs`` epochs; wall seconds beside it. ``--data DIR`` runs on
an ME dataset (e.g. the KuaiRand MP stage's output) instead of synthetic data.

Every model (trial, population member or conditioned model) trains the same HarmonRank
(small ``d_model``) with the same rank_auc loss, batch size and lr (range) on the same
data. One-model-per-trial methods run 2
trials at a time on 1 CPU each; the population trial gets 2 CPUs; Ray gets ``--cpus`` (2).

Hypervolume is computed against one fixed reference point for all methods (``--ref``,
default AUC 0.5 for every objective: a random ranking), after each finished trial (the
members of a population trial finish together), versus member-epochs and versus wall
seconds since the method's experiment started. Printed: one line per method start/end,
the table (models, member-epochs, wall s, final HV, HV at 25/50/75/100% of the budget,
final HV with the worst point over all methods as reference), HV(method) / HV(random) at
equal member-epochs, the goals (``frontier_methods.GOALS``) and the input scores as
baselines (each ``score_*`` column's own AUC vector, ``analysis.baselines``: their HV, the
best single input per objective, and per method the frontier points that do not beat them
and its best AUC per objective against the best single input); with ``--seeds N``, their
mean and std over the seeds. Every model's point is the epoch the analysis' rule picks
(``analysis.epochs``: the epoch best for its own weights). Saved: ``<out>/bench_frontier.png`` (two panels) and
``<out>/bench_frontier.json``.
The curves, table and plot are in :mod:`benchmarks.frontier_report`.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from search.searchers import SEARCHERS
from search.searchers.pe_ltr_grid import BOUNDS_TOTAL, PE_LTR_LR, pe_ltr_partitions

from . import frontier_methods as fm
from ._args import BenchError, add_common, check_ints, integer
from .frontier_report import (baselines, hv_at, hv_curve, json_safe, marks, over_seeds, plot,
                              report)

__all__ = ["BOUNDS_TOTAL", "BenchError", "METHODS", "PE_LTR_LR", "bench", "hv_at",
           "hv_curve", "main", "marks", "parse_args", "pe_ltr_partitions", "plan",
           "write_spaces"]

# method -> (searcher, as population trials): what each registered searcher declares
# (bench_methods, bench_population); one-model-per-trial methods first.
_METHODS = {**{m: (s, False) for s in SEARCHERS.values() for m in s.bench_methods},
            **{f"population_{m}": (s, True) for s in SEARCHERS.values()
               if s.bench_population for m in s.bench_methods},
            **{m: (None, False) for m in fm.EXTRA}}
METHODS = tuple(_METHODS)
# --objectives N takes the first N of these (click and long_view conflict with buy through
# the generator's "clickbait" factor, so the frontier is a real trade-off).
OBJECTIVE_ORDER = ("click", "long_view", "buy", "like", "follow", "comment", "forward",
                   "profile_enter")
LR_RANGE = (3.0e-3, 3.0e-2)          # --lr search: lr range of random, optuna, nsga2, population
# 28 = C(6 + 2, 2): the 3-objective PE-LTR grid with 6 partitions is exactly the budget.
DEFAULT_BUDGET = 28


# --- arguments ---------------------------------------------------------------------------

def _parser():
    from ._args import parser
    p = parser("python -m benchmarks.frontier", __doc__)
    p.add_argument("--budget", default=str(DEFAULT_BUDGET),
                   help="models trained per method (trials, or population members); >= 2 "
                        f"(default {DEFAULT_BUDGET}: for 3 objectives the PE-LTR grid of 6 "
                        f"partitions has exactly that many bound vectors)")
    add_common(p, epochs=2, rows=100000,
               help_rows="rows of synthetic data (80/10/10 train/valid/test; default "
                         "{default})")
    p.add_argument("--objectives", default="3",
                   help=f"a count N (the first N of {','.join(OBJECTIVE_ORDER)}) or a comma "
                        f"list of objective names (default 3: click,long_view,buy)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma list, a subset of {','.join(METHODS)} (default all)")
    add_common(p, out="experiments/bench_frontier-<time>", seed=0,
               help_seed="searchers' and model init seed (default {default})")
    p.set_defaults(out=None)
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
    add_common(p, seeds=1, batch_size=2048,
               help_seeds="repeat the whole comparison for seeds --seed .. --seed + N - 1 and "
                          "print mean and std of the final HV per method (default {default})")
    p.add_argument("--d-model", default="8", help="HarmonRank d_model (default 8)")
    p.add_argument("--cpus", default="2",
                   help="CPUs given to a local Ray (default 2; every method uses 2 at a time)")
    fm.add_args(p)
    return p


def _objectives(value: str, data=None) -> list[str]:
    from trainables.data.synthetic import KNOWN
    value = str(value).strip()
    known = list(KNOWN)
    if data is not None:        # an ME dataset: its objectives, in OBJECTIVE_ORDER first
        have = fm.dataset_objectives(data)
        known = sorted(have, key=lambda o: (OBJECTIVE_ORDER + tuple(have)).index(o))
        if value.isdigit():
            return known[:integer("--objectives", value, 2, len(known))]
    elif value.isdigit():
        n = integer("--objectives", value, 2, len(OBJECTIVE_ORDER))
        return list(OBJECTIVE_ORDER[:n])
    names = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in names if x not in known]
    if bad:
        most = len(known) if data is not None else len(OBJECTIVE_ORDER)
        raise BenchError(f"--objectives {value!r}: unknown objective(s) {', '.join(bad)}; "
                         f"allowed: a count 2..{most} or names from {', '.join(known)}")
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


def parse_args(argv=None):
    """Parse and check every option; BenchError (naming the option) on a bad value.
    Touches no file and starts nothing."""
    a = _parser().parse_args(argv)
    a.budget = integer("--budget", a.budget, 2)
    check_ints(a, rows=2000, batch_size=1)          # --epochs, --rows, --seed(s), --batch-size
    if a.lr != "search":
        try:
            lr = float(a.lr)
        except ValueError:
            lr = -1.0
        if not (math.isfinite(lr) and 0 < lr < 10):
            raise BenchError(f"--lr {a.lr!r}: must be a number in (0, 10) or 'search'")
        a.lr = lr
    a.data_seed = integer("--data-seed", a.data_seed, 0)
    a.d_model = integer("--d-model", a.d_model, 1)
    a.cpus = integer("--cpus", a.cpus, 2)
    fm.check_args(a)
    a.objectives = _objectives(a.objectives, a.data)
    a.methods = _methods(a.methods)
    a.ref = _ref(a.ref, len(a.objectives))
    a.pop_size = max(2, a.budget // 3) if a.pop_size is None else \
        integer("--pop-size", a.pop_size, 2, a.budget)
    try:
        plan(a)                 # each searcher checks the budget can serve its method
    except ValueError as e:
        raise BenchError(str(e)) from None
    a.out = Path(a.out) if a.out else \
        Path("experiments") / f"bench_frontier-{time.strftime('%Y%m%d-%H%M%S')}"
    taken = [m for m in a.methods if (a.out / fm.folder(m) / "paretune.json").exists()]
    if taken:
        raise BenchError(f"--out {str(a.out)!r}: already holds experiment(s) "
                         f"{', '.join(taken)}; give a new folder")
    return a


# --- the spaces --------------------------------------------------------------------------

def _base_space(a, name: str) -> dict:
    objs = list(a.objectives)
    return {
        "name": name,
        "data": fm.data_section(a, objs),
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
    "note": how its budget was set}. Each searcher sets its own ``search`` section (its
    ``bench``); a ``population_<m>`` method is ``m`` trained as population trials.
    ValueError (from the searcher) when the budget cannot serve a method."""
    out = {}
    for m in a.methods:
        s = _base_space(a, fm.folder(m))
        searcher, population = _METHODS[m]
        models, note = fm.EXTRA[m](a, s) if m in fm.EXTRA else searcher.bench(m, a, s)
        if population:
            s["search"]["population"] = True
            s["resources"]["cpus_per_worker"] = 2
            note += " (one population trial each)"
        if models < a.budget and m not in fm.EXTRA:
            note += f", {models} < budget {a.budget} models (a handicap, not an advantage)"
        s["search"].update(max_failures=0, seed=a.seed)
        if not population:
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
        f = folder / f"{fm.folder(m)}.yaml"
        f.write_text(f"# written by python -m benchmarks.frontier ({p['note']})\n" +
                     yaml.safe_dump(p["space"], sort_keys=False))
        load_space(f)
        paths[m] = f
    return paths


# --- the run -----------------------------------------------------------------------------

def _run_method(method: str, space_path: Path, out: Path, objectives, ref, index: int,
                total: int, planned: dict) -> dict:
    from analysis.results import experiment_meta, load_results
    from search.runner import run
    print(f"[bench] {index}/{total} {method}: start ({planned['models']} models x "
          f"{planned['space']['optim']['epochs']} epochs; {planned['note']}; space "
          f"{space_path})", flush=True)
    t0 = time.time()
    name = fm.folder(method)
    rec = {"space": str(space_path), "experiment": str(out / name),
           "planned_models": planned["models"], "note": planned["note"], "error": None}
    try:
        exp = run(space_path, storage=out, name=name)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:      # one broken method must not lose the others' numbers
        rec["error"] = f"{type(e).__name__}: {e}"
        exp = out / name
    rec["wall_s"] = time.time() - t0
    df = load_results(exp) if (exp / "paretune.json").is_file() else None
    start = experiment_meta(exp).get("created", t0)
    rec["df"] = df
    rec["curve"] = hv_curve(df, objectives, ref, start)
    rec["models"] = rec["curve"]["models"][-1]
    if df is not None and len(df):    # models: a conditioned trial's grid points are one
        one = df["point"].fillna(-1) <= 0 if "point" in df else True
        rec["finished"] = int(((df["status"] == "TERMINATED") & one).sum())
    else:
        rec["finished"] = 0
    rec["epochs"] = rec["curve"]["epochs"][-1]
    rec["final_hv"] = rec["curve"]["hv"][-1]
    status = f"failed: {rec['error']}" if rec["error"] else "done"
    print(f"[bench] {index}/{total} {method}: {status} in {rec['wall_s']:.0f} s: "
          f"{rec['finished']}/{rec['models']} models finished, {rec['epochs']} epochs, "
          f"HV {rec['final_hv']:.6f}", flush=True)
    return rec


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
    from search.cluster import init_ray
    started = not ray.is_initialized()
    init_ray(None, a.cpus)
    print(f"[bench] {len(a.methods)} method(s): {', '.join(a.methods)}; budget "
          f"{a.budget * a.epochs} member-epochs ({a.budget} models x {a.epochs} epochs); "
          f"{a.data_name}; results in {out}", flush=True)
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
    inputs = baselines(results, a)
    png = plot(results, a, out / "bench_frontier.png",
               inputs["hv"] if inputs is not None else None)
    doc = {"settings": {"budget": a.budget, "epochs": a.epochs, "rows": a.rows,
                        "member_epoch_budget": a.budget * a.epochs,
                        "data": a.data_name, "cond_trials": a.cond_trials,
                        "cond_epochs": a.cond_epochs, "cond_per_batch": a.cond_per_batch,
                        "moasha": {**fm.MOASHA, "epochs": a.moasha_epochs},
                        "objectives": a.objectives, "methods": a.methods, "seed": a.seed,
                        "data_seed": a.data_seed, "pop_size": a.pop_size,
                        "generations": a.budget // a.pop_size, "batch_size": a.batch_size,
                        "d_model": a.d_model, "lr": a.lr,
                        "lr_range": list(LR_RANGE) if a.lr == "search" else None,
                        "pe_ltr_bounds_total": BOUNDS_TOTAL,
                        "cpus": a.cpus},
           "reference": {"auc": a.ref, "worst_over_methods": worst},
           "table": table, "input_scores": inputs,
           "curves": {m: r["curve"] for m, r in results.items()},
           "experiments": {m: r["experiment"] for m, r in results.items()},
           "spaces": {m: r["space"] for m, r in results.items()}}
    doc["goals"] = fm.goal_numbers(doc)
    fm.print_goals(doc["goals"])
    js = out / "bench_frontier.json"
    js.write_text(json.dumps(json_safe(doc), indent=1))
    print(f"\nplot: {png}\njson: {js}\nper method: python -m analysis frontier {out}/<method>",
          flush=True)
    return doc


def main(argv=None) -> int:
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
        print(f"python -m benchmarks.frontier: a generated space file was rejected: {e}",
              file=sys.stderr)
        return 2
    if a.seeds > 1:
        summary = over_seeds(docs, a)
        goals = fm.over_seed_goals([d["goals"] for d in docs])
        (a.out / "bench_frontier_seeds.json").write_text(json.dumps(json_safe(
            {"seeds": list(range(a.seed, a.seed + a.seeds)), "summary": summary,
             "goals": goals}), indent=1))
    return 1 if any(t.get("error") for d in docs for t in d["table"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
