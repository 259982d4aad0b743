"""The one training loop, for every model, loss and weighting (docs/DESIGN.md, "Training loop").

``train_loop_per_worker(config)`` runs as is:

- directly (``python -c ...``, tests, benchmarks): device from ``run.device``
  (auto = CUDA when present), progress printed per epoch, checkpoints written to
  ``run.checkpoint_dir`` when set;
- inside a Ray Train worker (``TorchTrainer(train_loop_per_worker, ...)``): the device
  Ray gave the worker, the model wrapped for data parallelism, each worker training on
  its shard, metrics and checkpoints through ``ray.train.report``, resuming from
  ``ray.train.get_checkpoint()``;
- under any other driver (e.g. a Tune function trainable) that passes
  ``report(metrics, checkpoint_dir)``.

Data live as tensors on the device and are batched by index: rows, or whole requests when
the model or the loss needs them (``trainables.requests``: a model with
``needs_requests = True`` gets ``groups``, the batch's request ids; a loss gets the data
arguments it names before its ``*``: ``groups``, ``mp_scores`` (the batch's MP
scores) and/or ``duration`` (the dataset's optional ``duration`` column, for IPUT)). Per epoch it reports ``auc/<obj>``, ``auc_sum``, ``gauc/<obj>`` (validation,
exact; also ``request_gauc/<obj>`` with ``run.request_gauc``), ``loss/<obj>`` (mean
training loss), ``weight/<obj>``, ``samples_per_s`` (training rows per second of
training time), ``epoch``, ``step``; each checkpoint holds the resolved config.
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

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .checkpoints import (CHECKPOINT_FILE, UnsafeCheckpoint, _load_checkpoint,  # noqa: F401
                          _plain_payload, _save_checkpoint, load_model)
from .config import resolve_config
from .data import load_dataset, resolve_data
from .losses import bind_objectives, get_loss
from .models import FeatureSpec
from .reporting import (_emit, _local_reporter, _ray_reporter, tune_reporter,  # noqa: F401
                        where_ran)
from .requests import RequestIndex, shard_requests
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
    ds: object                  # the dataset (its feature layout goes into checkpoints)
    objectives: list
    valid: object               # the validation split, as tensors on the device
    trainee: Trainee
    model: torch.nn.Module      # the trainee's model, wrapped for data parallelism if any
    report: Callable
    shard: object               # this worker's training rows
    n_each: int
    bs: int
    n_batches: int
    requests: RequestIndex | None   # whole requests per batch, else None (rows)
    step: Callable
    check_every: int
    gen: torch.Generator
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
                        "samples_per_s": rows * r.world / train_time,
                        "train_time_s": train_time})
        history.append(metrics)
        _checkpoint_and_report(r, epoch, metrics)
    return history


def _setup(cfg: dict, report: Callable | None) -> _Run:
    """Device, data, the trainee (model, weighting, optimizer), loss, resume, batching."""
    run, o = cfg["run"], cfg["optim"]
    # a caller that brings its own reporter (e.g. a Tune trial) is not a Train worker
    ray_ctx = _ray_train_context() if report is None else None
    rank, world = (ray_ctx.get_world_rank(), ray_ctx.get_world_size()) if ray_ctx else (0, 1)
    device = _device(run, ray_ctx)
    if run["threads"]:
        torch.set_num_threads(int(run["threads"]))
    torch.manual_seed(run["seed"])

    path, objectives = resolve_data(cfg["data"])
    ds = load_dataset(path, objectives, splits=["train", run["eval_split"]])
    objectives = ds.objectives
    train = ds.tensors("train", device)
    valid = ds.tensors(run["eval_split"], device)
    features = FeatureSpec(tuple(ds.categorical.items()), tuple(ds.numeric))
    trainee = make_trainee(cfg, objectives, features, device)
    loss_fn = get_loss(cfg["loss"]["kind"])
    loss_hp = bind_objectives({k: v for k, v in cfg["loss"].items() if k != "kind"},
                              objectives)
    if loss_hp.get("use_iput") and train.duration is None:
        raise ValueError(f"loss.use_iput = true needs the dataset's 'duration' column (the "
                         f"watch-time denominator of IPUT, EMER eq. 10), and {path} has none; "
                         f"set loss.use_iput: false or use a dataset with a duration column "
                         f"(python -m trainables.mp writes one)")
    start_epoch, global_step = _resume(trainee, run, ray_ctx)

    model = trainee.model
    if world > 1:
        import ray.train.torch
        model = ray.train.torch.prepare_model(model)
    if report is None:
        report = _ray_reporter(rank) if ray_ctx is not None else \
            _local_reporter(run["verbose"], objectives)
    shard, n_each, bs, n_batches, requests = _batching(
        train, o["batch_size"], rank, world, by_request(trainee.model, loss_fn))
    step = make_step(model, loss_fn, loss_hp, trainee.weighting, trainee.optimizer,
                     o["grad_clip"], trainee.alive)
    check_every = run["nan_check_every"] or (1 if device.type == "cpu" else 20)
    return _Run(cfg, ray_ctx, rank, world, device, ds, objectives, valid, trainee, model,
                report, shard, n_each, bs, n_batches, requests, step, check_every,
                torch.Generator(device=device), start_epoch, global_step)


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


def _batching(train, batch_size: int, rank: int, world: int, whole_requests: bool):
    """(shard, rows per worker, batch size, batches per epoch, RequestIndex or None).

    Data parallel: worker r trains on rows r, r + world, ...; equal sizes so every
    worker takes the same number of steps (DDP needs that)."""
    n_each = len(train) // world
    shard = train.shard(rank, world)
    bs = max(1, batch_size // world)
    n_batches = max(1, n_each // bs)
    bs = min(bs, n_each)
    requests = None
    if whole_requests:
        # whole requests per batch; worker r takes requests r, r + world, ... and every
        # worker cuts its epoch into the same number of batches
        if world > 1:
            shard = train.take(shard_requests(train.request, rank, world))
        requests = RequestIndex.build(shard.request)
        n_batches = max(1, math.ceil(n_each / bs))
    return shard, n_each, bs, n_batches, requests


def _train_epoch(r: _Run, epoch: int) -> tuple[torch.Tensor, int, float]:
    """One epoch of steps; returns (mean training loss per objective (K,) or (P, K),
    rows trained on by this worker, training seconds). Every ``check_every`` steps the
    losses are checked for NaN/inf (the trainee decides what that stops)."""
    r.gen.manual_seed(r.cfg["run"]["seed"] * 1_000_003 + epoch)
    r.model.train()
    t0 = time.perf_counter()
    if r.requests is None:
        perm = torch.randperm(r.n_each, device=r.device, generator=r.gen)
        bounds = [b * r.bs for b in range(r.n_batches + 1)]
    else:
        perm, bounds = r.requests.epoch_batches(r.bs, r.gen, r.n_batches)
        if r.world > 1 and len(bounds) - 1 != r.n_batches:
            raise ValueError(f"a request has more rows than a batch of about "
                             f"{r.requests.rows // r.n_batches}; raise optim.batch_size")
    steps = len(bounds) - 1
    loss_sum = torch.zeros(r.trainee.loss_shape(len(r.objectives)), dtype=torch.float64,
                           device=r.device)
    shard = r.shard
    window, window_start = [], r.global_step
    for b in range(steps):
        idx = perm[bounds[b]:bounds[b + 1]]
        losses = r.step(shard.scores[idx], shard.labels[idx], shard.cat[idx], shard.num[idx],
                        r.global_step, epoch, shard.request[idx],
                        duration=None if shard.duration is None else shard.duration[idx])
        window.append(losses)
        r.global_step += 1
        if len(window) >= r.check_every or b == steps - 1:
            stacked = torch.stack(window)
            if not bool(torch.isfinite(stacked).all()):
                r.trainee.diverged(stacked, window_start, r.objectives, epoch)
            loss_sum += stacked.sum(0).to(torch.float64)
            window, window_start = [], r.global_step
    if r.device.type == "cuda":
        torch.cuda.synchronize(r.device)
    train_time = time.perf_counter() - t0
    return loss_sum / steps, bounds[-1], train_time


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
        if r.ray_ctx is None and run["checkpoint_dir"]:
            _save_checkpoint(run["checkpoint_dir"], payload)
    _emit(r.report, metrics, payload if r.rank == 0 else None)
