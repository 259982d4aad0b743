"""A real 2-node Ray cluster on this machine (two `ray start` nodes, token auth) with
experiments on a real S3-compatible server (moto, 127.0.0.1): `search submit` runs on
both nodes and writes through S3, analysis reads the URI from another folder, a local
storage path is refused on a multi-node cluster, and killing the second node mid-sweep
loses no finished trial (its trials retry on the head)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from . import ray_local

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    s3 = ray_local.S3Server()
    # both nodes share one temp folder, as two `ray start` on one machine do by default
    # (each node's runtime-env agent unpacks a job's working_dir into it)
    head_dir = ray_local.make_temp_dir()
    token = ray_local.token_file(head_dir)
    cache = tmp_path_factory.mktemp("node-cache")
    env = ray_local.node_env(token, PARETUNE_CACHE=str(cache), **s3.env)
    gcs, dash = ray_local.free_ports(2)
    head = ray_local.start_node(head_dir, env, "127.0.0.2", 1, head_port=gcs,
                                dashboard_port=dash)
    worker = None
    try:
        ray_local.wait_nodes(f"http://127.0.0.1:{dash}", token, 1, [head])
        worker = ray_local.start_node(head_dir, env, "127.0.0.3", 1,
                                      head_address=f"127.0.0.2:{gcs}")
        ray_local.wait_nodes(f"http://127.0.0.1:{dash}", token, 2, [head, worker])
        yield {"address": f"http://127.0.0.1:{dash}", "gcs": f"127.0.0.2:{gcs}",
               "token": token, "s3": s3, "env": env, "worker": worker}
    finally:
        if worker is not None:
            ray_local.end(worker)              # its process tree (the temp folder is shared)
        ray_local.end(head, head_dir)
        s3.close()
        ray_local.remove(head_dir)


def _cli(args, env, cwd=ROOT, timeout=400):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _client_env(cluster, tmp_path) -> dict:
    """A user's shell: the cluster's token, the S3 credentials, a cache of its own."""
    return {**cluster["env"], "PARETUNE_CACHE": str(tmp_path / "client-cache")}


def test_submit_runs_on_both_nodes_and_analysis_reads_the_uri(cluster, tmp_path):
    s3 = cluster["s3"]
    uri = f"s3://{s3.bucket}/exps"
    env = _client_env(cluster, tmp_path)
    res = _cli(["search", "submit", "spaces/quickstart.yaml", "--smoke-test", "--address",
                cluster["address"], "--storage", uri, "--storage-endpoint", s3.endpoint,
                "--name", "twonodes"], env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "SUCCEEDED" in res.stdout
    assert "[status" not in res.stdout or "running" in res.stdout
    # from another folder, with nothing but the URI
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = _cli(["analysis", "frontier", f"{uri}/twonodes", "--storage-endpoint", s3.endpoint,
                "--columns", "node,host"], env, cwd=elsewhere)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"uploaded to {uri}/twonodes/analysis" in res.stdout
    res = _cli(["analysis", "pick", f"{uri}/twonodes", "--rule", "fair", "--storage-endpoint",
                s3.endpoint], env, cwd=elsewhere)
    assert res.returncode == 0 and "picked " in res.stdout, res.stderr[-2000:]
    # the results as stored in S3: every trial finished, on two different nodes
    from analysis.location import experiment_folder
    from analysis.results import load_results
    os.environ.update(s3.env)
    local, remote = experiment_folder(f"{uri}/twonodes", s3.endpoint)
    df = load_results(local)
    assert len(df) == 2 and (df["status"] == "TERMINATED").all(), df[["status", "error"]]
    assert df["node"].nunique() == 2, df[["trial_id", "node", "host"]]
    for f in ("paretune.json", "space.yaml", "analysis/frontier.csv",
              "analysis/pick-fair.yaml"):
        assert remote.is_file(f), f
    for d in df["dir"]:
        assert remote.is_file(f"{Path(d).name}/resolved_config.json")
    assert not (ROOT / "s3:").exists() and not (elsewhere / "s3:").exists()


def test_a_local_storage_path_is_refused_on_a_multi_node_cluster(cluster, tmp_path):
    t0 = time.monotonic()
    res = _cli(["search", "run", "spaces/quickstart.yaml", "--smoke-test", "--address",
                cluster["gcs"], "--storage", str(tmp_path / "exps")],
               _client_env(cluster, tmp_path), timeout=120)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "has 2 nodes" in err[0] and "s3://" in err[0], res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "exps").exists()
    assert time.monotonic() - t0 < 60


def test_killing_a_node_mid_sweep_loses_no_finished_trial(cluster, tmp_path):
    """Runs last in this module: it ends the second node."""
    s3 = cluster["s3"]
    space = yaml.safe_load((ROOT / "spaces" / "quickstart.yaml").read_text())
    space["data"]["rows"] = 100000
    space["optim"]["epochs"] = 6
    space["search"].update(num_samples=4, max_concurrent=2, max_failures=2)
    space["tracking"] = {"wandb": {"mode": "disabled"}}
    path = tmp_path / "killnode.yaml"
    path.write_text(yaml.safe_dump(space))
    uri = f"s3://{s3.bucket}/kill"
    env = {**_client_env(cluster, tmp_path), "PARETUNE_STATUS_EVERY": "5"}
    proc = subprocess.Popen([sys.executable, "-m", "search", "run", str(path), "--address",
                             cluster["gcs"], "--storage", uri, "--storage-endpoint",
                             s3.endpoint, "--name", "k"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    os.environ.update(s3.env)
    from trainables.storage import open_storage
    exp = open_storage(f"{uri}/k", s3.endpoint)
    # mid-trial: the first two trials (one per node) have each reported an epoch
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(set().union(*_nodes(exp).values())) < 2:
        time.sleep(0.5)
    before = _finished_results(exp)
    ray_local.end(cluster["worker"])
    proc.wait(timeout=400)
    reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out[-5000:]
    assert len(before) < 4, "the node was ended after the sweep: nothing was tested"
    from analysis.location import experiment_folder
    from analysis.results import load_results
    df = load_results(experiment_folder(exp.uri, s3.endpoint)[0])
    assert len(df) == 4 and (df["status"] == "TERMINATED").all(), \
        (df[["trial_id", "status", "error"]], out[-3000:])
    after = _finished_results(exp)
    for name, text in before.items():            # finished before the kill: kept as they were
        assert after[name] == text
    # everything that finished after the kill finished on the one node left (a trial the
    # ended node was running, if any, was retried there)
    survivors = {t: n for t, n in _nodes(exp).items() if t not in before}
    head_id = df.loc[df["trial_id"].isin([t.split("-")[0] for t in survivors]), "node"]
    assert survivors and head_id.nunique() == 1, (survivors, df[["trial_id", "node"]])


def _trial_folders(exp) -> list[str]:
    from pyarrow import fs
    sel = fs.FileSelector(exp.path, recursive=False, allow_not_found=True)
    return [i.base_name for i in exp.fs.get_file_info(sel) if i.type == fs.FileType.Directory
            and "_" in i.base_name and not i.base_name.startswith(("wandb", "analysis"))]


def _nodes(exp) -> dict[str, set]:
    """Trial folder -> the node ids its reported epochs ran on."""
    out = {}
    for t in _trial_folders(exp):
        if exp.is_file(f"{t}/result.json"):
            out[t] = {json.loads(x).get("node_id") for x in
                      exp.read_text(f"{t}/result.json").splitlines() if x.strip()}
    return out or {"": set()}


def _finished_results(exp) -> dict[str, str]:
    out = {}
    for t in _trial_folders(exp):
        if exp.is_file(f"{t}/result.json"):
            text = exp.read_text(f"{t}/result.json")
            rows = [json.loads(x) for x in text.splitlines() if x.strip()]
            if rows and rows[-1].get("epoch") == 6:
                out[t] = text
    return out
