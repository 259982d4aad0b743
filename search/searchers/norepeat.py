"""No budget spent twice: no searcher hands out a config that is already trained or
training. Two trials are the same when their :func:`~search.space_tree.config_key` is
(the materialized config, floats to 6 significant digits).

- :class:`NoRepeat` wraps a Tune ``Searcher`` (random, optuna, nsga2): a suggestion whose
  key was handed out before is not returned; the inner searcher is told the earlier
  trial's result for it (at once, or when that trial finishes) and asked again, at most
  :data:`RETRIES` times in a row. When the space's distinct configs are all handed out
  (counted exactly when the space is finite and small, :func:`distinct_configs`) or the
  retries run out, the search ends, saying so. Its state is JSON (``norepeat-state-
  <session>.json`` beside the inner searcher's own state).
- :class:`NoRepeatVariants` is Tune's ``BasicVariantGenerator`` (grid, pe_ltr_grid) that
  skips a variant already handed out (a grid repeated by ``num_samples`` with nothing else
  sampled), saying how many it skipped.
"""
from __future__ import annotations

import copy
import glob
import itertools
import json
import math
import os
import uuid
from pathlib import Path

from ray.tune.search import Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.sample import Categorical, Domain, Integer

from ..space_tree import config_key

RETRIES = 100           # repeated suggestions in a row before a search is called exhausted
MAX_ENUMERATED = 4096   # a finite space up to this many raw combinations is counted exactly
STATE_FORMAT = "paretune-norepeat"
STATE_VERSION = 1


def _choices(node, path=()):
    """(path, values) of every sampled leaf; None when one is continuous or unknown."""
    if isinstance(node, Domain):
        if isinstance(node, Categorical):
            return [(path, list(node.categories))]
        if isinstance(node, Integer) and node.upper - node.lower <= MAX_ENUMERATED:
            return [(path, list(range(int(node.lower), int(node.upper))))]
        return None
    if isinstance(node, dict):
        if set(node) == {"grid_search"}:
            return [(path, list(node["grid_search"]))]
        out = []
        for k, v in node.items():
            sub = _choices(v, path + (k,))
            if sub is None:
                return None
            out += sub
        return out
    return []


def distinct_configs(param_space: dict) -> int | None:
    """How many distinct configs (by key) a finite param space can train, or None when
    it is continuous or has over MAX_ENUMERATED raw combinations."""
    leaves = _choices(param_space)
    if leaves is None or math.prod(len(v) for _, v in leaves) > MAX_ENUMERATED:
        return None
    keys = set()
    for combo in itertools.product(*[v for _, v in leaves]):
        cfg = copy.deepcopy(param_space)
        for (path, _), value in zip(leaves, combo):
            node = cfg
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        keys.add(config_key(cfg))
    return len(keys)


def _plain_result(result, metrics) -> dict | None:
    """The part of a result a searcher reads: its metrics, plain or per member (m<i>/)."""
    if not result:
        return None
    out = {}
    for k, v in result.items():
        if k in metrics or (k[:1] == "m" and k.split("/", 1)[-1] in metrics):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            out[k] = float(v) if ok else None
    return out


def _result(saved) -> dict | None:
    return None if saved is None else {k: (math.nan if v is None else v)
                                       for k, v in saved.items()}


