"""Seeded simulator of an ME dataset whose truth is known.

The world
---------
Users have categorical features (age 7, gender 3, activity 4) and a numeric
``activity_score``; each request has a context ``hour`` (24) and ``candidates`` items.
For a row (user u, item i, request context h) and objective k, the label is

    y_k = 1[ c_k + pi_k(f) + m_k + eps_k > 0 ]

- ``pi_k(f)``: the user's personalized preference for objective k, a sum of per-value
  effects of the features f = (age, gender, activity, hour): users differ in what they do.
- ``m_k = Lambda_k (z_i + zeta_u)``: item latent z_i ~ N(0, I_L) and user taste
  zeta_u ~ N(0, s_u^2 I_L) seen through objective k's loadings Lambda_k. Objectives with
  similar loadings are aligned (click and long view; buy and comment), a shared
  "clickbait" factor with opposite signs makes others conflict (click vs buy).
- ``eps ~ N(0, R)``: label noise, correlated along the same factor structure.
- ``c_k``: solved so that P(y_k = 1) equals the requested positive rate (down to 1e-5).

The MP stage sees f exactly and m_k through noise, m_hat_k = m_k + delta_k with
delta_k ~ N(0, tau(activity)^2 var(m_k)): it is worse for low-activity users. Its score
is the exact posterior probability

    score_k = P(y_k = 1 | f, m_hat_k) = Phi((c_k + pi_k + m_hat_k / (1 + tau^2))
                                            / sqrt(var(m_k) tau^2 / (1 + tau^2) + 1)),

so scores are noisy but calibrated. Since m_hat_j carries information on m_k for
correlated objectives, and how much depends on the user's activity, a personalized
ensemble of the scores beats any fixed formula: the ME problem.

Truth recorded in meta.yaml: target and expected positive rates, the thresholds, the
exact label correlation matrix (Pearson phi = Spearman for binary labels), loadings,
noise levels.

Memory is flat in rows: rows are drawn in blocks of BLOCK_ROWS and written as Parquet
row groups of ``chunk_rows`` rows, so no more than a block and a row group are held at
once; the population (users, items) stops growing at its size for 10^7 rows. The data
depend on the seed and parameters only, not on ``chunk_rows``. The target is a folder or
a storage URI (s3://, gs://, file://; ``trainables.storage``); meta.yaml is written last,
so a dataset is complete when it has one.

Command line (progress on stderr; a bad parameter: one line, exit 2):
``python -m trainables.data.synthetic --out DIR|URI --rows N [--objectives a,b] [--seed S]``.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from scipy.special import ndtr
from scipy.stats import multivariate_normal

from ..storage import open_storage
from .synthetic_params import (MAX_IDS, MAX_OBJECTIVES, MAX_ROWS,  # noqa: F401 (re-exported)
                               MIN_EXPECTED_CLASS, MIN_ROWS, _check, check_classes, defaults,
                               fingerprint, min_rows, population)

# Rows drawn per block of random numbers (whole requests). The data depend on it, so it
# never changes; ``chunk_rows`` only sets the Parquet row groups.
BLOCK_ROWS = 500_000

N_FACTORS = 4   # engagement, social, commerce, clickbait
# Loadings of the built-in objectives on the four factors, and their default positive rate.
KNOWN = {
    "click":         ((0.9, 0.1, 0.0, 0.6), 0.40),
    "long_view":     ((0.8, 0.1, 0.2, -0.5), 0.30),
    "like":          ((0.5, 0.4, 0.0, 0.0), 0.02),
    "follow":        ((0.1, 0.8, 0.0, -0.2), 0.002),
    "comment":       ((0.2, 0.5, 0.6, 0.0), 0.005),
    "forward":       ((0.3, 0.5, 0.0, 0.0), 0.001),
    "buy":           ((0.1, 0.0, 0.9, -0.4), 0.01),
    "profile_enter": ((0.3, 0.7, 0.1, 0.0), 0.02),
}
CATEGORICAL = {"feat_age": 7, "feat_gender": 3, "feat_activity": 4, "feat_hour": 24}
NUMERIC = ["feat_activity_score"]
AGE_P = np.array([0.05, 0.2, 0.25, 0.2, 0.15, 0.1, 0.05])
GENDER_P = np.array([0.48, 0.48, 0.04])
ACTIVITY_P = np.array([0.3, 0.3, 0.25, 0.15])
HOUR_P = (lambda w: w / w.sum())(1.0 + 0.8 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi))
MP_NOISE = np.array([1.5, 1.0, 0.6, 0.35])      # tau by activity level: inactive users are noisier
USER_TASTE_SD = 0.6
NOISE_CORR = 0.5                                   # strength of the factor structure in eps


class _NoAliasDumper(yaml.SafeDumper):
    """Write repeated lists in full (no &id001 anchors) so meta.yaml reads plainly."""

    def ignore_aliases(self, data):
        return True


def _whiten(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows of x shifted and rotated to weighted mean 0 and weighted covariance I."""
    mean = w @ x
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc
    return xc @ np.linalg.inv(np.linalg.cholesky(cov)).T


