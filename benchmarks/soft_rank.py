"""Soft-rank benchmark: torchsort's kernels against the parallel soft rank, one long row.

    python -m benchmarks.soft_rank                      # lengths 10^3..10^6, CPU or CUDA
    python -m benchmarks.soft_rank --device cuda --lengths 102400,1000000 --strengths 0.01

Times one forward + backward of rank_auc's soft rank (``trainables.losses.rank_auc.
soft_ranks``, so placement and copies are exactly the loss's) on ``--rows`` rows of
``--lengths`` standard-normal scores (raw ensemble scores are logit-like), per
regularization strength, best of ``--repeats``. Rows: torchsort where ``soft_rank_device:
auto`` runs it (its CPU kernel, with copies, for CUDA input), torchsort's CUDA kernel on
CUDA (``input``), and ``soft_rank_impl: parallel`` on the input's device; the ratio is
torchsort-auto's time over the row's (> 1: faster), measured in the same process. Each
row's largest error against float64 ranks (torchsort's CPU kernel on the float64 scores)
is printed as a check: torchsort's float32 kernel sums in float32, so its own error grows
with the length (about 0.1 ranks at 10^5, 100 at 10^6), while the parallel soft rank
computes in float64 inside. On a shared CPU, ``--threads 1`` gives steadier figures. The
last line is
``soft_rank <length> <strength> parallel <ratio>x`` for the largest length and the first
strength.
"""
from __future__ import annotations

import time

import torch
import torchsort

from trainables.losses.rank_auc import soft_ranks

from . import _args
from .throughput import sync

WAYS = {  # label -> rank_auc parameters
    "torchsort (auto)": {"soft_rank_impl": "torchsort", "soft_rank_device": "auto"},
    "torchsort (cuda kernel)": {"soft_rank_impl": "torchsort", "soft_rank_device": "input"},
    "parallel": {"soft_rank_impl": "parallel", "soft_rank_device": "input"},
}


def seconds(x: torch.Tensor, strength: float, repeats: int, **how) -> tuple[float, torch.Tensor]:
    """Best time of one forward + backward, and the ranks."""
    g = torch.randn_like(x)
    best, ranks = float("inf"), None
    for i in range(repeats + 1):                        # the first is a warm-up
        v = x.detach().clone().requires_grad_(True)
        sync(x.device)
        t0 = time.perf_counter()
        ranks = soft_ranks(v, regularization_strength=strength, **how)
        (ranks * g).sum().backward()
        sync(x.device)
        if i:
            best = min(best, time.perf_counter() - t0)
    return best, ranks.detach()


def _floats(option: str, text: str, lo: float) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or any(not v > lo for v in values):
        raise _args.BenchError(f"{option} {text!r}: must be comma-separated numbers > {lo:g}")
    return values


def _parser():
    ap = _args.parser("python -m benchmarks.soft_rank", __doc__)
    _args.add_common(ap, device=None, threads=None, repeats=3, seed=0)
    ap.add_argument("--lengths", default="1000,10000,100000,1000000",
                    help="row lengths, comma-separated (default 10^3..10^6)")
    ap.add_argument("--strengths", default="1,0.01,0.0001",
                    help="regularization strengths, comma-separated (default 1,0.01,0.0001)")
    ap.add_argument("--rows", default="1", help="rows ranked together (default 1)")
    ap.add_argument("--smoke-test", action="store_true", help="tiny sizes, seconds on CPU")
    return ap


def parse_args(argv=None):
    a = _parser().parse_args(argv)
    _args.check_ints(a)
    if a.smoke_test:
        a.lengths, a.strengths, a.repeats = "100,3000", "1,0.01", 1
    a.lengths = [_args.integer("--lengths", v, 1, 10 ** 8) for v in a.lengths.split(",")]
    a.strengths = _floats("--strengths", a.strengths, 0.0)
    a.rows = _args.integer("--rows", a.rows, 1, 4096)
    return a


def main(argv=None) -> int:
    a, device, name = _args.parse_with_device(parse_args, _parser, argv)
    ways = [w for w in WAYS if device.type == "cuda" or "cuda" not in w]
    print(f"# device: {name}; torch {torch.__version__}; {a.rows} row(s); forward + backward, "
          f"best of {a.repeats}", flush=True)
    print(f"{'length':>9s} {'strength':>9s} {'way':24s} {'ms':>10s} {'vs torchsort':>13s} "
          f"{'error vs f64':>13s}")
    gen = torch.Generator().manual_seed(a.seed)
    last = None
    for n in a.lengths:
        x = torch.randn(a.rows, n, generator=gen).to(device)
        for strength in a.strengths:
            base = None
            exact = torchsort.soft_rank(x.double().cpu(), regularization_strength=strength)
            for way in ways:
                try:
                    t, ranks = seconds(x, strength, a.repeats, **WAYS[way])
                except ImportError as e:           # torchsort built without its CUDA kernel
                    print(f"{n:>9,} {strength:>9g} {way:24s} unavailable: {e}", flush=True)
                    continue
                base = base or t
                err = (ranks.cpu().double() - exact).abs().max().item()
                print(f"{n:>9,} {strength:>9g} {way:24s} {t * 1e3:>10.2f} {base / t:>12.2f}x "
                      f"{err:>13.2e}", flush=True)
                if way == "parallel" and strength == a.strengths[0]:
                    last = (n, strength, base / t)
    print(f"soft_rank {last[0]} {last[1]:g} parallel {last[2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
