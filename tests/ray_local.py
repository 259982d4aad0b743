"""Real Ray nodes and a real S3-compatible server on this machine, for the cluster tests.

Each node is ``ray start --block`` in its own session with explicit free ports, token
auth (a 0600 token file) and a loopback node address; it is ended by pid (its process
tree plus any process naming its temp dir): ``ray stop`` would end every Ray on the
machine. The S3 server is ``moto``'s server mode bound to 127.0.0.1.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def token_file(folder: str) -> Path:
    path = Path(folder) / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


def node_env(token: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               RAY_USAGE_STATS_ENABLED="0", WANDB_MODE="offline", WANDB_SILENT="true",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def start_node(temp_dir: str, env: dict, ip: str, num_cpus: int, head_port: int | None = None,
               dashboard_port: int | None = None, head_address: str | None = None):
    """Start one node (the head when ``head_address`` is None); returns the Popen."""
    agent, agent_grpc, metrics, rtenv, nm, om = free_ports(6)
    cmd = [str(BIN / "ray"), "start", "--block", "--num-cpus", str(num_cpus), "--num-gpus", "0",
           "--node-ip-address", ip, "--temp-dir", temp_dir,
           "--dashboard-agent-listen-port", str(agent),
           "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
           "--runtime-env-agent-port", str(rtenv), "--node-manager-port", str(nm),
           "--object-manager-port", str(om), "--object-store-memory", "150000000",
           "--disable-usage-stats"]
    if head_address is None:
        cmd += ["--head", "--port", str(head_port), "--dashboard-host", "127.0.0.1",
                "--dashboard-port", str(dashboard_port)]
    else:
        cmd += ["--address", head_address]
    log = open(Path(temp_dir) / f"ray-start-{ip}.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_nodes(address: str, token: Path, n: int, procs, timeout: float = 150) -> None:
    """Wait until the dashboard at ``address`` answers and ``n`` nodes are alive."""
    import requests
    headers = {"authorization": f"Bearer {token.read_text()}"}
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a `ray start` exited with {p.returncode}")
        try:
            nodes = requests.get(address + "/api/v0/nodes", headers=headers,
                                 timeout=5).json()["data"]["result"]["result"]
            if sum(x.get("state") == "ALIVE" for x in nodes) >= n and \
                    requests.get(address + "/api/jobs/", headers=headers, timeout=3).ok:
                return
        except (requests.RequestException, ValueError, KeyError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} Ray node(s) did not come up in {timeout:.0f} s")
        time.sleep(1)


def end(proc: subprocess.Popen, marker: str | None = None) -> None:
    """End ``proc``'s process tree, and any process whose command line names ``marker``."""
    import ray  # noqa: F401  (psutil comes with ray's vendored packages)
    import psutil
    procs = {}
    try:
        root = psutil.Process(proc.pid)
        procs = {p.pid: p for p in [root, *root.children(recursive=True)]}
    except psutil.Error:
        pass
    if marker:
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in a for a in (p.info["cmdline"] or [])) and p.pid != os.getpid():
                    procs[p.pid] = p
            except psutil.Error:
                pass
    for p in procs.values():
        try:
            p.send_signal(signal.SIGKILL if marker is None else signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=3)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


class S3Server:
    """moto's S3-compatible server on 127.0.0.1 with one bucket; ``env`` holds the
    credentials and endpoint a client needs."""

    def __init__(self, bucket: str = "paretune-test"):
        self.port = free_ports(1)[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                    "AWS_REGION": "us-east-1"}
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                      "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        from pyarrow import fs
        deadline = time.monotonic() + 30
        while True:
            try:
                s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
                                     region="us-east-1", access_key="testing",
                                     secret_key="testing-secret", allow_bucket_creation=True,
                                     connect_timeout=2, request_timeout=5)
                s3.create_dir(bucket)
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start")
                time.sleep(0.5)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def make_temp_dir() -> str:
    return tempfile.mkdtemp(prefix="pt-", dir="/tmp")     # short: Ray's socket paths


def remove(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
