"""The MP stage's config file and command line: the shipped default, defaults from their
owners, strict keys, bad values, and bad input as one line ``error: ...`` with exit code 2
before any log is read."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from tests._kuairand import SMALL, pattern, write_config, write_kuairand
from trainables.kuairand.cli import LOGS_ENV
from trainables.kuairand.config import (DEFAULT_CONFIG, DataSettings, SplitSettings,
                                        config_from_dict, load_config)
from trainables.mp import mp_model_params
from trainables.mp.__main__ import main as mp_main
from trainables.mp.config import ConfigError
from trainables.mp.train import TrainConfig
from trainables.weighting import weighting_params

DAYS = ["--train-days", "2022-04-25:2022-04-26", "--score-days", "2022-04-27:2022-04-29"]


# --------------------------------------------------------------------------- the default
def test_shipped_config_is_the_default_and_documents_every_key():
    cfg = load_config()
    assert cfg.file == str(DEFAULT_CONFIG)
    assert (cfg.model, cfg.weighting) == ("mmoe", "pe_ltr")
    assert cfg.weighting_params["gradients"] == "shared" and cfg.weighting_params["every"] == 5
    assert cfg.train == TrainConfig() and cfg.data == DataSettings()
    assert cfg.splits == SplitSettings()
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for section, cls in (("data", DataSettings), ("splits", SplitSettings),
                         ("train", TrainConfig)):
        assert set(raw[section]) == {f.name for f in dataclasses.fields(cls)}, section
    assert set(raw["model"]) == {"family", *mp_model_params("mmoe")}
    assert set(raw["weighting"]) == {"kind", *weighting_params("pe_ltr")}
    text = DEFAULT_CONFIG.read_text()
    for line in text.splitlines():       # every key line says what it means (or its owner)
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            key = line.split(":")[0].strip()
            if key not in {"experts", "epochs", "batch_size", "weight_decay", "dropout"}:
                assert "#" in line, line


def test_left_out_keys_take_their_owners_defaults():
    cfg = config_from_dict(None)
    assert (cfg.model, cfg.model_params, cfg.weighting) == ("mmoe", {}, "static")
    assert cfg.train == TrainConfig() and cfg.objectives == list(cfg.as_dict()["objectives"])
    d = config_from_dict({"model": {"family": "shared_bottom", "emb_dim": 4},
                          "weighting": {"kind": "pe_ltr", "gradients": "shared"}}).as_dict()
    assert d["model"] == {"family": "shared_bottom", **mp_model_params("shared_bottom"),
                          "emb_dim": 4}
    assert d["weighting"] == {"kind": "pe_ltr", **weighting_params("pe_ltr"),
                              "gradients": "shared"}
    over = load_config(None, {"train": {"seed": 7}})
    assert over.train.seed == 7 and over.train.epochs == TrainConfig().epochs
    assert over.weighting == "pe_ltr"                  # the rest of the file is kept


# --------------------------------------------------------------------------- strict keys
@pytest.mark.parametrize("raw, fragments", [
    ({"trian": {"epochs": 2}}, ("unknown key trian = {'epochs': 2}", "allowed in the top "
                                "level: data, model, objectives, splits, train, weighting")),
    ({"train": {"epoch": 3}}, ("unknown key train.epoch = 3", "allowed in train: "
                               "batch_size, epochs, lr, patience, seed, unknown_p")),
    ({"data": {"max_id": 9}}, ("unknown key data.max_id = 9", "allowed in data: "
                               "include_random, max_ids, request_window_s, unknown")),
    ({"splits": {"split": "user"}}, ("unknown key splits.split = 'user'",
                                     "allowed in splits: by, mp_valid")),
    ({"model": {"family": "shared_bottom", "experts": 4}},
     ("unknown key model.experts = 4", "allowed in model: bottom, dropout, emb_dim, "
                                       "family, tower")),
    ({"weighting": {"kind": "pe_ltr", "bound": {"like": 0.1}}},
     ("unknown key weighting.bound = {'like': 0.1}", "allowed in weighting: bounds, every, "
                                                     "gradients, kind, mode")),
])
def test_unknown_key_names_path_value_and_allowed_keys(tmp_path, raw, fragments):
    path = write_config(tmp_path, raw, "my-mp.yaml")
    with pytest.raises(ConfigError, match=pattern("my-mp.yaml", *fragments)):
        load_config(path)


@pytest.mark.parametrize("raw, fragments", [
    ({"train": {"epochs": 0}}, ("train.epochs = 0: must be an integer >= 1",)),
    ({"train": {"lr": "fast"}}, ("train.lr = 'fast': must be a number > 0",)),
    ({"train": {"seed": True}}, ("train.seed = True: must be an integer >= 0",)),
    ({"train": {"unknown_p": 1.0}}, ("train.unknown_p = 1.0: must be a number in [0, 1)",)),
    ({"data": {"unknown": "ignore"}}, ("data.unknown = 'ignore': must be one of error, "
                                       "drop, keep",)),
    ({"data": {"max_ids": 1}}, ("data.max_ids = 1: must be an integer >= 2",)),
    ({"data": {"request_window_s": 0}}, ("data.request_window_s = 0: must be a number",)),
    ({"splits": {"by": "week"}}, ("splits.by = 'week': must be one of day, user",)),
    ({"objectives": ["click", "hate"]}, ("objectives = ['click', 'hate']", "among click",
                                         "(hate is not)")),
    ({"objectives": ["click", "click"]}, ("objectives", "distinct")),
    ({"model": "mmoe"}, ("model = 'mmoe': must be a mapping (family: NAME",)),
    ({"model": {"family": "dnn"}}, ("model.family = 'dnn'", "unknown MP model 'dnn'; valid "
                                    "MP models: mmoe, shared_bottom")),
    ({"model": {"emb_dim": 0}}, ("model (mmoe) {'emb_dim': 0}", "emb_dim must be an "
                                 "integer >= 1, got 0")),
    ({"model": {"expert": [64, "x"]}}, ("expert must be one or more layer sizes",)),
    ({"model": {"dropout": 1.5}}, ("dropout must be a number in [0, 1), got 1.5",)),
    ({"weighting": {"kind": "gradnorm"}}, ("weighting.kind = 'gradnorm'", "unknown weighting "
                                           "'gradnorm'; valid weightings: pe_ltr, "
                                           "self_evolving, static")),
    ({"weighting": {"kind": "pe_ltr"}}, ("weighting 'pe_ltr'", "cannot weight the MP "
                                         "model's tasks", "use gradients: shared")),
    ({"weighting": {"kind": "self_evolving"}}, ("cannot weight the MP model's tasks",)),
    ({"weighting": {"kind": "pe_ltr", "gradients": "shared", "bounds": {"like": 1.2}}},
     ("weighting.bounds", "sum to less than 1")),
    ({"weighting": {"kind": "static", "weights": {"click": 1}}},
     ("weighting.weights lacks objective(s) long_view",)),
    ([1, 2], ("= [1, 2]: must be a mapping with keys among",)),
])
def test_bad_values_name_path_value_and_what_is_allowed(tmp_path, raw, fragments):
    path = write_config(tmp_path, raw, "my-mp.yaml")
    with pytest.raises(ConfigError, match=pattern("my-mp.yaml", *fragments)):
        load_config(path)


def test_files_are_read_within_the_yaml_limits(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match=pattern("big.yaml", "larger than 1,048,576 bytes")):
        load_config(big)
    dup = tmp_path / "dup.yaml"
    dup.write_text("train: {epochs: 1}\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=pattern("dup.yaml", "duplicate key 'train'")):
        load_config(dup)


# --------------------------------------------------------------------------- command line
def _cli(capsys, argv) -> tuple[int, str]:
    try:
        rc = mp_main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err


def _one_line_error(rc, err, *fragments):
    assert "Traceback" not in err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, (f, err)


@pytest.fixture
def kr_dir(tmp_path):
    return write_kuairand(tmp_path / "kr")


def test_bad_config_is_one_line_before_the_logs_are_read(tmp_path, capsys):
    """A config problem is reported although --logs does not even exist: the config is
    checked first."""
    path = write_config(tmp_path, {"train": {"epochs": -1}}, "bad.yaml")
    rc, err = _cli(capsys, ["kuairand", "--logs", str(tmp_path / "nowhere"), *DAYS, "--out",
                            str(tmp_path / "o"), "--config", str(path)])
    _one_line_error(rc, err, "bad.yaml", "train.epochs = -1")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["--train-days", "2022-04-25:x", "--score-days", "2022-04-27"],
     ("--train-days", "'x' is not a day")),
    ([*DAYS, "--epochs", "3"], ("--epochs is a config setting now", "train.epochs",
                                "--config FILE")),
    ([*DAYS, "--weighting=static"], ("--weighting", "weighting.kind")),
    ([*DAYS, "--bogus"], ("unrecognized arguments: --bogus",)),
    ([*DAYS, "--config", "{tmp}/missing.yaml"], ("missing.yaml", "cannot read")),
    ([*DAYS, "--config", "{tmp}"], ("is a folder",)),
    ([*DAYS, "--threads", "-1"], ("--threads -1: must be >= 0",)),
])
def test_bad_flags_are_one_line(tmp_path, capsys, kr_dir, argv, fragments):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, err = _cli(capsys, ["kuairand", "--logs", str(kr_dir), "--out", str(tmp_path / "o"),
                            *argv])
    _one_line_error(rc, err, *fragments)


def test_bad_yaml_and_unknown_source_are_one_line(tmp_path, capsys, kr_dir):
    bad = tmp_path / "broken.yaml"
    bad.write_text("train: {epochs: 2\nmodel: [\n")
    rc, err = _cli(capsys, ["kuairand", "--logs", str(kr_dir), *DAYS, "--out",
                            str(tmp_path / "o"), "--config", str(bad)])
    _one_line_error(rc, err, "broken.yaml", "not valid YAML")
    rc, err = _cli(capsys, ["kuairond", "--logs", str(kr_dir)])
    _one_line_error(rc, err, "unknown source 'kuairond'; valid sources: kuairand")
    rc, err = _cli(capsys, [])
    _one_line_error(rc, err, "name a source")


def test_logs_come_from_the_flag_or_the_environment(tmp_path, capsys, kr_dir, monkeypatch):
    monkeypatch.delenv(LOGS_ENV, raising=False)
    rc, err = _cli(capsys, ["kuairand", *DAYS, "--out", str(tmp_path / "o")])
    _one_line_error(rc, err, "no KuaiRand folder", "--logs DIR", LOGS_ENV)
    monkeypatch.setenv(LOGS_ENV, str(tmp_path / "nowhere"))
    rc, err = _cli(capsys, ["kuairand", *DAYS, "--out", str(tmp_path / "o")])
    _one_line_error(rc, err, "nowhere: no such folder")
    monkeypatch.setenv(LOGS_ENV, str(kr_dir))
    config = write_config(tmp_path, {**SMALL, "objectives": ["click", "long_view"]})
    rc, err = _cli(capsys, ["kuairand", *DAYS, "--out", str(tmp_path / "me"), "--config",
                            str(config), "--no-progress"])
    assert rc == 0, err
    meta = yaml.safe_load((tmp_path / "me" / "meta.yaml").read_text())
    assert meta["source"]["logs"] == str(kr_dir.resolve())
    assert meta["objectives"] == ["click", "long_view"]
    assert meta["source"]["mp"]["config_file"] == str(config)
