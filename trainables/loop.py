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
"""
from __future__ import annotations

import inspect
import math
import os
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch

from .config import resolve_config
from .data import load_dataset, resolve_data
from .losses import bind_objectives, get_loss
from .metrics import auc_per_objective, gauc_per_objective
from .models import FeatureSpec, build_model
from .population import (MemberLR, PopulationModel, clip_grad_norm_per_member, finite_members,
                         member_configs)
from .requests import (RequestIndex, RequestPopulationModel, needs_requests, predict_by_request,
                       shard_requests)
from .weighting import StepContext, build_weighting

CHECKPOINT_FILE = "model.pt"
# Batch data a loss may ask for by naming it before its ``*`` (its hyper-parameters are
# keyword-only): the batch's request ids, the MP's scores (n, K) and the rows' durations
# (n,) (None when the dataset has no ``duration`` column).
LOSS_DATA = ("groups", "mp_scores", "duration")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the objective."""


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


def make_optimizer(params, o: dict) -> torch.optim.Optimizer:
    """The optimizer of ``optim``; Adam/AdamW fused (one kernel for all parameters: ~4x
    cheaper per step than the default on CPU for a model of many small tensors)."""
    params = list(params)
    if o["optimizer"] in ("adam", "adamw"):
        cls = torch.optim.Adam if o["optimizer"] == "adam" else torch.optim.AdamW
        try:
            return cls(params, lr=o["lr"], weight_decay=o["weight_decay"], fused=True)
        except (RuntimeError, TypeError):  # a device without a fused kernel
            return cls(params, lr=o["lr"], weight_decay=o["weight_decay"])
    return torch.optim.SGD(params, lr=o["lr"], weight_decay=o["weight_decay"], momentum=0.9)


