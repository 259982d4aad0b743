"""Where experiments live: a local folder or a URI that pyarrow's filesystems serve.

``open_storage(uri, endpoint=None)`` gives a :class:`Storage`: a pyarrow filesystem and a
path inside it. Everything paretune writes or reads of an experiment (Tune's
``storage_path`` + ``storage_filesystem``, ``paretune.json``, ``space.yaml``, each trial's
``resolved_config.json``, analysis outputs) goes through it, so ``s3://bucket/exps/NAME``
works from any machine that has the credentials.

- a plain path (``experiments``, ``/data/exps``): a local folder, made absolute;
- ``file:///shared/exps``: a local path too, but stated as shared by every node (a
  network mount at the same place on each machine), so multi-node runs accept it;
- ``s3://bucket/path``: S3 or any S3-compatible server (MinIO, Ceph, moto). Credentials
  come from the standard AWS chain on each machine (``AWS_ACCESS_KEY_ID``/
  ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance roles); never from paretune's config,
  so they never travel with a job. An endpoint: ``endpoint=`` (``--storage-endpoint``)
  or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``;
- ``gs://bucket/path`` (Google Cloud Storage), ``hdfs://``, ``abfs://``: as pyarrow
  serves them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


class StorageError(ValueError):
    """A storage location that cannot be served; the message names what is supported."""


def is_uri(text) -> bool:
    return isinstance(text, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].lower()


def _endpoint(endpoint: str | None) -> str | None:
    return endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL") or None


def _s3(endpoint: str | None):
    from pyarrow import fs
    kwargs = {}
    ep = _endpoint(endpoint)
    if ep:
        if not re.match(r"^https?://[^/\s]+/?$", ep):
            raise StorageError(f"--storage-endpoint {ep!r} is not an http(s)://host[:port] URL")
        scheme, host = ep.rstrip("/").split("://", 1)
        kwargs.update(endpoint_override=host, scheme=scheme)
        kwargs["region"] = os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION") or "us-east-1"
    return fs.S3FileSystem(**kwargs)


@dataclass(frozen=True)
class Storage:
    """A folder on some filesystem. ``uri`` is what users see and type."""
    uri: str
    fs: object          # pyarrow.fs.FileSystem
    path: str           # the folder inside ``fs``
    endpoint: str | None = None

    @property
    def local(self) -> bool:
        from pyarrow import fs
        return isinstance(self.fs, fs.LocalFileSystem)

    @property
    def shared(self) -> bool:
        """True when every node of a cluster sees the same files (a remote store, or a
        ``file://`` URI that states a shared mount)."""
        return not self.local or self.uri.startswith("file://")

    @property
    def local_path(self) -> Path:
        if not self.local:
            raise StorageError(f"{self.uri} is not a local folder")
        return Path(self.path)

    def join(self, *parts: str) -> "Storage":
        rel = "/".join(p.strip("/") for p in parts if p)
        sep = "" if self.uri.endswith("/") else "/"
        return Storage(f"{self.uri}{sep}{rel}", self.fs, f"{self.path.rstrip('/')}/{rel}",
                       self.endpoint)

    def _p(self, rel: str = "") -> str:
        return f"{self.path.rstrip('/')}/{rel}" if rel else self.path

    def exists(self, rel: str = "") -> bool:
        from pyarrow import fs
        return self.fs.get_file_info(self._p(rel)).type != fs.FileType.NotFound

    def is_file(self, rel: str) -> bool:
        from pyarrow import fs
        return self.fs.get_file_info(self._p(rel)).type == fs.FileType.File

    def read_bytes(self, rel: str, limit: int = 64 << 20) -> bytes:
        info = self.fs.get_file_info(self._p(rel))
        if info.size is not None and info.size > limit:
            raise StorageError(f"{self.join(rel).uri}: {info.size:,} bytes; at most "
                               f"{limit:,} expected")
        with self.fs.open_input_stream(self._p(rel)) as f:
            return f.read()

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def write_bytes(self, rel: str, data: bytes) -> None:
        parent = self._p(rel).rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        with self.fs.open_output_stream(self._p(rel)) as f:
            f.write(data)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def makedirs(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def delete(self) -> None:
        """Remove the folder and everything in it (missing is fine)."""
        if self.exists():
            self.fs.delete_dir(self.path)

    def download(self, dest: Path, skip: Callable[[str], bool] = lambda rel: False) -> int:
        """Copy the folder's files into local ``dest`` (files whose relative path ``skip``
        accepts are left out); returns the number of files copied. Files already there
        with the same size and an mtime at least as new are not copied again."""
        from pyarrow import fs
        dest = Path(dest)
        n = 0
        sel = fs.FileSelector(self.path, recursive=True, allow_not_found=True)
        root = self.path.rstrip("/") + "/"
        for info in self.fs.get_file_info(sel):
            if info.type != fs.FileType.File or not info.path.startswith(root):
                continue
            rel = info.path[len(root):]
            if ".." in rel.split("/") or skip(rel):
                continue
            out = dest / rel
            if out.is_file() and out.stat().st_size == info.size and info.mtime and \
                    out.stat().st_mtime >= info.mtime.timestamp():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with self.fs.open_input_stream(info.path) as src, open(out, "wb") as f:
                while chunk := src.read(1 << 20):
                    f.write(chunk)
            n += 1
        return n

    def upload(self, src: Path, rel: str = "") -> int:
        """Copy local folder ``src`` (recursively) into ``<this>/<rel>``; returns files copied."""
        src = Path(src)
        n = 0
        for p in sorted(src.rglob("*")):
            if not p.is_file():
                continue
            try:
                data = p.read_bytes()
            except FileNotFoundError:       # a temporary file removed meanwhile
                continue
            self.write_bytes("/".join(filter(None, [rel, p.relative_to(src).as_posix()])), data)
            n += 1
        return n


def open_storage(uri, endpoint: str | None = None) -> Storage:
    """The :class:`Storage` for a local path or a URI; :class:`StorageError` names the
    scheme and what is supported when it cannot be served."""
    from pyarrow import fs
    text = str(uri)
    if not text.strip():
        raise StorageError("--storage is empty; give a folder or a URI such as s3://bucket/exps")
    if not is_uri(text):
        path = Path(text).expanduser().resolve()
        return Storage(str(path), fs.LocalFileSystem(), str(path))
    scheme = _scheme(text)
    rest = text.split("://", 1)[1]
    if scheme == "file":
        if not rest.startswith("/"):
            raise StorageError(f"{text}: a file:// URI needs an absolute path "
                               f"(file:///shared/experiments)")
        path = str(Path(rest).resolve())
        return Storage(f"file://{path}", fs.LocalFileSystem(), path)
    if scheme not in SCHEMES:
        raise StorageError(f"storage URI scheme {scheme!r} ({text}) is not supported; use a "
                           f"local folder or one of: " + ", ".join(f"{s}://" for s in SCHEMES))
    bucket_path = rest.strip("/")
    if not bucket_path:
        raise StorageError(f"{text}: the URI names no bucket or folder")
    try:
        if scheme == "s3":
            filesystem, path = _s3(endpoint), bucket_path
        else:
            filesystem, path = fs.FileSystem.from_uri(text)
    except StorageError:
        raise
    except Exception as e:   # pyarrow built without that filesystem, bad URI, ...
        raise StorageError(f"cannot open storage {text}: {str(e).splitlines()[0][:300]}") \
            from None
    return Storage(text.rstrip("/"), filesystem, path.rstrip("/"),
                   _endpoint(endpoint) if scheme == "s3" else None)
