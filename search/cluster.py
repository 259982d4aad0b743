"""Which Ray cluster a search runs on, and how it is started safely.

- No ``--address``: paretune starts its **own** local Ray (``ray.init(address="local")``),
  never joining one that ``ray start`` left running on the machine. Every Ray port binds
  to 127.0.0.1 (Ray rewrites a loopback node address to the machine's external one; we
  keep it) and Ray's token authentication stays on: a fresh random token in a private
  0600 file (``RAY_AUTH_TOKEN_PATH``), removed when the process exits. Only processes of
  this user that can read that file can talk to the cluster.
- ``--address auto`` joins the cluster running on this machine (what a Ray Jobs
  entrypoint does); ``--address HOST:PORT`` or ``ray://...`` joins that one. Its
  authentication is the cluster's (``RAY_AUTH_MODE`` / token as Ray reads them).

The first line a run prints says which it is.
"""
from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager

LOOPBACK = "127.0.0.1"


def _quiet_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"        # no experiment banner, no TensorBoard hint
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"   # paretune picks its loggers
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")


SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN",
              "AWS_SESSION_TOKEN", "WANDB_API_KEY")


def keep_secrets_out_of_runtime_envs() -> None:
    """Ray Tune copies the driver's AWS keys into each trial's runtime-env variables, which
    Ray writes in plain text into its (world-readable) runtime-env agent log. Stop that:
    trials read credentials from their node's own environment, as every other process."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:
        return
    class_cache.ENV_VARS_TO_PROPAGATE.difference_update(SECRET_ENV)


def _private_token() -> None:
    """Token auth for a local cluster this process starts, unless the user chose a mode."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        print(f"[search] warning: RAY_AUTH_MODE={mode} from the environment: the local Ray "
              f"starts without token authentication", flush=True)
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    from ray._raylet import Config
    Config.initialize("")          # Ray read its config at import: make it see token mode
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return                                      # the user's own token
    folder = tempfile.mkdtemp(prefix="paretune-ray-")   # 0700
    path = os.path.join(folder, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    atexit.register(shutil.rmtree, folder, True)


@contextmanager
def _keep_loopback():
    """Ray turns a loopback node address into the machine's external one before it starts
    its processes, which then listen on every interface; keep 127.0.0.1 so they bind to
    loopback only."""
    import ray._private.services as services
    original = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original


def describe(address: str | None) -> str:
    if not address:
        return "a local Ray started for this run (127.0.0.1 only, token auth)"
    return "the Ray cluster on this machine (--address auto)" if address == "auto" else \
        f"the Ray cluster at {address}"


def init_ray(address: str | None = None, num_cpus: int | None = None,
             num_gpus: int | None = None) -> str:
    """Start or join Ray as described above; returns a one-line description. A no-op
    (returning what is running) when Ray is already initialized in this process."""
    import ray
    _quiet_env()
    keep_secrets_out_of_runtime_envs()
    if ray.is_initialized():
        return "the Ray already initialized in this process"
    kwargs = dict(configure_logging=True, logging_level="ERROR", log_to_driver=False)
    if address:
        _probe(address)
        if num_cpus is not None or num_gpus is not None:
            raise ValueError("--num-cpus/--num-gpus size a local Ray; with --address the "
                             "cluster's own resources are used (drop them)")
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as e:
            raise ConnectionError(f"cannot join the Ray cluster at {address}: "
                                  f"{str(e).splitlines()[0][:300]}") from None
        return describe(address)
    _private_token()
    with _keep_loopback():
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                 include_dashboard=False, _node_ip_address=LOOPBACK, **kwargs)
    _start_reaper()
    return describe(None)


def _start_reaper() -> None:
    """A watcher that ends this local Ray if the driver dies without shutting it down
    (``search.reaper``); it holds the read end of a pipe only this process writes to."""
    import subprocess
    import sys
    import ray
    try:
        session = ray._private.worker.global_worker.node.get_session_dir_path()
    except AttributeError:
        return
    proc = subprocess.Popen([sys.executable, "-m", "search.reaper", session],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _REAPERS.append(proc)      # keep the pipe open for the life of this process


_REAPERS: list = []


def _probe(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that does not answer is one error within seconds (Ray's own client
    retries for a minute)."""
    import socket
    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except ValueError:
        raise ConnectionError(f"--address {address}: expected HOST:PORT (the head's GCS port, "
                              f"6379 by default) or 'auto'") from None
    except OSError as e:
        raise ConnectionError(f"cannot reach the Ray cluster at {address}: {e}; is it up "
                              f"(`ray start --head` prints its address)?") from None


def local_machine() -> list[dict]:
    """This machine as the one node a local Ray would have (checked before starting it)."""
    gpus = 0
    try:
        import torch
        gpus = torch.cuda.device_count()
    except Exception:
        pass
    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}]


def check_cluster(resources: dict, storage, where: str) -> None:
    """Refuse, before any trial starts, a space the cluster cannot schedule and a storage
    the cluster's nodes cannot all reach."""
    from .resources import check_fits, check_shared_storage, node_resources_from_ray
    nodes = node_resources_from_ray()
    check_fits(resources, nodes, where)
    check_shared_storage(storage, len(nodes), where)
