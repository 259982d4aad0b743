"""W&B for a search: one run per trial that a person can browse (docs/DESIGN.md, "Tracking").

:func:`wandb_callback` builds the Tune callback the runner adds (None when
``tracking.wandb.mode`` is disabled). Compared with Ray's ``WandbLoggerCallback``:

- a run's config is the trial's *training* config (``resolve``: sampled variables mapped, so
  ``weighting.weights`` are the real weights summing to 1, no ``__simplex__``; only the
  chosen model family's / loss kind's parameters; paths under a temporary folder and
  Ray's ``trial_log_path`` dropped), not Tune's raw sampled config;
- the W&B API key is never handed to the logging actor through a ``runtime_env`` (Ray
  would write it in plain text to its runtime-env agent log): the actor reads
  ``WANDB_API_KEY`` from its own environment (a local Ray started by ``search run``
  inherits the driver's) or the node's ``wandb login``;
- the run id is the trial id with ``resume="allow"``: a trial continued by
  ``search resume`` (or retried after a failure) logs to the same run (offline: a second
  run folder with the same id, which ``wandb sync`` uploads into that run);
- every run is finished before its actor goes: at a trial's end the callback waits for
  ``wandb.finish`` (offline mode), at the experiment's end for all of them; the run file
  is also flushed every few seconds while the trial trains, so a killed search keeps what
  its trials logged (W&B's default is 15 s: a short trial killed early had an empty file);
- trials and the frontier summary run (``analysis.wandb_log``) share one group:
  ``tracking.wandb.group``, else the experiment's name (:func:`wandb_group`).

:func:`read_offline_run` reads an offline ``run-<id>.wandb`` file (the run's id, group,
config, history rows, whether it finished) without uploading it.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

# result keys that are bookkeeping, not metrics (Ray's own); where the trial ran
# (paretune's ``node_id`` and ``hostname``) goes to the run's config, shown in W&B's table
_NOT_LOGGED = ["done", "should_checkpoint", "config", "node_ip", "pid", "date",
               "checkpoint_dir_name"]
FLUSH_INTERVAL_S = 2.0       # how often a running trial's offline run file is written


def wandb_group(wandb_settings: dict | None, name: str) -> str:
    """The W&B group of an experiment's trials and of its frontier run."""
    return (wandb_settings or {}).get("group") or str(name)


