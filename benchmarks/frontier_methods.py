"""The frontier benchmark's methods that no searcher declares on its own, its budget in
member-epochs, the ``--data`` option and the goals the comparison is read against.

- ``conditioned``: preference-conditioned trials (``trainables.conditioned``): one model
  per trial takes the preference vector w, ``--cond-per-batch`` P Dirichlet(1) vectors per
  step, and is scored at every point of the Das-Dennis grid; random search (lr only, no
  loss weights to search) over ``--cond-trials`` T trials of E epochs, E by default the
  most epochs with T x E x P within ``CONDITIONED_SHARE`` (30%) of the budget;
- ``random+moasha``: random search with the multi-objective ASHA scheduler
  (``scheduler: {kind: moasha, grace_period: 1, reduction_factor: 3}``), ``--budget``
  trials of up to ``--moasha-epochs`` (8) epochs: a trial it stops costs the epochs it ran;
- ``optuna_gp``: Optuna's GP sampler (``search: {algorithm: optuna, sampler: gp}``),
  ``--budget`` trials like ``random``.

Budget unit, the member-epoch: a model (a trial, or a population member) trained for one
epoch costs 1; a conditioned epoch whose every step scores P preferences costs P. The
budget is random's: ``--budget`` models x ``--epochs`` epochs.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._args import BenchError, integer

CONDITIONED_SHARE = 0.3      # the conditioned goal: random's HV for <= 30% of its budget
MOASHA = {"kind": "moasha", "grace_period": 1, "reduction_factor": 3}
GOALS = {"conditioned": "HV >= random's final HV with <= 30% of its member-epochs, and "
                        ">= 1.03 x random's HV at equal member-epochs",
         "random+moasha": "reaches random's final HV with <= 50% of its member-epochs",
         "optuna_gp": "no goal: where it lands"}


def folder(method: str) -> str:
    """The experiment (and space file) name of a method: '+' is not allowed in one."""
    return method.replace("+", "_")


def add_args(p) -> None:
    p.add_argument("--data", default=None,
                   help="an ME dataset folder (e.g. the MP stage's output) instead of "
                        "synthetic data; --objectives then names (or counts) its objectives "
                        "and --rows / --data-seed are not used")
    p.add_argument("--cond-trials", default="2",
                   help="conditioned: trials (default 2: the two CPUs each train one)")
    p.add_argument("--cond-per-batch", default="2",
                   help="conditioned: preferences per step, P (default 2)")
    p.add_argument("--cond-epochs", default=None,
                   help="conditioned: epochs per trial (default: the most with trials x "
                        f"epochs x P <= {CONDITIONED_SHARE:.0%} of the budget)")
    p.add_argument("--moasha-epochs", default="8",
                   help="random+moasha: the most epochs a trial runs (default 8; rungs at "
                        "1, 3, ... epochs)")


def check_args(a) -> None:
    """Turn this module's options into values; BenchError naming the option."""
    a.cond_trials = integer("--cond-trials", a.cond_trials, 1)
    a.cond_per_batch = integer("--cond-per-batch", a.cond_per_batch, 1, 64)
    budget = a.budget * a.epochs
    auto = int(CONDITIONED_SHARE * budget) // (a.cond_trials * a.cond_per_batch)
    a.cond_epochs = max(1, auto) if a.cond_epochs is None else \
        integer("--cond-epochs", a.cond_epochs, 1)
    a.moasha_epochs = integer("--moasha-epochs", a.moasha_epochs, 2)
    if a.data is not None:
        a.data = Path(a.data).expanduser().resolve()
        if not (a.data / "meta.yaml").is_file():
            raise BenchError(f"--data {str(a.data)!r}: not an ME dataset folder (no "
                             f"meta.yaml); make one with python -m trainables.mp kuairand")
    a.data_name = f"ME dataset {a.data.name}" if a.data else f"{a.rows} synthetic rows"


def dataset_objectives(data: Path) -> list[str]:
    import yaml
    return list(yaml.safe_load((data / "meta.yaml").read_text()).get("objectives") or [])


def data_section(a, objectives) -> dict:
    if a.data is not None:
        return {"path": str(a.data), "objectives": list(objectives)}
    return {"source": "synthetic", "rows": a.rows, "objectives": list(objectives),
            "seed": a.data_seed}


# --- the methods: (a, space) -> (models, note); each sets the space's search section --------

