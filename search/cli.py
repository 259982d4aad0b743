"""The ``paretune`` command: one front door to the two command-line tools.

    paretune run|resume|submit|jobs|logs|stop|rerun ...   = python -m search ...
    paretune frontier|pick|export|report ...              = python -m analysis ...

The verb picks the tool and everything after it goes through unchanged, so each verb's
options, help and exit codes are exactly those of its tool (``paretune run --help`` is
``python -m search run --help``). ``rerun`` is Ray work and goes to ``search``, which
retrains through the same trial runner and resources as the search.
"""
from __future__ import annotations

import sys

# verb -> (tool, what it does); the order is the order of --help
VERBS: dict[str, tuple[str, str]] = {
    "run": ("search", "run the search a space file describes"),
    "resume": ("search", "continue a killed experiment from its folder or URI"),
    "submit": ("search", "submit a search to a Ray cluster as a Ray job"),
    "jobs": ("search", "list a cluster's jobs"),
    "logs": ("search", "print (or --follow) a job's logs"),
    "stop": ("search", "stop a running job"),
    "rerun": ("search", "retrain a chosen trial with several seeds"),
    "frontier": ("analysis", "non-dominated trials, hypervolume, plots, tables"),
    "pick": ("analysis", "choose one frontier trial by a rule, with the reason"),
    "export": ("analysis", "write a frontier point's model and preference to serve"),
    "report": ("analysis", "fidelity report: the HarmonRank paper's tables re-measured"),
}


def usage() -> str:
    width = max(map(len, VERBS))
    lines = ["usage: paretune VERB [ARGS...]", "",
             "Tune multi-objective ranking-ensemble models on Ray: search, browse, pick, "
             "rerun."]
    for tool in ("search", "analysis"):
        lines += ["", f"verbs of python -m {tool}:"]
        lines += [f"  {v:<{width}}  {what}" for v, (t, what) in VERBS.items() if t == tool]
    lines += ["", "paretune VERB --help shows a verb's options."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if not argv or argv[0] not in VERBS:
        said = f"unknown verb {argv[0]!r}" if argv else "a verb is required"
        print(f"{usage()}\n\nparetune: error: {said}; verbs: {', '.join(VERBS)}",
              file=sys.stderr)
        return 2
    verb, rest = argv[0], argv[1:]
    if VERBS[verb][0] == "search":
        from search.__main__ import main as tool
    else:
        from analysis.__main__ import main as tool
    return tool([verb, *rest])


if __name__ == "__main__":
    sys.exit(main())
