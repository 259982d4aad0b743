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

Rows are written in chunks, so 10^7+ rows fit in a few hundred MB of memory.
Command line: ``python -m trainables.data.synthetic --out DIR --rows N ...``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from scipy.special import ndtr
from scipy.stats import multivariate_normal

from .synthetic_params import (MAX_IDS, MAX_OBJECTIVES, MAX_ROWS,  # noqa: F401 (re-exported)
                               MIN_EXPECTED_CLASS, MIN_ROWS, _check, check_classes, defaults,
                               fingerprint, min_rows)

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


def generate(out_dir, progress: bool = True, **params) -> Path:
    """Write a synthetic dataset (train/valid/test Parquet + meta.yaml) to ``out_dir``."""
    p = _check(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    objs, rows, cand = p["objectives"], p["rows"], p["candidates"]
    n_users = p["users"] or max(200, rows // 40)
    n_items = p["items"] or max(500, rows // 10)
    world = _World(objs, [p["positive_rates"][o] for o in objs], p["seed"], n_users, n_items)
    fr = np.asarray(p["split_fractions"], dtype=np.float64)
    split_rows = np.floor(rows * fr / fr.sum()).astype(int)
    rng = np.random.default_rng([p["seed"], 1])
    request = 0
    splits = {}
    t0 = shown = time.time()
    tty = sys.stderr.isatty()
    done = 0
    for name, n_split in zip(("train", "valid", "test"), split_rows):
        n_req_total = max(1, int(n_split) // cand)
        writer = None
        per_chunk = max(1, p["chunk_rows"] // cand)
        written = 0
        while written < n_req_total:
            n_req = min(per_chunk, n_req_total - written)
            cols = world.rows(rng, n_req, cand, request)
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(out / f"{name}.parquet", table.schema)
            writer.write_table(table)
            request += n_req
            written += n_req
            done += n_req * cand
            if progress and (tty or time.time() - shown >= 5 or done >= rows):
                # one line each when logs are a file (job logs), rewritten in a terminal
                shown = time.time()
                print(("\r" if tty else "") + f"[synthetic] {done:,}/{rows:,} rows "
                      f"({time.time() - t0:.1f} s)", end="" if tty else "\n",
                      file=sys.stderr, flush=True)
        writer.close()
        splits[name] = {"file": f"{name}.parquet", "rows": n_req_total * cand}
    if progress and tty:
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
    (out / "meta.yaml").write_text(yaml.dump(meta, Dumper=_NoAliasDumper, sort_keys=False))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainables.data.synthetic",
                                 description="Write a seeded synthetic ME dataset.")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--rows", type=int, default=defaults()["rows"])
    ap.add_argument("--objectives", default=",".join(defaults()["objectives"]),
                    help=f"comma-separated; built-in: {', '.join(KNOWN)} (others get random "
                         f"loadings)")
    ap.add_argument("--rates", default="", help="e.g. buy=1e-4,follow=1e-5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=defaults()["candidates"])
    ap.add_argument("--chunk-rows", type=int, default=defaults()["chunk_rows"])
    a = ap.parse_args(argv)
    rates = {}
    for part in filter(None, a.rates.split(",")):
        name, _, value = part.partition("=")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            ap.error(f"--rates: {part!r} is not name=number")
    try:
        out = generate(a.out, rows=a.rows, objectives=a.objectives.split(","), seed=a.seed,
                       positive_rates=rates or None, candidates=a.candidates,
                       chunk_rows=a.chunk_rows)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
