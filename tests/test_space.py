"""search.space: every kind of bad space file is a SpaceError naming the file, the key
path and the value; the Tune param space has the right domain types; sampled configs
materialize into configs the trainables accept; simplex weights are uniform on the
simplex; the shipped spaces load."""
from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from search.space import Space, SpaceError, load_space, materialize, to_tune
from trainables.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
OBJS = ["buy", "follow", "long_view"]
BASE = {
    "name": "t1",
    "data": {"source": "synthetic", "rows": 20000, "objectives": OBJS, "seed": 0},
    "model": {"family": "harmonrank", "d_model": {"choice": [8, 16]},
              "buckets": {"int": [20, 60]}},
    "loss": {"kind": "rank_auc", "regularization_strength": {"loguniform": [0.01, 1.0]}},
    "weighting": {"kind": "static", "weights": {"simplex": OBJS}},
    "optim": {"lr": {"loguniform": [1e-3, 3e-2]}, "weight_decay": {"uniform": [0.0, 0.1]},
              "batch_size": 1024, "epochs": 2},
    "run": {"seed": 0},
}


def write(tmp_path: Path, space=None, text: str | None = None, name="bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else yaml.safe_dump(space, sort_keys=False))
    return path


def with_(**over) -> dict:
    """BASE with sections replaced (None removes a section)."""
    s = copy.deepcopy(BASE)
    for k, v in over.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


def sample(tree, rng):
    """Resolve every Tune domain in a param space, like a random searcher would."""
    from ray.tune.search.sample import Domain
    if isinstance(tree, Domain):
        return tree.sample(random_state=rng)
    if isinstance(tree, dict):
        if set(tree) == {"grid_search"}:
            return tree["grid_search"][rng.integers(len(tree["grid_search"]))]
        return {k: sample(v, rng) for k, v in tree.items()}
    return tree


# --- errors -----------------------------------------------------------------------------

def _m(section, **kw):
    return {**BASE[section], **kw}


BAD = [  # (space, regex that the message must match after the file name)
    # unknown top-level section and typo'd keys in every section
    (with_(modle={"family": "mlp"}), r"modle = .*unknown top-level key; allowed: name, data"),
    (with_(data={**BASE["data"], "rowz": 10}), r"data\.rowz = 10: unknown key"),
    (with_(model=_m("model", d_modell=8)), r"model\.d_modell = 8: unknown key; allowed.*d_model"),
    (with_(loss=_m("loss", regularisation_strength=0.1)),
     r"loss\.regularisation_strength = 0\.1: unknown key.*regularization_strength"),
    (with_(weighting=_m("weighting", weigths=1)), r"weighting\.weigths = 1: unknown key"),
    (with_(optim=_m("optim", lrr=0.1)), r"optim\.lrr = 0\.1: unknown key.*lr"),
    (with_(run={"sed": 1}), r"run\.sed = 1: unknown key.*seed"),
    (with_(search={"num_sample": 3}), r"search\.num_sample = 3: unknown key.*num_samples"),
    (with_(scheduler={"grace": 1}), r"scheduler\.grace = 1: unknown key.*grace_period"),
    (with_(resources={"gpus": 1}), r"resources\.gpus = 1: unknown key.*gpus_per_worker"),
    (with_(tracking={"wandb": {"projet": "x"}}), r"tracking\.wandb\.projet = 'x': unknown key"),
    (with_(tracking={"mlflow": {}}), r"tracking\.mlflow = \{\}: unknown key.*wandb"),
    # wrong types
    (with_(optim=_m("optim", epochs="ten")), r"optim\.epochs = 'ten': must be an integer"),
    (with_(model=_m("model", d_model="big")), r"model\.d_model = 'big': must be an integer"),
    (with_(model=_m("model", d_model={"choice": [8, "x"]})),
     r"model\.d_model\.choice\[1\] = 'x': must be an integer"),
    (with_(model=_m("model", d_model={"uniform": [4, 8]})),
     r"model\.d_model = .*uniform.*integer.*\{int: \[lo, hi\]\}"),
    (with_(model=_m("model", gate="yes please")), r"model\.gate = 'yes please': must be true"),
    (with_(data={**BASE["data"], "rows": "many"}), r"data\.rows = 'many': must be an integer"),
    (with_(resources={"workers_per_trial": 1.5}), r"resources\.workers_per_trial = 1\.5"),
    (with_(resources={"cpus_per_worker": 0}), r"resources\.cpus_per_worker = 0: .*> 0"),
    (with_(resources={"gpus_per_worker": -0.5}), r"resources\.gpus_per_worker = -0\.5: .*>= 0"),
    (with_(resources={"gpus_per_worker": 1.5}),
     r"resources\.gpus_per_worker = 1\.5: .*share of one GPU in \(0, 1\].*whole number"),
    (with_(search={"max_concurrent": 0}), r"search\.max_concurrent = 0: .*>= 1 or null"),
    (with_(search={"max_failures": -1}), r"search\.max_failures = -1: .*>= 0"),
    (with_(scheduler={"grace_period": 0}), r"scheduler\.grace_period = 0: .*>= 1"),
    (with_(scheduler={"reduction_factor": 1}), r"scheduler\.reduction_factor = 1: .*> 1"),
    (with_(tracking={"wandb": {"mode": "sometimes"}}),
     r"tracking\.wandb\.mode = 'sometimes': allowed: offline, online, disabled"),
    # weights
    (with_(weighting={"weights": {"buy": -1.0, "follow": 1.0, "long_view": 1.0}}),
     r"weighting\.weights\.buy = -1\.0: must be a finite number >= 0"),
    (with_(weighting={"weights": {"buy": float("nan"), "follow": 1.0, "long_view": 1.0}}),
     r"weighting\.weights\.buy = nan: must be a finite number >= 0"),
    (with_(weighting={"weights": {"buy": float("inf"), "follow": 1.0, "long_view": 1.0}}),
     r"weighting\.weights\.buy = inf: must be a finite number >= 0"),
    (with_(weighting={"weights": {"buy": {"uniform": [-1, 1]}, "follow": 1, "long_view": 1}}),
     r"weighting\.weights\.buy = .*uniform.*lo must be >= 0"),
    (with_(weighting={"weights": {"buy": 1.0, "follow": 1.0, "click": 1.0}}),
     r"weighting\.weights\.click = 1\.0: not an objective of the data; objectives: buy"),
    (with_(weighting={"weights": {"buy": 1.0, "follow": 1.0}}),
     r"weighting\.weights = \{'buy': 1\.0, 'follow': 1\.0\}: lacks objective\(s\) "
     r"long_view"),
    (with_(weighting={"weights": {"simplex": ["buy", "click"]}}),
     r"weighting\.weights = .*simplex over objective\(s\) click that the data does not have"),
    (with_(weighting={"weights": [0.5, 0.5, 0.0]}), r"weighting\.weights = \[0\.5, 0\.5, 0\.0\]"),
    # unknown names
    (with_(model={"family": "gbdt"}), r"model\.family = 'gbdt': unknown family; allowed: "
                                      r"emer, fusion, harmonrank, mlp"),
    (with_(model={"family": {"choice": ["mlp", "gbdt"]}}), r"model\.family = 'gbdt': unknown"),
    (with_(loss={"kind": "hinge"}), r"loss\.kind = 'hinge': unknown kind; allowed: aucm, bce"),
    (with_(weighting={"kind": "gradnorm"}), r"weighting\.kind = 'gradnorm': unknown kind"),
    (with_(search={"algorithm": "hyperband"}),
     r"search\.algorithm = 'hyperband': allowed: grid, nsga2, optuna, pe_ltr_grid, random$"),
    (with_(search={"algorithm": "optuna", "sampler": "cmaes"}),
     r"search\.sampler = 'cmaes': allowed: nsga2, tpe"),
    (with_(search={"sampler": "tpe"}), r"search\.sampler = 'tpe': only for .*optuna"),
    (with_(scheduler={"kind": "pbt"}), r"scheduler\.kind = 'pbt': allowed: asha"),
    (with_(scheduler={"metric": "auc/click"}), r"scheduler\.metric = 'auc/click': allowed: "
                                               r"auc_sum, auc/buy"),
    (with_(search={"metrics": ["auc/buy", "auc/like"]}),
     r"search\.metrics\[1\] = 'auc/like': allowed: auc_sum, auc/buy"),
    (with_(data={"source": "kuairand"}), r"data\.source = 'kuairand': allowed: synthetic"),
    # distributions
    (with_(optim=_m("optim", lr={"normal": [0, 1]})),
     r"optim\.lr = \{'normal': \[0, 1\]\}: unknown distribution 'normal'; allowed: choice"),
    (with_(model=_m("model", d_model={"choice": []})),
     r"model\.d_model = \{'choice': \[\]\}: choice needs a non-empty list"),
    (with_(optim=_m("optim", lr={"loguniform": [0, 1]})),
     r"optim\.lr = \{'loguniform': \[0, 1\]\}: loguniform needs 0 < lo < hi"),
    (with_(optim=_m("optim", lr={"loguniform": [0.1, 0.01]})), r"optim\.lr = .*0 < lo < hi"),
    (with_(optim=_m("optim", lr={"loguniform": [0.1, 0.1]})), r"optim\.lr = .*0 < lo < hi"),
    (with_(optim=_m("optim", weight_decay={"uniform": [0.2, 0.1]})),
     r"optim\.weight_decay = \{'uniform': \[0\.2, 0\.1\]\}: uniform needs lo <= hi"),
    (with_(model=_m("model", buckets={"int": [60, 20]})),
     r"model\.buckets = \{'int': \[60, 20\]\}: int needs lo <= hi"),
    (with_(model=_m("model", buckets={"int": [20.5, 60]})), r"model\.buckets = .*integer bounds"),
    (with_(optim=_m("optim", lr={"uniform": [0.001, 0.01], "loguniform": [0.001, 0.01]})),
     r"optim\.lr = .*exactly one key.*2 distribution keys \(uniform, loguniform\)"),
    (with_(optim=_m("optim", lr={"simplex": OBJS})),
     r"optim\.lr = .*simplex is allowed only as weighting\.weights"),
    (with_(data={**BASE["data"], "rows": {"choice": [1000, 2000]}}),
     r"data\.rows = .*data values are fixed"),
    (with_(run={"seed": {"choice": [0, 1]}}), r"run\.seed = .*run values are fixed"),
    (with_(search={"algorithm": "grid"}), r"model\.buckets = \{'int': \[20, 60\]\}: search\."
                                          r"algorithm grid allows only \{choice"),
    (with_(search={"algorithm": "optuna"},
           model={"family": "mlp", "hidden": {"choice": [[8], [16, 8]]}}),
     r"model\.hidden\.choice\[0\] = \[8\]: .*optuna needs scalar choice"),
    # families / kinds and their sub-mappings
    (with_(model={"family": {"choice": ["harmonrank", "mlp"]}, "hidden": [8]}),
     r"model\.hidden = \[8\]: only mlp of model\.family's options .*under model\.mlp"),
    (with_(model={"family": "mlp", "fusion": {"form": "sum"}}),
     r"model\.fusion = .*fusion is not an option of model\.family \(mlp\)"),
    (with_(model={"family": {"uniform": [0, 1]}}), r"model\.family = .*\{choice: \[names\]\}"),
    (with_(model={"family": {"choice": ["mlp", "harmonrank"]}, "mlp": {"hiden": [8]}}),
     r"model\.mlp\.hiden = \[8\]: unknown key; allowed in model\.mlp: dropout, emb_dim, hidden"),
    # the trainables reject a value the space can produce
    (with_(model=_m("model", d_model={"choice": [8, 0]})),
     r"model\.family = 'harmonrank', model\.d_model = 0: the trainables reject.*d_model must be"),
    (with_(loss=_m("loss", regularization_strength=-1.0)),
     r"loss\.kind = 'rank_auc': the trainables reject.*regularization_strength must be > 0"),
    (with_(optim=_m("optim", lr=-0.1)),
     r"optim\.lr = -0\.1: must be a number > 0"),
    (with_(optim=_m("optim", optimizer={"choice": ["adam", "lion"]})),
     r"optim\.optimizer\.choice\[1\] = 'lion': must be one of adam, adamw, sgd"),
    (with_(data={**BASE["data"], "rows": 10}), r"data = .*data\.rows must be an integer in \[1,000, "),
    # name and data
    (with_(name=None), r"name: missing"),
    (with_(name="my space!"), r"name = 'my space!': must be a string of letters"),
    (with_(name=2024), r"name = 2024: must be a string.*quote it"),
    (with_(data=None), r"data: missing"),
    (with_(data={"rows": 100}), r"data = \{'rows': 100\}: needs 'path'.*or 'source'"),
]


@pytest.mark.parametrize("space,pattern", BAD, ids=[p[:40] for _, p in BAD])
def test_bad_space_is_a_space_error_naming_file_key_and_value(tmp_path, space, pattern):
    path = write(tmp_path, space)
    with pytest.raises(SpaceError, match=re.escape(str(path)) + ": " + pattern):
        load_space(path)


@pytest.mark.parametrize("text,pattern", [
    ("", r"the file is empty"),
    ("# only a comment\n", r"the file is empty"),
    ("name: x\n  data: [", r"not valid YAML"),
    ("- name: x\n- data: {}\n", r"the top level must be a mapping.*got list"),
    ("just a string\n", r"the top level must be a mapping.*got str"),
    ("name: a\nname: b\ndata: {source: synthetic}\n", r"not valid YAML.*duplicate key 'name'"),
])
def test_unreadable_files(tmp_path, text, pattern):
    path = write(tmp_path, text=text)
    with pytest.raises(SpaceError, match=re.escape(str(path)) + ": " + pattern):
        load_space(path)


def test_missing_file_is_a_space_error(tmp_path):
    with pytest.raises(SpaceError, match="nope.yaml: cannot read"):
        load_space(tmp_path / "nope.yaml")


def test_data_path_is_checked_against_its_meta(tmp_path):
    bad = write(tmp_path, with_(data={"path": str(tmp_path / "missing")}))
    with pytest.raises(SpaceError, match=r"bad\.yaml: data\.path = .*missing.*no such dataset"):
        load_space(bad)
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "meta.yaml").write_text(yaml.safe_dump({"objectives": ["buy", "like", "follow"]}))
    bad = write(tmp_path, with_(data={"path": str(ds), "objectives": ["buy", "long_view"]}),
                name="bad2.yaml")
    with pytest.raises(SpaceError, match=r"bad2\.yaml: data\.objectives = .*long_view not in "
                                         r"the dataset; its meta\.yaml lists buy, like, follow"):
        load_space(bad)
    _dataset(ds, ["buy", "like", "follow"])      # the whole dataset is validated
    ok = write(tmp_path, with_(data={"path": "ds"}, weighting={"weights": None}), name="ok.yaml")
    import os
    old = os.getcwd()
    os.chdir(tmp_path)              # a relative path is relative to where the user runs it
    try:
        space = load_space(ok)
    finally:
        os.chdir(old)
    assert space.objectives == ["buy", "like", "follow"]
    assert space.fixed_config()["data"]["path"] == str(ds.resolve())   # absolute for trials


