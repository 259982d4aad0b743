"""Models: the registry contract for every model, HarmonRank against its literal form,
each ablation switch, the attention matrix."""
from __future__ import annotations

import pytest
import torch

from tests.harmonrank_reference import ReferenceHarmonRank
from trainables.models import MODELS, FeatureSpec, build_model, model_params

SPEC = FeatureSpec((("feat_a", 7), ("feat_b", 3)), ("feat_x",))


def _batch(n=512, k=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, k, generator=g, dtype=dtype)
    cat = torch.stack([torch.randint(0, 7, (n,), generator=g),
                       torch.randint(0, 3, (n,), generator=g)], 1)
    num = torch.randn(n, 1, generator=g, dtype=dtype)
    return scores, cat, num


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_scores_each_row_and_trains(name):
    torch.manual_seed(0)
    model = build_model(name, 4, SPEC)
    scores, cat, num = _batch()
    out = model(scores, cat, num)
    assert out.shape == (512,)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    # every parameter that takes part gets a finite gradient
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_works_without_features(name):
    model = build_model(name, 3, FeatureSpec())
    scores = torch.rand(64, 3)
    out = model(scores, torch.zeros(64, 0, dtype=torch.long), torch.zeros(64, 0))
    assert out.shape == (64,) and torch.isfinite(out).all()


def test_unknown_model_and_parameter_errors_name_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown model family 'transformer'.*harmonrank"):
        build_model("transformer", 3, SPEC)
    with pytest.raises(ValueError, match="d_modle.*allowed:.*d_model"):
        build_model("harmonrank", 3, SPEC, {"d_modle": 8})
    assert model_params("harmonrank")["buckets"] == 300


def test_harmonrank_equals_the_literal_equations():
    """The fused forward pass computes exactly eq. 11-21 as written (float64)."""
    torch.manual_seed(3)
    fast = _perturb(build_model("harmonrank", 5, SPEC, {"d_model": 8, "buckets": 50}).double(),
                    0.3)  # off the init, so no term is trivially small
    ref = ReferenceHarmonRank.from_fast(fast).double()
    scores, cat, num = _batch(k=5, dtype=torch.float64)
    torch.testing.assert_close(fast(scores, cat, num), ref(scores, cat, num), rtol=1e-10,
                               atol=1e-10)
    # and the same gradients with respect to the score embeddings
    fast(scores, cat, num).sum().backward()
    ref(scores, cat, num).sum().backward()
    g_ref = torch.cat([e.weight.grad for e in ref.score_emb])
    torch.testing.assert_close(fast.score_table.grad, g_ref, rtol=1e-9, atol=1e-10)


ABLATIONS = [{"self_attention": False}, {"cross_attention": False}, {"personalized": False},
             {"gate": False}, {"linear": False}, {"relation_aware": False}, {"buckets": 0},
             {"attention_norm": "sigmoid"}, {"self_attention": False, "cross_attention": False}]


def _literal(ref, scores, cat, num, *, x=None, norm="softmax", self_attention=True,
             q_const=None, w_cat=None, b1=None, terms=("s1", "s2", "s3")):
    """HarmonRank's score written term by term from a literal model's parameters, with
    each ablation's replacement spelled out: ``x`` the score encodings (buckets=0),
    ``norm`` A_r's normalization, ``self_attention=False``: x_r = x, ``q_const``: the
    unpersonalized query, ``w_cat``: the w/o-cross-attention linear map of [vec(x_r), P],
    ``terms``: which of s1 (relation-aware), s2 (gate), s3 (linear) are summed."""
    n = scores.shape[0]
    if x is None:
        b = (scores * ref.buckets).long().clamp(0, ref.buckets - 1)
        x = torch.stack([ref.score_emb[m](b[:, m]) for m in range(ref.k)], 1)
    out = scores.new_zeros(n)
    if "s1" in terms:
        if self_attention:
            logits = ref.q_r(x) @ ref.k_r(x).transpose(1, 2) / ref.d ** 0.5
            a_r = torch.softmax(logits, -1) if norm == "softmax" else torch.sigmoid(logits)
            x_r = a_r @ ref.v_r(x)
        else:
            x_r = x
        p = torch.cat([emb(cat[:, i]) for i, emb in enumerate(ref.feat_emb)] + [num], 1)
        if w_cat is not None:
            out = out + torch.cat([x_r.reshape(n, -1), p], 1) @ w_cat + b1
        else:
            q_p = (ref.q_p(p) if q_const is None else q_const.expand(n, -1))[:, None, :]
            a_p = torch.softmax(q_p @ ref.k_p(x_r).transpose(1, 2) / ref.d ** 0.5, -1)
            out = out + ref.out1((a_p @ ref.v_p(x_r))[:, 0, :])[:, 0]
    flat = x.reshape(n, -1)
    if "s2" in terms:
        g = torch.sigmoid(ref.gate(flat))
        out = out + ref.out2((g[:, :, None] * x).reshape(n, -1))[:, 0]
    if "s3" in terms:
        out = out + ref.out3(flat)[:, 0]
    return out


