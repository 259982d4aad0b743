"""The one training loop, for every model, loss and weighting (docs/DESIGN.md, "Training loop").

``train_loop_per_worker(config)`` runs as is:

- directly (``python -c ...``, tests, benchmarks): device from ``run.device``
  (auto = CUDA when present), progress printed per epoch, checkpoints written to
  ``run.checkpoint_dir`` when set;
- inside a Ray Train worker (``TorchTrainer(train_loop_per_worker, ...)``): the device
  Ray gave the worker, the model wrapped for data parallelism, each worker training on
  its shard, metrics and checkpoints through ``ray.train.report``, resuming from
  ``ray.train.get_checkpoint()``; likewise data parallel in a process group another
  launcher initialized (``torch.distributed``, e.g. gloo), reporting on rank 0;
- under any other driver (e.g. a Tune function trainable) that passes
  ``report(metrics, checkpoint_dir)``.

Data live as tensors on the device and are batched by index, or are streamed from Parquet
in bounded memory (``data.stream``; ``trainables.sources``); either way the epoch iterates
a batch source (``trainables.batches``) that gives every row once per epoch and every
worker the same number of steps: rows, or whole requests when the model or the loss needs
them (``trainables.requests``: a model with ``needs_requests = True`` gets ``groups``, the
batch's request ids; a loss gets the data arguments it names before its ``*``:
``groups``, ``mp_scores`` (the batch's MP scores) and/or ``duration`` (the dataset's
optional ``duration`` column, for IPUT)). Per epoch it reports ``auc/<obj>``, ``auc_sum``,
``gauc/<obj>`` (validation, exact with any number of workers: ``trainables.distributed``;
also ``request_gauc/<obj>`` with ``run.request_gauc``), ``loss/<obj>`` (mean training
loss over every worker's steps), ``weight/<obj>``, ``samples_per_s`` (training rows of
all workers per second of training time), ``train_rows`` (rows trained on this epoch, all
workers together), ``epoch``, ``step``; each checkpoint holds the resolved config.
A NaN/inf loss raises :class:`TrainingDiverged` naming the step and the objective.

The loop reads as steps: :func:`_setup` (config, device, data, the trainee, loss,
resume, batching, the step), :func:`_train_epoch` (batches, steps, divergence checks),
the trainee's validation metrics, and :func:`_checkpoint_and_report`. One model and a
population differ only in their :class:`~trainables.trainee.Trainee`
(``trainables.trainee``: :class:`SingleModel`, :class:`Population`). The step and
validation are in ``trainables.step``, checkpoints in ``trainables.checkpoints``,
reporters in ``trainables.reporting``; all their public names are importable from here.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .checkpoints import (CHECKPOINT_FILE, UnsafeCheckpoint, _load_checkpoint,  # noqa: F401
                          _plain_payload, _save_checkpoint, load_model)
from .config import resolve_config
from .data import resolve_data
from .distributed import all_sum, rank_world, wrap_model
from .losses import bind_objectives, get_loss
from .models import FeatureSpec
from .reporting import (_emit, _local_reporter, _ray_reporter, tune_reporter,  # noqa: F401
                        where_ran)
from .requests import needs_requests
from .sources import open_data
from .step import (LOSS_DATA, _score_metrics, by_request, evaluate,  # noqa: F401
                   evaluate_members, loss_data, make_optimizer, make_step, predict)
from .trainee import (Population, SingleModel, Trainee, TrainingDiverged,  # noqa: F401
                      make_trainee)


def _ray_train_context():
    """The Ray Train context when running inside a Train worker, else None.

    Outside Train, ray.train.get_context() raises (RuntimeError on a driver; inside a Tune
    function trainable, Ray 2.60 raises DeprecationWarning): any exception means no."""
    if "ray" not in sys.modules:
        return None
    try:
        import ray.train
        return ray.train.get_context()
    except Exception:
        return None


def _device(run_cfg: dict, ray_ctx) -> torch.device:
    if ray_ctx is not None:
        import ray.train.torch
        return ray.train.torch.get_device()
    want = run_cfg["device"]
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(want)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device = {want!r} but no CUDA device is available; use auto or cpu")
    return dev


@dataclass
class _Run:
    """What :func:`_setup` prepares for the epochs of one run."""
    cfg: dict
    ray_ctx: object
    rank: int
    world: int
    device: torch.device
    ds: object                  # the data (its feature layout goes into checkpoints)
    objectives: list
    valid: object               # the eval split: a TensorSplit, or this worker's EvalShard
    trainee: Trainee
    model: torch.nn.Module      # the trainee's model, wrapped for data parallelism if any
    report: Callable
    source: object              # this worker's batches (trainables.batches)
    step: Callable
    check_every: int
    start_epoch: int
    global_step: int


def train_loop_per_worker(config: dict, report: Callable | None = None) -> list[dict]:
    """Train one config; returns the per-epoch metrics (also reported as they come)."""
    r = _setup(resolve_config(config), report)
    history = []
    for epoch in range(r.start_epoch, r.cfg["optim"]["epochs"]):
        mean_loss, rows, train_time = _train_epoch(r, epoch)
        metrics = r.trainee.metrics(r.valid, r.objectives, r.cfg["run"], mean_loss)
        metrics.update({"epoch": epoch + 1, "step": r.global_step,
                        "samples_per_s": rows / train_time, "train_rows": rows,
                        "train_time_s": train_time})
        history.append(metrics)
        _checkpoint_and_report(r, epoch, metrics)
    return history


def _setup(cfg: dict, report: Callable | None) -> _Run:
    """Device, data, the trainee (model, weighting, optimizer), loss, resume, batching."""
    run, o = cfg["run"], cfg["optim"]
    # a caller that brings its own reporter (e.g. a Tune trial) is not a Train worker
    ray_ctx = _ray_train_context() if report is None else None
    rank, world = rank_world(ray_ctx)
    device = _device(run, ray_ctx)
    if run["threads"]:
        torch.set_num_threads(int(run["threads"]))
    torch.manual_seed(run["seed"])

    path, objectives = resolve_data(cfg["data"])
    ds = open_data(cfg["data"], path, objectives, run["eval_split"], device)
    objectives = ds.objectives
    features = FeatureSpec(tuple(ds.categorical.items()), tuple(ds.numeric))
    trainee = make_trainee(cfg, objectives, features, device)
    loss_fn = get_loss(cfg["loss"]["kind"])
    loss_hp = bind_objectives({k: v for k, v in cfg["loss"].items() if k != "kind"},
                              objectives)
    if loss_hp.get("use_iput") and not ds.has_duration:
        raise ValueError(f"loss.use_iput = true needs the dataset's 'duration' column (the "
                         f"watch-time denominator of IPUT, EMER eq. 10), and {path} has none; "
                         f"set loss.use_iput: false or use a dataset with a duration column "
                         f"(python -m trainables.mp writes one)")
    start_epoch, global_step = _resume(trainee, run, ray_ctx)

    model = trainee.model
    if world > 1:
        model = wrap_model(model, device, ray_ctx)
    if report is None:
        report = _ray_reporter(rank) if ray_ctx is not None else \
            _local_reporter(run["verbose"] and rank == 0, objectives)
    source, valid = ds.sources(o["batch_size"], run["eval_batch_size"], rank, world,
                               by_request(trainee.model, loss_fn),
                               needs_requests(trainee.model), device)
    step = make_step(model, loss_fn, loss_hp, trainee.weighting, trainee.optimizer,
                     o["grad_clip"], trainee.alive)
    check_every = run["nan_check_every"] or (1 if device.type == "cpu" else 20)
    return _Run(cfg, ray_ctx, rank, world, device, ds, objectives, valid, trainee, model,
                report, source, step, check_every, start_epoch, global_step)


def _resume(trainee: Trainee, run: dict, ray_ctx) -> tuple[int, int]:
    """Load the checkpoint to resume from (Ray Train's, else ``run.resume_from``) into
    ``trainee``; returns (start epoch, global step): (0, 0) when there is none."""
    resume = None
    if ray_ctx is not None:
        import ray.train
        ckpt = ray.train.get_checkpoint()
        if ckpt is not None:
            with ckpt.as_directory() as d:
                resume = _load_checkpoint(d)
    elif run["resume_from"]:
        resume = _load_checkpoint(run["resume_from"])
    if resume is None:
        return 0, 0
    trainee.load_state(resume)
    return resume["epoch"], resume["step"]


def _train_epoch(r: _Run, epoch: int) -> tuple[torch.Tensor, int, float]:
    """One epoch of steps over the batch source; returns (mean training loss per objective
    (K,) or (P, K) over every worker's steps, rows trained on by all workers, training
    seconds). Every ``check_every`` steps the losses are checked for NaN/inf (the trainee
    decides what that stops)."""
    r.model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros(r.trainee.loss_shape(len(r.objectives)), dtype=torch.float64,
                           device=r.device)
    window, window_start = [], r.global_step
    rows = steps = 0
    for batch in r.source.epoch(r.cfg["run"]["seed"] * 1_000_003 + epoch):
        losses = r.step(batch.scores, batch.labels, batch.cat, batch.num, r.global_step,
                        epoch, batch.request, duration=batch.duration)
        window.append(losses)
        r.global_step += 1
        rows, steps = rows + len(batch), steps + 1
        if len(window) >= r.check_every:
            _check_window(r, window, window_start, epoch, loss_sum)
            window, window_start = [], r.global_step
    if window:
        _check_window(r, window, window_start, epoch, loss_sum)
    if r.device.type == "cuda":
        torch.cuda.synchronize(r.device)
    train_time = time.perf_counter() - t0
    if r.world > 1:         # every worker's rows, steps and loss sums
        total = all_sum(torch.cat([torch.tensor([rows, steps], dtype=torch.float64),
                                   loss_sum.flatten().cpu()]))
        rows, steps = int(total[0]), int(total[1])
        loss_sum = total[2:].reshape(loss_sum.shape).to(r.device)
    return loss_sum / steps, rows, train_time


def _check_window(r: _Run, window: list, first_step: int, epoch: int,
                  loss_sum: torch.Tensor) -> None:
    """Check a window of step losses for NaN/inf and add them to ``loss_sum``."""
    stacked = torch.stack(window)
    if not bool(torch.isfinite(stacked).all()):
        r.trainee.diverged(stacked, first_step, r.objectives, epoch)
    loss_sum += stacked.sum(0).to(torch.float64)


def _checkpoint_and_report(r: _Run, epoch: int, metrics: dict) -> None:
    """Report the epoch's metrics, with a checkpoint every ``run.checkpoint_every``
    epochs and after the last (also written to ``run.checkpoint_dir`` outside Ray Train)."""
    run = r.cfg["run"]
    last = epoch + 1 == r.cfg["optim"]["epochs"]
    payload = None
    if last or (epoch + 1) % max(1, run["checkpoint_every"]) == 0:
        payload = r.trainee.payload(
            epoch=epoch + 1, step=r.global_step, config=r.cfg, objectives=r.objectives,
            features={"categorical": dict(r.ds.categorical), "numeric": list(r.ds.numeric)},
            metrics=metrics)
        if r.ray_ctx is None and run["checkpoint_dir"] and r.rank == 0:
            _save_checkpoint(run["checkpoint_dir"], payload)
    _emit(r.report, metrics, payload if r.rank == 0 else None)