# --- valid spaces ---------------------------------------------------------------------------

@pytest.mark.parametrize("gpus", [0, 0.0625, 0.125, 1 / 3, 1, 1.0, 2])
def test_gpus_per_worker_takes_a_share_of_one_gpu_or_whole_gpus(tmp_path, gpus):
    """Fractions pack several trials on one GPU (Ray's fractional resources); above 1 only
    whole GPUs, which is all Ray places."""
    space = load_space(write(tmp_path, with_(resources={"gpus_per_worker": gpus}),
                             name="gpus.yaml"))
    assert space.resources["gpus_per_worker"] == gpus


def test_valid_space_resolves_defaults(tmp_path):
    space = load_space(write(tmp_path, BASE, name="ok.yaml"))
    assert isinstance(space, Space) and space.name == "t1" and space.objectives == OBJS
    assert space.raw == BASE
    assert space.search == {"algorithm": "random", "num_samples": 8, "sampler": None,
                            "partitions": None, "bounds_total": None,
                            "pop_size": None, "generations": None, "population": False,
                            "members_per_trial": None, "max_concurrent": None, "max_failures": 1, "seed": 0,
                            "metrics": ["auc/buy", "auc/follow", "auc/long_view"]}
    assert space.scheduler is None
    assert space.resources == {"workers_per_trial": 1, "cpus_per_worker": 1,
                               "gpus_per_worker": 0}
    assert space.tracking == {"wandb": {"project": "paretune", "mode": "offline",
                                        "entity": None, "group": None}}
    s2 = load_space(write(tmp_path, with_(scheduler={}, search={"algorithm": "optuna",
                                                                "metrics": ["auc_sum"]}),
                          name="ok2.yaml"))
    assert s2.scheduler == {"kind": "asha", "metric": "auc_sum", "grace_period": 1,
                            "reduction_factor": 3}
    assert s2.search["sampler"] == "nsga2" and s2.search["metrics"] == ["auc_sum"]