def _conditioned(a, s):
    s.pop("weighting", None)          # a conditioned trial is weighted by its preference
    s["conditioning"] = {"alpha": 1.0, "per_batch": a.cond_per_batch}
    s["optim"]["epochs"] = a.cond_epochs
    s["search"] = {"algorithm": "random", "num_samples": a.cond_trials}
    cost = a.cond_trials * a.cond_epochs * a.cond_per_batch
    return a.cond_trials, (f"{a.cond_trials} conditioned trials x {a.cond_epochs} epochs x "
                           f"{a.cond_per_batch} preferences per step = {cost} member-epochs "
                           f"({cost / (a.budget * a.epochs):.0%} of the budget)")


def _moasha(a, s):
    s["scheduler"] = dict(MOASHA)
    s["optim"]["epochs"] = a.moasha_epochs
    s["search"] = {"algorithm": "random", "num_samples": a.budget}
    return a.budget, (f"num_samples {a.budget}, up to {a.moasha_epochs} epochs each, moasha "
                      f"grace {MOASHA['grace_period']}, reduction {MOASHA['reduction_factor']}")


def _gp(a, s):
    s["search"] = {"algorithm": "optuna", "sampler": "gp", "num_samples": a.budget}
    return a.budget, f"num_samples {a.budget}, Optuna GPSampler (random for its first 10)"


EXTRA = {"conditioned": _conditioned, "random+moasha": _moasha, "optuna_gp": _gp}


# --- the goals ------------------------------------------------------------------------------

def goal_numbers(doc: dict) -> dict:
    """Per method, what its goal is read on (one seed's ``bench_frontier.json`` content):
    ``spent`` (its member-epochs / random's), ``hv_ratio`` (its final HV / random's final),
    ``ratio_at_spent`` (its final HV / random's HV at the member-epochs it spent) and for
    random+moasha ``reach`` (the member-epochs at which it first had random's final HV, /
    random's; None: never)."""
    from .frontier_report import reach
    t = doc["table"]
    if "random" not in t:
        return {}
    rnd, out = t["random"], {}
    for m, row in t.items():
        if m == "random":
            continue
        g = {"spent": row["member_epochs"] / rnd["member_epochs"] if rnd["member_epochs"]
             else math.nan,
             "hv_ratio": row["final_hv"] / rnd["final_hv"] if rnd["final_hv"] else math.nan,
             "ratio_at_spent": row.get("ratio_at_spent", math.nan)}
        got = reach(doc["curves"][m], rnd["final_hv"])
        g["reach"] = None if got is None or not rnd["member_epochs"] else \
            got / rnd["member_epochs"]
        out[m] = g
    return out


def print_goals(goals: dict, file=None) -> None:
    """One line per method with a goal: the numbers and whether they meet it."""
    for m, g in goals.items():
        if m == "conditioned":
            ok = g["hv_ratio"] >= 1 and g["spent"] <= CONDITIONED_SHARE + 1e-9
            ok2 = g["ratio_at_spent"] >= 1.03
            print(f"goal {m}: HV/random's final {g['hv_ratio']:.3f} spending "
                  f"{g['spent']:.0%} of its member-epochs ({'met' if ok else 'NOT met'}); at "
                  f"equal member-epochs {g['ratio_at_spent']:.3f} x random "
                  f"({'met' if ok2 else 'NOT met'})", file=file)
        elif m == "random+moasha":
            r = g["reach"]
            print(f"goal {m}: " + ("never reached random's final HV" if r is None else
                                   f"reached random's final HV at {r:.0%} of its "
                                   f"member-epochs") +
                  f" ({'met' if r is not None and r <= 0.5 else 'NOT met'}); final HV "
                  f"{g['hv_ratio']:.3f} x random's, spending {g['spent']:.0%}", file=file)
        elif m == "optuna_gp":
            print(f"{m}: final HV {g['hv_ratio']:.3f} x random's ({g['spent']:.0%} of its "
                  f"member-epochs)", file=file)


def over_seed_goals(per_seed: list[dict]) -> dict:
    """Mean and std over seeds of each goal number (``reach``: the seeds that reached it,
    and the mean over those)."""
    out = {}
    for m in {k for g in per_seed for k in g}:
        rows = [g[m] for g in per_seed if m in g]
        row = {}
        for k in ("spent", "hv_ratio", "ratio_at_spent"):
            v = np.array([r[k] for r in rows], dtype=float)
            row[k] = (float(np.nanmean(v)), float(np.nanstd(v)))
        got = [r["reach"] for r in rows if r["reach"] is not None]
        row["reached"] = f"{len(got)}/{len(rows)}"
        row["reach"] = (float(np.mean(got)), float(np.std(got))) if got else None
        out[m] = row
    return out
