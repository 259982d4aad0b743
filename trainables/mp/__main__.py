"""``python -m trainables.mp SOURCE ...``: the MP stage on one source of raw logs.

Each source is a package with a command line (``SOURCES``: name -> its ``cli`` module,
whose ``main(argv)`` gets the arguments after the source's name), imported only when
chosen: ``python -m trainables.mp kuairand --help``.
"""
from __future__ import annotations

import importlib
import sys

SOURCES = {"kuairand": "trainables.kuairand.cli"}
USAGE = f"usage: python -m trainables.mp {{{','.join(SOURCES)}}} ... (SOURCE --help for its flags)"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(f"error: name a source; {USAGE}", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(f"{USAGE}\nThe multi-task prediction stage: raw logs -> an ME dataset "
              f"(docs/DESIGN.md, 'Data contract').")
        return 0
    if argv[0] not in SOURCES:
        print(f"error: unknown source {argv[0]!r}; valid sources: {', '.join(SOURCES)}",
              file=sys.stderr)
        return 2
    return importlib.import_module(SOURCES[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
