"""The training config: sections, defaults owned by the components, strict keys.

A config is a plain dict (what a space file's sampled trial looks like):

    data:      {source: synthetic, rows: 200000, objectives: [...]} or {path: ..., objectives: [...]}
    model:     {family: harmonrank, d_model: 16, ...}      # defaults: the model's signature
    loss:      {kind: rank_auc, regularization_strength: 0.1}
    weighting: {kind: static, weights: {buy: 0.5, ...}}
    optim:     {lr: 0.001, batch_size: 10240, epochs: 5, ...}   # OPTIM_DEFAULTS
    run:       {device: auto, seed: 0, ...}                      # RUN_DEFAULTS
    conditioning: {alpha: 1.0, per_batch: 4, ...}   # optional; trainables.conditioned

:func:`resolve_config` fills every default and rejects unknown keys with a message
naming the key path and the allowed keys. Every optim/run key has a declared type and
bound (:data:`OPTION_SPECS`; :func:`check_option`), checked here and by the space parser
for fixed values and for every value a distribution can draw. The resolved config is saved in every
checkpoint, and a rerun reads only that.
"""
from __future__ import annotations

import copy
import math
import os
import re

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
EVAL_SPLITS = ("valid", "test", "train")      # the contract's splits; a dataset may add more
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:[0-9]{1,3})$")
# Each optim/run key's declared type and bound: (kind, check, what is allowed). kind is what
# a space's distribution over the key must draw (search.space reads it); None is allowed
# only where the default is None (it means "automatic" or "none").
_INT1 = ("int", lambda v: _int(v) and v >= 1, "an integer >= 1")
_POS = ("number", lambda v: _num(v) and v > 0, "a number > 0")
_FLAG = ("bool", lambda v: isinstance(v, bool), "true or false")
_PATH = ("str", lambda v: isinstance(v, (str, os.PathLike)) and str(v) != "",
         "a folder path (a string)")
OPTION_SPECS = {
    "optim": {
        "optimizer": ("str", lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
        "lr": _POS,
        "weight_decay": ("number", lambda v: _num(v) and v >= 0, "a number >= 0"),
        "batch_size": _INT1,
        "epochs": _INT1,
        "grad_clip": _POS,
    },
    "run": {
        "device": ("str", lambda v: isinstance(v, str) and bool(DEVICE_RE.match(v)),
                   "auto, cpu, cuda or cuda:N"),
        "seed": ("int", lambda v: _int(v) and 0 <= v < 2 ** 32, "an integer in [0, 2^32)"),
        "threads": ("int", lambda v: _int(v) and 1 <= v <= 1024, "an integer in [1, 1024]"),
        "eval_split": ("str", lambda v: isinstance(v, str) and v != "",
                       f"a split of the dataset ({', '.join(EVAL_SPLITS)})"),
        "eval_batch_size": _INT1,
        "gauc": _FLAG,
        "request_gauc": _FLAG,
        "checkpoint_dir": _PATH,
        "checkpoint_every": _INT1,
        "resume_from": _PATH,
        "verbose": _FLAG,
        "nan_check_every": _INT1,
        "chunk_rows": _INT1,
    },
}
# Sections a space file has that the training loop does not use.
SPACE_ONLY = {"name", "search", "scheduler", "resources", "tracking"}
SECTIONS = {"data", "model", "loss", "weighting", "optim", "run", "population", "conditioning"}


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def option_kind(section: str, key: str) -> str:
    """The kind of value an optim/run key takes (int, number, str, bool)."""
    return OPTION_SPECS[section][key][0]


def option_rule(section: str, key: str) -> str:
    """What ``section.key`` allows, in words (e.g. "a number > 0 or null")."""
    nullable = {"optim": OPTIM_DEFAULTS, "run": RUN_DEFAULTS}[section][key] is None
    return OPTION_SPECS[section][key][2] + (" or null" if nullable else "")


def option_ok(section: str, key: str, value) -> bool:
    """Whether ``value`` is allowed for ``section.key`` (its declared type and bound; None
    only where the default is None)."""
    if value is None:
        return {"optim": OPTIM_DEFAULTS, "run": RUN_DEFAULTS}[section][key] is None
    return bool(OPTION_SPECS[section][key][1](value))


def check_option(section: str, key: str, value) -> None:
    """ValueError naming ``section.key``, the value and what is allowed, unless it is."""
    from .yaml_safe import short
    if option_ok(section, key, value):
        return
    if key == "optimizer":         # the message the trainables have always given
        raise ValueError(f"optim.optimizer = {short(value)}; allowed: {', '.join(OPTIMIZERS)}")
    raise ValueError(f"{section}.{key} must be {option_rule(section, key)}, got {short(value)}")


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
    conditioning = cfg.pop("conditioning", None)
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
    for section in OPTION_SPECS:
        for key, value in out[section].items():
            check_option(section, key, value)
    if conditioning is not None:
        out["conditioning"] = _resolve_conditioning(out, conditioning, population)
    if population is not None:
        out["population"] = _resolve_population(cfg, population)
    return out


def _resolve_conditioning(out: dict, given, population) -> dict:
    """The ``conditioning`` section (trainables.conditioned owns its keys and defaults);
    a conditioned trial takes no weighting of its own and is not a population."""
    from .conditioned import check_conditioning, check_weighting, conditioning_params
    section = _strict("conditioning", given, conditioning_params())
    check_conditioning(section, out["data"].get("objectives"))
    check_weighting(out["weighting"])
    if population is not None:
        raise ValueError("a config with both conditioning and population: a conditioned "
                         "trial trains one model for every preference; remove one of them")
    return section


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
