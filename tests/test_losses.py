"""Losses against brute-force formulas, their shared contract, and static weighting."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_auc_score

from trainables.losses import LOSSES, get_loss, loss_params, resolve_loss_params
from trainables.weighting import StepContext, build_weighting

RANKING = ["rank_auc", "pairwise_logistic", "pairwise_square", "aucm"]


def _batch(n=40, k=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, generator=g, dtype=dtype)
    labels = (torch.rand(n, k, generator=g) < torch.tensor([0.5, 0.2, 0.1])[:k]).to(dtype)
    labels[0] = 1.0   # both classes in every column
    labels[1] = 0.0
    return scores, labels


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_contract_shapes_and_columns(name):
    loss = get_loss(name)
    scores, labels = _batch(n=40, k=3)   # 40 rows: far below pairwise_logistic's max_pairs
    torch.manual_seed(0)
    one = loss(scores, labels[:, 0])
    assert isinstance(one, torch.Tensor) and one.ndim == 0 and torch.isfinite(one)
    many = loss(scores, labels)
    assert many.shape == (3,) and torch.isfinite(many).all()
    for k in range(3):
        torch.testing.assert_close(many[k], loss(scores, labels[:, k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_contract_gradients_finite(name):
    loss = get_loss(name)
    scores, labels = _batch(n=64, k=3, seed=1)
    scores.requires_grad_(True)
    loss(scores, labels).sum().backward()
    assert scores.grad is not None and scores.grad.shape == scores.shape
    assert torch.isfinite(scores.grad).all()
    assert scores.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_contract_gradcheck_float64(name):
    # torchsort's soft_rank has a float64 kernel (checked here too: the dtype round-trips).
    loss = get_loss(name)
    scores, labels = _batch(n=9, k=2, seed=2, dtype=torch.float64)
    scores.requires_grad_(True)
    out = loss(scores, labels)
    assert out.dtype == torch.float64
    assert torch.autograd.gradcheck(lambda s: loss(s, labels), (scores,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_contract_rejects_bad_shapes(name):
    loss = get_loss(name)
    with pytest.raises(ValueError):
        loss(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError):
        loss(torch.zeros(4), torch.zeros(5, 2))


@pytest.mark.parametrize("name", RANKING)
@pytest.mark.parametrize("degenerate", [0.0, 1.0], ids=["no-positives", "no-negatives"])
def test_ranking_loss_zero_when_one_class(name, degenerate):
    loss = get_loss(name)
    scores, labels = _batch(n=30, k=3, seed=3)
    labels[:, 1] = degenerate
    scores.requires_grad_(True)
    out = loss(scores, labels)
    assert out[1].item() == 0.0
    assert out[0].item() != 0.0 and out[2].item() != 0.0
    out.sum().backward()
    assert torch.isfinite(scores.grad).all()
    # the degenerate column itself contributes no gradient
    s2 = scores.detach().clone().requires_grad_(True)
    one = loss(s2, labels[:, 1])
    assert one.item() == 0.0
    one.backward()
    assert torch.isfinite(s2.grad).all() and (s2.grad == 0).all()


# --------------------------------------------------------------------------- rank_auc
@pytest.mark.parametrize("seed", range(3))
def test_rank_auc_small_regularization_is_one_minus_auc(seed):
    rng = np.random.default_rng(seed)
    n = 300
    s = rng.permutation(n).astype(np.float64) * 0.5   # distinct, gaps of 0.5
    y = (rng.random((n, 2)) < [0.3, 0.05]).astype(np.float64)
    y[0] = [1, 1]
    y[1] = [0, 0]
    loss = get_loss("rank_auc")(torch.from_numpy(s), torch.from_numpy(y),
                                regularization_strength=1e-3)
    for k in range(2):
        assert loss[k].item() == pytest.approx(1 - roc_auc_score(y[:, k], s), abs=1e-3)


def test_rank_auc_rejects_bad_params():
    s, y = _batch()
    with pytest.raises(ValueError, match="regularization_strength"):
        get_loss("rank_auc")(s, y, regularization_strength=0.0)
    with pytest.raises(ValueError, match="regularization"):
        get_loss("rank_auc")(s, y, regularization="l1")
    with pytest.raises(ValueError, match="soft_rank_device must be one of"):
        get_loss("rank_auc")(s, y, soft_rank_device="gpu")


# --------------------------------------------------------------------------- pairwise
def _pairs(s, y):
    return [(i, j) for i in range(len(s)) if y[i] == 1 for j in range(len(s)) if y[j] == 0]


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_pairwise_square_brute_force(margin):
    scores, labels = _batch(n=50, k=3, seed=4, dtype=torch.float64)
    got = get_loss("pairwise_square")(scores, labels, margin=margin)
    s = scores.tolist()
    for k in range(3):
        y = labels[:, k].tolist()
        pairs = _pairs(s, y)
        expected = sum((margin - (s[i] - s[j])) ** 2 for i, j in pairs) / len(pairs)
        assert got[k].item() == pytest.approx(expected, rel=1e-9)


def test_pairwise_logistic_brute_force_exact_path():
    scores, labels = _batch(n=50, k=3, seed=5, dtype=torch.float64)
    got = get_loss("pairwise_logistic")(scores, labels)
    s = scores.tolist()
    for k in range(3):
        y = labels[:, k].tolist()
        pairs = _pairs(s, y)
        expected = sum(math.log1p(math.exp(-(s[i] - s[j]))) for i, j in pairs) / len(pairs)
        assert got[k].item() == pytest.approx(expected, rel=1e-9)


def test_pairwise_logistic_sampling_close_to_exact():
    g = torch.Generator().manual_seed(6)
    n = 2_000
    y = (torch.rand(n, generator=g) < 0.3).double()
    s = torch.randn(n, generator=g, dtype=torch.float64) + 0.8 * y
    pos, neg = s[y == 1], s[y == 0]
    assert pos.numel() * neg.numel() > 20_000
    exact = F.softplus(neg[None, :] - pos[:, None]).mean().item()
    loss = get_loss("pairwise_logistic")
    # with max_pairs above the pair count the function computes the exact value
    assert loss(s, y, max_pairs=10**7).item() == pytest.approx(exact, rel=1e-12)
    torch.manual_seed(0)
    a = loss(s, y, max_pairs=20_000).item()
    b = loss(s, y, max_pairs=20_000).item()
    assert a != b                                   # it does sample
    assert a == pytest.approx(exact, rel=0.03)
    assert b == pytest.approx(exact, rel=0.03)
    with pytest.raises(ValueError, match="max_pairs"):
        loss(s, y, max_pairs=0)


@pytest.mark.parametrize("name", ["rank_auc", "pairwise_logistic", "pairwise_square"])
@pytest.mark.parametrize("offset", [100.0, 1000.0])
def test_shift_invariant_losses_accurate_in_float32_far_from_zero(name, offset):
    """These losses depend on score differences only; float32 must not lose that."""
    g = torch.Generator().manual_seed(12)
    n = 1_000
    y = (torch.rand(n, 2, generator=g) < torch.tensor([0.3, 0.05])).float()
    s32 = (torch.randn(n, generator=g) + y[:, 0] + offset).requires_grad_(True)
    s64 = s32.detach().double().requires_grad_(True)   # the same values, exactly
    loss = get_loss(name)
    torch.manual_seed(0)
    l32 = loss(s32, y)
    torch.manual_seed(0)
    l64 = loss(s64, y.double())
    torch.testing.assert_close(l32.double(), l64, rtol=1e-4, atol=1e-6)
    l32.sum().backward()
    l64.sum().backward()
    torch.testing.assert_close(s32.grad.double(), s64.grad, rtol=1e-3, atol=1e-7)


# --------------------------------------------------------------------------- label aggregation
def test_label_aggregation_gradient_equals_mse_to_aggregated_label():
    scores, labels = _batch(n=60, k=3, seed=7, dtype=torch.float64)
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    s1 = scores.clone().requires_grad_(True)
    (get_loss("label_aggregation")(s1, labels) @ w).backward()
    s2 = scores.clone().requires_grad_(True)
    ((s2 - labels @ w) ** 2).mean().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-10, atol=1e-12)


def test_label_aggregation_values():
    scores, labels = _batch(n=20, k=2, seed=8, dtype=torch.float64)
    got = get_loss("label_aggregation")(scores, labels)
    for k in range(2):
        expected = ((scores - labels[:, k]) ** 2).mean()
        torch.testing.assert_close(got[k], expected)


# --------------------------------------------------------------------------- bce
def test_bce_matches_torch():
    scores, labels = _batch(n=50, k=3, seed=9, dtype=torch.float64)
    got = get_loss("bce")(scores, labels, pos_weight=2.5)
    for k in range(3):
        expected = F.binary_cross_entropy_with_logits(
            scores, labels[:, k], pos_weight=torch.tensor(2.5, dtype=torch.float64))
        torch.testing.assert_close(got[k], expected)


# --------------------------------------------------------------------------- aucm
def _aucm_brute(s, y, margin):
    """min_{a,b} max_{alpha>=0} of AUCM's objective, solved numerically, divided by p(1-p)."""
    h = 1.0 / (1.0 + np.exp(-s))
    hp, hn = h[y == 1], h[y == 0]
    p = y.mean()

    def objective(a, b, alpha):
        return p * (1 - p) * (np.mean((hp - a) ** 2) + np.mean((hn - b) ** 2)
                              + 2 * alpha * (margin - hp.mean() + hn.mean()) - alpha ** 2)

    # max over alpha >= 0 (the objective is separable, so alpha's best does not depend on a, b)
    res = minimize_scalar(lambda al: -objective(0.5, 0.5, al), bounds=(0.0, 10.0),
                          method="bounded", options={"xatol": 1e-12})
    alpha = res.x
    # also a fine grid, to guard the optimizer
    grid = np.linspace(0, 3, 300_001)
    alpha_grid = grid[np.argmax(2 * grid * (margin - hp.mean() + hn.mean()) - grid ** 2)]
    assert abs(alpha - alpha_grid) < 1e-4
    a = minimize_scalar(lambda v: objective(v, 0.5, alpha), bounds=(0, 1), method="bounded",
                        options={"xatol": 1e-12}).x
    b = minimize_scalar(lambda v: objective(a, v, alpha), bounds=(0, 1), method="bounded",
                        options={"xatol": 1e-12}).x
    return objective(a, b, alpha) / (p * (1 - p))


