"""python -m search run SPACE [--data DATASET] [--smoke-test] [--storage DIR] [--name NAME]
python -m search resume EXPERIMENT

Every input is validated before Ray starts; a bad space file gets one error naming the
file, the key, the value and what is allowed, and exit code 2.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m search",
                                 description="Run or resume a paretune search on Ray Tune.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the search a space file describes")
    r.add_argument("space", help="a space file, e.g. spaces/quickstart.yaml")
    r.add_argument("--smoke-test", action="store_true",
                   help="2 trials x 1 epoch on small data: checks the whole path in seconds")
    r.add_argument("--storage", help="experiments folder (default: ./experiments or "
                                     "$PARETUNE_STORAGE)")
    r.add_argument("--name", help="experiment name (default: the space's name)")
    r.add_argument("--data", metavar="DATASET",
                   help="an ME dataset folder (meta.yaml + Parquet splits, e.g. an MP-stage "
                        "output) replacing the space's data; the space's data.objectives, "
                        "if any, are kept and must be in the dataset")
    r.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    r.add_argument("--num-cpus", type=int, help="CPUs of the local Ray cluster")
    s = sub.add_parser("resume", help="continue a killed experiment from its folder")
    s.add_argument("experiment", help="the experiment folder `search run` printed")
    s.add_argument("--address")
    s.add_argument("--num-cpus", type=int)
    a = ap.parse_args(argv)

    from .space import SpaceError
    from . import runner
    try:
        if a.cmd == "run":
            folder = runner.run(a.space, storage=a.storage, name=a.name,
                                smoke_test=a.smoke_test, address=a.address, num_cpus=a.num_cpus,
                                data=a.data)
        else:
            folder = runner.resume(a.experiment, address=a.address, num_cpus=a.num_cpus)
    except (SpaceError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wandb_dir = folder / "wandb"
    if any(wandb_dir.glob("offline-run-*")):
        print(f"[search] W&B offline runs: {wandb_dir} (upload: wandb sync "
              f"{wandb_dir}/offline-run-*)")
    print(f"[search] done: {folder}\n  next: python -m analysis frontier {folder}\n"
          f"        python -m analysis pick {folder} --rule fair", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