class _World:
    """Everything fixed by the seed: effects, loadings, thresholds, users and items."""

    def __init__(self, objectives, rates, seed, n_users, n_items):
        rng = np.random.default_rng(seed)
        k = len(objectives)
        self.objectives = objectives
        lam = np.zeros((k, N_FACTORS))
        for j, o in enumerate(objectives):
            lam[j] = KNOWN[o][0] if o in KNOWN else rng.normal(0, 0.5, N_FACTORS)
        self.lam = lam
        self.var_m = (lam ** 2).sum(1) * (1 + USER_TASTE_SD ** 2)
        # feature effects pi_k(f)
        self.w_age = rng.normal(0, 0.3, (7, k))
        self.w_gender = rng.normal(0, 0.2, (3, k))
        self.w_act = rng.normal(0, 0.3, (4, k)) + np.linspace(-0.3, 0.3, 4)[:, None]
        phase = rng.uniform(0, 2 * np.pi, k)
        self.w_hour = 0.25 * np.sin(np.arange(24)[:, None] / 24 * 2 * np.pi + phase)
        # label noise correlation R: unit diagonal, factor structure off the diagonal
        g = lam @ lam.T
        d = np.sqrt(np.diag(g)) + 1e-12
        self.R = (1 - NOISE_CORR) * np.eye(k) + NOISE_CORR * (g / np.outer(d, d))
        self.R_chol = np.linalg.cholesky(self.R + 1e-9 * np.eye(k))
        self.total_sd = np.sqrt(self.var_m + 1.0)
        # users and items
        self.n_users, self.n_items = n_users, n_items
        self.u_age = rng.choice(7, n_users, p=AGE_P)
        self.u_gender = rng.choice(3, n_users, p=GENDER_P)
        self.u_act = rng.choice(4, n_users, p=ACTIVITY_P)
        self.u_act_score = self.u_act + rng.normal(0, 0.5, n_users)
        # Zipf-like item popularity; latents whitened under the weights rows are drawn
        # with, so the Gaussian moments the truth assumes hold for this finite world.
        pop = 1.0 / np.arange(1, n_items + 1) ** 0.6
        self.i_pop = pop / pop.sum()
        self.u_taste = USER_TASTE_SD * _whiten(rng.normal(0, 1, (n_users, N_FACTORS)),
                                               np.full(n_users, 1.0 / n_users))
        self.i_latent = _whiten(rng.normal(0, 1.0, (n_items, N_FACTORS)), self.i_pop)
        self.rates = np.asarray(rates, dtype=np.float64)
        self.c = self._solve_thresholds()

    # -- exact marginals over the finite feature distribution -----------------------
    def _combos(self):
        """All (age, gender, activity, hour) combinations with their probabilities.

        Requests draw users uniformly, so the realized users' feature frequencies (not
        the population's) are what the rows follow.
        """
        code = (self.u_age * 3 + self.u_gender) * 4 + self.u_act
        freq = np.bincount(code, minlength=7 * 3 * 4) / self.n_users
        a, g, t, h = np.meshgrid(np.arange(7), np.arange(3), np.arange(4), np.arange(24),
                                 indexing="ij")
        a, g, t, h = a.ravel(), g.ravel(), t.ravel(), h.ravel()
        p = freq[(a * 3 + g) * 4 + t] * HOUR_P[h]
        return self.pi(a, g, t, h), p

    def pi(self, age, gender, act, hour):
        return self.w_age[age] + self.w_gender[gender] + self.w_act[act] + self.w_hour[hour]

    def _solve_thresholds(self):
        pis, p = self._combos()
        c = np.zeros(len(self.objectives))
        for k, rate in enumerate(self.rates):
            lo, hi = -60.0, 60.0
            for _ in range(200):
                mid = (lo + hi) / 2
                got = p @ ndtr((mid + pis[:, k]) / self.total_sd[k])
                lo, hi = (lo, mid) if got > rate else (mid, hi)
            c[k] = (lo + hi) / 2
        return c

    def truth(self) -> dict:
        pis, p = self._combos()
        k = len(self.objectives)
        a = (self.c + pis) / self.total_sd                       # standardized margins
        rate = p @ ndtr(a)
        cov = (self.lam @ self.lam.T) * (1 + USER_TASTE_SD ** 2) + self.R
        corr = cov / np.outer(self.total_sd, self.total_sd)
        phi = np.eye(k)
        for i in range(k):
            for j in range(i + 1, k):
                mvn = multivariate_normal(mean=[0, 0], cov=[[1, corr[i, j]], [corr[i, j], 1]])
                # P(y_i = 1, y_j = 1) = P(Z_i < a_i, Z_j < a_j) by symmetry
                p11 = float(p @ np.atleast_1d(mvn.cdf(np.stack([a[:, i], a[:, j]], 1))))
                phi[i, j] = phi[j, i] = (p11 - rate[i] * rate[j]) / math.sqrt(
                    rate[i] * (1 - rate[i]) * rate[j] * (1 - rate[j]))
        return {
            "positive_rates_target": {o: float(r) for o, r in zip(self.objectives, self.rates)},
            "positive_rates_expected": {o: float(r) for o, r in zip(self.objectives, rate)},
            "thresholds": {o: float(v) for o, v in zip(self.objectives, self.c)},
            "label_correlation": [[round(float(v), 6) for v in row] for row in phi],
            "latent_correlation": [[round(float(v), 6) for v in row] for row in corr],
            "loadings": {o: [float(v) for v in row] for o, row in zip(self.objectives, self.lam)},
            "mp_noise_by_activity": [float(v) for v in MP_NOISE],
            "note": "labels y_k = 1[c_k + pi_k(f) + m_k + eps_k > 0]; scores are the exact "
                    "posterior P(y_k | f, noisy m_k); label_correlation is the exact "
                    "Pearson (= Spearman) correlation of the labels",
        }

    # -- rows --------------------------------------------------------------------------
    def rows(self, rng, n_requests, candidates, first_request):
        k = len(self.objectives)
        n = n_requests * candidates
        users = rng.integers(0, self.n_users, n_requests)
        hours = rng.choice(24, n_requests, p=HOUR_P)
        u = np.repeat(users, candidates)
        h = np.repeat(hours, candidates)
        items = rng.choice(self.n_items, n, p=self.i_pop)
        act = self.u_act[u]
        pi = self.pi(self.u_age[u], self.u_gender[u], act, h)
        m = (self.i_latent[items] + self.u_taste[u]) @ self.lam.T           # (n, K)
        eps = rng.standard_normal((n, k)) @ self.R_chol.T
        labels = (self.c + pi + m + eps > 0).astype(np.int8)
        tau2 = (MP_NOISE[act] ** 2)[:, None]
        m_hat = m + rng.standard_normal((n, k)) * np.sqrt(tau2 * self.var_m)
        post_mean = m_hat / (1 + tau2)
        post_var = self.var_m * tau2 / (1 + tau2)
        scores = ndtr((self.c + pi + post_mean) / np.sqrt(post_var + 1.0)).astype(np.float32)
        cols = {"request_id": np.repeat(np.arange(first_request, first_request + n_requests,
                                                  dtype=np.int64), candidates),
                "user_id": u.astype(np.int64), "item_id": items.astype(np.int64)}
        for j, o in enumerate(self.objectives):
            cols[f"score_{o}"] = scores[:, j]
        for j, o in enumerate(self.objectives):
            cols[f"label_{o}"] = labels[:, j]
        cols.update({"feat_age": self.u_age[u].astype(np.int64),
                     "feat_gender": self.u_gender[u].astype(np.int64),
                     "feat_activity": act.astype(np.int64), "feat_hour": h.astype(np.int64),
                     "feat_activity_score": self.u_act_score[u].astype(np.float32)})
        return cols


