"""Where the training loop's metrics and checkpoints go: printed (run directly), Ray Train
(``ray.train.report``) or Ray Tune (``tune.report``)."""
from __future__ import annotations

import tempfile

from .checkpoints import _save_checkpoint


def _local_reporter(verbose: bool, objectives):
    def report(metrics: dict, checkpoint_dir=None):
        if not verbose:
            return
        aucs = " ".join(f"{o} {metrics[f'auc/{o}']:.4f}" for o in objectives)
        print(f"[train] epoch {metrics['epoch']:>3}  auc_sum {metrics['auc_sum']:.4f}  "
              f"auc: {aucs}  {metrics['samples_per_s']:,.0f} samples/s", flush=True)
    return report


def _emit(report, metrics: dict, payload) -> None:
    """Hand metrics (and a checkpoint folder, valid during the call) to the reporter."""
    if payload is None:
        report(metrics, None)
        return
    with tempfile.TemporaryDirectory(prefix="paretune-ckpt-") as d:
        _save_checkpoint(d, payload)
        report(metrics, d)


def where_ran() -> dict:
    """The Ray node id and host name of this process, reported with every epoch."""
    import socket
    info = {"hostname": socket.gethostname()}
    try:
        import ray
        if ray.is_initialized():
            info["node_id"] = ray.get_runtime_context().get_node_id()
    except Exception:
        pass
    return info


def _ray_reporter(rank: int):
    import ray.train

    def report(metrics: dict, checkpoint_dir=None):
        ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report({**metrics, **where_ran()}, checkpoint=ckpt)
    return report


def tune_reporter():
    """A ``report(metrics, checkpoint_dir)`` for a Ray Tune function trainable: metrics and
    the epoch's checkpoint through ``tune.report`` (the folder is copied during the call)."""
    from ray import tune

    def report(metrics: dict, checkpoint_dir=None):
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **where_ran()}, checkpoint=ckpt)
    return report