class NoRepeat(Searcher):
    """``inner`` (a Tune Searcher) without repeated configs; see the module's docstring."""

    CKPT_FILE_TMPL = "norepeat-state-{}.json"

    def __init__(self, inner: Searcher, metrics, name: str, count_domain: bool = True,
                 retries: int = RETRIES):
        self.inner, self.name, self.retries = inner, name, retries
        self.metrics = list(metrics)
        self.count_domain = count_domain
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.distinct: int | None = None
        self._trial_key: dict[str, str] = {}     # trial handed out -> its key
        self._inner_id: dict[str, str] = {}      # trial -> the inner id it was asked under
        self._pending: dict[str, str] = {}       # key -> the trial training it
        self._done: dict[str, dict] = {}         # key -> {"result": ..., "error": ...}
        self._waiting: dict[str, list] = {}      # trial -> inner ids of its repeats
        self.repeats = 0
        self.ended: str | None = None

    # -- Tune's protocol ------------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self.count_domain and config and self.distinct is None:
            self.distinct = distinct_configs(config)
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        if self.ended:
            return Searcher.FINISHED
        for attempt in range(self.retries):
            iid = trial_id if attempt == 0 else f"{trial_id}~{attempt}"
            cfg = self.inner.suggest(iid)
            if not isinstance(cfg, dict):
                return cfg                       # None (wait) or FINISHED
            key = config_key(cfg)
            if key not in self._done and key not in self._pending:
                self._pending[key], self._trial_key[trial_id] = trial_id, key
                if iid != trial_id:
                    self._inner_id[trial_id] = iid
                return cfg
            self.repeats += 1
            if key in self._done:
                d = self._done[key]
                self.inner.on_trial_complete(iid, result=_result(d["result"]), error=d["error"])
            else:
                self._waiting.setdefault(self._pending[key], []).append(iid)
            n = len(self._done) + len(self._pending)
            if self.distinct is not None and n >= self.distinct:
                return self._end(f"all {self.distinct} distinct configurations of the space "
                                 f"are trained")
        return self._end(f"its last {self.retries} suggestions were all configurations "
                         f"already trained (the space looks exhausted)")

    def _end(self, why: str):
        n = len(self._done) + len(self._pending)
        self.ended = why
        print(f"[search] {self.name}: {why}; the search ends after {n} trial(s), none "
              f"trained twice ({self.repeats} repeated suggestion(s) not run)", flush=True)
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(self._inner_id.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.inner.on_trial_complete(self._inner_id.pop(trial_id, trial_id), result=result,
                                     error=error)
        key = self._trial_key.pop(trial_id, None)
        if key is not None:
            self._pending.pop(key, None)
            self._done[key] = {"result": _plain_result(result, self.metrics),
                               "error": bool(error)}
        for iid in self._waiting.pop(trial_id, []):      # its repeats learn the same
            self.inner.on_trial_complete(iid, result=result, error=error)

    # -- resume: JSON state beside the inner searcher's own --------------------------------------
    def get_json_state(self) -> dict:
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "name": self.name,
                "distinct": self.distinct, "trial_key": self._trial_key,
                "inner_id": self._inner_id, "pending": self._pending, "done": self._done,
                "waiting": self._waiting, "repeats": self.repeats, "ended": self.ended}

    def set_json_state(self, state) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or \
                state.get("version") != STATE_VERSION:
            raise ValueError(f"not a paretune no-repeat state (format {STATE_FORMAT!r}, "
                             f"version {STATE_VERSION}); refused")
        self.distinct, self.repeats, self.ended = (state["distinct"], int(state["repeats"]),
                                                   state["ended"])
        self._trial_key, self._inner_id = dict(state["trial_key"]), dict(state["inner_id"])
        self._pending, self._done = dict(state["pending"]), dict(state["done"])
        self._waiting = {k: list(v) for k, v in state["waiting"].items()}

    def _write(self, path: Path) -> None:
        tmp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
        tmp.write_text(json.dumps(self.get_json_state(), allow_nan=False))
        os.replace(tmp, path)

    @staticmethod
    def _read(path) -> dict:
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{path}: not a JSON no-repeat state; refused") from None

    def save(self, checkpoint_path: str) -> None:
        """This state at ``checkpoint_path``, the inner searcher's at ``<path>.inner``."""
        self._write(Path(checkpoint_path))
        self.inner.save(f"{checkpoint_path}.inner")

    def restore(self, checkpoint_path: str) -> None:
        self.set_json_state(self._read(checkpoint_path))
        self.inner.restore(f"{checkpoint_path}.inner")

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        self._write(Path(checkpoint_dir) / self.CKPT_FILE_TMPL.format(session_str))
        self.inner.save_to_dir(checkpoint_dir, session_str)

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """The newest state in the folder (none: an experiment from before this wrapper,
        which starts with no keys), then the inner searcher's."""
        found = glob.glob(os.path.join(glob.escape(str(checkpoint_dir)),
                                       self.CKPT_FILE_TMPL.format("*")))
        if found:
            self.set_json_state(self._read(max(found)))
        self.inner.restore_from_dir(checkpoint_dir)


class NoRepeatVariants(BasicVariantGenerator):
    """Tune's variant generator that skips a variant whose key it handed out before."""

    def __init__(self, *args, name: str = "grid", **kwargs):
        super().__init__(*args, **kwargs)
        self._name, self._keys, self.repeats, self._said = name, set(), 0, False

    def next_trial(self):
        while True:
            trial = super().next_trial()
            if trial is None:
                if self.is_finished() and self.repeats and not self._said:
                    self._said = True
                    print(f"[search] {self._name}: {self.repeats} variant(s) skipped: their "
                          f"configuration was already handed out (none is trained twice)",
                          flush=True)
                return None
            key = config_key(trial.config)
            if key not in self._keys:
                self._keys.add(key)
                return trial
            self._live_trials.discard(trial.trial_id)
            self.repeats += 1
