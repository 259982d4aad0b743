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


@pytest.mark.parametrize("switch", ABLATIONS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_harmonrank_ablations_change_the_function(switch):
    torch.manual_seed(0)
    full = build_model("harmonrank", 4, SPEC)
    torch.manual_seed(0)
    ablated = build_model("harmonrank", 4, SPEC, switch)
    scores, cat, num = _batch()
    out = ablated(scores, cat, num)
    assert out.shape == (512,) and torch.isfinite(out).all()
    out.sum().backward()
    assert not torch.allclose(out, full(scores, cat, num))


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
