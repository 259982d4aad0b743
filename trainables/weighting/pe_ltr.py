"""PE-LTR's KKT-based scalarization weights with lower bounds (Lin et al. 2019;
docs/DESIGN.md, "PE-LTR weights").

Given per-objective gradients g_1..g_K (rows of G, shape (K, D)) and lower bounds c
(c_i >= 0, sum c < 1), the weights minimize the KKT stationarity residual

    min_w || sum_i w_i g_i ||^2  =  w^T (G G^T) w    s.t.  w_i >= c_i,  sum_i w_i = 1.

``mode="two_step"`` is the paper's procedure:
  1. relax the inequalities and solve the KKT system of the equality-constrained problem
     [[2 G G^T, e], [e^T, 0]] [w; lambda] = [0; 1] (least squares when it is singular);
  2. project that w onto {w >= c, sum w = 1} in Euclidean norm: with v = w - c this is
     the projection onto the simplex scaled to 1 - sum c, solved by sorting.
``mode="exact"`` solves the bounded problem itself (the true optimum the two-step answer
approximates): an exact active-set enumeration for K <= 12 (every KKT point of a convex
QP is optimal), accelerated projected gradient beyond.

The weighting (``kind: pe_ltr``) recomputes the weights every ``every`` steps from the
gradients of each objective's loss with respect to the batch's scores (``gradients:
scores``, cheap: K backward passes through the loss only) or to the model's parameters
(``gradients: shared``), and logs them as ``weight/<obj>``. A model that declares which
parameters every objective flows through (``shared_parameters()``, e.g. the MP stage's
bottom MLP or MMoE's experts) gets the gradients of those: the paper's shared layers.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from .base import PerObjective, StepContext, Weighting

MODES = ("two_step", "exact")
GRADIENTS = ("scores", "shared")
_ENUMERATE_UP_TO = 12


def _check(G: np.ndarray, c: np.ndarray) -> None:
    k = G.shape[0]
    if c.shape != (k,):
        raise ValueError(f"bounds must have one value per objective ({k}), got shape {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError(f"bounds must be finite and >= 0, got {c.tolist()}")
    if c.sum() >= 1:
        raise ValueError(f"bounds must sum to less than 1 (the weights sum to 1), "
                         f"got sum {c.sum():.6g}")
    if not np.isfinite(G).all():
        raise ValueError("gradients contain NaN/inf")


def relaxed_weights(M: np.ndarray) -> np.ndarray:
    """Step 1: argmin w^T M w on the affine set sum w = 1 (KKT linear system)."""
    k = M.shape[0]
    A = np.zeros((k + 1, k + 1))
    A[:k, :k] = 2 * M
    A[:k, k] = A[k, :k] = 1.0
    b = np.zeros(k + 1)
    b[k] = 1.0
    try:
        if np.linalg.cond(A) < 1e12:
            return np.linalg.solve(A, b)[:k]
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(A, b, rcond=None)[0][:k]


def project_bounded_simplex(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Step 2: Euclidean projection of y onto {w >= c, sum w = 1} (sort-based, exact)."""
    s = 1.0 - c.sum()
    z = y - c
    u = np.sort(z)[::-1]
    css = np.cumsum(u)
    j = np.arange(1, len(u) + 1)
    rho = int(np.nonzero(u - (css - s) / j > 0)[0][-1]) + 1
    theta = (css[rho - 1] - s) / rho
    return c + np.maximum(z - theta, 0.0)


