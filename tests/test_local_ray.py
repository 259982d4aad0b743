"""The local Ray that paretune starts is safe by default: every port it listens on is on
loopback, Ray's own node info says 127.0.0.1, token authentication is on (a process
without the token is refused), and it never joins a cluster it did not start."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent("""
    import ipaddress, json, os, sys
    from search.cluster import init_ray
    print(init_ray(num_cpus=1), file=sys.stderr)
    import ray, psutil
    node = ray.nodes()[0]
    gcs = "127.0.0.1:" + ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
    mine = psutil.Process()
    procs = [mine, *mine.children(recursive=True)]
    session = ray._private.worker.global_worker.node.get_session_dir_path()
    for p in psutil.process_iter(["cmdline"]):
        if any(session in a for a in (p.info["cmdline"] or [])):
            procs.append(p)
    listening = []
    for p in {q.pid: q for q in procs}.values():
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    listening.append([p.name(), c.laddr.ip, c.laddr.port])
        except psutil.Error:
            pass
    # a second process with no token may not join
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "disabled"
    import subprocess
    try:    # Ray's client retries a refused token until its own timeout: 15 s is plenty
        other = subprocess.run([sys.executable, "-c",
                                "import ray, ray._private.services as s; s.resolve_ip_for_localhost = "
                                f"lambda h: h; ray.init(address='{gcs}', log_to_driver=False)"],
                               env=env, capture_output=True, text=True, timeout=15)
        rc, err = other.returncode, other.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = -1, (e.stderr or b"").decode(errors="replace")
    print(json.dumps({"node": node["NodeManagerAddress"], "listening": listening,
                      "token_file": os.environ.get("RAY_AUTH_TOKEN_PATH"),
                      "other_rc": rc, "other_err": err[-2000:]}))
""")


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env.update(RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def test_local_ray_binds_loopback_and_keeps_token_auth(tmp_path):
    import ipaddress
    import json
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "127.0.0.1 only, token auth" in proc.stderr
    assert info["node"] == "127.0.0.1"
    assert len(info["listening"]) >= 3, info            # gcs, raylet, workers, agents
    for name, ip, port in info["listening"]:
        addr = ipaddress.ip_address(ip)
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        assert addr.is_loopback, f"{name} listens on {ip}:{port}"
    token = info["token_file"]
    assert token and not Path(token).exists()            # private, removed at exit
    assert info["other_rc"] != 0, "a process without the token joined the cluster"
    assert "InvalidAuthToken" in info["other_err"], info["other_err"]


def test_search_run_never_joins_a_foreign_cluster(tmp_path):
    """Without --address, a run starts its own Ray even when RAY_ADDRESS points elsewhere
    (a cluster `ray start` left on the machine); --address is the only way to join."""
    space = ROOT / "spaces" / "quickstart.yaml"
    proc = subprocess.run([sys.executable, "-m", "search", "run", str(space), "--smoke-test",
                           "--storage", str(tmp_path / "exps"), "--name", "own"],
                          cwd=ROOT, env=_clean_env(RAY_ADDRESS="127.0.0.1:1",
                                                   PARETUNE_CACHE=str(tmp_path / "cache"),
                                                   WANDB_MODE="offline", WANDB_SILENT="true"),
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = proc.stdout.splitlines()[0]
    assert "a local Ray started for this run (127.0.0.1 only, token auth)" in first, first
    assert "[trial 2/2]" in proc.stdout
    assert "View detailed results" not in proc.stdout + proc.stderr     # no Tune banner
    assert "tensorboard" not in (proc.stdout + proc.stderr).lower()


def test_a_killed_driver_leaves_no_ray_process_behind(tmp_path):
    """SIGKILL of the driver alone (not its process group): the reaper ends what is left
    of its local Ray (GCS, raylet, agents, workers) within seconds."""
    import signal
    import time
    import ray  # noqa: F401  (psutil comes with ray's vendored packages)
    import psutil
    space = ROOT / "spaces" / "quickstart.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "search", "run", str(space), "--smoke-test",
                             "--storage", str(tmp_path / "exps"), "--name", "killed"],
                            cwd=ROOT, env=_clean_env(PARETUNE_CACHE=str(tmp_path / "cache"),
                                                     WANDB_MODE="offline", WANDB_SILENT="true",
                                                     PARETUNE_STATUS_EVERY="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = psutil.Process(proc.pid)
    deadline = time.monotonic() + 180
    ray_procs: dict[int, psutil.Process] = {}
    for line in proc.stdout:                       # wait until trials run
        for p in driver.children(recursive=True):
            ray_procs.setdefault(p.pid, p)
        if line.startswith("[status") or time.monotonic() > deadline:
            break
    for p in driver.children(recursive=True):
        ray_procs.setdefault(p.pid, p)
    session = {a.split("=", 1)[1] for p in ray_procs.values()
               for a in _cmdline(p) if a.startswith("--session_dir=")}
    assert ray_procs and session, "no local Ray seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter(["cmdline"])
                if any(s in a for s in session for a in (p.info["cmdline"] or []))]
        if not left:
            break
        time.sleep(1)
    assert not left, [(p.pid, " ".join(p.info["cmdline"])[:120]) for p in left]


def _cmdline(p) -> list[str]:
    try:
        return p.cmdline()
    except Exception:
        return []


def test_an_unreachable_address_is_one_error_within_seconds(tmp_path, capsys):
    import socket
    import time
    from search.__main__ import main
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]           # closed once the block ends
    t0 = time.monotonic()
    rc = main(["run", str(ROOT / "spaces" / "quickstart.yaml"), "--address",
               f"127.0.0.1:{port}", "--storage", str(tmp_path / "exps")])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t0 < 20
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err, err
    assert "Traceback" not in err and not (tmp_path / "exps").exists()
