"""The table printed at the end of a search and by ``analysis frontier``."""
from __future__ import annotations

import sys

import numpy as np

from .frontier import hypervolume, pareto_front, worst_point
from .results import auc_matrix


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)[:14]


def print_summary(df, objectives, experiment_dir, file=sys.stdout, which="final",
                  ref=None, ref_label="worst value per objective", columns=()) -> dict:
    """Print trials (frontier first, then by AUC sum), failures with reasons, and the
    hypervolume; return {"front": indices, "ref": ref, "hypervolume": hv}. ``columns``:
    extra results columns to show (e.g. ``node``, ``host``, ``config/optim.lr``)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"--columns: unknown column(s) {', '.join(missing)}; e.g. node, host, "
                         f"epochs, time_s, " + ", ".join(c for c in df.columns
                                                         if c.startswith("config/"))[:600])
    F = auc_matrix(df, objectives, which)
    front = pareto_front(F) if len(F) else np.zeros(0, int)
    finite = np.isfinite(F).all(axis=1) if len(F) else np.zeros(0, bool)
    out = {"front": front, "ref": None, "hypervolume": float("nan")}
    p = lambda *a: print(*a, file=file)  # noqa: E731
    n_ok, n_err = int(finite.sum()), int((df["status"] == "ERROR").sum()) if len(df) else 0
    members = "member" in df and bool((df["member"] >= 0).any()) if len(df) else False
    what = "models (population members count one each)" if members else "trials"
    p(f"\n{len(df)} {what}: {n_ok} finished, {n_err} failed, "
      f"{len(df) - n_ok - n_err} other; frontier: {len(front)} ({which} AUCs)")
    if n_ok:
        if ref is None:
            ref = worst_point(F[finite])
        hv = hypervolume(F, ref)
        out.update(ref=np.asarray(ref), hypervolume=hv)
        head = f"  {'':1s} {'trial':14s} {'group':24s} " + " ".join(
            f"{o[:10]:>10s}" for o in objectives) + f" {'auc_sum':>8s}" + "".join(
            f" {c.rsplit('/', 1)[-1][:14]:>14s}" for c in columns)
        p(head)
        on_front = set(front.tolist())
        order = sorted(np.flatnonzero(finite), key=lambda i: (i not in on_front,
                                                              -float(np.sum(F[i]))))
        for i in order:
            mark = "*" if i in on_front else " "
            r = df.iloc[i]
            p(f"  {mark} {str(r['trial_id'])[:14]:14s} {str(r['group'])[:24]:24s} " +
              " ".join(f"{F[i, j]:10.4f}" for j in range(len(objectives))) +
              f" {float(np.sum(F[i])):8.4f}" + "".join(f" {_cell(r[c]):>14s}" for c in columns))
        p(f"  * = on the frontier.  hypervolume {hv:.6g} (reference: {ref_label} "
          f"{np.round(np.asarray(ref), 4).tolist()})")
    for _, r in df[df["status"] == "ERROR"].iterrows() if len(df) else []:
        p(f"  failed {r['trial_id']} ({r['group']}): {r['error']}")
    p(f"  experiment: {experiment_dir}")
    return out