def test_yaml_exponents_are_floats(tmp_path):
    text = yaml.safe_dump(with_(optim=None)) + \
        "optim: {lr: {loguniform: [1e-3, 3e-2]}, epochs: 2}\n"
    space = load_space(write(tmp_path, text=text, name="ok.yaml"))
    assert space.fixed_config()["optim"]["lr"] == pytest.approx((1e-3 * 3e-2) ** 0.5)


def test_fixed_config_takes_representative_values_and_resolves(tmp_path):
    space = load_space(write(tmp_path, BASE, name="ok.yaml"))
    cfg = space.fixed_config()
    assert cfg["model"] == {"family": "harmonrank", "d_model": 8, "buckets": 20}
    assert cfg["loss"]["regularization_strength"] == pytest.approx(0.1)
    assert cfg["optim"]["lr"] == pytest.approx((1e-3 * 3e-2) ** 0.5)
    assert cfg["optim"]["weight_decay"] == 0.0
    assert cfg["weighting"]["weights"] == pytest.approx({o: 1 / 3 for o in OBJS})
    resolved = resolve_config(cfg)
    assert resolved["optim"]["epochs"] == 2 and resolved["run"]["device"] == "auto"


def test_param_space_domain_types(tmp_path):
    from ray.tune.search.sample import Categorical, Float, Integer
    ps = load_space(write(tmp_path, BASE, name="ok.yaml")).param_space()
    assert set(ps) == {"data", "model", "loss", "weighting", "optim", "run"}
    assert isinstance(ps["model"]["d_model"], Categorical)
    assert ps["model"]["d_model"].categories == [8, 16]
    assert isinstance(ps["model"]["buckets"], Integer)
    assert (ps["model"]["buckets"].lower, ps["model"]["buckets"].upper) == (20, 61)  # inclusive
    assert isinstance(ps["loss"]["regularization_strength"], Float)
    assert isinstance(ps["optim"]["lr"], Float) and isinstance(ps["optim"]["weight_decay"], Float)
    simplex = ps["weighting"]["weights"]["__simplex__"]
    assert set(simplex) == set(OBJS) and all(isinstance(d, Float) for d in simplex.values())
    assert ps["data"] == BASE["data"] and ps["optim"]["epochs"] == 2


