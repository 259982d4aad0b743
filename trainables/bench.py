"""Training-speed benchmark: samples/s of one optimizer step, per model x loss.

    python -m trainables.bench                                   # table: every model x loss
    python -m trainables.bench --model harmonrank --loss rank_auc --objectives 5 \\
        --batch-size 10240 [--device cuda] [--threads 2]

Times exactly the training loop's step (:func:`trainables.loop.make_step`: forward,
loss, weighting, backward, Adam) on batches gathered by index from tensors on the
device, as the loop does. Each configuration runs ``--repeats`` timed blocks of
``--steps`` steps after ``--warmup`` steps and reports the best block (least disturbed
by other processes). Printed per row:

- samples/s, and the ratio to the reference row measured in the same process: a
  literal, straightforward HarmonRank + per-objective soft-rank AUC loop
  (:mod:`trainables.bench_reference`), so ratios compare across machines;
- soft-rank share: time of torchsort's soft_rank forward + backward on one (1, B)
  batch divided by the step time (rank_auc rows).

The last line is ``<model> <loss> <samples per second> samples/s`` for the
configuration asked (the first row of the table when none is asked).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import yaml

from .losses import LOSSES, get_loss
from .models import MODELS, FeatureSpec, build_model
from .weighting import build_weighting

FEATURES = FeatureSpec((("feat_age", 7), ("feat_gender", 3), ("feat_activity", 4),
                        ("feat_hour", 24)), ("feat_activity_score",))
RATES = (0.3, 0.1, 0.03, 0.01, 0.003, 0.05, 0.02, 0.005)


def make_pool(k: int, batch: int, device, pool_batches: int = 4, seed: int = 0):
    """Tensors shaped like an ME dataset: pool_batches * batch rows on ``device``."""
    g = torch.Generator().manual_seed(seed)
    n = pool_batches * batch
    rates = torch.tensor([RATES[i % len(RATES)] for i in range(k)])
    scores = torch.rand(n, k, generator=g) ** 3          # skewed towards 0, like MP scores
    labels = (torch.rand(n, k, generator=g) < rates).float()
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for _, c in FEATURES.categorical],
                      1)
    num = torch.randn(n, len(FEATURES.numeric), generator=g)
    return [t.to(device) for t in (scores, labels, cat, num)]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_rate(run_block, steps: int, batch: int, repeats: int, device) -> float:
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        run_block(steps)
        _sync(device)
        best = max(best, steps * batch / (time.perf_counter() - t0))
    return best


def measure(model_name: str, loss_name: str, k: int, batch: int, device, steps: int = 20,
            warmup: int = 5, repeats: int = 3, lr: float = 1e-3,
            loss_params: dict | None = None) -> float:
    """Best samples/s of the loop's training step for one configuration."""
    from .loop import make_optimizer, make_step
    from .config import OPTIM_DEFAULTS
    torch.manual_seed(0)
    pool = make_pool(k, batch, device)
    n = pool[0].shape[0]
    model = build_model(model_name, k, FEATURES).to(device)
    opt = make_optimizer(model.parameters(), {**OPTIM_DEFAULTS, "lr": lr})
    weighting = build_weighting("static", [f"o{i}" for i in range(k)])
    from .losses import resolve_loss_params
    hp = resolve_loss_params(loss_name, loss_params or {})
    step = make_step(model, get_loss(loss_name), hp, weighting, opt)
    gen = torch.Generator(device=device).manual_seed(0)

    def block(count):
        for i in range(count):
            idx = torch.randint(0, n, (batch,), device=device, generator=gen)
            step(*(t[idx] for t in pool), i, 0)

    block(warmup)
    return _best_rate(block, steps, batch, repeats, device)


