"""Where a dataset lives, and how a data config says to read it (docs/DESIGN.md, "Data
contract").

:class:`DataLocation` is a dataset folder on any filesystem :mod:`trainables.storage`
serves: a local folder, ``file:///shared/data``, ``s3://bucket/data`` (AWS or any
S3-compatible endpoint: ``data.endpoint``, else ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``; credentials from the standard chain on each machine), ``gs://`` and
the other pyarrow filesystems. It reads meta.yaml (with the local loader's checks and
limits), names each split's Parquet file (which must lie inside the folder) and opens it.

A data config's reading options, next to ``path`` or ``source`` (:data:`STREAM_DEFAULTS`):

- ``stream``: ``auto`` (default), ``true`` or ``false``. ``false`` loads each split into
  memory (:mod:`trainables.data.schema`); ``true`` streams it from Parquet
  (:mod:`trainables.data.stream`); ``auto`` streams a dataset at a URI, or one whose train
  split would take more than :data:`STREAM_AUTO_BYTES` as tensors (:func:`tensor_bytes`);
- ``shuffle_buffer``: rows a streaming worker holds to shuffle (default 1,000,000);
- ``endpoint``: an ``http(s)://host:port`` S3 endpoint for an ``s3://`` path.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..yaml_safe import short
from .checks import DatasetError

STREAM_DEFAULTS = {"stream": "auto", "shuffle_buffer": 1_000_000, "endpoint": None}
STREAM_KEYS = tuple(STREAM_DEFAULTS)
STREAM_AUTO_BYTES = 1 << 30      # train split tensors above 1 GiB stream under stream: auto
MIN_SHUFFLE_BUFFER = 1


def is_uri(text) -> bool:
    from ..storage import is_uri as _is_uri
    return _is_uri(str(text))


def check_stream_options(data: dict) -> None:
    """ValueError naming ``data.<key>``, the bad value and what is allowed."""
    stream = data.get("stream", "auto")
    if not (stream == "auto" if isinstance(stream, str) else isinstance(stream, bool)):
        raise ValueError(f"data.stream = {short(stream)}; allowed: auto (stream a dataset at "
                         f"a URI or whose train split exceeds {STREAM_AUTO_BYTES >> 20} MiB as "
                         f"tensors), true (always stream from Parquet) or false (load into "
                         f"memory)")
    buf = data.get("shuffle_buffer", STREAM_DEFAULTS["shuffle_buffer"])
    if not isinstance(buf, int) or isinstance(buf, bool) or buf < MIN_SHUFFLE_BUFFER:
        raise ValueError(f"data.shuffle_buffer = {short(buf)}; must be an integer >= "
                         f"{MIN_SHUFFLE_BUFFER} (rows a streaming worker holds to shuffle)")
    endpoint = data.get("endpoint")
    if endpoint is not None:
        import re
        if not isinstance(endpoint, str) or not re.match(r"^https?://[^/\s]+/?$", endpoint):
            raise ValueError(f"data.endpoint = {short(endpoint)}; must be an "
                             f"http(s)://host[:port] URL of an S3-compatible server")
        if not str(data.get("path", "")).startswith("s3://"):
            raise ValueError(f"data.endpoint = {short(endpoint)} is for an s3:// data.path; "
                             f"data.path is {short(data.get('path', data.get('source')))}")


def tensor_bytes(rows: int, objectives: int, categorical: int, numeric: int,
                 duration: bool = False) -> int:
    """Bytes a split of ``rows`` takes as a TensorSplit: float32 scores and labels, int64
    codes, float32 numeric features, int64 user and request ids, float32 duration."""
    return rows * (8 * objectives + 8 * categorical + 4 * numeric + 16 + 4 * duration)


class DataLocation:
    """A dataset folder: local (a path) or at a URI; ``uri`` is what messages show."""

    def __init__(self, path, endpoint: str | None = None):
        from pyarrow import fs
        self.local = not is_uri(path)
        if self.local:
            self.root = Path(path).expanduser().resolve()
            self.uri, self.fs = str(self.root), fs.LocalFileSystem()
        else:
            from ..storage import StorageError, open_storage
            try:
                self._storage = open_storage(str(path), endpoint)
            except StorageError as e:
                raise DatasetError(f"data.path {path}: {e}") from None
            self.uri, self.fs, self.root = self._storage.uri, self._storage.fs, \
                self._storage.path
        self._meta = None
        self._files = None

    def meta(self) -> dict:
        """meta.yaml, checked as the local loader checks it (size, YAML limits, keys)."""
        if self._meta is None:
            from .schema import check_meta, read_meta
            if self.local:
                self._meta = read_meta(self.root)
            else:
                self._meta = check_meta(self._read_yaml("meta.yaml"), f"{self.uri}/meta.yaml")
        return self._meta

    def _read_yaml(self, name: str):
        from ..yaml_safe import MAX_YAML_BYTES, YAMLInputError, parse_yaml
        where = f"{self.uri}/{name}"
        try:
            if not self._storage.is_file(name):
                raise DatasetError(f"{where}: missing; a dataset folder needs meta.yaml "
                                   f"listing its objectives")
            data = self._storage.read_bytes(name, limit=MAX_YAML_BYTES)
            return parse_yaml(data.decode("utf-8"), where)
        except (YAMLInputError, DatasetError):
            raise
        except UnicodeDecodeError:
            raise DatasetError(f"{where}: not UTF-8 text; save meta.yaml as UTF-8") from None
        except Exception as e:   # a storage error, a refused connection, missing credentials
            raise DatasetError(f"{where}: cannot be read ({type(e).__name__}: "
                               f"{short(str(e))})") from None

    def files(self) -> dict[str, str]:
        """Split name -> its Parquet file inside ``fs`` (a path string)."""
        if self._files is None:
            from .schema import split_files
            if self.local:
                self._files = {k: str(v) for k, v in split_files(self.root, self.meta()).items()}
            else:
                self._files = self._remote_files(self.meta())
        return self._files

    def _remote_files(self, meta: dict) -> dict[str, str]:
        from pyarrow import fs
        splits = meta.get("splits")
        if splits is None:
            sel = fs.FileSelector(self.root, recursive=False, allow_not_found=True)
            found = {PurePosixPath(i.path).stem: i.path for i in self.fs.get_file_info(sel)
                     if i.path.endswith(".parquet")}
            if not found:
                raise DatasetError(f"{self.uri}: no Parquet files found and meta.yaml lists "
                                   f"no 'splits'")
            return dict(sorted(found.items()))
        if not isinstance(splits, dict) or not splits:
            raise DatasetError(f"{self.uri}/meta.yaml: 'splits' must map split name -> file, "
                               f"got {short(splits)}")
        out = {}
        for name, entry in splits.items():
            fname = entry.get("file") if isinstance(entry, dict) else entry
            rel = PurePosixPath(fname) if isinstance(fname, str) and fname else None
            if not isinstance(name, str) or rel is None or rel.is_absolute() or \
                    ".." in rel.parts or "://" in fname:
                raise DatasetError(f"{self.uri}/meta.yaml: splits.{short(name)} = "
                                   f"{short(fname)}: must name a Parquet file inside the "
                                   f"dataset folder (such as {name}.parquet)")
            out[name] = f"{self.root.rstrip('/')}/{rel.as_posix()}"
        return out

    def where(self, split: str) -> str:
        """The split's file as a user would type it (for messages)."""
        path = self.files()[split]
        return path if self.local else f"{self.uri}/{path[len(self.root.rstrip('/')) + 1:]}"

    def open(self, split: str):
        """The split's ``pyarrow.parquet.ParquetFile``; DatasetError when it is missing or
        is not Parquet."""
        import pyarrow.parquet as pq
        files = self.files()
        if split not in files:
            raise DatasetError(f"{self.uri}: no split {split!r}; splits: {', '.join(files)}")
        where = self.where(split)
        try:
            source = files[split] if self.local else self.fs.open_input_file(files[split])
            return pq.ParquetFile(source)
        except FileNotFoundError:
            raise DatasetError(f"{where}: split {split!r} file is missing") from None
        except Exception as e:   # not Parquet, unreadable, a storage error
            raise DatasetError(f"{where}: cannot be read as Parquet ({type(e).__name__}: "
                               f"{short(str(e))})") from None
