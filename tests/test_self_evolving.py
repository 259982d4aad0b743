"""EMER's self-evolving weights (docs/DESIGN.md, "EMER"): the weights against a float64 hand
computation with trainables.metrics (dcg_at_k, auc) on a snapshot replayed from recorded
parameters, the snapshot schedule, clipping, normalization, no-signal objectives, a
population against its members run alone, exact resume, and the weighting in the loop."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainables.metrics import auc, dcg_at_k
from trainables.weighting import StepContext, build_weighting
from trainables.weighting.self_evolving import SelfEvolvingWeighting

K = 3


class Tiny(nn.Module):
    """score = Linear over the objectives' scores and the numeric features."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.lin = nn.Linear(K + 2, 1)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, mp, cat, num):
        return self.lin(self.drop(torch.cat([mp, num], 1))).squeeze(-1)


class PopTiny(nn.Module):
    """P linear models at once: (P, n) = W (P, K+2) @ x.T + b (P, 1)."""

    def __init__(self, P: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(P, K + 2, generator=g))
        self.b = nn.Parameter(torch.randn(P, 1, generator=g))

    def forward(self, mp, cat, num):
        return self.W @ torch.cat([mp, num], 1).T + self.b


class Member(nn.Module):
    """Member p of a PopTiny alone (same arithmetic, one row)."""

    def __init__(self, W, b):
        super().__init__()
        self.W = nn.Parameter(W.detach().clone()[None])
        self.b = nn.Parameter(b.detach().clone()[None])

    def forward(self, mp, cat, num):
        return (self.W @ torch.cat([mp, num], 1).T + self.b)[0]


def _batches(steps, n=96, seed=0, empty_col=None):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        mp = torch.rand(n, K, generator=g)
        num = torch.randn(n, 2, generator=g)
        cat = torch.zeros(n, 0, dtype=torch.long)
        labels = (torch.rand(n, K, generator=g) < 0.15 + 0.5 * mp).float()
        labels[0] = 1.0                       # every objective has a positive ...
        labels[1] = 0.0                       # ... and a negative
        if empty_col is not None:
            labels[:, empty_col] = 0.0
        groups = torch.randint(0, 12, (n,), generator=g)
        out.append(((mp, cat, num), labels, groups))
    return out


def _losses(scores, labels):
    """Per-objective BCE of the one score against each label column: (K,) or (P, K)."""
    s = scores[..., None].expand(*scores.shape, K)
    return F.binary_cross_entropy_with_logits(s, labels.expand_as(s), reduction="none").mean(-2)


