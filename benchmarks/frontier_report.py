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


def hv_curve(df, objectives, ref, start: float | None = None) -> dict:
    """Hypervolume after each finished trial, in the order trials finished.

    The rows of one trial (a population trial's members) enter together; rows that never
    reported (no ``finished_at``) come last. Returns lists, starting at (0 models, HV 0):
    ``models`` (rows so far: models trained or tried), ``epochs`` (epochs reported so
    far), ``seconds`` (``finished_at - start``; NaN without a start or a finish time),
    ``hv`` (of the finished models so far; failed ones add nothing)."""
    from analysis.frontier import hypervolume_curve, trial_steps
    from analysis.results import auc_matrix
    curve = {"models": [0], "epochs": [0], "seconds": [0.0], "hv": [0.0]}
    if df is None or not len(df):
        return curve
    F = auc_matrix(df, objectives)
    fin = df["finished_at"].to_numpy(dtype=np.float64)
    epochs = df["epochs"].fillna(0).to_numpy(dtype=np.float64) if "epochs" in df else \
        np.zeros(len(df))
    key = (df["dir"] if "dir" in df else df["trial_id"]).astype(str).to_numpy()
    # trials by finishing time (never finished: last), then rows in trial order
    trials = sorted(trial_steps(key), key=lambda rows: (
        not math.isfinite(fin[rows[0]]), fin[rows[0]] if math.isfinite(fin[rows[0]]) else 0.0,
        rows[0]))
    order = [i for rows in trials for i in rows]
    curve["hv"] += hypervolume_curve(F[order], ref, trials=key[order]).tolist()
    taken: list[int] = []
    for rows in trials:
        taken += rows
        t = fin[rows[0]]
        curve["models"].append(len(taken))
        curve["epochs"].append(int(epochs[taken].sum()))
        curve["seconds"].append(float(t - start) if start is not None and math.isfinite(t)
                                else math.nan)
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
    """The model counts at 25, 50, 75 and 100% of the budget."""
    return [max(1, int(round(f * budget))) for f in FRACTIONS]


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
    p(f"\n== benchmarks.frontier: budget {a.budget} models x {a.epochs} epochs per method, "
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
    from analysis.plots import colours, figure, save
    fig = figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    colour = colours(list(results))
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


