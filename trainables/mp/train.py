"""Training the MP model: per-task BCE, static or PE-LTR task weights, Adam, early stop.

``fit`` trains on ``train`` and, after every epoch, measures each objective's exact AUC
on ``valid``; it stops when their mean has not improved for ``patience`` epochs and
restores the best epoch's parameters. While training, each categorical code is replaced
by 0 ("unknown") with probability ``unknown_p``, so the unknown rows the scored days
need (new users, videos, rare values) are trained too.

Task weightings (``WEIGHTINGS``):
- ``static``: fixed weights per objective (default 1 each).
- ``pe_ltr``: every ``every`` steps, the gradient of each task's loss with respect to the
  model's shared parameters gives G (K, D), and
  :func:`trainables.weighting.pe_ltr_weights` (KKT weights, lower ``bounds``) the weights.
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

WEIGHTINGS = ("static", "pe_ltr")


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
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 2
    unknown_p: float = 0.02
    seed: int = 0

    def check(self) -> "TrainConfig":
        for name, lo in (("epochs", 1), ("batch_size", 1), ("patience", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.unknown_p < 1:
            raise ValueError(f"unknown_p must be in [0, 1), got {self.unknown_p!r}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- weightings
def _per_objective(value, objectives, name: str, default: float) -> list[float]:
    if value is None:
        return [default] * len(objectives)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(objectives))
        if unknown:
            raise ValueError(f"{name} names unknown objective(s) {', '.join(unknown)}; "
                             f"objectives: {', '.join(objectives)}")
        return [float(value.get(o, default)) for o in objectives]
    out = [float(v) for v in value]
    if len(out) != len(objectives):
        raise ValueError(f"{name} has {len(out)} values for {len(objectives)} objectives")
    return out


class StaticWeights:
    """Fixed task weights (``weights``: objective -> weight, missing ones 1)."""

    def __init__(self, objectives, *, weights=None):
        w = _per_objective(weights, objectives, "task weights", 1.0)
        if not all(math.isfinite(v) and v >= 0 for v in w) or sum(w) <= 0:
            raise ValueError(f"task weights must be >= 0 and not all 0, got "
                             f"{dict(zip(objectives, w))}")
        self.w = torch.tensor(w)

    def combine(self, losses: torch.Tensor, model: nn.Module, step: int) -> torch.Tensor:
        return (losses * self.w).sum()


class PELTRWeights:
    """PE-LTR KKT weights from the per-task gradients of the shared parameters."""

    def __init__(self, objectives, *, bounds=None, every: int = 5, mode: str = "two_step"):
        c = _per_objective(bounds, objectives, "pe_ltr bounds", 0.0)
        if not all(math.isfinite(v) and v >= 0 for v in c) or sum(c) >= 1:
            raise ValueError(f"pe_ltr bounds {dict(zip(objectives, c))} must be >= 0 and sum "
                             f"to less than 1 (the weights sum to 1), got sum {sum(c):.6g}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"pe_ltr every must be an integer >= 1, got {every!r}")
        from ..weighting.pe_ltr import MODES, project_bounded_simplex
        if mode not in MODES:
            raise ValueError(f"pe_ltr mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.bounds = np.asarray(c)
        self.every, self.mode = every, mode
        k = len(objectives)
        self.w = torch.tensor(project_bounded_simplex(np.full(k, 1.0 / k), self.bounds),
                              dtype=torch.float32)

    def combine(self, losses: torch.Tensor, model: nn.Module, step: int) -> torch.Tensor:
        if step % self.every == 0:
            from ..weighting import pe_ltr_weights
            params = model.shared_parameters()
            rows = []
            for k in range(losses.shape[0]):
                gs = torch.autograd.grad(losses[k], params, retain_graph=True,
                                         allow_unused=True)
                rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                       for g, p in zip(gs, params)]))
            G = torch.stack(rows).detach()
            if bool(torch.isfinite(G).all()):
                self.w = pe_ltr_weights(G.double(), self.bounds, self.mode).float()
        return (losses * self.w).sum()


def make_weighting(kind: str, objectives, **params):
    if kind == "static":
        return StaticWeights(objectives, **params)
    if kind == "pe_ltr":
        return PELTRWeights(objectives, **params)
    raise ValueError(f"unknown task weighting {kind!r}; valid: {', '.join(WEIGHTINGS)}")


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
            logits = model(cat, train.num[idx])
            losses = bce(logits, train.labels[idx]).mean(0)
            loss = weighting.combine(losses, model, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += float(losses.detach().sum()) * len(idx)
            seen += len(idx)
            bar.update(len(idx), loss=f"{total / seen:.4f}")
        bar.close()
        row = {"epoch": epoch, "train_loss": round(total / max(seen, 1), 6),
               "weights": [round(float(v), 4) for v in weighting.w]}
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
