"""Contract suites over the registries: every weighting in ``trainables.weighting.WEIGHTINGS``
and every model in ``trainables.models.MODELS`` (as a population of two members). A new
registry entry is covered without editing this file."""
from __future__ import annotations

import math

import pytest
import torch
import yaml

from ._batches import random_batch
from search.space import load_space
from trainables.models import MODELS, FeatureSpec, build_model
from trainables.population import PopulationModel
from trainables.requests import RequestPopulationModel, needs_requests
from trainables.weighting import (WEIGHTINGS, StepContext, build_weighting, weighting_params,
                                  weighting_per_objective)

OBJS = ["click", "like", "buy"]
FEATS = FeatureSpec((("feat_a", 5), ("feat_b", 3)), ("feat_x",))


def _batch(n=96, k=3, requests=9, seed=0):
    return random_batch(n, k, seed, [0.4, 0.2, 0.3], requests=requests)


# --- weightings -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_weighting_with_defaults_gives_nonnegative_finite_weights_per_objective(name):
    assert isinstance(weighting_params(name), dict)
    w = build_weighting(name, OBJS)
    scores, labels, cat, num, groups = _batch()
    torch.manual_seed(0)
    model = build_model("mlp", 3, FEATS)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for step in range(3):           # stateful weightings compute weights from step 1 on
        s = model(scores, cat, num)
        losses = torch.stack([bce(s, labels[:, k]) for k in range(3)])
        total = w.combine(losses, StepContext(step, 0, model, s, labels, (scores, cat, num),
                                              groups))
        assert total.ndim == 0 and torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
        weights = w.weights()
        assert weights.shape == (3,)
        assert torch.isfinite(weights).all() and (weights >= 0).all()
        # the combined loss is the weighted sum of the losses with the weights it reports
        # (or their normalized version): it is never negative for non-negative losses
        assert total.item() >= 0


def _space(tmp_path, weighting: dict):
    raw = {"name": "contract",
           "data": {"source": "synthetic", "rows": 20000, "objectives": OBJS, "seed": 0},
           "model": {"family": "mlp"}, "loss": {"kind": "bce"},
           "weighting": weighting, "optim": {"batch_size": 1024, "epochs": 1},
           "run": {"seed": 0}}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_space(path)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_weighting_per_objective_parameters_parse_as_objective_mappings(name, tmp_path):
    per = weighting_per_objective(name)
    assert set(per) <= set(weighting_params(name))      # declared ones are real parameters
    space = _space(tmp_path, {"kind": name})           # defaults alone are a valid space
    assert space.fixed_config()["weighting"]["kind"] == name
    for p in per:
        # a static weight is any number >= 0; a PE-LTR bound must leave room on the simplex
        mapping = {o: round(0.1 * (i + 1), 3) for i, o in enumerate(OBJS)}
        space = _space(tmp_path, {"kind": name, p: mapping})
        cfg = space.fixed_config()["weighting"]
        assert cfg[p] == mapping, (p, cfg)
        # and the weighting takes the mapping the parser passed on
        w = build_weighting(name, OBJS, {p: cfg[p]})
        assert w.weights().shape == (3,)
        assert all(math.isfinite(v) for v in w.weights().tolist())
        # a key that is not an objective is refused, naming the objectives
        with pytest.raises(ValueError, match="not an objective"):
            _space(tmp_path, {"kind": name, p: {**mapping, "nope": 0.1}})


# --- models x population ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_population_of_two_equals_each_member_alone(name):
    scores, _, cat, num, groups = _batch()
    scores, num = scores.double(), num.double()
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        m = build_model(name, 3, FEATS).double()   # float64: 1e-6 is far above round-off
        with torch.no_grad():       # off the init (some inits are deterministic), as training
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        members.append(m)
    # the members differ, so the equality below is per member, not trivial
    if needs_requests(members[0]):
        pop = RequestPopulationModel(members)
        out = pop(scores, cat, num, groups)
        want = torch.stack([m(scores, cat, num, groups) for m in members])
    else:
        pop = PopulationModel(members)
        out = pop(scores, cat, num)
        want = torch.stack([m(scores, cat, num) for m in members])
    assert out.shape == (2, scores.shape[0])
    assert not torch.allclose(want[0], want[1])
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
