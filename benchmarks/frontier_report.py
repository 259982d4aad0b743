"""The frontier benchmark's numbers and pictures: hypervolume curves of each method's
experiment, the printed table, the two-panel plot and the JSON-safe record.

Each curve counts a population trial's members together: they finish together, so they
enter the curve in one step (``analysis.frontier.hypervolume_curve`` with ``trials``).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def _trial_cost(df, rows) -> tuple[int, int, int]:
    """(models, epochs, member-epochs) of one trial's rows. A conditioned trial (rows are
    its grid points, ``point`` >= 0) is one model whose every step scores ``per_batch``
    preferences: E epochs cost E x per_batch member-epochs. Otherwise each row is a model
    (a population member) and costs the epochs it reported (a trial the scheduler stopped
    costs only the epochs it ran)."""
    epochs = df["epochs"].fillna(0).to_numpy(dtype=np.float64) if "epochs" in df else \
        np.zeros(len(df))
    first = rows[0]
    point = df["point"].iloc[first] if "point" in df else -1
    if point is not None and np.isfinite(float(point)) and point >= 0:
        per = df["config/conditioning.per_batch"].iloc[first] \
            if "config/conditioning.per_batch" in df else 1
        per = int(per) if per is not None and np.isfinite(float(per)) else 1
        e = int(epochs[first])
        return 1, e, e * per
    e = int(epochs[rows].sum())
    return len(rows), e, e


def hv_curve(df, objectives, ref, start: float | None = None) -> dict:
    """Hypervolume after each finished trial, in the order trials finished.

    The rows of one trial (a population trial's members, a conditioned trial's grid
    points) enter together; rows that never reported (no ``finished_at``) come last.
    Returns lists, starting at (0 models, HV 0): ``models`` (models trained or tried so
    far: a conditioned trial is one), ``epochs`` (model-epochs so far),
    ``member_epochs`` (the budget unit: a model trained one epoch is 1, a conditioned
    epoch scoring P preferences per step is P; :func:`_trial_cost`), ``seconds``
    (``finished_at - start``; NaN without a start or a finish time), ``hv`` (of the
    finished rows so far; failed ones add nothing)."""
    from analysis.frontier import hypervolume_curve, trial_steps
    from analysis.results import auc_matrix
    curve = {"models": [0], "epochs": [0], "member_epochs": [0], "seconds": [0.0],
             "hv": [0.0]}
    if df is None or not len(df):
        return curve
    F = auc_matrix(df, objectives)
    fin = df["finished_at"].to_numpy(dtype=np.float64)
    key = (df["dir"] if "dir" in df else df["trial_id"]).astype(str).to_numpy()
    # trials by finishing time (never finished: last), then rows in trial order
    trials = sorted(trial_steps(key), key=lambda rows: (
        not math.isfinite(fin[rows[0]]), fin[rows[0]] if math.isfinite(fin[rows[0]]) else 0.0,
        rows[0]))
    order = [i for rows in trials for i in rows]
    curve["hv"] += hypervolume_curve(F[order], ref, trials=key[order]).tolist()
    for rows in trials:
        n, e, me = _trial_cost(df, rows)
        t = fin[rows[0]]
        curve["models"].append(curve["models"][-1] + n)
        curve["epochs"].append(curve["epochs"][-1] + e)
        curve["member_epochs"].append(curve["member_epochs"][-1] + me)
        curve["seconds"].append(float(t - start) if start is not None and math.isfinite(t)
                                else math.nan)
    return curve


def hv_at(curve: dict, budget: float, unit: str = "models") -> float:
    """HV once at most ``budget`` ``unit`` (models, or member_epochs) were spent (a trial
    whose cost would cross the mark does not count yet)."""
    best = 0.0
    for n, h in zip(curve[unit], curve["hv"]):
        if n <= budget:
            best = h
    return best


def reach(curve: dict, target: float, unit: str = "member_epochs") -> float | None:
    """The least ``unit`` spent at which the curve's HV is at least ``target`` (None:
    never)."""
    for n, h in zip(curve[unit], curve["hv"]):
        if target > 0 and h >= target:
            return n
    return None


def marks(budget: int) -> list[int]:
    """The budget marks at 25, 50, 75 and 100% of ``budget``."""
    return [max(1, int(round(f * budget))) for f in FRACTIONS]


def _fmt(x, spec=".6f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, spec)


def _ratio(x: float, base: float) -> float:
    return x / base if base > 0 else math.nan


def report(results: dict, a, worst_ref, file=None) -> dict:
    """Print the table and the ratios to random at equal member-epochs; returns the table
    (for the JSON)."""
    file = file or sys.stdout
    from analysis.frontier import hypervolume
    from analysis.results import auc_matrix
    budget = a.budget * a.epochs                 # member-epochs: random's full budget
    ks = marks(budget)
    p = lambda *x: print(*x, file=file)   # noqa: E731
    table = {}
    for m, r in results.items():
        F = auc_matrix(r["df"], a.objectives) if r["df"] is not None else \
            np.zeros((0, len(a.objectives)))
        hv_w = hypervolume(F, worst_ref) if worst_ref is not None and len(F) else math.nan
        c = r["curve"]
        table[m] = {"models": r["models"], "finished": r["finished"], "epochs": r["epochs"],
                    "member_epochs": c["member_epochs"][-1],
                    "wall_s": round(r["wall_s"], 1), "final_hv": r["final_hv"],
                    "final_hv_worst_ref": hv_w,
                    "hv_at": {str(k): hv_at(c, k, "member_epochs") for k in ks},
                    "note": r["note"], "error": r["error"]}
    ref_s = ", ".join(f"{o} {v:g}" for o, v in zip(a.objectives, a.ref))
    worst_s = "n/a" if worst_ref is None else \
        ", ".join(f"{o} {v:.4f}" for o, v in zip(a.objectives, worst_ref))
    p(f"\n== benchmarks.frontier: budget {budget} member-epochs ({a.budget} models x "
      f"{a.epochs} epochs), {a.data_name}, objectives {', '.join(a.objectives)} ==")
    p(f"HV reference (all methods): AUC {ref_s}.  HV(worst) column: reference = worst "
      f"AUC over all methods' models ({worst_s})")
    p(f"{'method':17s} {'models':>6s} {'mem-ep':>6s} {'wall s':>7s} {'final HV':>10s} " +
      " ".join(f"{f'HV@{int(f * 100)}%({k})':>12s}" for f, k in zip(FRACTIONS, ks)) +
      f" {'HV(worst)':>10s}")
    for m, t in table.items():
        p(f"{m:17s} {t['models']:6d} {t['member_epochs']:6d} {t['wall_s']:7.0f} "
          f"{_fmt(t['final_hv']):>10s} " +
          " ".join(f"{_fmt(t['hv_at'][str(k)]):>12s}" for k in ks) +
          f" {_fmt(t['final_hv_worst_ref']):>10s}")
    for m, t in table.items():
        p(f"  {m}: {t['note']}" + (f"; ERROR {t['error']}" if t["error"] else ""))
    if "random" in table:
        p("\nHV(method) / HV(random) at equal member-epochs (at the marks, and at what the "
          "method spent):")
        p(f"{'method':17s} " + " ".join(f"{f'@{k}':>8s}" for k in ks) + f" {'@spent':>8s}")
        base = results["random"]["curve"]
        for m, t in table.items():
            ratios = {str(k): _ratio(t["hv_at"][str(k)], hv_at(base, k, "member_epochs"))
                      for k in ks}
            t["ratio_vs_random"] = ratios
            t["ratio_at_spent"] = _ratio(t["final_hv"],
                                         hv_at(base, t["member_epochs"], "member_epochs"))
            p(f"{m:17s} " + " ".join(f"{_fmt(ratios[str(k)], '.3f'):>8s}" for k in ks) +
              f" {_fmt(t['ratio_at_spent'], '.3f'):>8s}")
    return table


def baselines(results: dict, a, file=None) -> dict | None:
    """The input scores as baseline points (``analysis.baselines``: each ``score_*`` column
    ranked against every objective, on the split the trials were evaluated on), their
    hypervolume against the same reference, and per method: frontier points that do not
    beat them and its best AUC per objective against the best single input. None when no
    method's results name a dataset with input scores."""
    from analysis.baselines import experiment_baselines, versus
    from analysis.frontier import hypervolume, pareto_front
    from analysis.noise import auc_se
    from analysis.results import auc_matrix
    p = lambda *x: print(*x, file=file or sys.stdout)   # noqa: E731
    base = None
    for r in results.values():
        if r["df"] is not None and len(r["df"]):
            base, note = experiment_baselines(r["df"], a.objectives, r["experiment"])
            if base is not None:
                break
    if base is None:
        return None
    best = base.best_single(a.objectives)
    hv = hypervolume(base.F, a.ref)
    p(f"\ninput scores as baselines ({base.where}): HV {hv:.6f} (reference AUC "
      f"{', '.join(f'{v:g}' for v in a.ref)}); best single input: " +
      ", ".join(f"{o} {v:.4f} ({n})" for o, (v, n) in best.items()))
    p(f"{'method':17s} {'final HV':>10s} {'- inputs HV':>11s} {'not beating':>11s} " +
      " ".join(f"{'best ' + o[:8]:>14s}" for o in a.objectives))
    out = {"where": base.where, "names": base.names, "auc": base.F.tolist(),
           "se": base.se.tolist(), "hv": hv,
           "best_single": {o: {"auc": v, "input": n} for o, (v, n) in best.items()},
           "methods": {}}
    for m, r in results.items():
        if r["df"] is None or not len(r["df"]):
            continue
        F = auc_matrix(r["df"], a.objectives)
        front = pareto_front(F)
        counts = base.counts
        se = auc_se(F, counts[None, :, 0], counts[None, :, 1])
        marks = versus(F, se, base, 1.0)
        weak = [int(i) for i in front if marks[i] != "beats"]
        top = np.nanmax(F, axis=0) if np.isfinite(F).any() else np.full(len(a.objectives),
                                                                          np.nan)
        out["methods"][m] = {"not_beating": len(weak), "frontier": int(len(front)),
                             "best": dict(zip(a.objectives, top.tolist())),
                             "hv_minus_inputs": r["final_hv"] - hv}
        p(f"{m:17s} {_fmt(r['final_hv']):>10s} {r['final_hv'] - hv:+11.6f} "
          f"{f'{len(weak)}/{len(front)}':>11s} " +
          " ".join(f"{top[k] - best[o][0]:+14.4f}" for k, o in enumerate(a.objectives)))
    p("  (not beating: frontier points no better than some input score beyond 1 SE on any "
      "objective; best <obj>: the method's best AUC minus the best single input's)")
    return out