def test_to_tune_maps_each_short_form():
    from ray.tune.search.sample import Categorical, Float, Integer
    assert isinstance(to_tune({"choice": [[64, 32], {"a": 1}]}, "random"), Categorical)
    assert to_tune({"choice": [1, 2]}, "grid") == {"grid_search": [1, 2]}
    f = to_tune({"loguniform": [1e-3, 1e-1]}, "optuna")
    assert isinstance(f, Float) and (f.lower, f.upper) == (1e-3, 1e-1)
    assert isinstance(to_tune({"uniform": [0, 1]}, "random"), Float)
    i = to_tune({"int": [1, 3]}, "random")
    assert isinstance(i, Integer) and (i.lower, i.upper) == (1, 4)
    s = to_tune({"simplex": ["a", "b"]}, "random")
    assert set(s["__simplex__"]) == {"a", "b"}
    with pytest.raises(SpaceError, match="only {choice"):
        to_tune({"uniform": [0, 1]}, "grid")
    with pytest.raises(SpaceError, match="unknown distribution 'beta'"):
        to_tune({"beta": [1, 1]}, "random")


def test_grid_expands_choices_option_by_option(tmp_path):
    space = with_(model={"family": {"choice": ["harmonrank", "mlp"]},
                         "harmonrank": {"d_model": {"choice": [8, 16]}, "buckets": 50},
                         "mlp": {"hidden": {"choice": [[8], [16, 8]]}}},
                  loss={"kind": "bce"}, weighting={"weights": None},
                  optim={"lr": {"choice": [0.01, 0.1]}, "epochs": 2},
                  search={"algorithm": "grid", "num_samples": 1})
    ps = load_space(write(tmp_path, space, name="ok.yaml")).param_space()
    assert ps["optim"]["lr"] == {"grid_search": [0.01, 0.1]}
    # family x its own params: 2 harmonrank + 2 mlp variants, no duplicates from the
    # sub-mapping of the family that is not sampled
    variants = ps["model"]["grid_search"]
    assert variants == [{"family": "harmonrank", "d_model": 8, "buckets": 50},
                        {"family": "harmonrank", "d_model": 16, "buckets": 50},
                        {"family": "mlp", "hidden": [8]}, {"family": "mlp", "hidden": [16, 8]}]
    for v in variants:
        resolve_config(materialize({**ps, "model": v, "optim": {"lr": 0.1}}))


