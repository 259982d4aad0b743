"""Seeded random ME batches for unit tests (no dataset on disk)."""
from __future__ import annotations

import torch


def random_batch(n: int, k: int, seed: int, rates, requests: int | None = None):
    """(scores (n, k), labels (n, k) with positive rates ``rates[:k]``, cat (n, 2) over 5
    and 3 categories, num (n, 1)) and, with ``requests``, request ids (n,) that are not
    0..R-1. Matches the feature spec ``(("feat_a", 5), ("feat_b", 3)), ("feat_x",)``."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, k, generator=g)
    labels = (torch.rand(n, k, generator=g) < torch.tensor(list(rates)[:k])).float()
    cat = torch.stack([torch.randint(0, 5, (n,), generator=g),
                       torch.randint(0, 3, (n,), generator=g)], 1)
    num = torch.randn(n, 1, generator=g)
    if requests is None:
        return scores, labels, cat, num
    groups = torch.randint(0, requests, (n,), generator=g) * 5 + 11
    return scores, labels, cat, num, groups


def record_batches(monkeypatch, cfg):
    """Run the training loop on ``cfg`` and record every batch it trains on: returns
    (the loop's history, [(epoch, request ids, MP scores) per step])."""
    from trainables import loop
    seen = []
    real = loop.make_step

    def recording(*args, **kw):
        step = real(*args, **kw)

        def wrapped(scores, labels, cat, num, step_no, epoch, groups=None, duration=None):
            seen.append((epoch, groups.clone(), scores.clone()))
            return step(scores, labels, cat, num, step_no, epoch, groups, duration=duration)
        return wrapped
    monkeypatch.setattr(loop, "make_step", recording)
    return loop.train_loop_per_worker(cfg), seen