def plot(results: dict, a, path: Path, inputs_hv: float | None = None) -> Path:
    from analysis.plots import colours, figure, save
    fig = figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    colour = colours(list(results))
    styles = ["-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2))]   # coinciding curves stay visible
    for j, (m, r) in enumerate(results.items()):
        c = r["curve"]
        kw = dict(drawstyle="steps-post", marker=".", color=colour[m], label=m,
                  ls=styles[j % len(styles)])
        left.plot(c["member_epochs"], c["hv"], **kw)
        s = np.asarray(c["seconds"], dtype=float)
        ok = np.isfinite(s)
        right.plot(s[ok], np.asarray(c["hv"])[ok], **kw)
    left.axvline(a.budget * a.epochs, color="0.5", ls="--", lw=0.8)
    if inputs_hv is not None:                 # the input scores alone, as a baseline
        for ax in (left, right):
            ax.axhline(inputs_hv, color="black", ls=":", lw=1.0,
                       label="input scores alone" if ax is left else "_nolegend_")
    from matplotlib.ticker import MaxNLocator
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("member-epochs (a model for one epoch = 1; a conditioned epoch = "
                    "its preferences per step)")
    right.set_xlabel("wall seconds since the method's experiment started")
    for ax in (left, right):
        ax.set_ylabel("hypervolume")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    ref_s = ", ".join(f"{v:g}" for v in a.ref)
    fig.suptitle(f"Hypervolume (reference AUC {ref_s}); {a.epochs} epochs per model, "
                 f"{a.data_name}, objectives {', '.join(a.objectives)}", fontsize=10)
    return save(fig, path)


def json_safe(x):
    """``x`` with numpy numbers, paths and tuples made JSON-ready (non-finite floats: None)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def _ms(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.std())) if len(v) else (math.nan, math.nan)


def over_seeds(docs: list[dict], a, file=None) -> dict:
    """Mean and std over seeds (numpy std, ddof 0) of each method's final HV, member-epochs
    spent, wall seconds, and its HV / random's at equal member-epochs (at what it spent)
    and at the end; the goals' numbers (``frontier_methods.over_seed_goals``)."""
    from .frontier_methods import over_seed_goals
    out = {}
    pm = lambda m, s, d=4: f"{_fmt(m, f'.{d}f')} ± {_fmt(s, f'.{d}f')}"   # noqa: E731
    print(f"\n== over {len(docs)} seeds ({a.seed}..{a.seed + len(docs) - 1}): mean ± std, "
          f"reference AUC {a.ref}, {a.data_name} ==", file=file)
    print(f"{'method':15s} {'final HV':>17s} {'member-epochs':>15s} {'wall s':>11s} "
          f"{'HV/rnd @equal ME':>17s} {'HV/rnd final':>15s} {'beats rnd':>9s}", file=file)
    goals = over_seed_goals([d.get("goals", {}) for d in docs])
    for m in a.methods:
        t = [d["table"][m] for d in docs]
        hv = np.array([x["final_hv"] for x in t], dtype=float)
        row = {"final_hv": hv.tolist(), "mean": _ms(hv)[0], "std": _ms(hv)[1],
               "member_epochs": _ms([x["member_epochs"] for x in t]),
               "wall_s": _ms([x["wall_s"] for x in t]),
               "ratio_at_spent": _ms([x.get("ratio_at_spent", math.nan) for x in t])}
        if "random" in a.methods:
            rnd = np.array([d["table"]["random"]["final_hv"] for d in docs], dtype=float)
            row.update(ratio=_ms(hv / rnd), ratio_mean=_ms(hv / rnd)[0],
                       wins=int((hv > rnd).sum()))
        out[m] = {**row, **({"goal": goals[m]} if m in goals else {})}
        wins = f"{row['wins']}/{len(docs)}" if "wins" in row else "-"
        print(f"{m:15s} {pm(row['mean'], row['std'], 5):>17s} "
              f"{pm(*row['member_epochs'], 0):>15s} {pm(*row['wall_s'], 0):>11s} "
              f"{pm(*row['ratio_at_spent'], 3):>17s} "
              f"{pm(*row.get('ratio', (math.nan, math.nan)), 3):>15s} {wins:>9s}",
              file=file, flush=True)
    for m in [x for x in a.methods if x in goals]:
        g = goals[m]
        r = g["reach"]
        print(f"  {m}: spent {pm(*g['spent'], 2)} of random's member-epochs; HV/random final "
              f"{pm(*g['hv_ratio'], 3)}; at equal member-epochs {pm(*g['ratio_at_spent'], 3)}"
              f"; reached random's final HV in {g['reached']} seeds" +
              (f" at {pm(*r, 2)} of its member-epochs" if r else ""), file=file)
    return out
