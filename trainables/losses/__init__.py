"""Per-objective ranking losses, registered by name.

A loss is a function ``loss(scores, labels, *, hparam=default)``:

- ``scores``: (n,) raw ensemble scores (one per item; any real value),
- ``labels``: (n,) for one objective -> returns a scalar, or (n, K) -> returns (K,),
  one loss per objective. The (n, K) form is what the training loop uses: objectives
  that share work (one soft-rank of the shared score, one log-sigmoid) do it once.

A population of P models scored on the same batch (``trainables.population``) passes
``scores`` of shape (P, n) and gets (P, K) back: one row per member, computed together
(torchsort ranks the P rows in one call).

Every loss is minimized. A batch where an objective has no positives or no negatives
contributes 0 (no gradient) for a ranking loss, since its AUC is undefined there.
Hyper-parameters are keyword-only with their defaults in the signature; a config that
names an unknown one gets an error listing the allowed ones (see :func:`loss_params`).
"""
from __future__ import annotations

from typing import Callable

from .._registry import check_params, keyword_defaults, lookup

# name -> "module:function"; the module is imported only when the loss is chosen
# (rank_auc pulls in torchsort's compiled extension).
LOSSES: dict[str, str] = {
    "bce": "trainables.losses.bce:bce",
    "rank_auc": "trainables.losses.rank_auc:rank_auc",
    "pairwise_logistic": "trainables.losses.pairwise:pairwise_logistic",
    "pairwise_square": "trainables.losses.pairwise:pairwise_square",
    "aucm": "trainables.losses.aucm:aucm",
    "label_aggregation": "trainables.losses.label_aggregation:label_aggregation",
    "emer": "trainables.losses.emer:emer",
    "emer_prior": "trainables.losses.emer:emer_prior",
    "emer_posterior": "trainables.losses.emer:emer_posterior",
}


def get_loss(name: str) -> Callable:
    """The loss function registered as ``name``; ValueError listing the valid names."""
    return lookup(LOSSES, name, "loss", "losses")


def loss_params(name: str) -> dict:
    """The loss's hyper-parameters and their defaults."""
    return keyword_defaults(get_loss(name))


def resolve_loss_params(name: str, given: dict | None) -> dict:
    """Defaults of loss ``name`` overridden by ``given``; unknown keys are an error."""
    defaults = loss_params(name)
    given = dict(given or {})
    check_params("loss", name, given, defaults)
    return {**defaults, **given}


def bind_objectives(hp: dict, objectives: list[str]) -> dict:
    """Loss hyper-parameters named ``*_objectives`` (e.g. ``emer``'s ``iput_objectives``)
    take column indices; a config may list objective names instead, as a space file
    writes them. Returns ``hp`` with names turned into indices of ``objectives``; an
    unknown name is an error naming the key and the objectives."""
    out = dict(hp)
    for key, value in hp.items():
        if not key.endswith("_objectives") or not isinstance(value, (list, tuple)):
            continue
        bad = [v for v in value if isinstance(v, str) and v not in objectives]
        if bad:
            raise ValueError(f"loss.{key} = {list(value)!r}: {', '.join(map(repr, bad))} not "
                             f"among the objectives of the data: {', '.join(objectives)}")
        out[key] = [objectives.index(v) if isinstance(v, str) else v for v in value]
    return out