class _RowGroups:
    """A Parquet file written in row groups of ``group_rows`` rows, holding at most one
    group plus the last block added; ``peak_rows`` records the most rows it held."""

    def __init__(self, store, name: str, group_rows: int):
        self.where, self.fs, self.group_rows = store.join(name).path, store.fs, group_rows
        self.pending, self.rows, self.peak_rows, self.writer = [], 0, 0, None

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        self.peak_rows = max(self.peak_rows, self.rows)
        while self.rows >= self.group_rows:
            self._flush(self.group_rows)

    def _flush(self, k: int) -> None:
        table = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.where, table.schema, filesystem=self.fs)
        self.writer.write_table(table.slice(0, k), row_group_size=k)
        rest = table.slice(k)
        self.pending, self.rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        if self.rows:
            self._flush(self.rows)
        if self.writer is not None:
            self.writer.close()


class _Progress:
    """A line every 5 s on stderr (one per line in a log file, rewritten in a terminal)."""

    def __init__(self, total: int, show: bool):
        self.total, self.show, self.tty = total, show, sys.stderr.isatty()
        self.t0 = self.shown = time.time()
        self.done = 0

    def add(self, rows: int) -> None:
        self.done += rows
        if self.show and (self.tty or time.time() - self.shown >= 5 or self.done >= self.total):
            self.shown = time.time()
            dt = max(self.shown - self.t0, 1e-9)
            print(("\r" if self.tty else "") + f"[synthetic] {self.done:,}/{self.total:,} rows "
                  f"({dt:.1f} s, {self.done / dt:,.0f} rows/s)", end="" if self.tty else "\n",
                  file=sys.stderr, flush=True)


