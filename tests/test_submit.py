"""search submit / jobs / logs / stop (issue 11) and search.resources.check_fits.

The cluster tests start one real head (`ray start --head --block`, token auth, loopback
only, its own temp dir and ports) for the module and end exactly its processes by pid in
teardown (`ray stop` would end every Ray on the machine).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from search.__main__ import main
from search.resources import check_fits, describe_nodes
from search.space import SpaceError

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = "spaces/quickstart.yaml"


def res(workers=1, cpus=1, gpus=0):
    return {"workers_per_trial": workers, "cpus_per_worker": cpus, "gpus_per_worker": gpus}


# --- check_fits: pure ------------------------------------------------------------------------

@pytest.mark.parametrize("resources, nodes", [
    (res(), [{"CPU": 2.0}]),
    (res(cpus=2), [{"CPU": 2.0, "memory": 1e9}]),
    (res(gpus=0.25), [{"CPU": 4.0, "GPU": 1.0}]),
    (res(workers=2, cpus=1), [{"CPU": 2.0}]),
    (res(workers=2, cpus=2), [{"CPU": 2.0}, {"CPU": 2.0}]),
    (res(workers=2, cpus=1, gpus=1), [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]),
    (res(workers=4, cpus=1, gpus=0.5), [{"CPU": 4.0}, {"CPU": 8.0, "GPU": 2.0}]),
])
def test_check_fits_accepts(resources, nodes):
    check_fits(resources, nodes, where="the cluster at http://head:8265")


@pytest.mark.parametrize("resources, nodes, expected", [
    (res(gpus=0.25), [{"CPU": 2.0}, {"CPU": 2.0}],
     ["resources.gpus_per_worker = 0.25", "the cluster at http://head:8265 has no GPU",
      "nodes: 2 x {CPU: 2}"]),
    (res(cpus=4), [{"CPU": 2.0}, {"CPU": 2.0}],
     ["resources.cpus_per_worker = 4", "largest: 2"]),
    (res(gpus=2), [{"CPU": 8.0, "GPU": 1.0}],
     ["resources.gpus_per_worker = 2", "largest: 1", "1 x {CPU: 8, GPU: 1}"]),
    (res(cpus=4, gpus=1), [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}],
     ["cpus_per_worker = 4", "gpus_per_worker = 1", "no single node has both"]),
    (res(workers=3, cpus=1), [{"CPU": 2.0}],
     ["resources.workers_per_trial = 3", "cpus_per_worker = 1", "= 3 CPUs per trial",
      "has 2 in all"]),
    (res(workers=3, gpus=1), [{"CPU": 8.0, "GPU": 1.0}] * 2,
     ["resources.workers_per_trial = 3", "= 3 GPUs per trial", "has 2 in all"]),
    (res(workers=4, cpus=2), [{"CPU": 3.0}] * 3,
     ["workers_per_trial = 4", "only 3 such worker(s) fit", "3 x {CPU: 3}"]),
    (res(), [], ["has no alive node"]),
])
def test_check_fits_refuses(resources, nodes, expected):
    with pytest.raises(SpaceError) as e:
        check_fits(resources, nodes, where="the cluster at http://head:8265")
    for text in expected:
        assert text in str(e.value), str(e.value)


def test_describe_nodes_groups_identical_nodes():
    nodes = [{"CPU": 2.0, "memory": 5e9, "node:127.0.0.2": 1.0}, {"CPU": 2.0},
             {"CPU": 8.0, "GPU": 0.5}]
    assert describe_nodes(nodes) == "1 x {CPU: 8, GPU: 0.5}, 2 x {CPU: 2}"


# --- submit's local checks: no cluster, no network ------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if submit talks to any cluster."""
    import search.jobs as jobs

    def refuse(*a, **k):
        raise AssertionError("submit probed the cluster before its local checks")
    monkeypatch.setattr(jobs, "probe", refuse)
    monkeypatch.setattr(jobs, "cluster_nodes", refuse)
    for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(k, raising=False)


