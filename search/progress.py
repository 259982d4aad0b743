"""One progress line per finished (or failed) trial, printed by the driver."""
from __future__ import annotations

import time

from ray.tune import Callback


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


class ProgressCallback(Callback):
    def __init__(self, objectives, total=None):
        self.objectives = list(objectives)
        self.total = total
        self.done = 0
        self.failed = 0
        self.t0 = time.time()

    def _head(self, trial) -> str:
        n = f"{self.done + self.failed}/{self.total}" if self.total else \
            f"{self.done + self.failed}"
        return f"[trial {n}] {trial.trial_id} {config_summary(trial.config)}"

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        r = trial.last_result or {}
        aucs = " ".join(f"{o} {r.get(f'auc/{o}', float('nan')):.4f}" for o in self.objectives)
        if "best_member" in r:
            aucs = f"best member m{r['best_member']}: {aucs}"
        print(f"{self._head(trial)} | {aucs} | sum {r.get('auc_sum', float('nan')):.4f} "
              f"({r.get('epoch', '?')} epochs, {time.time() - self.t0:.0f} s)", flush=True)

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