def generate(out_dir, progress: bool = True, **params):
    """Write a synthetic dataset (train/valid/test Parquet + meta.yaml) to ``out_dir``, a
    folder or a storage URI; returns the folder (a Path) or the URI."""
    p = _check(params)
    store = open_storage(out_dir)
    objs, rows, cand = p["objectives"], p["rows"], p["candidates"]
    n_users, n_items = population(p)
    world = _World(objs, [p["positive_rates"][o] for o in objs], p["seed"], n_users, n_items)
    fr = np.asarray(p["split_fractions"], dtype=np.float64)
    split_rows = np.floor(rows * fr / fr.sum()).astype(int)
    rng = np.random.default_rng([p["seed"], 1])
    block = max(1, BLOCK_ROWS // cand)                     # requests per block
    group_rows = max(1, p["chunk_rows"] // cand) * cand    # whole requests per row group
    store.makedirs()
    request = 0
    splits = {}
    bar = _Progress(rows, progress)
    for name, n_split in zip(("train", "valid", "test"), split_rows):
        n_req_total = max(1, int(n_split) // cand)
        out = _RowGroups(store, f"{name}.parquet", group_rows)
        written = 0
        while written < n_req_total:
            n_req = min(block, n_req_total - written)
            out.add(pa.table(world.rows(rng, n_req, cand, request)))
            request += n_req
            written += n_req
            bar.add(n_req * cand)
        out.close()
        splits[name] = {"file": f"{name}.parquet", "rows": n_req_total * cand}
    if progress and bar.tty:
        print(file=sys.stderr)
    meta = {
        "name": f"synthetic-{fingerprint(params)}",
        "objectives": objs,
        "splits": splits,
        "categorical": dict(CATEGORICAL),
        "numeric": list(NUMERIC),
        "source": {"generator": "trainables.data.synthetic", "params": p,
                   "users": n_users, "items": n_items},
        "truth": world.truth(),
    }
    store.write_text("meta.yaml", yaml.dump(meta, Dumper=_NoAliasDumper, sort_keys=False))
    return store.local_path if store.local else store.uri


def _flag_names(message: str) -> str:
    """A parameter error as the command line's flags name it (data.chunk_rows -> --chunk-rows)."""
    flags = {"positive_rates": "rates"}
    return re.sub(r"^data\.(\w+)",
                  lambda m: "--" + flags.get(m[1], m[1]).replace("_", "-"), message)


def main(argv=None) -> int:
    d = defaults()
    ap = argparse.ArgumentParser(prog="python -m trainables.data.synthetic",
                                 description="Write a seeded synthetic ME dataset (any size, "
                                             "in flat memory) to a folder or a storage URI.")
    ap.add_argument("--out", required=True,
                    help="output folder or URI (s3://bucket/path, gs://..., file:///...)")
    ap.add_argument("--rows", type=int, default=d["rows"], help=f"default {d['rows']:,}")
    ap.add_argument("--objectives", default=",".join(d["objectives"]),
                    help=f"comma-separated; built-in: {', '.join(KNOWN)} (others get random "
                         f"loadings)")
    ap.add_argument("--rates", default="", help="e.g. buy=1e-4,follow=1e-5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=d["candidates"])
    ap.add_argument("--users", type=int, default=None, help="default: from rows (capped)")
    ap.add_argument("--items", type=int, default=None, help="default: from rows (capped)")
    ap.add_argument("--chunk-rows", type=int, default=d["chunk_rows"],
                    help=f"rows per Parquet row group (default {d['chunk_rows']:,}); "
                         f"the data do not depend on it")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    a = ap.parse_args(argv)
    rates = {}
    for part in filter(None, a.rates.split(",")):
        name, _, value = part.partition("=")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            print(f"error: --rates: {part!r} is not name=number", file=sys.stderr)
            return 2
    t0 = time.time()
    try:
        out = generate(a.out, progress=not a.quiet, rows=a.rows,
                       objectives=a.objectives.split(","), seed=a.seed,
                       positive_rates=rates or None, candidates=a.candidates, users=a.users,
                       items=a.items, chunk_rows=a.chunk_rows)
    except ValueError as e:          # bad parameters, an unsupported URI (StorageError)
        print(f"error: {_flag_names(str(e))}".splitlines()[0], file=sys.stderr)
        return 2
    except OSError as e:             # the target refused a write (permissions, bucket, disk)
        print(f"error: writing {a.out}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    dt = max(time.time() - t0, 1e-9)
    if not a.quiet:
        print(f"[synthetic] wrote {a.rows:,} rows in {dt:.1f} s ({a.rows / dt:,.0f} rows/s) "
              f"to {out}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
