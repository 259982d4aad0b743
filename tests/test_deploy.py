"""The deployment files: cluster.yaml (Ray cluster launcher, AWS + GPUs), deploy/rayjob.yaml
(KubeRay RayJob) and deploy/Dockerfile.

cluster.yaml is checked by Ray's own validation (the installed ray's ray-schema.json, as
`ray up` does before it talks to AWS), plus what paretune needs of it: a head without GPU,
GPU workers, the repo as a file mount, install.sh as the installer, token auth. Broken
copies must be rejected, so the schema check can fail. No cloud, no cluster, no network.
"""
from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster.yaml"
RAYJOB = ROOT / "deploy" / "rayjob.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PACKAGES = ("search", "trainables", "analysis")
# EC2 families with NVIDIA GPUs (g4dn, g5, g6, g6e, p4d, p5...; gr6 too).
GPU_INSTANCE = re.compile(r"^(g\d|gr\d|p\d)")
SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY", re.I)


def _cluster() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def _rayjob() -> dict:
    docs = [d for d in yaml.safe_load_all(RAYJOB.read_text()) if d is not None]
    assert len(docs) == 1, "deploy/rayjob.yaml holds the RayJob only (no Secret with values)"
    return docs[0]


def _head_and_workers(cfg):
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    workers = {k: v for k, v in types.items() if k != cfg["head_node_type"]}
    return head, workers


def _has_gpu(node_type) -> bool:
    res = node_type.get("resources") or {}
    if "GPU" in res:
        return res["GPU"] >= 1
    return bool(GPU_INSTANCE.match(node_type["node_config"].get("InstanceType", "")))


# --- cluster.yaml ----------------------------------------------------------------------------

def test_cluster_yaml_passes_rays_validation():
    cfg = _cluster()
    validate_config(copy.deepcopy(cfg))                       # as written
    validate_config(prepare_config(copy.deepcopy(cfg)))       # with Ray's AWS defaults merged
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(cfg, json.loads(schema_path.read_text()))
    assert cfg["cluster_name"] == "paretune"
    assert cfg["provider"]["type"] == "aws"
    assert cfg["provider"]["region"] and cfg["provider"]["availability_zone"]
    assert "cache_stopped_nodes" in cfg["provider"]
    assert cfg["auth"]["ssh_user"] == "ubuntu"


def test_cluster_head_has_no_gpu_and_workers_do():
    cfg = _cluster()
    head, workers = _head_and_workers(cfg)
    assert head["resources"].get("GPU", 0) == 0
    assert head["resources"].get("CPU", 0) >= 1, "the head runs the Tune driver"
    assert not GPU_INSTANCE.match(head["node_config"]["InstanceType"])
    gpu = {k: v for k, v in workers.items() if _has_gpu(v)}
    assert gpu, "a worker type with NVIDIA GPUs"
    for name, t in workers.items():
        assert 0 <= t.get("min_workers", 0) <= t["max_workers"] <= cfg["max_workers"], name
        if "GPU" in t["resources"]:
            assert GPU_INSTANCE.match(t["node_config"]["InstanceType"]), name
    for t in cfg["available_node_types"].values():
        assert re.match(r"^ami-[0-9a-f]{8,17}$", t["node_config"]["ImageId"])


def test_cluster_installs_paretune_with_install_sh():
    cfg = _cluster()
    assert (ROOT / "scripts" / "install.sh").is_file()
    setup = cfg["setup_commands"]
    install = [i for i, c in enumerate(setup) if "scripts/install.sh" in c]
    assert install, "setup_commands run scripts/install.sh"
    assert "cd ~/paretune" in setup[install[0]]
    assert "PARETUNE_VENV=~/paretune-venv" in setup[install[0]]
    # the node's torch build (CUDA on GPU nodes) goes into the venv before install.sh
    torch_cmd = [i for i, c in enumerate(setup) if "torch==" in c and "--index-url" in c]
    assert torch_cmd and torch_cmd[0] < install[0]
    pin = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert pin in setup[torch_cmd[0]], "the same torch as pyproject.toml pins"
    assert "~/paretune-venv/bin/python" in setup[torch_cmd[0]]


def test_cluster_mounts_the_repo_and_the_token():
    cfg = _cluster()
    assert cfg["file_mounts"]["~/paretune"] == "."            # `ray up` from the repo root
    assert (ROOT / ".").resolve() == ROOT and (ROOT / "pyproject.toml").is_file()
    assert cfg["file_mounts"]["~/.ray/auth_token"].endswith(".ray/auth_token")
    excl = cfg["rsync_exclude"]
    for must in ("/.venv/", "/experiments/", "/data/", "__pycache__", "/.git"):
        assert must in excl, must
    # no exclude pattern may drop a package's own folder (trainables/data/ is code)
    for pkg in PACKAGES:
        for d in (ROOT / pkg).rglob("*"):
            if not d.is_dir() or d.name == "__pycache__":
                continue
            rel = d.relative_to(ROOT).as_posix()
            for pat in excl:
                p = pat.rstrip("/")
                hit = (fnmatch.fnmatch(rel, p.lstrip("/")) if p.startswith("/")
                       else fnmatch.fnmatch(d.name, p))
                assert not hit, f"rsync_exclude {pat!r} would skip {rel}/"