def _drive(weighting, model, batches, lr=2.0, seed=0):
    """Train with the weighting; returns the weights after each step and the parameters
    each step saw (before its update)."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    ws, params = [], []
    for t, (inputs, labels, groups) in enumerate(batches):
        params.append(copy.deepcopy(model.state_dict()))
        s = model(*inputs)
        total = weighting.combine(_losses(s, labels), StepContext(t, 0, model, s, labels,
                                                                  inputs, groups))
        opt.zero_grad()
        total.backward()
        opt.step()
        ws.append(weighting.weights())
    return ws, params


def _oracle(model, params_prev, params_cur, batch, metric="dcg", k=10, clip=(0.5, 2.0),
            normalize=True, per_request=False):
    """The weights by hand: scores of two copies of the model, metrics from
    trainables.metrics in float64, ratio, clip, normalize."""
    inputs, labels, groups = batch
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        m.load_state_dict(params_prev)
        prev = m(*inputs).double()
        m.load_state_dict(params_cur)
        cur = m(*inputs).double()
    raw = []
    for j in range(K):
        y = labels[:, j].double()
        if y.sum() == 0 or (metric == "auc" and y.sum() == len(y)):
            raw.append(1.0)
            continue
        if metric == "auc":
            a, b = auc(prev, y), auc(cur, y)
        else:
            g = groups if per_request else None
            a, b = dcg_at_k(prev, y, k, g), dcg_at_k(cur, y, k, g)
        r = a / b if b > 0 else (clip[1] if a > 0 else 1.0)
        raw.append(min(max(r, clip[0]), clip[1]))
    w = np.array(raw)
    return w * K / w.sum() if normalize else w


def _compared_step(t, refresh_every):
    """The step whose parameters the snapshot holds when step t computes its weights."""
    return refresh_every * ((t - 1) // refresh_every)


@pytest.mark.parametrize("metric,refresh_every,k,clip,normalize,per_request", [
    ("dcg", 1, 10, (0.5, 2.0), True, False),
    ("dcg", 3, 5, (1e-3, 1e3), False, False),
    ("dcg", 2, 3, (1e-3, 1e3), True, True),
    ("auc", 3, 10, (1e-3, 1e3), False, False),
    ("auc", 1, 10, (0.9, 1.1), True, False),
])
def test_weights_match_a_hand_computation(metric, refresh_every, k, clip, normalize,
                                          per_request):
    torch.manual_seed(0)
    model = Tiny()
    batches = _batches(9)
    w = build_weighting("self_evolving", ["a", "b", "c"],
                        {"metric": metric, "refresh_every": refresh_every, "k": k,
                         "clip": list(clip), "normalize": normalize,
                         "per_request": per_request})
    ws, params = _drive(w, model, batches)
    np.testing.assert_array_equal(ws[0].numpy(), np.ones(K))     # no earlier model yet
    moved = False
    for t in range(1, len(batches)):
        ref = _oracle(model, params[_compared_step(t, refresh_every)], params[t], batches[t],
                      metric, k, clip, normalize, per_request)
        np.testing.assert_allclose(ws[t].numpy(), ref, rtol=1e-5, atol=1e-6,
                                   err_msg=f"step {t}")
        moved |= not np.allclose(ref, 1.0)
    assert moved, "the oracle never left 1: the case tests nothing"


def test_batched_metrics_equal_trainables_metrics_with_ties():
    from trainables.weighting.self_evolving import auc_rows, dcg_rows
    g = torch.Generator().manual_seed(11)
    P, n = 4, 150
    S = torch.randint(0, 12, (P, n), generator=g).float()       # many ties
    Y = (torch.rand(n, K, generator=g) < 0.3).float()
    groups = torch.randint(0, 20, (n,), generator=g)
    d, dg, a = dcg_rows(S, Y, 7), dcg_rows(S, Y, 3, groups), auc_rows(S, Y)
    assert d.shape == dg.shape == a.shape == (P, K)
    for p in range(P):
        for j in range(K):
            assert d[p, j].item() == pytest.approx(dcg_at_k(S[p], Y[:, j], 7), abs=1e-12)
            assert dg[p, j].item() == pytest.approx(dcg_at_k(S[p], Y[:, j], 3, groups),
                                                    abs=1e-12)
            assert a[p, j].item() == pytest.approx(auc(S[p], Y[:, j]), abs=1e-12)


def test_snapshot_schedule_and_equal_models_give_ones():
    torch.manual_seed(1)
    model = Tiny()
    batches = _batches(7)
    w = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=3, clip=(1e-3, 1e3))
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    held = []
    for t, (inputs, labels, groups) in enumerate(batches):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        s = model(*inputs)
        total = w.combine(_losses(s, labels), StepContext(t, 0, model, s, labels, inputs,
                                                          groups))
        if t % 3 == 0:           # refreshed to this step's parameters, before the update
            for n, p in before.items():
                torch.testing.assert_close(w._snapshot[n], p, rtol=0, atol=0)
        held.append({n: v.clone() for n, v in w._snapshot.items()})
        opt.zero_grad()
        total.backward()
        opt.step()
    for t in (1, 2):             # kept between refreshes
        for n in held[0]:
            torch.testing.assert_close(held[t][n], held[0][n], rtol=0, atol=0)
    assert not torch.equal(held[3]["lin.weight"], held[0]["lin.weight"])
    # the snapshot equal to the current model (no update since the refresh): all ones
    inputs, labels, groups = batches[0]
    w2 = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=5, normalize=False)
    s = model(*inputs)
    w2.combine(_losses(s, labels), StepContext(0, 0, model, s, labels, inputs, groups))
    w2.combine(_losses(s, labels), StepContext(1, 0, model, s, labels, inputs, groups))
    np.testing.assert_array_equal(w2.weights().numpy(), np.ones(K))


def test_every_keeps_the_weights_between_recomputations():
    torch.manual_seed(2)
    model = Tiny()
    batches = _batches(8)
    w = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=2, every=3, clip=(1e-3, 1e3))
    ws, params = _drive(w, model, batches)
    for t in range(1, 8):
        if t % 3 == 0:
            ref = _oracle(model, params[_compared_step(t, 2)], params[t], batches[t],
                          k=100, clip=(1e-3, 1e3))
            np.testing.assert_allclose(ws[t].numpy(), ref, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(ws[t].numpy(), ws[t - 1].numpy())
    assert not np.allclose(ws[3].numpy(), 1.0)


def test_ratio_rules_clip_and_normalization():
    w = SelfEvolvingWeighting(["a", "b", "c", "d", "e", "f"], clip=(0.25, 4.0))
    labels = torch.tensor([[1, 1, 0, 1, 1, 1], [0, 0, 0, 0, 1, 0]], dtype=torch.float32)
    prev = torch.tensor([[2.0, 1.0, 0.7, 0.0, 9.0, 0.1]], dtype=torch.float64)
    cur = torch.tensor([[1.0, 0.0, 0.3, 0.0, 1.0, 1.0]], dtype=torch.float64)
    r = w.ratios(prev, cur, labels)[0].tolist()
    # ratio; current 0 -> upper clip; no positives -> 1; both 0 -> 1; clipped above; below
    assert r == pytest.approx([2.0, 4.0, 1.0, 1.0, 4.0, 0.25])
    # AUC: a column with one class only has no signal
    wa = SelfEvolvingWeighting(["a", "b"], metric="auc", clip=(0.1, 10.0))
    la = torch.tensor([[1, 1], [0, 1]], dtype=torch.float32)
    r = wa.ratios(torch.tensor([[0.6, 0.2]], dtype=torch.float64),
                  torch.tensor([[0.8, 0.9]], dtype=torch.float64), la)[0].tolist()
    assert r == pytest.approx([0.75, 1.0])
    # in training: every weight within the clip without normalization, mean 1 with it
    batches = _batches(8)
    for normalize in (False, True):
        torch.manual_seed(3)
        sw = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=4, k=5, clip=(0.8, 1.25),
                                   normalize=normalize)
        ws = torch.stack(_drive(sw, Tiny(), batches, lr=5.0)[0]).numpy()
        if normalize:
            np.testing.assert_allclose(ws.mean(1), 1.0, rtol=1e-6)
        else:
            assert (ws >= 0.8 - 1e-7).all() and (ws <= 1.25 + 1e-7).all()
            assert np.isclose(ws, 0.8).any() or np.isclose(ws, 1.25).any()   # clip reached


def test_objective_without_positives_gets_raw_weight_one():
    torch.manual_seed(4)
    model = Tiny()
    batches = _batches(6, empty_col=1)
    w = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=2, clip=(1e-3, 1e3),
                              normalize=False)
    ws = torch.stack(_drive(w, model, batches)[0]).numpy()
    np.testing.assert_array_equal(ws[:, 1], 1.0)
    assert not np.allclose(ws[:, [0, 2]], 1.0)


def test_dropout_model_compares_both_models_in_eval_mode():
    torch.manual_seed(5)
    model = Tiny(dropout=0.5)
    batches = _batches(5)
    w = SelfEvolvingWeighting(["a", "b", "c"], refresh_every=2, clip=(1e-3, 1e3))
    ws, params = _drive(w, model, batches)
    assert model.training
    for t in range(1, 5):
        ref = _oracle(model, params[_compared_step(t, 2)], params[t], batches[t], k=100,
                      clip=(1e-3, 1e3))
        np.testing.assert_allclose(ws[t].numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["dcg", "auc"])
def test_population_members_equal_single_models(metric):
    P, steps = 4, 7
    objectives = ["a", "b", "c"]
    params = {"metric": metric, "refresh_every": 3, "k": 10, "clip": [1e-3, 1e3]}
    pop = PopTiny(P)
    stacked = SelfEvolvingWeighting.stack(
        [build_weighting("self_evolving", objectives, params) for _ in range(P)])
    assert stacked.members == P and stacked.weights().shape == (P, K)
    batches = _batches(steps, seed=7)
    opt = torch.optim.SGD(pop.parameters(), lr=2.0)
    pop_ws, traj = [], []
    for t, (inputs, labels, groups) in enumerate(batches):
        traj.append((pop.W.detach().clone(), pop.b.detach().clone()))
        s = pop(*inputs)
        losses = _losses(s, labels)
        assert losses.shape == (P, K)
        total = stacked.combine(losses, StepContext(t, 0, pop, s, labels, inputs, groups))
        opt.zero_grad()
        total.backward()
        opt.step()
        pop_ws.append(stacked.weights())
    pop_ws = torch.stack(pop_ws)                                      # (steps, P, K)
    for p in range(P):               # member p alone, replaying its own trajectory
        single = build_weighting("self_evolving", objectives, params)
        for t, (inputs, labels, groups) in enumerate(batches):
            m = Member(traj[t][0][p], traj[t][1][p])
            s = m(*inputs)
            single.combine(_losses(s, labels), StepContext(t, 0, m, s, labels, inputs,
                                                           groups))
            torch.testing.assert_close(pop_ws[t, p], single.weights(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pop_ws[-1], torch.ones(P, K))
    assert not torch.allclose(pop_ws[-1][0], pop_ws[-1][1])          # members differ
    with pytest.raises(ValueError, match="weighting.refresh_every differs"):
        SelfEvolvingWeighting.stack([build_weighting("self_evolving", objectives, params),
                                     build_weighting("self_evolving", objectives,
                                                     {**params, "refresh_every": 2})])


def test_state_dict_resumes_exactly():
    torch.manual_seed(6)
    model = Tiny()
    batches = _batches(10)
    opts = {"refresh_every": 4, "clip": (1e-3, 1e3)}
    a = SelfEvolvingWeighting(["a", "b", "c"], **opts)
    opt = torch.optim.SGD(model.parameters(), lr=2.0)

    def step(w, m, o, t):
        inputs, labels, groups = batches[t]
        s = m(*inputs)
        total = w.combine(_losses(s, labels), StepContext(t, 0, m, s, labels, inputs, groups))
        o.zero_grad()
        total.backward()
        o.step()
        return w.weights()

    for t in range(6):
        step(a, model, opt, t)
    state = copy.deepcopy(a.state_dict())
    assert all(v.device.type == "cpu" for v in state["snapshot"].values())
    model_b = copy.deepcopy(model)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=2.0)
    b = SelfEvolvingWeighting(["a", "b", "c"], **opts)
    b.load_state_dict(state)
    np.testing.assert_array_equal(b.weights().numpy(), a.weights().numpy())
    for t in range(6, 10):           # step 6 and 7 compare with the snapshot of step 4
        torch.testing.assert_close(step(b, model_b, opt_b, t), step(a, model, opt, t),
                                   rtol=0, atol=0)
    assert not torch.allclose(a.weights(), torch.ones(K))          # the case tests something


def test_the_weighting_in_the_training_loop(small_dataset):
    from trainables.loop import train_loop_per_worker
    hist = train_loop_per_worker({
        "data": {"path": str(small_dataset)}, "model": {"family": "mlp"},
        "loss": {"kind": "bce"},
        "weighting": {"kind": "self_evolving", "refresh_every": 3, "clip": [0.2, 5.0]},
        "optim": {"epochs": 2, "batch_size": 4096, "lr": 0.01},
        "run": {"verbose": False, "device": "cpu"}})
    objectives = ["click", "long_view", "like", "follow", "buy"]
    for h in hist:
        w = np.array([h[f"weight/{o}"] for o in objectives])
        assert np.isfinite(w).all() and (w > 0).all()
        assert w.mean() == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose([hist[-1][f"weight/{o}"] for o in objectives], 1.0)


@pytest.mark.parametrize("params,pattern", [
    ({"metric": "ndcg"}, r"weighting\.metric must be one of"),
    ({"k": 0}, r"weighting\.k must be an integer >= 1, got 0"),
    ({"k": 2.5}, r"weighting\.k must be an integer"),
    ({"clip": [0.0, 2.0]}, r"weighting\.clip = \[0\.0, 2\.0\]: need 0 < low <= high"),
    ({"clip": [2.0, 1.0]}, r"weighting\.clip = \[2\.0, 1\.0\]"),
    ({"clip": [0.5, float("inf")]}, r"weighting\.clip.*finite"),
    ({"clip": 2.0}, r"weighting\.clip must be a pair"),
    ({"clip": [0.1, 0.2, 0.3]}, r"weighting\.clip must be a pair"),
    ({"refresh_every": 0}, r"weighting\.refresh_every must be an integer >= 1, got 0"),
    ({"every": 0}, r"weighting\.every must be an integer >= 1"),
    ({"normalize": "yes"}, r"weighting\.normalize must be true or false"),
    ({"metric": "auc", "per_request": True}, r"weighting\.per_request applies to metric"),
    ({"refresh": 3}, r"has no parameter\(s\) refresh"),
])
def test_parameter_errors(params, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_weighting("self_evolving", ["a", "b"], params)


def test_per_request_needs_request_ids():
    model = Tiny()
    (inputs, labels, _), = _batches(1)
    w = SelfEvolvingWeighting(["a", "b", "c"], per_request=True)
    s = model(*inputs)
    w.combine(_losses(s, labels), StepContext(0, 0, model, s, labels, inputs, None))
    with pytest.raises(ValueError, match="per_request needs the batch's request ids"):
        w.combine(_losses(s, labels), StepContext(1, 0, model, s, labels, inputs, None))