@pytest.mark.parametrize("margin,shift", [(1.0, 0.0), (0.5, 1.0), (0.05, 3.0)])
def test_aucm_matches_numerical_min_max(margin, shift):
    rng = np.random.default_rng(10)
    n = 12
    y = np.array([1, 0] * (n // 2), dtype=np.float64)
    s = rng.normal(size=n) + shift * y       # shift 3 with margin 0.05: alpha* = 0 branch
    got = get_loss("aucm")(torch.from_numpy(s), torch.from_numpy(y), margin=margin).item()
    assert got == pytest.approx(_aucm_brute(s, y, margin), rel=1e-6, abs=1e-9)


def test_aucm_rejects_bad_margin():
    s, y = _batch()
    with pytest.raises(ValueError, match="margin"):
        get_loss("aucm")(s, y, margin=0.0)


# --------------------------------------------------------------------------- registry
def test_get_loss_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="nope") as e:
        get_loss("nope")
    for name in LOSSES:
        assert name in str(e.value)


def test_every_registered_loss_resolves():
    for name in LOSSES:
        assert callable(get_loss(name))
        assert isinstance(loss_params(name), dict)


def test_resolve_loss_params():
    assert resolve_loss_params("rank_auc", None) == {"regularization_strength": 1.0,
                                                      "regularization": "l2",
                                                      "soft_rank_device": "auto",
                                                      "soft_rank_impl": "torchsort"}
    assert resolve_loss_params("rank_auc", {"regularization_strength": 0.1}) == \
        {"regularization_strength": 0.1, "regularization": "l2", "soft_rank_device": "auto",
         "soft_rank_impl": "torchsort"}
    assert resolve_loss_params("label_aggregation", {}) == {}
    with pytest.raises(ValueError, match="bogus") as e:
        resolve_loss_params("rank_auc", {"bogus": 1})
    assert "regularization_strength" in str(e.value) and "regularization" in str(e.value)
    with pytest.raises(ValueError, match="allowed: none"):
        resolve_loss_params("label_aggregation", {"x": 1})


# --------------------------------------------------------------------------- static weighting
OBJS = ["click", "like", "buy"]


def _ctx(scores, labels):
    return StepContext(step=0, epoch=0, model=torch.nn.Linear(1, 1), scores=scores,
                       labels=labels)


def test_static_weights_dict_list_none():
    losses = torch.tensor([1.0, 2.0, 4.0])
    ctx = _ctx(torch.zeros(3), torch.zeros(3, 3))
    w = build_weighting("static", OBJS, {"weights": {"buy": 3.0, "click": 1.0, "like": 0.5}})
    torch.testing.assert_close(w.weights(), torch.tensor([1.0, 0.5, 3.0]))
    assert w.combine(losses, ctx).item() == pytest.approx(1 + 1 + 12)
    w = build_weighting("static", OBJS, {"weights": [1.0, 0.5, 3.0]})
    torch.testing.assert_close(w.weights(), torch.tensor([1.0, 0.5, 3.0]))
    w = build_weighting("static", OBJS, None)
    torch.testing.assert_close(w.weights(), torch.ones(3))
    assert w.combine(losses, ctx).item() == pytest.approx(7.0)
    # weights() is a copy: mutating it does not change the weighting
    w.weights()[0] = 100.0
    torch.testing.assert_close(w.weights(), torch.ones(3))


def test_static_weights_normalize_and_dtype():
    w = build_weighting("static", OBJS, {"weights": [1, 1, 2], "normalize": True})
    torch.testing.assert_close(w.weights(), torch.tensor([0.25, 0.25, 0.5]))
    losses = torch.tensor([4.0, 8.0, 2.0], dtype=torch.float64, requires_grad=True)
    out = w.combine(losses, _ctx(torch.zeros(3), torch.zeros(3, 3)))
    assert out.dtype == torch.float64 and out.item() == pytest.approx(4.0)
    out.backward()
    torch.testing.assert_close(losses.grad, torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64))


