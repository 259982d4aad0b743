"""Population training (docs/DESIGN.md, "Populations"): P members of one architecture in one process.

A config with a ``population`` section trains one member per entry. Each entry overrides
the base config where members may differ: the weighting's parameters (static weights,
PE-LTR bounds, ...), ``optim.lr`` and ``run.seed`` (the member's initialization); model,
loss, data, batch size and epochs are shared, and every member sees the same batches.

The members' parameters are stacked (``torch.func.stack_module_state``) into one
:class:`PopulationModel` whose forward is ``vmap`` of the architecture's own forward
(``torch.func.functional_call``): one call scores the batch for all P members, losses take
(P, n) scores and return (P, K) (one torchsort call ranks all members' rows), the
weighting combines per member, one backward and one optimizer step update everyone.
Members never mix: each one's parameters get exactly the gradient it would get alone.

CPU: the stacked working set of a whole batch is P times a model's and falls out of cache,
so the forward runs over row chunks of ``chunk_rows`` (auto: about 40k member-rows per
chunk); on a GPU the whole batch goes at once, which is where a population pays most.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

# What may differ between members (config paths); everything else is shared.
MEMBER_KEYS = {"weighting": None, "optim": {"lr"}, "run": {"seed"}}   # None: any key
AUTO_CHUNK_MEMBER_ROWS = 40960


def _deep_merge(base: dict, over: dict, whole=()) -> dict:
    """``base`` with ``over`` merged in, mapping by mapping; a key in ``whole`` is replaced
    as a whole. In a config's weighting section the weighting's per-objective parameters
    (``Weighting.per_objective``: static weights, PE-LTR bounds) are whole: a member's
    mapping is its own, not merged with the base's objective by objective."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in whole:
            inner = _per_objective_keys(out[k], v) if k == "weighting" else ()
            out[k] = _deep_merge(out[k], v, inner)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _per_objective_keys(base: dict, over: dict) -> tuple:
    """The per-objective parameters of the weighting a member ends up with."""
    from .weighting import WEIGHTINGS, weighting_per_objective
    kind = over.get("kind", base.get("kind", "static"))
    return tuple(weighting_per_objective(kind)) if isinstance(kind, str) and \
        kind in WEIGHTINGS else ()


def member_configs(cfg: dict) -> list[dict] | None:
    """The full config of each member (base merged with its entry), or None for a
    config without a ``population`` section. Entries are plain partial configs."""
    pop = cfg.get("population")
    if pop is None:
        return None
    base = {k: v for k, v in cfg.items() if k != "population"}
    return [_deep_merge(base, entry) for entry in pop]


def check_population(base: dict, members: list[dict]) -> None:
    """ValueError naming the first setting that differs between members but must be
    shared (only weighting parameters, optim.lr and run.seed may differ)."""
    first = members[0]
    for i, m in enumerate(members[1:], 1):
        for section in set(first) | set(m):
            a, b = first.get(section), m.get(section)
            if a == b:
                continue
            allowed = MEMBER_KEYS.get(section, set())
            if section == "weighting" and a.get("kind") != b.get("kind"):
                raise ValueError(f"population member {i}: weighting.kind {b.get('kind')!r} "
                                 f"differs from member 0's {a.get('kind')!r}; members share "
                                 f"the weighting kind")
            if allowed is None:
                continue
            if not isinstance(a, dict) or not isinstance(b, dict):
                raise ValueError(f"population member {i}: section {section!r} differs")
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key) and key not in allowed:
                    may = ", ".join(["weighting.*"] + sorted(
                        f"{s}.{k}" for s, ks in MEMBER_KEYS.items() if ks for k in ks))
                    raise ValueError(
                        f"population member {i}: {section}.{key} = {b.get(key)!r} differs "
                        f"from member 0's {a.get(key)!r}; members of one population share "
                        f"everything but {may}")


class PopulationModel(nn.Module):
    """P copies of one architecture with stacked parameters; forward -> (P, n)."""

    def __init__(self, members: list[nn.Module], chunk_rows: int | None = None):
        super().__init__()
        if not members:
            raise ValueError("a population needs at least one member")
        self.members = len(members)
        self.chunk_rows = chunk_rows
        stacked, _ = stack_module_state(members)
        self._names = list(stacked)
        for name, p in stacked.items():
            self.register_parameter(_flat(name), nn.Parameter(p.detach().clone()))
        base = copy.deepcopy(members[0])
        for name, b in base.named_buffers():
            self.register_buffer("buf__" + _flat(name), b, persistent=False)
        self._buffer_names = [n for n, _ in base.named_buffers()]
        self._persistent = list(base.state_dict())
        object.__setattr__(self, "_base", base.to("meta"))   # structure only, not registered
        # "different": each member draws its own dropout masks
        self._vmapped = torch.vmap(self._one, in_dims=(0, None, None, None),
                                   randomness="different")

    def train(self, mode: bool = True):
        super().train(mode)
        self._base.train(mode)      # the template's modules (dropout) follow the population
        return self

    def _one(self, params, scores, cat, num):
        buffers = {n: getattr(self, "buf__" + _flat(n)) for n in self._buffer_names}
        return functional_call(self._base, (params, buffers), (scores, cat, num))

    def stacked(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, _flat(n)) for n in self._names}

    def forward(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        params = self.stacked()
        n = scores.shape[0]
        chunk = self._chunk(scores)
        if chunk >= n:
            return self._vmapped(params, scores, cat, num)
        return torch.cat([self._vmapped(params, scores[i:i + chunk], cat[i:i + chunk],
                                        num[i:i + chunk]) for i in range(0, n, chunk)], dim=1)

    def _chunk(self, scores: torch.Tensor) -> int:
        if self.chunk_rows:
            return int(self.chunk_rows)
        if scores.is_cuda:
            return scores.shape[0]
        return max(256, AUTO_CHUNK_MEMBER_ROWS // self.members)

    def member_state_dict(self, i: int) -> dict:
        """Member ``i`` as the state dict of one ordinary model of the architecture."""
        params = {n: p[i].detach().clone() for n, p in self.stacked().items()}
        buffers = {n: getattr(self, "buf__" + _flat(n)).detach().clone()
                   for n in self._buffer_names}
        return {k: params[k] if k in params else buffers[k] for k in self._persistent}


def _flat(name: str) -> str:
    return name.replace(".", "__")


def clip_grad_norm_per_member(params, max_norm: float) -> None:
    """Clip each member's gradient norm (over all its parameters) to ``max_norm``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads)
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


class MemberLR:
    """Per-member learning rates around one optimizer over stacked parameters.

    The inner optimizer runs at lr 1; each member's update is then scaled by its lr:
    for Adam, AdamW and SGD (momentum) the step is lr times an lr-free direction, so this
    is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, lrs: list[float]):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = 1.0
        self.lrs = torch.tensor(lrs, dtype=torch.float32)
        self._params = [p for g in optimizer.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        before = [p.detach().clone() for p in self._params]
        self.optimizer.step()
        for p, b in zip(self._params, before):
            lr = self.lrs.to(device=p.device, dtype=p.dtype).view(-1, *([1] * (p.dim() - 1)))
            p.sub_(b).mul_(lr).add_(b)

    def state_dict(self) -> dict:
        return {"inner": self.optimizer.state_dict(), "lrs": self.lrs.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["inner"])
        for group in self.optimizer.param_groups:
            group["lr"] = 1.0


def finite_members(window: torch.Tensor) -> torch.Tensor:
    """(steps, P, K) losses -> (P,) True where a member's losses are all finite."""
    return torch.isfinite(window).flatten(2).all(2).all(0)

