"""CUDA checks: skipped cleanly without a GPU (see conftest). Run with ``pytest -m gpu``."""
from __future__ import annotations

import pytest
import torch

from trainables.losses import LOSSES, get_loss
from trainables.metrics import auc_per_objective, gauc_per_objective
from trainables.models import FeatureSpec, build_model

pytestmark = pytest.mark.gpu


def test_exact_metrics_on_cuda_equal_cpu():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 50, (20000,), generator=g).float()      # many ties
    y = (torch.rand(20000, 3, generator=g) < torch.tensor([0.3, 0.05, 0.01])).float()
    u = torch.randint(0, 300, (20000,), generator=g)
    torch.testing.assert_close(auc_per_objective(s.cuda(), y.cuda()).cpu(),
                               auc_per_objective(s, y), rtol=0, atol=1e-12)
    torch.testing.assert_close(gauc_per_objective(s.cuda(), y.cuda(), u.cuda()).cpu(),
                               gauc_per_objective(s, y, u), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"pairwise_logistic"}))
def test_losses_on_cuda_equal_cpu(name):
    """Each loss on CUDA input equals the CPU loss (default options; rank_auc's default
    ``soft_rank_device: auto`` runs the soft rank on torchsort's CPU kernel, so this does
    not need torchsort's CUDA extension: see the next test)."""
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4096, generator=g, dtype=torch.float64)
    y = (torch.rand(4096, 4, generator=g) < 0.2).double()
    loss = get_loss(name)
    torch.testing.assert_close(loss(s.cuda(), y.cuda()).cpu(), loss(s, y), rtol=1e-6, atol=1e-8)


def test_rank_auc_runs_torchsort_cuda_kernel(monkeypatch):
    """rank_auc with ``soft_rank_device: input`` on CUDA input runs torchsort's CUDA
    isotonic kernels (forward and backward; counted, so a silent move to the CPU fails)
    and equals the CPU loss and gradient. A torchsort built without its CUDA extension
    raises here instead of passing."""
    import torchsort.ops as ops
    calls = []
    for table in (ops.isotonic_l2, ops.isotonic_kl, ops.isotonic_l2_backward,
                  ops.isotonic_kl_backward):
        kernel = table["cuda"]

        def counted(*args, _kernel=kernel):
            assert all(a.is_cuda for a in args if isinstance(a, torch.Tensor))
            calls.append(_kernel)
            return _kernel(*args)
        monkeypatch.setitem(table, "cuda", counted)
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4096, generator=g, dtype=torch.float64)
    y = (torch.rand(4096, 4, generator=g) < 0.2).double()
    loss = get_loss("rank_auc")
    s_gpu = s.cuda().requires_grad_()
    a = loss(s_gpu, y.cuda(), soft_rank_device="input")
    assert calls, "the soft rank did not run on torchsort's CUDA kernel"
    n_forward = len(calls)
    grad_gpu, = torch.autograd.grad(a.sum(), s_gpu)
    assert len(calls) > n_forward, "the soft rank's backward did not run on CUDA"
    s_ref = s.clone().requires_grad_()
    b = loss(s_ref, y, soft_rank_device="cpu")
    grad_ref, = torch.autograd.grad(b.sum(), s_ref)
    assert a.device.type == "cuda" and grad_gpu.device.type == "cuda"
    torch.testing.assert_close(a.cpu(), b, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(grad_gpu.cpu(), grad_ref, rtol=1e-6, atol=1e-8)


def test_harmonrank_on_cuda_equals_cpu():
    spec = FeatureSpec((("a", 7),), ("x",))
    torch.manual_seed(0)
    m = build_model("harmonrank", 5, spec).double()
    s = torch.rand(1000, 5, dtype=torch.float64)
    cat = torch.randint(0, 7, (1000, 1))
    num = torch.randn(1000, 1, dtype=torch.float64)
    out = m(s, cat, num)
    torch.testing.assert_close(m.cuda()(s.cuda(), cat.cuda(), num.cuda()).cpu(), out)


def test_loop_trains_on_cuda(small_dataset):
    from trainables.loop import train_loop_per_worker
    hist = train_loop_per_worker({"data": {"path": str(small_dataset)},
                                  "optim": {"epochs": 2, "batch_size": 4096},
                                  "run": {"device": "cuda", "verbose": False}})
    assert len(hist) == 2 and hist[-1]["auc_sum"] / 5 > 0.55


@pytest.mark.parametrize("where", ["auto", "input", "cpu"])
def test_rank_auc_soft_rank_placement_gives_the_same_loss_and_gradient(where):
    g = torch.Generator().manual_seed(2)
    s_cpu = torch.randn(5000, generator=g, dtype=torch.float64)
    y_cpu = (torch.rand(5000, 3, generator=g) < 0.1).double()
    loss = get_loss("rank_auc")
    s_gpu = s_cpu.cuda().requires_grad_()
    a = loss(s_gpu, y_cpu.cuda(), soft_rank_device=where)
    grad_gpu, = torch.autograd.grad(a.sum(), s_gpu)
    s_ref = s_cpu.clone().requires_grad_()
    b = loss(s_ref, y_cpu)
    grad_ref, = torch.autograd.grad(b.sum(), s_ref)
    assert a.device.type == "cuda" and grad_gpu.device.type == "cuda"
    torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad_gpu.cpu(), grad_ref, rtol=1e-7, atol=1e-10)


def test_population_on_cuda_equals_cpu():
    """The stacked population forward + rank_auc on CUDA (no row chunks there) vs CPU."""
    from trainables.population import PopulationModel
    spec = FeatureSpec((("a", 7),), ("x",))
    members = []
    for seed in range(4):
        torch.manual_seed(seed)
        members.append(build_model("harmonrank", 3, spec).double())
    pop = PopulationModel(members)
    s = torch.rand(2000, 3, dtype=torch.float64)
    cat = torch.randint(0, 7, (2000, 1))
    num = torch.randn(2000, 1, dtype=torch.float64)
    y = (torch.rand(2000, 3) < 0.2).double()
    cpu = get_loss("rank_auc")(pop(s, cat, num), y)
    pop.cuda()
    gpu = get_loss("rank_auc")(pop(s.cuda(), cat.cuda(), num.cuda()), y.cuda())
    assert gpu.shape == (4, 3)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-8)