@pytest.mark.parametrize("weights,pattern", [
    ({"click": 1, "like": 1, "buy": 1, "nope": 1}, "nope"),
    ({"click": 1, "like": 1}, "buy"),
    ({"click": 1, "like": -0.5, "buy": 1}, "like"),
    ([1.0, 1.0, -1.0], "buy"),
    ([0, 0, 0], "all 0"),
    ({"click": 0.0, "like": 0.0, "buy": 0.0}, "all 0"),
    ([1.0, float("nan"), 1.0], "like"),
    ([1.0, 1.0, float("inf")], "buy"),
    ([1.0, 2.0], "2 values for 3"),
    ({"click": "a", "like": 1, "buy": 1}, "click"),
])
def test_static_weights_errors(weights, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_weighting("static", OBJS, {"weights": weights})


def test_weighting_unknown_parameter_and_name():
    with pytest.raises(ValueError, match="bogus") as e:
        build_weighting("static", OBJS, {"bogus": 1})
    assert "weights" in str(e.value) and "normalize" in str(e.value)
    with pytest.raises(ValueError, match="nope"):
        build_weighting("nope", OBJS, {})


def test_static_weighting_drives_label_aggregation():
    """Static weights x label_aggregation = the papers' MSE to the aggregated label."""
    scores, labels = _batch(n=30, k=3, seed=11)
    w = build_weighting("static", OBJS, {"weights": [2.0, 1.0, 1.0], "normalize": True})
    s1 = scores.clone().requires_grad_(True)
    w.combine(get_loss("label_aggregation")(s1, labels), _ctx(s1, labels)).backward()
    s2 = scores.clone().requires_grad_(True)
    ((s2 - labels @ torch.tensor([0.5, 0.25, 0.25])) ** 2).mean().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-5, atol=1e-6)