def test_cluster_starts_the_venvs_ray_with_token_auth():
    cfg = _cluster()
    head = " ; ".join(cfg["head_start_ray_commands"])
    worker = " ; ".join(cfg["worker_start_ray_commands"])
    for cmds in (head, worker):
        assert "~/paretune-venv/bin/ray stop" in cmds
        assert "~/paretune-venv/bin/ray start" in cmds
        assert "RAY_AUTH_MODE=token" in cmds
        assert 'PATH="$HOME/paretune-venv/bin:$PATH"' in cmds   # jobs' `python` is the venv's
    assert "--head --port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--dashboard-host=127.0.0.1" in head
    assert "--disable-usage-stats" in head
    assert "--address=$RAY_HEAD_IP:6379" in worker
    assert any("boto3" in c for c in cfg["head_setup_commands"])   # the autoscaler's SDK


@pytest.mark.parametrize("breakage", [
    "no provider", "typo top-level key", "typo node type key", "bad head type",
    "min above max", "resources not integers",
])
def test_broken_cluster_yaml_is_rejected(breakage):
    cfg = _cluster()
    gpu = next(k for k, v in _head_and_workers(cfg)[1].items() if _has_gpu(v))
    if breakage == "no provider":
        del cfg["provider"]
    elif breakage == "typo top-level key":
        cfg["setup_comands"] = cfg.pop("setup_commands")
    elif breakage == "typo node type key":
        cfg["available_node_types"][gpu]["min_worker"] = 1
    elif breakage == "bad head type":
        cfg["head_node_type"] = "no_such_type"
    elif breakage == "min above max":
        cfg["available_node_types"][gpu]["min_workers"] = cfg["max_workers"] + 1
    elif breakage == "resources not integers":
        cfg["available_node_types"][gpu]["resources"]["GPU"] = "one"
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(cfg)


# --- deploy/rayjob.yaml ----------------------------------------------------------------------

def _containers(job):
    spec = job["spec"]["rayClusterSpec"]
    groups = [("head", spec["headGroupSpec"])] + [
        (g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [(name, c) for name, g in groups for c in g["template"]["spec"]["containers"]]


def test_rayjob_runs_a_paretune_search():
    job = _rayjob()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "-m", "search"] and argv[3] in ("run", "submit")
    assert (ROOT / argv[4]).is_file(), f"space file {argv[4]}"
    opts = {a for a in argv[5:] if a.startswith("--")}
    assert opts <= {"--address", "--storage", "--name", "--data", "--smoke-test",
                    "--storage-endpoint", "--num-cpus", "--no-wait"}, opts
    assert argv[argv.index("--address") + 1] == "auto"
    assert re.match(r"^(s3|gs)://", argv[argv.index("--storage") + 1])
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["working_dir"]


def test_rayjob_cluster_has_a_head_and_gpu_workers():
    spec = _rayjob()["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"   # the pod network
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"].get(
        "limits", {})
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if any(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1
                         for c in g["template"]["spec"]["containers"])]
    assert gpu_groups, "a worker group whose containers have nvidia.com/gpu limits"
    for g in spec["workerGroupSpecs"]:
        assert g["groupName"]
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    for name, c in _containers(_rayjob()):
        assert c.get("image"), name
        assert c["resources"].get("requests") and c["resources"].get("limits"), name
        gpus = c["resources"]["limits"].get("nvidia.com/gpu")
        if gpus is not None:
            assert c["resources"]["requests"].get("nvidia.com/gpu") == gpus, name


def test_rayjob_uses_token_auth_and_no_literal_secrets():
    job = _rayjob()
    spec = job["spec"]["rayClusterSpec"]
    assert spec["authOptions"]["mode"] == "token"
    secret = spec["authOptions"]["secretName"]
    for name, c in _containers(job):
        env = {e["name"]: e for e in c.get("env", [])}
        assert env["RAY_AUTH_MODE"]["value"] == "token", name
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == secret, name
        for e in c.get("env", []):
            if SECRETISH.search(e["name"]):
                assert "value" not in e, f"{name}: {e['name']} written in the file"
                assert e["valueFrom"]["secretKeyRef"]["name"], e["name"]
    text = RAYJOB.read_text()
    assert not re.search(r"\bAKIA[0-9A-Z]{16}\b", text), "an AWS access key id in the file"
    assert "stringData" not in text


def test_dockerfile_builds_on_the_pinned_ray_and_runs_install_sh():
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M).group(1)
    assert base.startswith(f"rayproject/ray:{ray.__version__}-"), base
    assert "bash scripts/install.sh" in text
    for folder in PACKAGES + ("scripts", "spaces"):
        assert re.search(rf"^COPY .*\b{folder}/ {folder}/$", text, re.M), folder
    assert not any(".venv" in line for line in re.findall(r"^COPY .*$", text, re.M))
    images = {c["image"] for _, c in _containers(_rayjob())}
    assert len(images) == 1, "head and workers run the same image (same Python, same ray)"
    workdir = yaml.safe_load(_rayjob()["spec"]["runtimeEnvYAML"])["working_dir"]
    assert re.search(rf"^WORKDIR {re.escape(workdir)}$", text, re.M)
