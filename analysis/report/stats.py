"""Small statistics the fidelity report needs: seed mean/std, the test set's own AUC
error (Hanley & McNeil 1982) and Pearson's r with its p-value."""
from __future__ import annotations

import math

import numpy as np


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value) of the finite values, NaN if none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def auc_se(auc: float, positives: int, negatives: int) -> float:
    """Standard error of an AUC measured on ``positives`` x ``negatives`` rows (Hanley and
    McNeil's formula). It is the noise of the test set itself, which more seeds do not
    reduce: an objective with a dozen test positives cannot tell 0.70 from 0.75. One
    formula for the report and the frontier: :func:`analysis.noise.auc_se`."""
    from analysis.noise import auc_se as se
    return float(se(auc, positives, negatives))


def pearson(x, y) -> tuple[float, float]:
    """Pearson's r and its two-sided p-value (scipy), NaN when undefined."""
    from scipy import stats
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan
    r = stats.pearsonr(x[ok], y[ok])
    return float(r.statistic), float(r.pvalue)


def fmt(mean: float, std: float | None = None, digits: int = 4) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