def test_package_keeps_the_code_and_drops_the_rest():
    from search.jobs import package_files
    files = {p for p, _ in package_files()}
    assert {"search/runner.py", "trainables/data/schema.py", QUICKSTART} <= files
    assert not [p for p in files if p.startswith((".git/", ".venv/", "experiments/", "data/"))
                or "__pycache__" in p or p.endswith((".pyc", ".parquet"))]


def test_submit_bad_space_is_refused_before_any_network_call(tmp_path, capsys, no_network):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsearch: {algorithm: nope}\n")
    rc = main(["submit", str(bad), "--address", f"http://127.0.0.1:{closed_port()}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "search.algorithm" in err and "nope" in err and str(bad) in err
    assert "cannot reach" not in err


def test_submit_to_a_remote_cluster_needs_storage(capsys, no_network):
    rc = main(["submit", QUICKSTART, "--address", "http://192.0.2.1:8265"])
    err = capsys.readouterr().err
    assert rc == 2 and "--storage is required for a remote cluster" in err
    rc = main(["submit", QUICKSTART, "--address", "http://192.0.2.1:8265",
               "--storage", "relative/exps"])
    assert rc == 2 and "relative path" in capsys.readouterr().err


def test_submit_space_outside_the_project_is_refused(tmp_path, capsys, no_network):
    outside = tmp_path / "q.yaml"
    shutil.copyfile(ROOT / QUICKSTART, outside)
    rc = main(["submit", str(outside), "--address", "http://127.0.0.1:1",
               "--storage", str(tmp_path)])
    assert rc == 2 and "must be inside the project folder" in capsys.readouterr().err


def test_address_defaults_to_an_http_ray_address(monkeypatch):
    from search.dashboard import JobError, resolve_address
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert resolve_address(None) == "http://head:8265"
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    with pytest.raises(JobError, match="--address is required"):
        resolve_address(None)
    with pytest.raises(JobError, match="dashboard's URL"):
        resolve_address("head:6379")


def test_auth_headers_read_the_token_as_ray_does(tmp_path, monkeypatch):
    from search.dashboard import auth_headers
    token = tmp_path / "tok"
    token.write_text("abc123\n")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert auth_headers() == {}
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert auth_headers() == {"authorization": "Bearer abc123"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "fromenv")
    assert auth_headers() == {"authorization": "Bearer fromenv"}


def test_submit_unreachable_address_fails_fast(capsys, tmp_path, monkeypatch):
    for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    port = closed_port()
    t0 = time.monotonic()
    rc = main(["submit", QUICKSTART, "--address", f"http://127.0.0.1:{port}",
               "--storage", str(tmp_path)])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 2 and elapsed < 10, (rc, elapsed)
    assert f"cannot reach the Ray dashboard at http://127.0.0.1:{port}" in err
    assert "Connection refused" in err and "is the cluster up" in err
    assert len(err.strip().splitlines()) == 1


# --- against a real head ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """One real head (2 CPUs, token auth, loopback, its own temp folder and ports)."""
    from . import ray_local
    temp_dir = ray_local.make_temp_dir()
    token = ray_local.token_file(temp_dir)
    gcs, dash = ray_local.free_ports(2)
    env = ray_local.node_env(token)
    proc = ray_local.start_node(temp_dir, env, "127.0.0.2", 2, head_port=gcs,
                                dashboard_port=dash)
    address = f"http://127.0.0.1:{dash}"
    try:
        ray_local.wait_nodes(address, token, 1, [proc], timeout=120)
        yield {"address": address, "token_file": str(token),
               "storage": tmp_path_factory.mktemp("submit-exps")}
    finally:
        ray_local.end(proc, temp_dir)
        ray_local.remove(temp_dir)


@pytest.fixture
def authed(head, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", head["token_file"])
    for k in ("RAY_AUTH_TOKEN", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    return head


def _job_client(head):
    from search.dashboard import client
    return client(head["address"])


@pytest.mark.ray
def test_token_missing_or_wrong_is_explained(authed, capsys, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE")
    assert main(["jobs", "--address", authed["address"]]) == 2
    err = capsys.readouterr().err
    assert "wants a token (401)" in err and "RAY_AUTH_MODE=token" in err
    assert "RAY_AUTH_TOKEN_PATH" in err
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    assert main(["jobs", "--address", authed["address"]]) == 2
    assert "rejected the token (403" in capsys.readouterr().err


@pytest.mark.ray
def test_gpu_space_is_refused_before_submission(authed, tmp_path, capsys, monkeypatch):
    import search.jobs as jobs
    before = len(_job_client(authed).list_jobs())
    monkeypatch.setattr(jobs, "ROOT", tmp_path)        # the space counts as in the project
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text((ROOT / QUICKSTART).read_text().replace(
        "gpus_per_worker: 0}", "gpus_per_worker: 0.25}"))
    rc = main(["submit", str(gpu), "--address", authed["address"],
               "--storage", str(authed["storage"])])
    err = capsys.readouterr().err
    assert rc == 2
    assert "resources.gpus_per_worker = 0.25" in err and "has no GPU" in err, err
    assert f"the cluster at {authed['address']}" in err and "1 x {CPU: 2}" in err
    assert len(_job_client(authed).list_jobs()) == before


@pytest.mark.ray
def test_unknown_job_is_one_error(authed, capsys):
    for cmd in (["logs", "nope"], ["stop", "nope"], ["logs", "nope", "--follow"]):
        assert main([*cmd, "--address", authed["address"]]) == 2
        err = capsys.readouterr().err
        assert "no job nope on the cluster at" in err, err


@pytest.mark.ray
def test_submit_smoke_runs_and_jobs_logs_show_it(authed, capsys):
    storage = authed["storage"]
    t0 = time.monotonic()
    rc = main(["submit", QUICKSTART, "--smoke-test", "--address", authed["address"],
               "--storage", str(storage), "--name", "x"])
    out, err = capsys.readouterr()
    print(f"smoke submit took {time.monotonic() - t0:.0f} s", file=sys.stderr)
    assert rc == 0, out[-3000:] + err[-3000:]
    job = re.search(r"job (paretune-x-[0-9a-f]{6}) submitted", out).group(1)
    assert "packaging the project:" in out and f"job {job} SUCCEEDED" in out
    assert (storage / "x" / "paretune.json").is_file()
    assert main(["jobs", "--address", authed["address"]]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith(job))
    assert "SUCCEEDED" in row and "python -m search run spaces/quickstart.yaml" in row
    assert main(["logs", job, "--address", authed["address"]]) == 0
    assert "[search]" in capsys.readouterr().out
    info = _job_client(authed).get_job_info(job)
    assert "--smoke-test" in info.entrypoint and info.runtime_env.get("env_vars") is None


@pytest.mark.ray
def test_stop_a_running_job(authed, capsys):
    rc = main(["submit", QUICKSTART, "--no-wait", "--address", authed["address"],
               "--storage", str(authed["storage"]), "--name", "y"])
    out = capsys.readouterr().out
    assert rc == 0 and "python -m search logs" in out and "python -m search stop" in out
    job = re.search(r"job (paretune-y-[0-9a-f]{6}) submitted", out).group(1)
    c = _job_client(authed)
    deadline = time.monotonic() + 60
    while str(c.get_job_status(job)) == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert main(["stop", job, "--address", authed["address"]]) == 0
    assert f"job {job}: STOPPED" in capsys.readouterr().out
    assert str(c.get_job_status(job)) == "STOPPED"
    assert main(["logs", job, "--address", authed["address"], "--follow"]) == 1
    assert f"job {job} STOPPED" in capsys.readouterr().err