def measure_reference(k: int, batch: int, device, steps: int = 20, warmup: int = 5,
                      repeats: int = 3) -> float:
    """Best samples/s of the literal reference loop (same data, same batch size)."""
    from .bench_reference import ReferenceHarmonRank, reference_rank_auc
    torch.manual_seed(0)
    pool = make_pool(k, batch, device)
    n = pool[0].shape[0]
    model = ReferenceHarmonRank(k, FEATURES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)

    def block(count):
        for _ in range(count):
            idx = torch.randint(0, n, (batch,), device=device, generator=gen)
            scores, labels, cat, num = (t[idx] for t in pool)
            loss = reference_rank_auc(model(scores, cat, num), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()

    block(warmup)
    return _best_rate(block, steps, batch, repeats, device)


def soft_rank_seconds(batch: int, device, placement: str = "auto", reps: int = 20) -> float:
    """Seconds of one soft_rank forward + backward on a (1, batch) tensor of ``device``,
    run where rank_auc's ``soft_rank_device`` = ``placement`` runs it (copies included)."""
    import torchsort
    x = torch.randn(1, batch, device=device, requires_grad=True)
    g = torch.randn(1, batch, device=device)
    to_cpu = placement == "cpu" or (placement == "auto" and device.type == "cuda")

    def once():
        r = torchsort.soft_rank(x.cpu() if to_cpu else x).to(device)
        (r * g).sum().backward()

    for _ in range(3):
        once()
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            once()
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def device_from_args(ap: argparse.ArgumentParser, a) -> tuple[torch.device, str]:
    """The device of ``--device`` (default: CUDA when present) with ``--threads`` applied,
    and its name for the header line; a parser error when CUDA is asked for but absent."""
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {a.device}: no CUDA device available")
    if a.threads:
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu, {torch.get_num_threads()} threads"
    return device, name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainables.bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), help="one model (default: all)")
    ap.add_argument("--loss", choices=sorted(LOSSES), help="one loss (default: all)")
    ap.add_argument("--objectives", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=10240)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if present)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true", help="skip the reference row")
    ap.add_argument("--loss-param", action="append", default=[], metavar="KEY=VALUE",
                    help="a loss hyper-parameter, e.g. soft_rank_device=input (repeatable; "
                         "applied to the losses that have it)")
    a = ap.parse_args(argv)
    loss_params = {}
    for item in a.loss_param:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--loss-param {item!r}: expected KEY=VALUE")
        loss_params[key] = yaml.safe_load(value)
    from .losses import loss_params as params_of
    chosen = [a.loss] if a.loss else list(LOSSES)
    for key in loss_params:
        if not any(key in params_of(name) for name in chosen):
            ap.error(f"--loss-param {key}: no selected loss has this parameter "
                     f"({', '.join(chosen)})")
    if a.objectives < 1 or a.batch_size < 2:
        ap.error("--objectives must be >= 1 and --batch-size >= 2")
    device, name = device_from_args(ap, a)
    models = [a.model] if a.model else ["harmonrank", "mlp", "fusion"]
    losses = [a.loss] if a.loss else ["rank_auc", "bce", "pairwise_logistic",
                                      "pairwise_square", "aucm", "label_aggregation"]
    print(f"# device: {name}; torch {torch.__version__}; objectives {a.objectives}; "
          f"batch {a.batch_size}; best of {a.repeats} x {a.steps} steps")
    kw = dict(steps=a.steps, warmup=a.warmup, repeats=a.repeats)
    ref = None
    if not a.no_reference:
        ref = measure_reference(a.objectives, a.batch_size, device, **kw)
        print(f"{'reference (literal HarmonRank, rank_auc)':44s} {ref:>14,.0f} samples/s   1.00x")
    sr = soft_rank_seconds(a.batch_size, device, loss_params.get("soft_rank_device", "auto"))
    print(f"{'model':12s} {'loss':19s} {'samples/s':>25s} {'vs ref':>7s} {'soft-rank share':>16s}")
    rows = []
    for m in models:
        for lname in losses:
            hp = {k: v for k, v in loss_params.items() if k in params_of(lname)}
            try:
                rate = measure(m, lname, a.objectives, a.batch_size, device, loss_params=hp, **kw)
            except ValueError as e:
                ap.error(str(e))
            ratio = f"{rate / ref:6.2f}x" if ref else "      -"
            share = f"{sr / (a.batch_size / rate):15.1%}" if lname == "rank_auc" else \
                f"{'-':>15s}"
            print(f"{m:12s} {lname:19s} {rate:>15,.0f} samples/s {ratio} {share}", flush=True)
            rows.append((m, lname, rate))
    m, lname, rate = rows[0]
    print(f"{m} {lname} {rate:.0f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
