"""Ray Jobs: run a search on a running cluster through its dashboard (issue 11).

    python -m search submit SPACE --address http://HEAD:8265 --storage URI [--no-wait]
    python -m search jobs --address URL
    python -m search logs JOB --address URL [--follow]
    python -m search stop JOB --address URL

``submit`` validates everything it can before the job exists: the space (one error, exit
2, before any network call), the dashboard (a 5 s probe of ``/api/version``), the token,
and the space's resources against the cluster's alive nodes (:mod:`search.resources`).
The project folder travels as the job's ``working_dir`` (no data, experiments, virtual
environment or git history) and the job runs ``python -m search run ...`` with the nodes'
own ``python``. No environment variables travel with it: credentials (W&B, cloud storage)
come from the nodes' own environment.

Talking to the dashboard (address, token, errors): :mod:`search.dashboard`.
"""
from __future__ import annotations

import os
import secrets
import shlex
import sys
import time
from pathlib import Path

from .dashboard import (JobError, _errors, client, cluster_nodes, is_local, probe,
                        resolve_address)

ROOT = Path(__file__).resolve().parent.parent      # the project folder: the job's working_dir
COMMANDS = ("submit", "jobs", "logs", "stop")
# gitwildmatch patterns, anchored where a package shares the name (trainables/data/)
EXCLUDES = [".git", ".venv", "venv/", "/experiments/", "/data/", "/build/", "/.whl/",
            "/.gl/", "__pycache__", "*.pyc", ".pytest_cache", "wandb/", "*.parquet",
            "*.egg-info", ".ipynb_checkpoints", "*.ckpt", "*.pt"]
MAX_PACKAGE_MIB = 500      # Ray refuses a working_dir over its gRPC message size (~500 MiB)


# --- packaging -------------------------------------------------------------------------------

def package_files(root: Path = ROOT) -> list[tuple[str, int]] | None:
    """(path relative to ``root``, bytes) of each file Ray uploads as the working_dir (its
    own walk: EXCLUDES, .gitignore, .rayignore), or None if Ray's private walker is gone."""
    import logging
    try:
        from ray._private.runtime_env.packaging import _dir_travel, _get_excludes
    except ImportError:
        return None
    files = []

    def add(p: Path) -> None:
        if p.is_file():
            files.append((p.relative_to(root).as_posix(), p.stat().st_size))
    quiet = logging.getLogger("paretune.package")
    quiet.setLevel(logging.ERROR)
    _dir_travel(root, [_get_excludes(root, EXCLUDES)], add, include_gitignore=True,
                logger=quiet)
    return files


def runtime_env() -> dict:
    """The job's runtime_env: the project folder, nothing secret (no env_vars)."""
    files = package_files()
    if files is not None:
        mib = sum(n for _, n in files) / 2 ** 20
        if mib > MAX_PACKAGE_MIB:
            raise JobError(f"the project folder packs {mib:.0f} MiB (Ray's limit is "
                           f"{MAX_PACKAGE_MIB} MiB): move data or results out of it, or list "
                           f"them in .rayignore")
        print(f"[submit] packaging the project: {len(files)} files, {mib:.1f} MiB", flush=True)
    return {"working_dir": str(ROOT), "excludes": list(EXCLUDES)}


# --- submit ----------------------------------------------------------------------------------

def _relative_space(space: str) -> str:
    p = Path(space).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        raise JobError(f"{space}: a submitted space file must be inside the project folder "
                       f"(it travels to the cluster with the project); copy it into spaces/") \
            from None


def _storage(storage: str | None, address: str) -> str:
    local = is_local(address)
    if storage is None:
        if not local:
            raise JobError(f"--storage is required for a remote cluster ({address}): give a "
                           f"location every node can write (s3://bucket/path, gs://..., or "
                           f"an absolute path on a shared filesystem); otherwise the results "
                           f"land in the job's package folder, which Ray deletes")
        storage = os.environ.get("PARETUNE_STORAGE", "experiments")
    if "://" in storage:
        return storage
    p = Path(storage).expanduser()
    if not p.is_absolute() and not local:
        raise JobError(f"--storage {storage}: a relative path would be inside the job's "
                       f"package folder on the cluster, which Ray deletes; give a URI "
                       f"(s3://..., gs://...) or an absolute path every node can write")
    return str(p.resolve())


