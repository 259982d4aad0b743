"""Training the MP model: per-task BCE, task weights from the weighting registry, Adam,
early stop.

``fit`` trains on ``train`` and, after every epoch, measures each objective's exact AUC
on ``valid``; it stops when their mean has not improved for ``patience`` epochs and
restores the best epoch's parameters. While training, each categorical code is replaced
by 0 ("unknown") with probability ``unknown_p``, so the unknown rows the scored days
need (new users, videos, rare values) are trained too.

Task weights: any weighting of the project's registry (``trainables.weighting``) that can
weight a multi-task model (``Weighting.multi_task_issue``; built by
:func:`trainables.mp.config.task_weighting`), called each step exactly as the ME loop
calls it, with a :class:`~trainables.weighting.StepContext` whose ``scores`` are the (n, K)
logits and whose ``inputs`` are (cat, num): ``static`` (fixed weights per objective) or
``pe_ltr`` with ``gradients: shared`` (KKT weights from the per-task gradients of the
model's ``shared_parameters()``, recomputed every ``every`` steps).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..metrics import auc_per_objective
from ..weighting import StepContext
from .config import check_settings, is_int, is_number, option


@dataclass
class MPData:
    """Model inputs and labels of a set of rows."""

    cat: torch.Tensor        # (n, F) int64
    num: torch.Tensor        # (n, N) float32
    labels: torch.Tensor     # (n, K) float32

    def __len__(self) -> int:
        return self.cat.shape[0]

    @classmethod
    def from_numpy(cls, cat, num, labels) -> "MPData":
        return cls(torch.as_tensor(np.ascontiguousarray(cat), dtype=torch.long),
                   torch.as_tensor(np.ascontiguousarray(num), dtype=torch.float32),
                   torch.as_tensor(np.ascontiguousarray(labels), dtype=torch.float32))


@dataclass
class TrainConfig:
    """The ``train`` section of an MP stage config: each key's default, check and what is
    allowed, declared once (:func:`trainables.mp.config.option`) and read by the config
    reader and :meth:`check`."""

    epochs: int = option(10, lambda v: is_int(v) and v >= 1, "an integer >= 1")
    batch_size: int = option(1024, lambda v: is_int(v) and v >= 1, "an integer >= 1")
    lr: float = option(1e-3, lambda v: is_number(v) and v > 0, "a number > 0")
    weight_decay: float = option(0.0, lambda v: is_number(v) and v >= 0, "a number >= 0")
    patience: int = option(2, lambda v: is_int(v) and v >= 1,
                           "an integer >= 1 (epochs without a better validation mean AUC "
                           "before stopping)")
    unknown_p: float = option(0.02, lambda v: is_number(v) and 0 <= v < 1,
                              "a number in [0, 1) (the share of codes set to unknown while "
                              "training)")
    seed: int = option(0, lambda v: is_int(v) and v >= 0, "an integer >= 0")

    def check(self) -> "TrainConfig":
        check_settings(self, "train")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- loop
class _Bar:
    """tqdm when installed, else a plain bar printed on stderr."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.total, self.desc, self.enabled, self.n = total, desc, enabled, 0
        self.t0 = time.time()
        self.tq = None
        if enabled:
            try:
                from tqdm import tqdm
                self.tq = tqdm(total=total, desc=desc, file=sys.stderr, leave=True,
                               dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int, **postfix):
        self.n += n
        if not self.enabled:
            return
        if self.tq is not None:
            self.tq.update(n)
            self.tq.set_postfix(postfix, refresh=False)
            return
        width = 30
        done = int(width * self.n / max(self.total, 1))
        info = " ".join(f"{k}={v}" for k, v in postfix.items())
        print(f"\r{self.desc} [{'#' * done}{'.' * (width - done)}] {self.n}/{self.total} "
              f"{time.time() - self.t0:.0f}s {info}", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.tq is not None:
            self.tq.close()
        elif self.enabled:
            print(file=sys.stderr)


@dataclass
class FitResult:
    best_epoch: int
    best_valid_auc: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0


@torch.no_grad()
def predict(model: nn.Module, data: MPData, batch_size: int = 65536) -> np.ndarray:
    """(n, K) float32 probabilities."""
    model.eval()
    out = [torch.sigmoid(model(data.cat[i:i + batch_size], data.num[i:i + batch_size]))
           for i in range(0, len(data), batch_size)]
    return torch.cat(out).numpy().astype(np.float32) if out else \
        np.zeros((0, data.labels.shape[1]), np.float32)


def auc_by_objective(probs: np.ndarray, labels, objectives) -> dict:
    """Exact AUC per objective (None where a split holds one class only)."""
    y = torch.as_tensor(np.asarray(labels))
    s = torch.as_tensor(probs, dtype=torch.float64)
    out = {}
    for k, o in enumerate(objectives):
        v = float(auc_per_objective(s[:, k], y[:, k])[0])
        out[o] = None if math.isnan(v) else round(v, 6)
    return out


def _mean(aucs: dict) -> float:
    vals = [v for v in aucs.values() if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def fit(model: nn.Module, train: MPData, valid: MPData | None, weighting, cfg: TrainConfig,
        objectives: list[str], progress: bool = True, log=None) -> FitResult:
    cfg.check()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    best, best_state, best_epoch, bad = -math.inf, None, 0, 0
    history, step, t0 = [], 0, time.time()
    best_auc: dict = {}
    n = len(train)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        bar = _Bar(n, f"epoch {epoch}/{cfg.epochs}", progress)
        total, seen = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            cat = train.cat[idx]
            if cfg.unknown_p > 0:
                cat = cat.masked_fill(torch.rand(cat.shape, generator=gen) < cfg.unknown_p, 0)
            num, labels = train.num[idx], train.labels[idx]
            logits = model(cat, num)
            losses = bce(logits, labels).mean(0)
            loss = weighting.combine(losses, StepContext(step, epoch, model, logits, labels,
                                                         (cat, num)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += float(losses.detach().sum()) * len(idx)
            seen += len(idx)
            bar.update(len(idx), loss=f"{total / seen:.4f}")
        bar.close()
        row = {"epoch": epoch, "train_loss": round(total / max(seen, 1), 6),
               "weights": [round(float(v), 4) for v in weighting.weights()]}
        if valid is None:
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            best_epoch = epoch
            history.append(row)
            continue
        aucs = auc_by_objective(predict(model, valid), valid.labels.numpy(), objectives)
        row["valid_auc"] = aucs
        row["valid_mean_auc"] = round(_mean(aucs), 6)
        history.append(row)
        log(f"epoch {epoch}: train loss {row['train_loss']:.4f}, valid mean AUC "
            f"{row['valid_mean_auc']:.4f}")
        if _mean(aucs) > best:
            best, best_epoch, bad, best_auc = _mean(aucs), epoch, 0, aucs
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                log(f"early stop: no improvement for {bad} epoch(s); best epoch {best_epoch}")
                break
    model.load_state_dict(best_state)
    return FitResult(best_epoch, best_auc, history, round(time.time() - t0, 2))