def _experiment_name(experiment_dir: Path, space) -> str:
    meta = Path(experiment_dir) / "paretune.json"
    try:
        return json.loads(meta.read_text())["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return space.name


class TrialConfig:
    """Tune config -> the training config a trial runs (``search.trial``'s own mapping, so
    W&B shows what ``resolved_config.json`` holds). A class, not a closure: Tune pickles
    its callbacks into the experiment folder."""

    def __init__(self, resources: dict):
        self.resources = dict(resources)

    def __call__(self, config: dict) -> dict:
        from .trial import resolved, trial_config
        return resolved(trial_config(config, self.resources))


def _temp_roots() -> list[str]:
    roots = {tempfile.gettempdir(), os.environ.get("TMPDIR"), os.environ.get("RAY_TMPDIR")}
    try:
        from ray._common.utils import get_default_system_temp_dir
        roots.add(get_default_system_temp_dir())
    except Exception:
        pass
    return sorted(os.path.realpath(r) for r in roots if r)


def _is_temp_path(v, roots) -> bool:
    if not isinstance(v, str) or not os.path.isabs(v):
        return False
    real = os.path.realpath(v)
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _plain(x, roots):
    """JSON-able config values; temporary paths (and the keys holding them) dropped."""
    if isinstance(x, dict):
        return {str(k): _plain(v, roots) for k, v in x.items() if not _is_temp_path(v, roots)
                and k != "trial_log_path"}
    if isinstance(x, (list, tuple)):
        return [_plain(v, roots) for v in x if not _is_temp_path(v, roots)]
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if hasattr(x, "item") and type(x).__module__ == "numpy":
        return _plain(x.item(), roots)
    return str(x)


def run_config(config: dict, resolve: Callable[[dict], dict]) -> dict:
    """What a trial's W&B run shows as its config: ``resolve(config)`` as plain JSON data
    without temporary paths. A config that does not resolve is shown as sampled (with a
    warning) rather than stopping the search."""
    try:
        cfg = resolve(config)
    except Exception as e:
        logger.warning("W&B: the trial's config did not resolve (%s); logging it as sampled", e)
        cfg = config
    return _plain(cfg, _temp_roots())


@functools.lru_cache(maxsize=None)
def _logging_actor_cls():
    from ray.air.integrations.wandb import _QueueItem, _WandbLoggingActor
    from ray.tune.utils import flatten_dict

    class TrialRunActor(_WandbLoggingActor):
        """Ray's logging actor, with the run's config left as the callback set it (no
        ``trial_log_path``, nothing from the results' sampled ``config``) and
        ``wandb.finish`` called whatever happens while logging."""

        def run(self):
            os.environ["WANDB_START_METHOD"] = "thread"
            run = self._wandb.init(*self.args, **self.kwargs)
            try:
                while True:
                    item_type, item = self.queue.get()
                    if item_type == _QueueItem.END:
                        break
                    if item_type == _QueueItem.CHECKPOINT:
                        self._handle_checkpoint(item)
                        continue
                    try:
                        log, config_update = self._handle_result(item)
                        if config_update:
                            run.config.update(config_update, allow_val_change=True)
                        run.log(log, step=log.get("training_iteration"))
                    except Exception as e:        # a lost point, not a lost run
                        logger.warning("W&B: a result was not logged: %s", e)
            finally:
                run.finish()
            return run.id

        def _handle_result(self, result):
            from ray.air.integrations.wandb import _is_allowed_type
            log, config_update = {}, {}
            for k, v in flatten_dict(result, delimiter="/").items():
                if any(k == e or k.startswith(e + "/") for e in self._exclude):
                    continue
                if any(k == c or k.startswith(c + "/") for c in self._to_config):
                    config_update[k] = v
                elif _is_allowed_type(v):
                    log[k] = v
            return log, config_update

    return TrialRunActor


@functools.lru_cache(maxsize=None)
def _callback_cls():
    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback, _clean_log, _QueueItem
    from ray.air.util.node import _force_on_current_node
    from ray.util.queue import Queue

    class ParetuneWandbCallback(WandbLoggerCallback):
        """See the module's docstring."""

        # where the trial ran goes to the run's config (W&B history holds numbers only)
        AUTO_CONFIG_KEYS = ["trial_id", "experiment_tag", "node_id", "hostname"]

        def __init__(self, project: str, group: str, resolve: Callable[[dict], dict],
                     finish_wait_s: float = 60.0, **kwargs):
            super().__init__(project=project, group=group, log_config=False,
                             excludes=list(_NOT_LOGGED), **kwargs)
            self.resolve = resolve
            self.finish_wait_s = finish_wait_s
            self._end_sent = {}           # trial -> the run future its END was sent to

        # Ray's setup() stays: online, it checks that a key exists and passes it on to nobody

        def log_trial_start(self, trial):
            if trial in self._trial_logging_futures:      # retried or restored: same run
                self._finish(trial, self.finish_wait_s)
            if trial in self._trial_logging_futures:
                logger.warning("W&B: the previous run of trial %s has not finished; its new "
                               "results go to it", trial.trial_id)
                return
            init = dict(id=trial.trial_id, name=str(trial), resume="allow",
                        allow_val_change=True, group=self.group, project=self.project,
                        config=run_config(trial.config, self.resolve))
            init.update(self.kwargs)
            self._start_logging_actor(
                trial, list(self._exclude_results) + list(self.excludes), **init)

        def _start_logging_actor(self, trial, exclude_results, **wandb_init_kwargs):
            """Ray's, without ``runtime_env={"env_vars": {"WANDB_API_KEY": ...}}``."""
            # No restarts (Ray's are endless): a restarted actor could not get its queue
            # back, and Ray prints an error line for such actors at every trial start.
            if not self._remote_logger_class:
                self._remote_logger_class = ray.remote(
                    num_cpus=0, **_force_on_current_node())(_logging_actor_cls())
            self._trial_queues[trial] = Queue(actor_options={
                "num_cpus": 0, **_force_on_current_node()})
            actor = self._remote_logger_class.remote(
                logdir=trial.local_path, queue=self._trial_queues[trial],
                exclude=exclude_results, to_config=self.AUTO_CONFIG_KEYS, **wandb_init_kwargs)
            self._trial_logging_actors[trial] = actor
            future = actor.run.remote()
            self._trial_logging_futures[trial] = future
            self._logging_future_to_trial[future] = trial

        def log_trial_result(self, iteration, trial, result):
            if trial not in self._trial_logging_actors:
                self.log_trial_start(trial)
            result = {k: v for k, v in result.items() if k != "config"}   # sampled, raw
            self._trial_queues[trial].put((_QueueItem.RESULT, _clean_log(
                result, video_kwargs=self.video_kwargs, image_kwargs=self.image_kwargs)))

        def _finish(self, trial, timeout: float) -> bool:
            """End the trial's run and wait up to ``timeout`` s for ``wandb.finish``; True
            when it finished (its actor is then gone)."""
            future = self._trial_logging_futures.get(trial)
            if future is None:
                return True
            if self._end_sent.get(trial) is not future:
                self._signal_logging_actor_stop(trial)
                self._end_sent[trial] = future
            done, _ = ray.wait([future], timeout=timeout)
            if not done:
                return False
            self._logging_future_to_trial.pop(future, None)
            self._end_sent.pop(trial, None)
            self._cleanup_logging_actor(trial)
            try:
                ray.get(future)
            except Exception as e:
                logger.warning("W&B: the run of trial %s failed: %s", trial.trial_id, e)
            return True

        def log_trial_end(self, trial, failed: bool = False):
            # offline, finishing is a local write: wait, so no run is left half written
            self._finish(trial, self.finish_wait_s if self.kwargs.get("mode") == "offline"
                         else 0)
            self._cleanup_logging_actors()

        def on_experiment_end(self, trials, **info):
            deadline = time.monotonic() + self._upload_timeout
            for trial in list(self._trial_logging_futures):
                self._finish(trial, max(0.0, deadline - time.monotonic()))
            late = [t.trial_id for t in self._trial_logging_futures]
            if late:
                logger.warning("W&B: the runs of trials %s did not finish within %s s; they "
                               "may be incomplete", ", ".join(late), self._upload_timeout)
            self._cleanup_logging_actors(timeout=0, kill_on_timeout=True)

        def __reduce__(self):       # Tune pickles its callbacks (tuner.pkl): settings only
            return (_rebuild, (self.project, self.group, self.resolve, self.finish_wait_s,
                               dict(self.kwargs, upload_timeout=self._upload_timeout)))

    return ParetuneWandbCallback


def _rebuild(project, group, resolve, finish_wait_s, kwargs):
    return _callback_cls()(project, group, resolve, finish_wait_s, **kwargs)


def wandb_callback(space, experiment_dir, resolve: Callable[[dict], dict] | None = None,
                   name: str | None = None):
    """The W&B callback for a search of ``space`` whose offline runs go to
    ``<experiment_dir>/wandb``; None when W&B is disabled. ``resolve`` turns a Tune config
    into the trial's training config (default: :class:`TrialConfig`); ``name`` is the
    experiment's (default: its ``paretune.json``, else the space's name)."""
    wb = space.tracking.get("wandb") or {}
    mode = wb.get("mode", "offline")
    if mode == "disabled":
        return None
    experiment_dir = Path(experiment_dir)
    (experiment_dir / "wandb").mkdir(parents=True, exist_ok=True)
    if mode == "offline":        # Ray's setup() asks for an API key unless W&B is offline
        os.environ["WANDB_MODE"] = "offline"
    group = wandb_group(wb, name or _experiment_name(experiment_dir, space))
    kwargs = {"entity": wb["entity"]} if wb.get("entity") else {}
    return _callback_cls()(
        project=wb.get("project", "paretune"), group=group,
        resolve=resolve or TrialConfig(space.resources), mode=mode, dir=str(experiment_dir),
        settings={"x_transaction_log_flush_interval": FLUSH_INTERVAL_S}, **kwargs)


# --- reading an offline run --------------------------------------------------------------

@dataclass
class OfflineRun:
    """What one offline ``run-<id>.wandb`` file holds."""
    path: Path
    run_id: str = ""
    project: str = ""
    group: str = ""
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    finished: bool = False            # the run's exit record is there
    records: int = 0


def _records(data: bytes):
    """W&B's transaction log: a 7-byte header, then LevelDB-log records in 32 KiB
    blocks (4-byte checksum, 2-byte length, 1-byte type: full, first, middle, last)."""
    block, pos, parts = 32768, 7, []
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (no ':W&B' header)")
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if n == 0 and kind == 0:      # block padding
            pos += left
            continue
        payload, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 1:
            yield payload
        elif kind == 2:
            parts = [payload]
        elif kind == 3:
            parts.append(payload)
        elif kind == 4:
            yield b"".join(parts + [payload])
            parts = []


def _key(item) -> str:
    return "/".join(item.nested_key) if len(item.nested_key) else item.key


def read_offline_run(path) -> OfflineRun:
    """Parse an offline run file with W&B's own record definitions (``wandb.proto``)."""
    from wandb.proto import wandb_internal_pb2 as pb
    out = OfflineRun(Path(path))
    for raw in _records(Path(path).read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(raw)
        out.records += 1
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.run_id, out.project, out.group = rec.run.run_id, rec.run.project, \
                rec.run.run_group
            out.config.update({_key(u): json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            out.config.update({_key(u): json.loads(u.value_json) for u in rec.config.update})
            for r in rec.config.remove:
                out.config.pop(_key(r), None)
        elif kind == "history":
            out.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out.summary.update({_key(u): json.loads(u.value_json) for u in rec.summary.update})
        elif kind == "exit":
            out.finished = True
    out.config.pop("_wandb", None)
    return out