def submit(a) -> int:
    from .resources import check_fits, check_shared_storage
    from .space import SpaceError, load_space
    space = load_space(a.space, data=a.data)          # SpaceError before any network call
    rel = _relative_space(a.space)
    from .space import check_name
    from trainables.storage import open_storage
    name = check_name(a.name, "--name") if a.name else space.name
    address = resolve_address(a.address)
    storage = _storage(a.storage, address)
    target = open_storage(storage, a.storage_endpoint)   # an unsupported scheme: one error
    if "://" not in storage and (Path(storage) / name / "paretune.json").exists():
        raise JobError(f"experiment {Path(storage) / name} exists; resume it with `python -m "
                       f"search resume {Path(storage) / name}`, or pick another --name")
    data = a.data
    if data is not None and "://" not in data:
        data = str(Path(data).expanduser().resolve())
        if not is_local(address):
            print(f"[submit] note: --data {data} must exist at this path on the cluster's "
                  f"nodes", flush=True)
    version = probe(address)
    nodes = cluster_nodes(address)
    try:
        check_fits(space.resources, nodes, where=f"the cluster at {address}")
    except SpaceError as e:
        raise SpaceError(f"{space.path}: {e}") from None
    check_shared_storage(target, len(nodes), f"the cluster at {address}")
    env = runtime_env()
    cmd = ["python", "-m", "search", "run", rel, "--address", "auto", "--storage", storage,
           "--name", name]
    cmd += ["--data", data] if data is not None else []
    cmd += ["--smoke-test"] if a.smoke_test else []
    cmd += ["--storage-endpoint", a.storage_endpoint] if a.storage_endpoint else []
    c = client(address)
    with _errors(address):
        job = c.submit_job(entrypoint=shlex.join(cmd), runtime_env=env,
                           submission_id=f"paretune-{name}-{secrets.token_hex(3)}",
                           metadata={"paretune": "1", "space": rel, "name": name,
                                     "storage": storage, "smoke_test": str(a.smoke_test)})
    print(f"[submit] job {job} submitted to {address} (Ray {version}); results in "
          f"{storage}/{name}", flush=True)
    if a.no_wait:
        print(f"  follow: python -m search logs {job} --address {address} --follow\n"
              f"  stop:   python -m search stop {job} --address {address}", flush=True)
        return 0
    return follow(c, job, address)


# --- following, listing, stopping ------------------------------------------------------------

def _info(c, job: str, address: str):
    with _errors(address, job):
        return c.get_job_info(job)


def follow(c, job: str, address: str) -> int:
    """Print the job's logs as they come until it ends; its status decides the exit code
    (0 SUCCEEDED, 1 FAILED/STOPPED). Ctrl-C leaves the job running."""
    import asyncio

    async def tail():
        async for chunk in c.tail_job_logs(job):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    try:
        _info(c, job, address)                        # unknown job -> JobError
        try:
            asyncio.run(tail())
        except Exception:                             # the websocket broke: poll instead
            _poll_logs(c, job, address)
        info = _info(c, job, address)
        while not info.status.is_terminal():          # logs closed just before the status
            time.sleep(1)
            info = _info(c, job, address)
    except KeyboardInterrupt:
        print(f"\n[search] stopped following; job {job} keeps running on the cluster\n"
              f"  follow: python -m search logs {job} --address {address} --follow\n"
              f"  stop:   python -m search stop {job} --address {address}",
              file=sys.stderr, flush=True)
        return 130
    return _report(info)


def _poll_logs(c, job: str, address: str, every: float = 2.0) -> None:
    seen = 0
    while True:
        info = _info(c, job, address)
        with _errors(address, job):
            logs = c.get_job_logs(job)
        sys.stdout.write(logs[seen:])
        sys.stdout.flush()
        seen = len(logs)
        if info.status.is_terminal():
            return
        time.sleep(every)


def _report(info) -> int:
    status = str(info.status)
    job = info.submission_id or info.job_id
    if status == "SUCCEEDED":
        print(f"[search] job {job} SUCCEEDED", flush=True)
        return 0
    first = ((info.message or "").strip().splitlines() or [""])[0]   # the logs came before
    print(f"[search] job {job} {status}: {first}", file=sys.stderr, flush=True)
    return 1


