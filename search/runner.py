"""Build and run (or resume) a Ray Tune experiment from a validated space (DESIGN.md §5).

One trial = one call of the trainables' training loop:
- ``resources.workers_per_trial: 1``: the loop runs in the trial's own process, reporting
  through ``tune.report`` with a checkpoint per epoch (resume continues from it);
- more workers: the trial fits a Ray Train ``TorchTrainer`` (data parallel, gloo on CPU,
  nccl on GPU) whose rank-0 metrics reach Tune through ``TuneReportCallback``
  (Ray 2.60's Train V2 pattern; the outer trial holds 0.1 CPU).

The experiment folder (``<storage>/<name>``) is Tune's, plus ``space.yaml`` (the space
as run) and ``paretune.json`` (objectives, metrics, how to resume); each trial folder gets
``resolved_config.json``, the exact training config. W&B runs go to ``<experiment>/wandb``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

from .space import Space, load_space, materialize

EXPERIMENT_FILE = "paretune.json"
SPACE_COPY = "space.yaml"


def _ray_env() -> None:
    """Local-cluster settings that must hold before ray starts (see INSTALL.md)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")


def _trial_config(config: dict, space_resources: dict) -> dict:
    cfg = materialize(config)
    run = cfg.setdefault("run", {})
    run["verbose"] = False
    if space_resources["gpus_per_worker"] > 0:
        run.setdefault("device", "cuda")
    else:
        run["device"] = "cpu"
        run.setdefault("threads", max(1, int(space_resources["cpus_per_worker"])))
    return cfg


def _write_resolved(cfg: dict) -> None:
    from ray import tune
    from trainables.config import resolve_config
    try:
        trial_dir = Path(tune.get_context().get_trial_dir())
        (trial_dir / "resolved_config.json").write_text(
            json.dumps(resolve_config(cfg), indent=1, default=str))
    except Exception:   # the record is a convenience; training must not fail on it
        pass


def make_trainable(resources: dict, experiment_dir: str):
    """The Tune trainable for a space's resources (a closure over plain values)."""
    from ray import tune
    workers = int(resources["workers_per_trial"])
    cpus = float(resources["cpus_per_worker"])
    gpus = float(resources["gpus_per_worker"])

    if workers == 1:
        def paretune_trial(config):
            from trainables.loop import train_loop_per_worker, tune_reporter
            cfg = _trial_config(config, resources)
            _write_resolved(cfg)
            report = tune_reporter()
            ckpt = tune.get_checkpoint()
            if ckpt is None:
                train_loop_per_worker(cfg, report=report)
                return
            with ckpt.as_directory() as d:
                cfg["run"]["resume_from"] = d
                train_loop_per_worker(cfg, report=report)

        return tune.with_resources(paretune_trial, {"cpu": cpus, "gpu": gpus})

    def paretune_ddp_trial(config):
        import ray.train
        from ray.train.torch import TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback
        from trainables.loop import train_loop_per_worker
        cfg = _trial_config(config, resources)
        cfg["run"].pop("device", None)     # each Train worker uses the device Ray gives it
        cfg["run"].pop("threads", None)
        _write_resolved(cfg)
        trial_id = tune.get_context().get_trial_id()
        trainer = TorchTrainer(
            train_loop_per_worker, train_loop_config=cfg,
            scaling_config=ray.train.ScalingConfig(
                num_workers=workers, use_gpu=gpus > 0,
                resources_per_worker={"CPU": cpus, **({"GPU": gpus} if gpus else {})}),
            run_config=ray.train.RunConfig(
                name=f"train-{trial_id}", storage_path=str(Path(experiment_dir) / "train"),
                callbacks=[TuneReportCallback()]))
        trainer.fit()

    return tune.with_resources(paretune_ddp_trial, {"cpu": 0.1})


def _searcher(space: Space):
    s = space.search
    if s["algorithm"] in ("random", "grid", "pe_ltr_grid"):
        from ray.tune.search.basic_variant import BasicVariantGenerator
        return BasicVariantGenerator(random_state=s["seed"],
                                     max_concurrent=s["max_concurrent"] or 0)
    from ray.tune.search import ConcurrencyLimiter
    metrics = s["metrics"]
    if s["algorithm"] == "nsga2":
        from .nsga2 import NSGA2Searcher
        searcher = NSGA2Searcher(metrics, s["pop_size"], s["generations"], s["seed"] or 0,
                                 population_trial=s["population"])
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        # Optuna's own generation size is 50: below that many trials it samples at random
        sampler = optuna.samplers.NSGAIISampler(seed=s["seed"],
                                                population_size=s["pop_size"] or 50) \
            if s["sampler"] == "nsga2" else optuna.samplers.TPESampler(seed=s["seed"])
        searcher = OptunaSearch(metric=metrics if len(metrics) > 1 else metrics[0],
                                mode=["max"] * len(metrics) if len(metrics) > 1 else "max",
                                sampler=sampler)
    if s["max_concurrent"]:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=s["max_concurrent"])
    return searcher


