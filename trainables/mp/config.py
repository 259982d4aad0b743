"""Reading an MP stage config (a YAML mapping of sections) with strict keys.

Every section has one owner that declares its keys and defaults:

- ``model: {family: mmoe, emb_dim: 16, ...}``: the family is a name in ``MP_MODELS``; its
  hyper-parameters and their defaults are the model constructor's keywords;
- ``weighting: {kind: pe_ltr, every: 5, ...}``: a name in the weighting registry
  (``trainables.weighting.WEIGHTINGS``) that can weight a multi-task model's losses; its
  parameters are the weighting class's keywords;
- a settings section (e.g. ``train``): a dataclass whose fields are declared with
  :func:`option` (default, check, and what is allowed, said once).

A source's config (``trainables.kuairand.config``) composes these. Any problem raises one
:class:`ConfigError` naming the file, the key path, the bad value and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, field, fields

from ..yaml_safe import short

MODEL_DEFAULT = "mmoe"          # model.family when the config leaves it out
WEIGHTING_DEFAULT = "static"    # weighting.kind when the config leaves it out (as the ME's)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key path."""


# --------------------------------------------------------------------------- declarations
def option(default, check, rule: str):
    """A dataclass field with its check (``check(value) -> bool``) and what is allowed."""
    return field(default=default, metadata={"check": check, "rule": rule})


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def one_of(*choices):
    """(check, rule) for a value among ``choices``."""
    return (lambda v: isinstance(v, str) and v in choices), \
        "one of " + ", ".join(map(str, choices))


def check_settings(obj, section: str) -> None:
    """ValueError naming ``section.key``, the value and what is allowed, for the first
    field of dataclass ``obj`` whose value its declaration refuses."""
    for f in fields(obj):
        check = f.metadata.get("check")
        value = getattr(obj, f.name)
        if check is not None and not check(value):
            raise ValueError(f"{section}.{f.name} = {short(value)}: must be "
                             f"{f.metadata['rule']}")


def defaults(cls) -> dict:
    """A settings dataclass's keys and their declared defaults."""
    return {f.name: f.default if f.default is not MISSING else f.default_factory()
            for f in fields(cls)}


# --------------------------------------------------------------------------- reading
def mapping(value, path: str, file, allowed) -> dict:
    """``value`` as a dict whose keys are all in ``allowed`` (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: {path} = {short(value)}: must be a mapping with keys "
                          f"among {', '.join(sorted(allowed))}")
    for key, v in value.items():
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{file}: unknown key {where} = {short(v)}; allowed in "
                              f"{path or 'the top level'}: {', '.join(sorted(allowed))}")
    return dict(value)


def read_settings(section: str, given, cls, file):
    """Dataclass ``cls`` from mapping ``given`` (defaults for keys left out), checked."""
    obj = cls(**mapping(given, section, file, defaults(cls)))
    try:
        check_settings(obj, section)
    except ValueError as e:
        raise ConfigError(f"{file}: {e}") from None
    return obj


def _selector(given, key: str, default: str, path: str, file) -> tuple[str, dict]:
    """(the section's selector, e.g. model.family, or ``default``; its other keys)."""
    if given is None:
        return default, {}
    if not isinstance(given, dict):
        raise ConfigError(f"{file}: {path} = {short(given)}: must be a mapping ({key}: NAME "
                          f"and that {path}'s parameters)")
    rest = dict(given)
    name = rest.pop(key, default)
    if not isinstance(name, str):
        raise ConfigError(f"{file}: {path}.{key} = {short(name)}: must be a name")
    return name, rest


def read_model(given, file, n_tasks: int) -> tuple[str, dict]:
    """(family, params) of the ``model`` section, checked by building the model once on a
    one-column feature set (cheap: the real one's vocabularies are fitted later)."""
    from ..models._features import FeatureSpec
    from . import build_mp_model, mp_model_params
    family, rest = _selector(given, "family", MODEL_DEFAULT, "model", file)
    try:
        allowed = mp_model_params(family)           # the registry's unknown-name error
    except ValueError as e:
        raise ConfigError(f"{file}: model.family = {short(family)}: {e}") from None
    params = mapping(rest, "model", file, ["family", *allowed])
    try:
        build_mp_model(family, n_tasks, FeatureSpec((("probe", 2),), ("probe_num",)), params)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{file}: model ({family}) {short(params)}: {e}") from None
    return family, params


def read_weighting(given, file, objectives: list[str]) -> tuple[str, dict]:
    """(kind, params) of the ``weighting`` section, checked by building the weighting."""
    from ..weighting import weighting_params
    kind, rest = _selector(given, "kind", WEIGHTING_DEFAULT, "weighting", file)
    try:
        allowed = weighting_params(kind)            # the registry's unknown-name error
    except ValueError as e:
        raise ConfigError(f"{file}: weighting.kind = {short(kind)}: {e}") from None
    params = mapping(rest, "weighting", file, ["kind", *allowed])
    try:
        task_weighting(kind, objectives, params)
    except ValueError as e:
        raise ConfigError(f"{file}: {e}") from None
    return kind, params


def task_weighting(kind: str, objectives: list[str], params: dict | None = None):
    """The registry's weighting ``kind`` for an MP model's per-objective losses; a
    ValueError when it cannot weight a multi-task model (``Weighting.multi_task_issue``)."""
    from ..weighting import build_weighting
    w = build_weighting(kind, objectives, params)
    issue = w.multi_task_issue()
    if issue:
        raise ValueError(f"weighting {kind!r} {short(params or {})} cannot weight the MP "
                         f"model's tasks: {issue}")
    return w
