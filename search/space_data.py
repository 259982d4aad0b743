"""A space file's data section: parsed, then checked in full before Ray starts.

``{path: DIR or URI, objectives: [...], stream: auto|true|false, ...}`` (the reading
options: ``trainables.data.location``, checked here too): meta.yaml and the objectives are
read first
(:func:`parse_data`); at the end of validation :func:`check_data` runs the dataset
contract's own validator over every split (``trainables.data.validate_dataset``: column
by column types, values, both classes, batch by batch, bounded memory) and checks that
``run.eval_split`` is one of the dataset's splits. ``{source: synthetic, ...}``: the
generator's own parameter checks, and its expected-class check
(``synthetic.check_classes``); nothing is generated here.
"""
from __future__ import annotations

import copy
from pathlib import Path

from trainables.yaml_safe import short

from .distributions import (SpaceError, _check_value, _fail, _Invalid, _is_dist_form,
                            _kind_of, _mapping, _names)

SYNTHETIC_SPLITS = ("train", "valid", "test")


def _bad(label: str, value, problem: str):
    """An error about the data: ``data.path = 'x': ...``, or ``--data x: ...`` when the
    folder came from the command line."""
    if label == "--data":
        text = str(value)
        raise _Invalid(f"--data {text if len(text) <= 300 else text[:300] + '...'}: {problem}")
    _fail(label, value, problem)


def parse_data(d, label: str = "data.path") -> tuple[dict, list[str]]:
    """The data section with its parameters checked, and the objectives it provides."""
    from trainables.data import data_params
    from trainables.data import synthetic
    if d is None:
        raise _Invalid("data: missing; a space needs data: {source: synthetic, ...} or "
                       "{path: <dataset folder>, ...}")
    d = copy.deepcopy(_mapping("data", d, optional=False))
    if "path" not in d and "source" not in d:
        _fail("data", d, "needs 'path' (a dataset folder) or 'source' (synthetic)")
    allowed = data_params(d)
    _mapping("data", d, allowed)
    for k, v in d.items():
        if _is_dist_form(v):
            _fail(f"data.{k}", v, "data values are fixed; distributions are not allowed here")
    from trainables.data.location import check_stream_options, is_uri
    try:
        check_stream_options(d)
    except ValueError as e:
        raise _Invalid(str(e)) from None
    if "path" in d:
        from trainables.data.location import DataLocation
        if not isinstance(d["path"], str) or not d["path"] or "\0" in d["path"]:
            _fail("data.path", d["path"], "must be a dataset folder or URI (a string)")
        folder = d["path"] if is_uri(d["path"]) else Path(d["path"]).expanduser().resolve()
        try:
            meta = DataLocation(folder, d.get("endpoint")).meta()
        except ValueError as e:
            _bad(label, d["path"], str(e))
        objs = d.get("objectives")
        if objs is None:
            objs = list(meta["objectives"])
        elif not isinstance(objs, list) or not objs or not all(isinstance(o, str) for o in objs) \
                or len(set(objs)) != len(objs):
            _fail("data.objectives", objs, "must be a non-empty list of distinct objective "
                                           "names")
        else:
            bad = [o for o in objs if o not in meta["objectives"]]
            if bad:
                _fail("data.objectives", objs, f"{_names(bad)} not in the dataset; its "
                      f"meta.yaml lists {_names(meta['objectives'])}")
        d["path"] = str(folder)        # trials run in other working directories
        return d, list(objs)
    if d["source"] != "synthetic":
        _fail("data.source", d["source"], "allowed: synthetic (or give data.path)")
    from trainables.data.resolve import synthetic_params
    params = synthetic_params(d)
    for k, v in params.items():
        kind = _kind_of(allowed[k])
        if kind != "any":
            _check_value(f"data.{k}", v, kind)
    try:
        synthetic.fingerprint(params)      # the generator's own checks; generates nothing
    except ValueError as e:
        _fail("data", d, str(e))
    return d, list(params.get("objectives", synthetic.defaults()["objectives"]))


def check_data(data: dict, objectives: list[str], run: dict,
               label: str = "data.path") -> None:
    """The whole dataset (every split, every column the objectives need) or the synthetic
    parameters' expected classes, and ``run.eval_split`` against the splits."""
    if "path" in data:
        from trainables.data import dataset_splits, validate_dataset
        try:
            validate_dataset(data["path"], objectives, endpoint=data.get("endpoint"))
            splits = dataset_splits(data["path"], endpoint=data.get("endpoint"))
        except ValueError as e:
            _bad(label, data["path"], str(e))
        where = f"the dataset's splits (its meta.yaml): {_names(splits)}"
    else:
        from trainables.data import synthetic
        from trainables.data.resolve import synthetic_params
        try:
            synthetic.check_classes(synthetic_params(data))
        except ValueError as e:
            _fail("data", data, str(e))
        splits, where = SYNTHETIC_SPLITS, f"synthetic data has {_names(SYNTHETIC_SPLITS)}"
    if "train" not in splits:
        _bad(label, data.get("path"), f"has no 'train' split; {where}")
    split = run.get("eval_split", "valid")
    if isinstance(split, str) and split not in splits:
        _fail("run.eval_split", split, f"not a split of the data; allowed: {where}")


def check_duration(where: str, data: dict) -> None:
    """``loss.use_iput`` needs the dataset's ``duration`` column in every split."""
    if "path" not in data:
        raise ValueError("loss.use_iput = true needs a dataset with a 'duration' column "
                         "(data.path, e.g. an MP-stage output); synthetic data has none")
    from trainables.data.schema import split_columns
    lacking = [s for s, cols in split_columns(data["path"]).items() if "duration" not in cols]
    if lacking:
        raise ValueError(f"loss.use_iput = true needs a 'duration' column (IPUT's watch-time "
                         f"denominator); the split(s) {', '.join(lacking)} of {data['path']} "
                         f"have none")


def override_data(raw, data: str | Path, space_path: Path | None = None):
    """``search run --data PATH``: the space's ``data`` replaced by ``{path: PATH}`` (made
    absolute), keeping the space's ``objectives`` list if it has one. The folder, its
    meta.yaml and those objectives are checked here (``read_meta``), so a bad PATH is one
    SpaceError naming it; the whole dataset is checked with the rest of the space."""
    from trainables.data.schema import read_meta
    if not isinstance(data, (str, Path)) or not str(data) or "\0" in str(data):
        raise SpaceError(f"--data {short(data)}: must be a dataset folder")
    folder = Path(data).expanduser().resolve()
    try:
        meta = read_meta(folder)
    except ValueError as e:
        raise SpaceError(f"--data {data}: {e}") from None
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else raw
    old = raw.get("data") if isinstance(raw, dict) else None
    new = {"path": str(folder)}
    objs = old.get("objectives") if isinstance(old, dict) else None
    if objs is not None:
        if not isinstance(objs, list) or not all(isinstance(o, str) for o in objs):
            raise SpaceError(f"{space_path}: data.objectives = {short(objs)}: must be a list "
                             f"of objective names")
        bad = [o for o in objs if o not in meta["objectives"]]
        if bad:
            raise SpaceError(
                f"--data {data}: the space{f' {space_path}' if space_path else ''} keeps "
                f"data.objectives {_names(objs)}, but {_names(bad)} "
                f"{'is' if len(bad) == 1 else 'are'} not in this dataset; allowed (its "
                f"meta.yaml): {_names(meta['objectives'])}")
        new["objectives"] = list(objs)
    if isinstance(raw, dict):
        raw["data"] = new
    return raw
