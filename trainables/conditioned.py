"""Conditioned training: the whole frontier from one training run (docs/DESIGN.md,
"Conditioned training"; COSMOS, Ruchte & Grabocka 2021; Pareto HyperNetworks, Navon et
al. 2021).

A config with a ``conditioning`` section trains one model whose input includes the
preference vector w on the simplex over the K objectives
(:class:`~trainables.models.ConditionedModel`; how w enters is the family's choice). Each
step draws ``per_batch`` vectors from Dirichlet(``alpha``), seeded from ``run.seed`` and
the step, scores the batch under each of them, (P, n) scores through the population loss
path (losses return (P, K)), and minimizes the mean over the vectors of sum_k w_k L_k
(:class:`PreferenceWeighting`). The weighting of a conditioned trial is w itself: any
other weighting (or static weights) is refused by the config.

Each epoch scores the validation split under every point of a Das-Dennis grid on the
simplex (``grid`` partitions per objective, corners included; :func:`das_dennis`) and
reports ``p<i>/auc/<obj>``, ``p<i>/gauc/<obj>``, ``p<i>/auc_sum`` and ``p<i>/pref/<obj>``,
``points``, and at the top level the metrics of the point with the best AUC sum
(``best_point``), or of the preference ``at`` when the config names one. The analysis
turns every grid point into a frontier point ``<trial>.p<i>``.
"""
from __future__ import annotations

import math
from math import comb

import numpy as np
import torch

from .models import ConditionedModel
from .step import _score_metrics, make_optimizer, predict
from .trainee import TrainingDiverged, _model_cfg, _per_objective, _Trainee
from .weighting import StepContext, Weighting

INJECTIONS = ("features",)
AUTO_MAX_POINTS = 66          # grid: null picks the most partitions (<= 10) within this
AUTO_MAX_PARTITIONS = 10
MAX_GRID_POINTS = 1001        # every point is scored on the whole validation split per epoch


def conditioning_settings(*, alpha: float = 1.0, per_batch: int = 4, grid: int | None = None,
                          inject: str = "features", at: dict | None = None) -> dict:
    """The ``conditioning`` section's keys and defaults (the signature owns them).

    ``alpha``: the Dirichlet concentration of the training preferences (1 = uniform on
    the simplex; below 1 favours corners, above 1 the centre). ``per_batch``: preferences
    per step. ``grid``: Das-Dennis partitions of the evaluation grid, null = the most
    partitions (at most 10) whose grid stays within 66 points (K = 3: 10 partitions, 66
    points; K = 5: 3 partitions, 35 points). ``inject``: how w enters the model
    (``features``: through the family's feature path, its ``preference_input`` hook).
    ``at``: objective -> weight, or null; a preference whose metrics the top level
    reports instead of the best grid point's (a rerun of a grid point sets it)."""
    return dict(alpha=alpha, per_batch=per_batch, grid=grid, inject=inject, at=at)


def conditioning_params() -> dict:
    """The ``conditioning`` section's keys and their defaults."""
    from ._registry import keyword_defaults
    return keyword_defaults(conditioning_settings)


def check_conditioning(section: dict, objectives=None) -> None:
    """ValueError naming ``conditioning.<key>``, the value and what is allowed; the grid
    size and ``at`` are checked only when the objectives are known."""
    from .yaml_safe import short

    def bad(key, why):
        raise ValueError(f"conditioning.{key} = {short(section[key])}: {why}")

    a = section["alpha"]
    if not (_number(a) and 0.01 <= a <= 1000):
        bad("alpha", "must be a number in [0.01, 1000] (the Dirichlet concentration)")
    p = section["per_batch"]
    if not (_integer(p) and 1 <= p <= 64):
        bad("per_batch", "must be an integer in [1, 64] (preferences drawn per step)")
    g = section["grid"]
    if g is not None and not (_integer(g) and 1 <= g <= 100):
        bad("grid", "must be null (automatic) or an integer in [1, 100] (Das-Dennis "
                    "partitions)")
    if section["inject"] not in INJECTIONS:
        bad("inject", f"allowed: {', '.join(INJECTIONS)}")
    if section["at"] is not None and not isinstance(section["at"], dict):
        bad("at", "must be null or a mapping objective -> weight >= 0")
    if objectives is None:
        return
    k = len(objectives)
    if g is not None and comb(g + k - 1, k - 1) > MAX_GRID_POINTS:
        bad("grid", f"gives {comb(g + k - 1, k - 1)} points for {k} objectives; at most "
                    f"{MAX_GRID_POINTS} (each is scored on the whole validation split every "
                    f"epoch); lower it, or leave it null for {grid_partitions(None, k)}")
    if section["at"] is not None:
        preference_vector(section["at"], objectives, "conditioning.at")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_weighting(weighting: dict) -> None:
    """A conditioned trial weights each step by the sampled preference: only the default
    static weighting (no weights) is allowed beside it."""
    from .yaml_safe import short
    kind = weighting.get("kind", "static")
    extra = [f"weighting.{k} = {short(weighting[k], 80)}" for k in ("weights", "normalize")
             if kind == "static" and weighting.get(k) not in (None, False)]
    if kind != "static" or extra:
        raise ValueError(
            f"weighting.kind = {kind!r}{' with ' + ', '.join(extra) if extra else ''}: a "
            f"conditioned trial (a conditioning section) weights every step by the sampled "
            f"preference w, so it takes no weighting of its own; leave the weighting section "
            f"out (or {{kind: static}} without weights), or remove the conditioning section")


