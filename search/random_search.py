"""``search.algorithm: random`` as a Ray Tune ``Searcher``: independent draws from the param
space with Tune's own variant generator and one seeded generator, so a seed draws what
Tune's ``BasicVariantGenerator(random_state=seed)`` would, one config per ``suggest``.

Being a ``Searcher``, it can be asked again when it draws a config already trained
(``search.searchers.norepeat``), and its state is JSON, never a pickle: the seed, the
number of draws and the generator's bit state (file ``random-searcher-state-<session>.json``
in the experiment), so ``search resume`` draws what an uninterrupted run would.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
from ray.tune.search.variant_generator import generate_variants

STATE_FORMAT = "paretune-random-searcher"
STATE_VERSION = 1


class RandomSearcher(Searcher):
    CKPT_FILE_TMPL = "random-searcher-state-{}.json"

    def __init__(self, seed: int | None = None, param_space: dict | None = None):
        super().__init__()
        self.seed = seed
        self._generator = np.random.default_rng(seed)
        self._rng = _BackwardsCompatibleNumpyRng(self._generator)
        self._space = param_space
        self.drawn = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self._space is None and config:
            self._space = config
        return True

    def suggest(self, trial_id: str):
        if self._space is None:
            return None
        _, spec = next(generate_variants({"config": self._space}, False, self._rng))
        self.drawn += 1
        return spec["config"]

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Independent draws learn nothing from results."""

    # -- resume: JSON state ---------------------------------------------------------------------
    def get_json_state(self) -> dict:
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "seed": self.seed,
                "drawn": self.drawn, "bit_generator": self._generator.bit_generator.state}

    def set_json_state(self, state) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or \
                state.get("version") != STATE_VERSION:
            raise ValueError(f"not a paretune random searcher state (format {STATE_FORMAT!r}, "
                             f"version {STATE_VERSION}); refused")
        self.seed, self.drawn = state["seed"], int(state["drawn"])
        self._generator = np.random.default_rng(self.seed)
        self._generator.bit_generator.state = state["bit_generator"]
        self._rng = _BackwardsCompatibleNumpyRng(self._generator)

    def save(self, checkpoint_path: str) -> None:
        path = Path(checkpoint_path)
        tmp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
        tmp.write_text(json.dumps(self.get_json_state()))
        os.replace(tmp, path)

    def restore(self, checkpoint_path: str) -> None:
        try:
            state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{checkpoint_path}: not a JSON searcher state; refused "
                             f"(paretune never unpickles a state file)") from None
        self.set_json_state(state)