def _exact_enumerate(M: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Try every set of variables held at their bound; keep the KKT point of least value."""
    k = M.shape[0]
    scale = max(float(np.abs(M).max()), 1e-300)
    tol = 1e-9
    best, best_val = None, math.inf
    for n_free in range(k, 0, -1):
        for free in itertools.combinations(range(k), n_free):
            F = list(free)
            B = [i for i in range(k) if i not in free]
            r = 1.0 - c[B].sum()
            A = np.zeros((n_free + 1, n_free + 1))
            A[:n_free, :n_free] = 2 * M[np.ix_(F, F)]
            A[:n_free, n_free] = -1.0
            A[n_free, :n_free] = 1.0
            rhs = np.zeros(n_free + 1)
            rhs[:n_free] = -2 * M[np.ix_(F, B)] @ c[B] if B else 0.0
            rhs[n_free] = r
            sol = np.linalg.lstsq(A, rhs, rcond=None)[0]
            w = c.copy()
            w[F] = sol[:n_free]
            lam = sol[n_free]
            if (w[F] < c[F] - tol).any():
                continue
            grad = 2 * M @ w
            if B and (grad[B] - lam < -tol * scale).any():   # multipliers of active bounds
                continue
            if np.abs(grad[F] - lam).max(initial=0) > 1e-7 * scale + 1e-12:
                continue                                     # lstsq found no exact solution
            val = float(w @ M @ w)
            if val < best_val - 1e-15 * scale:
                best, best_val = w, val
    return best


def _exact_projected_gradient(M: np.ndarray, c: np.ndarray, iters: int = 20000) -> np.ndarray:
    """Accelerated projected gradient (FISTA) on the bounded simplex."""
    L = 2 * max(float(np.linalg.eigvalsh(M)[-1]), 1e-300)
    w = project_bounded_simplex(np.full(len(c), 1.0 / len(c)), c)
    y, t = w.copy(), 1.0
    for _ in range(iters):
        w_new = project_bounded_simplex(y - (2 * M @ y) / L, c)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = w_new + (t - 1) / t_new * (w_new - w)
        if np.abs(w_new - w).max() < 1e-15:
            return w_new
        w, t = w_new, t_new
    return w


def pe_ltr_weights(grads, bounds=None, mode: str = "two_step"):
    """PE-LTR weights (K,) from gradients (K, D); same array type (and device) as ``grads``.

    ``bounds``: lower bounds c (K,), sum < 1 (None = zeros). ``mode``: "two_step" (relaxed
    KKT solve, then projection) or "exact" (the bounded min-norm problem solved exactly).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    is_tensor = isinstance(grads, torch.Tensor)
    G = grads.detach().to("cpu", torch.float64).numpy() if is_tensor else \
        np.asarray(grads, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] < 1:
        raise ValueError(f"grads must be (K, D), got shape {G.shape}")
    k = G.shape[0]
    if bounds is None:
        c = np.zeros(k)
    elif isinstance(bounds, torch.Tensor):
        c = bounds.detach().to("cpu", torch.float64).numpy()
    else:
        c = np.asarray(bounds, dtype=np.float64)
    _check(G, c)
    M = G @ G.T
    M = M / max(float(np.abs(M).max()), 1e-300)   # the weights do not depend on the scale
    if mode == "two_step":
        w = project_bounded_simplex(relaxed_weights(M), c)
    else:
        w = _exact_enumerate(M, c) if k <= _ENUMERATE_UP_TO else None
        if w is None:   # large K, or numerically degenerate: the iterative solver
            w = _exact_projected_gradient(M, c)
        # the linear solves leave ~1e-12 of slack in the constraints: remove it exactly
        w = project_bounded_simplex(w, c)
    if is_tensor:
        return torch.as_tensor(w, dtype=grads.dtype, device=grads.device)
    return w


class PELTRWeighting(Weighting):
    """``kind: pe_ltr`` — KKT weights with lower bounds, recomputed every ``every`` steps.

    ``bounds``: mapping objective -> lower bound (missing ones 0), or a list; sum < 1.
    ``gradients``: "scores" (gradient of each loss w.r.t. the batch's scores, cheap) or
    "shared" (w.r.t. the model's shared parameters, the paper's choice: those its
    ``shared_parameters()`` returns, else all of them). ``mode``: "two_step" or
    "exact". Until the first solve the weights are uniform.

    In a population each member has its own bounds and weights; the K backward passes
    give every member's gradient rows at once (members share no parameters), then the
    P small problems are solved one by one.
    """

    member_state = ("bounds", "_w")
    per_objective = {"bounds": PerObjective()}            # unnamed objectives: bound 0

    def __init__(self, objectives: list[str], *, bounds=None, every: int = 1,
                 gradients: str = "scores", mode: str = "two_step"):
        super().__init__(objectives)
        k = len(self.objectives)
        if isinstance(bounds, dict):
            unknown = sorted(set(bounds) - set(self.objectives))
            if unknown:
                raise ValueError(f"weighting.bounds names unknown objective(s) "
                                 f"{', '.join(unknown)}; objectives: {', '.join(self.objectives)}")
            c = [float(bounds.get(o, 0.0)) for o in self.objectives]
        elif bounds is None:
            c = [0.0] * k
        else:
            c = [float(v) for v in bounds]
            if len(c) != k:
                raise ValueError(f"weighting.bounds has {len(c)} values for {k} objectives")
        if not all(math.isfinite(v) and v >= 0 for v in c) or sum(c) >= 1:
            raise ValueError(f"weighting.bounds = {dict(zip(self.objectives, c))}: lower bounds "
                             f"must be >= 0 and sum to less than 1 (the weights sum to 1), "
                             f"got sum {sum(c):.6g}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"weighting.every must be an integer >= 1, got {every!r}")
        if gradients not in GRADIENTS:
            raise ValueError(f"weighting.gradients must be one of {GRADIENTS}, got {gradients!r}")
        if mode not in MODES:
            raise ValueError(f"weighting.mode must be one of {MODES}, got {mode!r}")
        self.bounds = np.asarray(c)
        self.every, self.gradients, self.mode = every, gradients, mode
        self._w = torch.tensor(project_bounded_simplex(np.full(k, 1.0 / k), self.bounds),
                               dtype=torch.float32)

    def _grads(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """(P, K, D) gradient rows (P = 1 for one model)."""
        k = losses.shape[-1]
        members = self.members or 1
        if self.gradients == "scores":
            rows = [torch.autograd.grad(losses[..., i].sum(), ctx.scores, retain_graph=True,
                                        allow_unused=True)[0] for i in range(k)]
            rows = [r if r is not None else torch.zeros_like(ctx.scores) for r in rows]
            return torch.stack([r.reshape(members, -1) for r in rows], 1)
        declared = getattr(ctx.model, "shared_parameters", None)
        params = [p for p in (declared() if callable(declared) else ctx.model.parameters())
                  if p.requires_grad]
        rows = []
        for i in range(k):
            gs = torch.autograd.grad(losses[..., i].sum(), params, retain_graph=True,
                                     allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p))
                                   .reshape(members, -1) for g, p in zip(gs, params)], 1))
        return torch.stack(rows, 1)

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if ctx.step % self.every == 0:
            G = self._grads(losses, ctx).detach().to("cpu", torch.float64)
            bounds = self.bounds.reshape(G.shape[0], -1)
            w = self._w.reshape(G.shape[0], -1).clone()
            for m in range(G.shape[0]):
                if bool(torch.isfinite(G[m]).all()):    # a diverged member keeps its weights
                    w[m] = torch.as_tensor(pe_ltr_weights(G[m].numpy(), bounds[m], self.mode))
            self._w = w.reshape(self._w.shape)
        return (losses * self._w.to(device=losses.device, dtype=losses.dtype)).sum()

    def weights(self) -> torch.Tensor:
        return self._w.clone()

    def preference(self) -> list[float]:
        """The weights closest to equal ones that respect the lower bounds (the projection
        of 1/K onto {w >= c, sum w = 1}, where the weighting starts): the trade-off the
        bounds state, fixed before training. Not the learned weights: those solve for a
        common descent direction of one batch, change every ``every`` steps and would
        score each epoch by a different yardstick (docs/DESIGN.md, "Which epoch is a
        trial's point")."""
        k = len(self.objectives)
        return project_bounded_simplex(np.full(k, 1.0 / k), self.bounds).tolist()

    def multi_task_issue(self) -> str | None:
        if self.gradients == "shared":
            return None
        return ("with gradients: scores (the default) each objective's loss only reaches "
                "its own score column, so the gradients never overlap and the KKT weights "
                "carry no trade-off; use gradients: shared (the model's shared_parameters())")

    def state_dict(self) -> dict:
        return {"weights": self._w.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if "weights" in state:
            self._w = torch.tensor(state["weights"], dtype=torch.float32)
