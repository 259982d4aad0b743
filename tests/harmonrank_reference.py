"""The literal HarmonRank and rank-sum AUC loss, written equation by equation: a test oracle.

:class:`trainables.models.harmonrank.HarmonRank` re-associates the paper's products for
speed; ``ReferenceHarmonRank.from_fast(model)`` copies a fast model's parameters into this
plain form so ``tests/test_models.py`` can check both compute the same scores.

The throughput benchmark (``python -m benchmarks.throughput``) also times a training loop
on this model and loss, in the same process as its other rows, and reports every row's
speed as a ratio to it. Nothing here trains a real model.
"""
from __future__ import annotations

import math

import torch
import torchsort
from torch import nn

from trainables.models import FeatureSpec


class ReferenceHarmonRank(nn.Module):
    """HarmonRank sec. 4.2-4.3 as written: nn.Linear projections, one embedding table per
    objective and per feature, explicit Q, K, V, x_r, K_p, V_p, torch.softmax."""

    def __init__(self, n_objectives: int, features: FeatureSpec, d_model: int = 16,
                 buckets: int = 300, emb_dim: int = 4):
        super().__init__()
        k, d = n_objectives, d_model
        self.k, self.d, self.buckets = k, d, buckets
        self.score_emb = nn.ModuleList(nn.Embedding(buckets, d) for _ in range(k))
        self.feat_emb = nn.ModuleList(nn.Embedding(c, emb_dim) for _, c in features.categorical)
        p_dim = len(features.categorical) * emb_dim + len(features.numeric)
        self.q_r, self.k_r, self.v_r = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.q_p = nn.Linear(p_dim, d, bias=False)
        self.k_p, self.v_p = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.out1 = nn.Linear(d, 1)                 # w1, b1
        self.gate = nn.Linear(k * d, k)             # W_g, b_g
        self.out2 = nn.Linear(k * d, 1)             # w2, b2
        self.out3 = nn.Linear(k * d, 1)             # w3, b3

    def forward(self, scores, cat, num):
        n = scores.shape[0]
        buckets = (scores * self.buckets).long().clamp(0, self.buckets - 1)
        x = torch.stack([self.score_emb[m](buckets[:, m]) for m in range(self.k)], 1)  # (n,K,d)
        # relation-aware: eq. 11-13
        q, k, v = self.q_r(x), self.k_r(x), self.v_r(x)
        a_r = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.d), dim=-1)
        x_r = a_r @ v
        # personalized cross-attention: eq. 14-16
        parts = [emb(cat[:, i]) for i, emb in enumerate(self.feat_emb)] + [num]
        p = torch.cat(parts, 1)
        q_p = self.q_p(p)[:, None, :]                                       # (n,1,d)
        k_p, v_p = self.k_p(x_r), self.v_p(x_r)
        a_p = torch.softmax(q_p @ k_p.transpose(1, 2) / math.sqrt(self.d), dim=-1)  # (n,1,K)
        s1 = self.out1((a_p @ v_p)[:, 0, :])[:, 0]
        # relation-agnostic: eq. 17-19
        flat = x.reshape(n, -1)
        g = torch.sigmoid(self.gate(flat))                                  # (n,K)
        s2 = self.out2((g[:, :, None] * x).reshape(n, -1))[:, 0]
        s3 = self.out3(flat)[:, 0]
        return s1 + s2 + s3

    @classmethod
    def from_fast(cls, fast) -> "ReferenceHarmonRank":
        """A reference model holding the parameters of a (default-configured) fast model."""
        enc = fast.encoder
        cards = [int(c) for c in torch.diff(torch.cat([enc.offsets, torch.tensor(
            [enc.table.num_embeddings])])).tolist()] if enc.n_cat else []
        spec = FeatureSpec(tuple((f"f{i}", c) for i, c in enumerate(cards)),
                           tuple(f"n{i}" for i in range(enc.n_num)))
        ref = cls(fast.k, spec, fast.d, fast.buckets, enc.emb_dim).to(fast.score_table)
        with torch.no_grad():
            for m in range(fast.k):
                ref.score_emb[m].weight.copy_(
                    fast.score_table[m * fast.buckets:(m + 1) * fast.buckets])
            for i, off in enumerate(enc.offsets.tolist()):
                ref.feat_emb[i].weight.copy_(enc.table.weight[off:off + cards[i]])
            for lin, w in ((ref.q_r, fast.w_q), (ref.k_r, fast.w_k), (ref.v_r, fast.w_v),
                           (ref.q_p, fast.w_qp), (ref.k_p, fast.w_kp), (ref.v_p, fast.w_vp)):
                lin.weight.copy_(w.T)
            ref.out1.weight.copy_(fast.w1[None, :])
            ref.out1.bias.copy_(fast.b1.reshape(1))
            ref.gate.weight.copy_(fast.w_g.T)
            ref.gate.bias.copy_(fast.b_g)
            ref.out2.weight.copy_(fast.w2.reshape(1, -1))
            ref.out2.bias.copy_(fast.b2.reshape(1))
            ref.out3.weight.copy_(fast.w3[None, :])
            ref.out3.bias.copy_(fast.b3.reshape(1))
        return ref


def reference_rank_auc(scores, labels, regularization_strength: float = 1.0):
    """Sum over objectives of 1 - soft rank-sum AUC, one soft_rank call per objective."""
    total = scores.new_zeros(())
    for m in range(labels.shape[1]):
        y = labels[:, m]
        pos = y.sum()
        neg = y.shape[0] - pos
        if pos == 0 or neg == 0:
            continue
        r = torchsort.soft_rank(scores[None, :], regularization_strength=regularization_strength)[0]
        total = total + 1 - ((r * y).sum() - pos * (pos + 1) / 2) / (pos * neg)
    return total
