"""The training config: sections, defaults owned by the components, strict keys.

A config is a plain dict (what a space file's sampled trial looks like):

    data:      {source: synthetic, rows: 200000, objectives: [...]} or {path: ..., objectives: [...]}
    model:     {family: harmonrank, d_model: 16, ...}      # defaults: the model's signature
    loss:      {kind: rank_auc, regularization_strength: 0.1}
    weighting: {kind: static, weights: {buy: 0.5, ...}}
    optim:     {lr: 0.001, batch_size: 10240, epochs: 5, ...}   # OPTIM_DEFAULTS
    run:       {device: auto, seed: 0, ...}                      # RUN_DEFAULTS

:func:`resolve_config` fills every default and rejects unknown keys with a message
naming the key path and the allowed keys. The resolved config is saved in every
checkpoint, and a rerun reads only that.
"""
from __future__ import annotations

import copy

OPTIM_DEFAULTS = {
    "optimizer": "adam",          # adam | adamw | sgd
    "lr": 1e-2,                   # Adam; the paper's 1e-4 is for 500 epochs of SGD
    "weight_decay": 0.0,
    "batch_size": 10240,          # HarmonRank sec. 5.1
    "epochs": 5,
    "grad_clip": None,            # max gradient norm, or None
}
RUN_DEFAULTS = {
    "device": "auto",             # auto | cpu | cuda | cuda:N  (inside Ray Train: the worker's)
    "seed": 0,
    "threads": None,              # torch intra-op threads; None = torch's default
    "eval_split": "valid",
    "eval_batch_size": 262144,
    "gauc": True,                 # also report gauc/<obj> (per user)
    "request_gauc": False,        # also report request_gauc/<obj> (per request)
    "checkpoint_dir": None,       # outside Ray: where to write checkpoints (None = none)
    "checkpoint_every": 1,        # epochs between checkpoints
    "resume_from": None,          # outside Ray: a checkpoint folder to continue from
    "verbose": True,              # outside Ray: print a line per epoch
    "nan_check_every": None,      # steps between NaN checks; None = 1 on CPU, 20 on CUDA
    "chunk_rows": None,           # population: rows per vmapped chunk; None = auto
}
OPTIMIZERS = ("adam", "adamw", "sgd")
# Sections a space file has that the training loop does not use.
SPACE_ONLY = {"name", "search", "scheduler", "resources", "tracking"}
SECTIONS = {"data", "model", "loss", "weighting", "optim", "run", "population"}


def _strict(section: str, given: dict, defaults: dict, selector: str | None = None) -> dict:
    """``defaults`` overridden by ``given``; unknown keys are an error listing the allowed
    ones (``selector``, e.g. model.family, is allowed too and handled by the caller)."""
    if not isinstance(given, dict):
        raise ValueError(f"config section {section!r} must be a mapping, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = sorted(defaults) + ([selector] if selector else [])
        raise ValueError(f"unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
                         f"allowed in {section}: {', '.join(allowed)}")
    return {**defaults, **given}


def resolve_config(config: dict) -> dict:
    """Fill defaults, check every key; returns a new dict (the input is not modified)."""
    from .losses import loss_params
    from .models import model_params
    from .weighting import weighting_params
    from .data import data_params

    if not isinstance(config, dict):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    cfg = copy.deepcopy(config)
    unknown = sorted(set(cfg) - SECTIONS - SPACE_ONLY)
    if unknown:
        raise ValueError(f"unknown config section(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(SECTIONS | SPACE_ONLY))}")
    for s in SPACE_ONLY:
        cfg.pop(s, None)
    population = cfg.pop("population", None)
    if "data" not in cfg:
        raise ValueError("config needs a 'data' section ({path: ...} or {source: synthetic})")
    out = {"data": _strict("data", cfg["data"], data_params(cfg["data"]))}

    model = dict(cfg.get("model") or {})
    family = model.pop("family", "harmonrank")
    out["model"] = {"family": family, **_strict("model", model, model_params(family), "family")}

    loss = dict(cfg.get("loss") or {})
    kind = loss.pop("kind", "rank_auc")
    out["loss"] = {"kind": kind, **_strict("loss", loss, loss_params(kind), "kind")}

    weighting = dict(cfg.get("weighting") or {})
    wkind = weighting.pop("kind", "static")
    out["weighting"] = {"kind": wkind,
                        **_strict("weighting", weighting, weighting_params(wkind), "kind")}

    out["optim"] = _strict("optim", cfg.get("optim") or {}, OPTIM_DEFAULTS)
    out["run"] = _strict("run", cfg.get("run") or {}, RUN_DEFAULTS)
    o = out["optim"]
    if o["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optim.optimizer = {o['optimizer']!r}; allowed: {', '.join(OPTIMIZERS)}")
    for key in ("lr",):
        if not isinstance(o[key], (int, float)) or not o[key] > 0:
            raise ValueError(f"optim.{key} must be a number > 0, got {o[key]!r}")
    for key in ("batch_size", "epochs"):
        if not isinstance(o[key], int) or o[key] < 1:
            raise ValueError(f"optim.{key} must be an integer >= 1, got {o[key]!r}")
    if population is not None:
        out["population"] = _resolve_population(cfg, population)
    return out


def _resolve_population(base: dict, population) -> list[dict]:
    """Check every member (its whole config resolved on its own) and that members differ
    only where a population may (trainables.population.MEMBER_KEYS)."""
    from .population import _deep_merge, check_population
    if not isinstance(population, list) or not population or \
            not all(isinstance(m, dict) for m in population):
        raise ValueError(f"population must be a non-empty list of per-member overrides "
                         f"(mappings such as {{weighting: {{weights: ...}}, optim: {{lr: ...}}}}), "
                         f"got {population!r}")
    resolved = []
    for i, entry in enumerate(population):
        bad = sorted(set(entry) - {"weighting", "optim", "run"})
        if bad:
            raise ValueError(f"population member {i}: section(s) {', '.join(bad)} cannot "
                             f"differ inside a population; a member overrides weighting, "
                             f"optim.lr or run.seed")
        try:
            resolved.append(resolve_config(_deep_merge(base, entry)))
        except ValueError as e:
            raise ValueError(f"population member {i}: {e}") from None
    check_population(base, resolved)
    return copy.deepcopy(population)