def _scheduler(space: Space, epochs: int):
    sc = space.scheduler
    if not sc:
        return None
    from ray.tune.schedulers import ASHAScheduler
    return ASHAScheduler(metric=sc["metric"], mode="max", max_t=epochs,
                         grace_period=sc["grace_period"], reduction_factor=sc["reduction_factor"])


def _callbacks(space: Space, experiment_dir: Path, total: int | None):
    from .progress import ProgressCallback
    cbs = [ProgressCallback(space.objectives, total)]
    wb = space.tracking.get("wandb") or {}
    if wb.get("mode", "offline") != "disabled":
        from ray.air.integrations.wandb import WandbLoggerCallback
        (experiment_dir / "wandb").mkdir(parents=True, exist_ok=True)
        if wb.get("mode", "offline") == "offline":
            os.environ["WANDB_MODE"] = "offline"
        kwargs = {k: v for k, v in (("entity", wb.get("entity")),) if v}
        cbs.append(WandbLoggerCallback(project=wb.get("project", "paretune"),
                                       group=wb.get("group") or space.name, log_config=True,
                                       mode=wb.get("mode", "offline"),
                                       dir=str(experiment_dir), **kwargs))
    return cbs


def _init_ray(address: str | None, num_cpus: int | None = None):
    import ray
    _ray_env()
    if ray.is_initialized():
        return
    kwargs = dict(include_dashboard=False, configure_logging=True, logging_level="ERROR",
                  log_to_driver=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)


def run(space_path, storage=None, name=None, smoke_test=False, address=None,
        num_cpus=None, data=None) -> Path:
    """Validate the space, run the experiment, print the summary; returns its folder.
    ``data``: a dataset folder replacing the space's data (``--data``; the space's
    objectives list is kept)."""
    space = load_space(space_path, data=data)
    if smoke_test:
        space = _smoke(space)
    name = name or space.name
    storage = Path(storage or os.environ.get("PARETUNE_STORAGE", "experiments")).resolve()
    experiment_dir = storage / name
    if (experiment_dir / EXPERIMENT_FILE).exists():
        raise FileExistsError(
            f"experiment {experiment_dir} exists; resume it with `python -m search resume "
            f"{experiment_dir}`, or pick another --name")
    experiment_dir.mkdir(parents=True, exist_ok=True)
    if smoke_test or data is not None:   # the space as run: shrunken, or its data replaced
        note = f"# {space.path} as run (--data {data})\n" if data is not None else ""
        (experiment_dir / SPACE_COPY).write_text(
            note + yaml.safe_dump(space.raw, sort_keys=False))
    else:
        shutil.copyfile(space.path, experiment_dir / SPACE_COPY)
    (experiment_dir / EXPERIMENT_FILE).write_text(json.dumps({
        "name": name, "objectives": space.objectives, "metrics": space.search["metrics"],
        "space": str(space.path), "smoke_test": smoke_test, "created": time.time(),
        "data": space.fixed_config()["data"],
        "resources": space.resources, "tracking": space.tracking}, indent=1))
    _prepare_data(space)
    _init_ray(address, num_cpus)
    from ray import tune
    epochs = _max_epochs(space)
    num = space.search["num_samples"]
    grid = space.search["algorithm"] in ("grid", "pe_ltr_grid")
    tune_samples = -1 if space.search["algorithm"] == "nsga2" else num   # the searcher ends it
    tuner = tune.Tuner(
        make_trainable(space.resources, str(experiment_dir)),
        param_space=space.param_space(),
        tune_config=tune.TuneConfig(search_alg=_searcher(space),
                                    scheduler=_scheduler(space, epochs),
                                    num_samples=tune_samples,
                                    max_concurrent_trials=space.search["max_concurrent"]),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=0,
            failure_config=tune.FailureConfig(max_failures=space.search["max_failures"]),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=_callbacks(space, experiment_dir, None if grid else num)))
    print(f"[search] {name}: {space.search['algorithm']} search, "
          f"{'grid x ' if grid else ''}{num} trial(s), objectives {', '.join(space.objectives)}; "
          f"results in {experiment_dir}", flush=True)
    grid_result = tuner.fit()
    _finish(experiment_dir, space, grid_result)
    return experiment_dir


