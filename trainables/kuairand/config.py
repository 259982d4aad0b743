"""The MP stage's config on KuaiRand: one YAML file, strict keys, defaults from their owners.

    objectives: [click, long_view, ...]   # default: all seven (schema.OBJECTIVES)
    data:      {unknown: error, include_random: false, max_ids: 500000, request_window_s: 3600}
    splits:    {mp_valid: last_day, by: day}
    model:     {family: mmoe, emb_dim: 16, ...}        # MP_MODELS; defaults: its signature
    weighting: {kind: pe_ltr, gradients: shared, ...}  # WEIGHTINGS; defaults: its signature
    train:     {epochs: 10, batch_size: 1024, ...}     # trainables.mp.train.TrainConfig

A key left out takes its owner's default (:class:`DataSettings`, :class:`SplitSettings`,
the model's constructor, the weighting's class, ``TrainConfig``), not the shipped file's.
The shipped file, ``trainables/kuairand/mp.yaml`` (:data:`DEFAULT_CONFIG`), is what
``python -m trainables.mp kuairand`` reads without ``--config``; it documents every key.
The file is read within ``trainables/yaml_safe.py``'s limits; every problem is one
:class:`~trainables.mp.config.ConfigError` naming the file, the key path, the bad value
and what is allowed, raised before any log is read.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..mp.codes import MAX_IDS
from ..mp.config import (MODEL_DEFAULT, WEIGHTING_DEFAULT, ConfigError, is_int, is_number,
                         mapping, one_of, option, read_model, read_settings, read_weighting)
from ..mp.train import TrainConfig
from ..yaml_safe import YAMLInputError, load_yaml, short
from .schema import OBJECTIVES, UNKNOWN

DEFAULT_CONFIG = Path(__file__).with_name("mp.yaml")
SECTIONS = ("objectives", "data", "splits", "model", "weighting", "train")
MP_VALID = ("last_day", "random")
SPLIT_BY = ("day", "user")


@dataclass
class DataSettings:
    """``data``: which exposures are read and how they become inputs and requests."""

    unknown: str = option("error", *one_of(*UNKNOWN))
    include_random: bool = option(False, lambda v: isinstance(v, bool), "true or false")
    max_ids: int = option(MAX_IDS, lambda v: is_int(v) and v >= 2,
                          "an integer >= 2 (id columns with more values are hashed into "
                          "that many buckets)")
    request_window_s: float = option(3600, lambda v: is_number(v) and v > 0,
                                     "a number of seconds > 0")


@dataclass
class SplitSettings:
    """``splits``: the MP model's early-stopping rows and how the ME splits are cut."""

    mp_valid: str = option("last_day", *one_of(*MP_VALID))
    by: str = option("day", *one_of(*SPLIT_BY))


@dataclass
class StageConfig:
    """A checked MP stage config (:func:`load_config`)."""

    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    data: DataSettings = field(default_factory=DataSettings)
    splits: SplitSettings = field(default_factory=SplitSettings)
    model: str = MODEL_DEFAULT
    model_params: dict = field(default_factory=dict)
    weighting: str = WEIGHTING_DEFAULT
    weighting_params: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    file: str = "(defaults)"

    def as_dict(self) -> dict:
        """The config as a YAML mapping, every default filled in (for meta.yaml)."""
        from ..mp import mp_model_params
        from ..weighting import weighting_params
        return {"objectives": list(self.objectives), "data": asdict(self.data),
                "splits": asdict(self.splits),
                "model": {"family": self.model, **mp_model_params(self.model),
                          **copy.deepcopy(self.model_params)},
                "weighting": {"kind": self.weighting, **weighting_params(self.weighting),
                              **copy.deepcopy(self.weighting_params)},
                "train": self.train.as_dict()}


def _objectives(value, file) -> list[str]:
    if value is None:
        return list(OBJECTIVES)
    ok = isinstance(value, list) and value and all(isinstance(o, str) for o in value)
    bad = [o for o in value if o not in OBJECTIVES] if ok else []
    if not ok or bad or len(set(value)) != len(value):
        raise ConfigError(f"{file}: objectives = {short(value)}: must be a list of distinct "
                          f"names among {', '.join(OBJECTIVES)}"
                          + (f" ({', '.join(map(str, bad))} is not)" if bad else ""))
    return list(value)


def config_from_dict(raw, file="config") -> StageConfig:
    """A :class:`StageConfig` from a parsed YAML mapping (None: every default)."""
    raw = mapping(raw, "", file, SECTIONS)
    objectives = _objectives(raw.get("objectives"), file)
    model, model_params = read_model(raw.get("model"), file, len(objectives))
    weighting, weighting_params = read_weighting(raw.get("weighting"), file, objectives)
    return StageConfig(
        objectives=objectives,
        data=read_settings("data", raw.get("data"), DataSettings, file),
        splits=read_settings("splits", raw.get("splits"), SplitSettings, file),
        model=model, model_params=model_params,
        weighting=weighting, weighting_params=weighting_params,
        train=read_settings("train", raw.get("train"), TrainConfig, file),
        file=str(file))


def load_config(path=None, overrides: dict | None = None) -> StageConfig:
    """The config in file ``path`` (None: the shipped :data:`DEFAULT_CONFIG`), with
    ``overrides`` (section -> {key: value}) laid over its sections before the checks."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = load_yaml(path, "MP config file")
    except YAMLInputError as e:
        raise ConfigError(str(e)) from None
    if overrides:
        raw = mapping(raw, "", path, SECTIONS)
        for section, values in overrides.items():
            base = raw.get(section)
            raw[section] = {**base, **values} if isinstance(base, dict) and \
                isinstance(values, dict) else values
    return config_from_dict(raw, path)
