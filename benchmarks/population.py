"""Population training vs the same members trained one after another.

    python -m benchmarks.population                  # 16 members, harmonrank + rank_auc
    python -m benchmarks.population --members 16 --model mlp --loss bce [--device cuda]

Two measurements, both in this process, both against the sequential way:

1. **step**: the training loop's step (:func:`trainables.loop.make_step`) for P models,
   each stepping on the batch in turn, vs one population step (stacked parameters, vmap)
   for the same P members. Printed as member-samples/s (rows x members per second) and
   the ratio population / sequential. Best of ``--repeats`` blocks of ``--steps`` steps.
2. **run** (``--epochs`` > 0): ``train_loop_per_worker`` for each of P configs (different
   loss weights) one after another, vs one config with a ``population`` section of the
   same P members: wall seconds including data loading, evaluation every epoch and
   metrics, and the ratio sequential / population (> 1: the population is faster).
   The members' final AUCs are compared too (they should agree: same training, batched).

The last line is ``population/sequential <members> members: step <x>x, run <y>x``.
"""
from __future__ import annotations

import sys
import time

import torch

from trainables.losses import LOSSES, get_loss
from trainables.models import MODELS, build_model
from trainables.weighting import build_weighting

from . import _args
from .throughput import FEATURES, make_pool, sync


def _weights(p: int, k: int, seed: int = 0) -> list[list[float]]:
    g = torch.Generator().manual_seed(seed)
    w = -torch.log(torch.rand(p, k, generator=g).clamp_min(1e-9))      # Dirichlet(1)
    return (w / w.sum(1, keepdim=True)).tolist()


def step_rates(model_name: str, loss_name: str, k: int, p: int, batch: int, device,
               steps: int, warmup: int, repeats: int,
               chunk_rows: int | None = None) -> tuple[float, float]:
    """(sequential, population) member-samples/s of one training step."""
    from trainables.loop import make_optimizer, make_step
    from trainables.population import PopulationModel
    objectives = [f"o{i}" for i in range(k)]
    optim = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
    loss = get_loss(loss_name)
    weights = _weights(p, k)
    pool = make_pool(k, batch, device)[:4]
    n = pool[0].shape[0]

    nets = [build_model(model_name, k, FEATURES, {}).to(device) for _ in range(p)]
    seq_steps = []
    for net, w in zip(nets, weights):
        wt = build_weighting("static", objectives, {"weights": w})
        seq_steps.append(make_step(net, loss, {}, wt, make_optimizer(net.parameters(), optim)))
    pop = PopulationModel([build_model(model_name, k, FEATURES, {}) for _ in range(p)],
                          chunk_rows).to(device)
    members = [build_weighting("static", objectives, {"weights": w}) for w in weights]
    pop_w = type(members[0]).stack(members)
    pop_step = make_step(pop, loss, {}, pop_w, make_optimizer(pop.parameters(), optim))
    gen = torch.Generator(device=device).manual_seed(0)

    def block(fns, count):
        for i in range(count):
            idx = torch.randint(0, n, (batch,), device=device, generator=gen)
            args = [t[idx] for t in pool]
            for fn in fns:
                fn(args[0], args[1], args[2], args[3], i, 0)

    ways = (seq_steps, [pop_step])
    for fns in ways:
        block(fns, warmup)
    rates = [0.0, 0.0]
    for _ in range(repeats):        # interleaved, so a disturbance hits both ways alike
        for w, fns in enumerate(ways):
            sync(device)
            t0 = time.perf_counter()
            block(fns, steps)
            sync(device)
            rates[w] = max(rates[w], steps * batch * p / (time.perf_counter() - t0))
    return rates[0], rates[1]


def run_seconds(model_name: str, loss_name: str, p: int, epochs: int, rows: int,
                device) -> tuple[float, float, float]:
    """(sequential s, population s, max |AUC difference| between the two ways)."""
    from trainables.data import resolve_data
    from trainables.loop import train_loop_per_worker
    objectives = ["click", "long_view", "like", "follow", "buy"]
    base = {"data": {"source": "synthetic", "rows": rows, "objectives": objectives, "seed": 0},
            "model": {"family": model_name}, "loss": {"kind": loss_name},
            "optim": {"epochs": epochs},
            "run": {"device": str(device), "verbose": False}}
    resolve_data(base["data"])            # generate once, outside the timings
    weights = [dict(zip(objectives, w)) for w in _weights(p, len(objectives))]
    t0 = time.perf_counter()
    seq = [train_loop_per_worker({**base, "weighting": {"weights": w}})[-1] for w in weights]
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    pop = train_loop_per_worker({**base, "population": [{"weighting": {"weights": w}}
                                                        for w in weights]})[-1]
    t_pop = time.perf_counter() - t0
    diff = max(abs(seq[i][f"auc/{o}"] - pop[f"m{i}/auc/{o}"])
               for i in range(p) for o in objectives)
    return t_seq, t_pop, diff


def _parser():
    ap = _args.parser("python -m benchmarks.population", __doc__)
    ap.add_argument("--members", default="16", help="population members P (default 16)")
    ap.add_argument("--model", choices=sorted(MODELS), default="harmonrank")
    ap.add_argument("--loss", choices=sorted(LOSSES), default="rank_auc")
    _args.add_common(ap, objectives=5, batch_size=10240, device=None, threads=None,
                     steps=5, warmup=2, repeats=3)
    ap.add_argument("--chunk-rows", default=None,
                    help="rows per vmapped chunk (default: the population's auto choice)")
    _args.add_common(ap, epochs=2, rows=100000,
                     help_epochs="epochs of the run comparison (default {default}; 0: skip it)",
                     help_rows="synthetic rows of the run comparison (default {default})")
    return ap


def parse_args(argv=None):
    """Parse and check the options; BenchError naming the option on a bad value."""
    a = _parser().parse_args(argv)
    _args.check_ints(a, epochs=0)
    a.members = _args.integer("--members", a.members, 1)
    a.chunk_rows = None if a.chunk_rows is None else \
        _args.integer("--chunk-rows", a.chunk_rows, 1)
    return a


def main(argv=None) -> int:
    a, device, name = _args.parse_with_device(parse_args, _parser, argv)
    print(f"# device: {name}; torch {torch.__version__}; {a.model} + {a.loss}; "
          f"{a.members} members; objectives {a.objectives}; batch {a.batch_size}", flush=True)
    seq, pop = step_rates(a.model, a.loss, a.objectives, a.members, a.batch_size, device,
                          a.steps, a.warmup, a.repeats, a.chunk_rows)
    print(f"step  sequential {seq:>14,.0f} member-samples/s", flush=True)
    print(f"step  population {pop:>14,.0f} member-samples/s   {pop / seq:.2f}x", flush=True)
    run_ratio = float("nan")
    if a.epochs:
        t_seq, t_pop, diff = run_seconds(a.model, a.loss, a.members, a.epochs, a.rows, device)
        run_ratio = t_seq / t_pop
        print(f"run   {a.members} configs one after another: {t_seq:7.1f} s; one population: "
              f"{t_pop:7.1f} s; {run_ratio:.2f}x ({a.epochs} epochs, {a.rows:,} rows; largest "
              f"AUC difference between the two ways {diff:.1e})", flush=True)
    print(f"population/sequential {a.members} members: step {pop / seq:.2f}x, run "
          f"{run_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
