"""The noise of a frontier (docs/DESIGN.md, "Frontier noise").

An AUC measured on P positives and N negatives has a standard error (Hanley and McNeil
1982, "The meaning and use of the area under a ROC curve", eq. 2 with their exponential
approximations Q1 = A/(2-A), Q2 = 2A^2/(1+A)); an objective with few validation positives
cannot tell neighbouring frontier points apart. More seeds do not shrink it: it is the
validation split's own noise. The approximations are exact for exponential score
distributions; for binormal scores they agree at moderate AUCs and overstate the SE at
high ones (by about a third at AUC 0.9, measured in tests/test_noise.py's setting).

    auc_se(auc, positives, negatives) -> standard errors, element-wise (NaN if undefined)
    within_noise(F, se, z=1.0) -> per row True / False / None (undecidable: SE unknown)
    noise_columns(F, objectives, counts, ref, z=1.0) -> DataFrame: n_pos/<obj>,
        n_neg/<obj>, se/<obj>, within_noise, hv_contribution (one row per row of F)
    add_noise(df, objectives, F, ref, z, experiment_dir) -> (df with those columns, note)

"Within noise of the frontier". Row j beats row i beyond noise when it is better on every
objective by more than z standard errors of the difference:

    F[j, k] - F[i, k] > z * sqrt(se[i, k]^2 + se[j, k]^2)   for every objective k.

Row i is within noise when no finished row beats it beyond noise. Frontier rows always
are (nothing dominates them); with z = 0 the within-noise rows are the weakly
non-dominated ones. The two AUCs share the validation split, which correlates their
errors and makes the true SE of the difference smaller than this independent-errors one:
the rule errs on the side of calling points indistinguishable. A pair whose margin is
unknown (a NaN SE) decides nothing; a row is None when only such pairs could beat it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .frontier import _as_matrix, hypervolume_contributions


def auc_se(auc, positives, negatives) -> np.ndarray:
    """Hanley-McNeil standard error of AUCs, broadcast over the three arguments; NaN
    where the AUC is not in [0, 1] or a class has no row."""
    a, p, n = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                    for v in (auc, positives, negatives)))
    ok = np.isfinite(a) & np.isfinite(p) & np.isfinite(n) & (p >= 1) & (n >= 1) & \
        (a >= 0) & (a <= 1)
    a = np.where(ok, a, 0.5)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n)
    return np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)


def within_noise(F, se, z: float = 1.0) -> np.ndarray:
    """For each row of ``F`` (n, m AUCs to maximize): True if no finished row beats it on
    every objective by more than ``z * sqrt(se_i^2 + se_j^2)``, False if one does, None
    if undecidable (unknown SEs) or the row did not finish. An object array."""
    F, S = _as_matrix(F), _as_matrix(se)
    if S.shape != F.shape:
        raise ValueError(f"se has shape {S.shape}, F has {F.shape}: one SE per AUC")
    z = float(z)
    if not np.isfinite(z) or z < 0:
        raise ValueError(f"z (--noise-z) must be a finite number >= 0, got {z}")
    out = np.full(len(F), None, dtype=object)
    rows = np.flatnonzero(np.isfinite(F).all(axis=1))
    G, T = F[rows], S[rows]
    for i, row in enumerate(rows):
        gain = G - G[i]                                # how much each row beats row i
        margin = z * np.sqrt(T * T + T[i] * T[i])      # NaN where an SE is unknown
        with np.errstate(invalid="ignore"):
            beats = (gain > margin).all(axis=1)        # NaN compares False: never proven
            cannot = ((gain <= 0) | (gain <= margin)).any(axis=1)
        out[row] = False if beats.any() else True if cannot.all() else None
    return out


def noise_columns(F, objectives, counts, ref, z: float = 1.0) -> pd.DataFrame:
    """The frontier-noise columns for the rows of ``F``; ``counts`` (n, m, 2) holds each
    AUC's positives and negatives (NaN: unknown), ``ref`` the hypervolume's reference
    point (None: no finished row, contributions NaN)."""
    F = _as_matrix(F)
    counts = np.asarray(counts, dtype=np.float64).reshape(len(F), F.shape[1], 2)
    se = auc_se(F, counts[..., 0], counts[..., 1])
    cols: dict = {}
    for k, o in enumerate(objectives):      # whole numbers, empty where unknown
        cols[f"n_pos/{o}"] = pd.array(counts[:, k, 0], dtype="Float64").astype("Int64")
        cols[f"n_neg/{o}"] = pd.array(counts[:, k, 1], dtype="Float64").astype("Int64")
    for k, o in enumerate(objectives):
        cols[f"se/{o}"] = se[:, k]
    cols["within_noise"] = pd.array(within_noise(F, se, z).tolist(), dtype="boolean")
    cols["hv_contribution"] = (np.full(len(F), np.nan) if ref is None
                               else hypervolume_contributions(F, ref))
    return pd.DataFrame(cols)


def add_noise(df, objectives, F, ref, z: float = 1.0, experiment_dir=None):
    """``df`` with :func:`noise_columns` appended (same index, same attrs) and a note
    saying where the label counts came from, or why the SE columns are empty."""
    from .label_counts import eval_counts
    counts, source = eval_counts(df, objectives, experiment_dir)
    extra = noise_columns(F, objectives, counts, ref, z)
    extra.index = df.index
    out = pd.concat([df.drop(columns=[c for c in extra.columns if c in df.columns]), extra],
                    axis=1)
    out.attrs.update(df.attrs)
    finished = np.isfinite(_as_matrix(F)).all(axis=1)
    missing = int((~np.isfinite(counts[finished]).all(axis=(1, 2))).sum())
    if missing:
        note = (f"AUC standard errors unknown for {missing} of {int(finished.sum())} finished "
                f"rows (se/* columns empty, within_noise empty where undecidable): validation "
                f"label counts from {source}. Run `analysis frontier` where the dataset is "
                f"(same path, or the same $PARETUNE_CACHE for synthetic data)")
    else:
        note = f"label counts from {source}"
    out.attrs["noise"] = {"z": float(z), "note": note, "se": "Hanley & McNeil 1982"}
    return out, note
