"""EMER (docs/DESIGN.md, "EMER"): request batching in the loop, the within-request pairwise losses
against brute force, IPUT, the transformer model (order, equivariance, independence across
requests, its attention against nn.TransformerEncoderLayer), populations, and training."""
from __future__ import annotations

import math

import pytest
import torch

import trainables.loop as loop
from trainables.losses import get_loss, loss_params
from trainables.losses.emer import emer, emer_posterior, emer_prior, iput, within_request_pairs
from trainables.models import FeatureSpec, build_model
from trainables.models.emer import _EncoderLayer, normalized_ranks
from trainables.requests import (RequestIndex, RequestPopulationModel, chunk_bounds,
                                 request_layout, shard_requests)
from trainables.weighting import build_weighting

from .conftest import OBJECTIVES

SPEC = FeatureSpec((("feat_a", 5), ("feat_b", 3)), ("feat_x",))


def _batch(n=60, k=3, requests=7, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, k, generator=g, dtype=dtype)
    labels = (torch.rand(n, k, generator=g) < torch.tensor([0.5, 0.3, 0.2])[:k]).to(dtype)
    cat = torch.stack([torch.randint(0, 5, (n,), generator=g),
                       torch.randint(0, 3, (n,), generator=g)], 1)
    num = torch.randn(n, 1, generator=g, dtype=dtype)
    groups = torch.randint(0, requests, (n,), generator=g) * 7 + 100   # ids, not 0..R-1
    return scores, labels, cat, num, groups


# --------------------------------------------------------------------------- batching
def test_request_batches_hold_whole_requests_and_every_row_once():
    g = torch.Generator().manual_seed(0)
    request = torch.repeat_interleave(torch.randperm(300, generator=g),
                                      torch.randint(1, 30, (300,), generator=g))
    request = request[torch.randperm(len(request), generator=g)]      # rows interleaved
    idx = RequestIndex.build(request)
    rows, bounds = idx.epoch_batches(512, torch.Generator().manual_seed(1))
    assert sorted(rows.tolist()) == list(range(len(request)))         # every row, once
    seen = set()
    for a, b in zip(bounds[:-1], bounds[1:]):
        ids = request[rows[a:b]]
        whole = torch.bincount(ids, minlength=300)
        for r in ids.unique().tolist():
            assert whole[r] == (request == r).sum()                      # the whole request
            assert r not in seen
            seen.add(r)
        assert b - a <= 512 + 29                                         # about batch_size
    assert len(bounds) - 1 == math.ceil(len(request) / 512)
    again, same = idx.epoch_batches(512, torch.Generator().manual_seed(1))
    assert torch.equal(again, rows) and same == bounds                  # seeded
    other, _ = idx.epoch_batches(512, torch.Generator().manual_seed(2))
    assert not torch.equal(other, rows)


