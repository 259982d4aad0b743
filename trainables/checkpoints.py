"""Checkpoints of the training loop: written and read as tensors and plain data only.

A checkpoint folder holds :data:`CHECKPOINT_FILE`, read with
``torch.load(weights_only=True)`` so that loading a file cannot run code
(:class:`UnsafeCheckpoint` otherwise); :func:`load_model` rebuilds its model.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch

from .models import FeatureSpec, build_model

CHECKPOINT_FILE = "model.pt"


class UnsafeCheckpoint(ValueError):
    """A checkpoint file holds more than tensors and plain data (so it is not read)."""


def _load_checkpoint(path) -> dict:
    """A checkpoint's payload, read with ``torch.load(weights_only=True)``: tensors and
    plain data only (dict, list, tuple, str, int, float, bool, None), so a crafted file
    cannot run code when it is loaded; anything else is refused."""
    import pickle
    f = Path(path) / CHECKPOINT_FILE
    try:
        payload = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message: which object was refused (its advice to turn the check off is
        # left out on purpose)
        why = [ln.strip() for ln in str(e).splitlines()
               if "GLOBAL" in ln or "Unsupported" in ln]
        raise UnsafeCheckpoint(
            f"{f}: refused: the file holds objects other than tensors and plain data"
            f"{' (' + why[0][:300] + ')' if why else ''}; paretune reads checkpoints as "
            f"weights and plain data only, so that loading a file cannot run code. Use a "
            f"checkpoint written by paretune's training loop") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise UnsafeCheckpoint(f"{f}: not a paretune checkpoint (expected a mapping with the "
                               f"model's weights, got {type(payload).__name__})")
    return payload


def _plain_payload(x, where: str = "checkpoint"):
    """``x`` with only what ``torch.load(weights_only=True)`` reads back: tensors, dicts,
    lists, tuples, str, int, float, bool, None. numpy arrays become tensors, numpy scalars
    Python numbers, paths strings; any other object is an error naming where it is."""
    if x is None or type(x) in (bool, int, float, str) or isinstance(x, torch.Tensor):
        return x
    if isinstance(x, dict):
        out = {k: _plain_payload(v, f"{where}.{k}") for k, v in x.items()}
        if isinstance(x, OrderedDict):          # a module's state_dict keeps its versions
            out = OrderedDict(out)
            if hasattr(x, "_metadata"):
                out._metadata = _plain_payload(x._metadata, f"{where}._metadata")
        return out
    if isinstance(x, (list, tuple)):
        out = [_plain_payload(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return out if isinstance(x, list) else tuple(out)
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    for t in (bool, int, float, str):            # numpy float64 is a float, IntEnum an int...
        if isinstance(x, t):
            return t(x)
    if type(x).__module__ == "numpy":
        import numpy as np
        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x).copy())
        if hasattr(x, "item"):
            return x.item()
    raise TypeError(f"{where}: a {type(x).__name__} cannot go into a checkpoint (only "
                    f"tensors and plain data are saved, so that loading one cannot run code)")


def _save_checkpoint(folder, payload: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(folder) / (CHECKPOINT_FILE + ".tmp")
    torch.save(_plain_payload(payload), tmp)
    os.replace(tmp, Path(folder) / CHECKPOINT_FILE)


def load_model(checkpoint_dir, device="cpu"):
    """Rebuild the model of a checkpoint folder; returns (model, payload). A conditioned
    trial's model is a :class:`~trainables.models.ConditionedModel`: score it with
    ``model.score(scores, cat, num, w)``."""
    payload = _load_checkpoint(checkpoint_dir)
    cfg = payload["config"]
    f = payload["features"]
    features = FeatureSpec(tuple(f["categorical"].items()), tuple(f["numeric"]))
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "family"}
    if cfg.get("conditioning") is not None:    # model.score(scores, cat, num, w)
        from .models import ConditionedModel
        model = ConditionedModel(cfg["model"]["family"], len(payload["objectives"]), features,
                                 model_cfg)
    else:
        model = build_model(cfg["model"]["family"], len(payload["objectives"]), features,
                            model_cfg)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), payload
