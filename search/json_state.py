"""State files as JSON, written once for every searcher and scheduler that saves state.

A state is a JSON object ``{"format": <name>, "version": <int>, ...}``: plain data, never a
pickle, so restoring a search reads nothing executable. :func:`write_state` writes it
atomically (a hidden temporary file in the same folder, then ``os.replace``), so a search
killed mid-write leaves the previous state whole; :func:`read_state` refuses a file that is
not JSON, or of another format or version, with one :class:`StateError` naming the file.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path


class StateError(ValueError):
    """A state file that is not the expected paretune JSON state."""


def check_state(state, fmt: str, version: int, where: str = "state") -> dict:
    """``state`` itself when it is a mapping of format ``fmt`` and version ``version``."""
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise StateError(f"{where}: not a paretune {fmt} state (no 'format': {fmt!r}); "
                         f"refused")
    if state.get("version") != version:
        raise StateError(f"{where}: {fmt} state version {state.get('version')!r}; this "
                         f"paretune reads version {version}")
    return state


def state_text(fmt: str, version: int, payload: dict) -> str:
    """The JSON text of a state (NaN and infinities refused: JSON has none)."""
    return json.dumps({"format": fmt, "version": version, **payload}, allow_nan=False)


def write_state(path, fmt: str, version: int, payload: dict) -> None:
    """Write ``payload`` as a ``fmt`` state at ``path``, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
    try:
        tmp.write_text(state_text(fmt, version, payload), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_state(path, fmt: str, version: int) -> dict:
    """The ``fmt`` state at ``path`` (:class:`StateError` if it is anything else)."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StateError(f"{path}: not a JSON {fmt} state; refused") from None
    return check_state(state, fmt, version, str(path))