def grid_partitions(grid: int | None, k: int) -> int:
    """The Das-Dennis partitions for ``grid`` (null: automatic) and K objectives."""
    if grid is not None:
        return int(grid)
    return max([h for h in range(1, AUTO_MAX_PARTITIONS + 1)
                if comb(h + k - 1, k - 1) <= AUTO_MAX_POINTS] or [1])


def das_dennis(k: int, partitions: int) -> np.ndarray:
    """Every vector on the simplex with coordinates in multiples of 1/partitions:
    (C(partitions + k - 1, k - 1), k), corners included, in pymoo's order
    (``get_reference_directions("das-dennis", k, n_partitions=partitions)``)."""
    out = []

    def rec(prefix, left, depth):
        if depth == k - 1:
            out.append(prefix + [left])
            return
        for i in range(left + 1):
            rec(prefix + [i], left - i, depth + 1)

    rec([], partitions, 0)
    return np.asarray(out, dtype=np.float64) / partitions


def preference_vector(w, objectives, where: str = "preference") -> np.ndarray:
    """A preference (mapping objective -> weight, or K numbers) as a (K,) vector summing
    to 1; ValueError naming ``where`` otherwise."""
    if isinstance(w, dict):
        unknown = sorted(set(w) - set(objectives))
        if unknown:
            raise ValueError(f"{where} names unknown objective(s) {', '.join(map(str, unknown))}"
                             f"; objectives: {', '.join(objectives)}")
        vals = [w.get(o, 0.0) for o in objectives]
    else:
        vals = list(np.asarray(w, dtype=np.float64).reshape(-1))
        if len(vals) != len(objectives):
            raise ValueError(f"{where} has {len(vals)} values for {len(objectives)} objectives "
                             f"({', '.join(objectives)})")
    if not all(_number(v) and v >= 0 for v in vals) or sum(vals) <= 0:
        raise ValueError(f"{where} = {w!r}: weights must be finite numbers >= 0, not all 0")
    v = np.asarray(vals, dtype=np.float64)
    return v / v.sum()


class PreferenceSampler:
    """step -> (per_batch, K) preferences from Dirichlet(alpha), seeded from (seed, step):
    the same on every worker and after a resume."""

    def __init__(self, k: int, alpha: float, per_batch: int, seed: int):
        self.k, self.alpha, self.per_batch, self.seed = k, float(alpha), int(per_batch), int(seed)

    def __call__(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, int(step)])
        w = rng.dirichlet([self.alpha] * self.k, size=self.per_batch)
        return torch.from_numpy(w.astype(np.float32))