@pytest.mark.parametrize("switch", ABLATIONS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_harmonrank_ablation_computes_exactly_the_ablated_equations(switch):
    """Each ablation drops (or replaces) exactly its part of eq. 11-21: the ablated model,
    holding the full model's parameters for every part it keeps, equals the literal score
    with that part removed (float64), and differs from the full model."""
    torch.manual_seed(0)
    full = _perturb(build_model("harmonrank", 4, SPEC, {"d_model": 8, "buckets": 50}).double(),
                    0.3)
    torch.manual_seed(1)
    ablated = _perturb(build_model("harmonrank", 4, SPEC, {"d_model": 8, "buckets": 50,
                                                           **switch}).double(), 0.3)
    shared = {k: v for k, v in full.state_dict().items()
              if k in ablated.state_dict() and ablated.state_dict()[k].shape == v.shape}
    assert shared                                            # the kept parts: the full model's
    ablated.load_state_dict(shared, strict=False)
    ref = ReferenceHarmonRank.from_fast(full).double()
    scores, cat, num = _batch(k=4, dtype=torch.float64)
    kw = {}
    if switch.get("self_attention") is False:
        kw["self_attention"] = False
    if switch.get("cross_attention") is False:
        kw.update(w_cat=ablated.w_cat, b1=ablated.b1)
    if switch.get("personalized") is False:
        kw["q_const"] = ablated.q_const
    if "attention_norm" in switch:
        kw["norm"] = switch["attention_norm"]
    if switch.get("buckets") == 0:
        kw["x"] = scores[..., None] * ablated.score_w + ablated.score_b
    dropped = {"gate": "s2", "linear": "s3", "relation_aware": "s1"}
    kw["terms"] = tuple(t for t in ("s1", "s2", "s3")
                        if not any(switch.get(k) is False and v == t for k, v in dropped.items()))
    with torch.no_grad():
        want = _literal(ref, scores, cat, num, **kw)
        got = ablated(scores, cat, num)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
        # the oracle with nothing switched off is the full model (so the oracle is right)
        torch.testing.assert_close(full(scores, cat, num), _literal(ref, scores, cat, num),
                                   rtol=1e-10, atol=1e-10)
        assert not torch.allclose(got, full(scores, cat, num))
    if switch.get("personalized") is False:   # the score no longer reads the features
        other = (cat + 1) % torch.tensor([7, 3])
        torch.testing.assert_close(ablated(scores, other, num * 2), got, rtol=0, atol=0)


def _perturb(model, scale=0.5):
    """Move parameters off their (small) init, as training does."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def test_personalized_features_change_the_score():
    torch.manual_seed(0)
    model = _perturb(build_model("harmonrank", 4, SPEC))
    scores, cat, num = _batch()
    other = (cat + 1) % torch.tensor([7, 3])
    assert not torch.allclose(model(scores, cat, num), model(scores, other, num))
    torch.manual_seed(0)
    blind = _perturb(build_model("harmonrank", 4, SPEC, {"personalized": False, "gate": False,
                                                         "linear": False}))
    torch.testing.assert_close(blind(scores, cat, num), blind(scores, other, num))


def test_harmonrank_rejects_a_model_with_no_path():
    with pytest.raises(ValueError, match="at least one path"):
        build_model("harmonrank", 3, SPEC, {"relation_aware": False, "gate": False,
                                            "linear": False})


@pytest.mark.parametrize("norm", ["softmax", "sigmoid"])
def test_mean_attention_is_the_average_of_per_row_attention(norm):
    torch.manual_seed(0)
    model = build_model("harmonrank", 4, SPEC, {"attention_norm": norm})
    scores, cat, num = _batch(n=1000)
    a = model.mean_attention(scores, cat, num, batch_size=300)
    assert a.shape == (4, 4)
    _, per_row = model(scores, cat, num, return_attention=True)
    torch.testing.assert_close(a, per_row.mean(0), rtol=1e-5, atol=1e-6)
    if norm == "softmax":
        torch.testing.assert_close(a.sum(1), torch.ones(4), rtol=1e-5, atol=1e-5)


def test_bucket_embedding_separates_objectives_and_buckets():
    model = build_model("harmonrank", 2, SPEC, {"buckets": 10})
    x = model.embed(torch.tensor([[0.0, 0.0], [0.05, 0.0], [0.15, 1.0]]))
    assert torch.equal(x[0, 0], x[1, 0])            # same bucket 0
    assert not torch.equal(x[0, 0], x[0, 1])        # objective 0 vs 1: different tables
    assert not torch.equal(x[1, 0], x[2, 0])        # bucket 0 vs 1
    torch.testing.assert_close(x[2, 1], model.score_table[2 * 10 - 1])  # 1.0 -> last bucket


def test_fusion_product_form_is_the_log_of_a_ranking_formula():
    model = build_model("fusion", 2, SPEC, {"form": "product"})
    with torch.no_grad():
        model.w0.copy_(torch.tensor([2.0, 0.5]))
    scores = torch.tensor([[0.2, 0.5], [0.4, 0.1]])
    alpha = torch.nn.functional.softplus(model.alpha_raw)
    expect = torch.log((alpha[0] + scores[:, 0]) ** 2 * (alpha[1] + scores[:, 1]) ** 0.5)
    torch.testing.assert_close(model(scores, *_batch(2)[1:]), expect)
