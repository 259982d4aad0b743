"""The command-line flags the benchmarks share, declared once.

Each benchmark builds its parser with :func:`parser`, adds the common flags it uses with
:func:`add_common` (giving only their defaults), then its own flags. Common values arrive
as the strings typed; :func:`check_ints` turns the integer ones into ints, and a bad
value raises :class:`BenchError` naming the flag, the value and what is allowed. A
benchmark's ``main`` turns that into a usage error (exit code 2) before any work starts.
"""
from __future__ import annotations

import argparse


class BenchError(ValueError):
    """A bad command-line value: names the option, the value and what is allowed."""


# dest -> (help, smallest allowed value for an integer flag, or None for a string flag).
# "{default}" in a help text is filled with the benchmark's default.
COMMON: dict[str, tuple[str, int | None]] = {
    "device": ("cpu, cuda or cuda:N (default: cuda when a GPU is present)", None),
    "threads": ("torch CPU threads (default: torch's own choice)", 1),
    "objectives": ("number of objectives (default {default})", 1),
    "batch_size": ("rows per training step (default {default})", 2),
    "rows": ("rows of synthetic data (default {default})", 1000),
    "epochs": ("epochs per model (default {default})", 1),
    "steps": ("timed steps per block (default {default})", 1),
    "warmup": ("untimed steps before the first block (default {default})", 0),
    "repeats": ("timed blocks; the best one is reported (default {default})", 1),
    "seed": ("random seed (default {default})", 0),
    "seeds": ("repeat the whole benchmark for this many seeds (default {default})", 1),
    "out": ("output folder (default {default})", None),
}


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of a module docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common(ap: argparse.ArgumentParser, **defaults) -> None:
    """Add the common flags named (``batch_size`` -> ``--batch-size``) with these
    defaults; ``help_<name>="..."`` replaces a flag's help text."""
    helps = {k[5:]: defaults.pop(k) for k in list(defaults) if k.startswith("help_")}
    for dest, default in defaults.items():
        if dest not in COMMON:
            raise KeyError(f"no common benchmark flag {dest!r}; known: {', '.join(COMMON)}")
        text = helps.get(dest, COMMON[dest][0])
        ap.add_argument("--" + dest.replace("_", "-"), dest=dest,
                        default=None if default is None else str(default),
                        help=text.format(default=default))
    ap.set_defaults(_common=(ap.get_default("_common") or ()) + tuple(defaults))


def integer(option: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi]; BenchError naming ``option`` otherwise."""
    try:
        v = int(str(value))
    except ValueError:
        v = None
    if v is None or v < lo or (hi is not None and v > hi):
        allowed = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise BenchError(f"{option} {value!r}: must be {allowed}")
    return v


def check_ints(a: argparse.Namespace, **lows) -> None:
    """Turn the integer common flags the parser got from :func:`add_common` into ints
    (None stays None); ``lows`` overrides a flag's smallest allowed value."""
    for dest in getattr(a, "_common", ()):
        lo = COMMON[dest][1]
        value = getattr(a, dest, None)
        if lo is None or value is None or isinstance(value, int):
            continue
        setattr(a, dest, integer("--" + dest.replace("_", "-"), value, lows.get(dest, lo)))


def device(a: argparse.Namespace):
    """The torch device of ``--device`` (default: CUDA when present) with ``--threads``
    applied, and a name for the header line. BenchError when CUDA is asked for but absent."""
    import torch
    try:
        dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise BenchError(f"--device {a.device!r}: not a device; allowed: cpu, cuda, "
                         f"cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {a.device!r}: no CUDA device is available here; use cpu")
    if getattr(a, "threads", None):
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"cpu, {torch.get_num_threads()} threads"
    return dev, name


def parse_with_device(parse_args, parser, argv):
    """(options, torch device, its name), or the parser's usage + the message, exit 2."""
    try:
        a = parse_args(argv)
        dev, name = device(a)
    except BenchError as e:
        parser().error(str(e))
    return a, dev, name
