"""Experiments on remote storage, for code that reads folders.

Analysis reads an experiment as a folder (Tune's trial folders, ``paretune.json``). For an
experiment at a URI (``s3://bucket/exps/NAME``, ``gs://...``, ``file://...``) paretune keeps
a local mirror of its small files under ``$PARETUNE_CACHE/remote/`` (results, configs,
errors, Tune's state; not checkpoints or W&B files), refreshed at each command, and
uploads what a command writes (``analysis/``, ``rerun-*``) back to the URI.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from trainables.storage import Storage, is_uri, open_storage

# what analysis never needs locally: model weights and logs that can be large
_SKIP = re.compile(r"(^|/)(checkpoint_\d+|wandb|train)(/|$)|\.(pt|pkl|parquet|tfevents.*)$")


def mirror_dir(storage: Storage) -> Path:
    from trainables.data.resolve import cache_root
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", storage.uri.split("://", 1)[-1]).strip("_")[-80:]
    digest = hashlib.sha1(storage.uri.encode()).hexdigest()[:10]
    return cache_root() / "remote" / f"{safe}-{digest}"


def experiment_folder(experiment, endpoint: str | None = None) -> tuple[Path, Storage | None]:
    """(a local folder to read, the remote storage it mirrors or None for a local one)."""
    if not is_uri(str(experiment)) or str(experiment).startswith("file://"):
        path = open_storage(experiment).local_path if is_uri(str(experiment)) else \
            Path(experiment)
        return path, None
    st = open_storage(experiment, endpoint)
    if not st.exists("paretune.json"):
        raise FileNotFoundError(f"{st.uri}: no paretune experiment there (no paretune.json); "
                                f"give the URI `search run` printed")
    local = mirror_dir(st)
    local.mkdir(parents=True, exist_ok=True)
    st.download(local, skip=lambda rel: bool(_SKIP.search(rel)))
    return local, st


def publish(local: Path, storage: Storage | None, *folders: str) -> None:
    """Upload the named subfolders of the local mirror back to the experiment's URI."""
    if storage is None:
        return
    for name in folders:
        src = Path(local) / name
        if src.is_dir():
            storage.upload(src, name)
