"""Space files: parse and validate a YAML search space before any Ray work (docs/DESIGN.md, "Space files").

    space = load_space("spaces/quickstart.yaml")   # SpaceError (a ValueError) on any problem
    space.param_space()     # ray.tune domains in sections data, model, loss, weighting, optim, run
    materialize(trial_cfg)  # a sampled trial config -> what trainables.config.resolve_config takes
    space.fixed_config()    # one representative config, already materialized

Distributions have one short form each, converted to Tune domains by the searcher
(``domain``; :func:`to_tune` for one distribution):
``{choice: [..]}``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``
(inclusive) and ``{simplex: [objs]}`` (only as a weighting parameter that declares it,
``weighting.weights``). A weighting's per-objective parameters (objective -> number:
static ``weights``, PE-LTR ``bounds``) are the ones its class declares
(``Weighting.per_objective``).

The ``search`` section is the chosen searcher's (``search.searchers``: its keys, the
distributions and spaces it accepts, its trial count); this module asks the registry.

The component sections (model, loss, weighting) have a selector (``model.family``,
``loss.kind``, ``weighting.kind``) that is a name or ``{choice: [names]}``; parameters that
only some options have go in a sub-mapping named after the option (``model.mlp.hidden``),
parameters every option has may stay at the section's top level. :func:`materialize`
keeps the sampled option's sub-mapping and drops the others.

A simplex is sampled as uniforms mapped onto the simplex (``search.space_tree``).

Every error names the file, the key path, the bad value (cut to 200 characters) and what
is allowed. Checked before Ray: the file within trainables.yaml_safe's limits (1 MiB,
UTF-8, aliases), every optim/run value (and every value a distribution can draw) against
trainables.config's declared bounds, the planned trials (search.limits), each model's size,
and the data in full (search.space_data: the whole dataset, or the synthetic generator's
parameters and expected classes). Ray is imported only inside :meth:`Space.param_space`
and :func:`to_tune` (and a searcher's ``build``).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from trainables.yaml_safe import YAMLInputError, cap, load_yaml, short

from .distributions import SpaceError, _Dist, _fail, _Invalid, _names, to_tune
from .limits import check_name, check_size, planned_trials
from .schedulers import max_epochs, parse_scheduler
from .searchers import SEARCHERS, parse_search
from .space_check import check_trainables
from .space_data import check_data, override_data, parse_data
from .space_sections import (RESOURCES_DEFAULTS, SECTION_PARSERS, WANDB_DEFAULTS,  # noqa: F401
                             _check_population_space, parse_metrics, parse_resources,
                             parse_tracking)
from .space_tree import TRIAL_SECTIONS, _first, _render, materialize

__all__ = ["Space", "SpaceError", "load_space", "materialize", "to_tune", "check_name",
           "override_data"]

# the trial sections (space_tree.TRIAL_SECTIONS), then the sections only the search reads
SPACE_ONLY = ("search", "scheduler", "resources", "tracking")
TOP_LEVEL = ("name", *TRIAL_SECTIONS, *SPACE_ONLY)
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
if set(SECTION_PARSERS) != set(TRIAL_SECTIONS[1:]):      # data is parsed first, on its own
    raise ImportError(f"search.space_sections.SECTION_PARSERS {sorted(SECTION_PARSERS)} must "
                      f"parse every trial section after data {list(TRIAL_SECTIONS[1:])}")


# --- the space -------------------------------------------------------------------------------

@dataclass
class Space:
    """A validated space file. ``raw`` is the parsed YAML as written."""

    path: Path
    name: str
    raw: dict
    objectives: list[str]
    search: dict
    scheduler: dict | None
    resources: dict
    tracking: dict
    _tree: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def searcher(self):
        """The registered searcher (``search.searchers.SEARCHERS``) of search.algorithm."""
        return SEARCHERS[self.search["algorithm"]]

    def param_space(self) -> dict:
        """The Tune param space: sections data, model, loss, weighting, optim, run, as the
        searcher searches them (grid axes, PE-LTR bound vectors...)."""
        searcher = self.searcher

        def leaf(d: _Dist):
            dom = searcher.domain(d)
            return {**dom, **{o: 0.0 for o in d.zeros}} if d.name == "simplex" else dom

        out = {s: _render(self._tree[s], leaf) for s in TRIAL_SECTIONS
               if self._tree[s] is not None}          # an absent optional section
        searcher.param_space(self, out)
        return out

    def planned_trials(self) -> int:
        """The trials the search plans (``search.limits``; the progress counter)."""
        return planned_trials(self.search, self._tree, len(self.objectives))

    def bound_vectors(self) -> list[dict]:
        """pe_ltr_grid: its PE-LTR lower-bound vectors, one trial each."""
        return self.searcher.bound_vectors(self)

    def fixed_config(self) -> dict:
        """First option of every choice, lower bound of uniform/int, geometric mean of
        loguniform, equal weights on a simplex; materialized."""
        return materialize({s: _first(self._tree[s]) for s in TRIAL_SECTIONS
                            if self._tree[s] is not None})


def _parse_space(raw, path: Path, data_label: str = "data.path") -> Space:
    if raw is None:
        raise _Invalid("the file is empty; a space needs at least 'name' and 'data'")
    if not isinstance(raw, dict):
        raise _Invalid(f"the top level must be a mapping of sections ({_names(TOP_LEVEL)}), "
                       f"got {type(raw).__name__}: {short(raw, 80)}")
    for k in raw:
        if k not in TOP_LEVEL:
            _fail(str(k), raw[k], f"unknown top-level key; allowed: {_names(TOP_LEVEL)}")
    if "name" not in raw:
        raise _Invalid("name: missing; a space needs a name (letters, digits, _ . -)")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail("name", name, "must be a string of letters, digits, _ . - (1 to 100, not "
                            "starting with . or -); quote it if YAML reads it as a number")
    search = parse_search(raw.get("search"))
    searcher = SEARCHERS[search["algorithm"]]
    data, objectives = parse_data(raw.get("data"), data_label)
    tree = {"data": data}
    for s in TRIAL_SECTIONS[1:]:
        tree[s] = SECTION_PARSERS[s](raw.get(s), searcher, objectives)
    searcher.check_space(search, tree, raw)
    if search["population"]:
        _check_population_space(tree)
    check_size(search, tree, len(objectives))
    parse_metrics(search, objectives)
    scheduler = parse_scheduler(raw.get("scheduler"), objectives, bool(search["population"]),
                                max_epochs(tree["optim"]))
    space = Space(path=path, name=name, raw=copy.deepcopy(raw), objectives=objectives,
                  search=search, scheduler=scheduler, resources=parse_resources(
                      raw.get("resources")), tracking=parse_tracking(raw.get("tracking")),
                  _tree=tree)
    check_trainables(space)
    check_data(data, objectives, tree["run"], data_label)
    return space


def load_space(path, data: str | Path | None = None) -> Space:
    """Read and validate a space file; SpaceError names the file, key, value and what is
    allowed. Generates no data and starts no Ray. ``data``: a dataset folder replacing
    the space's data (:func:`override_data`; ``search run --data``). The file is read
    within trainables.yaml_safe's limits (1 MiB, UTF-8, aliases expanding to at most
    100,000 values); a dataset is validated in full (every split, batch by batch)."""
    path = Path(path)
    try:
        raw = load_yaml(path, "space file")
    except YAMLInputError as e:
        raise SpaceError(str(e)) from None
    try:
        if data is not None:
            raw = override_data(raw, data, path)
        return _parse_space(raw, path, "data.path" if data is None else "--data")
    except _Invalid as e:
        raise SpaceError(cap(f"{path}: {e}")) from None
    except SpaceError as e:
        raise SpaceError(cap(str(e))) from None
