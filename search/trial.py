"""The one trial runner for all Ray work (search, resume, submit's entrypoint, rerun).

A trial is one call of the trainables' training loop:
- ``resources.workers_per_trial: 1``: the loop runs in the trial's own process
  (``cpus_per_worker`` CPUs, ``gpus_per_worker`` GPUs), reporting through ``tune.report``
  with a checkpoint per epoch (resume continues from it);
- more workers: the trial fits a Ray Train ``TorchTrainer`` (data parallel, gloo on CPU,
  nccl on GPU) whose rank-0 metrics reach Tune through ``TuneReportCallback``. The outer
  trial reserves no CPU (a token amount of Ray's ``memory`` resource), so a
  ``2 workers x 1 CPU`` trial fits a 2-CPU cluster. Each worker gets its own shard of the
  data itself (``trainables.sources``: loaded, or streamed from Parquet under
  ``data.stream``) rather than through Ray Data, whose read tasks would find no CPU left
  on such a cluster (docs/DESIGN.md, "Training loop").

Every trial writes ``resolved_config.json`` (the exact training config) into its folder
on the experiment's storage, reports where it ran (``node_id``, ``hostname``), and a
:class:`~trainables.loop.TrainingDiverged` (deterministic: the same config diverges
again) ends the trial with its reason in ``error`` instead of being retried.
"""
from __future__ import annotations

import json

OUTER_TRIAL_MEMORY = 16 << 20     # bytes of Ray's memory resource the DDP driver holds


def trial_config(config: dict, resources: dict) -> dict:
    """A Tune config -> the training config a trial runs (sampled variables mapped)."""
    from .space import materialize
    cfg = materialize(config)
    run = cfg.setdefault("run", {})
    run["verbose"] = False
    if float(resources["gpus_per_worker"]) > 0:
        if run.get("device", "auto") in ("auto", "cpu"):
            run["device"] = "cuda"
    else:
        run["device"] = "cpu"
        run.setdefault("threads", max(1, int(resources["cpus_per_worker"])))
    return cfg


def resolved(cfg: dict) -> dict:
    from trainables.config import resolve_config
    return resolve_config(cfg)


def _trial_folder(storage):
    from ray import tune
    from pathlib import PurePosixPath
    return storage.join(PurePosixPath(tune.get_context().get_trial_dir()).name)


def _write_resolved(cfg: dict, storage) -> None:
    try:
        _trial_folder(storage).write_text("resolved_config.json",
                                          json.dumps(resolved(cfg), indent=1, default=str))
    except Exception as e:   # the record is a convenience; training must not fail on it
        print(f"[trial] could not write resolved_config.json: {e}", flush=True)


def _diverged(e: BaseException) -> str | None:
    """The TrainingDiverged message inside ``e`` (a Ray Train failure wraps it), if any."""
    text = f"{type(e).__name__}: {e}"
    if "TrainingDiverged" not in text:
        return None
    for line in reversed(text.splitlines()):
        if "TrainingDiverged" in line:
            return line.strip()[:500]
    return text[:500]


def _report_diverged(message: str) -> None:
    from ray import tune
    from trainables.loop import where_ran
    tune.report({"error": message, "diverged": 1, **where_ran()})


def make_trainable(resources: dict, storage_uri: str, storage_endpoint: str | None = None):
    """The Tune trainable for a space's resources (a closure over plain values: the
    storage is reopened in each trial from its URI, credentials from the node)."""
    from ray import tune
    workers = int(resources["workers_per_trial"])
    cpus = float(resources["cpus_per_worker"])
    gpus = float(resources["gpus_per_worker"])

    def storage():
        from trainables.storage import open_storage
        return open_storage(storage_uri, storage_endpoint)

    if workers == 1:
        def paretune_trial(config):
            from trainables.loop import TrainingDiverged, train_loop_per_worker, tune_reporter
            cfg = trial_config(config, resources)
            _write_resolved(cfg, storage())
            report = tune_reporter()
            ckpt = tune.get_checkpoint()
            try:
                if ckpt is None:
                    train_loop_per_worker(cfg, report=report)
                    return
                with ckpt.as_directory() as d:
                    cfg["run"]["resume_from"] = d
                    train_loop_per_worker(cfg, report=report)
            except TrainingDiverged as e:
                _report_diverged(f"TrainingDiverged: {e}")

        return tune.with_resources(paretune_trial, {"cpu": cpus, "gpu": gpus})

    def paretune_ddp_trial(config):
        import ray.train
        from ray.train.torch import TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback
        from trainables.loop import train_loop_per_worker
        st = storage()
        cfg = trial_config(config, resources)
        cfg["run"].pop("device", None)     # each Train worker uses the device Ray gives it
        cfg["run"].pop("threads", None)
        _write_resolved(cfg, st)
        trial_id = tune.get_context().get_trial_id()
        train_dir = st.join("train")
        trainer = TorchTrainer(
            train_loop_per_worker, train_loop_config=cfg,
            scaling_config=ray.train.ScalingConfig(
                num_workers=workers, use_gpu=gpus > 0,
                resources_per_worker={"CPU": cpus, **({"GPU": gpus} if gpus else {})}),
            run_config=ray.train.RunConfig(
                name=f"train-{trial_id}", storage_path=train_dir.path,
                storage_filesystem=None if st.local else st.fs,
                callbacks=[TuneReportCallback()]))
        try:
            trainer.fit()
        except Exception as e:
            msg = _diverged(e)
            if msg is None:
                raise
            _report_diverged(msg)

    return tune.with_resources(paretune_ddp_trial, {"cpu": 0, "memory": OUTER_TRIAL_MEMORY})
