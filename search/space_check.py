"""What a space's trials would build, checked before Ray (``search.space``): each
family/kind option and each value of each distribution in turn resolves, builds its model
(within :data:`~search.limits.MAX_MODEL_PARAMS`, counted on the meta device) and weighting,
and evaluates its loss on a tiny batch. The first failure is one error naming the option
or value."""
from __future__ import annotations

import copy
import inspect

from trainables.config import resolve_config
from trainables.losses import bind_objectives, get_loss
from trainables.models import FeatureSpec, build_model
from trainables.weighting import build_weighting
from trainables.yaml_safe import short

from .distributions import _Invalid
from .limits import MAX_MODEL_PARAMS
from .space_data import check_duration
from .space_tree import (_COMPONENTS, TRIAL_SECTIONS, _first, _leaves, _options, _set,
                         materialize)


def check_trainables(space) -> None:
    """Build what the trials would build, for each family/kind option and with each value
    of each distribution in turn (the others at their representative value): resolve the
    config, build the model and the weighting, evaluate the loss on a tiny batch."""
    import torch
    tree, k = space._tree, len(space.objectives)
    base = {s: _first(_options(s, tree[s])[0][1]) for s in TRIAL_SECTIONS}
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(8, generator=g)
    duration = torch.rand(8, generator=g) + 0.5
    labels = torch.zeros(8, k)
    labels[::2] = 1.0
    done = set()

    def check(desc: str | None, cfg: dict) -> None:
        key = repr(cfg)
        if key in done:
            return
        done.add(key)
        stage = ""
        try:
            r = resolve_config(cfg)
            stage = f"model.family = {r['model']['family']!r}"
            hp = {a: b for a, b in r["model"].items() if a != "family"}
            _count_parameters(desc or stage, r["model"]["family"], k, hp)
            build_model(r["model"]["family"], k, FeatureSpec(), hp)
            if r.get("conditioning") is not None:     # the family's preference hook too
                from trainables.models import ConditionedModel
                ConditionedModel(r["model"]["family"], k, FeatureSpec(), hp)
            stage = f"weighting.kind = {r['weighting']['kind']!r}"
            build_weighting(r["weighting"]["kind"], space.objectives,
                            {a: b for a, b in r["weighting"].items() if a != "kind"})
            stage = f"loss.kind = {r['loss']['kind']!r}"
            loss = get_loss(r["loss"]["kind"])
            hp = bind_objectives({a: b for a, b in r["loss"].items() if a != "kind"},
                                 space.objectives)
            extra = {"duration": duration} if "duration" in inspect.signature(loss).parameters \
                else {}
            loss(scores, labels, **extra, **hp)
            if hp.get("use_iput"):
                check_duration(desc or stage, r["data"])
        except _Invalid:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to build a trial is the config's
            where = desc or stage
            why = str(e) if isinstance(e, (ValueError, TypeError)) else \
                f"{type(e).__name__}: {e}"
            why = why if len(why) <= 600 else why[:600] + " ..."
            raise _Invalid(f"{where + ': ' if where else ''}the trainables reject this "
                           f"configuration: {why}") from None

    check(None, materialize(base))         # the representative config (fixed_config)
    for s in ("model", "loss", "weighting", "optim"):
        for opt, t in _options(s, tree[s]):
            first = _first(t)
            sel = f"{s}.{_COMPONENTS[s][0]} = {short(opt)}" if opt else ""
            check(sel or s, materialize({**base, s: first}))
            for p, d in _leaves(t):
                for value in d.probes():
                    v = copy.deepcopy(first)
                    _set(v, p, value)
                    desc = ", ".join(x for x in (sel, f"{s}.{'.'.join(p)} = {short(value)}")
                                     if x)
                    check(desc, materialize({**base, s: v}))


def _count_parameters(where: str, family: str, k: int, hp: dict) -> None:
    """Refuse a model above MAX_MODEL_PARAMS, counted on the meta device (no memory).
    Only when a size is large: the meta device costs seconds the first time."""
    import torch

    def big(v) -> bool:
        if isinstance(v, (list, tuple)):
            return any(big(x) for x in v)
        return isinstance(v, int) and not isinstance(v, bool) and v > 4096

    if not any(big(v) for v in hp.values()):
        return
    try:
        with torch.device("meta"):
            net = build_model(family, k, FeatureSpec(), hp)
        n = sum(p.numel() for p in net.parameters())
    except Exception:  # noqa: BLE001 - the real build below reports what is wrong
        return
    if n > MAX_MODEL_PARAMS:
        raise _Invalid(f"{where}: the model would have {n:,} parameters; at most "
                       f"{MAX_MODEL_PARAMS:,} (lower its sizes)")