def resume(experiment, address=None, num_cpus=None) -> Path:
    """Continue a killed experiment: finished trials kept, unfinished ones continued from
    their last checkpoint, errored ones retried."""
    experiment_dir = Path(experiment).resolve()
    meta_file = experiment_dir / EXPERIMENT_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(f"{experiment_dir} is not a paretune experiment (no "
                                f"{EXPERIMENT_FILE}); give the folder `search run` printed")
    space = load_space(experiment_dir / SPACE_COPY)
    _init_ray(address, num_cpus)
    from ray import tune
    if not tune.Tuner.can_restore(str(experiment_dir)):
        raise RuntimeError(f"{experiment_dir}: Tune has no state to resume from yet (the "
                           f"driver died before the first trial was recorded); start it again "
                           f"with `search run --name ...`")
    print(f"[search] resuming {experiment_dir}", flush=True)
    tuner = tune.Tuner.restore(str(experiment_dir),
                               trainable=make_trainable(space.resources, str(experiment_dir)),
                               resume_unfinished=True, resume_errored=True)
    grid_result = tuner.fit()
    _finish(experiment_dir, space, grid_result)
    return experiment_dir


def _max_epochs(space: Space) -> int:
    """The most epochs any trial can run (ASHA's max_t): a searched ``optim.epochs`` counts
    with its largest value."""
    from trainables.config import OPTIM_DEFAULTS
    e = (space.raw.get("optim") or {}).get("epochs", OPTIM_DEFAULTS["epochs"])
    if isinstance(e, dict):
        values = e.get("choice") or e.get("int") or [OPTIM_DEFAULTS["epochs"]]
        return int(max(values))
    return int(e)


def _prepare_data(space: Space) -> None:
    """Generate synthetic data once, before trials race to do it."""
    from trainables.data import resolve_data
    resolve_data(space.fixed_config()["data"])


def _smoke(space: Space) -> Space:
    """A seconds-long version: 2 trials, 1 epoch, small data, no scheduler."""
    raw = yaml.safe_load(yaml.safe_dump(space.raw))
    if raw["data"].get("source") == "synthetic":
        raw["data"]["rows"] = min(int(raw["data"].get("rows", 20000)), 20000)
    raw.setdefault("optim", {})["epochs"] = 1
    raw.setdefault("search", {})
    if raw["search"].get("algorithm") == "nsga2":
        if not isinstance(raw["search"].get("population", False), bool):
            raw["search"].pop("population")     # the integer form of pop_size
        raw["search"].update(pop_size=2, generations=2)
    else:
        raw["search"]["num_samples"] = min(2, raw["search"].get("num_samples", 2))
    if raw["search"].get("algorithm") in ("grid", "pe_ltr_grid"):
        raw["search"]["num_samples"] = 1
    if raw["search"].get("population") is True:
        raw["search"].pop("num_samples", None)   # a population grid is one trial anyway
    if raw["search"].get("algorithm") == "pe_ltr_grid":
        raw["search"]["partitions"] = 1          # one bound vector per objective
    raw.pop("scheduler", None)
    raw.setdefault("tracking", {})["wandb"] = {**(raw["tracking"].get("wandb") or {}),
                                               "mode": "offline"}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"paretune-smoke-{os.getpid()}.yaml"
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_space(tmp)


def _finish(experiment_dir: Path, space: Space, grid_result) -> None:
    from analysis.results import load_results
    from analysis.summary import print_summary
    df = load_results(experiment_dir)
    print_summary(df, space.objectives, experiment_dir, file=sys.stdout)
    if space.search["algorithm"] == "pe_ltr_grid":
        _print_fair_pick(df, space.objectives)


def _print_fair_pick(df, objectives) -> None:
    """PE-LTR's last step: the fair point of the bounds-grid frontier."""
    import numpy as np
    from analysis.pick import select
    from analysis.results import auc_matrix
    F = auc_matrix(df, objectives)
    if not np.isfinite(F).all(axis=1).any():
        return
    sel = select(F, objectives, "fair", labels=df["trial_id"].astype(str).tolist())
    bounds = ", ".join(f"{str(k).split('.', 2)[-1]} {float(v):.3g}"
                       for k, v in df.iloc[sel.index].items()
                       if str(k).startswith("config/weighting.bounds."))
    print(f"  fair pick (PE-LTR): {sel.reason}; its lower bounds: {bounds}", flush=True)