class PreferenceWeighting(Weighting):
    """loss = mean over the step's preferences w_p of sum_k w_pk L_pk; ``losses`` (P, K)."""

    def __init__(self, objectives, model: ConditionedModel):
        super().__init__(objectives)
        self._model = model
        self._mean = torch.full((len(self.objectives),), 1.0 / len(self.objectives))

    def combine(self, losses: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        step, w = self._model.last
        if step != ctx.step:     # the forward and the step must agree on which w was used
            raise RuntimeError(f"conditioned step {ctx.step} scored with the preferences of "
                               f"step {step}")
        w = w.to(device=losses.device, dtype=losses.dtype)
        self._mean = w.detach().mean(0).cpu()
        return (losses * w).sum(-1).mean()

    def weights(self) -> torch.Tensor:
        """The mean of the last step's preferences."""
        return self._mean.clone()


class Conditioned(_Trainee):
    """One preference-conditioned model; a NaN/inf loss stops the run."""

    def __init__(self, model, weighting, optimizer, objectives, settings: dict):
        super().__init__(model, weighting, optimizer)
        self.settings = settings
        k = len(objectives)
        grid = das_dennis(k, grid_partitions(settings["grid"], k))
        at = settings["at"]
        prefs = grid if at is None else np.vstack([grid, preference_vector(
            at, objectives, "conditioning.at")])
        self.grid_size = len(grid)
        dev = next(model.parameters()).device
        model.eval_prefs = torch.as_tensor(prefs, dtype=torch.float32, device=dev)

    @classmethod
    def build(cls, cfg: dict, objectives, features, device) -> Conditioned:
        settings = cfg["conditioning"]
        check_conditioning(settings, objectives)
        check_weighting(cfg["weighting"])
        model = ConditionedModel(cfg["model"]["family"], len(objectives), features,
                                 _model_cfg(cfg)).to(device)
        model.sampler = PreferenceSampler(len(objectives), settings["alpha"],
                                          settings["per_batch"], cfg["run"]["seed"])
        return cls(model, PreferenceWeighting(objectives, model),
                   make_optimizer(model.parameters(), cfg["optim"]), objectives, settings)

    def loss_shape(self, n_objectives: int) -> tuple[int, ...]:
        return (self.settings["per_batch"], n_objectives)

    def load_state(self, resume: dict) -> None:
        super().load_state(resume)
        self.model.step = int(resume["step"])

    def diverged(self, stacked, first_step, objectives, epoch) -> None:
        bad = (~torch.isfinite(stacked)).nonzero()[0]
        row, p, col = (int(v) for v in bad)
        w = self.model.sampler(first_step + row)[p]
        pref = ", ".join(f"{o} {float(x):.3f}" for o, x in zip(objectives, w))
        raise TrainingDiverged(
            f"loss for objective {objectives[col]!r} became {stacked[row, p, col].item()} at "
            f"step {first_step + row} (epoch {epoch}) under preference {pref}; the run stops "
            f"here. Lower optim.lr, set optim.grad_clip, or check the loss's parameters")

    def metrics(self, valid, objectives, run, mean_loss) -> dict:
        prefs = self.model.eval_prefs
        s = predict(self.model, valid, max(1, run["eval_batch_size"] // len(prefs)))
        per_point = [_score_metrics(s[i], valid, objectives, run["gauc"], run["request_gauc"])
                     for i in range(len(prefs))]
        return point_metrics(per_point, prefs.cpu().numpy(), self.grid_size, objectives,
                             mean_loss.mean(0))


def point_metrics(per_point: list[dict], prefs: np.ndarray, grid_size: int, objectives,
                  mean_loss: torch.Tensor) -> dict:
    """``p<i>/<metric>`` and ``p<i>/pref/<obj>`` for every grid point, ``points``, and at
    the top level the best grid point's metrics (``best_point``), or those of the extra
    preference after the grid (``conditioning.at``) when there is one; ``pref/<obj>`` and
    ``weight/<obj>`` are the top level's preference, ``loss/<obj>`` the epoch's mean loss."""
    out = {"points": grid_size}
    for i in range(grid_size):
        out.update({f"p{i}/{k}": v for k, v in per_point[i].items()})
        out.update({f"p{i}/pref/{o}": float(x) for o, x in zip(objectives, prefs[i])})
    sums = [m["auc_sum"] if math.isfinite(m["auc_sum"]) else -math.inf
            for m in per_point[:grid_size]]
    best = max(range(grid_size), key=sums.__getitem__)
    top = grid_size if len(per_point) > grid_size else best
    out.update(per_point[top])
    out["best_point"] = best
    for prefix in ("pref", "weight"):
        out.update({f"{prefix}/{o}": float(x) for o, x in zip(objectives, prefs[top])})
    out.update(_per_objective("loss", objectives, mean_loss))
    return out
