"""What the driver prints while a search runs, and Tune's per-trial files.

- one line per finished (or failed) trial, saying why when a scheduler stopped it early;
- a status line at most every ``PARETUNE_STATUS_EVERY`` seconds (default 30) while trials
  run: running / finished / failed counts, each running trial's epoch and latest AUC
  sum, elapsed time (what ``search submit`` streams back from a cluster);
- ``params.json`` / ``result.json`` / ``progress.csv`` per trial, with the config as
  trained (real loss weights, only the chosen family's parameters), not Tune's sampling
  variables.
"""
from __future__ import annotations

import os
import time

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

STATUS_EVERY_S = 30.0


def _minutes(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else \
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def config_summary(cfg: dict) -> str:
    """A short human summary of a sampled trial config."""
    parts = []
    model = cfg.get("model", {})
    loss = cfg.get("loss", {})
    fam = model.get("family", "?")
    kind = loss.get("kind", "?")
    parts.append(f"{fam}+{kind}")
    if isinstance(cfg.get("population"), list):     # a population trial: its size only
        return " ".join(parts + [f"population of {len(cfg['population'])}"])
    lr = cfg.get("optim", {}).get("lr")
    if isinstance(lr, (int, float)):
        parts.append(f"lr={lr:.3g}")
    w = cfg.get("weighting", {}).get("weights")
    if isinstance(w, dict) and "__simplex__" in w:
        from search.space import materialize
        w = materialize({"weighting": cfg["weighting"]}).get("weighting", {}).get("weights")
    if isinstance(w, dict) and w:
        parts.append("w=(" + ",".join(f"{float(v):.2f}" for v in w.values()) + ")")
    return " ".join(parts)


class TrainedConfigJson(JsonLoggerCallback):
    """Tune's JSON logger, writing ``params.json`` as the config is trained (and no pickle
    of it: nothing paretune reads back is a pickle)."""

    def update_config(self, trial, config):
        import json
        from pathlib import Path
        from .space import materialize
        self._trial_configs[trial] = config
        Path(trial.local_path, "params.json").write_text(
            json.dumps(materialize(config), indent=2, sort_keys=True, default=str))


def file_loggers() -> list:
    return [TrainedConfigJson(), CSVLoggerCallback()]


class ProgressCallback(Callback):
    def __init__(self, objectives, total=None, every: float | None = None):
        self.objectives = list(objectives)
        self.total = total
        self.done = 0
        self.failed = 0
        self.t0 = time.time()
        self.every = float(os.environ.get("PARETUNE_STATUS_EVERY", STATUS_EVERY_S)) \
            if every is None else every
        self.last_status = time.time()
        self.latest: dict[str, dict] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.latest[trial.trial_id] = result

    def on_step_end(self, iteration, trials, **info):
        now = time.time()
        if now - self.last_status < self.every:
            return
        self.last_status = now
        running = [t for t in trials if t.status == "RUNNING"]
        if not running:
            return
        parts = []
        for t in running[:8]:
            r = self.latest.get(t.trial_id)
            parts.append(f"{t.trial_id} " + (f"epoch {r.get('epoch', '?')} sum "
                                             f"{r.get('auc_sum', float('nan')):.4f}"
                                             if r else "starting"))
        more = f" (+{len(running) - 8} more)" if len(running) > 8 else ""
        pending = sum(t.status == "PENDING" for t in trials)
        print(f"[status {_minutes(now - self.t0)}] running {len(running)}, pending {pending}, "
              f"finished {self.done}, failed {self.failed} | " + "; ".join(parts) + more,
              flush=True)

    def _head(self, trial) -> str:
        n = f"{self.done + self.failed}/{self.total}" if self.total else \
            f"{self.done + self.failed}"
        return f"[trial {n}] {trial.trial_id} {config_summary(trial.config)}"

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        if r.get("error"):          # a deterministic failure recorded by the trial itself
            self.failed += 1
            print(f"{self._head(trial)} | FAILED: {str(r['error'])[:300]}", flush=True)
            return
        self.done += 1
        aucs = " ".join(f"{o} {r.get(f'auc/{o}', float('nan')):.4f}" for o in self.objectives)
        if "best_member" in r:
            aucs = f"best member m{r['best_member']}: {aucs}"
        early = f"; {r['stopped_reason']}" if r.get("stopped_early") else ""
        print(f"{self._head(trial)} | {aucs} | sum {r.get('auc_sum', float('nan')):.4f} "
              f"({r.get('epoch', '?')} epochs, {time.time() - self.t0:.0f} s{early})", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        reason = ""
        if getattr(trial, "error_file", None):
            try:
                with open(trial.error_file) as fh:
                    lines = [ln for ln in fh.read().strip().splitlines() if ln.strip()]
                reason = lines[-1][:300] if lines else ""
            except OSError:
                pass
        print(f"{self._head(trial)} | FAILED: {reason}", flush=True)
