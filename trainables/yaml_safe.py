"""Reading user files with bounded time and memory: YAML (space files, meta.yaml, train
configs) and the values echoed in error messages.

    data = load_yaml(path)            # YAMLInputError (a ValueError) naming the file
    short(value)                      # repr(value), at most SHOW_CHARS characters

Limits (each error names the file and the limit):

- a file larger than :data:`MAX_YAML_BYTES` (1 MiB) is refused before it is parsed; at
  most that many bytes (plus one) are ever read, so a device or a huge file costs nothing;
- the text must be UTF-8; the error gives the offset of the first bad byte;
- nesting deeper than :data:`MAX_YAML_DEPTH` levels is refused;
- a document whose values, with every alias (``*name``) expanded, number more than
  :data:`MAX_YAML_NODES` is refused before anything is constructed (a 400-byte "billion
  laughs" document would otherwise expand to 10^9 values when printed or copied), and so
  is an alias that contains itself;
- duplicate mapping keys are an error (PyYAML would keep the last one silently), and
  ``1e-3`` reads as a float (YAML 1.1 wants ``1.0e-3``).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 100
SHOW_CHARS = 200

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when built with it


class YAMLInputError(ValueError):
    """A file that cannot be read as the YAML it should be; the message names the file."""


class SafeLoader(_Base):
    """Safe YAML with duplicate keys an error and 1e-3 read as a float."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:       # an unhashable key: PyYAML reports it itself
                continue
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep)


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


# --- short reprs ------------------------------------------------------------------------------

def short(value, limit: int = SHOW_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (with "..."), computed without ever
    building the whole repr of a huge or deeply nested value."""
    out: list[str] = []
    size = [0]

    def put(s: str) -> bool:
        out.append(s)
        size[0] += len(s)
        return size[0] <= limit

    def walk(v, depth: int) -> bool:
        if depth > 20:
            return put("...")
        if isinstance(v, dict):
            if not put("{"):
                return False
            for i, (k, x) in enumerate(v.items()):
                if (i and not put(", ")) or not walk(k, depth + 1) or not put(": ") \
                        or not walk(x, depth + 1):
                    return False
            return put("}")
        if isinstance(v, (list, tuple)):
            op, cl = ("[", "]") if isinstance(v, list) else ("(", ",)" if len(v) == 1 else ")")
            if not put(op):
                return False
            for i, x in enumerate(v):
                if (i and not put(", ")) or not walk(x, depth + 1):
                    return False
            return put(cl)
        if isinstance(v, str) and len(v) > limit:
            return put(repr(v[:limit + 1]))
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 4 * limit:
            return put(f"<an integer of about {int(v.bit_length() * 0.30103)} digits>")
        return put(repr(v))

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


def cap(message: str, limit: int = 1500) -> str:
    """A message cut to ``limit`` characters (a last guard; values are already short)."""
    return message if len(message) <= limit else message[:limit] + " ... (message cut)"


# --- files -------------------------------------------------------------------------------------

def read_text(path, what: str = "file", max_bytes: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of ``path``; YAMLInputError for a missing, unreadable, too large or
    non-UTF-8 file. Never reads more than ``max_bytes + 1`` bytes."""
    path = Path(path)
    try:
        if path.is_dir():
            raise YAMLInputError(f"{path}: is a folder; expected a {what}")
        if path.exists() and not path.is_file():     # a device or a pipe: never read it
            raise YAMLInputError(f"{path}: not a regular file; expected a {what}")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise YAMLInputError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > max_bytes:
        raise YAMLInputError(f"{path}: larger than {max_bytes:,} bytes; a {what} is a small "
                             f"text file (limit {max_bytes:,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YAMLInputError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                             f"{e.start}); save the {what} as UTF-8") from None


def parse_yaml(text: str, name, loader=SafeLoader):
    """Parse one YAML document from ``text`` within the limits above; ``name`` (the file)
    starts every error message."""
    ld = loader(text)
    try:
        try:
            node = ld.get_single_node()
        except RecursionError:
            raise YAMLInputError(f"{name}: not valid YAML: nested deeper than Python can "
                                 f"parse; limit {MAX_YAML_DEPTH} levels") from None
        if node is None:
            return None
        _check_size(node, name)
        return ld.construct_document(node)
    except yaml.YAMLError as e:
        raise YAMLInputError(cap(f"{name}: not valid YAML: {e}")) from None
    except (ValueError, OverflowError, TypeError, RecursionError) as e:
        if isinstance(e, YAMLInputError):
            raise
        # SafeConstructor's own failures, e.g. a date 2022-13-45 or an int of 5000 digits
        raise YAMLInputError(cap(f"{name}: not valid YAML: a value cannot be read "
                                 f"({type(e).__name__}: {short(str(e))})")) from None
    finally:
        ld.dispose()


def load_yaml(path, what: str = "YAML file", loader=SafeLoader):
    """:func:`read_text` then :func:`parse_yaml`."""
    return parse_yaml(read_text(path, what), path, loader)


def _check_size(root, name) -> None:
    """Refuse a node graph that is too deep, recursive, or too large with its aliases
    expanded; linear in the number of distinct nodes (shared nodes counted once each,
    their expanded sizes memoized)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(k)] for k in kids)
            size[key] = total
            if total > MAX_YAML_NODES:
                raise YAMLInputError(
                    f"{name}: the YAML document expands to more than {MAX_YAML_NODES:,} "
                    f"values (aliases such as *name count each time they are used); limit "
                    f"{MAX_YAML_NODES:,}")
            continue
        if key in size:
            continue
        if key in on_path:
            raise YAMLInputError(f"{name}: a YAML alias refers to a node that contains it "
                                 f"(a recursive structure); not allowed")
        if depth > MAX_YAML_DEPTH:
            raise YAMLInputError(f"{name}: the YAML document is nested more than "
                                 f"{MAX_YAML_DEPTH} levels deep; limit {MAX_YAML_DEPTH}")
        on_path.add(key)
        stack.append((node, depth, True))
        for k in kids:
            if id(k) in on_path:
                raise YAMLInputError(f"{name}: a YAML alias refers to a node that contains "
                                     f"it (a recursive structure); not allowed")
            if id(k) not in size:
                stack.append((k, depth + 1, False))


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []
