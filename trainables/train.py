"""Train and compare a few model/loss pairs on one dataset, without Ray.

    python -m trainables.train                                  # HarmonRank vs MBCE, synthetic
    python -m trainables.train --runs harmonrank:rank_auc mlp:bce fusion:bce --epochs 10
    python -m trainables.train --data path/to/dataset --objectives buy,follow
    python -m trainables.train --config my_config.yaml         # one full config (see config.py)

Each run uses the one training loop (:func:`trainables.loop.train_loop_per_worker`)
with equal loss weights unless the config says otherwise; the final table gives every
run's validation AUC per objective and AUC sum (best epoch and last epoch).
"""
from __future__ import annotations

import argparse
import sys
import time

from .data import DatasetError


def _table(results, objectives):
    head = f"{'run':28s} " + " ".join(f"{o[:10]:>10s}" for o in objectives) + \
        f" {'auc_sum':>9s} {'best':>9s} {'samples/s':>11s}"
    lines = [head, "-" * len(head)]
    for name, hist in results:
        last = hist[-1]
        best = max(h["auc_sum"] for h in hist)
        speed = sum(h["samples_per_s"] for h in hist) / len(hist)
        lines.append(f"{name:28s} " + " ".join(f"{last[f'auc/{o}']:10.4f}" for o in objectives)
                     + f" {last['auc_sum']:9.4f} {best:9.4f} {speed:11,.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from .loop import TrainingDiverged, train_loop_per_worker
    ap = argparse.ArgumentParser(prog="python -m trainables.train", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a YAML config (data/model/loss/weighting/optim/run)")
    ap.add_argument("--runs", nargs="+", default=["harmonrank:rank_auc", "mlp:bce"],
                    metavar="MODEL:LOSS", help="model:loss pairs to train and compare")
    ap.add_argument("--data", default="synthetic", help="'synthetic' or a dataset folder")
    ap.add_argument("--rows", type=int, default=200_000, help="synthetic rows")
    ap.add_argument("--objectives", default="buy,follow,long_view")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--batch-size", type=int, default=10240)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    if a.config:
        from .yaml_safe import YAMLInputError, load_yaml
        try:
            base = load_yaml(a.config, "config file")     # bounded size, UTF-8, no bombs
        except YAMLInputError as e:
            print(f"error: --config {e}", file=sys.stderr)
            return 2
        runs = [("config", base)]
    else:
        objectives = [o for o in a.objectives.split(",") if o]
        data = {"source": "synthetic", "rows": a.rows, "objectives": objectives,
                "seed": a.seed} if a.data == "synthetic" else \
            {"path": a.data, "objectives": objectives}
        runs = []
        for spec in a.runs:
            model, sep, loss = spec.partition(":")
            if not sep or not model or not loss:
                ap.error(f"--runs {spec!r}: expected MODEL:LOSS, e.g. harmonrank:rank_auc")
            runs.append((spec, {"data": data, "model": {"family": model},
                                "loss": {"kind": loss},
                                "optim": {"epochs": a.epochs, "lr": a.lr,
                                          "batch_size": a.batch_size},
                                "run": {"seed": a.seed}}))
    results = []
    for name, cfg in runs:
        print(f"== {name}", flush=True)
        t0 = time.time()
        try:
            hist = train_loop_per_worker(cfg)
        except (ValueError, DatasetError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except TrainingDiverged as e:
            print(f"run {name} diverged: {e}", file=sys.stderr)
            continue
        print(f"   {name}: {time.time() - t0:.1f} s", flush=True)
        results.append((name, hist))
    if not results:
        return 1
    objectives = [k.split("/", 1)[1] for k in results[0][1][-1] if k.startswith("auc/")]
    print("\nValidation AUC (last epoch) per objective; auc_sum last and best epoch:")
    print(_table(results, objectives))
    return 0


if __name__ == "__main__":
    sys.exit(main())
