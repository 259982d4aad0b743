"""EMER's ensemble model (He et al. 2025, "Model Architecture" and "Feature Engineering";
docs/DESIGN.md, "EMER"): a transformer encoder over the candidates of each request.

Per candidate i of a request with c candidates, one token

    x_i = sum_k E_k[bucket(s_ik)] + W_r r_i + W_p P_i + b             (d_model,)

with ``E_k`` objective k's bucket embeddings (``buckets=0``: a linear map of the raw
scores instead), ``r_ik = rank of s_ik among the request's candidates / c`` EMER's
"NormalizedRanks" (rank 1 = the highest score; tied scores share the best rank), and
``P_i`` the user/context features. ``layers`` pre-norm encoder layers (multi-head
self-attention over the request's candidates, then a feed-forward of width 2 d_model),
a final LayerNorm and a linear head give one score per candidate. No positional encoding:
the candidates are a set, so the scores are permutation-equivariant within a request and
a request's scores do not depend on the other requests of the batch.

Requests are padded to the longest in the batch (a key-padding mask hides the padding).
A request with more than ``max_candidates`` candidates is split into ceil(c /
max_candidates) interleaved pieces of nearly equal size (its candidates ordered by mean
normalized rank, the t-th going to piece t mod pieces) and attention stays within a piece;
the normalized ranks are still computed over the whole request. Nothing is truncated:
every row gets a score.

The attention is written with plain tensor ops (the parameter layout is that of
``nn.TransformerEncoderLayer(norm_first=True)``; ``tests/test_emer.py`` checks the two
agree) because ``nn.TransformerEncoder``'s kernels (``_transformer_encoder_layer_fwd``,
fused scaled-dot-product attention) have no ``vmap`` batching rule: a population
(``trainables.population``) would fall back to a slow per-member loop.

Needs the batch's request ids: ``forward(scores, cat, num, groups)``; without them the
whole batch is taken as one request.

Conditioned training (:meth:`EMER.preference_input`; docs/DESIGN.md, "Conditioned
training"): the preference vector joins the user features P_i, so ``W_p`` projects it into
every candidate's token and the attention over the request sees it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..requests import request_layout
from ._features import FeatureEncoder, FeatureSpec


class EMER(nn.Module):
    needs_requests = True

    def __init__(self, n_objectives: int, features: FeatureSpec, *, d_model: int = 32,
                 heads: int = 4, layers: int = 2, dropout: float = 0.0, buckets: int = 100,
                 emb_dim: int = 4, max_candidates: int = 64):
        super().__init__()
        for key, value, low in (("d_model", d_model, 1), ("heads", heads, 1),
                                ("layers", layers, 0), ("buckets", buckets, 0),
                                ("emb_dim", emb_dim, 1), ("max_candidates", max_candidates, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"model.{key} must be an integer >= {low}, got {value!r}")
        if d_model % heads:
            raise ValueError(f"model.d_model ({d_model}) must be a multiple of model.heads "
                             f"({heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout!r}")
        k, d = n_objectives, d_model
        self.k, self.d, self.buckets = k, d, buckets
        self.max_candidates = max_candidates
        if buckets:
            self.score_table = nn.Parameter(torch.randn(k * buckets, d) * 0.1)
            self.register_buffer("bucket_offsets", torch.arange(k) * buckets, persistent=False)
        else:
            self.score_proj = nn.Linear(k, d, bias=False)
        self.rank_proj = nn.Linear(k, d)
        self.use_features = not features.empty
        if self.use_features:
            self.encoder = FeatureEncoder(features, emb_dim)
            self.feature_proj = nn.Linear(self.encoder.out_dim, d, bias=False)
        self.layers = nn.ModuleList(_EncoderLayer(d, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    @classmethod
    def preference_input(cls, params: dict) -> tuple[dict, bool]:
        """The preference is K more user features, projected into every token."""
        return dict(params), True

    def tokens(self, scores, cat, num, ranks) -> torch.Tensor:
        """(n, d_model) candidate tokens."""
        n = scores.shape[0]
        if self.buckets:
            idx = (scores * self.buckets).long().clamp_(0, self.buckets - 1) + self.bucket_offsets
            x = self.score_table.index_select(0, idx.reshape(-1)).view(n, self.k, self.d).sum(1)
        else:
            x = self.score_proj(scores)
        x = x + self.rank_proj(ranks)
        if self.use_features:
            x = x + self.feature_proj(self.encoder(cat, num))
        return x

    def forward(self, scores: torch.Tensor, cat: torch.Tensor, num: torch.Tensor,
                groups: torch.Tensor | None = None) -> torch.Tensor:
        n = scores.shape[0]
        if groups is None:
            groups = torch.zeros(n, dtype=torch.int64, device=scores.device)
        order, rid, counts, starts = request_layout(groups)
        ranks = normalized_ranks(scores, order, rid, counts, starts)
        x = self.tokens(scores, cat, num, ranks)
        lay = _Layout(order, rid, counts, starts, self.max_candidates, scores, ranks)
        # padded (S, L, d): slot j of piece s holds row src[s, j], or the zero row n
        h = torch.cat([x, x.new_zeros(1, self.d)])[lay.src].view(lay.pieces, lay.length, self.d)
        bias = torch.zeros(lay.pad.shape, dtype=x.dtype, device=x.device) \
            .masked_fill(lay.pad, float("-inf"))[:, None, None, :]          # (S, 1, 1, L)
        for layer in self.layers:
            h = layer(h, bias)
        out = self.head(self.norm(h)).reshape(-1)
        return out[lay.slot_of_row]


class _Layout:
    """Where each row of a batch sits in the padded (pieces, length) grid.

    Built from the request layout and the ranks alone (no parameters), so under ``vmap``
    over a population it is computed once, outside the batched dimension. A request of
    more than ``max_candidates`` rows is cut into pieces by interleaving its rows in the
    order of their mean normalized rank, ties by the sum of scores (so each piece spans the
    request from its best to its worst candidates, and piece membership does not depend
    on the input row order unless candidates tie on both)."""

    def __init__(self, order, rid, counts, starts, max_candidates: int, scores, ranks):
        n, dev = order.shape[0], order.device
        n_pieces = torch.div(counts + max_candidates - 1, max_candidates, rounding_mode="floor")
        if bool((n_pieces > 1).any()):   # rows of each request by mean rank, ties by scores
            by_sum = torch.sort(scores.sum(1), descending=True, stable=True).indices
            by_rank = by_sum[torch.sort(ranks.mean(1)[by_sum], stable=True).indices]
            rid_of_row = torch.empty_like(rid)
            rid_of_row[order] = rid
            order = by_rank[torch.sort(rid_of_row[by_rank], stable=True).indices]
        pos = torch.arange(n, device=dev) - starts[rid]               # within the request
        first_piece = n_pieces.cumsum(0) - n_pieces
        piece = first_piece[rid] + pos % n_pieces[rid]
        slot = torch.div(pos, n_pieces[rid], rounding_mode="floor")
        lengths = torch.div(counts + n_pieces - 1, n_pieces, rounding_mode="floor")
        self.pieces = int(n_pieces.sum())
        self.length = int(lengths.max())
        flat_sorted = piece * self.length + slot
        self.slot_of_row = torch.empty_like(flat_sorted)
        self.slot_of_row[order] = flat_sorted
        src = torch.full((self.pieces * self.length,), n, dtype=torch.int64, device=dev)
        src[flat_sorted] = order
        self.src = src
        self.pad = (src == n).view(self.pieces, self.length)


def normalized_ranks(scores: torch.Tensor, order, rid, counts, starts) -> torch.Tensor:
    """EMER's NormalizedRanks (n, K): rank of each score among its request's candidates
    (1 = highest; tied scores share the best rank) divided by the request's size.
    ``order, rid, counts, starts``: :func:`trainables.requests.request_layout` of the
    batch's request ids."""
    # (K, n) layout: each objective's sorts run over contiguous memory
    n = scores.shape[0]
    st = scores.T.contiguous()
    by_score = torch.sort(st, dim=1, descending=True).indices   # ties: any order (see below)
    rid_of_row = torch.empty_like(rid)
    rid_of_row[order] = rid
    by_request = torch.sort(rid_of_row[by_score], dim=1, stable=True).indices
    ranked = by_score.gather(1, by_request)        # rows by (request, descending score)
    s = st.gather(1, ranked)
    r = rid[None, :]                               # sorted position t is in request rid[t]
    t = torch.arange(n, device=scores.device).expand_as(ranked)
    new = torch.ones_like(ranked, dtype=torch.bool)
    new[:, 1:] = (s[:, 1:] != s[:, :-1]) | (r[:, 1:] != r[:, :-1])
    # a tie shares the position of its first member, whatever the order inside the tie
    first = torch.cummax(torch.where(new, t, torch.zeros_like(t)), dim=1).values
    rank = (first - starts[r] + 1).to(scores.dtype) / counts[r].to(scores.dtype)
    return torch.empty_like(st).scatter_(1, ranked, rank).T


class _EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer in plain ops (vmap-friendly):
    h = h + Drop(MHA(LN1(h))); h = h + Drop(W2 Drop(ReLU(W1 LN2(h)))).
    Parameters laid out as nn.TransformerEncoderLayer's (in_proj = [W_q; W_k; W_v])."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj.weight)      # nn.MultiheadAttention's init
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)
        self.linear1 = nn.Linear(d, 2 * d)
        self.linear2 = nn.Linear(2 * d, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)

    def _drop(self, x):
        return F.dropout(x, self.dropout, self.training) if self.dropout else x

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        s, length, d = h.shape
        dh = d // self.heads
        qkv = self.in_proj(self.norm1(h)).view(s, length, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                # (S, H, L, dh)
        att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(dh)) + bias, dim=-1)
        a = (self._drop(att) @ v).transpose(1, 2).reshape(s, length, d)
        h = h + self._drop(self.out_proj(a))
        return h + self._drop(self.linear2(self._drop(F.relu(self.linear1(self.norm2(h))))))