def test_chunks_and_shards_cut_at_request_boundaries():
    request = torch.tensor([5, 5, 1, 9, 9, 9, 1, 2, 2, 2, 2, 7])
    order, _, counts, starts = request_layout(request)
    bounds = chunk_bounds(starts, len(request), 4)
    cut = set(bounds)
    assert bounds[0] == 0 and bounds[-1] == len(request)
    assert cut <= set(starts.tolist()) | {len(request)}                 # only between requests
    parts = [shard_requests(request, r, 2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == list(range(len(request)))
    assert not set(request[parts[0]].tolist()) & set(request[parts[1]].tolist())


def _recorded_batches(monkeypatch, cfg):
    """The request ids and MP scores of every batch the loop trains on."""
    from tests._batches import record_batches
    return record_batches(monkeypatch, cfg)[1]


def _cfg(path, **over):
    cfg = {"data": {"path": str(path)}, "model": {"family": "fusion"},
           "loss": {"kind": "bce"}, "optim": {"epochs": 1, "batch_size": 4096},
           "run": {"verbose": False, "device": "cpu", "gauc": False}}
    for section, values in over.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def test_row_batches_are_a_seeded_permutation_of_every_row(small_dataset, monkeypatch):
    """The batches of a row model and loss: a seeded permutation of the rows cut into
    ceil(rows / batch_size) near-equal batches, so every row is trained each epoch (a
    batch size that divides the rows gives the loop's batches of before, cut every
    batch_size rows)."""
    from trainables.data import load_dataset
    seen = _recorded_batches(monkeypatch, _cfg(small_dataset))
    train = load_dataset(small_dataset, splits=["train"]).tensors("train")
    gen = torch.Generator().manual_seed(0 * 1_000_003 + 0)
    perm = torch.randperm(len(train), generator=gen)
    n, steps = len(train), math.ceil(len(train) / 4096)
    assert len(seen) == steps and n % 4096             # a partial batch is trained too
    for b, (_, groups, scores) in enumerate(seen):
        idx = perm[b * n // steps:(b + 1) * n // steps]
        assert torch.equal(groups, train.request[idx]) and torch.equal(scores, train.scores[idx])
    assert sum(len(g) for _, g, _ in seen) == n


@pytest.mark.parametrize("over,epochs", [
    ({"loss": {"kind": "emer_posterior"}}, 2),                                   # loss needs
    ({"model": {"family": "emer", "d_model": 8, "heads": 2, "layers": 1}}, 1)],  # model needs
    ids=["loss", "model"])
def test_loop_batches_hold_whole_requests(small_dataset, monkeypatch, over, epochs):
    from trainables.data import load_dataset
    seen = _recorded_batches(monkeypatch, _cfg(small_dataset, optim={"epochs": epochs}, **over))
    train = load_dataset(small_dataset, splits=["train"]).tensors("train")
    sizes = torch.bincount(train.request)
    for epoch in range(epochs):
        batches = [(g, s) for e, g, s in seen if e == epoch]
        ids = torch.cat([g for g, _ in batches])
        assert len(ids) == len(train)                                    # every row once
        assert torch.equal(torch.bincount(ids, minlength=len(sizes)), sizes)
        for g, _ in batches:                                             # whole requests
            assert torch.equal(torch.bincount(g, minlength=len(sizes))[g], sizes[g])
            assert len(g) <= 4096 + int(sizes.max())
        rows = torch.cat([s for _, s in batches])                        # the same rows
        assert torch.equal(torch.unique(rows, dim=0), torch.unique(train.scores, dim=0))
    if epochs == 2:
        first = [g for e, g, _ in seen if e == 0]
        second = [g for e, g, _ in seen if e == 1]
        assert not torch.equal(first[0], second[0])                      # reshuffled per epoch


def test_the_loop_passes_data_to_losses_that_name_it():
    assert loop.loss_data(emer_prior) == ("groups", "mp_scores", "duration")
    assert loop.loss_data(emer_posterior) == ("groups",)
    assert loop.loss_data(get_loss("bce")) == ()
    assert "groups" not in loss_params("emer_prior") and "mp_scores" not in loss_params("emer")


# --------------------------------------------------------------------------- losses
def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _brute(s, y, g, key, mode):
    """Python double loop over ordered pairs (i, j) of the same request."""
    n, k = y.shape
    s, y, g, key = s.tolist(), y.tolist(), g.tolist(), key.tolist()
    out = []
    if mode == "count":
        c = [sum(row) for row in y]
        total, pairs = [0.0] * k, 0
        for i in range(n):
            for j in range(n):
                if g[i] == g[j] and c[i] > c[j]:
                    pairs += 1
                    favor = [q for q in range(k) if y[i][q] > y[j][q]]
                    for q in favor:
                        total[q] += _softplus(s[j] - s[i]) / len(favor)
        return torch.tensor([t / max(pairs, 1) for t in total], dtype=torch.float64)
    for q in range(k):
        total, pairs = 0.0, 0
        for i in range(n):
            for j in range(n):
                if g[i] == g[j] and key[i][q] > key[j][q]:
                    total += _softplus(s[j] - s[i])
                    pairs += 1
        out.append(total / pairs if pairs else 0.0)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(3))
def test_losses_equal_brute_force(seed):
    mp, y, _, _, groups = _batch(n=40, k=3, requests=5, seed=seed, dtype=torch.float64)
    mp = (mp * 4).round() / 4                                    # ties: they make no pair
    s = torch.randn(40, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    prior = _brute(s, y, groups, mp, "objective")
    by_label = _brute(s, y, groups, y, "objective")
    by_count = _brute(s, y, groups, y, "count")
    tol = dict(rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(emer_prior(s, y, groups, mp), prior, **tol)
    torch.testing.assert_close(emer_posterior(s, y, groups), by_label, **tol)
    torch.testing.assert_close(emer_posterior(s, y, groups, pairs="count"), by_count, **tol)
    torch.testing.assert_close(emer(s, y, groups, mp, prior_weight=0.3),
                               by_label + 0.3 * prior, **tol)
    # eq. 1: the "count" losses sum to the mean over the count-ordered pairs D
    c = y.sum(1)
    d = [(i, j) for i in range(40) for j in range(40) if groups[i] == groups[j] and c[i] > c[j]]
    eq1 = sum(_softplus(float(s[j] - s[i])) for i, j in d) / len(d)
    assert emer_posterior(s, y, groups, pairs="count").sum().item() == pytest.approx(eq1, 1e-12)
    # no groups: the batch is one request; without MP scores the prior orders by labels
    torch.testing.assert_close(emer_prior(s, y), _brute(s, y, torch.zeros(40), y, "objective"),
                               **tol)


@pytest.mark.parametrize("name", ["emer_prior", "emer_posterior", "emer"])
def test_population_form_equals_row_by_row(name):
    mp, y, _, _, groups = _batch(n=50, k=3, requests=6, dtype=torch.float64)
    s = torch.randn(4, 50, generator=torch.Generator().manual_seed(3), dtype=torch.float64,
                    requires_grad=True)
    loss = get_loss(name)
    kw = {"mp_scores": mp} if name != "emer_posterior" else {"pairs": "count"}
    batched = loss(s, y, groups, **kw)
    rows = torch.stack([loss(s[i], y, groups, **kw) for i in range(4)])
    assert batched.shape == (4, 3)
    torch.testing.assert_close(batched, rows, rtol=1e-9, atol=1e-12)
    w = torch.rand(4, 3, dtype=torch.float64)
    gb, = torch.autograd.grad((batched * w).sum(), s)
    gr, = torch.autograd.grad((rows * w).sum(), s)
    torch.testing.assert_close(gb, gr, rtol=1e-9, atol=1e-12)
    # gradcheck on a small batch of 3 requests
    t = s[:2, :12].detach().clone().requires_grad_(True)
    kw12 = {k: v[:12] if torch.is_tensor(v) else v for k, v in kw.items()}
    assert torch.autograd.gradcheck(lambda x: loss(x, y[:12], groups[:12] % 3, **kw12), (t,))


def test_pairs_stay_inside_requests_exact_and_sampled():
    groups = torch.tensor([3, 8, 3, 8, 8, 3, 8, 1, 8])       # sizes 3, 5, 1: 3 + 10 pairs
    i, j = within_request_pairs(groups, 9, 1000)
    pairs = {tuple(sorted(p)) for p in zip(i.tolist(), j.tolist())}
    assert len(i) == 13 and len(pairs) == 13
    assert (groups[i] == groups[j]).all()
    counts = {}
    torch.manual_seed(0)
    for _ in range(600):
        i, j = within_request_pairs(groups, 9, 10)            # 13 pairs > 10: sampled
        assert len(i) <= 10 and (groups[i] == groups[j]).all() and (i != j).all()
        for p in zip(i.tolist(), j.tolist()):
            counts[tuple(sorted(p))] = counts.get(tuple(sorted(p)), 0) + 1
    assert set(counts) == pairs
    mean = sum(counts.values()) / 13
    assert all(abs(c - mean) < 0.2 * mean for c in counts.values())   # uniform over pairs


def test_sampled_loss_close_to_exact():
    mp, y, _, _, groups = _batch(n=600, k=3, requests=6, seed=4)
    s = torch.randn(600, generator=torch.Generator().manual_seed(4))
    exact = emer_posterior(s, y, groups)
    torch.manual_seed(0)
    sampled = emer_posterior(s, y, groups, max_pairs=20000)   # of ~30k pairs
    torch.testing.assert_close(sampled, exact, rtol=0.03, atol=0.01)


def test_iput_orders_the_prior_by_pxtr_per_unit_time():
    s = torch.tensor([0.0, 1.0], dtype=torch.float64)
    mp = torch.tensor([[0.8, 0.5], [0.4, 0.5]], dtype=torch.float64)   # row 0 ahead on pxtr
    y = torch.zeros(2, 2, dtype=torch.float64)
    dur = torch.tensor([20.0, 5.0], dtype=torch.float64)   # but row 1 ahead per second
    torch.testing.assert_close(iput(mp, dur), mp / dur[:, None])
    plain = emer_prior(s, y, None, mp)
    per_time = emer_prior(s, y, None, mp, dur, use_iput=True, iput_objectives=[0])
    assert plain[0] == pytest.approx(_softplus(1.0))
    assert per_time[0] == pytest.approx(_softplus(-1.0))
    assert plain[1] == 0 and per_time[1] == 0               # tie in column 1, not converted
    with pytest.raises(ValueError, match="duration"):
        emer_prior(s, y, None, mp, use_iput=True)
    with pytest.raises(ValueError, match="iput_objectives"):
        emer_prior(s, y, None, mp, dur, use_iput=True, iput_objectives=[2])
    with pytest.raises(ValueError, match="pairs must be one of"):
        emer_posterior(s, y, pairs="all")


# --------------------------------------------------------------------------- model
def test_normalized_ranks_equal_brute_force():
    scores, _, _, _, groups = _batch(n=50, k=3)
    scores[5, 0] = scores[7, 0] = scores[9, 0]               # a tie
    groups[5] = groups[7] = groups[9]
    nr = normalized_ranks(scores, *request_layout(groups))
    for i in range(50):
        same = groups == groups[i]
        for k in range(3):
            want = (1 + int((scores[same, k] > scores[i, k]).sum())) / int(same.sum())
            assert nr[i, k].item() == pytest.approx(want)


@pytest.mark.parametrize("max_candidates", [64, 4], ids=["whole", "pieces"])
def test_model_order_equivariance_and_independence(max_candidates):
    scores, _, cat, num, groups = _batch(n=60, requests=5)
    torch.manual_seed(0)
    m = build_model("emer", 3, SPEC, {"max_candidates": max_candidates, "d_model": 16})
    out = m(scores, cat, num, groups)
    assert out.shape == (60,) and torch.isfinite(out).all()
    # original order: scoring the rows sorted by request gives the same scores, permuted
    o = torch.argsort(groups)
    torch.testing.assert_close(m(scores[o], cat[o], num[o], groups[o]), out[o])
    # permutation-equivariant (rows shuffled inside requests and across)
    p = torch.randperm(60, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(m(scores[p], cat[p], num[p], groups[p]), out[p])
    # a request's scores ignore the other requests' rows (changed, or dropped)
    mine = groups == groups[0]
    s2 = torch.where(mine[:, None], scores, torch.rand(60, 3))
    torch.testing.assert_close(m(s2, cat, num, groups)[mine], out[mine])
    torch.testing.assert_close(m(scores[mine], cat[mine], num[mine], groups[mine]), out[mine])
    # ... while its own rows matter
    s3 = scores.clone()
    s3[mine.nonzero()[0], 0] += 0.3
    assert not torch.allclose(m(s3, cat, num, groups)[mine], out[mine])


@pytest.mark.parametrize("training", [True, False])
def test_attention_layer_equals_torch_transformer_encoder_layer(training):
    torch.manual_seed(0)
    ours = _EncoderLayer(16, 4, 0.0)
    ref = torch.nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=True, norm_first=True)
    state = {"self_attn.in_proj_weight": ours.in_proj.weight,
             "self_attn.in_proj_bias": ours.in_proj.bias,
             "self_attn.out_proj.weight": ours.out_proj.weight,
             "self_attn.out_proj.bias": ours.out_proj.bias}
    state.update({k: v for k, v in ours.state_dict().items()
                  if k.startswith(("linear", "norm"))})
    ref.load_state_dict(state)
    ours.train(training)
    ref.train(training)
    h = torch.randn(6, 5, 16)
    pad = torch.zeros(6, 5, dtype=torch.bool)
    pad[2, 3:] = pad[4, 1:] = True
    bias = torch.zeros(6, 5).masked_fill(pad, float("-inf"))[:, None, None, :]
    with torch.set_grad_enabled(training):
        want = ref(h, src_key_padding_mask=pad)
        got = ours(h, bias)
    torch.testing.assert_close(got[~pad], want[~pad], rtol=1e-5, atol=1e-5)


def test_model_rejects_bad_parameters():
    with pytest.raises(ValueError, match="multiple of model.heads"):
        build_model("emer", 3, SPEC, {"d_model": 10, "heads": 4})
    with pytest.raises(ValueError, match="max_candidates"):
        build_model("emer", 3, SPEC, {"max_candidates": 0})


@pytest.mark.parametrize("chunk", [None, 13])
def test_population_of_two_equals_its_members(chunk):
    scores, labels, cat, num, groups = _batch(n=80, requests=9)
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        members.append(build_model("emer", 3, SPEC, {"d_model": 16, "max_candidates": 6}))
    pop = RequestPopulationModel(members, chunk_rows=chunk)
    out = pop(scores, cat, num, groups)
    want = torch.stack([m(scores, cat, num, groups) for m in members])
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    # each member's gradient is its own
    w = torch.randn(2, 80)
    (out * w).sum().backward()
    for i, m in enumerate(members):
        (m(scores, cat, num, groups) * w[i]).sum().backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(getattr(pop, name.replace(".", "__")).grad[i], p.grad,
                                       rtol=1e-4, atol=1e-5)


def test_population_steps_equal_members_stepping_alone():
    """make_step on a population of 2 emer models with emer_prior (groups and MP scores
    reach the loss) equals each member's own steps."""
    scores, labels, cat, num, groups = _batch(n=90, requests=8)
    loss = get_loss("emer_prior")
    objs = ["a", "b", "c"]
    weights = [{"a": 1.0, "b": 0.5, "c": 0.1}, {"a": 0.2, "b": 1.0, "c": 2.0}]

    def build(seed):
        torch.manual_seed(seed)
        return build_model("emer", 3, SPEC, {"d_model": 8, "heads": 2, "layers": 1})
    # SGD: Adam's first steps are ~lr * sign(gradient), and some gradients are exactly 0 in
    # exact arithmetic (the key bias: softmax ignores a shift shared by all keys), so float
    # noise there would decide the sign
    optim = {"optimizer": "sgd", "lr": 5e-2, "weight_decay": 0.0}
    alone = []
    for seed, w in enumerate(weights):
        m = build(seed)
        step = loop.make_step(m, loss, {}, build_weighting("static", objs, {"weights": w}),
                              loop.make_optimizer(m.parameters(), optim))
        for t in range(2):
            step(scores, labels, cat, num, t, 0, groups)
        alone.append(m)
    pop = RequestPopulationModel([build(s) for s in range(2)])
    wt = type(build_weighting("static", objs)).stack(
        [build_weighting("static", objs, {"weights": w}) for w in weights])
    step = loop.make_step(pop, loss, {}, wt, loop.make_optimizer(pop.parameters(), optim))
    for t in range(2):
        step(scores, labels, cat, num, t, 0, groups)
    for i, m in enumerate(alone):
        for name, p in m.named_parameters():
            torch.testing.assert_close(getattr(pop, name.replace(".", "__"))[i].detach(),
                                       p.detach(), rtol=1e-4, atol=1e-5)


def test_self_evolving_weights_rescore_with_the_request_ids():
    """StepContext.inputs carries the request ids, so a weighting that re-runs the model
    (self_evolving's snapshot) scores the same requests."""
    scores, labels, cat, num, groups = _batch(n=60, requests=6)
    torch.manual_seed(0)
    m = build_model("emer", 3, SPEC, {"d_model": 8, "heads": 2, "layers": 1})
    w = build_weighting("self_evolving", ["a", "b", "c"], {"refresh_every": 1,
                                                          "per_request": True})
    step = loop.make_step(m, get_loss("emer_posterior"), {}, w,
                          loop.make_optimizer(m.parameters(), {"optimizer": "adam", "lr": 1e-2,
                                                               "weight_decay": 0.0}))
    for t in range(3):
        assert torch.isfinite(step(scores, labels, cat, num, t, 0, groups)).all()
    assert torch.isfinite(w.weights()).all()


# --------------------------------------------------------------------------- training
def test_emer_trains_on_synthetic_requests(small_dataset):
    cfg = {"data": {"path": str(small_dataset)},
           "model": {"family": "emer", "d_model": 16, "layers": 1},
           "loss": {"kind": "emer_posterior"}, "optim": {"epochs": 2, "batch_size": 4096,
                                                         "lr": 3e-3},
           "run": {"verbose": False, "device": "cpu", "request_gauc": True}}
    hist = loop.train_loop_per_worker(cfg)
    assert [h["epoch"] for h in hist] == [1, 2]
    last = hist[-1]
    for o in OBJECTIVES:
        assert math.isfinite(last[f"auc/{o}"]) and math.isfinite(last[f"gauc/{o}"])
        assert math.isfinite(last[f"loss/{o}"])
    for o in ("click", "long_view", "like"):     # the objectives with many positives
        for metric in ("auc", "gauc", "request_gauc"):
            assert last[f"{metric}/{o}"] > 0.55, (o, last)


def test_predict_cuts_batches_at_request_boundaries(small_dataset):
    from trainables.data import load_dataset
    ds = load_dataset(small_dataset, splits=["valid"])
    valid = ds.tensors("valid")
    torch.manual_seed(0)
    m = build_model("emer", len(ds.objectives),
                    FeatureSpec(tuple(ds.categorical.items()), tuple(ds.numeric)),
                    {"d_model": 8, "heads": 2, "layers": 1})
    whole = loop.predict(m, valid, 10 ** 7)
    assert whole.shape == (len(valid),)
    torch.testing.assert_close(loop.predict(m, valid, 777), whole)
    rows = (valid.request == valid.request[0]).nonzero().flatten()        # one request alone
    torch.testing.assert_close(m(valid.scores[rows], valid.cat[rows], valid.num[rows],
                                 valid.request[rows]), whole[rows])


# --------------------------------------------------------------------------- IPUT wiring
def test_iput_prior_is_exactly_the_paper_example():
    """EMER's example (eq. 10): candidates (p_watchtime, p_interaction) = (20 s, 0.8),
    (10 s, 0.7), (5 s, 0.4). By pxtr the order is 1 > 2 > 3; by IPUT (0.04, 0.07, 0.08)
    it is 3 > 2 > 1. Objective 0 uses IPUT, objective 1 (not listed) keeps its pxtr."""
    s = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    mp = torch.tensor([[0.8, 0.8], [0.7, 0.7], [0.4, 0.4]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    dur = torch.tensor([20.0, 10.0, 5.0])
    sp = _softplus
    by_pxtr = (sp(-1.0) + sp(-2.0) + sp(-1.0)) / 3        # pairs (1,2) (1,3) (2,3), i first
    by_iput = (sp(1.0) + sp(2.0) + sp(1.0)) / 3           # the same pairs, j first
    got = emer_prior(s, y, None, mp, dur, use_iput=True, iput_objectives=[0])
    torch.testing.assert_close(got, torch.tensor([by_iput, by_pxtr], dtype=torch.float64))
    torch.testing.assert_close(emer_prior(s, y, None, mp, dur),
                               torch.tensor([by_pxtr, by_pxtr], dtype=torch.float64))
    post = emer_posterior(s, y)
    torch.testing.assert_close(emer(s, y, None, mp, dur, prior_weight=0.5, use_iput=True,
                                    iput_objectives=[0]), post + 0.5 * got)


def test_tensor_split_carries_the_duration_column(kuairand_like_dataset, small_dataset):
    import pyarrow.parquet as pq
    from trainables.data import load_dataset
    ds = load_dataset(kuairand_like_dataset, splits=["train"])
    t = ds.tensors("train")
    want = pq.read_table(kuairand_like_dataset / "train.parquet").column("duration").to_numpy()
    assert t.duration.dtype == torch.float32
    torch.testing.assert_close(t.duration, torch.tensor(want))
    idx = torch.tensor([5, 0, 7])
    torch.testing.assert_close(t.take(idx).duration, t.duration[idx])
    torch.testing.assert_close(t.shard(1, 3).duration, t.duration[1::3])
    plain = load_dataset(small_dataset, splits=["valid"]).tensors("valid")
    assert plain.duration is None and plain.take(idx).duration is None
    assert plain.shard(0, 2).duration is None


@pytest.mark.parametrize("value", [0.0, float("nan"), -3.0])
def test_loader_rejects_a_duration_that_cannot_divide(kuairand_like_dataset, tmp_path, value):
    import shutil
    import pyarrow as pa
    import pyarrow.parquet as pq
    from trainables.data import DatasetError, load_dataset
    bad = tmp_path / "ds"
    shutil.copytree(kuairand_like_dataset, bad)
    t = pq.read_table(bad / "valid.parquet")
    dur = t.column("duration").to_numpy().copy()
    dur[4] = value
    i = t.schema.get_field_index("duration")
    pq.write_table(t.set_column(i, "duration", pa.array(dur)), bad / "valid.parquet")
    with pytest.raises(DatasetError, match=r"valid\.parquet: column 'duration' has 1 value\(s\) "
                                           r"that are not finite and > 0 \(first at row 4"):
        load_dataset(bad)


def test_the_loop_passes_duration_and_objective_names_to_the_loss(kuairand_like_dataset,
                                                                   monkeypatch):
    from trainables.data import load_dataset
    seen = []
    real = loop.get_loss

    def recording(name):
        fn = real(name)

        def emer_recorded(scores, labels, groups=None, mp_scores=None, duration=None, **hp):
            seen.append((groups.clone(), duration.clone(), hp))
            return fn(scores, labels, groups, mp_scores, duration, **hp)
        return emer_recorded
    monkeypatch.setattr(loop, "get_loss", recording)
    objs = ["click", "long_view", "like", "follow", "comment"]
    cfg = _cfg(kuairand_like_dataset, data={"objectives": objs},
               loss={"kind": "emer", "use_iput": True, "iput_objectives": ["follow", "like"]},
               optim={"batch_size": 2048})
    hist = loop.train_loop_per_worker(cfg)
    assert math.isfinite(hist[-1]["loss/follow"])
    train = load_dataset(kuairand_like_dataset, splits=["train"]).tensors("train")
    assert all(hp["iput_objectives"] == [3, 2] and hp["use_iput"] for _, _, hp in seen)
    # every row's own duration, each row once per epoch
    rows = {int(r): set() for r in torch.unique(train.request)}
    for r, d in zip(train.request.tolist(), train.duration.tolist()):
        rows[r].add(d)
    got = torch.cat([d for _, d, _ in seen])
    assert len(got) == len(train)
    torch.testing.assert_close(got.sort().values, train.duration.sort().values)
    for g, d, _ in seen:
        assert all(dd in rows[gg] for gg, dd in zip(g.tolist(), d.tolist()))


def test_use_iput_without_a_duration_column_stops_before_training(small_dataset):
    cfg = _cfg(small_dataset, loss={"kind": "emer", "use_iput": True})
    with pytest.raises(ValueError, match=r"loss\.use_iput = true needs the dataset's "
                                         r"'duration' column .* has none"):
        loop.train_loop_per_worker(cfg)
    cfg = _cfg(small_dataset, loss={"kind": "emer", "iput_objectives": ["nope"]})
    with pytest.raises(ValueError, match=r"loss\.iput_objectives = \['nope'\]: 'nope' not "
                                         r"among the objectives of the data: click, long_view"):
        loop.train_loop_per_worker(cfg)
