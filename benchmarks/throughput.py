"""Training-speed benchmark: samples/s of one optimizer step, per model x loss.

    python -m benchmarks.throughput                    # table: every registered model x loss
    python -m benchmarks.throughput --model harmonrank --loss rank_auc --objectives 5 \\
        --batch-size 10240 [--device cuda] [--threads 2]

Without ``--model`` / ``--loss`` the table has one row per entry of the registries
(``trainables.models.MODELS`` x ``trainables.losses.LOSSES``), HarmonRank and rank_auc
first. Times exactly the training loop's step (:func:`trainables.loop.make_step`:
forward, loss, weighting, backward, Adam) on batches gathered by index from tensors on
the device, as the loop does: random rows, or, when the model or the loss works on whole
requests (EMER), a run of whole requests of ``--candidates`` rows each. Each
configuration runs ``--repeats`` timed blocks of ``--steps`` steps after ``--warmup``
steps and reports the best block (least disturbed by other processes). Printed per row:

- samples/s, and the ratio to the reference row measured in the same process: a
  literal, straightforward HarmonRank + per-objective soft-rank AUC loop (the test
  oracle in ``tests/harmonrank_reference.py``), so ratios compare across machines;
- soft-rank share: time of the soft rank's forward + backward on one (1, B) batch
  (torchsort, or ``--loss-param soft_rank_impl=parallel``) divided by the step time
  (rank_auc rows).

The last line is ``<model> <loss> <samples per second> samples/s`` for the
configuration asked (the first row of the table when none is asked).
"""
from __future__ import annotations

import sys
import time

import torch
import yaml

from trainables.losses import LOSSES, get_loss, loss_params, resolve_loss_params
from trainables.models import MODELS, FeatureSpec, build_model
from trainables.weighting import build_weighting

from . import _args

FEATURES = FeatureSpec((("feat_age", 7), ("feat_gender", 3), ("feat_activity", 4),
                        ("feat_hour", 24)), ("feat_activity_score",))
RATES = (0.3, 0.1, 0.03, 0.01, 0.003, 0.05, 0.02, 0.005)
CANDIDATES = 10          # rows per request, as the synthetic generator's default


def make_pool(k: int, batch: int, device, pool_batches: int = 4, seed: int = 0,
              candidates: int = CANDIDATES):
    """Tensors shaped like an ME dataset, ``pool_batches * batch`` rows on ``device``:
    scores, labels, cat, num, and the request ids (``candidates`` consecutive rows per
    request) and durations that request-level models and losses read."""
    g = torch.Generator().manual_seed(seed)
    n = pool_batches * batch
    rates = torch.tensor([RATES[i % len(RATES)] for i in range(k)])
    scores = torch.rand(n, k, generator=g) ** 3          # skewed towards 0, like MP scores
    labels = (torch.rand(n, k, generator=g) < rates).float()
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for _, c in FEATURES.categorical],
                      1)
    num = torch.randn(n, len(FEATURES.numeric), generator=g)
    groups = torch.arange(n) // candidates
    duration = 5.0 + 295.0 * torch.rand(n, generator=g)  # seconds, for IPUT
    return [t.to(device) for t in (scores, labels, cat, num, groups, duration)]


