"""Multi-task prediction models: shared-bottom and MMOE over embedded raw features.

Registered in ``MP_MODELS`` (``trainables/mp/__init__.py``) and built as
``cls(n_tasks, features, **hparams)``, like the ME models: ``features`` is the
:class:`~trainables.models._features.FeatureSpec` of the fitted codes
(:mod:`trainables.mp.codes`), the hyper-parameters are keyword-only with their defaults in
the signature. Both take ``cat`` (n, F) int64 codes (code 0 = unknown) and ``num`` (n, N)
float32 and return (n, K) logits, one per objective. The inputs are embedded by the
project's one :class:`~trainables.models._features.FeatureEncoder` (every categorical
column, ids included, has its rows in one table). ``shared_parameters()`` are the
parameters every task's loss flows through (not the embeddings, whose gradients are
sparse): the ``pe_ltr`` weighting (``gradients: shared``) weights the tasks from their
gradients.

- shared_bottom (Caruana 1997): one MLP on the inputs, then one MLP tower per task.
- mmoe (Ma et al., KDD 2018): ``experts`` MLPs on the inputs; per task a softmax gate on
  the inputs mixes the experts' outputs, then the task's tower.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models._features import FeatureEncoder, FeatureSpec

EMB_INIT_STD = 0.05          # the MP models' embedding init (the ME models' default is 0.1)


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
    sizes = [value] if isinstance(value, int) else \
        list(value) if isinstance(value, (list, tuple)) else [value]
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                            for s in sizes):
        raise ValueError(f"{name} must be one or more layer sizes >= 1, got {value!r}")
    return sizes


def inputs(features: FeatureSpec, emb_dim, dropout) -> FeatureEncoder:
    """The embedded codes concatenated with the numeric features (and checks of the two
    hyper-parameters every MP model has)."""
    if isinstance(emb_dim, bool) or not isinstance(emb_dim, int) or emb_dim < 1:
        raise ValueError(f"emb_dim must be an integer >= 1, got {emb_dim!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return FeatureEncoder(features, emb_dim, init_std=EMB_INIT_STD)


class SharedBottom(nn.Module):
    def __init__(self, n_tasks: int, features: FeatureSpec, *, emb_dim: int = 16,
                 bottom=(256, 128), tower=(64,), dropout: float = 0.1):
        super().__init__()
        self.inputs = inputs(features, emb_dim, dropout)
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
    def __init__(self, n_tasks: int, features: FeatureSpec, *, emb_dim: int = 16,
                 experts: int = 4, expert=(128, 64), tower=(64,), dropout: float = 0.1):
        super().__init__()
        if isinstance(experts, bool) or not isinstance(experts, int) or experts < 1:
            raise ValueError(f"experts must be an integer >= 1, got {experts!r}")
        self.inputs = inputs(features, emb_dim, dropout)
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