def test_sampled_configs_materialize_into_valid_configs(tmp_path):
    space = with_(model={"family": {"choice": ["harmonrank", "mlp", "fusion"]},
                         "emb_dim": {"choice": [2, 4]},
                         "harmonrank": {"d_model": {"int": [4, 8]}},
                         "mlp": {"hidden": {"choice": [[8], [16, 8]]}},
                         "fusion": {"form": {"choice": ["product", "sum"]}}},
                  loss={"kind": {"choice": ["rank_auc", "bce"]},
                        "rank_auc": {"regularization_strength": {"loguniform": [0.01, 1]}},
                        "bce": {"pos_weight": {"uniform": [1, 3]}}})
    ps = load_space(write(tmp_path, space, name="ok.yaml")).param_space()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        cfg = materialize(sample(ps, rng))
        r = resolve_config(cfg)
        fam = r["model"]["family"]
        seen.add((fam, r["loss"]["kind"]))
        others = {"harmonrank", "mlp", "fusion"} - {fam}
        assert not others & set(cfg["model"]) and r["model"]["emb_dim"] in (2, 4)
        assert ("pos_weight" in r["loss"]) == (r["loss"]["kind"] == "bce")
        w = np.array([r["weighting"]["weights"][o] for o in OBJS])
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert len(seen) == 6


