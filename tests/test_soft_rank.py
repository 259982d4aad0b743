"""The parallel soft rank (trainables/losses/soft_rank.py) against torchsort, the oracle:
values and gradients, float64, to 1e-6 (in practice ~1e-11)."""
from __future__ import annotations

import pytest
import torch
import torchsort

import trainables.losses.soft_rank as sr
from trainables.losses import get_loss
from trainables.losses.rank_auc import soft_ranks


def _rows(kind: str, p: int, n: int, eps: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "normal":                       # gaps from far below to far above eps
        return torch.randn(p, n, generator=g, dtype=torch.float64) * 3
    if kind == "ties":
        return torch.randint(0, 7, (p, n), generator=g).double()
    if kind == "collinear":                    # gaps of exactly eps: equal adjacent blocks
        return (torch.arange(n, dtype=torch.float64) * eps)[torch.randperm(n, generator=g)] \
            .repeat(p, 1)
    if kind == "cascade":                      # a tied cluster absorbing its neighbours
        t = torch.zeros(n, dtype=torch.float64)   # one by one: PAV's long backtracking
        side = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
        t[n // 3:] = torch.arange(1, n - n // 3 + 1, dtype=torch.float64) * 1.01 * eps
        return (t * side)[torch.randperm(n, generator=g)].repeat(p, 1)
    raise ValueError(kind)


def _both(x: torch.Tensor, eps: float, seed: int = 0):
    """(torchsort ranks, grad), (parallel ranks, grad) for a random upstream gradient."""
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    out = []
    for fn in (torchsort.soft_rank, sr.soft_rank):
        v = x.clone().requires_grad_(True)
        r = fn(v, regularization_strength=eps)
        (r * g).sum().backward()
        out.append((r.detach(), v.grad))
    return out


def _close(x, eps):
    (ra, ga), (rb, gb) = _both(x, eps)
    torch.testing.assert_close(rb, ra, rtol=0, atol=1e-6)
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["normal", "ties", "collinear", "cascade"])
@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0, 30.0])
@pytest.mark.parametrize("n", [1, 2, 3, 17, 300, 5000])
def test_equals_torchsort(kind, eps, n):
    _close(_rows(kind, 3, n, eps, seed=n), eps)


@pytest.mark.parametrize("kind", ["normal", "ties", "cascade"])
def test_divide_and_conquer_alone_equals_torchsort(kind, monkeypatch):
    """Without chord pruning every hull comes from the bridge merges alone."""
    monkeypatch.setattr(sr, "PRUNE_ROUNDS", 0)
    for n, eps in ((2, 0.5), (5, 0.3), (64, 0.05), (1000, 0.01), (3001, 0.2)):
        _close(_rows(kind, 2, n, eps, seed=n), eps)


def test_rows_of_a_batch_are_independent():
    x = torch.cat([_rows("normal", 1, 400, 0.1, 0), _rows("ties", 1, 400, 0.1, 1),
                   _rows("cascade", 1, 400, 0.1, 2)])
    whole = sr.soft_rank(x, regularization_strength=0.1)
    for i in range(3):
        torch.testing.assert_close(whole[i:i + 1],
                                   sr.soft_rank(x[i:i + 1], regularization_strength=0.1),
                                   rtol=0, atol=1e-9)


def test_gradcheck():
    x = (torch.randn(2, 12, dtype=torch.float64) * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: sr.soft_rank(v, regularization_strength=0.7),
                                    (x,), eps=1e-6, atol=1e-6)


def test_float32_is_at_least_as_accurate_as_torchsort():
    """Computed in float64 inside, returned as float32: no further from the float64
    answer than torchsort's own float32 kernel."""
    x = torch.randn(2, 4000, dtype=torch.float64)
    truth = torchsort.soft_rank(x, regularization_strength=0.01)
    ours = sr.soft_rank(x.float(), regularization_strength=0.01)
    theirs = torchsort.soft_rank(x.float(), regularization_strength=0.01)
    assert ours.dtype == torch.float32
    assert (ours.double() - truth).abs().max() <= (theirs.double() - truth).abs().max() + 1e-4


def test_empty_and_degenerate_shapes():
    assert sr.soft_rank(torch.zeros(3, 0)).shape == (3, 0)
    assert sr.soft_rank(torch.zeros(0, 5)).shape == (0, 5)
    torch.testing.assert_close(sr.soft_rank(torch.tensor([[2.5]])), torch.tensor([[1.0]]))


@pytest.mark.parametrize("call,match", [
    (lambda: sr.soft_rank(torch.zeros(5)), "2-d"),
    (lambda: sr.soft_rank(torch.zeros(1, 5), regularization="kl"), "'l2' only"),
    (lambda: sr.soft_rank(torch.zeros(1, 5), regularization_strength=0.0), "> 0"),
    (lambda: sr.soft_rank(torch.zeros(1, 5, dtype=torch.long)), "floating"),
])
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- rank_auc
@pytest.mark.parametrize("shape", [(2000,), (3, 2000)], ids=["one", "population"])
def test_rank_auc_parallel_equals_torchsort(shape):
    g = torch.Generator().manual_seed(5)
    s = torch.randn(shape, generator=g, dtype=torch.float64)
    y = (torch.rand(shape[-1], 3, generator=g) < torch.tensor([0.3, 0.05, 0.01])).double()
    loss = get_loss("rank_auc")
    out = []
    for impl in ("torchsort", "parallel"):
        v = s.clone().requires_grad_(True)
        per = loss(v, y, regularization_strength=0.05, soft_rank_impl=impl)
        per.sum().backward()
        out.append((per.detach(), v.grad))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=0, atol=1e-9)
    torch.testing.assert_close(out[1][1], out[0][1], rtol=0, atol=1e-9)


def test_rank_auc_parallel_rejects_kl_and_unknown_impl():
    s, y = torch.randn(20), (torch.rand(20, 2) < 0.5).float()
    with pytest.raises(ValueError, match="soft_rank_impl 'parallel' computes the l2"):
        get_loss("rank_auc")(s, y, regularization="kl", soft_rank_impl="parallel")
    with pytest.raises(ValueError, match="soft_rank_impl must be one of"):
        get_loss("rank_auc")(s, y, soft_rank_impl="cuda")


# --------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("n", [5000, 200_000])
def test_parallel_on_cuda_equals_torchsort_cpu(n):
    """The point of the parallel soft rank: one long row on the GPU, same values and
    gradients as torchsort's CPU kernel."""
    x = _rows("normal", 2, n, 0.01, seed=1)
    (ra, ga), _ = _both(x, 0.01)
    v = x.cuda().requires_grad_(True)
    r = soft_ranks(v, regularization_strength=0.01, soft_rank_impl="parallel")
    assert r.is_cuda
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    (r * grad.cuda()).sum().backward()
    torch.testing.assert_close(r.cpu(), ra, rtol=0, atol=1e-6)
    torch.testing.assert_close(v.grad.cpu(), ga, rtol=0, atol=1e-6)


def test_benchmark_prints_the_comparison(capsys):
    from benchmarks import soft_rank as bench
    assert bench.main(["--device", "cpu", "--lengths", "300", "--strengths", "0.1",
                       "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any("parallel" in line and "x" in line for line in lines[2:-1])
    assert lines[-1].startswith("soft_rank 300 0.1 parallel ") and lines[-1].endswith("x")
