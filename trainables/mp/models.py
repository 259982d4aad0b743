"""Multi-task prediction models: shared-bottom and MMOE over embedded raw features.

Both take ``cat`` (n, F) int64 codes (code 0 = unknown) and ``num`` (n, N) float32 and
return (n, K) logits, one per objective. Every categorical column (ids included) has its
own rows in one embedding table (offsets per column, a single lookup per batch).
``shared_parameters()`` are the parameters every task's loss flows through (not the
embeddings, whose gradients are sparse): PE-LTR weights the tasks from their gradients.

- shared_bottom (Caruana 1997): one MLP on the inputs, then one MLP tower per task.
- mmoe (Ma et al., KDD 2018): ``experts`` MLPs on the inputs; per task a softmax gate on
  the inputs mixes the experts' outputs, then the task's tower.
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: list[int], dropout: float, last_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_act or i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _sizes(value, name: str) -> list[int]:
    sizes = [value] if isinstance(value, int) else list(value)
    if not sizes or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"{name} must be one or more layer sizes >= 1, got {value!r}")
    return sizes


class Inputs(nn.Module):
    """Embeddings of the categorical codes, concatenated with the numeric features."""

    def __init__(self, cardinalities: list[int], n_numeric: int, emb_dim: int):
        super().__init__()
        if not isinstance(emb_dim, int) or emb_dim < 1:
            raise ValueError(f"emb_dim must be an integer >= 1, got {emb_dim!r}")
        cards = [int(c) for c in cardinalities]
        offsets = torch.tensor([0] + cards[:-1], dtype=torch.long).cumsum(0) if cards \
            else torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(max(sum(cards), 1), emb_dim)
        nn.init.normal_(self.table.weight, std=0.05)
        self.out_dim = len(cards) * emb_dim + n_numeric

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        emb = self.table(cat + self.offsets).reshape(cat.shape[0], -1)
        return torch.cat([emb, num], 1) if num.shape[1] else emb


class SharedBottom(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, n_tasks: int, *,
                 emb_dim: int = 16, bottom=(256, 128), tower=(64,), dropout: float = 0.1):
        super().__init__()
        self.inputs = Inputs(cardinalities, n_numeric, emb_dim)
        b = _sizes(bottom, "bottom")
        self.bottom = mlp([self.inputs.out_dim, *b], dropout)
        t = _sizes(tower, "tower")
        self.towers = nn.ModuleList(mlp([b[-1], *t, 1], dropout, last_act=False)
                                    for _ in range(n_tasks))

    def forward(self, cat, num):
        h = self.bottom(self.inputs(cat, num))
        return torch.cat([tw(h) for tw in self.towers], 1)

    def shared_parameters(self):
        return list(self.bottom.parameters())


class MMoE(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, n_tasks: int, *,
                 emb_dim: int = 16, experts: int = 4, expert=(128, 64), tower=(64,),
                 dropout: float = 0.1):
        super().__init__()
        if not isinstance(experts, int) or experts < 1:
            raise ValueError(f"experts must be an integer >= 1, got {experts!r}")
        self.inputs = Inputs(cardinalities, n_numeric, emb_dim)
        e = _sizes(expert, "expert")
        d = self.inputs.out_dim
        self.experts = nn.ModuleList(mlp([d, *e], dropout) for _ in range(experts))
        self.gates = nn.ModuleList(nn.Linear(d, experts) for _ in range(n_tasks))
        t = _sizes(tower, "tower")
        self.towers = nn.ModuleList(mlp([e[-1], *t, 1], dropout, last_act=False)
                                    for _ in range(n_tasks))

    def forward(self, cat, num):
        x = self.inputs(cat, num)
        h = torch.stack([ex(x) for ex in self.experts], 1)              # (n, E, H)
        outs = []
        for gate, tower in zip(self.gates, self.towers):
            g = torch.softmax(gate(x), 1).unsqueeze(2)                  # (n, E, 1)
            outs.append(tower((g * h).sum(1)))
        return torch.cat(outs, 1)

    def shared_parameters(self):
        return list(self.experts.parameters())