def test_simplex_weights_are_uniform_on_the_simplex():
    from ray.tune.search.sample import Domain
    dom = to_tune({"simplex": OBJS}, "random")
    rng = np.random.default_rng(1)
    w = []
    for _ in range(4000):
        u = {o: d.sample(random_state=rng) for o, d in dom["__simplex__"].items()}
        assert not any(isinstance(x, Domain) for x in u.values())
        ws = materialize({"weighting": {"kind": "static", "weights": {"__simplex__": u}}})
        w.append([ws["weighting"]["weights"][o] for o in OBJS])
    w = np.array(w)
    assert (w >= 0).all() and np.allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(w.mean(0), 1 / 3, atol=0.02)
    # Dirichlet(1,1,1): each marginal is Beta(1, 2), P(w_k > 1/2) = 1/4 (normalized uniforms
    # would give about 0.15: not uniform on the simplex)
    np.testing.assert_allclose((w > 0.5).mean(0), 0.25, atol=0.03)


def test_simplex_over_some_objectives_gives_the_others_zero(tmp_path):
    space = load_space(write(tmp_path, with_(weighting={"weights": {"simplex": ["buy", "follow"]}}),
                             name="ok.yaml"))
    assert space.fixed_config()["weighting"]["weights"] == pytest.approx(
        {"buy": 0.5, "follow": 0.5, "long_view": 0.0})
    ps = space.param_space()
    cfg = materialize(sample(ps, np.random.default_rng(0)))
    w = cfg["weighting"]["weights"]
    assert w["long_view"] == 0.0 and w["buy"] + w["follow"] == pytest.approx(1.0)
    resolve_config(cfg)


def test_per_objective_weights_and_materialize_is_idempotent(tmp_path):
    space = load_space(write(tmp_path, with_(weighting={"weights": {
        "buy": 1.0, "follow": {"uniform": [0, 2]}, "long_view": {"choice": [0.5, 1]}}}),
        name="ok.yaml"))
    cfg = materialize(sample(space.param_space(), np.random.default_rng(0)))
    assert cfg["weighting"]["weights"]["buy"] == 1.0
    assert 0 <= cfg["weighting"]["weights"]["follow"] <= 2
    assert materialize(cfg) == cfg
    assert materialize({"optim": {"lr": np.float64(0.1)}}) == {"optim": {"lr": 0.1}}
    assert type(materialize({"optim": {"epochs": np.int64(3)}})["optim"]["epochs"]) is int