def _when(ms) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _short(entrypoint: str, width: int = 80) -> str:
    e = entrypoint.replace(" --address auto", "")       # every submitted search has it
    return e if len(e) <= width else e[:width - 3] + "..."


def list_jobs(a) -> int:
    address = resolve_address(a.address)
    c = client(address)
    with _errors(address):
        jobs = c.list_jobs()
    if not jobs:
        print(f"no jobs on the cluster at {address}")
        return 0
    rows = [(j.submission_id or j.job_id or "-", str(j.status), _when(j.start_time),
             _short(j.entrypoint))
            for j in sorted(jobs, key=lambda j: j.start_time or 0)]
    width = max(len(r[0]) for r in rows)
    print(f"{'JOB':<{width}}  {'STATUS':<9}  {'START':<19}  ENTRYPOINT")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:<9}  {r[2]:<19}  {r[3]}")
    return 0


def logs(a) -> int:
    address = resolve_address(a.address)
    c = client(address)
    if a.follow:
        return follow(c, a.job, address)
    _info(c, a.job, address)
    with _errors(address, a.job):
        sys.stdout.write(c.get_job_logs(a.job))
    sys.stdout.flush()
    return 0


def stop(a) -> int:
    address = resolve_address(a.address)
    c = client(address)
    info = _info(c, a.job, address)
    if info.status.is_terminal():
        print(f"job {a.job} is not running ({info.status})")
        return 0
    with _errors(address, a.job):
        c.stop_job(a.job)
    deadline = time.monotonic() + 15
    while not info.status.is_terminal() and time.monotonic() < deadline:
        time.sleep(0.5)
        info = _info(c, a.job, address)
    print(f"job {a.job}: {info.status}" + ("" if info.status.is_terminal()
                                            else " (stop requested; it is still ending)"))
    return 0


# --- command line ----------------------------------------------------------------------------

def add_parsers(sub) -> None:
    """The job subcommands, added to ``python -m search``'s subparsers."""
    addr = dict(help="the Ray dashboard, e.g. http://HEAD:8265 (default: $RAY_ADDRESS if it "
                     "is an http URL)")
    s = sub.add_parser(
        "submit", help="run a search on a running Ray cluster as a Ray job",
        description="Validate SPACE here, check the cluster (dashboard, token, resources), "
                    "then submit `python -m search run SPACE` with the project folder as "
                    "the job's working_dir and follow its logs. No environment variables are "
                    "sent: secrets (WANDB_API_KEY, cloud storage keys) must be in the "
                    "cluster nodes' own environment. Token auth: RAY_AUTH_MODE=token with "
                    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.")
    s.add_argument("space", help="a space file inside the project, e.g. spaces/quickstart.yaml")
    s.add_argument("--address", **addr)
    s.add_argument("--storage", help="where the experiment goes, writable by every node: "
                                     "s3://..., gs://... or a shared absolute path "
                                     "(required unless the cluster is local)")
    s.add_argument("--name", help="experiment name (default: the space's name)")
    s.add_argument("--data", metavar="DATASET", help="a dataset replacing the space's data "
                                                     "(must exist on the nodes)")
    from .searchers import smoke_help
    s.add_argument("--smoke-test", action="store_true", help=smoke_help())
    s.add_argument("--no-wait", action="store_true",
                   help="print the job id and return instead of following the logs")
    s.add_argument("--storage-endpoint", metavar="URL",
                   help="S3-compatible endpoint for --storage (passed to `search run`)")
    j = sub.add_parser("jobs", help="list a cluster's jobs")
    j.add_argument("--address", **addr)
    lg = sub.add_parser("logs", help="print (or --follow) a job's logs")
    lg.add_argument("job", help="the job id `submit` printed")
    lg.add_argument("--address", **addr)
    lg.add_argument("--follow", action="store_true",
                    help="keep printing until the job ends; exit 0 if it succeeded")
    st = sub.add_parser("stop", help="stop a running job")
    st.add_argument("job", help="the job id `submit` printed")
    st.add_argument("--address", **addr)


def dispatch(a) -> int:
    """Run a job subcommand; one-line errors and exit code 2 for bad input or cluster."""
    from .space import SpaceError
    fn = {"submit": submit, "jobs": list_jobs, "logs": logs, "stop": stop}[a.cmd]
    from trainables.storage import StorageError
    try:
        return fn(a)
    except (SpaceError, JobError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
