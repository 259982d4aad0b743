"""python -m search run SPACE [--data DATASET] [--smoke-test] [--storage DIR] [--name NAME]
python -m search resume EXPERIMENT
python -m search submit SPACE --address http://HEAD:8265 --storage URI [--no-wait]
python -m search jobs|logs JOB [--follow]|stop JOB --address http://HEAD:8265

Every input is validated before Ray starts; a bad space file gets one error naming the
file, the key, the value and what is allowed, and exit code 2.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m search",
                                 description="Run or resume a paretune search on Ray Tune.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the search a space file describes")
    r.add_argument("space", help="a space file, e.g. spaces/quickstart.yaml")
    from .searchers import smoke_help
    r.add_argument("--smoke-test", action="store_true", help=smoke_help())
    r.add_argument("--storage", help="where experiments live: a folder, or a URI on shared "
                                     "storage (s3://bucket/exps, gs://..., file:///mnt/shared"
                                     "/exps); default: ./experiments or $PARETUNE_STORAGE")
    r.add_argument("--storage-endpoint", metavar="URL",
                   help="an S3-compatible server for s3:// storage (MinIO, Ceph...), e.g. "
                        "http://minio:9000; or set AWS_ENDPOINT_URL")
    r.add_argument("--name", help="experiment name (default: the space's name)")
    r.add_argument("--data", metavar="DATASET",
                   help="an ME dataset folder (meta.yaml + Parquet splits, e.g. an MP-stage "
                        "output) replacing the space's data; the space's data.objectives, "
                        "if any, are kept and must be in the dataset")
    r.add_argument("--address", help="join a running Ray cluster: 'auto' (the one on this "
                                     "machine, as in a Ray Jobs entrypoint) or HOST:PORT; "
                                     "default: start a private local Ray (127.0.0.1, token "
                                     "auth) and never join another")
    r.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (without --address)")
    s = sub.add_parser("resume", help="continue a killed experiment from its folder or URI")
    s.add_argument("experiment", help="the experiment folder or URI `search run` printed")
    s.add_argument("--address", help="as for run")
    s.add_argument("--num-cpus", type=int, help="as for run")
    s.add_argument("--storage-endpoint", metavar="URL", help="as for run")
    from . import jobs
    jobs.add_parsers(sub)
    rr = sub.add_parser("rerun", help="retrain a chosen trial with several seeds, through the "
                                      "same trial runner and resources as the search")
    rr.add_argument("experiment", help="the experiment: a folder or a URI")
    rr.add_argument("--point", required=True, help="a trial id, or a pick rule (fair, knee...)")
    rr.add_argument("--seeds", type=int, default=3)
    rr.add_argument("--epochs", type=int, help="train longer than the search did")
    rr.add_argument("--address", help="as for run")
    rr.add_argument("--num-cpus", type=int, help="as for run")
    rr.add_argument("--storage-endpoint", metavar="URL", help="as for run")
    a = ap.parse_args(argv)
    if a.cmd in jobs.COMMANDS:
        return jobs.dispatch(a)
    if a.cmd == "rerun":
        from analysis.__main__ import main as analysis_main
        args = ["rerun", a.experiment, "--point", a.point, "--seeds", str(a.seeds)]
        for flag, v in (("--epochs", a.epochs), ("--address", a.address),
                        ("--num-cpus", a.num_cpus), ("--storage-endpoint", a.storage_endpoint)):
            args += [flag, str(v)] if v is not None else []
        return analysis_main(args)

    from .space import SpaceError
    from . import runner
    try:
        if a.cmd == "run":
            out = runner.run_search(a.space, storage=a.storage, name=a.name, smoke_test=a.smoke_test,
                             address=a.address, num_cpus=a.num_cpus, data=a.data,
                             storage_endpoint=a.storage_endpoint)
        else:
            out = runner.resume_search(a.experiment, address=a.address, num_cpus=a.num_cpus,
                                storage_endpoint=a.storage_endpoint)
    except (SpaceError, FileExistsError, FileNotFoundError, ValueError, ConnectionError) as e:
        if os.environ.get("PARETUNE_DEBUG"):
            import traceback
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:          # e.g. nothing to resume yet
        print(f"error: {e}", file=sys.stderr)
        return 1
    wandb_dir = out.folder / "wandb"
    if any(wandb_dir.glob("offline-run-*")):
        if out.uri != str(out.folder):
            print(f"[search] W&B offline runs: {out.uri}/wandb (copy them to a machine with "
                  f"W&B access, then `wandb sync offline-run-*`)")
        else:
            print(f"[search] W&B offline runs: {wandb_dir} (upload: wandb sync "
                  f"{wandb_dir}/offline-run-*)")
    if out.finished == 0:
        print(f"[search] no trial finished ({out.failed} failed): {out.uri}", file=sys.stderr,
              flush=True)
        return 1
    print(f"[search] done: {out.uri}\n  next: python -m analysis frontier {out.uri}\n"
          f"        python -m analysis pick {out.uri} --rule fair", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
