"""Turn a data config into a dataset folder.

    {path: /data/my_me_dataset, objectives: [buy, follow]}      an existing dataset
    {source: synthetic, rows: 200000, objectives: [...], seed: 0, ...}

Synthetic data is generated once per parameter set into
``$PARETUNE_CACHE/synthetic/<fingerprint>`` (default ``~/.cache/paretune``); concurrent
trials that need the same data race safely (write to a temporary folder, rename).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


SOURCES = ("synthetic",)


def cache_root() -> Path:
    return Path(os.environ.get("PARETUNE_CACHE", "~/.cache/paretune")).expanduser()


def data_params(cfg: dict) -> dict:
    """The allowed keys of a data config, with defaults (for validation and docs)."""
    from . import synthetic
    if "path" in cfg:
        return {"path": None, "objectives": None}
    return {"source": "synthetic", **synthetic.defaults()}


def resolve_data(cfg: dict) -> tuple[Path, list[str] | None]:
    """Return (dataset folder, objectives to use or None for all)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"data must be a mapping with 'path' or 'source', got {cfg!r}")
    cfg = dict(cfg)
    if "path" in cfg:
        unknown = sorted(set(cfg) - {"path", "objectives"})
        if unknown:
            raise ValueError(f"data has unknown key(s) {', '.join(unknown)} next to 'path'; "
                             f"allowed: path, objectives")
        return Path(cfg["path"]).expanduser(), cfg.get("objectives")
    from . import synthetic  # imported here: `python -m trainables.data.synthetic` stays clean
    source = cfg.pop("source", None)
    if source not in SOURCES:
        raise ValueError(f"data needs 'path' (a dataset folder) or 'source' (one of "
                         f"{', '.join(SOURCES)}), got source={source!r}")
    key = synthetic.fingerprint(cfg)
    target = cache_root() / "synthetic" / key
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
