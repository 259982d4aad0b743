"""ME datasets (docs/DESIGN.md, "Data contract"): Parquet splits + meta.yaml, validated on load.

    from trainables.data import load_dataset, resolve_data, validate_dataset
    ds = load_dataset("path/to/dataset", objectives=["buy", "follow"])
    train = ds.tensors("train", device)
    validate_dataset("path/to/dataset", ["buy"])   # every split, batch by batch, no load

``resolve_data(config["data"])`` turns a data config ({path: ...} or
{source: synthetic, ...}) into a dataset folder (or URI), generating synthetic data once
into a cache folder keyed by its parameters. ``data.stream`` decides whether the training
loop loads the splits or streams them from Parquet (``location``, ``stream``; the loop's
side is ``trainables.sources``).
"""
from __future__ import annotations

from .schema import Dataset, DatasetError, load_dataset
from .tensors import TensorSplit
from .resolve import resolve_data, data_params
from .validate import dataset_splits, validate_dataset

__all__ = ["Dataset", "DatasetError", "TensorSplit", "load_dataset", "resolve_data",
           "data_params", "validate_dataset", "dataset_splits"]
