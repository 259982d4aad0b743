"""Does a space's ``resources`` section fit a cluster? Checked before anything is scheduled
(``search submit`` before submitting, ``search run`` after ``ray.init``), because Ray would
otherwise keep a trial that can never be placed PENDING forever.

    check_fits(space.resources, nodes, where="the cluster at http://head:8265")
    check_fits(space.resources, node_resources_from_ray(), where="the local Ray cluster")

``nodes`` is one dict of total resources per alive node, Ray's spelling
(``{"CPU": 2.0, "GPU": 1.0, "memory": ...}``). :func:`check_fits` is pure (no Ray).
"""
from __future__ import annotations

import math
from collections import Counter

from .space import SpaceError

__all__ = ["check_fits", "describe_nodes", "node_resources_from_ray"]

_EPS = 1e-9


def _num(x) -> str:
    return f"{float(x):g}"


def _kinds(n: dict) -> dict:
    """A node's CPU and GPU (the resources a space asks for), zeros dropped."""
    return {k: float(n.get(k) or 0) for k in ("CPU", "GPU") if float(n.get(k) or 0) > 0}


def describe_nodes(nodes: list[dict]) -> str:
    """``2 x {CPU: 2}, 1 x {CPU: 8, GPU: 1}``: identical nodes grouped, biggest first."""
    if not nodes:
        return "no alive node"
    groups = Counter(tuple(sorted(_kinds(n).items())) for n in nodes)
    parts = []
    for kinds, count in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0], -kv[1])):
        inner = ", ".join(f"{k}: {_num(v)}" for k, v in kinds) or "no CPU"
        parts.append(f"{count} x {{{inner}}}")
    return ", ".join(parts)


def _fits(n: dict, cpus: float, gpus: float) -> int:
    """How many workers of (cpus, gpus) one node holds at once."""
    k = _kinds(n)
    counts = []
    if cpus > 0:
        counts.append(math.floor(k.get("CPU", 0.0) / cpus + _EPS))
    if gpus > 0:
        counts.append(math.floor(k.get("GPU", 0.0) / gpus + _EPS))
    return min(counts) if counts else 10 ** 9


def check_fits(resources: dict, nodes: list[dict], where: str) -> None:
    """Raise :class:`SpaceError` if a trial of ``resources`` (a validated space's
    ``space.resources``: ``workers_per_trial``, ``cpus_per_worker``, ``gpus_per_worker``)
    can never be scheduled on ``nodes`` (alive nodes' total resources). ``where`` names the
    cluster in the message, e.g. ``"the cluster at http://head:8265"``.

    Refused: a GPU asked and no node has one; one worker's CPUs or GPUs more than any
    node has (a worker lives on one node); the trial's total (workers x per worker; a
    multi-worker trial's own driver holds no CPU, see search.trial) more than the
    cluster's total; the workers not fitting on the nodes together. The message names
    the key, its value and what the cluster has."""
    workers = int(resources.get("workers_per_trial", 1))
    cpus = float(resources.get("cpus_per_worker", 1))
    gpus = float(resources.get("gpus_per_worker", 0))
    has = f"{where} has {describe_nodes(nodes)}"
    asked_c = f"resources.cpus_per_worker = {_num(cpus)}"
    asked_g = f"resources.gpus_per_worker = {_num(gpus)}"
    if not nodes:
        raise SpaceError(f"{where} has no alive node; is the cluster up (`ray status` on "
                         f"its head)?")
    kinds = [_kinds(n) for n in nodes]
    max_c = max(k.get("CPU", 0.0) for k in kinds)
    max_g = max(k.get("GPU", 0.0) for k in kinds)
    if gpus > 0 and max_g <= 0:
        raise SpaceError(f"{asked_g}: each worker needs a GPU share, but {where} has no GPU "
                         f"(nodes: {describe_nodes(nodes)}); set gpus_per_worker: 0 to train "
                         f"on CPU, or add GPU nodes")
    if cpus > max_c + _EPS:
        raise SpaceError(f"{asked_c}: more CPUs than any node has (largest: {_num(max_c)}); "
                         f"{has}. A worker runs on one node: lower cpus_per_worker")
    if gpus > max_g + _EPS:
        raise SpaceError(f"{asked_g}: more GPUs than any node has (largest: {_num(max_g)}); "
                         f"{has}. A worker runs on one node: lower gpus_per_worker")
    if not any(_fits(n, cpus, gpus) >= 1 for n in nodes):
        raise SpaceError(f"{asked_c} with {asked_g}: no single node has both; {has}")
    total_c = sum(k.get("CPU", 0.0) for k in kinds)
    total_g = sum(k.get("GPU", 0.0) for k in kinds)
    need_c = workers * cpus
    need_g = workers * gpus
    trial = f"resources.workers_per_trial = {workers}"
    if need_c > total_c + _EPS:
        raise SpaceError(f"{trial} x {asked_c} = {_num(need_c)} CPUs per trial, but "
                         f"{where} has {_num(total_c)} in all (nodes: "
                         f"{describe_nodes(nodes)}); lower workers_per_trial or "
                         f"cpus_per_worker")
    if need_g > total_g + _EPS:
        raise SpaceError(f"{trial} x {asked_g} = {_num(need_g)} GPUs per trial, but {where} "
                         f"has {_num(total_g)} in all (nodes: {describe_nodes(nodes)}); "
                         f"lower workers_per_trial or gpus_per_worker")
    placed = sum(_fits(n, cpus, gpus) for n in nodes)
    if placed < workers:
        raise SpaceError(f"{trial} with {asked_c} and {asked_g}: only {placed} such "
                         f"worker(s) fit on the nodes at once (a worker cannot span nodes); "
                         f"{has}")


def check_shared_storage(storage, n_nodes: int, where: str) -> None:
    """Refuse a folder of one machine (a ``trainables.storage.Storage``) as the storage of a
    cluster with several nodes: trials on the others could not write there."""
    if n_nodes > 1 and not storage.shared:
        raise SpaceError(
            f"--storage {storage.uri} is a folder on one machine, but {where} has {n_nodes} "
            f"nodes: trials on other nodes could not write there. Use shared storage: "
            f"--storage s3://BUCKET/experiments (or gs://...), or a network filesystem "
            f"mounted at the same path on every node as file://{storage.path}")


def node_resources_from_ray() -> list[dict]:
    """The alive nodes' total resources of the cluster ``ray.init`` connected to (call it
    after ``ray.init``), for :func:`check_fits`."""
    import ray
    return [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")]
