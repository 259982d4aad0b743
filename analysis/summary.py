"""The table printed at the end of a search and by ``analysis frontier``; with the
frontier-noise columns of :func:`analysis.noise.add_noise` it also marks the rows within
noise of the frontier, each frontier row's share of the hypervolume, and the AUC standard
error of every objective."""
from __future__ import annotations

import sys

import numpy as np

from .frontier import hypervolume, pareto_front, worst_point
from .label_counts import fmt_count
from .results import auc_matrix


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)[:14]


def print_summary(df, objectives, experiment_dir, file=None, which="point",
                  ref=None, ref_label="worst value per objective", columns=()) -> dict:
    """Print trials (frontier first, then those within noise of it, then by AUC sum),
    failures with reasons, and the hypervolume; return {"front": indices, "ref": ref, "hypervolume": hv}. ``columns``:
    extra results columns to show (e.g. ``node``, ``host``, ``config/optim.lr``)."""
    noisy = "within_noise" in df.columns
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"--columns: unknown column(s) {', '.join(missing)}; e.g. node, host, "
                         f"epochs, time_s, " + ", ".join(c for c in df.columns
                                                         if c.startswith("config/"))[:600])
    F = auc_matrix(df, objectives, which)
    front = pareto_front(F) if len(F) else np.zeros(0, int)
    finite = np.isfinite(F).all(axis=1) if len(F) else np.zeros(0, bool)
    out = {"front": front, "ref": None, "hypervolume": float("nan")}
    file = sys.stdout if file is None else file     # at call time: tests swap sys.stdout
    p = lambda *a: print(*a, file=file)  # noqa: E731
    n_ok, n_err = int(finite.sum()), int((df["status"] == "ERROR").sum()) if len(df) else 0
    members = "member" in df and bool((df["member"] >= 0).any()) if len(df) else False
    what = "models (population members count one each)" if members else "trials"
    if len(df) and "point" in df and bool((df["point"] >= 0).any()):   # conditioned trials
        what = "points (each grid point of a conditioned trial counts one)"
    near = _near(df, front) if noisy else []
    p(f"\n{len(df)} {what}: {n_ok} finished, {n_err} failed, "
      f"{len(df) - n_ok - n_err} other; frontier: {len(front)} ({which} AUCs)" +
      (f", {len(near)} more within noise" if noisy else ""))
    if n_ok:
        if ref is None:
            ref = worst_point(F[finite])
        hv = hypervolume(F, ref)
        out.update(ref=np.asarray(ref), hypervolume=hv)
        head = f"  {'':1s} {'trial':14s} {'group':24s} " + " ".join(
            f"{o[:10]:>10s}" for o in objectives) + f" {'auc_sum':>8s}" + (
            f" {'hv_share':>8s}" if noisy else "") + "".join(
            f" {c.rsplit('/', 1)[-1][:14]:>14s}" for c in columns)
        p(head)
        on_front = set(front.tolist())
        close = set(near)           # frontier, then within noise, then the rest
        order = sorted(np.flatnonzero(finite), key=lambda i: (i not in on_front, i not in close,
                                                              -float(np.sum(F[i]))))
        for i in order:
            mark = "*" if i in on_front else "~" if i in close else " "
            r = df.iloc[i]
            p(f"  {mark} {str(r['trial_id'])[:14]:14s} {str(r['group'])[:24]:24s} " +
              " ".join(f"{F[i, j]:10.4f}" for j in range(len(objectives))) +
              f" {float(np.sum(F[i])):8.4f}" + (f" {_share(r, hv, i in on_front):>8s}"
                                                 if noisy else "") +
              "".join(f" {_cell(r[c]):>14s}" for c in columns))
        p(f"  * = on the frontier.  hypervolume {hv:.6g} (reference: {ref_label} "
          f"{np.round(np.asarray(ref), 4).tolist()})")
        if noisy:
            _print_noise(df, objectives, front, p)
    for _, r in df[df["status"] == "ERROR"].iterrows() if len(df) else []:
        p(f"  failed {r['trial_id']} ({r['group']}): {r['error']}")
    p(f"  experiment: {experiment_dir}")
    return out


def _near(df, front) -> list[int]:
    """Rows within noise of the frontier but not on it."""
    on = set(np.asarray(front).tolist())
    flags = df["within_noise"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return [i for i in np.flatnonzero(flags).tolist() if i not in on]


def _share(r, hv: float, on_front: bool) -> str:
    """A frontier row's exclusive hypervolume contribution as a share of the whole."""
    c = r.get("hv_contribution")
    if not on_front or c is None or not np.isfinite(c) or not hv > 0:
        return ""
    return f"{100 * c / hv:.1f}%"


def _print_noise(df, objectives, front, p) -> None:
    meta = df.attrs.get("noise") or {}
    z = meta.get("z", 1.0)
    p(f"  ~ = within noise of the frontier: no trial beats it on every objective by more "
      f"than\n      {z:g} x the SE of the difference, sqrt(se_a^2 + se_b^2).  hv_share: the "
      f"hypervolume only that point adds.")
    rows = df.iloc[np.asarray(front, dtype=int)] if len(front) else df.iloc[:0]
    parts = []
    for o in objectives:
        se = rows[f"se/{o}"].to_numpy(dtype=float) if f"se/{o}" in rows else np.array([])
        se = se[np.isfinite(se)]
        if not len(se):
            parts.append(f"{o} ?")
            continue
        band = f"{se.min():.4f}" if np.isclose(se.min(), se.max(), rtol=0.05, atol=5e-5) else \
            f"{se.min():.4f}-{se.max():.4f}"
        pos = rows[f"n_pos/{o}"].dropna().unique()
        counted = f" ({fmt_count(pos[0])} pos)" if len(pos) == 1 else ""
        parts.append(f"{o} ±{band}{counted}")
    p(f"  AUC SE on the frontier (Hanley & McNeil 1982): {', '.join(parts)}")
    p(f"  ({meta.get('note', 'label counts: unknown')})")
