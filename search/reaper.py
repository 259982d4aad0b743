"""Ends a local Ray whose driver died without shutting it down (SIGKILL, OOM kill).

``search.cluster`` starts ``python -m search.reaper SESSION_DIR`` beside the local Ray it
starts, with a pipe from the driver on its standard input. The pipe reaches end-of-file
when the driver exits, however it exits; the reaper then gives Ray a few seconds to shut
itself down and ends whatever is left of that Ray session (every process whose command
line names its session folder: GCS, raylet, dashboard and runtime-env agents, workers).
"""
from __future__ import annotations

import os
import signal
import sys
import time

GRACE_S = 3.0


def _session_processes(session_dir: str) -> list:
    import psutil
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and any(session_dir in a
                                            for a in (p.info["cmdline"] or [])):
                out.append(p)
        except psutil.Error:
            pass
    return out


def reap(session_dir: str) -> int:
    """End the session's processes (TERM, then KILL); returns how many there were."""
    import psutil
    procs = _session_processes(session_dir)
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(procs)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or "session_" not in argv[0]:
        print("usage: python -m search.reaper SESSION_DIR (started by paretune)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # a Ctrl-C is the driver's to handle
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    time.sleep(GRACE_S)
    try:
        import ray  # noqa: F401  (psutil comes with ray's vendored packages)
    except ImportError:
        pass
    reap(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
