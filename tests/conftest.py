"""Shared fixtures. Synthetic datasets are generated once per session into a temp cache."""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep generated data and W&B files out of the user's home folder."""
    root = tmp_path_factory.mktemp("paretune-cache")
    old = {k: os.environ.get(k) for k in ("PARETUNE_CACHE", "WANDB_MODE", "WANDB_SILENT")}
    os.environ["PARETUNE_CACHE"] = str(root)
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


OBJECTIVES = ["click", "long_view", "like", "follow", "buy"]


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A 40k-row synthetic dataset with 5 objectives (folder path)."""
    from trainables.data.synthetic import generate
    out = tmp_path_factory.mktemp("small-ds")
    generate(out, rows=40_000, objectives=OBJECTIVES, seed=1, progress=False)
    return out


def pytest_collection_modifyitems(config, items):
    """Skip gpu-marked tests cleanly when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for the tests of one module."""
    import ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


KUAIRAND_OBJECTIVES = ["click", "long_view", "like", "follow", "comment", "forward",
                       "profile_enter"]


def add_duration(src, out, seed: int = 0):
    """A copy of dataset folder ``src`` in ``out`` with a ``duration`` column (seconds,
    uniform in [5, 60]) in every split, as the MP stage writes it."""
    import shutil

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    shutil.copytree(src, out, dirs_exist_ok=True)
    rng = np.random.default_rng(seed)
    for f in sorted(out.glob("*.parquet")):
        t = pq.read_table(f)
        dur = rng.uniform(5.0, 60.0, t.num_rows).astype(np.float32)
        pq.write_table(t.append_column("duration", pa.array(dur)), f)
    return out


@pytest.fixture(scope="session")
def kuairand_like_dataset(tmp_path_factory):
    """A small synthetic ME dataset with KuaiRand's seven objectives and a duration
    column: what the shipped spaces/kuairand_*.yaml run on in tests (instead of the MP
    stage's output at data/kuairand_me, which tests do not build)."""
    from trainables.data.synthetic import generate
    src = tmp_path_factory.mktemp("kuairand-like-src")
    generate(src, rows=12_000, objectives=KUAIRAND_OBJECTIVES, seed=3, progress=False,
             positive_rates={o: 0.08 for o in KUAIRAND_OBJECTIVES})
    return add_duration(src, tmp_path_factory.mktemp("kuairand-like"))