def loss_data(loss_fn) -> tuple[str, ...]:
    """The batch data (of :data:`LOSS_DATA`) that ``loss_fn`` names as arguments."""
    params = inspect.signature(loss_fn).parameters
    return tuple(k for k in LOSS_DATA if k in params
                 and params[k].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def by_request(model, loss_fn) -> bool:
    """Whether batches must hold whole requests (the model or the loss needs them)."""
    return needs_requests(model) or "groups" in loss_data(loss_fn)


def make_step(model, loss_fn, loss_hp: dict, weighting, optimizer, grad_clip=None,
              alive: torch.Tensor | None = None) -> Callable:
    """One optimizer step on a batch; returns the per-objective losses, detached: (K,), or
    (P, K) for a population (``alive``, (P,) bool: members still training; a diverged
    member's losses are masked out so its NaNs reach nobody).

    A model that needs requests is called with the batch's request ids ``groups`` (which
    then are also in ``StepContext.inputs``, so ``model(*ctx.inputs)`` stays its call);
    a loss gets the batch data it names (:func:`loss_data`).
    Shared by the loop and the benchmark, so the benchmark times exactly this code.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    per_member = getattr(getattr(model, "module", model), "members", None) is not None  # DDP
    model_groups = needs_requests(model)
    wants = loss_data(loss_fn)

    def step(scores, labels, cat, num, step_no: int, epoch: int, groups=None,
             duration=None) -> torch.Tensor:
        inputs = (scores, cat, num, groups) if model_groups else (scores, cat, num)
        s = model(*inputs)
        data = {}
        if "groups" in wants:
            data["groups"] = groups
        if "mp_scores" in wants:
            data["mp_scores"] = scores
        if "duration" in wants:
            data["duration"] = duration
        losses = loss_fn(s, labels, **data, **loss_hp)
        masked = losses if alive is None else \
            torch.where(alive[:, None], losses, torch.zeros_like(losses))
        total = weighting.combine(masked, StepContext(step_no, epoch, model, s, labels,
                                                      inputs, groups))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            if per_member:
                clip_grad_norm_per_member(params, grad_clip)
            else:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return losses.detach()

    return step


@torch.no_grad()
def predict(model, split, batch_size: int) -> torch.Tensor:
    """Scores of ``model`` on every row of a TensorSplit, in batches: (n,), or (P, n) for
    a population. A model that needs requests gets batches of whole requests."""
    was_training = model.training
    model.eval()
    if needs_requests(model):
        s = predict_by_request(model, split, batch_size)
        model.train(was_training)
        return s
    out = [model(split.scores[i:i + batch_size], split.cat[i:i + batch_size],
                 split.num[i:i + batch_size]) for i in range(0, len(split), batch_size)]
    model.train(was_training)
    return torch.cat(out, dim=-1)


def evaluate(model, split, objectives, batch_size: int, with_gauc: bool = True,
             with_request_gauc: bool = False) -> dict:
    """Exact validation AUC (and GAUC per user, per request) per objective, and the AUC sum."""
    return _score_metrics(predict(model, split, batch_size), split, objectives, with_gauc,
                          with_request_gauc)


def evaluate_members(model, split, objectives, batch_size: int, with_gauc: bool = True,
                     alive=None, with_request_gauc: bool = False) -> list[dict]:
    """:func:`evaluate` for each member of a population (NaNs for a diverged member)."""
    s = predict(model, split, batch_size)
    live = {i: _score_metrics(s[i], split, objectives, with_gauc, with_request_gauc)
            for i in range(s.shape[0]) if alive is None or bool(alive[i])}
    keys = next(iter(live.values())).keys()       # the loop stops when no member is left
    return [live[i] if i in live else dict.fromkeys(keys, math.nan) for i in range(s.shape[0])]


def _score_metrics(s, split, objectives, with_gauc: bool,
                   with_request_gauc: bool = False) -> dict:
    aucs = auc_per_objective(s, split.labels).tolist()
    metrics = {f"auc/{o}": a for o, a in zip(objectives, aucs)}
    metrics["auc_sum"] = float(sum(aucs))
    for on, prefix, groups in ((with_gauc, "gauc", split.user),
                               (with_request_gauc, "request_gauc", split.request)):
        if on:
            g = gauc_per_objective(s, split.labels, groups).tolist()
            metrics.update({f"{prefix}/{o}": v for o, v in zip(objectives, g)})
    return metrics


def _raise_diverged(window, first_step, objectives, epoch):
    stacked = torch.stack(window)
    bad = ~torch.isfinite(stacked)
    row, col = (int(v) for v in bad.nonzero()[0])
    value = stacked[row, col].item()
    raise TrainingDiverged(
        f"loss for objective {objectives[col]!r} became {value} at step {first_step + row} "
        f"(epoch {epoch}); the run stops here. Lower optim.lr, set optim.grad_clip, or check "
        f"the loss's parameters")


class UnsafeCheckpoint(ValueError):
    """A checkpoint file holds more than tensors and plain data (so it is not read)."""


def _load_checkpoint(path) -> dict:
    """A checkpoint's payload, read with ``torch.load(weights_only=True)``: tensors and
    plain data only (dict, list, tuple, str, int, float, bool, None), so a crafted file
    cannot run code when it is loaded; anything else is refused."""
    import pickle
    f = Path(path) / CHECKPOINT_FILE
    try:
        payload = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message: which object was refused (its advice to turn the check off is
        # left out on purpose)
        why = [ln.strip() for ln in str(e).splitlines()
               if "GLOBAL" in ln or "Unsupported" in ln]
        raise UnsafeCheckpoint(
            f"{f}: refused: the file holds objects other than tensors and plain data"
            f"{' (' + why[0][:300] + ')' if why else ''}; paretune reads checkpoints as "
            f"weights and plain data only, so that loading a file cannot run code. Use a "
            f"checkpoint written by paretune's training loop") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise UnsafeCheckpoint(f"{f}: not a paretune checkpoint (expected a mapping with the "
                               f"model's weights, got {type(payload).__name__})")
    return payload


def _plain_payload(x, where: str = "checkpoint"):
    """``x`` with only what ``torch.load(weights_only=True)`` reads back: tensors, dicts,
    lists, tuples, str, int, float, bool, None. numpy arrays become tensors, numpy scalars
    Python numbers, paths strings; any other object is an error naming where it is."""
    if x is None or type(x) in (bool, int, float, str) or isinstance(x, torch.Tensor):
        return x
    if isinstance(x, dict):
        out = {k: _plain_payload(v, f"{where}.{k}") for k, v in x.items()}
        if isinstance(x, OrderedDict):          # a module's state_dict keeps its versions
            out = OrderedDict(out)
            if hasattr(x, "_metadata"):
                out._metadata = _plain_payload(x._metadata, f"{where}._metadata")
        return out
    if isinstance(x, (list, tuple)):
        out = [_plain_payload(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return out if isinstance(x, list) else tuple(out)
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    for t in (bool, int, float, str):            # numpy float64 is a float, IntEnum an int...
        if isinstance(x, t):
            return t(x)
    if type(x).__module__ == "numpy":
        import numpy as np
        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x).copy())
        if hasattr(x, "item"):
            return x.item()
    raise TypeError(f"{where}: a {type(x).__name__} cannot go into a checkpoint (only "
                    f"tensors and plain data are saved, so that loading one cannot run code)")


def _save_checkpoint(folder, payload: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(folder) / (CHECKPOINT_FILE + ".tmp")
    torch.save(_plain_payload(payload), tmp)
    os.replace(tmp, Path(folder) / CHECKPOINT_FILE)


def _local_reporter(verbose: bool, objectives):
    def report(metrics: dict, checkpoint_dir=None):
        if not verbose:
            return
        aucs = " ".join(f"{o} {metrics[f'auc/{o}']:.4f}" for o in objectives)
        print(f"[train] epoch {metrics['epoch']:>3}  auc_sum {metrics['auc_sum']:.4f}  "
              f"auc: {aucs}  {metrics['samples_per_s']:,.0f} samples/s", flush=True)
    return report


def train_loop_per_worker(config: dict, report: Callable | None = None) -> list[dict]:
    """Train one config; returns the per-epoch metrics (also reported as they come)."""
    cfg = resolve_config(config)
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
    members = member_configs(cfg)
    model, weighting, optimizer = _build(cfg, members, objectives, features, device)
    loss_fn = get_loss(cfg["loss"]["kind"])
    loss_hp = bind_objectives({k: v for k, v in cfg["loss"].items() if k != "kind"},
                              objectives)
    if loss_hp.get("use_iput") and train.duration is None:
        raise ValueError(f"loss.use_iput = true needs the dataset's 'duration' column (the "
                         f"watch-time denominator of IPUT, EMER eq. 10), and {path} has none; "
                         f"set loss.use_iput: false or use a dataset with a duration column "
                         f"(python -m trainables.mp writes one)")
    alive = torch.ones(len(members), dtype=torch.bool, device=device) if members else None
    member_errors: dict[int, str] = {}

    start_epoch, global_step = 0, 0
    resume = None
    if ray_ctx is not None:
        import ray.train
        ckpt = ray.train.get_checkpoint()
        if ckpt is not None:
            with ckpt.as_directory() as d:
                resume = _load_checkpoint(d)
    elif run["resume_from"]:
        resume = _load_checkpoint(run["resume_from"])
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        weighting.load_state_dict(resume.get("weighting", {}))
        start_epoch, global_step = resume["epoch"], resume["step"]
        member_errors = {int(k): v for k, v in resume.get("member_errors", {}).items()}
        for i in member_errors:
            alive[i] = False

    core = model
    if world > 1:
        import ray.train.torch
        model = ray.train.torch.prepare_model(model)
    if report is None:
        report = _ray_reporter(rank) if ray_ctx is not None else \
            _local_reporter(run["verbose"], objectives)

    # Data parallel: worker r trains on rows r, r + world, ...; equal sizes so every
    # worker takes the same number of steps (DDP needs that).
    n_each = len(train) // world
    shard = train.shard(rank, world)
    bs = max(1, o["batch_size"] // world)
    n_batches = max(1, n_each // bs)
    bs = min(bs, n_each)
    requests = None
    if by_request(core, loss_fn):
        # whole requests per batch; worker r takes requests r, r + world, ... and every
        # worker cuts its epoch into the same number of batches
        if world > 1:
            shard = train.take(shard_requests(train.request, rank, world))
        requests = RequestIndex.build(shard.request)
        n_batches = max(1, math.ceil(n_each / bs))
    step = make_step(model, loss_fn, loss_hp, weighting, optimizer, o["grad_clip"], alive)
    check_every = run["nan_check_every"] or (1 if device.type == "cpu" else 20)
    gen = torch.Generator(device=device)
    history = []
    for epoch in range(start_epoch, o["epochs"]):
        gen.manual_seed(run["seed"] * 1_000_003 + epoch)
        model.train()
        t0 = time.perf_counter()
        if requests is None:
            perm = torch.randperm(n_each, device=device, generator=gen)
            bounds = [b * bs for b in range(n_batches + 1)]
        else:
            perm, bounds = requests.epoch_batches(bs, gen, n_batches)
            if world > 1 and len(bounds) - 1 != n_batches:
                raise ValueError(f"a request has more rows than a batch of about "
                                 f"{requests.rows // n_batches}; raise optim.batch_size")
        steps = len(bounds) - 1
        loss_sum = torch.zeros(((len(members),) if members else ()) + (len(objectives),),
                               dtype=torch.float64, device=device)
        window, window_start = [], global_step
        for b in range(steps):
            idx = perm[bounds[b]:bounds[b + 1]]
            losses = step(shard.scores[idx], shard.labels[idx], shard.cat[idx], shard.num[idx],
                          global_step, epoch, shard.request[idx],
                          duration=None if shard.duration is None else shard.duration[idx])
            window.append(losses)
            global_step += 1
            if len(window) >= check_every or b == steps - 1:
                stacked = torch.stack(window)
                if not bool(torch.isfinite(stacked).all()):
                    if members is None:
                        _raise_diverged(window, window_start, objectives, epoch)
                    _members_diverged(stacked, alive, member_errors, window_start, objectives,
                                      epoch)
                loss_sum += stacked.sum(0).to(torch.float64)
                window, window_start = [], global_step
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - t0
        if members is None:
            metrics = evaluate(core, valid, objectives, run["eval_batch_size"], run["gauc"],
                               run["request_gauc"])
            metrics.update(_per_objective("loss", objectives, loss_sum / steps))
            metrics.update(_per_objective("weight", objectives, weighting.weights()))
        else:
            metrics = _population_metrics(
                evaluate_members(core, valid, objectives, run["eval_batch_size"], run["gauc"],
                                 alive, run["request_gauc"]),
                loss_sum / steps, weighting.weights(), objectives, member_errors)
        metrics.update({"epoch": epoch + 1, "step": global_step,
                        "samples_per_s": bounds[-1] * world / train_time,
                        "train_time_s": train_time})
        history.append(metrics)
        last = epoch + 1 == o["epochs"]
        want_ckpt = last or (epoch + 1) % max(1, run["checkpoint_every"]) == 0
        payload = None
        if want_ckpt:
            payload = {"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                       "weighting": weighting.state_dict(), "epoch": epoch + 1,
                       "step": global_step, "config": cfg, "objectives": objectives,
                       "features": {"categorical": dict(ds.categorical),
                                    "numeric": list(ds.numeric)},
                       "metrics": metrics, "member_errors": dict(member_errors)}
            if ray_ctx is None and run["checkpoint_dir"]:
                _save_checkpoint(run["checkpoint_dir"], payload)
        _emit(report, metrics, payload if rank == 0 else None)
    return history


def _build(cfg: dict, members, objectives, features, device):
    """(model, weighting, optimizer) for one model, or for a population of members."""
    family = cfg["model"]["family"]
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "family"}
    kind = cfg["weighting"]["kind"]

    def weighting_of(c):
        return build_weighting(kind, objectives,
                               {k: v for k, v in c["weighting"].items() if k != "kind"})

    if members is None:
        model = build_model(family, len(objectives), features, model_cfg).to(device)
        return model, weighting_of(cfg), make_optimizer(model.parameters(), cfg["optim"])
    nets = []
    for m in members:              # each member initialized from its own run.seed
        torch.manual_seed(m["run"]["seed"])
        nets.append(build_model(family, len(objectives), features, model_cfg))
    torch.manual_seed(cfg["run"]["seed"])
    population = RequestPopulationModel if needs_requests(nets[0]) else PopulationModel
    model = population(nets, cfg["run"]["chunk_rows"]).to(device)
    parts = []
    for i, m in enumerate(members):
        try:
            parts.append(weighting_of(m))
        except ValueError as e:
            raise ValueError(f"population member {i}: {e}") from None
    weighting = type(parts[0]).stack(parts)
    lrs = [float(m["optim"]["lr"]) for m in members]
    optimizer = make_optimizer(model.parameters(), {**cfg["optim"], "lr": lrs[0]})
    if len(set(lrs)) > 1:
        optimizer = MemberLR(optimizer, lrs)
    return model, weighting, optimizer


def _per_objective(prefix: str, objectives, values: torch.Tensor) -> dict:
    return {f"{prefix}/{o}": float(v) for o, v in zip(objectives, values.tolist())}


def _members_diverged(stacked, alive, member_errors, first_step, objectives, epoch) -> None:
    """Stop the members whose losses went NaN/inf (recorded with the step and objective);
    the others train on. When none is left the run fails like a single model."""
    ok = finite_members(stacked)
    for i in (~ok & alive).nonzero().flatten().tolist():
        bad = (~torch.isfinite(stacked[:, i])).nonzero()[0]
        row, col = int(bad[0]), int(bad[1])
        member_errors[i] = (f"loss for objective {objectives[col]!r} became "
                            f"{stacked[row, i, col].item()} at step {first_step + row} (epoch "
                            f"{epoch}); member {i} stopped there")
        alive[i] = False
    if not bool(alive.any()):
        raise TrainingDiverged("every population member diverged: " + "; ".join(
            member_errors[i] for i in sorted(member_errors)))


def _population_metrics(per_member: list[dict], mean_loss, weights, objectives,
                        member_errors) -> dict:
    """One report for a population: ``m<i>/<metric>`` for every member, ``members``, and
    at the top level the metrics of the member with the best AUC sum (``best_member``),
    so progress lines and schedulers see the population's best."""
    out = {"members": len(per_member)}
    for i, m in enumerate(per_member):
        out.update({f"m{i}/{k}": v for k, v in m.items()})
        out.update({f"m{i}/{k}": v for k, v in _per_objective("loss", objectives,
                                                                mean_loss[i]).items()})
        out.update({f"m{i}/{k}": v for k, v in _per_objective("weight", objectives,
                                                                weights[i]).items()})
        if i in member_errors:
            out[f"m{i}/error"] = member_errors[i]
    sums = [m["auc_sum"] if math.isfinite(m["auc_sum"]) else -math.inf for m in per_member]
    best = max(range(len(sums)), key=sums.__getitem__)
    out.update({k: v for k, v in per_member[best].items()})
    out["best_member"] = best
    return out


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


def load_model(checkpoint_dir, device="cpu"):
    """Rebuild the model of a checkpoint folder; returns (model, payload)."""
    payload = _load_checkpoint(checkpoint_dir)
    cfg = payload["config"]
    f = payload["features"]
    features = FeatureSpec(tuple(f["categorical"].items()), tuple(f["numeric"]))
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "family"}
    model = build_model(cfg["model"]["family"], len(payload["objectives"]), features, model_cfg)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), payload