def shipped_data(path: Path, dataset) -> Path | None:
    """The --data a test gives a shipped space: a space on a dataset folder (e.g.
    spaces/kuairand_*.yaml on the MP stage's data/kuairand_me, which tests do not build)
    runs on the small KuaiRand-like synthetic dataset instead."""
    raw = yaml.safe_load(path.read_text())
    return dataset if "path" in (raw.get("data") or {}) else None


@pytest.mark.parametrize("path", sorted((ROOT / "spaces").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_spaces_load(path, kuairand_like_dataset):
    space = load_space(path, data=shipped_data(path, kuairand_like_dataset))
    assert space.name == path.stem
    resolve_config(space.fixed_config())
    ps = space.param_space()
    resolve_config(materialize(sample(ps, np.random.default_rng(0))))


def test_shipped_spaces_are_the_documented_ones():
    names = {p.stem for p in (ROOT / "spaces").glob("*.yaml")}
    assert {"quickstart", "harmonrank", "mlp_bce", "fusion", "kuairand_harmonrank",
            "kuairand_pe_ltr_grid", "kuairand_emer"} <= names
    q = load_space(ROOT / "spaces" / "quickstart.yaml")
    assert q.raw["data"]["rows"] == 120000 and q.search["num_samples"] == 12
    assert q.fixed_config()["optim"]["epochs"] == 5


def test_loading_does_not_import_ray():
    code = ("import sys; from search.space import load_space; "
            "load_space('spaces/quickstart.yaml'); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_optuna_nsga2_generation_size(tmp_path):
    s = load_space(write(tmp_path, with_(search={"algorithm": "optuna", "sampler": "nsga2",
                                                 "pop_size": 6, "num_samples": 12})))
    assert s.search["pop_size"] == 6
    assert load_space(write(tmp_path, with_(search={"algorithm": "optuna"}))).search[
        "pop_size"] is None                       # Optuna's own default (50)
    with pytest.raises(SpaceError, match=r"search.pop_size.*optuna's nsga2 sampler"):
        load_space(write(tmp_path, with_(search={"algorithm": "optuna", "sampler": "tpe",
                                                 "pop_size": 6})))
    with pytest.raises(SpaceError, match=r"search.pop_size"):
        load_space(write(tmp_path, with_(search={"algorithm": "optuna", "pop_size": 1})))
    with pytest.raises(SpaceError, match=r"search.generations.*only for search.algorithm nsga2"):
        load_space(write(tmp_path, with_(search={"algorithm": "optuna", "generations": 3})))


# --- --data: a dataset folder replacing the space's data ------------------------------------

def _meta_only(folder: Path, objectives) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.yaml").write_text(yaml.safe_dump({"objectives": list(objectives)}))
    return folder


def _dataset(folder: Path, objectives) -> Path:
    """A small valid dataset (the whole dataset is validated when a space names it)."""
    from trainables.data.synthetic import generate
    return generate(folder, rows=3000, objectives=list(objectives), seed=0, progress=False,
                    positive_rates={o: 0.3 for o in objectives})


def test_data_override_keeps_the_space_objectives(tmp_path):
    ds = _dataset(tmp_path / "ds", ["buy", "like", "follow", "long_view"])
    space = load_space(write(tmp_path, BASE), data=ds)
    assert space.raw["data"] == {"path": str(ds.resolve()), "objectives": OBJS}
    assert space.objectives == OBJS
    assert space.fixed_config()["data"] == {"path": str(ds.resolve()), "objectives": OBJS}
    # a space without an objectives list takes the dataset's
    no_objs = with_(data={"path": str(tmp_path / "elsewhere")},
                    weighting={"weights": None})
    assert load_space(write(tmp_path, no_objs, name="p.yaml"), data=ds).objectives == \
        ["buy", "like", "follow", "long_view"]


@pytest.mark.parametrize("make,pattern", [
    (lambda d: d / "missing", r"--data .*missing: .*missing: no such dataset folder"),
    (lambda d: (d / "empty").mkdir() or d / "empty",
     r"--data .*empty: .*meta\.yaml: missing; a dataset folder needs meta\.yaml"),
    (lambda d: _meta_only(d / "other", ["click", "like"]),
     r"--data .*other: the space .*bad\.yaml keeps data\.objectives buy, follow, long_view, "
     r"but buy, follow, long_view are not in this dataset; allowed \(its meta\.yaml\): "
     r"click, like"),
], ids=["missing-folder", "missing-meta", "unknown-objectives"])
def test_data_override_errors_name_the_path_and_the_allowed(tmp_path, make, pattern):
    path = write(tmp_path, BASE, name="bad.yaml")
    with pytest.raises(SpaceError, match=pattern):
        load_space(path, data=make(tmp_path))


def test_use_iput_needs_a_duration_column(tmp_path, small_dataset, kuairand_like_dataset):
    emer = {"kind": "emer", "use_iput": {"choice": [False, True]},
            "iput_objectives": ["like", "follow"]}
    space = with_(loss=emer, weighting={"kind": "static"})
    space["data"] = {"path": str(small_dataset), "objectives": ["click", "like", "follow"]}
    with pytest.raises(SpaceError, match=r"loss\.use_iput = True.*'duration' column.*"
                                         r"split\(s\) train, valid, test"):
        load_space(write(tmp_path, space))
    ok = load_space(write(tmp_path, space), data=kuairand_like_dataset)
    assert ok.objectives == ["click", "like", "follow"]
    bad = {**emer, "iput_objectives": ["like", "buy"]}
    with pytest.raises(SpaceError, match=r"loss\.iput_objectives = \['like', 'buy'\]: 'buy' "
                                         r"not among the objectives of the data: click, like"):
        load_space(write(tmp_path, {**space, "loss": bad}), data=kuairand_like_dataset)
    synthetic = with_(loss={**emer, "use_iput": True}, weighting={"kind": "static"})
    synthetic["data"]["objectives"] = ["buy", "follow", "long_view"]
    synthetic["loss"]["iput_objectives"] = ["buy"]
    with pytest.raises(SpaceError, match=r"synthetic data has none"):
        load_space(write(tmp_path, synthetic))


def test_weightings_declare_their_per_objective_parameters(tmp_path, monkeypatch):
    """Which weighting parameters map objective -> number is the weighting class's own
    declaration (Weighting.per_objective): the parser and population members read it."""
    from trainables.population import member_configs
    from trainables.weighting import PerObjective, weighting_per_objective
    from trainables.weighting.pe_ltr import PELTRWeighting
    assert weighting_per_objective("static") == {
        "weights": PerObjective(required=True, simplex=True)}
    assert weighting_per_objective("pe_ltr") == {"bounds": PerObjective()}
    assert weighting_per_objective("self_evolving") == {}
    # a member's mapping replaces the base's whole (unnamed objectives keep no base value)
    cfg = {"weighting": {"kind": "pe_ltr", "bounds": {"buy": 0.3, "follow": 0.2}, "every": 2},
           "population": [{"weighting": {"bounds": {"buy": 0.1}}}]}
    assert member_configs(cfg)[0]["weighting"] == {"kind": "pe_ltr", "bounds": {"buy": 0.1},
                                                   "every": 2}
    pe = with_(weighting={"kind": "pe_ltr", "bounds": {"buy": 0.1}})
    assert load_space(write(tmp_path, pe)).fixed_config()["weighting"]["bounds"] == {"buy": 0.1}
    with pytest.raises(SpaceError, match=r"weighting\.bounds = .*simplex is allowed only as "
                                         r"weighting\.weights"):
        load_space(write(tmp_path, with_(weighting={"kind": "pe_ltr",
                                                    "bounds": {"simplex": OBJS}})))
    monkeypatch.setattr(PELTRWeighting, "per_objective",
                        {"bounds": PerObjective(required=True, simplex=True)})
    with pytest.raises(SpaceError, match=r"weighting\.bounds = .*lacks objective\(s\) follow, "
                                         r"long_view"):
        load_space(write(tmp_path, pe))
    # the parser now takes a simplex of bounds (the trainables then refuse a sum of 1)
    with pytest.raises(SpaceError, match=r"trainables reject.*weighting\.bounds = \{'buy': "
                                         r"1\.0, 'follow': 0\.0.*sum to less than 1"):
        load_space(write(tmp_path, with_(weighting={"kind": "pe_ltr",
                                                    "bounds": {"simplex": ["buy"]}})))
