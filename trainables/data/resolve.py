"""Turn a data config into a dataset folder.

    {path: /data/my_me_dataset, objectives: [buy, follow]}      an existing dataset
    {path: s3://bucket/me_dataset, stream: true}                  ... at a URI, streamed
    {source: synthetic, rows: 200000, objectives: [...], seed: 0, ...}

Next to ``path`` or ``source``, the reading options ``stream``, ``shuffle_buffer`` and
``endpoint`` (:data:`~trainables.data.location.STREAM_DEFAULTS`) say whether the loop
loads the data or streams it from Parquet.

Synthetic data is generated once per parameter set into
``$PARETUNE_CACHE/synthetic/<fingerprint>`` (default ``~/.cache/paretune``); concurrent
trials that need the same data race safely (write to a temporary folder, rename).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .location import STREAM_DEFAULTS, STREAM_KEYS, check_stream_options, is_uri

SOURCES = ("synthetic",)


def cache_root() -> Path:
    return Path(os.environ.get("PARETUNE_CACHE", "~/.cache/paretune")).expanduser()


def data_params(cfg: dict) -> dict:
    """The allowed keys of a data config, with defaults (for validation and docs)."""
    from . import synthetic
    if "path" in cfg:
        return {"path": None, "objectives": None, **STREAM_DEFAULTS}
    return {"source": "synthetic", **synthetic.defaults(),
            **{k: v for k, v in STREAM_DEFAULTS.items() if k != "endpoint"}}


def synthetic_params(cfg: dict) -> dict:
    """The generator's parameters of a ``source: synthetic`` data config (without
    ``source`` and the reading options)."""
    return {k: v for k, v in cfg.items() if k != "source" and k not in STREAM_KEYS}


def synthetic_folder(cfg: dict) -> Path:
    """The cache folder of a ``source: synthetic`` data config's dataset (generated there
    by :func:`resolve_data`; this only names it)."""
    from .synthetic_params import fingerprint
    return cache_root() / "synthetic" / fingerprint(synthetic_params(cfg))


def resolve_data(cfg: dict) -> tuple[Path | str, list[str] | None]:
    """Return (dataset folder, or its URI as given; objectives to use or None for all)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"data must be a mapping with 'path' or 'source', got {cfg!r}")
    cfg = dict(cfg)
    check_stream_options(cfg)
    if "path" in cfg:
        allowed = ("path", "objectives", *STREAM_KEYS)
        unknown = sorted(set(cfg) - set(allowed))
        if unknown:
            raise ValueError(f"data has unknown key(s) {', '.join(unknown)} next to 'path'; "
                             f"allowed: {', '.join(allowed)}")
        path = cfg["path"]
        return (str(path) if is_uri(path) else Path(path).expanduser()), cfg.get("objectives")
    from . import synthetic  # imported here: `python -m trainables.data.synthetic` stays clean
    source = cfg.get("source")
    if source not in SOURCES:
        raise ValueError(f"data needs 'path' (a dataset folder) or 'source' (one of "
                         f"{', '.join(SOURCES)}), got source={source!r}")
    target = synthetic_folder(cfg)
    key = target.name
    cfg = synthetic_params(cfg)
    if not (target / "meta.yaml").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
        try:
            synthetic.generate(tmp, **cfg)
            try:
                tmp.rename(target)
            except OSError:  # another process finished first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, cfg.get("objectives", synthetic.defaults()["objectives"])
