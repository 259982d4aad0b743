"""Build and run (or resume) a Ray Tune experiment from a validated space (docs/DESIGN.md).

Trials are run by the one trial runner (``search.trial``); the cluster is chosen and
started by ``search.cluster`` (a private local Ray unless ``--address``); the experiment
lives on any storage ``trainables.storage`` serves (a folder, ``s3://``, ``gs://``,
``file://``), written through that filesystem.

The experiment folder (``<storage>/<name>``) is Tune's, plus ``space.yaml`` (the space
as run) and ``paretune.json`` (objectives, metrics, how to resume); each trial folder gets
``resolved_config.json``, the exact training config. W&B offline runs are written on the
driver (``<experiment>/wandb`` for a local folder; for a URI, a local mirror uploaded to
``<uri>/wandb`` when the run ends).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .schedulers import max_epochs
from .space import Space, SpaceError, load_space
from .trial import make_trainable

EXPERIMENT_FILE = "paretune.json"
SPACE_COPY = "space.yaml"
SCHEDULER_STATE = "scheduler-state.json"     # the scheduler's JSON state (moasha's rungs)
DEFAULT_STORAGE = "experiments"


@dataclass
class Outcome:
    """What a run or resume ended with: where, and how many trials finished / failed."""
    uri: str
    folder: Path          # a local folder holding the results (the experiment, or a mirror)
    finished: int
    failed: int


def _storage(storage, endpoint=None):
    from trainables.storage import open_storage
    return open_storage(storage or os.environ.get("PARETUNE_STORAGE") or DEFAULT_STORAGE,
                        endpoint)


def _name(name: str | None, space: Space) -> str:
    if name is None:
        return space.name
    from .space import check_name
    return check_name(name, "--name")


def _driver_dir(exp) -> Path:
    """A local folder for what the driver writes (W&B offline runs): the experiment itself
    when it is local, else its local mirror."""
    if exp.local:
        return exp.local_path
    from analysis.location import mirror_dir
    d = mirror_dir(exp)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _searcher(space: Space):
    """The Tune search algorithm its searcher builds (``search.searchers``)."""
    return space.searcher.build(space)


def _scheduler(space: Space, epochs: int, exp, restore: bool):
    """The Tune scheduler its ``scheduler.kind`` builds (``search.schedulers``; None: FIFO),
    saving its JSON state as ``scheduler-state.json`` in the experiment and, on resume,
    continuing from it."""
    if not space.scheduler:
        return None
    from .schedulers import SCHEDULERS
    state = None
    if restore and exp.is_file(SCHEDULER_STATE):
        state = json.loads(exp.read_text(SCHEDULER_STATE))
    return SCHEDULERS[space.scheduler["kind"]].build(
        space, epochs, save=lambda text: exp.write_text(SCHEDULER_STATE, text), state=state)


def _callbacks(space: Space, experiment_dir: Path, total: int | None, name: str,
               scheduler=None):
    from .progress import ProgressCallback, file_loggers
    from .tracking import wandb_callback
    first = []                # the scheduler's own run first: they annotate results
    if scheduler is not None:
        from .schedulers import SCHEDULERS
        first = SCHEDULERS[space.scheduler["kind"]].callbacks(scheduler)
    cbs = [*first, ProgressCallback(space.objectives, total), *file_loggers()]
    wb = wandb_callback(space, experiment_dir, name=name)   # None when W&B is disabled
    return cbs + ([wb] if wb is not None else [])


def _trial_dirname(trial) -> str:
    """``<trial id>-<model>-<loss>-w<weights>``: unique (Tune's trial id) and readable."""
    import re
    from .progress import config_summary
    tag = re.sub(r"[^A-Za-z0-9.,=+-]+", "_", config_summary(trial.config)).strip("_")
    return f"{trial.trial_id}-{tag}"[:120]


def run(space_path, storage=None, **kwargs) -> Path:
    """:func:`run_search`, returning the local folder that holds the results."""
    return run_search(space_path, storage, **kwargs).folder


def resume(experiment, **kwargs) -> Path:
    """:func:`resume_search`, returning the local folder that holds the results."""
    return resume_search(experiment, **kwargs).folder


def run_search(space_path, storage=None, name=None, smoke_test=False, address=None,
               num_cpus=None, data=None, storage_endpoint=None) -> Outcome:
    """Validate everything, start or join Ray, check the cluster can run the space, run
    the experiment, print the summary. ``data``: a dataset replacing the space's data
    (``--data``; the space's objectives list is kept)."""
    space = load_space(space_path, data=data)
    space_text = Path(space.path).read_text()
    if smoke_test:
        space = _smoke(space)
    name = _name(name, space)
    _check_job_storage(storage)
    exp = _storage(storage, storage_endpoint).join(name)
    _leave_ray_package_dir()
    if exp.is_file(EXPERIMENT_FILE) and not _any_trial(exp):
        print(f"[search] {exp.uri} holds no trial (a run that stopped before its first "
              f"trial): starting it again", flush=True)
        exp.delete()
    if exp.is_file(EXPERIMENT_FILE):
        raise FileExistsError(
            f"experiment {exp.uri} exists; resume it with `python -m search resume "
            f"{exp.uri}`, or pick another --name")
    from .cluster import check_cluster, describe, init_ray, local_machine
    if not address:           # the local Ray will have this machine: check before starting it
        from .resources import check_fits
        nodes = local_machine()
        if num_cpus:
            nodes[0]["CPU"] = float(num_cpus)
        try:
            check_fits(space.resources, nodes, "this machine")
        except SpaceError as e:
            raise SpaceError(f"{space.path}: {e}") from None
    print(f"[search] {name}: {space.search['algorithm']} search on {describe(address)}; "
          f"results in {exp.uri}", flush=True)
    where = init_ray(address, num_cpus)
    try:
        check_cluster(space.resources, exp, "this cluster" if address else "the local Ray")
    except SpaceError as e:
        raise SpaceError(f"{space.path}: {e}") from None
    _prepare_data(space)
    created = False
    try:
        if smoke_test or data is not None:   # the space as run: shrunken, or its data replaced
            note = f"# {space.path.name} as run (--data {data})\n" if data is not None else ""
            exp.write_text(SPACE_COPY, note + yaml.safe_dump(space.raw, sort_keys=False))
        else:
            exp.write_text(SPACE_COPY, space_text)
        exp.write_text(EXPERIMENT_FILE, json.dumps({
            "name": name, "objectives": space.objectives, "metrics": space.search["metrics"],
            "space": Path(space.path).name, "smoke_test": smoke_test, "created": time.time(),
            "data": space.fixed_config()["data"], "storage": exp.uri,
            "storage_endpoint": exp.endpoint, "cluster": where,
            "resources": space.resources, "tracking": space.tracking}, indent=1))
        created = True
        result = _fit(space, exp, name, restore=False)
    except BaseException:
        if created and not _any_trial(exp):
            exp.delete()               # failed before any trial: leave nothing behind
        raise
    return _finish(exp, space, result)


def _in_ray_package_dir() -> bool:
    try:
        return "runtime_resources" in os.getcwd()
    except FileNotFoundError:
        return True


def _check_job_storage(storage) -> None:
    """Under Ray Jobs the working folder is Ray's package cache: a relative --storage (or
    none) would put the results there, where Ray deletes them."""
    from trainables.storage import is_uri
    chosen = storage or os.environ.get("PARETUNE_STORAGE")
    if _in_ray_package_dir() and (not chosen or (not is_uri(str(chosen))
                                                 and not os.path.isabs(str(chosen)))):
        raise SpaceError(f"--storage {chosen or '(none)'}: this run is a Ray job, whose working "
                         f"folder is Ray's package cache (deleted when the job ends); give "
                         f"--storage s3://BUCKET/experiments (or another URI every node can "
                         f"reach, or an absolute path on the head)")


def _leave_ray_package_dir() -> None:
    """A Ray Jobs entrypoint starts in the job's unpacked working_dir, which Ray may delete
    or unpack again while the job runs (its per-session package cache; two nodes sharing
    a temp folder on one machine each unpack it there): a driver whose working directory
    vanished fails in every relative-path call. Run from a stable folder instead (the
    package stays importable: its absolute path is on sys.path)."""
    if _in_ray_package_dir():
        os.chdir(tempfile.gettempdir())


def _any_trial(exp) -> bool:
    from pyarrow import fs
    sel = fs.FileSelector(exp.path, recursive=False, allow_not_found=True)
    return any(i.type == fs.FileType.Directory and not i.base_name.startswith(("wandb", "."))
               for i in exp.fs.get_file_info(sel))


def _fit(space: Space, exp, name: str, restore: bool):
    from ray import tune
    root_path, fs = exp.path.rsplit("/", 1)[0], None if exp.local else exp.fs
    trainable = make_trainable(space.resources, exp.uri, exp.endpoint)
    epochs = max_epochs(space._tree["optim"])     # the scheduler's max_t
    num = space.search["num_samples"]
    trials = space.planned_trials()
    scheduler = _scheduler(space, epochs, exp, restore)
    callbacks = _callbacks(space, _driver_dir(exp), trials, name, scheduler)
    if restore:
        if not tune.Tuner.can_restore(exp.path, storage_filesystem=fs):
            raise RuntimeError(f"{exp.uri}: Tune has no state to resume from yet (the driver "
                               f"died before the first trial was recorded); start it again "
                               f"with the same `search run ... --name {name}`")
        print(f"[search] resuming {exp.uri}", flush=True)
        tuner = tune.Tuner.restore(exp.path, trainable=trainable, storage_filesystem=fs,
                                   resume_unfinished=True, resume_errored=True)
        # restore keeps Tune's own callbacks; paretune's (progress, loggers, W&B) come back;
        # the scheduler pickled at the start holds no state: this one has the saved JSON
        tuner._local_tuner._run_config.callbacks = callbacks
        tuner._local_tuner._tune_config.scheduler = scheduler
        return tuner.fit()
    tune_samples = -1 if space.searcher.ends_itself else num
    tuner = tune.Tuner(
        trainable, param_space=space.param_space(),
        tune_config=tune.TuneConfig(search_alg=_searcher(space),
                                    scheduler=scheduler,
                                    num_samples=tune_samples,
                                    max_concurrent_trials=space.search["max_concurrent"],
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=name, storage_path=root_path, storage_filesystem=fs, verbose=0,
            failure_config=tune.FailureConfig(max_failures=space.search["max_failures"]),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks))
    print(f"[search] {trials} trial(s), objectives {', '.join(space.objectives)}", flush=True)
    return tuner.fit()


def resume_search(experiment, address=None, num_cpus=None, storage_endpoint=None) -> Outcome:
    """Continue a killed experiment: finished trials kept, unfinished ones continued from
    their last checkpoint, errored ones retried."""
    from trainables.storage import is_uri
    exp = _storage(str(experiment), storage_endpoint)
    if not exp.is_file(EXPERIMENT_FILE):
        raise FileNotFoundError(f"{exp.uri} is not a paretune experiment (no "
                                f"{EXPERIMENT_FILE}); give the folder `search run` printed")
    meta = json.loads(exp.read_text(EXPERIMENT_FILE))
    if not is_uri(str(experiment)) or exp.local:
        space = load_space(exp.local_path / SPACE_COPY)
    else:
        if storage_endpoint is None and meta.get("storage_endpoint"):
            exp = _storage(str(experiment), meta["storage_endpoint"])
        with tempfile.TemporaryDirectory(prefix="paretune-") as d:
            f = Path(d) / SPACE_COPY
            f.write_text(exp.read_text(SPACE_COPY))
            space = load_space(f)
    from .cluster import check_cluster, describe, init_ray
    print(f"[search] {exp.uri}: resuming on {describe(address)}", flush=True)
    init_ray(address, num_cpus)
    check_cluster(space.resources, exp, "this cluster" if address else "the local Ray")
    _prepare_data(space)
    return _finish(exp, space, _fit(space, exp, meta.get("name") or exp.uri, restore=True))


def _prepare_data(space: Space) -> None:
    """Generate synthetic data once, before trials race to do it."""
    from trainables.data import resolve_data
    resolve_data(space.fixed_config()["data"])


def _smoke(space: Space) -> Space:
    """A seconds-long version: 1 epoch, small data, no scheduler, W&B offline, and the
    search its searcher shrinks (``search.searchers``: its ``shrink``; at most its
    ``smoke_trials``)."""
    raw = yaml.safe_load(yaml.safe_dump(space.raw))
    if raw["data"].get("source") == "synthetic":
        from trainables.data.synthetic import min_rows
        from trainables.data.resolve import synthetic_params
        params = synthetic_params(raw["data"])
        raw["data"]["rows"] = min(int(raw["data"].get("rows", 20000)),
                                  max(20000, min_rows(params)))
    raw.setdefault("optim", {})["epochs"] = 1
    if not isinstance(raw.get("search"), dict):
        raw["search"] = {}
    space.searcher.shrink(raw)
    raw.pop("scheduler", None)
    raw.setdefault("tracking", {})["wandb"] = {**(raw["tracking"].get("wandb") or {}),
                                               "mode": "offline"}
    with tempfile.TemporaryDirectory(prefix="paretune-smoke-") as d:    # private, removed
        tmp = Path(d) / Path(space.path).name
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
        smoke = load_space(tmp)
    smoke.path = space.path
    return smoke


def _finish(exp, space: Space, grid_result) -> Outcome:
    """Print the summary (from the storage itself: a URI is mirrored locally first),
    upload the driver's W&B runs to a remote experiment; count finished / failed."""
    from analysis.location import experiment_folder
    from analysis.results import load_results
    from analysis.summary import print_summary
    if not exp.local:
        wandb_dir = _driver_dir(exp) / "wandb"
        if wandb_dir.is_dir():
            n = exp.upload(wandb_dir, "wandb")
            print(f"[search] {n} W&B file(s) uploaded to {exp.uri}/wandb", flush=True)
    folder = exp.local_path if exp.local else experiment_folder(exp.uri, exp.endpoint)[0]
    df = load_results(folder)
    print_summary(df, space.objectives, exp.uri, file=sys.stdout)
    space.searcher.report(df, space)
    status = df["status"] if len(df) else []
    finished = int((status == "TERMINATED").sum()) if len(df) else 0
    return Outcome(exp.uri, folder, finished, len(df) - finished)
