"""Requests from KuaiRand's exposures: the logs hold mostly single-item (user, time)
groups, so a request is a user's exposures within a time window on one day."""
from __future__ import annotations

import numpy as np


def assign_requests(user_id, day, time_ms, window_s: float) -> np.ndarray:
    """Request ids (int64, 0..R-1) grouping a user's exposures within a time window.

    Exposures are ordered by (day, user, time). A request starts at a user's exposure and
    takes every later exposure of that user on the same day whose time_ms is at most
    ``window_s`` seconds after that first one; the next exposure starts a new request.
    Requests never cross days, so a split by day never cuts one.
    """
    if not window_s > 0:
        raise ValueError(f"request window must be > 0 seconds, got {window_s!r}")
    u = np.asarray(user_id, dtype=np.int64)
    d = np.asarray(day).astype("datetime64[D]").astype(np.int64)
    t = np.asarray(time_ms, dtype=np.int64)
    order = np.lexsort((t, u, d))
    w = int(round(window_s * 1000))
    rid_sorted = np.empty(len(u), np.int64)
    r, start, prev_u, prev_d = -1, 0, None, None
    for i, (uu, dd, tt) in enumerate(zip(u[order].tolist(), d[order].tolist(),
                                         t[order].tolist())):
        if uu != prev_u or dd != prev_d or tt - start > w:
            r += 1
            start, prev_u, prev_d = tt, uu, dd
        rid_sorted[i] = r
    out = np.empty_like(rid_sorted)
    out[order] = rid_sorted
    return out


def request_sizes(request_id) -> dict:
    """Summary of the request-size distribution (for logs and meta.yaml)."""
    sizes = np.bincount(np.unique(np.asarray(request_id), return_inverse=True)[1])
    hist = np.bincount(np.minimum(sizes, 10), minlength=11)[1:]
    return {"requests": int(len(sizes)), "rows": int(sizes.sum()),
            "mean": round(float(sizes.mean()), 3),
            "single_share": round(float((sizes == 1).mean()), 4),
            "rows_in_multi_share": round(float(sizes[sizes > 1].sum() / sizes.sum()), 4),
            "p50": int(np.percentile(sizes, 50)), "p90": int(np.percentile(sizes, 90)),
            "p99": int(np.percentile(sizes, 99)), "max": int(sizes.max()),
            "histogram": {(f"{k}" if k < 10 else "10+"): int(v)
                          for k, v in zip(range(1, 11), hist)}}
