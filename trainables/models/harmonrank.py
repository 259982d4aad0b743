"""HarmonRank's ensemble model (Xia et al. 2026, sec. 4.2-4.3; docs/DESIGN.md, "HarmonRank").

Input  x = [E_1[bucket(s_1)]; ...; E_K[bucket(s_K)]]           (n, K, d)   eq. 21
Relation-aware path ("align, then ensemble"):
    Q_r, K_r, V_r = x W^Q_r, x W^K_r, x W^V_r                                eq. 11
    A_r = softmax(Q_r K_r^T / sqrt(d)),  x_r = A_r V_r           (n, K, K)   eq. 12-13
    q_p = P W^Q_p (P: user/context features), K_p = x_r W^K_p, V_p = x_r W^V_p
    A_p = softmax(q_p K_p^T / sqrt(d)),  s1 = w1^T (A_p V_p) + b1           eq. 14-16
Relation-agnostic path:
    g = sigmoid(W_g vec(x) + b_g) (one gate per objective), s2 = w2^T vec(g * x) + b2
    s3 = w3^T vec(x) + b3                                                   eq. 17-19
Output s = s1 + s2 + s3                                                     eq. 20

Every part can be switched off for the paper's ablations (Table 3): ``self_attention``,
``personalized`` (query = a learned constant), ``cross_attention`` (replaced by a linear
map of [vec(x_r), P], the paper's "w/o Cross-Attention"), ``gate``, ``linear``,
``relation_aware`` (drop s1 entirely); ``buckets=0`` replaces discretization by a linear
embedding of the raw score (Table 4's "No disc."). ``attention_norm="sigmoid"`` is the
variant of sec. 5.7.2 that keeps absolute relation strengths.

The parameters are exactly the paper's; the forward pass evaluates them in a cheaper
but equal order (products of linear maps re-associated, one matmul for gate, w2 and
linear paths), which is most of why it trains at several hundred thousand rows/s on a
CPU. ``tests/test_models.py`` checks it against a literal implementation.

Conditioned training (:meth:`HarmonRank.preference_input`; docs/DESIGN.md, "Conditioned
training"): the preference vector w joins the personalized features, P' = [P, w], so it
drives the cross-attention query q_p = P' W^Q_p of eq. 14: the preference chooses which
aligned objective tokens the fused score reads (sec. 4.2.1's "holistic intention", asked
of the user of the model instead of learned); with ``personalized=False`` the query is a
map of w alone. The query only reweights s1, and the preference-free gate and linear
paths dominate the score, so on its own it barely moves the ranking (measured: the same
AUCs at every corner of the simplex). The token of objective k is therefore also scaled
by exp((w W_w)_k), W_w (K, K) starting at 0 (the unconditioned model at the start): a
preference-to-token-scale map, HarmonRank's analogue of a ranking formula's exponents,
which reaches all three paths. The model knows w is there from its feature spec
(:func:`~trainables.models._preference.preference_count`); otherwise nothing changes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._features import FeatureEncoder, FeatureSpec
from ._preference import preference_count

NORMS = ("softmax", "sigmoid")


class HarmonRank(nn.Module):
    def __init__(self, n_objectives: int, features: FeatureSpec, *, d_model: int = 16,
                 buckets: int = 300, emb_dim: int = 4, self_attention: bool = True,
                 cross_attention: bool = True, personalized: bool = True, gate: bool = True,
                 linear: bool = True, relation_aware: bool = True,
                 attention_norm: str = "softmax"):
        super().__init__()
        if d_model < 1:
            raise ValueError(f"model.d_model must be >= 1, got {d_model}")
        if buckets < 0:
            raise ValueError(f"model.buckets must be >= 0 (0 = no discretization), got {buckets}")
        if attention_norm not in NORMS:
            raise ValueError(f"model.attention_norm must be one of {NORMS}, got {attention_norm!r}")
        if not (relation_aware or gate or linear):
            raise ValueError("model: relation_aware, gate and linear are all off; "
                             "at least one path must produce a score")
        k, d = n_objectives, d_model
        self.k, self.d, self.buckets = k, d, buckets
        self.self_attention, self.cross_attention = self_attention, cross_attention
        self.gate, self.linear, self.relation_aware = gate, linear, relation_aware
        self.attention_norm = attention_norm
        self.scale = 1.0 / math.sqrt(d)

        # Score embeddings, eq. 21: one table of K * B rows, objective k's at offset k * B.
        if buckets:
            self.score_table = nn.Parameter(torch.randn(k * buckets, d) * 0.1)
            self.register_buffer("bucket_offsets", torch.arange(k) * buckets, persistent=False)
        else:
            self.score_w = nn.Parameter(torch.randn(k, d) * 0.1)
            self.score_b = nn.Parameter(torch.zeros(k, d))

        def lin(i, o):
            w = torch.empty(i, o)
            nn.init.kaiming_uniform_(w.T, a=math.sqrt(5))  # nn.Linear's default init
            return nn.Parameter(w)

        if relation_aware:
            if self_attention:
                self.w_q, self.w_k, self.w_v = lin(d, d), lin(d, d), lin(d, d)
            self.use_features = personalized and not features.empty
            if self.use_features:
                self.encoder = FeatureEncoder(features, emb_dim)
            p_dim = self.encoder.out_dim if self.use_features else 0
            if cross_attention:
                if self.use_features:
                    self.w_qp = lin(p_dim, d)
                else:
                    self.q_const = nn.Parameter(torch.randn(d) * 0.1)
                self.w_kp = lin(d, d)
                self.w_vp = lin(d, d)
                self.w1 = nn.Parameter(torch.randn(d) / math.sqrt(d))
            else:
                self.w_cat = nn.Parameter(torch.randn(k * d + p_dim) / math.sqrt(k * d + p_dim))
            self.b1 = nn.Parameter(torch.zeros(()))
        if gate:
            self.w_g = lin(k * d, k)
            self.b_g = nn.Parameter(torch.zeros(k))
            self.w2 = nn.Parameter(torch.randn(k, d) / math.sqrt(k * d))
            self.b2 = nn.Parameter(torch.zeros(()))
        if linear:
            self.w3 = nn.Parameter(torch.randn(k * d) / math.sqrt(k * d))
            self.b3 = nn.Parameter(torch.zeros(()))
        self.register_buffer("_eye", torch.eye(k), persistent=False)
        # conditioned training: the last n_pref numeric features are the preference w
        self.n_pref = preference_count(features)
        if self.n_pref:
            self.w_pref = nn.Parameter(torch.zeros(self.n_pref, k))

    @classmethod
    def preference_input(cls, params: dict) -> tuple[dict, bool]:
        """The preference joins the personalized features behind the cross-attention query
        (or the concatenated ablation's input) and scales the objective tokens;
        ``personalized`` says whether the user features stay next to it."""
        if not params["relation_aware"]:      # no query: the token scale alone takes w
            return dict(params), bool(params["personalized"])
        return {**params, "personalized": True}, bool(params["personalized"])

    # -- pieces ---------------------------------------------------------------------
    def embed(self, scores: torch.Tensor) -> torch.Tensor:
        """(n, K) scores in [0, 1] -> (n, K, d) score encodings."""
        n = scores.shape[0]
        if self.buckets:
            idx = (scores * self.buckets).long().clamp_(0, self.buckets - 1) + self.bucket_offsets
            # index_select: its backward (index_add) is several times faster on CPU than
            # nn.Embedding's
            return self.score_table.index_select(0, idx.reshape(-1)).view(n, self.k, self.d)
        return scores[..., None] * self.score_w + self.score_b

    def relation_attention(self, x: torch.Tensor) -> torch.Tensor:
        """A_r = norm(Q_r K_r^T / sqrt(d)) over the objective tokens, (n, K, K).

        Q_r K_r^T = x W^Q (x W^K)^T = (x (W^Q W^K^T)) x^T: one d x d product instead of two
        projections of every token.
        """
        m = self.w_q @ self.w_k.T
        logits = torch.bmm(x @ m, x.transpose(1, 2)) * self.scale
        return _softmax(logits) if self.attention_norm == "softmax" else torch.sigmoid(logits)

    def _agnostic_matrix(self) -> torch.Tensor:
        """[W_g | blockdiag(w2) | w3]^T as one (out, K d) matrix: one matmul for eq. 17-19
        (in F.linear's (out, in) layout, which MKL runs ~2x faster for so few outputs)."""
        rows = []
        if self.gate:
            rows += [self.w_g.T, (self._eye[:, :, None] * self.w2[None, :, :]).reshape(self.k, -1)]
        if self.linear:
            rows.append(self.w3[None, :])
        return torch.cat(rows, dim=0)

    def _relation_aware(self, x, cat, num):
        """s1 (eq. 11-16) and A_r (or None)."""
        n = x.shape[0]
        p = self.encoder(cat, num) if self.use_features else None
        a_r = self.relation_attention(x) if self.self_attention else None
        if not self.cross_attention:   # ablation: linear map of [vec(x_r), P]
            x_r = torch.bmm(a_r, x @ self.w_v) if a_r is not None else x
            z = x_r.reshape(n, -1) if p is None else torch.cat([x_r.reshape(n, -1), p], 1)
            return z @ self.w_cat + self.b1, a_r
        q_p = p @ self.w_qp if p is not None else self.q_const.expand(n, self.d)
        # The personalized query meets each aligned token x_r,i through two numbers only:
        #   logit_i = q_p . (x_r,i W^K_p) = x_r,i . t,      t = q_p W^K_p^T
        #   w1^T V_p,i = x_r,i . u,                         u = W^V_p w1
        # and x_r,i = sum_j A_ij x_j W^V_r, so x_r,i . t = sum_j A_ij (x_j . t W^V_r^T):
        # the (n, K, d) tensors x_r, K_p, V_p are never formed.
        t = q_p @ self.w_kp.T                                              # (n, d)
        u = self.w_vp @ self.w1                                            # (d,)
        if a_r is not None:
            v_t = (x * (t @ self.w_v.T)[:, None, :]).sum(-1)               # (n, K): V_j . t
            v_u = x @ (self.w_v @ u)                                       # (n, K): V_j . u
            both = torch.bmm(a_r, torch.stack([v_t, v_u], -1))             # (n, K, 2)
            xr_t, xr_u = both[..., 0], both[..., 1]
        else:
            xr_t, xr_u = (x * t[:, None, :]).sum(-1), x @ u
        a_p = _softmax(xr_t * self.scale)                                  # (n, K), eq. 15
        return (a_p * xr_u).sum(-1) + self.b1, a_r

    # -- forward --------------------------------------------------------------------
    def forward(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor,
                return_attention: bool = False):
        n = scores.shape[0]
        x = self.embed(scores)
        if self.n_pref:
            x = x * torch.exp(num[:, -self.n_pref:] @ self.w_pref)[..., None]
        s = x.new_zeros(n)
        a_r = None
        if self.relation_aware:
            s1, a_r = self._relation_aware(x, cat, num)
            s = s + s1
        if self.gate or self.linear:
            proj = F.linear(x.reshape(n, self.k * self.d), self._agnostic_matrix())
            if self.gate:
                g = torch.sigmoid(proj[:, :self.k] + self.b_g)
                s = s + (g * proj[:, self.k:2 * self.k]).sum(-1) + self.b2
            if self.linear:
                s = s + proj[:, -1] + self.b3
        if return_attention:
            return s, a_r
        return s

    @torch.no_grad()
    def mean_attention(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor,
                       batch_size: int = 65536) -> torch.Tensor:
        """A_r averaged over the given rows (K, K); row i is how objective i attends."""
        if not (self.relation_aware and self.self_attention):
            raise ValueError("mean_attention needs relation_aware and self_attention on")
        total = torch.zeros(self.k, self.k, dtype=torch.float64, device=scores.device)
        for start in range(0, scores.shape[0], batch_size):
            x = self.embed(scores[start:start + batch_size])
            total += self.relation_attention(x).sum(0).to(torch.float64)
        return (total / scores.shape[0]).to(torch.float32)


def _softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, written out: on CPU it is ~2.5x faster than
    torch.softmax (forward + backward) when that dimension is as short as K."""
    e = torch.exp(z - z.amax(-1, keepdim=True).detach())
    return e / e.sum(-1, keepdim=True)