def sync(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_rate(run_block, steps: int, batch: int, repeats: int, device) -> float:
    best = 0.0
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        run_block(steps)
        sync(device)
        best = max(best, steps * batch / (time.perf_counter() - t0))
    return best


def measure(model_name: str, loss_name: str, k: int, batch: int, device, steps: int = 20,
            warmup: int = 5, repeats: int = 3, lr: float = 1e-3,
            loss_params: dict | None = None, candidates: int = CANDIDATES) -> float:
    """Best samples/s of the loop's training step for one configuration."""
    from trainables.config import OPTIM_DEFAULTS
    from trainables.loop import by_request, make_optimizer, make_step
    torch.manual_seed(0)
    pool = make_pool(k, batch, device, candidates=candidates)
    n = pool[0].shape[0]
    model = build_model(model_name, k, FEATURES).to(device)
    opt = make_optimizer(model.parameters(), {**OPTIM_DEFAULTS, "lr": lr})
    weighting = build_weighting("static", [f"o{i}" for i in range(k)])
    loss = get_loss(loss_name)
    hp = resolve_loss_params(loss_name, loss_params or {})
    step = make_step(model, loss, hp, weighting, opt)
    gen = torch.Generator(device=device).manual_seed(0)
    whole = by_request(model, loss)
    requests = (n - batch) // candidates + 1          # starting requests of a full batch
    span = torch.arange(batch, device=device)

    def block(count):
        for i in range(count):
            if whole:    # a run of whole requests starting at a random request
                first = torch.randint(0, requests, (1,), device=device, generator=gen)
                idx = first * candidates + span
            else:
                idx = torch.randint(0, n, (batch,), device=device, generator=gen)
            scores, labels, cat, num, groups, duration = (t[idx] for t in pool)
            step(scores, labels, cat, num, i, 0, groups=groups, duration=duration)

    block(warmup)
    return _best_rate(block, steps, batch, repeats, device)


def measure_reference(k: int, batch: int, device, steps: int = 20, warmup: int = 5,
                      repeats: int = 3) -> float:
    """Best samples/s of the literal reference loop (same data, same batch size)."""
    try:
        from tests.harmonrank_reference import ReferenceHarmonRank, reference_rank_auc
    except ImportError:
        raise _args.BenchError("the reference row needs the repository's tests/ folder "
                               "(tests/harmonrank_reference.py): run from the repository "
                               "root, or pass --no-reference") from None
    torch.manual_seed(0)
    scores_, labels_, cat_, num_ = make_pool(k, batch, device)[:4]
    n = scores_.shape[0]
    model = ReferenceHarmonRank(k, FEATURES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)

    def block(count):
        for _ in range(count):
            idx = torch.randint(0, n, (batch,), device=device, generator=gen)
            loss = reference_rank_auc(model(scores_[idx], cat_[idx], num_[idx]), labels_[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    block(warmup)
    return _best_rate(block, steps, batch, repeats, device)


def soft_rank_seconds(batch: int, device, placement: str = "auto", reps: int = 20,
                      impl: str = "torchsort", strength: float = 1.0) -> float:
    """Seconds of one soft-rank forward + backward on a (1, batch) tensor of ``device``,
    run where and how rank_auc's ``soft_rank_device`` = ``placement`` and
    ``soft_rank_impl`` = ``impl`` run it (copies included; ``benchmarks.soft_rank``
    compares the two implementations)."""
    from trainables.losses.rank_auc import soft_ranks
    x = torch.randn(1, batch, device=device, requires_grad=True)
    g = torch.randn(1, batch, device=device)

    def once():
        r = soft_ranks(x, regularization_strength=strength, soft_rank_device=placement,
                       soft_rank_impl=impl)
        (r * g).sum().backward()

    for _ in range(3):
        once()
    best = float("inf")
    for _ in range(3):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            once()
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def _first(name: str, names) -> list[str]:
    """The registry's names with ``name`` first (the table's first row is the default)."""
    return [name] + [x for x in names if x != name]


def _parser():
    ap = _args.parser("python -m benchmarks.throughput", __doc__)
    ap.add_argument("--model", choices=sorted(MODELS), help="one model (default: all)")
    ap.add_argument("--loss", choices=sorted(LOSSES), help="one loss (default: all)")
    _args.add_common(ap, objectives=5, batch_size=10240, device=None, threads=None,
                     steps=20, warmup=10, repeats=5)
    ap.add_argument("--candidates", default=str(CANDIDATES),
                    help="rows per request in the batches of request-level models and "
                         f"losses (default {CANDIDATES})")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference row")
    ap.add_argument("--loss-param", action="append", default=[], metavar="KEY=VALUE",
                    help="a loss hyper-parameter, e.g. soft_rank_device=input (repeatable; "
                         "applied to the losses that have it)")
    return ap


def parse_args(argv=None):
    """Parse and check the options; BenchError naming the option on a bad value."""
    a = _parser().parse_args(argv)
    _args.check_ints(a)
    a.candidates = _args.integer("--candidates", a.candidates, 1, a.batch_size)
    a.loss_params = {}
    for item in a.loss_param:
        key, sep, value = item.partition("=")
        if not sep:
            raise _args.BenchError(f"--loss-param {item!r}: expected KEY=VALUE")
        a.loss_params[key] = yaml.safe_load(value)
    a.models = [a.model] if a.model else _first("harmonrank", MODELS)
    a.losses = [a.loss] if a.loss else _first("rank_auc", LOSSES)
    for key in a.loss_params:
        if not any(key in loss_params(name) for name in a.losses):
            raise _args.BenchError(f"--loss-param {key}: no selected loss has this parameter "
                                   f"({', '.join(a.losses)})")
    return a


def main(argv=None) -> int:
    a, device, name = _args.parse_with_device(parse_args, _parser, argv)
    print(f"# device: {name}; torch {torch.__version__}; objectives {a.objectives}; "
          f"batch {a.batch_size}; best of {a.repeats} x {a.steps} steps", flush=True)
    kw = dict(steps=a.steps, warmup=a.warmup, repeats=a.repeats)
    ref = None
    if not a.no_reference:
        try:
            ref = measure_reference(a.objectives, a.batch_size, device, **kw)
        except _args.BenchError as e:
            _parser().error(str(e))
        print(f"{'reference (literal HarmonRank, rank_auc)':44s} {ref:>14,.0f} samples/s   1.00x")
    sr = soft_rank_seconds(a.batch_size, device,
                           a.loss_params.get("soft_rank_device", "auto"),
                           impl=a.loss_params.get("soft_rank_impl", "torchsort"),
                           strength=a.loss_params.get("regularization_strength", 1.0)) \
        if "rank_auc" in a.losses else None
    print(f"{'model':12s} {'loss':19s} {'samples/s':>25s} {'vs ref':>7s} {'soft-rank share':>16s}")
    rows = []
    for m in a.models:
        for lname in a.losses:
            hp = {k: v for k, v in a.loss_params.items() if k in loss_params(lname)}
            try:
                rate = measure(m, lname, a.objectives, a.batch_size, device, loss_params=hp,
                               candidates=a.candidates, **kw)
            except ValueError as e:
                _parser().error(f"{m} + {lname}: {e}")
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
